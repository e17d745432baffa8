"""Alerting end to end: a DuckDB file on disk filled through the real pipeline, the
webhook against a local HTTP server, e-mail against a local SMTP server (aiosmtpd),
and ``listener alerts`` through click's runner."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import ssl
import tomllib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner

from analysis.report_render import md_escape
from analysis.sentiment import VaderScorer
from connectors.base import Batch, BrandQuery, Cursor, Mention
from listener.alerting import run_alerts
from listener.cli import cli  # noqa: F401  (registers every command)
from listener.cli.alerts import alerts_command
from listener.config import parse_settings
from listener.errors import ConfigError
from listener.notify import EmailNotifier, Message, WebhookNotifier
from listener.pipeline import Pipeline
from storage import alerts as db
from storage.store import Store
from tests.fakes.http import FakeServer, Reply
from tests.timing import PEER_TIMEOUT

START = datetime(2026, 11, 2, tzinfo=timezone.utc)  # a Monday
EVENT = START + timedelta(days=13, hours=15)  # four hours of a product recall, day 14
EVENT_HOURS = 4
ITEMS = ("latte", "mocha", "espresso", "muffin", "bagel", "cortado", "chai", "scone")
RECALL_URL = "https://social.example/acme/recall"
HOOK_PATH = "/services/T0ALERTS/B0ALERTS/planted-Webhook-Secret-7f3a9c"
PASSWORD = "planted-Smtp-Passw0rd-51c2e"


class Backfill:
    """A source that serves prepared mentions in one batch per day (the Connector protocol)."""

    name = "test"

    def __init__(self, mentions: list[Mention]) -> None:
        self.mentions = mentions

    def fetch(self, query: BrandQuery, since: Cursor | None) -> Iterator[Batch]:
        for day in range(0, len(self.mentions), 2000):
            yield Batch(tuple(self.mentions[day:day + 2000]), checkpoint={"n": day})

    def close(self) -> None:
        pass


def world(until: datetime, seed: int = 3) -> list[Mention]:
    """Acme: ~25 mentions an hour by day, fewer at night, mostly positive; four hours of
    a recall (four times the volume, mostly negative, in one thread) at EVENT."""
    rng = np.random.default_rng(seed)
    out: list[Mention] = []
    hour = START
    while hour < until:
        shape = 0.3 + 0.7 * np.sin(np.pi * ((hour.hour - 6) % 24) / 24) ** 2
        recall = EVENT <= hour < EVENT + timedelta(hours=EVENT_HOURS)
        count = rng.poisson(30 * shape * (4 if recall else 1))
        for i in range(count):
            at = hour + timedelta(seconds=int(rng.integers(0, 3600)))
            item = ITEMS[rng.integers(len(ITEMS))]
            u = rng.random()
            conversation, url = f"c{hour:%m%d%H}-{i}", f"https://social.example/acme/{hour:%m%d%H}-{i}"
            if recall and u < 0.8:
                text, conversation, url = f"Acme {item} recall: leaked, awful", "recall", RECALL_URL
            elif u < 0.55:
                text = f"Acme {item} great, love it"
            elif u < 0.75:
                text = f"Acme {item} cold, disappointing"
            else:
                text = f"Acme opens at {item} o'clock"
            out.append(Mention(source="test", id=f"{hour:%m%d%H}-{i}", brand="Acme", created_at=at, text=text,
                               author=f"user{rng.integers(500)}", url=url, conversation_id=conversation,
                               lang="en", metrics={"likes": int(rng.integers(3)), "reposts": 0, "replies": 0}))
        hour += timedelta(hours=1)
    return out


def settings_for(path: Path, alerts: str = "") -> object:
    text = f"""
    [database]
    path = "{path}"
    [[brands]]
    name = "Acme"
    terms = ["acme"]
    {alerts}
    """
    return parse_settings(tomllib.loads(text), base_dir=path.parent, origin="test.toml")


def load(store: Store, until: datetime, pulled_at: datetime) -> None:
    """Everything created before ``until``, pulled by one run at ``pulled_at``, rolled up."""
    pipeline = Pipeline(store, VaderScorer(), lambda: pulled_at)
    pipeline.pull(Backfill(world(until)), BrandQuery(brand="Acme", terms=("acme",)))
    pipeline.score_hours()


@pytest.fixture
def loaded(tmp_path) -> Iterator[tuple[Store, Path]]:
    """Two weeks with the recall, pulled 10 minutes after the last hour ended."""
    path = tmp_path / "alerts.duckdb"
    end = EVENT + timedelta(hours=12)
    with Store.open(path) as store:
        load(store, end, end + timedelta(minutes=10))
        yield store, path


def all_stored_text(store: Store) -> str:
    with store.native() as conn:
        parts = []
        for table in ("alerts", "alert_deliveries", "meta", "runs"):
            parts += [repr(row) for row in conn.execute(f"SELECT * FROM {table}").fetchall()]
    return "\n".join(parts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- detection on the database ----------------------------------------------------------


def test_the_recall_is_found_explained_stored_once_and_closed(loaded):
    store, _ = loaded
    settings = settings_for(store.path)
    now = EVENT + timedelta(hours=12, minutes=20)
    result = run_alerts(store, settings, lambda: now)
    assert result.hours_incomplete == 0 and result.hours_waiting == 0
    rows = db.list_alerts(store)
    kinds = {(r["metric"], r["direction"]): r for r in rows}
    assert set(kinds) == {("volume", "spike"), ("mood", "dip")}, [r["summary"] for r in rows]
    spike, dip = kinds[("volume", "spike")], kinds[("mood", "dip")]
    for alert in (spike, dip):
        assert EVENT <= alert["hour"] < EVENT + timedelta(hours=EVENT_HOURS)
        assert alert["closed_at"] is not None  # the recall was over by 'now'
        explanation = alert["explanation"]
        terms = [t["term"] for t in explanation["terms"]]
        assert "recall" in terms and "leaked" in terms and "acme" not in terms
        assert explanation["conversations"][0]["url"] == RECALL_URL
        assert explanation["sources"][0]["source"] == "test"
        assert "recall" in alert["summary"]
    assert spike["value"] > 2 * spike["baseline"] and spike["statistic"] > spike["control_limit"] > 0
    assert dip["value"] < dip["baseline"] - 20 and dip["statistic"] < dip["control_limit"] < 0
    assert dip["explanation"]["window"]["texts_compared"] == "negative mentions"
    # Nothing is evaluated twice: a second run finds the hours done.
    again = run_alerts(store, settings, lambda: now + timedelta(minutes=30))
    assert again.opened == () and again.hours_evaluated == 0
    assert len(db.list_alerts(store)) == 2


def test_an_open_alert_is_closed_by_a_later_run(tmp_path):
    path = tmp_path / "open.duckdb"
    with Store.open(path) as store:
        settings = settings_for(path)
        load(store, EVENT + timedelta(hours=2), EVENT + timedelta(hours=2, minutes=5))
        first = run_alerts(store, settings, lambda: EVENT + timedelta(hours=2, minutes=10))
        assert first.opened and not first.closed
        assert all(r["closed_at"] is None for r in db.list_alerts(store, open_only=True))
        # The rest of the day arrives; the next run sees the hours back within limits.
        later = EVENT + timedelta(hours=14)
        load(store, later, later + timedelta(minutes=5))
        second = run_alerts(store, settings, lambda: later + timedelta(minutes=10))
        assert set(second.closed) == set(first.opened)
        assert db.list_alerts(store, open_only=True) == []


def test_an_hour_with_a_failed_source_run_waits_for_a_later_ok_run(tmp_path):
    path = tmp_path / "failed.duckdb"
    with Store.open(path) as store:
        settings = settings_for(path)
        # Pulled half-way through the first recall hour: that run cannot have all of it.
        # (The test stores the next hours' mentions too: what the later runs would bring.)
        load(store, EVENT + timedelta(hours=2), EVENT + timedelta(minutes=30))
        failed = store.start_run("pull", now=EVENT + timedelta(hours=1, minutes=5), source="test", brand="Acme")
        store.finish_run(failed, now=EVENT + timedelta(hours=1, minutes=6), status="failed", error="HTTP 503")
        waiting = run_alerts(store, settings, lambda: EVENT + timedelta(hours=2))
        assert waiting.opened == () and waiting.hours_waiting >= 1
        assert db.evaluated_through(store, "Acme") == EVENT - timedelta(hours=1)
        ok = store.start_run("pull", now=EVENT + timedelta(hours=2, minutes=5), source="test", brand="Acme")
        store.finish_run(ok, now=EVENT + timedelta(hours=2, minutes=6), status="ok")
        covered = run_alerts(store, settings, lambda: EVENT + timedelta(hours=2, minutes=10))
        assert covered.opened
        hours = {r["hour"] for r in db.list_alerts(store)}
        assert EVENT in hours and max(hours) <= EVENT + timedelta(hours=1)


def test_an_hour_never_covered_is_given_up_after_max_wait(tmp_path):
    path = tmp_path / "given-up.duckdb"
    with Store.open(path) as store:
        settings = settings_for(path)
        load(store, EVENT + timedelta(hours=1), EVENT + timedelta(minutes=30))
        result = run_alerts(store, settings, lambda: EVENT + timedelta(hours=8))
        # The recall's first two hours ended 6 h or more ago: given up; the next waits.
        assert result.opened == () and result.hours_incomplete == 2 and result.hours_waiting == 6
        assert db.evaluated_through(store, "Acme") == EVENT + timedelta(hours=1)


def test_low_coverage_hours_are_never_alerted_on(tmp_path):
    path = tmp_path / "coverage.duckdb"
    end = EVENT + timedelta(hours=12)
    with Store.open(path) as store:
        load(store, end, end + timedelta(minutes=10))
        # The platform counted far more posts in the recall hours than were stored.
        store.save_platform_volume("test", "Acme", [(EVENT + timedelta(hours=i), 5000) for i in range(EVENT_HOURS)],
                                   now=end)
        result = run_alerts(store, settings_for(path), lambda: end + timedelta(minutes=20))
        assert result.hours_incomplete == EVENT_HOURS
        later = run_alerts(store, settings_for(path), lambda: end + timedelta(days=2))
        assert result.opened == () and later.opened == ()
        assert db.list_alerts(store) == []


# --- delivery ---------------------------------------------------------------------------


def test_webhook_delivery_retries_records_every_attempt_and_keeps_the_url_secret(loaded, caplog):
    store, path = loaded
    sleeps: list[float] = []
    now = EVENT + timedelta(hours=12, minutes=20)
    config = f'[alerts.webhook]\nurl_env = "ACME_ALERTS_HOOK"\nattempts = 3\ntimeout_seconds = {PEER_TIMEOUT}'
    with FakeServer() as server:
        # Two server errors that echo the path (the secret), then Slack's "ok".
        echo = lambda request: Reply(500, f"internal error at {request.path}")
        server.route("POST", HOOK_PATH, echo, echo, Reply(200, "ok"))
        env = {"ACME_ALERTS_HOOK": server.url + HOOK_PATH}
        with caplog.at_level(logging.DEBUG):
            result = run_alerts(store, settings_for(path, config), lambda: now, sleep=sleeps.append, environ=env)
        posted = [json.loads(r.body) for r in server.requests]
    assert result.sent == 2 and result.failed == 0
    assert len(sleeps) == 2 and all(0 < s <= 30 for s in sleeps)
    assert len(posted) == 4  # first alert: 500, 500, ok; second alert: ok
    for payload in posted:
        assert payload["text"].startswith("Acme: ") and "recall" in payload["text"]
        assert [b["type"] for b in payload["blocks"]][:2] == ["header", "section"]
        assert any(RECALL_URL in json.dumps(b) for b in payload["blocks"])
    rows = db.list_alerts(store)
    attempts = sorted((d["status"] for r in rows for d in r["deliveries"]))
    assert attempts == ["failed", "failed", "sent", "sent"]
    errors = [d["error"] for r in rows for d in r["deliveries"] if d["error"]]
    assert all(e.startswith("HTTP 500") and "[redacted]" in e for e in errors)
    secret = "planted-Webhook-Secret-7f3a9c"
    assert secret not in all_stored_text(store)
    assert secret not in caplog.text
    store.close()  # as in the test below: a reader opens the file read-only, which a process holding it may not
    out = CliRunner().invoke(alerts_command, ["--db", str(path), "--json"])
    assert out.exit_code == 0 and secret not in out.output
    # Delivered alerts are not sent again.
    with FakeServer() as server:
        server.route("POST", HOOK_PATH, Reply(200, "ok"))
        again = run_alerts(store, settings_for(path, config), lambda: now + timedelta(hours=1),
                           sleep=sleeps.append, environ={"ACME_ALERTS_HOOK": server.url + HOOK_PATH})
        assert again.sent == 0 and server.requests == []


def test_a_failed_delivery_keeps_the_alert_and_is_retried_on_the_next_run(loaded):
    store, path = loaded
    now = EVENT + timedelta(hours=12, minutes=20)
    config = f'[alerts.webhook]\nurl_env = "ACME_ALERTS_HOOK"\nattempts = 2\ntimeout_seconds = {PEER_TIMEOUT}'
    port = free_port()  # nothing listens there
    down = run_alerts(store, settings_for(path, config), lambda: now, sleep=lambda s: None,
                      environ={"ACME_ALERTS_HOOK": f"http://127.0.0.1:{port}{HOOK_PATH}"})
    assert down.opened and down.sent == 0 and down.failed == 1  # the channel is left after one alert
    rows = db.list_alerts(store)
    assert len(rows) == 2
    failures = [d for r in rows for d in r["deliveries"]]
    assert [d["status"] for d in failures] == ["failed", "failed"]
    assert failures[0]["error"] == "could not connect to the webhook's host"
    with FakeServer() as server:
        server.route("POST", HOOK_PATH, Reply(200, "ok"))
        up = run_alerts(store, settings_for(path, config), lambda: now + timedelta(hours=1), sleep=lambda s: None,
                        environ={"ACME_ALERTS_HOOK": server.url + HOOK_PATH})
        assert up.sent == 2 and len(server.requests) == 2


def test_a_missing_secret_is_recorded_naming_the_variable(loaded):
    store, path = loaded
    config = '[alerts.webhook]\nurl_env = "ACME_ALERTS_HOOK"'
    result = run_alerts(store, settings_for(path, config), lambda: EVENT + timedelta(hours=12, minutes=20),
                        environ={})
    assert result.failed == 2 and "ACME_ALERTS_HOOK" in result.problems[0]
    errors = {d["error"] for r in db.list_alerts(store) for d in r["deliveries"]}
    assert errors == {"environment variable ACME_ALERTS_HOOK (alerts.webhook.url_env) is not set"}


def test_alerts_older_than_the_delivery_age_are_not_sent(loaded):
    store, path = loaded
    config = '[alerts.webhook]\nurl_env = "ACME_ALERTS_HOOK"'
    with FakeServer() as server:
        server.route("POST", HOOK_PATH, Reply(200, "ok"))
        result = run_alerts(store, settings_for(path, config), lambda: EVENT + timedelta(days=3),
                            environ={"ACME_ALERTS_HOOK": server.url + HOOK_PATH})
        assert result.opened and result.sent == 0 and server.requests == []


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        # handled=False: aiosmtpd answers a refusal with 535 itself.
        return AuthResult(success=auth_data.password == PASSWORD.encode(), handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_email_delivery_through_a_local_smtp_server(loaded, smtp_server, caplog):
    store, path = loaded
    inbox, port = smtp_server
    config = f"""
    [alerts.email]
    host = "127.0.0.1"
    port = {port}
    security = "none"
    username = "listener"
    password_env = "ACME_SMTP_PASSWORD"
    timeout_seconds = {PEER_TIMEOUT}
    from = "listener@acme.example"
    to = ["oncall@acme.example", "brand@acme.example"]
    """
    with caplog.at_level(logging.DEBUG):
        result = run_alerts(store, settings_for(path, config), lambda: EVENT + timedelta(hours=12, minutes=20),
                            environ={"ACME_SMTP_PASSWORD": PASSWORD})
    assert result.sent == 2
    assert inbox.logins == [(b"listener", PASSWORD.encode())] * 2
    assert len(inbox.messages) == 2
    for envelope in inbox.messages:
        assert envelope.mail_from == "listener@acme.example"
        assert envelope.rcpt_tos == ["oncall@acme.example", "brand@acme.example"]
        body = envelope.content.decode()
        assert "Subject: [listener] Acme: " in body and "recall" in body and RECALL_URL in body
        assert "Content-Type: text/plain" in body
    assert PASSWORD not in all_stored_text(store) and PASSWORD not in caplog.text


def test_a_refused_smtp_login_fails_at_once_without_the_password(loaded, smtp_server):
    store, path = loaded
    _, port = smtp_server
    config = f"""
    [alerts.email]
    host = "127.0.0.1"
    port = {port}
    security = "none"
    username = "listener"
    password_env = "ACME_SMTP_PASSWORD"
    timeout_seconds = {PEER_TIMEOUT}
    from = "listener@acme.example"
    to = ["oncall@acme.example"]
    """
    wrong = "planted-Wrong-Passw0rd-0000"
    result = run_alerts(store, settings_for(path, config), lambda: EVENT + timedelta(hours=12, minutes=20),
                        sleep=lambda s: pytest.fail("a refused login is not retried"),
                        environ={"ACME_SMTP_PASSWORD": wrong})
    assert result.failed == 1
    deliveries = [d for r in db.list_alerts(store) for d in r["deliveries"]]
    assert len(deliveries) == 1 and deliveries[0]["error"].startswith("the SMTP server refused the login")
    assert wrong not in all_stored_text(store)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_starttls_and_login_against_a_local_server(tmp_path):
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=server_context,
                            require_starttls=True, authenticator=inbox.authenticate)
    controller.start()
    try:
        notifier = EmailNotifier(host="127.0.0.1", port=port, security="starttls", sender="a@acme.example",
                                 recipients=["b@acme.example"], username="listener", password=PASSWORD,
                                 timeout=PEER_TIMEOUT, attempts=1, clock=lambda: START,
                                 ssl_context=ssl.create_default_context(cafile=str(cert)))
        attempts = notifier.send(Message("subject", "body text", {"text": "x"}))
        assert [a.status for a in attempts] == ["sent"]
        assert inbox.logins == [(b"listener", PASSWORD.encode())]
        # Without STARTTLS the server refuses to go on; the error names no secret.
        plain = EmailNotifier(host="127.0.0.1", port=port, security="none", sender="a@acme.example",
                              recipients=["b@acme.example"], username="listener", password=PASSWORD,
                              timeout=PEER_TIMEOUT, attempts=1, clock=lambda: START)
        refused = plain.send(Message("subject", "body", {"text": "x"}))
        assert refused[0].status == "failed" and PASSWORD not in refused[0].error
    finally:
        controller.stop()


def test_the_webhook_gives_up_on_a_client_error_and_waits_as_told_on_429():
    sleeps: list[float] = []
    with FakeServer() as server:
        server.route("POST", "/hook", Reply(429, "slow down", headers={"Retry-After": "7"}), Reply(400, "invalid_payload"))
        notifier = WebhookNotifier(server.url + "/hook", timeout=PEER_TIMEOUT, attempts=5, clock=lambda: START,
                                   sleep=sleeps.append)
        attempts = notifier.send(Message("s", "t", {"text": "t"}))
    assert [a.status for a in attempts] == ["failed", "failed"]
    assert sleeps == [7.0]
    assert attempts[1].error == "HTTP 400 Bad Request: invalid_payload"


# --- configuration ---------------------------------------------------------------------


def test_the_alerts_section_is_validated_naming_every_key(tmp_path):
    with pytest.raises(ConfigError) as caught:
        settings_for(tmp_path / "x.duckdb", """
        [alerts]
        limit_sigmas = "high"
        cooldown = 3
        timezone = "Mars/Olympus"
        [alerts.webhook]
        url = "https://hooks.slack.com/services/T/B/planted"
        [alerts.email]
        host = "smtp.acme.example"
        password = "planted-literal"
        security = "tls"
        from = "listener@acme.example"
        to = ["nobody"]
        """)
    problems = "\n".join(caught.value.problems)
    for key in ("alerts.limit_sigmas", "alerts.cooldown", "alerts.timezone", "alerts.webhook.url:",
                "alerts.webhook.url_env", "alerts.email.password:", "alerts.email.security", "alerts.email.to"):
        assert key in problems, key
    assert "planted" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_the_alerts_section_defaults_and_overrides(tmp_path):
    default = settings_for(tmp_path / "x.duckdb").alerts
    assert default.enabled and default.webhook is None and default.email is None
    assert default.rule.limit_sigmas == 3.5 and default.rule.ewma_lambda == 0.2
    custom = settings_for(tmp_path / "x.duckdb", """
    [alerts]
    limit_sigmas = 4
    timezone = "America/New_York"
    [alerts.webhook]
    enabled = false
    url_env = "HOOK"
    """).alerts
    assert custom.rule.limit_sigmas == 4.0 and custom.timezone == "America/New_York" and custom.webhook is None


# --- the command --------------------------------------------------------------------------


def test_listener_alerts_lists_the_history_as_text_and_json(loaded):
    store, path = loaded
    now = EVENT + timedelta(hours=12, minutes=20)
    run_alerts(store, settings_for(path), lambda: now)
    store.close()
    runner = CliRunner()
    result = runner.invoke(alerts_command, ["--db", str(path), "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["alerts"]
    assert {(a["metric"], a["direction"]) for a in listed} == {("volume", "spike"), ("mood", "dip")}
    first = listed[0]
    assert first["open"] is False and first["explanation"]["terms"] and first["deliveries"] == []
    assert datetime.fromisoformat(first["hour"]) >= EVENT
    text = runner.invoke(alerts_command, ["--db", str(path), "--brand", "acme"])
    assert text.exit_code == 0 and "volume spike" in text.output and RECALL_URL in text.output
    assert "Terms: " in text.output and "Delivered: not delivered" in text.output
    assert json.loads(runner.invoke(alerts_command, ["--db", str(path), "--json", "--open"]).output) == {"alerts": []}
    since = runner.invoke(alerts_command, ["--db", str(path), "--json", "--since", "2026-12-01"])
    assert json.loads(since.output) == {"alerts": []}
    bad = runner.invoke(alerts_command, ["--db", str(path), "--brand", "Globex"])
    assert bad.exit_code == 2 and "no brand named 'Globex'" in bad.output
    bad_since = runner.invoke(alerts_command, ["--db", str(path), "--since", "last tuesday"])
    assert bad_since.exit_code == 2 and "--since" in bad_since.output
    _the_report_names_the_same_alarms(runner, path, now)


def _the_report_names_the_same_alarms(runner: CliRunner, path: Path, now: datetime) -> None:
    """One notion of alarm: the campaign report's "last 48 hours" are the alerts the
    hourly stage stored, the ones `listener alerts --since 48h` lists at the same time (the
    report used to show "alarm hours" of an EWMA of its own while `listener alerts` said
    "No alerts yet"). On the database of the test above, whose fixture it shares."""
    from listener.cli.campaigns import report as report_command

    listed = runner.invoke(alerts_command, ["--db", str(path), "--json", "--since", "48h"], obj={"clock": lambda: now})
    assert listed.exit_code == 0, listed.output
    alerts = json.loads(listed.output)["alerts"]
    assert {(a["metric"], a["direction"]) for a in alerts} == {("volume", "spike"), ("mood", "dip")}
    shown = runner.invoke(report_command, ["--db", str(path), "--format", "json", "--as-of", now.isoformat()])
    assert shown.exit_code == 0, shown.output
    monitor = json.loads(shown.output)["monitor"]
    assert sorted((a["alert_id"], a["hour"], a["summary"]) for a in monitor["alerts"]) == \
        sorted((a["alert_id"], a["hour"], a["summary"]) for a in alerts)
    page = runner.invoke(report_command, ["--db", str(path), "--format", "md", "--as-of", now.isoformat()]).output
    assert "2 alerts for Acme" in page and all(md_escape(a["summary"], line_start=True) in page for a in alerts)
    # Two days on, both agree there is none in the last 48 hours.
    later = now + timedelta(days=2)
    quiet = runner.invoke(alerts_command, ["--db", str(path), "--since", "48h"], obj={"clock": lambda: later})
    assert "No alerts matching the filters" in quiet.output
    page = runner.invoke(report_command, ["--db", str(path), "--format", "md", "--as-of", later.isoformat()]).output
    assert "Alerting has not checked any hour from" in page and "usual hourly range" not in page
