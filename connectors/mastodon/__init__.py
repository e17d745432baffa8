"""The ``mastodon`` connector package (the connector itself is in ``connector``)."""

# The entry point (``[project.entry-points."listener.connectors"] mastodon``) names this
# package: it exposes SETTINGS and create, as every connector module does.
from connectors.mastodon.connector import (  # noqa: F401
    LATE_ARRIVAL_MARGIN, MASTODON_STATUS_ERRORS, SETTINGS, MastodonConnector, _NotFound, create, hashtags_for,
    html_to_text, mention_from_status, normalize_instance_url, read_status, search_queries,
)
