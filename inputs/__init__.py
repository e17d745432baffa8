"""Files a user hands in: ad spend exports, campaign plans and mention imports.

None of them talks to a platform, so they live apart from ``connectors/`` (which owns
the network): ``spend`` reads ad-platform spend exports, ``plan`` the pre-registered
campaign plans, ``mentions`` the mention files ``listener import`` loads.
"""
