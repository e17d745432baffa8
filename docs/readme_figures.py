"""The README's figures about ``listener demo``, generated from one run so they cannot drift.

    python docs/readme_figures.py           # run the demo once, rewrite the two blocks
    python docs/readme_figures.py --check   # run it once, exit 1 if the README's figures differ

The run is the quick start's, pinned: the console script beside this Python (the quick
start's ``.venv/bin/listener``) runs ``demo --dir listener-demo --as-of AS_OF --json`` in a
fresh temporary folder; the simulator's seed is the starter config's. Two blocks are
written between marker comments:

* ``demo-figures``, in README.md ("What the demo shows"): mentions per brand, Brewly's mood, each campaign's measured lift with
  its CI against the simulator's truth, the care team's reply effect against its truth,
  the verdict and the alerts raised, from the run's JSON summary, ``report.json``,
  ``demo-truth.json``, ``listener care --json`` and ``listener alerts --json``.
  ``tests/system/test_readme_claims.py`` renders it from the test suite's demo run (the
  ``demo_run`` fixture, which calls ``run_demo`` below) and fails when the README differs;
  after a change in behaviour, run this script and commit the README.
* ``demo-timing``, in docs/performance.md: how long that run took, when and on what
  machine. A dated measurement, not checked (it depends on the machine and its load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from analysis.report_render import METHOD_NAMES, md_escape

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Where the demo-timing block is: the measurements live with the other benchmarks.
TIMING_PAGE = ROOT / "docs" / "performance.md"
# A fixed end of the simulated 60 days: the same world, so the same figures, on every run.
AS_OF = "2026-11-20T15:30:00+00:00"
DEMO_DIR = "listener-demo"
WIDTH = 88  # the README's line width
# A hang guard only: the demo takes tens of seconds, minutes on a loaded machine.
TIMEOUT = 1800


@dataclass(frozen=True)
class DemoRun:
    """One finished ``listener demo --json`` run. ``cwd`` is where it ran, ``directory``
    its files (``cwd/listener-demo``); ``env`` the environment it ran in."""

    cwd: Path
    directory: Path
    summary: dict[str, Any]
    stderr: str
    env: dict[str, str]

    def listener(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another ``listener`` command beside the demo, as its user would."""
        return subprocess.run([*listener_command(), *args], capture_output=True, text=True, cwd=self.cwd,
                              env=self.env, timeout=TIMEOUT)


def listener_command() -> list[str]:
    """The quick start's ``.venv/bin/listener`` (the console script beside this Python),
    else ``python -m listener.cli``."""
    script = Path(sys.executable).with_name("listener")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "listener.cli"]


def demo_env() -> dict[str, str]:
    """The environment of a user after the quick start: no LISTENER_* settings, and the
    virtual environment's bin folder not on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    if sys.prefix != sys.base_prefix:
        bin_dir = os.path.realpath(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if p and os.path.realpath(p) != bin_dir)
    return env


# What a finished run leaves beside its folder, so that another process can take it up
# (load_demo) instead of running the demo again.
RUN_RECORD = "demo-run.json"


def run_demo(cwd: Path) -> DemoRun:
    """Run ``listener demo --dir listener-demo --as-of AS_OF --json`` in ``cwd``."""
    env = demo_env()
    proc = subprocess.run([*listener_command(), "demo", "--dir", DEMO_DIR, "--as-of", AS_OF, "--json"],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"listener demo exited {proc.returncode}:\n{proc.stderr}")
    (cwd / RUN_RECORD).write_text(json.dumps({"summary": json.loads(proc.stdout), "stderr": proc.stderr}))
    return load_demo(cwd)


def load_demo(cwd: Path) -> DemoRun | None:
    """The run ``run_demo(cwd)`` finished, or None if it has not."""
    try:
        record = json.loads((cwd / RUN_RECORD).read_text())
    except FileNotFoundError:
        return None
    return DemoRun(cwd=cwd, directory=cwd / DEMO_DIR, summary=record["summary"], stderr=record["stderr"],
                   env=demo_env())


def _points(value: float) -> str:
    return f"{value:+.1f}"


def _campaign_line(campaign: dict[str, Any], truth: dict[str, Any]) -> str:
    effect = campaign["headline_effect"] or {}
    name = md_escape(campaign["name"] or campaign["campaign_id"])
    line = (f"- Campaign \"{name}\" (flight {campaign['flight_start']} to {campaign['flight_end']}): "
            f"the simulator's true lift is {_points(truth['nss_lift'])} NSS points (`demo-truth.json`); ")
    if effect.get("delta") is None:
        line += "the report could not estimate it"
    else:
        method = METHOD_NAMES.get(effect["method"], effect["method"])
        method = method[:1].lower() + method[1:]  # mid-sentence
        line += f"the report measures {_points(effect['delta'])}"
        if effect.get("ci_low") is None:
            line += f" ({method}, no CI)"
        else:
            inside = effect["ci_low"] <= truth["nss_lift"] <= effect["ci_high"]
            line += (f" (95 % CI {_points(effect['ci_low'])} to {_points(effect['ci_high'])}, {method}): "
                     f"the truth lies {'inside' if inside else 'outside'} the CI")
    return f"{line}. Verdict: {campaign['verdict']}."


def _care_line(run: DemoRun, team: dict[str, Any]) -> str:
    """The care team's story: ``listener care`` over the simulated span against the truth."""
    known = team["effect"]
    proc = run.listener("--db", str(Path(DEMO_DIR) / "listener.duckdb"), "care", "--brand", team["brand"],
                        "--since", known["start"], "--until", known["end"], "--json")
    if proc.returncode != 0:
        raise RuntimeError(f"listener care exited {proc.returncode}:\n{proc.stderr}")
    care = json.loads(proc.stdout)["brands"][0]
    effect = care["reply_effect"]
    line = (f"- {md_escape(team['brand'])}'s care team answered {care['answered']:,} of the "
            f"{care['needing_reply']:,} threads that opened negative or asking ({100 * care['response_rate']:.0f} %), "
            f"median {care['reply_hours_median']:.1f} h after; the simulator's replies turned customers' later posts "
            f"by {_points(known['effect_nss_points'])} NSS points (`demo-truth.json`); `listener care` ")
    if effect["ci95"] is None:
        return line + "could not estimate it."
    low, high = effect["ci95"]
    inside = low <= known["effect_nss_points"] <= high
    return line + (f"estimates {_points(effect['effect_nss_points'])} (95 % CI {_points(low)} to {_points(high)}): "
                   f"the truth lies {'inside' if inside else 'outside'} the CI.")


def figures(run: DemoRun) -> str:
    """The demo-figures block's text, from one run's files and summary."""
    summary = run.summary
    report = json.loads((run.directory / "report.json").read_text(encoding="utf-8"))
    truth = json.loads((run.directory / "demo-truth.json").read_text(encoding="utf-8"))
    proc = run.listener("--db", str(Path(DEMO_DIR) / "listener.duckdb"), "alerts", "--json")
    if proc.returncode != 0:
        raise RuntimeError(f"listener alerts exited {proc.returncode}:\n{proc.stderr}")
    alerts = sorted(json.loads(proc.stdout)["alerts"], key=lambda a: a["hour"])
    if len(alerts) != summary["alerts"]:
        raise RuntimeError(f"the demo said {summary['alerts']} alert(s), the database holds {len(alerts)}")
    counts = summary["mentions"]
    mood = summary["mood"]
    day, base, change = mood["last_24h"], mood["baseline_7d"], mood["change_24h_vs_baseline"]
    items = [
        "- Mentions: " + ", ".join(f"{md_escape(b)} {n:,}" for b, n in sorted(counts.items(), key=lambda x: -x[1]))
        + f" ({sum(counts.values()):,} in all).",
        f"- {md_escape(mood['brand'])}'s mood, last 24 h against the 7-day baseline before it: NSS "
        f"{_points(day['nss'])} (SE {day['nss_se']:.1f}) against {_points(base['nss'])} (SE {base['nss_se']:.1f}), "
        f"a change of {_points(change['nss'])} (SE {change['se']:.1f}).",
    ]
    truths = {c["campaign_id"]: c for c in truth["campaigns"]}
    items += [_campaign_line(c, truths[c["campaign_id"]]) for c in report["campaigns"]]
    items += [_care_line(run, team) for team in truth.get("care", ())]
    if alerts:
        items.append(f"- {len(alerts)} alert{'s' * (len(alerts) != 1)} raised:")
        items += [f"  - {md_escape(a['summary'])}" for a in alerts]
    else:
        items.append("- No alert raised.")
    lines = [_wrap(f"One run of `listener demo --as-of {AS_OF}` (the simulator's seed {truth['seed']}, from "
                   "the starter config), generated by `python docs/readme_figures.py`:"), ""]
    for item in items:
        marker = item[: item.index("- ") + 2]
        lines.append(_wrap(item[len(marker):], marker))
    return "\n".join(lines)


def _wrap(text: str, marker: str = "") -> str:
    """Lines of the README's width; a list item's continuation lines indented under it."""
    return textwrap.fill(text, WIDTH, initial_indent=marker, subsequent_indent=" " * len(marker),
                         break_long_words=False, break_on_hyphens=False)


def timing(run: DemoRun) -> str:
    """The demo-timing block's text: a dated measurement of that run."""
    cpus = os.cpu_count() or 0
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return _wrap(
        f"`listener demo` ({sum(run.summary['mentions'].values()):,} mentions, report and alerts included) "
        f"took {run.summary['seconds']:.1f} s by its own count in the run that generated the README's demo "
        f"figures ({date.today().isoformat()}, {platform.system()} {platform.machine()}, "
        f"{cpus} CPUs{load}, Python {platform.python_version()}); how long it takes depends on the machine and "
        "its load.")


HTML_COMMENT = ("<!--", "-->")
TOML_COMMENT = ("#", "")
"""Marker comments: ``<!-- NAME:start ... -->`` in Markdown, ``# NAME:start ...`` in TOML."""


def _block(name: str, comment: tuple[str, str]) -> re.Pattern[str]:
    # The markers are whole lines, so a marker quoted in the text is not one.
    opening, closing = (re.escape(part) for part in comment)
    end = f"{opening} {name}:end" + (f" {closing}" if closing else "")
    return re.compile(rf"^({opening} {name}:start[^\n]*{closing}\n)(.*?)^({end})$", re.S | re.M)


def read_block(text: str, name: str, comment: tuple[str, str] = HTML_COMMENT) -> str:
    """The text between the ``name`` markers (exactly one pair, or ValueError)."""
    found = _block(name, comment).findall(text)
    if len(found) != 1:
        opening, closing = comment[0], f" {comment[1]}" if comment[1] else ""
        raise ValueError(f"needs exactly one '{opening} {name}:start{closing}' ... '{opening} {name}:end{closing}' "
                         f"block (marker lines), not {len(found)}")
    return found[0][1].removesuffix("\n")


def write_block(text: str, name: str, body: str, comment: tuple[str, str] = HTML_COMMENT) -> str:
    read_block(text, name, comment)  # exactly one block, or a clear error
    return _block(name, comment).sub(lambda m: m.group(1) + body + "\n" + m.group(3), text, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 if the README's figures differ from a run.")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--timing-page", type=Path, default=TIMING_PAGE)
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    page = args.timing_page.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="readme-demo-") as folder:
        run = run_demo(Path(folder))
        expected = figures(run)
        if args.check:
            if read_block(text, "demo-figures") != expected:
                print(f"{args.readme}: the demo figures differ from a run; regenerate with "
                      "'python docs/readme_figures.py'", file=sys.stderr)
                return 1
            return 0
        text = write_block(text, "demo-figures", expected)
        page = write_block(page, "demo-timing", timing(run))
    args.readme.write_text(text, encoding="utf-8")
    args.timing_page.write_text(page, encoding="utf-8")
    print(f"Rewrote the demo-figures block of {args.readme} and the demo-timing block of {args.timing_page}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
