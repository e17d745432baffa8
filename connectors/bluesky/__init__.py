"""The ``bluesky`` connector package (the connector itself is in ``connector``)."""

# The entry point (``[project.entry-points."listener.connectors"] bluesky``) names this
# package: it exposes SETTINGS and create, as every connector module does.
from connectors.bluesky.connector import (  # noqa: F401
    ATPROTO_STATUS_ERRORS, SETTINGS, BlueskySearchConnector, compile_search_queries, create, map_search_page,
    mention_from_post_view,
)
