"""Delivering alerts: a webhook (Slack-compatible JSON) and e-mail (SMTP).

The webhook goes through ``requests``: tweepy and praw are built on it, and so are our
own plain-HTTP connectors (connectors/http.py), so it is already installed, pinned and
understood here; httpx is only present as atproto's dependency.

Each ``send`` makes up to ``attempts`` attempts, waits between them with the injected
``sleep`` (backoff 1, 2, 4 ... s with jitter, or the server's Retry-After, capped), and
returns every attempt, so the caller records each one. Errors that retrying cannot fix
(a 4xx answer, a refused login or recipient) end the attempts at once.

Secrets: the webhook URL (whoever holds a Slack webhook URL can post to the channel)
and the SMTP password never appear in an attempt's error, a log line or an exception
message. Errors are written by this module from the exception's type and the server's
status, and every error text passes through ``Redactor`` before it leaves; urllib3's
own debug log lines (which name the request path: the secret part of a Slack URL) are
redacted by a logging filter.
"""

from __future__ import annotations

import base64
import logging
import random
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import requests

from analysis.alerts import describe
from connectors.base import Clock
from connectors.errors import excerpt, redact, register_secret
from connectors.http import retry_after_seconds

log = logging.getLogger("listener")

Sleep = Callable[[float], None]

# Longest wait between two attempts, whatever Retry-After says: the hourly stage must
# not stall; the next run retries anyway.
MAX_WAIT_SECONDS = 30.0
# Slack's limits: a header block's text, a section's text, a message's text.
_HEADER_LIMIT, _SECTION_LIMIT, _TEXT_LIMIT = 150, 3000, 4000


class Redactor(logging.Filter):
    """Replaces secrets in text; as a logging filter, in every record it sees. The
    secrets and their redaction (every encoding) are connectors.errors': one registry."""

    def add(self, *secrets: str) -> None:
        for secret in secrets:
            register_secret(secret)

    def __call__(self, text: str) -> str:
        return redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


REDACTOR = Redactor()
# urllib3 logs "POST /services/T000/B000/XXXX HTTP/1.1" at DEBUG: the path is the secret.
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3"):
    logging.getLogger(_name).addFilter(REDACTOR)


def url_secrets(url: str) -> list[str]:
    """The parts of a webhook URL that must not be shown: itself, its path (with query)."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return [url, path if len(path) > 1 else ""]


def password_secrets(username: str, password: str) -> list[str]:
    """The password and the base64 forms it travels in (AUTH PLAIN and LOGIN)."""
    if not password:
        return []
    return [password, base64.b64encode(password.encode()).decode(),
            base64.b64encode(f"\0{username}\0{password}".encode()).decode()]


@dataclass(frozen=True)
class Message:
    """One alert, ready for any channel."""

    subject: str
    text: str
    slack: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    channel: str
    attempted_at: datetime
    status: str  # sent | failed
    error: str | None = None


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_message(alert: Mapping[str, Any]) -> Message:
    """The subject, plain text and Slack payload of a stored alert (storage.alerts)."""
    lines = describe(alert)
    state = "open" if alert.get("closed_at") is None else f"closed {alert['closed_at']:%Y-%m-%d %H:%M} UTC"
    footer = f"Alert #{alert['alert_id']} ({state}); 'listener alerts' shows the history."
    text = "\n".join([*lines, "", footer])
    explanation = alert.get("explanation") or {}
    details = []
    for line in lines[1:]:
        if line.startswith("Conversations:"):
            break
        details.append(_slack_escape(line))
    conversations = explanation.get("conversations") or []
    for c in conversations:
        title = _slack_escape(_clip((c.get("title") or c["conversation_id"]).replace("\n", " "), 90))
        link = f"<{c['url']}|{title}>" if c.get("url") else title
        details.append(f"• [{_slack_escape(c['source'])}] {link} ({c['mentions']} mentions, "
                       f"{c['negative']} negative, {c['positive']} positive)")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(
            f"{alert['brand']}: {alert['metric']} {alert['direction']}", _HEADER_LIMIT)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(_slack_escape(alert["summary"]), _SECTION_LIMIT)}},
    ]
    if details:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(details), _SECTION_LIMIT)}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(footer)}]})
    return Message(
        subject=_clip(f"[listener] {alert['summary']}", 200),
        text=text,
        slack={"text": _clip(text, _TEXT_LIMIT), "blocks": blocks},
    )


class _Retrying:
    """Attempts with backoff; subclasses make one attempt and say whether to retry."""

    channel = "?"

    def __init__(self, attempts: int, clock: Clock, sleep: Sleep, redactor: Redactor,
                 jitter: Callable[[], float] | None = None) -> None:
        self.attempts = attempts
        self.clock = clock
        self.sleep = sleep
        self.redactor = redactor
        self.jitter = jitter or random.random

    def _attempt(self, message: Message) -> tuple[str | None, bool, float | None]:
        """One try: (error or None when sent, worth retrying, seconds the server asked to wait)."""
        raise NotImplementedError

    def send(self, message: Message) -> list[Attempt]:
        made: list[Attempt] = []
        for number in range(1, self.attempts + 1):
            at = self.clock()
            error, retry, wait = self._attempt(message)
            if error is None:
                made.append(Attempt(self.channel, at, "sent"))
                return made
            made.append(Attempt(self.channel, at, "failed", self.redactor(error)))
            if not retry or number == self.attempts:
                break
            backoff = 2.0 ** (number - 1) * (1 + 0.25 * self.jitter())
            self.sleep(min(wait if wait is not None else backoff, MAX_WAIT_SECONDS))
        return made


class WebhookNotifier(_Retrying):
    """POSTs the Slack payload as JSON; any 2xx is success."""

    channel = "webhook"

    def __init__(self, url: str, *, timeout: float, attempts: int, clock: Clock, sleep: Sleep = time.sleep,
                 session: requests.Session | None = None, redactor: Redactor = REDACTOR,
                 jitter: Callable[[], float] | None = None) -> None:
        super().__init__(attempts, clock, sleep, redactor, jitter)
        redactor.add(*url_secrets(url))
        self.url = url
        self.timeout = timeout
        self.session = session or requests.Session()

    def _attempt(self, message: Message) -> tuple[str | None, bool, float | None]:
        try:
            response = self.session.post(self.url, json=message.slack, timeout=self.timeout)
        except requests.Timeout:
            return f"no answer within {self.timeout:g} s", True, None
        except requests.ConnectionError:
            return "could not connect to the webhook's host", True, None
        except requests.RequestException as exc:
            # The exception's text names the URL: say only what kind of failure it was.
            return f"request failed ({type(exc).__name__})", False, None
        if 200 <= response.status_code < 300:
            return None, False, None
        body = " ".join(excerpt(response.text, 200).split())
        error = f"HTTP {response.status_code} {response.reason or ''}".rstrip() + (f": {body}" if body else "")
        retry = response.status_code in (408, 429) or response.status_code >= 500
        return error, retry, retry_after_seconds(response.headers.get("Retry-After"), self.clock())


class EmailNotifier(_Retrying):
    """Sends a plain-text e-mail through SMTP with STARTTLS, implicit TLS or neither."""

    channel = "email"

    def __init__(self, *, host: str, port: int, security: str, sender: str, recipients: Sequence[str],
                 username: str = "", password: str = "", timeout: float, attempts: int, clock: Clock,
                 sleep: Sleep = time.sleep, ssl_context: ssl.SSLContext | None = None,
                 redactor: Redactor = REDACTOR, jitter: Callable[[], float] | None = None) -> None:
        super().__init__(attempts, clock, sleep, redactor, jitter)
        if security not in ("starttls", "ssl", "none"):
            raise ValueError(f"security must be starttls, ssl or none, not {security!r}")
        redactor.add(*password_secrets(username, password))
        self.host, self.port, self.security = host, port, security
        self.sender, self.recipients = sender, tuple(recipients)
        self.username, self.password = username, password
        self.timeout = timeout
        self.ssl_context = ssl_context

    def email(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        mail.set_content(message.text)
        return mail

    def _attempt(self, message: Message) -> tuple[str | None, bool, float | None]:
        context = self.ssl_context or ssl.create_default_context()
        try:
            if self.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=context)
                if self.username:
                    client.login(self.username, self.password)
                client.send_message(self.email(message))
        except smtplib.SMTPAuthenticationError as exc:
            return f"the SMTP server refused the login of {self.username!r} ({exc.smtp_code})", False, None
        except smtplib.SMTPRecipientsRefused as exc:
            return f"the SMTP server refused the recipients {', '.join(sorted(exc.recipients))}", False, None
        except smtplib.SMTPNotSupportedError as exc:
            return f"the SMTP server does not support what security = {self.security!r} needs: {exc}", False, None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            return f"SMTP {exc.smtp_code}: {excerpt(' '.join(text.split()), 200)}", 400 <= exc.smtp_code < 500, None
        except ssl.SSLError as exc:
            return f"TLS with {self.host}:{self.port} failed: {exc.reason or type(exc).__name__}", False, None
        except (smtplib.SMTPException, OSError) as exc:
            return f"SMTP with {self.host}:{self.port} failed: {type(exc).__name__}: {exc}", True, None
        return None, False, None


def deliver(notifier: _Retrying, alerts: Iterable[Mapping[str, Any]]) -> Iterable[tuple[Mapping[str, Any], list[Attempt]]]:
    """Send ``alerts`` one by one, yielding each with its attempts; stops after an alert
    that could not be sent (the channel is likely down; the rest wait for the next run)."""
    for alert in alerts:
        attempts = notifier.send(build_message(alert))
        yield alert, attempts
        if attempts[-1].status != "sent":
            return
