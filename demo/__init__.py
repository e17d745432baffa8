"""The demo world: a seeded market of brands, their mentions and their ad campaigns.

Neutral ground shared by the demo connector (``connectors.demo``, a thin module over
``world``), the campaign-report simulator (``analysis.roi.simulate``), the benches and the
tests: ``world`` simulates mentions hour by hour (and, for the report's simulator, their
counts: one engine for all of them), ``texts`` composes their bodies,
``exports`` writes the Google Ads export, the plan and the truth a demo campaign leaves.
"""
