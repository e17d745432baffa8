"""Retries with our own cap: exponential backoff, full jitter, honouring retry-after.

Client libraries' own retry loops are not trusted to stop (tweepy with
``wait_on_rate_limit`` and no reset header recurses until RecursionError;
Mastodon.py's "wait" retries forever), so connectors turn them off and call through
``with_retries``. ``sleep`` and ``rng`` are injected so tests run instantly and
deterministically.

A connector's errors name what they were doing (``x search: 429 rate limited by X``),
so a retry notice is the error itself and the wait, never a label before it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from connectors.errors import RetryableError

T = TypeVar("T")
log = logging.getLogger("listener.connectors")

NOTICEABLE_WAIT_SECONDS = 10.0
"""A wait this long is a warning (a user would take the silence for a hang); shorter ones
are detail for ``-v`` and the daemon's log: a failure is reported once, by its run."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    """Total tries, the first included."""
    base_delay: float = 1.0
    max_delay: float = 60.0
    """Cap on any one wait, including a server's retry-after: a longer wait is the next
    scheduled run's job, not this run's."""
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_delay)
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return self.rng.uniform(0, backoff)


def with_retries(call: Callable[[], T], policy: RetryPolicy) -> T:
    """Run ``call``; on RetryableError wait and try again, up to ``policy.attempts``.

    A retry-after longer than ``max_delay`` is not waited for: the error is raised at
    once so the run ends cleanly and the next scheduled run resumes from the cursor.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except RetryableError as exc:
            too_long = exc.retry_after is not None and exc.retry_after > policy.max_delay
            if attempt == policy.attempts or too_long:
                raise
            wait = policy.delay(attempt, exc.retry_after)
            level = logging.WARNING if wait >= NOTICEABLE_WAIT_SECONDS else logging.INFO
            log.log(level, "%s; retry %d/%d in %.1fs", exc, attempt, policy.attempts - 1, wait)
            policy.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
