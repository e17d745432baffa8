"""listener sql / export / label / accuracy as users run them: the CLI on a real
database file; the views checked against hand-computed figures."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import sqlalchemy
from click.testing import CliRunner

from analysis.sentiment import VaderScorer
from listener.cli import cli
from storage import schema
from storage.labels import inbox_path
from storage.migrations import MIGRATIONS
from storage.rollup import rollup_pending
from storage.snapshot import snapshot_path
from storage.store import Store
from tests.conftest import daemon_holding, mention

ROOT = Path(__file__).resolve().parents[2]
SPEND = ROOT / "tests" / "fixtures" / "spend"
SCORER = VaderScorer()
# 2026-03-02 00:00 in New York is 05:00 UTC.
NY_MIDNIGHT = datetime(2026, 3, 2, 5, 0, tzinfo=timezone.utc)
HOSTILE = 'Brewly <script>alert(1)</script>, "quoted", line\nbreak \x1b[31mred\x1b[0m \u202eevil'


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def listener(*args, db, check=True, stdin=None) -> Ran:
    """``listener --db DB ARGS`` in this process, through click's runner: what a user
    typing it gets (exit code, stdout, stderr) without a Python start and the CLI's imports
    per command. The tests below that need a process of their own (another user, the
    console script) start one."""
    runner = CliRunner(env={name: None for name in os.environ if name.startswith("LISTENER_")})
    result = runner.invoke(cli, ["--db", str(db), *args], input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    ran = Ran(result.exit_code, result.stdout, result.stderr)
    if check:
        assert ran.returncode == 0, ran.stderr
    return ran


def save(store, mentions, brand):
    store.save_batch(mentions, SCORER.score([m.text for m in mentions]), source="test", brand=brand,
                     checkpoint=None, scorer=SCORER.name, scorer_version=SCORER.version, now=NY_MIDNIGHT)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("analyst") / "listener.duckdb"
    with Store.open(path) as store:
        # Day 1 (New York) of the flight: 3 positive, 1 negative for Brewly; one mention
        # 1 minute before New York midnight belongs to the day before.
        save(store, [
            mention("p1", "Brewly is great", NY_MIDNIGHT + timedelta(hours=1), brand="Brewly"),
            mention("p2", "Brewly is wonderful", NY_MIDNIGHT + timedelta(hours=2), brand="Brewly"),
            mention("p3", "love Brewly", NY_MIDNIGHT + timedelta(hours=23), brand="Brewly"),
            mention("n1", "Brewly is awful", NY_MIDNIGHT + timedelta(hours=3), brand="Brewly", likes=4),
            mention("early", "Brewly is terrible", NY_MIDNIGHT - timedelta(minutes=1), brand="Brewly"),
            mention("h", HOSTILE, NY_MIDNIGHT + timedelta(hours=4), brand="Brewly"),
        ], "Brewly")
        save(store, [mention("b1", "Beanhaus is fine", NY_MIDNIGHT + timedelta(hours=1), brand="Beanhaus")],
             "Beanhaus")
        rollup_pending(store)
    config = path.with_name("brands.toml")  # the plan's brands must be known: configure all three
    config.write_text("".join(f'[[brands]]\nname = "{b}"\nterms = ["{b.lower()}"]\n'
                              for b in ("Brewly", "Beanhaus", "Kettle & Co")))
    listener("--config", str(config), "campaigns", "import", str(SPEND / "canonical.csv"), "--plan",
             str(SPEND / "plan.csv"), db=path)
    return path


def test_sql_formats(db):
    table = listener("sql", "SELECT id, label FROM v_mentions WHERE brand = 'Brewly' ORDER BY id", db=db).stdout
    assert table.splitlines()[0].split() == ["id", "label"]
    assert "(6 rows)" in table
    rows = json.loads(listener("sql", "--format", "json", "SELECT id, created_at, vader_compound "
                               "FROM v_mentions WHERE id = 'p1'", db=db).stdout)
    assert rows[0]["id"] == "p1" and rows[0]["created_at"] == "2026-03-02T06:00:00+00:00"
    assert rows[0]["vader_compound"] == SCORER.score(["Brewly is great"])[0].compound


def test_hostile_text_survives_csv_and_cannot_drive_a_terminal(db):
    out = listener("sql", "--format", "csv", "SELECT id, text FROM v_mentions WHERE id = 'h'", db=db).stdout
    assert list(csv.reader(io.StringIO(out))) == [["id", "text"], ["h", HOSTILE]]
    table = listener("sql", "SELECT text[40:] AS tail FROM v_mentions WHERE id = 'h'", db=db).stdout
    assert "\x1b" not in table and "\\x1b[31m" in table and "\\n" in table


def test_sql_cannot_write_and_bad_sql_exits_2(db):
    for statement in ("DELETE FROM mentions", "DROP VIEW v_mentions", "INSERT INTO labels VALUES (1)", "SELEC 1"):
        proc = listener("sql", statement, db=db, check=False)
        assert proc.returncode == 2, (statement, proc.stderr)
        assert proc.stderr.startswith("Error: SQL:")
    with Store.open(db, read_only=True) as store, store.native() as con:
        assert con.execute("SELECT count(*) FROM mentions").fetchone()[0] == 7


def test_the_shell_reads_a_script_and_reports_failures(db):
    script = ".tables\nSELECT count(*) AS n\nFROM v_mentions;\n.mode csv\nSELECT 1 AS one;\nSELECT nope;\n"
    proc = listener("sql", db=db, stdin=script, check=False)
    assert proc.returncode == 1  # one statement failed
    assert "v_campaign_daily" in proc.stdout and "7" in proc.stdout and "one\n1" in proc.stdout
    assert "nope" in proc.stderr


def test_hourly_mood_view_sums_sources_and_gives_share_of_voice(db):
    rows = json.loads(listener("sql", "--format", "json",
                               "SELECT brand, mentions, share_of_voice FROM v_hourly_mood "
                               "WHERE hour = '2026-03-02 06:00' ORDER BY brand", db=db).stdout)
    assert rows == [{"brand": "Beanhaus", "mentions": 1, "share_of_voice": 0.5},
                    {"brand": "Brewly", "mentions": 1, "share_of_voice": 0.5}]


def test_campaign_daily_cuts_account_local_days_beside_spend(db):
    rows = json.loads(listener("sql", "--format", "json",
                               "SELECT * FROM v_campaign_daily WHERE campaign_id = '120210987654320001' "
                               "AND date IN ('2026-03-01', '2026-03-02') ORDER BY date", db=db).stdout)
    before, first = rows
    assert (before["date"], before["phase"], before["spend"], before["negative"]) == ("2026-03-01", "pre", 0.0, 1)
    # The hostile mention scores too: count what VADER gives it.
    hostile = SCORER.score([HOSTILE])[0].label
    positives = 3 + (hostile == "positive")
    negatives = 1 + (hostile == "negative")
    assert (first["phase"], first["spend"], first["currency"], first["account_timezone"]) == (
        "flight", 1402.5, "USD", "America/New_York")
    assert (first["mentions"], first["positive"], first["negative"]) == (5, positives, negatives)
    assert first["nss"] == pytest.approx(100 * (positives - negatives) / 5)
    phases = [r[0] for r in duckdb.connect(str(db), read_only=True).execute(
        "SELECT DISTINCT phase FROM v_campaign_daily WHERE campaign_id = '120210987654320001' ORDER BY 1").fetchall()]
    assert phases == ["flight", "pre", "washout"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_writes_each_view_filtered_with_a_manifest(db, tmp_path, fmt):
    out = tmp_path / "exports"
    listener("export", "--format", fmt, "--brand", "brewly", "--since", "2026-03-02T05:00", "--until",
             "2026-03-03", str(out), db=db)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["filters"]["brand"] == "Brewly"  # as the database spells it
    # "early" is before --since, p3 after --until (04:00 UTC on the 3rd), Beanhaus another brand.
    assert manifest["files"]["mentions"]["rows"] == 4
    con = duckdb.connect()
    reader = "read_parquet" if fmt == "parquet" else "read_csv_auto"
    ids = [r[0] for r in con.execute(f"SELECT id FROM {reader}('{out / ('mentions.' + fmt)}') ORDER BY id").fetchall()]
    assert ids == ["h", "n1", "p1", "p2"]
    if fmt == "csv":
        text = con.execute(f"SELECT text FROM read_csv('{out / 'mentions.csv'}', header=true) WHERE id = 'h'").fetchone()
        assert text == (HOSTILE,)
    assert not list(out.glob(".*partial"))
    for name in ("hourly_mood", "conversations", "campaign_daily"):
        assert (out / f"{name}.{fmt}").exists() and manifest["files"][name]["rows"] > 0


def test_export_usage_errors_exit_2(db, tmp_path):
    assert listener("export", "--brand", "Nobody", str(tmp_path), db=db, check=False).returncode == 2
    assert listener("export", "--since", "yesterday", str(tmp_path), db=db, check=False).returncode == 2
    assert listener("export", "--since", "2026-03-05", "--until", "2026-03-01", str(tmp_path), db=db,
                    check=False).returncode == 2


def test_label_then_accuracy(tmp_path, db):
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(db.read_bytes())
    before = json.loads(listener("sql", "--format", "json", "SELECT positive, negative FROM v_hourly_mood "
                                 "WHERE brand = 'Brewly' AND hour = '2026-03-02 06:00'", db=copy).stdout)
    assert before == [{"positive": 1, "negative": 0}]
    proc = listener("label", "p1", "negative", "--by", "ana", db=copy)
    assert "test:p1 (Brewly)" in proc.stdout
    after = json.loads(listener("sql", "--format", "json", "SELECT positive, negative FROM v_hourly_mood "
                                "WHERE brand = 'Brewly' AND hour = '2026-03-02 06:00'", db=copy).stdout)
    assert after == [{"positive": 0, "negative": 1}]
    listener("label", "test:n1", "negative", db=copy)
    report = json.loads(listener("accuracy", "--json", db=copy).stdout)
    assert (report["labelled"], report["compared"], report["accuracy"]) == (2, 2, 0.5)
    assert report["confusion"]["negative"] == {"positive": 1, "neutral": 0, "negative": 1}
    assert not report["enough_labels"]
    assert "agreement   50.0%" in listener("accuracy", db=copy).stdout
    missing = listener("label", "zzz", "positive", db=copy, check=False)
    assert missing.returncode == 2 and "no stored mention has id 'zzz'" in missing.stderr
    assert listener("label", "p1", "angry", db=copy, check=False).returncode == 2


def test_views_and_the_analysts_page_document_the_same_columns(db):
    from storage.views import COLUMNS

    readme = (ROOT / "docs" / "analysts.md").read_text(encoding="utf-8")
    con = duckdb.connect(str(db), read_only=True)
    for view, documented in COLUMNS.items():
        actual = [r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()]
        assert actual == list(documented), view
        section = readme[readme.index(f"**`{view}`**"):]
        section = section[: section.index("\n\n", section.index("| column |"))]
        for column in actual:
            assert f"| `{column}` |" in section, (view, column)


def test_campaign_daily_days_run_through_the_washout(db):
    con = duckdb.connect(str(db), read_only=True)
    first, last = con.execute("SELECT min(date), max(date) FROM v_campaign_daily "
                              "WHERE campaign_id = '120210987654320001'").fetchone()
    assert first == date(2026, 3, 2) - timedelta(days=28) and last == date(2026, 3, 8) + timedelta(days=3)


# -- nothing a reader runs can write, and a path it cannot use is a usage error ------------


def fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_sql_cannot_write_beside_the_database_while_the_daemon_holds_it(db, tmp_path):
    live = tmp_path / "live" / "listener.duckdb"
    live.parent.mkdir()
    shutil.copy(db, live)
    shutil.copy(db, snapshot_path(live))
    out = tmp_path / "out"
    with daemon_holding(live):
        before = fingerprint(live)
        for target in (live, inbox_path(live)):
            proc = listener("sql", f"COPY (SELECT '{{\"id\": \"p1\", \"label\": \"negative\"}}' AS x) TO '{target}' "
                            "(FORMAT csv, HEADER false, QUOTE '')", db=live, check=False)
            assert proc.returncode == 2 and "reading its snapshot" in proc.stderr, proc.stderr
            assert "disabled by configuration" in proc.stderr and "ATTACH or COPY" not in proc.stderr
        refused = listener("sql", "--allow-write-dir", str(live.parent), "SELECT 1", db=live, check=False)
        assert refused.returncode == 2 and "holds the database's directory" in refused.stderr
        listener("sql", "--allow-write-dir", str(out), f"COPY (SELECT count(*) AS n FROM v_mentions) TO "
                 f"'{out / 'n.csv'}' (FORMAT csv)", db=live)
        listener("export", "--format", "csv", str(out / "export"), db=live)
        assert fingerprint(live) == before
    assert (out / "n.csv").read_text().splitlines() == ["n", "7"]
    assert (out / "export" / "manifest.json").exists()
    assert sorted(p.name for p in live.parent.iterdir()) == ["listener.duckdb", "listener.snapshot.duckdb"]


READERS = [["sql", "SELECT count(*) FROM v_mentions"], ["export", "--format", "csv", "{out}"], ["status"], ["mood"],
           ["report", "--format", "json", "--as-of", "2026-03-20"], ["accuracy"], ["alerts"], ["campaigns", "list"]]


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="needs setpriv to drop root")
def test_reading_commands_run_for_a_user_who_may_only_read(db):
    """chmod 444 the file and 555 its directory; as root, the commands run as nobody,
    for whom they are as read-only as for anyone (root could write anyway)."""
    base = Path(tempfile.mkdtemp(prefix="listener-readonly-"))
    try:
        home, out = base / "db", base / "out"
        home.mkdir()
        out.mkdir()
        database = home / "listener.duckdb"
        shutil.copy(db, database)
        shutil.copy(db, snapshot_path(database))
        for path in (database, snapshot_path(database)):
            path.chmod(0o444)
        home.chmod(0o555)
        base.chmod(0o755)
        out.chmod(0o777)
        as_reader = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(out)}

        def run(args):
            return subprocess.run([*as_reader, sys.executable, "-m", "listener.cli", "--db", str(database), *args],
                                  capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)

        before = fingerprint(database)
        for index, args in enumerate(READERS):
            proc = run([a.format(out=out / f"export{index}") for a in args])
            assert proc.returncode == 0, (args, proc.stderr)
            assert "reading its snapshot" not in proc.stderr
        with daemon_holding(database):  # the daemon (here root) holds it: readers use the snapshot
            for args in (["sql", "SELECT count(*) AS n FROM v_mentions"], ["status"]):
                proc = run(args)
                assert proc.returncode == 0 and "reading its snapshot" in proc.stderr, (args, proc.stderr)
            assert fingerprint(database) == before
        assert sorted(p.name for p in home.iterdir()) == ["listener.duckdb", "listener.snapshot.duckdb"]
    finally:
        base.chmod(0o755)
        (base / "db").chmod(0o755)
        shutil.rmtree(base)


def make_unusable(path: Path, kind: str) -> None:
    if kind == "directory":
        path.mkdir()
        (path / "inside").write_text("not ours")
    elif kind == "foreign":  # another application's DuckDB file, with a 'runs' table
        with duckdb.connect(str(path)) as con:
            con.execute("CREATE TABLE runs (run_id INTEGER, status VARCHAR)")
            con.execute("INSERT INTO runs VALUES (1, 'running')")
    elif kind == "older":  # a listener database as its first release left it
        engine = sqlalchemy.create_engine(f"duckdb:///{path}")
        number, description, step = MIGRATIONS[0]
        with engine.begin() as conn:
            schema.schema_version.create(conn)
            step(conn)
            conn.execute(schema.schema_version.insert().values(version=number, description=description,
                                                               applied_at=datetime(2026, 1, 1)))
        engine.dispose()


WRITERS = [["score"], ["label", "p1", "negative"], ["campaigns", "import", str(SPEND / "canonical.csv")],
           ["import", "--source", "survey", "--format", "csv", "{mentions}"]]
WHY = {"directory": "is a directory, not a database file", "foreign": "is not a listener database",
       "missing": "no database at", "older": "Reading commands never change the file"}


@pytest.mark.parametrize("kind", ["foreign", "directory", "missing", "older"])
def test_every_command_refuses_a_database_path_it_cannot_use_with_exit_2(tmp_path, kind):
    from click.testing import CliRunner

    from listener.cli import cli

    path = tmp_path / "listener.duckdb"
    make_unusable(path, kind)
    config = tmp_path / "listener.toml"
    config.write_text('[[brands]]\nname = "Brewly"\nterms = ["brewly"]\n', encoding="utf-8")
    mentions = tmp_path / "mentions.csv"
    mentions.write_text("id,created_at,text\n1,2026-03-02T06:00:00Z,Brewly is great\n", encoding="utf-8")
    before = None if kind in ("missing", "directory") else fingerprint(path)
    # Writers create a missing file, and upgrade an older one: that is their job.
    commands = READERS + ([] if kind in ("missing", "older") else WRITERS)
    if kind == "missing":
        commands = commands + WRITERS[:2]
    runner = CliRunner()
    for args in commands:
        args = [a.format(out=tmp_path / "export", mentions=mentions) for a in args]
        result = runner.invoke(cli, ["--config", str(config), "--db", str(path), *args],
                               env={"LISTENER_DB": None, "LISTENER_CONFIG": None})
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert WHY[kind] in result.output and "Traceback" not in result.output, (args, result.output)
    served = subprocess.run([sys.executable, "-m", "listener.cli", "--db", str(path), "serve", "--port", "0"],
                            capture_output=True, text=True, timeout=300)  # a hang guard: it must not start
    assert served.returncode == 2 and WHY[kind] in served.stderr and "Traceback" not in served.stderr
    if before is not None:
        assert fingerprint(path) == before
    expected = {"missing": [], "directory": ["inside"]}.get(kind)
    if expected is not None:
        assert sorted(p.name for p in (path.iterdir() if path.is_dir() else [])) == expected
        assert not (kind == "missing" and path.exists())
    assert not (tmp_path / "export").exists()


def test_demo_refuses_a_foreign_file_in_its_directory_before_writing_anything(tmp_path):
    make_unusable(tmp_path / "listener.duckdb", "foreign")
    before = fingerprint(tmp_path / "listener.duckdb")
    proc = subprocess.run([sys.executable, "-m", "listener.cli", "demo", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "is not a listener database" in proc.stderr, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["listener.duckdb"]
    assert fingerprint(tmp_path / "listener.duckdb") == before


def test_a_malformed_queued_label_blocks_neither_score_nor_label(tmp_path, db, caplog):
    copy = tmp_path / "copy.duckdb"
    shutil.copy(db, copy)
    inbox_path(copy).write_text('{"id": "p1", "label": "negative", "brand": 5}\n{"id": "n1", "label": "positive"}\n',
                                encoding="utf-8")
    listener("score", db=copy)
    # The warning's way to stderr is the CLI's logging (tests/listener/test_cli.py); in
    # this process pytest's capture holds it.
    assert "line 1" in caplog.text and "'brand' must be a string or null" in caplog.text
    listener("label", "p2", "negative", db=copy)
    labels = json.loads(listener("sql", "--format", "json", "SELECT id, label FROM labels ORDER BY id",
                                 db=copy).stdout)
    assert labels == [{"id": "n1", "label": "positive"}, {"id": "p2", "label": "negative"}]
    assert not inbox_path(copy).exists()
