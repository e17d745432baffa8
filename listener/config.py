"""Loading and validating settings.

Precedence, highest first (tested in tests/listener/test_config.py):

1. command-line options (``--config``, ``--db``)
2. environment (``LISTENER_CONFIG``, ``LISTENER_DB``)
3. the config file (``--config`` / ``LISTENER_CONFIG`` / ``./listener.toml`` if present)
4. built-in defaults (database ``./listener.duckdb``)

A relative database path in a config file is relative to that file's folder, so a
daemon finds the same database whatever its working directory.

Validation collects every problem before failing, each naming its key, so a user
fixes a config in one pass. Settings are frozen once loaded. Secrets never appear
in the file: keys ending in ``_env`` name the environment variable that holds them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analysis.alert_rule import AlertRule
from analysis.care_goals import goal_problems, goal_targets
from connectors.base import BrandQuery
from connectors.registry import connector_module, installed
from connectors.settings import Setting, check_values, declared_settings, settings_table
from listener.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from analysis.care import BusinessHours

DEFAULT_DATABASE = Path("listener.duckdb")
_POSTGRES_URL = re.compile(r"postgres(?:ql)?://(?P<userinfo>[^@/]*@)?[^/?#]*(?:/[^?#]*)?(?:\?[^#]*)?")


def _postgres_url(url: str) -> str | None:
    """What is wrong with ``url`` as cluster mode's PostgreSQL URL, or None."""
    found = _POSTGRES_URL.fullmatch(url.strip())
    if found is None:
        return f"must be a PostgreSQL URL (postgresql://user@host:port/dbname), got {url!r}"
    if ":" in (found.group("userinfo") or "") or "password=" in url:
        return "must not contain the password: put it in an environment variable and name it with database.password_env"
    return None


DATABASE_SETTINGS = settings_table(
    Setting("path", str, str(DEFAULT_DATABASE), "The DuckDB file (in cluster mode: this daemon's own); relative "
            "to the config file's folder.", required=True),
    Setting("snapshot_max_age_seconds", int, 15, "While the daemon's jobs run long, analysts' snapshot is "
            "refreshed between batches once this old (seconds).", min=1, max=3600),
    Setting("url", str, "", "Cluster mode: the PostgreSQL the daemons lease their jobs from, "
            "postgresql://user@host:port/dbname, without the password.",
            check=lambda url: _postgres_url(url) if url else None, shown_default="none (one daemon, one file)"),
    Setting("password_env", str, "", "Environment variable holding PostgreSQL's password (cluster mode).",
            shown_default="none"),
    Setting("lease_seconds", int, 300, "How long a daemon that stopped answering keeps a job (cluster mode).",
            min=5, max=86400),
    Setting("lake", str, "", "Cluster mode: the shared directory the daemons publish Parquet into and "
            "`sql`, `export` and `campaigns report` read (docs/cluster.md, the lake); relative to the config "
            "file's folder.", shown_default="none (analysts read the file)"),
)
"""``[database]``'s keys (``budgets`` aside: a table of BUDGET_SETTINGS per source)."""
BUDGET_SETTINGS = settings_table(
    Setting("posts", int, 0, "Posts read per window per credential, for every daemon using it.",
            min=1, required=True, shown_default="none: required"),
    Setting("window_hours", int, 720, "The budget's window (hours).", min=1, max=24 * 366),
)
"""``[database.budgets.SOURCE]``'s keys: a credential's budget shared by the cluster."""
_CLUSTER_KEYS = ("url", "password_env", "lease_seconds", "budgets", "lake")
DEFAULT_CONFIG_NAME = "listener.toml"
DEFAULT_EVERY_MINUTES = 15


def resolve_name(value: str, known: Sequence[str], option: str, noun: str, hint: str = "") -> str:
    """``value`` as ``known`` spells it (an exact match first, else a case-insensitive one),
    or UnknownNameError naming it and listing ``known``: the one rule for every brand,
    campaign or source a command is given."""
    if value in known:
        return value
    matches = [name for name in known if name.casefold() == value.casefold()]
    if len(matches) == 1:
        return matches[0]
    raise UnknownNameError(option, noun, value, sorted(known, key=str.casefold), hint)

_LANG_CODE = re.compile(r"^[a-z]{2,3}$")
# Literal values under these names are refused: secrets belong in the environment.
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey")


# A brand's ``scorer``: its promoted learned model where there is one, then the
# configured scorers for the languages they declare, then VADER (listener.scoring).
AUTO_SCORER = "auto"
VADER_SCORER = "vader"


@dataclass(frozen=True)
class BrandSettings:
    """A brand: what to listen for (its query), whom it is compared with, and which
    scorer its mood counts: "auto", "vader", or the name of a [scorers.NAME] table."""

    query: BrandQuery
    competitors: tuple[str, ...] = ()
    scorer: str = AUTO_SCORER
    # When the brand's care team answers (analysis.care): time to first reply counts
    # these hours only. None: around the clock.
    business_hours: BusinessHours | None = None
    # Engagement goals (analysis.care_goals.GOALS) as (name, target): 'listener care' shows
    # the period's figure against each, with its interval.
    care_goals: tuple[tuple[str, float], ...] = ()

    @property
    def name(self) -> str:
        return self.query.brand


@dataclass(frozen=True)
class SourceSettings:
    name: str
    enabled: bool = True
    every_minutes: int = DEFAULT_EVERY_MINUTES
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class ScorerSettings:
    """A ``[scorers.NAME]`` table: a scorer of registered ``type`` (analysis.scorers)
    for the ``languages`` it covers, with its own ``options`` (its module's SETTINGS).
    Relative paths among the options are relative to ``base_dir``, the config's folder."""

    name: str
    type: str
    languages: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    base_dir: Path = Path(".")


@dataclass(frozen=True)
class HourlySettings:
    enabled: bool = True
    minute: int = 5


@dataclass(frozen=True)
class WebhookSettings:
    """Where alerts are posted (Slack-compatible JSON); the URL itself is a secret, read
    from the environment variable ``url_env`` at delivery time."""

    url_env: str
    timeout_seconds: float = 10.0
    attempts: int = 3


@dataclass(frozen=True)
class EmailSettings:
    """The SMTP server alerts are mailed through; the password comes from ``password_env``."""

    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    security: str = "starttls"  # starttls | ssl | none
    username: str = ""
    password_env: str = ""
    timeout_seconds: float = 20.0
    attempts: int = 3


@dataclass(frozen=True)
class AlertSettings:
    """The ``[alerts]`` section: the detection rule, the time zone whose hours of day
    the volume baseline follows, and the delivery channels (None: not configured)."""

    enabled: bool = True
    rule: AlertRule = AlertRule()
    timezone: str = "UTC"
    deliver_max_age_hours: int = 24
    webhook: WebhookSettings | None = None
    email: EmailSettings | None = None


@dataclass(frozen=True)
class ClusterSettings:
    """``database.url``: cluster mode (docs/cluster.md). Daemons lease their (source,
    brand) jobs from this PostgreSQL and commit batches there under the lease; the
    password is read from the environment variable ``password_env`` when connecting."""

    url: str
    password_env: str = ""
    lease_seconds: int = 300
    # ``database.budgets.SOURCE``: (posts, window hours) per credential of that source,
    # shared by every daemon using the same credential (storage.cluster.Budget).
    budgets: Mapping[str, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))
    # ``database.lake``: the shared directory the lake publisher writes and analysts read
    # (storage.lake); None: no lake, analysts read this daemon's file.
    lake: Path | None = None

    def password(self, environ: Mapping[str, str]) -> str | None:
        """The password from the environment; ConfigError naming the key when unset."""
        if not self.password_env:
            return None
        value = environ.get(self.password_env, "")
        if not value:
            raise ConfigError([f"database.password_env: environment variable {self.password_env} is not set"])
        return value


@dataclass(frozen=True)
class Settings:
    database: Path = DEFAULT_DATABASE
    # None: the single-machine default (one daemon, one DuckDB file).
    cluster: ClusterSettings | None = None
    # While the daemon's jobs run long or overlap, readers' snapshot is refreshed between
    # batches once it is this old (listener.daemon); a quiet daemon publishes after each job.
    snapshot_max_age_seconds: int = 15
    brands: tuple[BrandSettings, ...] = ()
    sources: tuple[SourceSettings, ...] = ()
    scorers: tuple[ScorerSettings, ...] = ()
    hourly: HourlySettings = HourlySettings()
    config_path: Path | None = None
    alerts: AlertSettings = AlertSettings()

    def brand(self, name: str) -> BrandSettings:
        """The configured brand ``name`` (case-insensitive), or UnknownNameError."""
        by_name = {b.name: b for b in self.brands}
        return by_name[resolve_name(name, list(by_name), "--brand", "brand", "add it as [[brands]] to the config")]

    def source(self, name: str) -> SourceSettings:
        """The configured source ``name``, or UnknownNameError."""
        by_name = {s.name: s for s in self.sources}
        return by_name[resolve_name(name, list(by_name), "--source", "source", "add a [sources.NAME] table")]

    @property
    def enabled_sources(self) -> tuple[SourceSettings, ...]:
        return tuple(s for s in self.sources if s.enabled)


class _Problems:
    """Collects validation problems so all of them are reported at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{key}: {message}")

    def unknown_keys(self, table: Mapping[str, Any], known: set[str], where: str) -> None:
        for key in table:
            if key not in known:
                expected = ", ".join(sorted(known))
                self.add(f"{where}.{key}" if where else key, f"unknown key (expected one of: {expected})")


def _table(raw: Any, key: str, problems: _Problems) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add(key, f"must be a table, got {type(raw).__name__}")
        return {}
    return raw


def _string_list(table: Mapping[str, Any], name: str, where: str, problems: _Problems) -> tuple[str, ...]:
    value = table.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(f"{where}.{name}", "must be a list of strings")
        return ()
    cleaned = tuple(v.strip() for v in value)
    if any(not v for v in cleaned):
        problems.add(f"{where}.{name}", "must not contain empty strings")
        return tuple(v for v in cleaned if v)
    return cleaned


def _integer(table: Mapping[str, Any], name: str, where: str, default: int, low: int, high: int, problems: _Problems) -> int:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(f"{where}.{name}", f"must be a whole number, got {value!r}")
        return default
    if not low <= value <= high:
        problems.add(f"{where}.{name}", f"must be between {low} and {high}, got {value}")
        return default
    return value


def _boolean(table: Mapping[str, Any], name: str, where: str, default: bool, problems: _Problems) -> bool:
    value = table.get(name, default)
    if not isinstance(value, bool):
        problems.add(f"{where}.{name}", f"must be true or false, got {value!r}")
        return default
    return value


_BRAND_LISTS = ("terms", "hashtags", "handles", "exclude", "exclude_authors", "languages", "competitors")

# How each platform spells an account, for ``own_accounts`` (as its mapper stores the
# author: X and Reddit user names, Mastodon's full user@instance, Bluesky's handle).
_ACCOUNT_FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    "x": (re.compile(r"@?[A-Za-z0-9_]{1,15}"), "an X user name like 'acme' or '@acme'"),
    "reddit": (re.compile(r"(u/)?[A-Za-z0-9_-]{3,20}"), "a Reddit user name like 'acme' or 'u/acme'"),
    "mastodon": (re.compile(r"@?[^@\s]+@[^@\s]+\.[^@\s]+"), "a full Mastodon handle like '@acme@mastodon.social'"),
    "bluesky": (re.compile(r"@?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"), "a Bluesky handle like 'acme.bsky.social'"),
}


def _own_accounts(entry: Mapping[str, Any], where: str, problems: _Problems) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``own_accounts = { x = ["acme"], ... }``: the brand's accounts per source, each in
    its platform's form; a source must be an installed connector."""
    where = f"{where}.own_accounts"
    table = _table(entry.get("own_accounts"), where, problems)
    names = installed()
    accounts: list[tuple[str, tuple[str, ...]]] = []
    for source in table:
        if source not in names:
            problems.add(f"{where}.{source}", f"no connector named {source!r} is installed (installed: {', '.join(names)})")
            continue
        values = _string_list(table, source, where, problems)
        form = _ACCOUNT_FORMS.get(source)
        for value in values:
            if form is not None and not form[0].fullmatch(value):
                problems.add(f"{where}.{source}", f"{value!r} is not {form[1]}")
        if values:
            accounts.append((source, values))
    return tuple(accounts)


def _care_goals(entry: Mapping[str, Any], where: str, problems: _Problems) -> tuple[tuple[str, float], ...]:
    """``care_goals = { response_rate = 0.8, reply_hours = 4, ... }``: targets of the goals
    analysis.care_goals.GOALS names, each within its range."""
    where = f"{where}.care_goals"
    table = _table(entry.get("care_goals"), where, problems)
    for name, message in goal_problems(table):  # the one check, shared with plan files
        problems.add(f"{where}.{name}", message)
    return goal_targets(table)


def _business_hours(entry: Mapping[str, Any], where: str, problems: _Problems) -> BusinessHours | None:
    value = entry.get("business_hours")
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(f"{where}.business_hours", f"must be a string like 'Mon-Fri 09:00-18:00 Europe/Berlin', got {value!r}")
        return None
    # Only a config with business hours needs analysis.care (and, through it, numpy):
    # every 'listener' start loads the config.
    from analysis.care import parse_business_hours  # noqa: PLC0415

    try:
        return parse_business_hours(value)
    except ValueError as exc:
        problems.add(f"{where}.business_hours", str(exc))
        return None


def _brands(raw: Any, problems: _Problems) -> tuple[BrandSettings, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add("brands", "must be an array of tables ([[brands]])")
        return ()
    brands: list[BrandSettings] = []
    for index, entry in enumerate(raw):
        where = f"brands[{index}]"
        if not isinstance(entry, Mapping):
            problems.add(where, "must be a table")
            continue
        problems.unknown_keys(entry, {"name", "scorer", "own_accounts", "business_hours", "care_goals",
                                      *_BRAND_LISTS}, where)
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.add(f"{where}.name", "is required and must be a non-empty string")
            continue
        where = f"brands[{index}] ({name})"
        lists = {key: _string_list(entry, key, where, problems) for key in _BRAND_LISTS}
        if not (lists["terms"] or lists["hashtags"] or lists["handles"]):
            problems.add(where, "needs at least one of terms, hashtags or handles to listen for")
        for tag in lists["hashtags"]:
            if not tag.startswith("#") or len(tag) < 2 or " " in tag:
                problems.add(f"{where}.hashtags", f"{tag!r} must look like '#word'")
        for handle in lists["handles"]:
            if not handle.startswith("@") or len(handle) < 2 or " " in handle:
                problems.add(f"{where}.handles", f"{handle!r} must look like '@name'")
        for lang in lists["languages"]:
            if not _LANG_CODE.match(lang):
                problems.add(f"{where}.languages", f"{lang!r} is not an ISO 639 code like 'en'")
        competitors = lists.pop("competitors")
        scorer = _string(entry, "scorer", where, AUTO_SCORER, problems)
        own = _own_accounts(entry, where, problems)
        hours = _business_hours(entry, where, problems)
        goals = _care_goals(entry, where, problems)
        brands.append(BrandSettings(BrandQuery(brand=name.strip(), own_accounts=own, **lists), competitors, scorer,
                                    hours, goals))

    names = [b.name.casefold() for b in brands]
    for brand in brands:
        if names.count(brand.name.casefold()) > 1:
            problems.add("brands", f"brand {brand.name!r} is defined more than once")
        for competitor in brand.competitors:
            if competitor.casefold() == brand.name.casefold():
                problems.add(f"brands ({brand.name}).competitors", "a brand cannot be its own competitor")
            elif competitor.casefold() not in names:
                problems.add(
                    f"brands ({brand.name}).competitors",
                    f"{competitor!r} is not a configured brand: add a [[brands]] entry for it so it is collected too",
                )
    return tuple(brands)


def _options(where: str, declared: Mapping[str, Setting], entry: Mapping[str, Any],
             problems: _Problems) -> Mapping[str, Any]:
    """A plugin's options checked against its Setting declarations (connectors.settings),
    defaults filled in; each problem named ``where.key``."""
    values, found = check_values(declared, entry)
    for key, message in found:
        problems.add(f"{where}.{key}", message)
    return MappingProxyType(values)


def _sources(raw: Any, problems: _Problems) -> tuple[SourceSettings, ...]:
    table = _table(raw, "sources", problems)
    names = installed()
    sources: list[SourceSettings] = []
    for name, entry in table.items():
        where = f"sources.{name}"
        if name not in names:
            problems.add(where, f"no connector named {name!r} is installed (installed: {', '.join(names)})")
            continue
        entry = _table(entry, where, problems)
        declared = declared_settings(connector_module(name))
        for key, value in entry.items():
            if key in {"enabled", "every_minutes"} or key in declared:
                continue
            if any(word in key.lower() for word in _SECRET_WORDS) and not key.endswith("_env"):
                problems.add(
                    f"{where}.{key}",
                    "secrets must not be written in the config file: put the value in an environment "
                    f"variable and name it with {key}_env",
                )
            else:
                expected = ", ".join(sorted({"enabled", "every_minutes", *declared}))
                problems.add(f"{where}.{key}", f"unknown key (expected one of: {expected})")
        options = _options(where, declared, entry, problems)
        sources.append(
            SourceSettings(
                name=name,
                enabled=_boolean(entry, "enabled", where, True, problems),
                every_minutes=_integer(entry, "every_minutes", where, DEFAULT_EVERY_MINUTES, 1, 7 * 24 * 60, problems),
                options=options,
            )
        )
    return tuple(sources)


def _scorers(raw: Any, base_dir: Path, problems: _Problems) -> tuple[ScorerSettings, ...]:
    """The ``[scorers.NAME]`` tables, checked against their type's SETTINGS. The scorer
    itself is made when a command scores (listener.scoring): loading a model is slow."""
    from analysis.scorers import installed as installed_scorers, scorer_module  # noqa: PLC0415

    table = _table(raw, "scorers", problems)
    scorers: list[ScorerSettings] = []
    for name, entry in table.items():
        where = f"scorers.{name}"
        entry = _table(entry, where, problems)
        if name.casefold() in (AUTO_SCORER, VADER_SCORER, "learned"):
            problems.add(where, f"{name!r} is a built-in scorer's name: give this table another name")
            continue
        kind = entry.get("type", name)
        types = [t for t in installed_scorers() if t != VADER_SCORER]
        if not isinstance(kind, str) or kind not in types:
            problems.add(f"{where}.type", f"{kind!r} is not an installed scorer type (installed: {', '.join(types) or 'none'})")
            continue
        declared = declared_settings(scorer_module(kind))
        for key in entry:
            if key not in {"type", "languages", *declared}:
                problems.add(f"{where}.{key}", f"unknown key (expected one of: {', '.join(sorted({'type', 'languages', *declared}))})")
        languages = _string_list(entry, "languages", where, problems)
        if not languages:
            problems.add(f"{where}.languages", "is required: the ISO 639 codes this scorer covers, e.g. [\"de\", \"fr\"]")
        for lang in languages:
            if not _LANG_CODE.match(lang):
                problems.add(f"{where}.languages", f"{lang!r} is not an ISO 639 code like 'de'")
        options = _options(where, declared, entry, problems)
        scorers.append(ScorerSettings(name, kind, tuple(lang.casefold() for lang in languages), options, base_dir))
    return tuple(scorers)


def _check_brand_scorers(brands: Sequence[BrandSettings], scorers: Sequence[ScorerSettings], problems: _Problems) -> None:
    known = [AUTO_SCORER, VADER_SCORER, *(s.name for s in scorers)]
    for index, brand in enumerate(brands):
        if brand.scorer not in known:
            problems.add(f"brands[{index}] ({brand.name}).scorer",
                         f"{brand.scorer!r} is not a scorer: use one of {', '.join(known)} (add [scorers.NAME] for another)")


def _number(table: Mapping[str, Any], name: str, where: str, default: float, low: float, high: float,
            problems: _Problems) -> float:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.add(f"{where}.{name}", f"must be a number, got {value!r}")
        return default
    if not low <= value <= high:
        problems.add(f"{where}.{name}", f"must be between {low:g} and {high:g}, got {value:g}")
        return default
    return float(value)


def _env_name(table: Mapping[str, Any], name: str, where: str, problems: _Problems) -> str:
    value = table.get(name, "")
    if not isinstance(value, str) or (value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value)):
        problems.add(f"{where}.{name}", "must name an environment variable (letters, digits, _), not hold a secret")
        return ""
    return value


def _string(table: Mapping[str, Any], name: str, where: str, default: str, problems: _Problems) -> str:
    value = table.get(name, default)
    if not isinstance(value, str):
        problems.add(f"{where}.{name}", f"must be a string, got {value!r}")
        return default
    return value.strip()


def _refuse_literal_secrets(table: Mapping[str, Any], where: str, secrets: Mapping[str, str],
                            problems: _Problems) -> None:
    """A secret written in the file is refused, naming the _env key to use instead."""
    for key, env_key in secrets.items():
        if key in table:
            problems.add(f"{where}.{key}", "secrets must not be written in the config file: put the value in an "
                                           f"environment variable and name it with {env_key}")


_RULE_KEYS: dict[str, tuple[type, float, float]] = {
    # key: (type, low, high)
    "baseline_days": (int, 1, 90),
    "warmup_days": (int, 1, 90),
    "scale_days": (int, 1, 365),
    "ewma_lambda": (float, 0.01, 1.0),
    "limit_sigmas": (float, 0.5, 20.0),
    "min_mentions": (int, 1, 1_000_000),
    "min_nss_change": (float, 0.0, 200.0),
    "min_volume_ratio": (float, 1.0, 1000.0),
    "cooldown_hours": (int, 0, 24 * 365),
    "max_wait_hours": (int, 1, 24 * 7),
    "min_coverage": (float, 0.0, 1.0),
}
_WEBHOOK_KEYS = {"enabled", "url_env", "timeout_seconds", "attempts"}
_EMAIL_KEYS = {"enabled", "host", "port", "security", "username", "password_env", "from", "to",
               "timeout_seconds", "attempts"}
SMTP_SECURITY = ("starttls", "ssl", "none")
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")


def _webhook(raw: Any, problems: _Problems) -> WebhookSettings | None:
    where = "alerts.webhook"
    table = _table(raw, where, problems)
    if raw is None:
        return None
    _refuse_literal_secrets(table, where, {"url": "url_env"}, problems)
    problems.unknown_keys({k: v for k, v in table.items() if k != "url"}, _WEBHOOK_KEYS, where)
    enabled = _boolean(table, "enabled", where, True, problems)
    url_env = _env_name(table, "url_env", where, problems)
    timeout = _number(table, "timeout_seconds", where, 10.0, 0.1, 300.0, problems)
    attempts = _integer(table, "attempts", where, 3, 1, 10, problems)
    if not enabled:
        return None
    if not url_env:
        problems.add(f"{where}.url_env", "is required: the environment variable holding the webhook URL")
        return None
    return WebhookSettings(url_env=url_env, timeout_seconds=timeout, attempts=attempts)


def _email(raw: Any, problems: _Problems) -> EmailSettings | None:
    where = "alerts.email"
    table = _table(raw, where, problems)
    if raw is None:
        return None
    _refuse_literal_secrets(table, where, {"password": "password_env"}, problems)
    problems.unknown_keys({k: v for k, v in table.items() if k != "password"}, _EMAIL_KEYS, where)
    enabled = _boolean(table, "enabled", where, True, problems)
    host = _string(table, "host", where, "", problems)
    port = _integer(table, "port", where, 587, 1, 65535, problems)
    security = _string(table, "security", where, "starttls", problems)
    if security not in SMTP_SECURITY:
        problems.add(f"{where}.security", f"must be one of {', '.join(SMTP_SECURITY)}, got {security!r}")
    username = _string(table, "username", where, "", problems)
    password_env = _env_name(table, "password_env", where, problems)
    sender = _string(table, "from", where, "", problems)
    to = _string_list(table, "to", where, problems)
    timeout = _number(table, "timeout_seconds", where, 20.0, 0.1, 300.0, problems)
    attempts = _integer(table, "attempts", where, 3, 1, 10, problems)
    if not enabled:
        return None
    if not host:
        problems.add(f"{where}.host", "is required: the SMTP server's host name")
    if not _ADDRESS.fullmatch(sender):
        problems.add(f"{where}.from", f"must be an e-mail address, got {sender!r}")
    if not to:
        problems.add(f"{where}.to", "must list at least one e-mail address")
    for address in to:
        if not _ADDRESS.fullmatch(address):
            problems.add(f"{where}.to", f"{address!r} is not an e-mail address")
    if password_env and not username:
        problems.add(f"{where}.username", "is required when password_env is set")
    return EmailSettings(host=host, sender=sender, to=to, port=port, security=security, username=username,
                         password_env=password_env, timeout_seconds=timeout, attempts=attempts)


def _alerts(raw: Any, problems: _Problems) -> AlertSettings:
    where = "alerts"
    table = _table(raw, where, problems)
    problems.unknown_keys(table, {"enabled", "timezone", "deliver_max_age_hours", "webhook", "email", *_RULE_KEYS},
                          where)
    defaults = AlertRule()
    values: dict[str, Any] = {}
    for key, (kind, low, high) in _RULE_KEYS.items():
        default = getattr(defaults, key)
        if kind is int:
            values[key] = _integer(table, key, where, default, int(low), int(high), problems)
        else:
            values[key] = _number(table, key, where, default, low, high, problems)
    timezone_name = _string(table, "timezone", where, "UTC", problems)
    try:
        ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(f"{where}.timezone", f"{timezone_name!r} is not a time zone name like America/New_York")
        timezone_name = "UTC"
    return AlertSettings(
        enabled=_boolean(table, "enabled", where, True, problems),
        rule=AlertRule(**values),
        timezone=timezone_name,
        deliver_max_age_hours=_integer(table, "deliver_max_age_hours", where, 24, 1, 24 * 30, problems),
        webhook=_webhook(table.get("webhook"), problems),
        email=_email(table.get("email"), problems),
    )


def parse_settings(data: Mapping[str, Any], *, base_dir: Path, origin: str, config_path: Path | None = None) -> Settings:
    """Validate a parsed TOML document; raises ConfigError listing every problem."""
    problems = _Problems()
    problems.unknown_keys(data, {"database", "brands", "sources", "scorers", "hourly", "alerts"}, "")
    database_table = _table(data.get("database"), "database", problems)
    _refuse_literal_secrets(database_table, "database", {"password": "password_env"}, problems)
    problems.unknown_keys({k: v for k, v in database_table.items() if k != "password"},
                          {*DATABASE_SETTINGS, "budgets"}, "database")
    database_values = _options("database", DATABASE_SETTINGS, database_table, problems)
    cluster = _cluster(database_table, database_values, problems)
    snapshot_max_age = database_values["snapshot_max_age_seconds"]
    database = DEFAULT_DATABASE
    if "path" in database_table and database_values["path"] == database_table["path"]:
        try:
            database = _database_path(database_values["path"])
        except ValueError as exc:
            problems.add("database.path", str(exc))
        if not database.is_absolute():
            database = base_dir / database
    brands = _brands(data.get("brands"), problems)
    sources = _sources(data.get("sources"), problems)
    if cluster is not None:
        cluster = dataclasses.replace(cluster, budgets=_budgets(database_table.get("budgets"), sources, problems),
                                      lake=_lake(database_values["lake"] or None, base_dir, problems))
    scorers = _scorers(data.get("scorers"), base_dir, problems)
    _check_brand_scorers(brands, scorers, problems)
    hourly_table = _table(data.get("hourly"), "hourly", problems)
    problems.unknown_keys(hourly_table, {"enabled", "minute"}, "hourly")
    hourly = HourlySettings(
        enabled=_boolean(hourly_table, "enabled", "hourly", True, problems),
        minute=_integer(hourly_table, "minute", "hourly", 5, 0, 59, problems),
    )
    alerts = _alerts(data.get("alerts"), problems)
    if problems.items:
        raise ConfigError(problems.items, origin)
    return Settings(database=database, cluster=cluster, snapshot_max_age_seconds=snapshot_max_age, brands=brands, sources=sources, scorers=scorers, hourly=hourly, config_path=config_path,
                    alerts=alerts)


def _cluster(table: Mapping[str, Any], values: Mapping[str, Any], problems: _Problems) -> ClusterSettings | None:
    """``database.url`` and its companions (checked as DATABASE_SETTINGS); None (single
    machine) without a url."""
    if not table.get("url"):
        for key in _CLUSTER_KEYS[1:]:
            if key in table:
                problems.add(f"database.{key}", "only applies with database.url (cluster mode)")
        return None
    if values["url"] != table["url"]:
        return None  # refused: named already
    return ClusterSettings(url=values["url"].strip(), password_env=values["password_env"],
                           lease_seconds=values["lease_seconds"])


def _budgets(raw: Any, sources: Sequence[SourceSettings], problems: _Problems) -> Mapping[str, tuple[int, int]]:
    """``[database.budgets.SOURCE]`` (BUDGET_SETTINGS): ``posts`` per ``window_hours``,
    per credential, reserved by each request of the source's connector, which must bill
    per post (declare ``max_posts_per_run``)."""
    budgets = {}
    by_name = {source.name: source for source in sources}
    for name, entry in _table(raw, "database.budgets", problems).items():
        where = f"database.budgets.{name}"
        table = _table(entry, where, problems)
        problems.unknown_keys(table, set(BUDGET_SETTINGS), where)
        if name not in by_name:
            problems.add(where, f"no [sources.{name}] table to budget")
        elif "max_posts_per_run" not in by_name[name].options:
            problems.add(where, f"sources.{name} is not billed per post (no max_posts_per_run): it has no "
                                "per-request budget to share")
        if "posts" not in table:
            problems.add(f"{where}.posts", "is required: the posts per window the credential may read")
        values = _options(where, BUDGET_SETTINGS, table, problems)
        budgets[name] = (values["posts"], values["window_hours"])
    return MappingProxyType(budgets)


def _lake(raw: Any, base_dir: Path, problems: _Problems) -> Path | None:
    """``database.lake``: a directory (relative to the config file's folder), or None."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        problems.add("database.lake", "must be a non-empty string: the lake's shared directory")
        return None
    path = Path(raw.strip()).expanduser()
    if path.exists() and not path.is_dir():
        problems.add("database.lake", f"{raw} is a file, not a directory")
        return None
    return path if path.is_absolute() else base_dir / path


def _database_path(text: str) -> Path:
    """``text`` as a path, ``~`` expanded; ValueError for what no file system can open."""
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "~name" of a user that does not exist
        raise ValueError(f"{text!r}: cannot expand '~' (no such user or no home directory)") from None


def load_file(path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"], "command line") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot be read ({exc})"], "command line") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(path)) from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a few thousand
        # levels exhaust the stack. No real config nests more than a few levels.
        raise ConfigError(["not valid TOML: arrays or inline tables nested too deeply"], str(path)) from None
    return parse_settings(data, base_dir=path.parent, origin=str(path), config_path=path)


def resolve_config_path(option: str | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    """--config > LISTENER_CONFIG > ./listener.toml if it exists > none."""
    if option:
        return Path(option)
    if env.get("LISTENER_CONFIG"):
        return Path(env["LISTENER_CONFIG"])
    default = cwd / DEFAULT_CONFIG_NAME
    return default if default.exists() else None


def load_settings(
    config_option: str | None = None,
    db_option: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Settings from every layer, highest precedence first (see module docstring)."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    path = resolve_config_path(config_option, env, cwd)
    settings = load_file(path) if path is not None else Settings()
    database = db_option or env.get("LISTENER_DB")
    if database:
        try:
            database_path = _database_path(database)
        except ValueError as exc:
            raise ConfigError([f"{'--db' if db_option else 'LISTENER_DB'}: {exc}"], "command line") from None
        settings = dataclasses.replace(settings, database=database_path)
    return settings
