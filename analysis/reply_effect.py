"""Does answering turn the thread? The reply effect on the mood of threads that opened negative.

For each thread that opened negative, the outcome is the mood of the customer posts
that came after the brand's first reply: the mean of their labels (+1, 0, -1) times 100,
an NSS in points. An unanswered thread has no reply, so its outcome is read after the
time the brand typically took to answer comparable threads (the median delay of the
answered threads of its stratum): the same part of a thread's life on both sides.

Comparable means the same stratum: brand, source, starting mood (the opening's compound
at or below -0.5, "strongly negative", or above), size (every customer post in the
thread, labelled or not, the opening included: at most 3, or more) and time of day (opened 08:00-19:59 or not, in the brand's business-hours
zone, else UTC). The estimate is the difference answered minus unanswered within each
stratum, averaged with the strata's answered threads as weights: the effect on the
threads the brand answered (ATT). Strata lacking two threads on either side are left out
and their answered threads counted as unmatched.

The 95 % interval is a stratified bootstrap: threads are resampled with replacement
within each stratum and side, keeping the matched design and each thread's posts
together (posts of one thread are not independent), with no assumption of normality for
an outcome bounded at +-100. A regression with stratum fixed effects would give the same
point estimate with a model-based interval; the bootstrap needs no model of the errors.
Checked on a simulator with a known effect and with none (analysis.reply_effect_sim):
the interval's coverage and the false-positive rate are in docs/care.md.

What it cannot say (CAVEATS, printed with every estimate): brands choose whom to answer,
and matching removes only the differences the strata capture; a reply can make a thread
longer or end it, which changes who posts after it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from analysis.mood import mean_nss

STRONG_COMPOUND = -0.5
SMALL_THREAD = 3
DAY_HOURS = range(8, 20)
MIN_PER_SIDE = 2
BOOTSTRAP = 2000

CAVEATS = (
    "Brands choose whom to answer: threads are matched on brand, source, starting mood, size and time "
    "of day, but any other reason to answer (who posted, what they asked) can still bias the figure.",
    "A reply can lengthen or end a thread, which changes who posts after it.",
    "Mood after the reply is read from labelled customer posts only; threads without any are left out.",
)


@dataclass(frozen=True, slots=True)
class ThreadPosts:
    """A thread that opened negative: when, how negative, the brand's first reply (None:
    unanswered), its later labelled customer posts as (time, +1/0/-1), oldest first, and
    its size: all its customer posts, the opening and unlabelled ones included."""

    brand: str
    source: str
    opened_at: datetime
    opening_compound: float
    first_reply_at: datetime | None
    posts: tuple[tuple[datetime, int], ...]
    customer_posts: int


@dataclass(frozen=True, slots=True)
class ReplyEffect:
    effect: float | None  # NSS points of later customer posts, answered minus matched unanswered
    ci: tuple[float, float] | None
    answered: int  # answered threads with an outcome, in matched strata
    unanswered: int
    unmatched_answered: int  # answered threads with an outcome but no comparable unanswered ones
    strata: int
    caveats: tuple[str, ...] = field(default=CAVEATS)

    def to_json(self) -> dict[str, object]:
        return {"effect_nss_points": self.effect, "ci95": list(self.ci) if self.ci else None,
                "answered": self.answered, "unanswered": self.unanswered,
                "unmatched_answered": self.unmatched_answered, "strata": self.strata, "caveats": list(self.caveats)}


def stratum(thread: ThreadPosts, zone: str = "UTC") -> tuple[object, ...]:
    """The stratum of comparable threads (module docstring)."""
    local_hour = thread.opened_at.astimezone(ZoneInfo(zone)).hour
    return (thread.brand, thread.source, thread.opening_compound <= STRONG_COMPOUND,
            thread.customer_posts <= SMALL_THREAD, local_hour in DAY_HOURS)


def later_mood(thread: ThreadPosts, after: datetime) -> float | None:
    """The NSS of the thread's customer posts after ``after`` (None: none)."""
    values = [value for at, value in thread.posts if at > after]
    return mean_nss(len(values), sum(values))


def matched_outcomes(threads: Sequence[ThreadPosts], zone: str = "UTC"
                     ) -> tuple[dict[tuple[object, ...], tuple[list[float], list[float]]], int]:
    """Per stratum, the outcomes of answered and of unanswered threads; and how many
    answered threads had an outcome but no comparable unanswered ones."""
    groups: dict[tuple[object, ...], list[ThreadPosts]] = defaultdict(list)
    for thread in threads:
        groups[stratum(thread, zone)].append(thread)
    matched: dict[tuple[object, ...], tuple[list[float], list[float]]] = {}
    unmatched = 0
    for key, members in groups.items():
        answered = [t for t in members if t.first_reply_at is not None]
        if not answered:
            continue
        delay = statistics.median((t.first_reply_at - t.opened_at) / timedelta(seconds=1) for t in answered)  # type: ignore[operator]
        treated = [y for t in answered if (y := later_mood(t, t.first_reply_at)) is not None]  # type: ignore[arg-type]
        control = [y for t in members if t.first_reply_at is None
                   and (y := later_mood(t, t.opened_at + timedelta(seconds=delay))) is not None]
        if len(treated) >= MIN_PER_SIDE and len(control) >= MIN_PER_SIDE:
            matched[key] = (treated, control)
        else:
            unmatched += len(treated)
    return matched, unmatched


def estimate(threads: Sequence[ThreadPosts], *, zone: str = "UTC", bootstrap: int = BOOTSTRAP,
             seed: int = 0) -> ReplyEffect:
    """The reply effect and its stratified-bootstrap 95 % interval (module docstring)."""
    matched, unmatched = matched_outcomes(threads, zone)
    if not matched:
        return ReplyEffect(None, None, 0, 0, unmatched, 0)
    weights = np.array([len(t) for t, _ in matched.values()], dtype=float)
    weights /= weights.sum()
    point = float(sum(w * (np.mean(t) - np.mean(c)) for w, (t, c) in zip(weights, matched.values())))
    rng = np.random.default_rng(seed)
    replicates = np.zeros(bootstrap)
    for w, (treated, control) in zip(weights, matched.values()):
        for values, sign in ((np.asarray(treated), 1.0), (np.asarray(control), -1.0)):
            # Spread about the mean by sqrt(n / (n - 1)): resampling n values has a
            # variance (n - 1) / n of the sample's, which made the interval too narrow in
            # the small strata (coverage 89 % instead of 95 % on the simulator).
            n = len(values)
            side = values.mean() + (values - values.mean()) * np.sqrt(n / (n - 1))
            draws = side[rng.integers(0, n, size=(bootstrap, n))]
            replicates += sign * w * draws.mean(axis=1)
    low, high = np.percentile(replicates, [2.5, 97.5])
    return ReplyEffect(point, (float(low), float(high)), sum(len(t) for t, _ in matched.values()),
                       sum(len(c) for _, c in matched.values()), unmatched, len(matched))
