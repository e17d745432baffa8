"""The config loader against hostile documents, files and settings.

Properties: ``parse_settings`` and ``load_file`` return Settings or raise ConfigError,
whose every problem starts with the key it is about (a key of the document, or the
file for a file that cannot be read as TOML); ``load_settings`` reports a bad ``--db`` /
``LISTENER_DB`` as ConfigError too; and every connector factory, given option values
of the types the loader lets through, builds a connector, parks itself (ConnectorError:
missing credentials) or refuses with a ValueError naming the key (which
``listener.sources.open_sources`` turns into a ConfigError, exit 2).
"""

from __future__ import annotations

import inspect
import itertools
import shutil
import math
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from connectors.errors import ConnectorError
from connectors.registry import available
from listener.config import Settings, load_file, load_settings, parse_settings
from listener.errors import ConfigError
from tests.property.strategies import (
    SCRIPT, assert_names_the_problem, broken, toml_document, toml_text, toml_values,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
_FILES = itertools.count()
_DIR = Path(tempfile.mkdtemp(prefix="property-config-"))


def teardown_module() -> None:
    shutil.rmtree(_DIR, ignore_errors=True)


VALID = {
    "database": {"path": "data/listener.duckdb"},
    "brands": [
        {"name": "Acme", "terms": ["acme", "acme co"], "hashtags": ["#acme"], "handles": ["@acme"],
         "exclude": ["jobs"], "exclude_authors": ["@spam"], "languages": ["en"], "competitors": ["Globex"]},
        {"name": "Globex", "terms": ["globex"]},
    ],
    "sources": {
        "demo": {"enabled": True, "every_minutes": 15, "seed": 7, "history_days": 3},
        "hackernews": {"enabled": False, "history_days": 7, "hits_per_page": 100, "timeout_seconds": 30.0},
        "x": {"enabled": False, "bearer_token_env": "X_BEARER_TOKEN", "max_posts_per_run": 1000},
        "mastodon": {"instances": ["https://mastodon.social"], "access_token_env": ""},
    },
    "hourly": {"enabled": True, "minute": 5},
}
_TOP_KEYS = ("database", "brands", "sources", "hourly")


def check_problems(exc: ConfigError, data: dict) -> None:
    """Every problem names the key it is about: it starts with a key of the document."""
    assert exc.problems
    assert_names_the_problem(exc)
    for problem in exc.problems:
        assert ": " in problem, problem
        assert any(problem.startswith(key) for key in data), (problem, list(data))


documents = st.one_of(
    broken(VALID, toml_values, toml_text),
    st.fixed_dictionaries({}, optional={key: toml_values for key in _TOP_KEYS}),
    st.dictionaries(toml_text, toml_values, max_size=3),
)


@given(data=documents)
@example(data=VALID)
@example(data={"database": {"path": "~no_such_user_here/listener.duckdb"}})
@example(data={"database": {"path": "db\x00.duckdb"}})
@example(data={"brands": [{"name": SCRIPT, "terms": [SCRIPT, "\u202e"]}]})
def test_parse_settings_returns_settings_or_config_error(data):
    try:
        settings = parse_settings(data, base_dir=Path("/cfg"), origin="hostile.toml")
    except ConfigError as exc:
        check_problems(exc, data)
        assert str(exc).startswith("hostile.toml has ")
    else:
        assert isinstance(settings, Settings)


def test_the_valid_template_is_valid():
    settings = parse_settings(VALID, base_dir=Path("/cfg"), origin="test")
    assert [b.name for b in settings.brands] == ["Acme", "Globex"]


@given(data=documents)
def test_load_file_reads_what_it_wrote_or_says_why(data):
    path = _DIR / f"c{next(_FILES)}.toml"
    path.write_text(toml_document(data), encoding="utf-8")
    try:
        load_file(path)
    except ConfigError as exc:
        assert_names_the_problem(exc)
        if exc.problems[0].startswith("not valid TOML"):
            assert exc.source == str(path)  # the file is named: the problem is its syntax
        else:
            check_problems(exc, data)


@given(content=st.one_of(st.binary(max_size=300), toml_text.map(lambda s: s.encode("utf-8", "surrogatepass"))))
@example(content=b"\xff\xfe\x00")
@example(content="[database]\npath = \"\\ud800\"\n".encode())
def test_load_file_of_any_bytes(content):
    path = _DIR / f"b{next(_FILES)}.toml"
    path.write_bytes(content)
    try:
        load_file(path)
    except ConfigError as exc:
        assert_names_the_problem(exc)


def test_load_file_of_a_directory_or_nothing():
    for path in (_DIR, _DIR / "missing.toml"):
        with pytest.raises(ConfigError) as raised:
            load_file(path)
        assert str(path) in str(raised.value)


@given(db=st.one_of(toml_text.filter(bool), st.sampled_from(["~no_such_user_here/x.duckdb", "a\x00b"])),
       as_option=st.booleans())
@example(db="~no_such_user_here/x.duckdb", as_option=True)
@example(db="~no_such_user_here/x.duckdb", as_option=False)
def test_database_option_and_environment(db, as_option):
    env = {} if as_option else {"LISTENER_DB": db}
    try:
        settings = load_settings(None, db if as_option else None, env=env, cwd=_DIR)
    except ConfigError as exc:
        assert exc.problems[0].startswith("--db: " if as_option else "LISTENER_DB: ")
    else:
        assert isinstance(settings.database, Path)


# -- connector factories: the values the loader lets through ------------------------------

CREDENTIALS = {
    "X_BEARER_TOKEN": "t", "REDDIT_CLIENT_ID": "i", "REDDIT_CLIENT_SECRET": "s",
    "BLUESKY_HANDLE": "h.example", "BLUESKY_APP_PASSWORD": "p", "OTHER_VAR": "v",
}
_ints = st.one_of(st.integers(-5, 5), st.integers(-(2**63), 2**63 - 1), st.sampled_from([10**9, 10**6, 2**63 - 1]))
_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 100))
_urls = st.one_of(toml_text, st.sampled_from(["https://example.com", "http://[bad", "https://", "wss://x.example"]))


def _option(key: str, kind: type, default):
    if key.endswith("_env"):
        return st.sampled_from([default, "", "OTHER_VAR", "UNSET_VAR"])
    if kind is bool:
        return st.booleans()
    if kind is int:
        if key == "history_days" and isinstance(default, int) and default >= 60:  # demo: builds a world
            return st.one_of(st.integers(max_value=0), st.integers(1, 2), st.integers(min_value=3651))
        return _ints
    if kind is float:
        return _floats
    if kind is list:
        return st.lists(_urls, max_size=3)
    return st.one_of(_urls, st.just(default)) if "url" in key or key == "mode" else st.one_of(toml_text, st.just(default))


def _settings_strategy(module):
    declared = getattr(module, "SETTINGS", {})
    return st.fixed_dictionaries({}, optional={k: _option(k, s.type, s.default) for k, s in declared.items()})


MODULES = available()


def _create(module, options):
    params = inspect.signature(module.create).parameters
    kwargs = {"env": CREDENTIALS} if "env" in params else {}
    return module.create(options, lambda: NOW, **kwargs)


def _check_factory(name: str, options: dict) -> None:
    """Builds (then the numbers are usable), parks (ConnectorError) or names the key."""
    module = MODULES[name]
    try:
        connector = _create(module, options)
    except ConnectorError as exc:
        assert_names_the_problem(exc)
    except ValueError as exc:
        assert_names_the_problem(exc)
        declared = getattr(module, "SETTINGS", {})
        assert any(key in str(exc) for key in declared), str(exc)
    else:
        for key in ("timeout_seconds", "request_timeout", "jetstream_max_seconds"):
            value = options.get(key)
            if isinstance(value, (int, float)):
                assert math.isfinite(value) and value > 0, f"{name}: accepted {key} = {value!r}"
        for key, value in options.items():
            unit = key.rsplit("_", 1)[-1]
            if unit in ("days", "hours", "minutes", "seconds") and isinstance(value, int) and (name, key) not in CAPPED:
                NOW - timedelta(**{unit: value})  # an accepted span must be usable from now
        connector.close()


CAPPED = {("x", "history_days")}  # X caps it at 7 (recent search) before using it


@pytest.mark.parametrize("name", sorted(MODULES))
@given(data=st.data())
def test_connector_factories_build_park_or_name_the_key(name, data):
    _check_factory(name, data.draw(_settings_strategy(MODULES[name]), label="options"))


EXTREMES = (float("nan"), float("inf"), float("-inf"), -1, 0, 1, 10**6, 10**9, 2**63 - 1, 1e300)
NUMERIC_KEYS = sorted(
    (name, key) for name, module in MODULES.items()
    for key, setting in getattr(module, "SETTINGS", {}).items() if setting.type in (int, float)
)


@pytest.mark.parametrize(("name", "key"), NUMERIC_KEYS)
def test_every_numeric_setting_at_its_extremes(name, key):
    """Each numeric setting alone at each extreme the TOML loader lets through
    (floats only for float keys: the loader refuses a float where a whole number goes)."""
    kind = MODULES[name].SETTINGS[key].type
    for value in EXTREMES:
        if kind is int and isinstance(value, float):
            continue
        if name == "demo" and key == "history_days" and value == 1:
            value = 2  # any small history; builds the (lazy) simulated world
        _check_factory(name, {key: value})
