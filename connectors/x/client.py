"""X's transport: the tweepy client we build (no waiting on rate limits of its own, raw
responses, ``base_url`` and a timeout through an HTTP adapter), the status table, and
what X's error bodies and rate-limit headers say.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests
import tweepy
from requests.adapters import HTTPAdapter

from connectors.errors import AuthError, QueryError, excerpt, status_table


X_STATUS_ERRORS = status_table({400: QueryError, 401: AuthError, 403: AuthError})
"""tweepy's statuses: 400 is the query's fault when X says so (else fatal); 401/403 the
bearer token's or the plan's."""
# tweepy logs every request's headers at DEBUG, the bearer token included: a debug run
# of the listener must not write the secret to its log.
logging.getLogger("tweepy.client").setLevel(logging.INFO)
TWEEPY_HOST = "https://api.twitter.com"


# -- HTTP edge --------------------------------------------------------------------------


class BaseUrlAdapter(HTTPAdapter):
    """Sends tweepy's ``https://api.twitter.com`` requests to ``base_url`` instead, with a
    timeout (tweepy sets none, so a hung server would hang the run)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if url.startswith(TWEEPY_HOST) and self.base_url != TWEEPY_HOST:
            request.url = self.base_url + url[len(TWEEPY_HOST):]
            # The session chose proxies for api.twitter.com; choose again for the new host.
            kwargs["proxies"] = requests.utils.get_environ_proxies(request.url)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def build_client(bearer_token: str, base_url: str = TWEEPY_HOST, timeout: float = 30.0) -> tweepy.Client:
    """A tweepy Client that never sleeps or retries on its own, returns raw responses, and
    talks to ``base_url`` with a request timeout."""
    client = tweepy.Client(bearer_token=bearer_token, wait_on_rate_limit=False,
                           return_type=requests.Response)
    client.session.mount(TWEEPY_HOST, BaseUrlAdapter(base_url, timeout))
    return client


def _api_message(response: Any) -> str:
    """X's own words from an error response (v2 ``errors[]`` or problem JSON)."""
    try:
        body = response.json()
    except (ValueError, AttributeError):
        return excerpt(getattr(response, "text", "") or "", 200)
    if not isinstance(body, Mapping):
        return excerpt(body, 200)
    messages = []
    errors = body.get("errors")
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, Mapping):
            text = error.get("message") or error.get("detail") or error.get("title")
            if text:
                messages.append(str(text))
    if not messages:
        messages = [str(body[k]) for k in ("detail", "title", "error") if body.get(k)][:1]
    return excerpt("; ".join(messages), 500)


def _names_query(response: Any) -> bool:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return False
    return any(isinstance(e, Mapping) and isinstance(e.get("parameters"), Mapping) and "query" in e["parameters"]
               for e in errors)


@dataclass(frozen=True, slots=True)


class _Page:
    body: dict[str, Any]
    headers: Mapping[str, str]


def _spent_until(headers: Mapping[str, str]) -> datetime | None:
    """When the rate-limit window resets, if the response says no request is left in it."""
    try:
        if int(headers.get("x-rate-limit-remaining", "1")) > 0:
            return None
        return datetime.fromtimestamp(int(headers["x-rate-limit-reset"]), tz=timezone.utc)
    except (KeyError, ValueError):
        return None
