"""``listener migrate --to postgresql://...``: an existing single-file database into
cluster mode (docs/deploy.md).

What cluster mode keeps in PostgreSQL is copied from the file: every stored mention
(``cluster_mentions``, whole, under one fencing token of its own so it is told apart
from collected batches) and each (source, brand) cursor as its job's cursor
(``cluster_jobs``), so the daemons resume where this file's daemon stopped instead of
reading the history again. The file is opened read-only and nothing in it changes: it
stays a complete single-machine database, and becomes a daemon's own file again when
``database.url`` is added to its config.

Idempotent: mentions already in PostgreSQL are left as they are and a job that already
has a cursor keeps it (the cluster's is as new or newer), so a re-run, or a run cut off
half way, adds only what is missing. Progress goes to stderr per chunk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from datetime import UTC
from typing import Any

import click

from connectors.base import Mention
from listener.cli_support import common_options, handle_errors, settings_from
from listener.config import DATABASE_SETTINGS, ClusterSettings, ConfigError
from storage.store import Store

CHUNK = 10_000
_SELECT = ("SELECT source, id, brand, created_at, text, author, url, conversation_id, parent_id, lang, likes, "
           "reposts, replies, extra_metrics, fetched_at, thread_context, own FROM mentions "
           "ORDER BY source, brand, created_at, id")


def _mention(row: Sequence[Any]) -> Mention:
    """A stored mention row (_SELECT) as the Mention it was saved from (raw aside)."""
    (source, id_, brand, created_at, text, author, url, conversation_id, parent_id, lang, likes, reposts, replies,
     extra_metrics, fetched_at, thread_context, own) = row
    metrics = {"likes": likes, "reposts": reposts, "replies": replies, **json.loads(extra_metrics or "{}")}
    return Mention(source=source, id=id_, brand=brand, created_at=created_at.replace(tzinfo=UTC), text=text,
                   author=author, url=url, conversation_id=conversation_id, parent_id=parent_id, lang=lang,
                   metrics=metrics, fetched_at=fetched_at.replace(tzinfo=UTC) if fetched_at else None,
                   thread_context=bool(thread_context), own=bool(own))


def _chunks(store: Store) -> Iterator[list[Mention]]:
    with store.native() as db:
        result = db.execute(_SELECT)
        while rows := result.fetchmany(CHUNK):
            yield [_mention(row) for row in rows]


@click.command("migrate")
@click.option("--to", "url", metavar="URL", required=True,
              help="The cluster's PostgreSQL, postgresql://USER@HOST:PORT/DBNAME (no password in it).")
@click.option("--password-env", "password_env", metavar="NAME", default=None,
              help="Environment variable holding the password (default: the config's database.password_env).")
@common_options
@click.pass_context
@handle_errors
def migrate(ctx: click.Context, url: str, password_env: str | None) -> None:
    """Copy this database's mentions and cursors into cluster mode's PostgreSQL.

    The database file (--db, LISTENER_DB or the config's database.path) is only read:
    stop its daemon first. Safe to run again: what is already there is kept, only what
    is missing is added. Then add database.url to each daemon's config (docs/deploy.md).
    """
    settings = settings_from(ctx)
    # The config's own check of database.url (empty there means "no cluster": not here).
    problems = [f"--to: {p}" for p in [DATABASE_SETTINGS["url"].problem(url) if url.strip()
                                        else "must be a PostgreSQL URL (postgresql://user@host:port/dbname)"] if p]
    if password_env is None:
        password_env = settings.cluster.password_env if settings.cluster else ""
    problems += [f"--password-env: {p}" for p in [DATABASE_SETTINGS["password_env"].problem(password_env)] if p]
    if problems:
        raise ConfigError(problems, "command line")
    # psycopg is the [cluster] extra's: imported only when it is asked for.
    from storage.cluster import connect, migrate as migrate_tables  # noqa: PLC0415
    from storage.cluster.leases import insert_mentions, mention_row  # noqa: PLC0415

    password = ClusterSettings(url, password_env).password(os.environ)
    with Store.open(settings.database, read_only=True) as store, connect(url.strip(), password) as conn:
        migrate_tables(conn)
        with conn.transaction(), conn.cursor() as cur:
            # One token for this copy: its rows are told apart from any lease's batches.
            cur.execute("SELECT nextval('cluster_fence')")
            token = cur.fetchone()[0]
        holder = f"migrate:{settings.database}"
        with store.native() as db:
            total = db.execute("SELECT count(*) FROM mentions").fetchone()[0]
            cursors = db.execute("SELECT source, brand, cursor FROM cursors ORDER BY source, brand").fetchall()
        click.echo(f"Copying {total:,} mention(s) and {len(cursors)} cursor(s) from {settings.database} ...", err=True)
        done = new = 0
        for chunk in _chunks(store):
            with conn.transaction(), conn.cursor() as cur:
                new += insert_mentions(cur, [mention_row(m, token, holder) for m in chunk])
            done += len(chunk)
            click.echo(f"mentions: {done:,} of {total:,} copied ({new:,} new)", err=True)
        with conn.transaction(), conn.cursor() as cur:
            # A job the cluster already has a cursor for keeps it: it is as new or newer.
            cur.executemany("INSERT INTO cluster_jobs (source, brand, cursor) VALUES (%s, %s, %s::jsonb) "
                            "ON CONFLICT (source, brand) DO UPDATE SET cursor = excluded.cursor "
                            "WHERE cluster_jobs.cursor IS NULL", cursors)
            jobs = max(cur.rowcount, 0)
    click.echo(f"Migrated to {url.strip()}: {new:,} new mention(s) of {total:,}, {jobs} new cursor(s) of "
               f"{len(cursors)}. {settings.database} is unchanged.")

