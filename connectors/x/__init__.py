"""The ``x`` connector package (the connector itself is in ``connector``)."""

# The entry point (``[project.entry-points."listener.connectors"] x``) names this
# package: it exposes SETTINGS and create, as every connector module does.
from connectors.x.connector import (  # noqa: F401
    SETTINGS, X_STATUS_ERRORS, XConnector, _page_bounds, build_client, create, id_time, mention_from_tweet,
    mentions_from_page, since_id_for,
)
