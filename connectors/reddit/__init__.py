"""The ``reddit`` connector package (the connector itself is in ``connector``)."""

# The entry point (``[project.entry-points."listener.connectors"] reddit``) names this
# package: it exposes SETTINGS and create, as every connector module does.
from connectors.reddit.connector import (  # noqa: F401
    BATCH_SIZE, CURSOR_VERSION, MAX_PAGES_PER_PASS, PRAWCORE_STATUS_ERRORS, SETTINGS, RedditConnector,
    _thing_data, build_reddit, comment_mention, create, submission_mention,
)
