"""``listener serve``: the live view (listener.web, a Starlette app under uvicorn), as a click command.

Registered on the ``listener`` group by listener.cli (its COMMANDS table, loaded when run); it
can also run alone: ``python -m listener.commands_serve --db PATH``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

import click

from analysis.sentiment import VaderScorer
from listener.cli_support import (
    CONTEXT_SETTINGS,
    CliError,
    clock_from,
    common_options,
    handle_errors,
    parse_as_of,
    settings_from,
)
from storage.analyst import reading_path
from storage.errors import DatabaseLockedError

DEFAULT_PORT = 8177
DEFAULT_TOKEN_ENV = "LISTENER_SERVE_TOKEN"


@click.command(name="serve", context_settings=CONTEXT_SETTINGS)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Beyond loopback an access token is required.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0: any free port, printed at start).")
@click.option("--token-env", "token_env", default=DEFAULT_TOKEN_ENV, show_default=True, metavar="NAME",
              help="Environment variable holding the access token; when it is set, every request needs it.")
@click.option("--refresh", default=60, show_default=True, type=click.IntRange(5, 86_400), metavar="SECONDS",
              help="How often the overview and brand pages update themselves (without reloading).")
@click.option("--as-of", "as_of", metavar="TIME",
              help="Show the view as of this UTC time instead of now (ISO 8601), e.g. for a demo database.")
@common_options
@click.pass_context
@handle_errors
def serve(ctx: click.Context, host: str, port: int, token_env: str, refresh: int, as_of: str | None) -> None:
    """The workspace: the mention stream, open alerts and the live mood per brand.

    /stream: every mention, newest first, filtered by brand, source, sentiment,
    language, near-duplicates, author, words and time (the filters are in the address),
    with label buttons; new mentions appear by themselves. Open alerts on top, with
    their explanation, their posts and buttons to acknowledge or resolve them. Per brand: the last hour and last 24 h against the 7-day baseline (NSS with
    error bands, the numbers of 'listener mood'), the last 48 hours of hourly NSS
    and volume, share of voice against competitors, the most negative and most
    positive active conversations (with buttons to correct a label), open alerts,
    and data freshness per source. JSON at /api/live.json.

    It binds 127.0.0.1 by default. To bind any other address, put an access token
    in the environment variable --token-env names; then open the page once as
    http://HOST:PORT/?token=TOKEN, or send 'Authorization: Bearer TOKEN'. It reads
    the daemon's snapshot while the daemon runs and never writes to the database:
    a label or an alert action given on the page is queued for the daemon to apply.
    """
    token = os.environ.get(token_env) or None
    # The web stack (Starlette, Jinja2, uvicorn) loads only for this command: every other
    # command, started hundreds of times a day by scripts and the daemon, skips its import.
    from listener.live_view import BrandView
    from listener.web import LiveApp, LiveServer, bind_refusal, start_in_thread

    refusal = bind_refusal(host, token, token_env)
    if refusal:
        raise CliError(refusal, 2)
    moment = parse_as_of(as_of)
    settings = settings_from(ctx)
    database = settings.database
    try:
        reading_path(database)  # missing, a directory, not ours, an older schema: exit 2 now
    except DatabaseLockedError:
        pass  # the daemon holds it and has not published a snapshot yet: the page waits for it
    app = LiveApp(
        database=database,
        brands=tuple(BrandView(b.name, tuple(b.competitors), b.business_hours, b.care_goals) for b in settings.brands),
        scorer=VaderScorer(),
        clock=clock_from(ctx),
        token=token,
        refresh=refresh,
        as_of=moment,
    )
    try:
        server = LiveServer(app, host, port)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1) from exc
    access = f"access token from ${token_env} required" if token else "no access token: this machine only"
    click.echo(f"Serving the live view at {server.url} ({access}; read-only; Ctrl-C to stop)", err=True)
    sys.stderr.flush()
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    thread = start_in_thread(server)
    try:
        while not stop.wait(0.5):
            if not thread.is_alive():
                raise CliError("the server stopped unexpectedly; see the log", 1)
    finally:
        server.shutdown()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("Stopped.", err=True)


if __name__ == "__main__":  # pragma: no cover
    # Standalone, the request log goes to stderr (under 'listener', use 'listener -v serve').
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    serve(prog_name="listener serve")
