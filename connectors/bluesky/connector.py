"""The ``bluesky`` source's settings and its entry-point factory ``create``, which builds the
search or the Jetstream connector: each mode's module is imported only when built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from connectors.base import Clock
from connectors.errors import AuthError
from connectors.retry import RetryPolicy
from connectors.settings import CENTURY_DAYS, HTTP_SCHEMES, TIMEOUT, Setting, settings_table, validated

if TYPE_CHECKING:
    from connectors.bluesky.jetstream import JetstreamConnector
    from connectors.bluesky.search import BlueskySearchConnector

MODES = ("search", "jetstream")
SETTINGS = settings_table(
    Setting("mode", str, "search",
            "'search' (post search: needs a login, reaches back) or 'jetstream' (the live "
            "post stream, matched locally; no login).",
            choices=MODES),
    Setting("handle_env", str, "BLUESKY_HANDLE", "Search mode: environment variable holding the account's handle.",
            required=True),
    Setting("app_password_env", str, "BLUESKY_APP_PASSWORD",
            "Search mode: environment variable holding an app password of that account.", required=True),
    Setting("base_url", str, "https://bsky.social",
            "Search mode: where to log in and search: the Bluesky entryway, or your own PDS "
            "(it forwards searches to the Bluesky AppView). Jetstream mode: where the brand's "
            "own_accounts handles are resolved to DIDs.",
            schemes=HTTP_SCHEMES),
    Setting("history_days", int, 7,
            "Search mode: how far back the first run of a brand reads, and how far back a run "
            "reaches after downtime.",
            min=1, max=CENTURY_DAYS),
    Setting("max_pages_per_run", int, 10,
            "Search mode: search pages (up to 100 posts each) one run may request per query.", min=1),
    Setting("overlap_seconds", int, 60,
            "Search mode: each run re-reads this many seconds before the previous run's end, "
            "for posts that reach the search index late; re-read posts are stored once.",
            min=0, max=86_400 * CENTURY_DAYS),
    Setting("timeout_seconds", float, 30.0, "How long (seconds) to wait for one answer (Jetstream mode: to "
            "a handle's resolution).", **TIMEOUT),
    Setting("jetstream_url", str, "wss://jetstream2.us-east.bsky.network",
            "Jetstream mode: the Jetstream instance (/subscribe is added); the public ones "
            "are jetstream1/jetstream2 .us-east/.us-west.bsky.network.",
            schemes=("ws://", "wss://")),
    Setting("jetstream_max_seconds", float, 50.0,
            "Jetstream mode: the longest (seconds) one run reads the stream before it "
            "returns.",
            **TIMEOUT),
    Setting("jetstream_max_events", int, 500_000,
            "Jetstream mode: the most events (every post on the network, not only matches) "
            "one run reads.",
            min=1),
    Setting("jetstream_backfill_minutes", int, 10,
            "Jetstream mode: how far (minutes) before its start the very first run replays.",
            min=0, max=1440 * CENTURY_DAYS),
)


# -- settings and factory ---------------------------------------------------------------


def create(settings: Mapping[str, Any], clock: Clock, env: Mapping[str, str] = os.environ, *,
           retry: RetryPolicy | None = None) -> BlueskySearchConnector | JetstreamConnector:
    """Entry-point factory: a search connector (credentials from the environment
    variables named by ``handle_env`` and ``app_password_env``; missing ones raise
    AuthError naming them) or, with ``mode = "jetstream"``, a Jetstream connector (no
    login). Invalid settings raise ValueError listing every problem."""
    values = validated("bluesky", SETTINGS, settings)
    if values["mode"] == "jetstream":
        from connectors.bluesky.client import HandleResolver
        from connectors.bluesky.jetstream import JetstreamConnector

        policy = retry or RetryPolicy()
        return JetstreamConnector(
            values["jetstream_url"], clock,
            max_seconds=float(values["jetstream_max_seconds"]),
            max_events=values["jetstream_max_events"],
            backfill_minutes=values["jetstream_backfill_minutes"],
            retry=policy,
            # The brand's own handles are resolved to DIDs there (no login).
            resolver=HandleResolver(values["base_url"], float(values["timeout_seconds"]), policy, clock),
        )
    from connectors.bluesky.client import build_client
    from connectors.bluesky.search import BlueskySearchConnector

    env_vars = (values["handle_env"], values["app_password_env"])
    handle = (env.get(env_vars[0]) or "").strip().lstrip("@")
    password = (env.get(env_vars[1]) or "").strip()
    missing = [name for name, value in zip(env_vars, (handle, password)) if not value]
    if missing:
        raise AuthError(f"Bluesky search needs a login: {' and '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} not set or empty", env_vars=missing)
    return BlueskySearchConnector(
        build_client(values["base_url"], float(values["timeout_seconds"])), clock,
        handle=handle, app_password=password,
        history_days=values["history_days"],
        max_pages_per_run=values["max_pages_per_run"],
        overlap_seconds=values["overlap_seconds"],
        retry=retry or RetryPolicy(),
        env_vars=env_vars,
    )
