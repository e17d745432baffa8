"""What the README and the documentation promise about the demo and the quick start,
checked against real runs.

The demo figures are generated into the README by docs/readme_figures.py from one run;
here the same function renders them from the session's demo run (tests/conftest.py,
``demo_run``) and the README must match, so a change in behaviour forces regenerating it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import readme_figures

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PERFORMANCE = ROOT / "docs" / "performance.md"
ANALYSTS = ROOT / "docs" / "analysts.md"


def test_the_readme_demo_figures_are_what_a_run_gives(demo_run):
    generator = readme_figures()
    written = generator.read_block(README.read_text(encoding="utf-8"), "demo-figures")
    assert written == generator.figures(demo_run), (
        "README.md's demo figures differ from a demo run: run 'python docs/readme_figures.py' and commit README.md")


def test_the_docs_state_how_long_the_demo_took_only_as_a_dated_measurement():
    text = PERFORMANCE.read_text(encoding="utf-8")
    timing = readme_figures().read_block(text, "demo-timing")
    assert re.search(r"took \d+\.\d s\s.*\(\d{4}-\d\d-\d\d,\s.*CPUs", timing, re.S), timing
    # No other promise of how long the demo takes, in the README or any page.
    outside = [readme_figures().write_block(text, "demo-timing", ""), README.read_text(encoding="utf-8")]
    outside += [page.read_text(encoding="utf-8") for page in (ROOT / "docs").rglob("*.md") if page != PERFORMANCE]
    for other in outside:
        assert not re.search(r"`listener demo`[^\n|]*\|[^\n]*\d+(-\d+)? s\b", other)


def test_the_demo_says_next_a_command_the_user_can_run(demo_run):
    # The quick start runs .venv/bin/listener with nothing added to PATH.
    found = re.search(r"Next: open (\S+), or (.+)$", demo_run.stderr, re.M)
    assert found, demo_run.stderr
    assert (demo_run.cwd / found.group(1)).is_file()
    proc = subprocess.run(found.group(2), shell=True, capture_output=True, text=True, cwd=demo_run.cwd,
                          env=demo_run.env, timeout=600)
    assert proc.returncode == 0, f"{found.group(2)!r}: {proc.stderr}"
    assert "Brewly" in proc.stdout


SCRIPT = Path(sys.executable).with_name("listener")


def _init_next(command: list[str], cwd: Path, path: str) -> tuple[str, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env["PATH"] = path
    proc = subprocess.run([*command, "init", "--force", "my listener.toml"], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"Next: '(.+) demo' or edit the brands", proc.stderr)
    assert found, proc.stderr
    return found.group(1), env


@pytest.mark.skipif(not SCRIPT.is_file(), reason="needs the installed console script")
def test_init_says_next_a_command_the_user_can_run(tmp_path):
    bin_dir = str(SCRIPT.parent)
    bare_path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                if p and os.path.realpath(p) != os.path.realpath(bin_dir))
    relative = os.path.relpath(SCRIPT, tmp_path)
    cases = [
        ([relative], bare_path, shlex.quote(relative)),  # the quick start: .venv/bin/listener
        ([str(SCRIPT)], bare_path, shlex.quote(str(SCRIPT))),
        ([str(SCRIPT)], os.pathsep.join([bin_dir, bare_path]), "listener"),  # on PATH
        ([sys.executable, "-m", "listener.cli"], bare_path, f"{shlex.quote(sys.executable)} -m listener.cli"),
    ]
    for command, path, expected in cases:
        suggested, env = _init_next(command, tmp_path, path)
        assert suggested == f"{expected} --config 'my listener.toml'"
        if command == [relative]:
            # The quick start's case really runs there (its help: the demo itself is slow).
            proc = subprocess.run(f"{suggested} demo --help", shell=True, capture_output=True, text=True,
                                  cwd=tmp_path, env=env, timeout=600)
            assert proc.returncode == 0 and "simulated source" in proc.stdout, (suggested, proc.stderr)


def test_every_cited_note_is_in_the_repository():
    files = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.toml", "*.service"], capture_output=True,
                           text=True, cwd=ROOT, check=True).stdout.split()
    # The README is a front door: most sections moved to docs/, so a README section cited by
    # name ('README "Alerts"', '"Running the daemon" in README.md') must still be one of its headings.
    headings = set(re.findall(r"^#+ (.+)$", README.read_text(encoding="utf-8"), re.M))
    cited = set()
    for name in files:
        if name == Path(__file__).resolve().relative_to(ROOT).as_posix():  # names them below
            continue
        text = (ROOT / name).read_text(encoding="utf-8")
        assert not re.search(r"ROI-METHOD|DESIGN\.md|SOURCES\.md|\.\./shared/(?!data/)", text), f"{name} cites a note outside"
        cited |= set(re.findall(r"docs/(?:[\w.-]+/)*[\w.-]+\.md", text))
        sections = re.findall(r"README(?:\.md)?(?:'s)?,? \"([^\"]+)\"", text)
        sections += re.findall(r"\"([^\"]+)\"\s+(?:#\s+)?in README", text)
        for section in sections:
            assert section.replace("\n", " ") in headings, f'{name} cites README "{section}", not a README section'
    assert {"docs/roi-method.md", "docs/design.md"} <= cited
    # docs/sources/NAME.md: a name in capitals stands for any (as in [sources.NAME]).
    missing = sorted(c for c in cited if not (ROOT / c).is_file() and not Path(c).stem.isupper())
    assert not missing, missing


def test_the_analysts_example_over_the_mood_macros_runs_in_listener_sql(demo_run):
    text = ANALYSTS.read_text(encoding="utf-8")
    (example,) = re.findall(r"```sql\n(SELECT source, count\(label\).*?FROM mood_mentions.*?)\n```", text, re.S)
    # The page asks for yesterday; the demo's data ends at its pinned --as-of.
    query = example.replace("current_date - 1, current_date::TIMESTAMP", "TIMESTAMP '-infinity', TIMESTAMP 'infinity'")
    proc = demo_run.listener("--db", str(demo_run.directory / "listener.duckdb"), "sql", "--format", "csv", query)
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.strip().splitlines()
    assert rows[0] == "source,scored,nss" and len(rows) > 1, proc.stdout
