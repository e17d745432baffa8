"""The documentation site (mkdocs.yml, docs/) builds with MkDocs in strict mode: a link to
a page or an anchor that does not exist, a page left out of the nav, any warning fails
the build and so this test, which is how CI (.ci/run runs the tests) builds the docs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A hang guard only: a build takes about a second.
TIMEOUT = 300


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, cwd=config.parent,
                          timeout=TIMEOUT)


def test_the_docs_build_with_warnings_as_errors(tmp_path):
    site = tmp_path / "site"
    proc = build(ROOT / "mkdocs.yml", site)
    assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stderr
    for page in (ROOT / "docs").rglob("*.md"):
        path = page.relative_to(ROOT / "docs").with_suffix("")
        built = site / ("index.html" if path.name == "index" else path / "index.html")
        assert built.is_file(), f"{page} was not built"


def _copy(tmp_path: Path) -> Path:
    """mkdocs.yml and docs/ copied, to break a page without touching the real ones."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    return tmp_path / "mkdocs.yml"


def test_a_link_to_a_missing_anchor_or_page_or_a_page_out_of_the_nav_fails_the_build(tmp_path):
    config = _copy(tmp_path)
    layout = tmp_path / "docs" / "layout.md"
    original = layout.read_text(encoding="utf-8")
    for broken, named in (("[the rule](alerts.md#no-such-heading)", "no-such-heading"),
                          ("[a page](no-such-page.md)", "no-such-page.md")):
        layout.write_text(f"{original}\nSee {broken}.\n", encoding="utf-8")
        proc = build(config, tmp_path / "site")
        assert proc.returncode != 0 and named in proc.stderr, proc.stderr
    layout.write_text(original, encoding="utf-8")
    (tmp_path / "docs" / "orphan.md").write_text("# Not in the nav\n", encoding="utf-8")
    proc = build(config, tmp_path / "site")
    assert proc.returncode != 0 and "orphan.md" in proc.stderr, proc.stderr
