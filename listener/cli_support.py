"""What every ``listener`` command shares: error translation (by listener.policy),
--config/--db, settings, the clock, the run log's filter, opening the database for
reading, parsing times, and resolving the brand or campaign a command is given. Command
modules import from here (not from listener.cli, which imports them). It stays outside
the listener.cli package: a command module outside it (listener.commands_serve) imports
it, and importing anything inside the package first runs the package's __init__, which
imports that command module back."""

from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import click

from connectors.base import Clock, utc_now
from listener.config import DEFAULT_CONFIG_NAME, Settings, load_settings, resolve_name
from listener.policy import HANDLED, exit_code

if TYPE_CHECKING:
    from storage.analyst import ReadSource
    from storage.store import Store

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _WithoutRunLog(logging.Filter):
    """Drops the run log (``listener.runs``: each pull's and hourly stage's outcome)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("listener.runs")


WITHOUT_RUN_LOG = _WithoutRunLog()


class CliError(click.ClickException):
    """Printed as ``Error: ...`` on stderr with the given exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _root_obj(ctx: click.Context) -> dict[str, Any]:
    return ctx.find_root().ensure_object(dict)


def _store_in_root(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None:
        _root_obj(ctx)[param.name] = value
    return value


def common_options(command: F) -> F:
    """``--config`` and ``--db`` on a command (they also work before the command name)."""
    command = click.option(
        "--db", "db", metavar="PATH", default=None, expose_value=False, callback=_store_in_root,
        help="Database file (overrides LISTENER_DB and the config file).",
    )(command)
    command = click.option(
        "--config", "config", metavar="PATH", default=None, expose_value=False, callback=_store_in_root,
        help=f"Config file (default: LISTENER_CONFIG, else ./{DEFAULT_CONFIG_NAME} if present).",
    )(command)
    return command


def handle_errors(command: F) -> F:
    """Translate our exceptions into ``Error: ...`` and the exit code listener.policy
    gives them (2 for config and usage errors, unknown names and bad input files
    included, else 1); an error the policy does not know is a bug and keeps its
    traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HANDLED as exc:
            raise CliError(str(exc), exit_code(exc)) from exc

    return wrapper  # type: ignore[return-value]


def command_name() -> str:
    """How the user can run ``listener`` again, for the commands we suggest: ``listener``
    when their PATH finds this very program, else the path they ran it by
    (``.venv/bin/listener`` after the quick start, which puts nothing on PATH), else
    ``python -m listener.cli``."""
    ran = sys.argv[0]
    if not ran or os.path.basename(ran) == "__main__.py":  # python -m listener.cli
        return f"{shlex.quote(sys.executable)} -m listener.cli"
    found = shutil.which(os.path.basename(ran))
    if found and os.path.realpath(found) == os.path.realpath(ran):
        return os.path.basename(ran)
    return shlex.quote(ran)


def settings_from(ctx: click.Context) -> Settings:
    obj = _root_obj(ctx)
    return load_settings(obj.get("config"), obj.get("db"))


def clock_from(ctx: click.Context) -> Clock:
    return _root_obj(ctx).get("clock", utc_now)


def say_reading(source: ReadSource) -> None:
    """Tell the user when a command reads the daemon's snapshot, not the database."""
    if source.is_snapshot:
        click.echo(f"The daemon holds the database; reading its snapshot of "
                   f"{source.published_at:%Y-%m-%d %H:%M:%S} UTC.", err=True)


def open_existing(settings: Settings) -> Store:
    """The database for reading, read-only and never migrated; while the daemon holds
    it, its published snapshot (storage.analyst.reading_path decides and checks, for
    every reading command alike)."""
    # Imported here, not at the top: the root group imports this module, and
    # 'listener --help' or 'listener CMD --help' need no database (sqlalchemy, duckdb).
    from storage.analyst import reading_path  # noqa: PLC0415
    from storage.errors import StorageError  # noqa: PLC0415
    from storage.migrations import require_current  # noqa: PLC0415
    from storage.store import Store  # noqa: PLC0415

    source = reading_path(settings.database)
    say_reading(source)
    store = Store.open(source.path, read_only=True)
    if source.is_snapshot:
        try:
            require_current(store.version, source.path)
        except StorageError:
            store.close()
            raise
    return store


def known_brands(settings: Settings, stored: Sequence[str] = ()) -> list[str]:
    """The brands a command accepts: the configured ones, then those with stored mentions
    (``stored``), each once. The one rule for --brand and for brands named in input files."""
    return list(dict.fromkeys([*(b.name for b in settings.brands), *stored]))


def resolve_brand(value: str | None, settings: Settings, stored: Sequence[str] = ()) -> str | None:
    """The brand ``--brand`` names, spelled as configured or stored (``stored``: the
    brands with mentions in the database), or a usage error (exit 2) listing them. A
    command that collects (pull, import) needs the brand's query: it passes no
    ``stored`` and uses ``settings.brand``, which applies the same rule."""
    if value is None:
        return None
    return resolve_name(value, known_brands(settings, stored), "--brand", "brand", "configure it, or collect or import its mentions first")


def resolve_campaign(value: str | None, planned: Sequence[str]) -> str | None:
    """The campaign ``--campaign`` names among those with a stored plan, or a usage error
    (exit 2) listing them."""
    if value is None:
        return None
    return resolve_name(value, planned, "--campaign", "campaign",
                        "import a plan with 'listener campaigns import FILE --plan PLAN'")


def parse_as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"--as-of: {value!r} is not an ISO-8601 time like 2026-11-22T18:00Z", 2) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO date or time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option}: {value!r} is not an ISO-8601 date or time like 2026-11-01 or "
                       f"2026-11-01T08:00Z", 2) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
