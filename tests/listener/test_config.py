from pathlib import Path

import pytest

from listener.config import DEFAULT_DATABASE, load_file, load_settings, parse_settings
from listener.demo import starter_config_text
from listener.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def parse(text: str, base: Path = Path("/cfg")):
    import tomllib

    return parse_settings(tomllib.loads(text), base_dir=base, origin="test.toml")


def test_the_example_config_loads_and_documents_every_key():
    settings = load_file(ROOT / "config.example.toml")
    assert [b.name for b in settings.brands] == ["Brewly", "Beanhaus"]
    assert settings.database == ROOT / "listener.duckdb"
    demo = settings.source("demo")
    assert demo.every_minutes == 15 and demo.options["seed"] == 7
    text = (ROOT / "config.example.toml").read_text()
    from connectors.registry import available

    for name, module in available().items():
        for key in module.SETTINGS:
            assert f"{key} =" in text, f"config.example.toml does not document sources.{name}.{key}"


def test_reading_a_config_imports_only_the_connectors_it_names(tmp_path):
    """Every command reads the config; importing every connector's client library for it
    cost each command over a second (atproto alone ~1.2 s of CPU)."""
    import subprocess
    import sys

    (tmp_path / "listener.toml").write_text(starter_config_text())  # the demo source only
    probe = ("import sys; from pathlib import Path; from listener.config import load_file; load_file(Path(sys.argv[1])); "
             "print(sorted(m for m in ('connectors.x', 'connectors.reddit', 'connectors.mastodon', "
             "'connectors.bluesky', 'connectors.feeds', 'connectors.hackernews', 'atproto', 'tweepy', "
             "'praw', 'mastodon') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "listener.toml")], capture_output=True,
                          text=True, check=True, cwd=ROOT)
    assert proc.stdout.strip() == "[]", proc.stdout


def test_the_starter_config_loads():
    settings = parse(starter_config_text())
    assert settings.brands[0].competitors == ("Beanhaus", "Kettle & Co")


def test_every_problem_is_reported_at_once_naming_its_key():
    text = """
    colour = "blue"
    [database]
    path = 3
    [[brands]]
    name = "Acme"
    terms = ["acme", ""]
    hashtags = ["acme"]
    languages = ["English"]
    competitors = ["Globex"]
    [[brands]]
    terms = ["x"]
    [sources.demo]
    every_minutes = 0
    seed = "seven"
    api_token = "abc123"
    [sources.nowhere]
    [hourly]
    minute = 75
    """
    with pytest.raises(ConfigError) as caught:
        parse(text)
    problems = caught.value.problems
    expected_keys = [
        "colour", "database.path", "brands[0] (Acme).terms", "brands[0] (Acme).hashtags",
        "brands[0] (Acme).languages", "brands (Acme).competitors", "brands[1].name",
        "sources.demo.every_minutes", "sources.demo.seed", "sources.demo.api_token", "sources.nowhere", "hourly.minute",
    ]
    for key in expected_keys:
        assert any(p.startswith(key + ":") for p in problems), f"no problem names {key}: {problems}"
    assert len(problems) == len(expected_keys)
    secret = next(p for p in problems if p.startswith("sources.demo.api_token"))
    assert "api_token_env" in secret and "abc123" not in secret


def test_brand_without_anything_to_listen_for():
    with pytest.raises(ConfigError, match=r"brands\[0\] \(Acme\): needs at least one of terms"):
        parse('[[brands]]\nname = "Acme"\n')


def test_invalid_toml_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[brands]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"(?s)bad.toml.*line 1"):
        load_file(path)


@pytest.mark.parametrize("value", ["[" * 5000 + "]" * 5000, "{a = " * 5000 + "1" + "}" * 5000])
def test_toml_nested_too_deeply_is_a_config_error_not_a_recursion_error(tmp_path, value):
    path = tmp_path / "deep.toml"
    path.write_text(f'[[brands]]\nname = "Acme"\nterms = ["acme"]\nx = {value}\n')
    with pytest.raises(ConfigError, match=r"(?s)deep.toml has 1 problem.*nested too deeply"):
        load_file(path)


def test_an_unknown_brand_or_source_names_it_and_lists_the_known_ones():
    settings = parse('[[brands]]\nname = "Acme"\nterms = ["acme"]\n[[brands]]\nname = "Globex"\nterms = ["g"]\n'
                     '[sources.demo]\n')
    assert settings.brand("acme").name == "Acme"
    with pytest.raises(ConfigError) as brand:
        settings.brand("Nope")
    assert str(brand.value) == "--brand: no brand named 'Nope' (brands: Acme, Globex)"
    assert brand.value.exit_code == 2
    with pytest.raises(ConfigError, match=r"^--source: no source named 'nope' \(sources: demo\)$"):
        settings.source("nope")


def test_relative_database_path_is_relative_to_the_config_file(tmp_path):
    path = tmp_path / "conf" / "listener.toml"
    path.parent.mkdir()
    path.write_text('[database]\npath = "data/x.duckdb"\n')
    assert load_file(path).database == tmp_path / "conf" / "data" / "x.duckdb"


def test_precedence_option_over_env_over_file_over_default(tmp_path):
    conf = tmp_path / "listener.toml"
    conf.write_text('[database]\npath = "from-file.duckdb"\n')
    other = tmp_path / "other.toml"
    other.write_text('[database]\npath = "from-other.duckdb"\n')
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_settings(env={}, cwd=empty).database == DEFAULT_DATABASE
    assert load_settings(env={}, cwd=tmp_path).database == tmp_path / "from-file.duckdb"
    assert load_settings(env={"LISTENER_CONFIG": str(other)}, cwd=tmp_path).database == tmp_path / "from-other.duckdb"
    assert load_settings(str(conf), env={"LISTENER_CONFIG": str(other)}, cwd=tmp_path).database == tmp_path / "from-file.duckdb"
    assert load_settings(env={"LISTENER_DB": "env.duckdb"}, cwd=tmp_path).database == Path("env.duckdb")
    assert load_settings(db_option="opt.duckdb", env={"LISTENER_DB": "env.duckdb"}, cwd=tmp_path).database == Path("opt.duckdb")


def test_settings_are_frozen():
    settings = parse(starter_config_text())
    with pytest.raises(Exception):
        settings.database = Path("elsewhere")  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.source("demo").options["seed"] = 1  # type: ignore[index]
