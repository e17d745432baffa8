"""Alert detection on simulated hourly series: no alerts on a quiet market with a daily
and weekly rhythm, fast detection of injected dips and spikes, and each rule (warm-up,
cooldown, minimum volume, completeness) doing its job.

The simulator follows demo/world.py at the level of hourly counts: root
posts per hour are Poisson with the demo's audience-clock daily shape and weekend
factor, each root gets 0 replies with probability 0.6 else 1 + Geometric (mean 1.5),
replies copy the root's tone half of the time, and the mood target drifts from day to
day (AR(1) market and brand terms, as in the demo world).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.alerts import (
    AlertRule,
    HourlySeries,
    PullRun,
    SourceHour,
    _variance_fit,
    detect,
    distinctive_terms,
    hour_states,
    new_tracks,
    source_breakdown,
    term_exclusions,
    tokens,
    trace,
)
from demo.world import AUDIENCE_UTC_OFFSET, HOURLY_SHAPE, WEEKDAY_FACTOR

START = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday
WARMUP_DAYS = 10  # AlertRule's default: nothing may alert before
RULE = AlertRule()


def _ar(rng: np.random.Generator, days: int, phi: float, sd: float) -> np.ndarray:
    values = [rng.normal(0, sd)]
    for _ in range(days - 1):
        values.append(phi * values[-1] + rng.normal(0, sd * math.sqrt(1 - phi * phi)))
    return np.array(values)


def _tones(rng: np.random.Generator, count: int, p_pos: float, p_neg: float) -> np.ndarray:
    u = rng.random(count)
    return np.where(u < p_pos, 1, np.where(u < p_pos + p_neg, -1, 0))


def simulate(seed: int, days: int = WARMUP_DAYS + 14, per_day: float = 800.0, base_nss: float = 18.0,
             opinion: float = 0.62, mood_shift: tuple[int, float, int] | None = None,
             volume_shift: tuple[int, float, int] | None = None) -> HourlySeries:
    """``mood_shift``/``volume_shift``: (first hour, NSS points or volume factor, hours)."""
    rng = np.random.default_rng(seed)
    n = days * 24
    hours = [START + timedelta(hours=h) for h in range(n)]
    local = [h + timedelta(hours=AUDIENCE_UTC_OFFSET) for h in hours]
    mean = np.array([per_day / 1.6 * HOURLY_SHAPE[t.hour] * WEEKDAY_FACTOR[t.weekday()] for t in local])
    target = np.repeat(base_nss + _ar(rng, days, 0.7, 4.0) + _ar(rng, days, 0.5, 2.5), 24)
    if mood_shift:
        first, delta, length = mood_shift
        target[first:first + length] += delta
    if volume_shift:
        first, factor, length = volume_shift
        mean[first:first + length] *= factor
    roots = rng.poisson(mean)
    mentions, positive, negative = np.zeros(n, int), np.zeros(n, int), np.zeros(n, int)
    for h in range(n):
        if roots[h] == 0:
            continue
        p_pos = min(1.0, max(0.0, (opinion + target[h] / 100) / 2))
        p_neg = min(1.0, max(0.0, (opinion - target[h] / 100) / 2))

        root_tones = _tones(rng, roots[h], p_pos, p_neg)
        replies = np.where(rng.random(roots[h]) < 0.6, 0, rng.geometric(2 / 3, roots[h]))
        reply_tones = np.repeat(root_tones, replies)
        copied = rng.random(reply_tones.size) < 0.5
        reply_tones = np.where(copied, reply_tones, _tones(rng, reply_tones.size, p_pos, p_neg))
        every = np.concatenate([root_tones, reply_tones])
        mentions[h], positive[h], negative[h] = every.size, (every == 1).sum(), (every == -1).sum()
    return HourlySeries(
        start=START, mentions=mentions, scored=mentions.copy(), positive=positive, negative=negative,
        complete=np.ones(n, dtype=bool), hour_of_day=np.array([h.hour for h in hours]),
        day=np.array([h.date().toordinal() - datetime(1970, 1, 1).toordinal() for h in hours]),
    )


def opened(series: HourlySeries, rule: AlertRule = RULE, after_day: int = 0):
    events = detect(series, range(len(series)), rule, new_tracks())
    return [e for e in events if e.kind == "open" and e.reading.hour >= START + timedelta(days=after_day)]


def market(count: int, seed: int = 1):
    """Brands of 200 to 5,000 mentions a day, base NSS -10 to +30, opinion rate 50-70 %."""
    rng = np.random.default_rng(seed)
    return [(float(np.exp(rng.uniform(math.log(200), math.log(5000)))), float(rng.uniform(-10, 30)),
             float(rng.uniform(0.5, 0.7))) for _ in range(count)]


# --- no change, no alert -------------------------------------------------------------


@pytest.mark.parametrize("seed, per_day", [(2, 300.0), (3, 800.0), (5, 3000.0)])
def test_a_quiet_market_with_a_daily_and_weekly_rhythm_gives_no_alert(seed, per_day):
    series = simulate(seed, days=28, per_day=per_day)
    assert opened(series) == []


def test_without_the_hour_of_day_baseline_every_morning_would_alert():
    # The same quiet series with the hour of day hidden: the daily rhythm now looks
    # like spikes and dips. This is what the hour-of-day baseline prevents.
    series = simulate(3, days=28, per_day=800.0)
    blind = dataclasses.replace(series, hour_of_day=np.zeros(len(series), dtype=int))
    volume = [e for e in opened(blind) if e.metric == "volume"]
    assert len(volume) >= 5


def test_false_alert_rate_over_50_seeded_two_week_series(capsys):
    """50 brands, 10 days of warm-up, then 2 weeks (700 brand-days) with no change."""
    alerts = []
    for seed, (per_day, base, opinion) in enumerate(market(50)):
        alerts += opened(simulate(100 + seed, per_day=per_day, base_nss=base, opinion=opinion))
    brand_days = 50 * 14
    with capsys.disabled():
        kinds = {f"{e.metric} {e.direction}": sum(1 for a in alerts if (a.metric, a.direction) == (e.metric, e.direction))
                 for e in alerts}
        print(f"\nfalse alerts: {len(alerts)} in {brand_days} brand-days "
              f"({30 * len(alerts) / brand_days:.2f} per brand per 30 days) {kinds}")
    # Measured 6 (0.26 per brand and 30 days) with the default rule; a broken baseline gives dozens.
    assert len(alerts) <= 12


# --- detection -------------------------------------------------------------------------


def _delays(kind: str, magnitude: float, length: int, seeds: int = 20):
    delays = []
    for seed, (per_day, base, opinion) in enumerate(market(seeds, seed=7)):
        first = (WARMUP_DAYS + 7) * 24 + 14 + seed % 6  # a weekday afternoon (UTC) in the second week
        shift = {"mood_shift" if kind == "mood" else "volume_shift": (first, magnitude, length)}
        series = simulate(200 + seed, per_day=per_day, base_nss=base, opinion=opinion, **shift)
        direction = "dip" if magnitude < 0 else "spike"
        hits = [e for e in opened(series) if (e.metric, e.direction) == (kind, direction)
                and 0 <= series.index(e.reading.hour) - first < length]
        delays.append(series.index(hits[0].reading.hour) - first if hits else None)
    return delays


def test_an_injected_mood_dip_is_detected_within_hours(capsys):
    delays = _delays("mood", -30.0, 24)
    found = [d for d in delays if d is not None]
    with capsys.disabled():
        print(f"\nmood dip of 30 NSS points: detected in {len(found)}/{len(delays)} series, "
              f"delay median {np.median(found):.0f} h, max {max(found)} h; {delays}")
    # Measured: 14 of 20, median 4 h; the misses are brands of a few hundred mentions a
    # day, whose hourly NSS is too noisy for a -30 shift to stand out within a day.
    assert len(found) >= 12
    assert np.median(found) <= 6


def test_an_injected_volume_spike_is_detected_within_hours(capsys):
    delays = _delays("volume", 3.0, 6)
    found = [d for d in delays if d is not None]
    with capsys.disabled():
        print(f"\nvolume x3 for 6 h: detected in {len(found)}/{len(delays)} series, "
              f"delay median {np.median(found):.0f} h, max {max(found)} h; {delays}")
    assert len(found) >= 17
    assert np.median(found) <= 3


def test_a_big_brand_dip_is_found_in_the_first_hours_and_closes_after():
    first = (WARMUP_DAYS + 4) * 24 + 15
    series = simulate(11, per_day=2000.0, mood_shift=(first, -35.0, 8))
    events = [e for e in detect(series, range(len(series)), RULE, new_tracks()) if e.metric == "mood"]
    assert [(e.kind, e.direction) for e in events][:2] == [("open", "dip"), ("close", "dip")]
    assert series.index(events[0].reading.hour) - first <= 3
    assert events[0].reading.effect <= -15
    assert series.index(events[1].reading.hour) > first + 8  # closes once the hours are back


# --- the rule's parts --------------------------------------------------------------------


def test_no_alert_during_the_warm_up():
    early = simulate(21, per_day=1500.0, volume_shift=(6 * 24 + 15, 6.0, 4))
    assert [e for e in opened(early) if e.metric == "volume"] == []
    late = simulate(21, per_day=1500.0, volume_shift=((WARMUP_DAYS + 2) * 24 + 15, 6.0, 4))
    assert [e.direction for e in opened(late) if e.metric == "volume"] == ["spike"]


def test_the_cooldown_suppresses_a_second_alert_soon_after_the_first():
    first = (WARMUP_DAYS + 2) * 24 + 14
    series = simulate(22, per_day=1500.0, volume_shift=(first, 6.0, 2))
    second = simulate(22, per_day=1500.0, volume_shift=(first + 8, 6.0, 2))
    both = dataclasses.replace(series, mentions=np.maximum(series.mentions, second.mentions))
    spikes = [e for e in opened(both) if (e.metric, e.direction) == ("volume", "spike")]
    assert len(spikes) == 1
    no_cooldown = [e for e in opened(both, dataclasses.replace(RULE, cooldown_hours=0))
                   if (e.metric, e.direction) == ("volume", "spike")]
    assert len(no_cooldown) == 2


def test_hours_below_the_minimum_volume_do_not_update_mood():
    first = (WARMUP_DAYS + 2) * 24
    series = simulate(23, per_day=120.0, mood_shift=(first, -60.0, 72))  # about 5 mentions an hour
    mood = trace(series, "mood", RULE)
    assert not mood.update[series.scored < RULE.min_mentions].any()
    assert [e for e in opened(series) if e.metric == "mood"] == []
    lenient = dataclasses.replace(RULE, min_mentions=3)
    assert [e.direction for e in opened(series, lenient) if e.metric == "mood"][:1] == ["dip"]


def test_incomplete_hours_are_never_alerted_on_and_stay_out_of_baselines():
    first = (WARMUP_DAYS + 2) * 24 + 14
    series = simulate(24, per_day=1500.0, volume_shift=(first, 6.0, 4))
    assert [e.direction for e in opened(series) if e.metric == "volume"] == ["spike"]
    complete = series.complete.copy()
    complete[first:first + 4] = False
    gappy = dataclasses.replace(series, complete=complete)
    assert [e for e in opened(gappy) if e.metric == "volume"] == []
    volume = trace(gappy, "volume", RULE)
    assert not volume.update[first:first + 4].any()


def test_the_variance_fit_recovers_overdispersion_and_drift():
    rng = np.random.default_rng(0)
    for phi, tau in [(1.0, 0.0), (1.5, 5.0), (1.2, 10.0)]:
        fits = []
        for _ in range(100):
            sampling = 6600 / rng.integers(10, 200, 168)
            residuals = rng.normal(0, np.sqrt(phi * sampling + tau * tau))
            fits.append(_variance_fit(residuals ** 2, sampling))
        got_phi, got_tau = np.mean([f[0] for f in fits]), np.mean([math.sqrt(f[1]) for f in fits])
        assert abs(got_phi - phi) < 0.25 and abs(got_tau - tau) < 1.5, (phi, tau, got_phi, got_tau)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=24 * 4, max_size=24 * 12), st.integers(0, 2 ** 32 - 1))
def test_any_counts_give_finite_statistics_or_none(counts, seed):
    rng = np.random.default_rng(seed)
    mentions = np.array(counts)
    positive = rng.binomial(mentions, 0.4)
    negative = rng.binomial(mentions - positive, 0.3)
    n = len(mentions)
    series = HourlySeries(START, mentions, mentions.copy(), positive, negative, rng.random(n) > 0.1,
                          np.arange(n) % 24, np.arange(n) // 24)
    rule = dataclasses.replace(RULE, warmup_days=3)
    for metric in ("mood", "volume"):
        tr = trace(series, metric, rule)
        assert np.isfinite(tr.e).all()
        has = np.isfinite(tr.limit)
        assert (tr.limit[has] > 0).all() and np.isfinite(tr.value[has]).all()
    detect(series, range(n), rule, new_tracks())


# --- completeness --------------------------------------------------------------------


H = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)


def states(runs, now, **kwargs):
    return hour_states([H], runs, now=now, rule=RULE, **kwargs)[0]


def test_an_hour_is_ready_once_every_active_source_has_an_ok_run_after_its_end():
    runs = [PullRun("x", H - timedelta(hours=2), "ok"), PullRun("reddit", H - timedelta(hours=1), "ok"),
            PullRun("x", H + timedelta(hours=1, minutes=5), "ok")]
    assert states(runs, H + timedelta(hours=1, minutes=10)) == "waiting"  # reddit has not run since
    runs.append(PullRun("reddit", H + timedelta(hours=1, minutes=12), "ok"))
    assert states(runs, H + timedelta(hours=1, minutes=15)) == "ready"
    assert states(runs, H + timedelta(minutes=59)) == "waiting"  # not over yet


def test_a_failed_run_keeps_the_hour_waiting_until_a_later_ok_run_covers_it():
    runs = [PullRun("x", H - timedelta(hours=1), "ok"), PullRun("x", H + timedelta(hours=1, minutes=5), "failed")]
    assert states(runs, H + timedelta(hours=2)) == "waiting"
    assert states(runs + [PullRun("x", H + timedelta(hours=2, minutes=5), "ok")], H + timedelta(hours=3)) == "ready"
    # Never covered: after max_wait_hours the hour is given up as incomplete.
    assert states(runs, H + timedelta(hours=1 + RULE.max_wait_hours)) == "incomplete"
    # A stopped run (shutdown) is not a complete one either.
    assert states([PullRun("x", H + timedelta(hours=1, minutes=5), "stopped")], H + timedelta(hours=2)) == "waiting"


def test_only_configured_sources_are_waited_for_and_a_back_fill_counts():
    runs = [PullRun("x", H - timedelta(hours=3), "ok"), PullRun("survey", H - timedelta(hours=3), "ok"),
            PullRun("x", H + timedelta(hours=1, minutes=1), "ok")]
    assert states(runs, H + timedelta(hours=2)) == "waiting"  # the import 'survey' is a source too
    assert states(runs, H + timedelta(hours=2), sources=["x"]) == "ready"
    # A first run days later that back-filled the hour (the demo, a new install) covers it.
    assert states([PullRun("demo", H + timedelta(days=30), "ok")], H + timedelta(days=30, hours=1)) == "ready"
    # No source at all: nothing was collecting; the hour is not observed.
    assert states([], H + timedelta(hours=1 + RULE.max_wait_hours)) == "incomplete"


def test_pending_rollups_and_low_coverage_hold_or_drop_the_hour():
    runs = [PullRun("x", H + timedelta(hours=1, minutes=1), "ok")]
    assert states(runs, H + timedelta(hours=2), pending=[H]) == "waiting"
    assert states(runs, H + timedelta(hours=2), low_coverage=[H]) == "incomplete"
    assert states(runs, H + timedelta(days=5), low_coverage=[H]) == "incomplete"


# --- explanation ---------------------------------------------------------------------


def test_distinctive_terms_find_what_is_new_and_leave_out_the_brand_and_stop_words():
    baseline = [f"Acme coffee is nice today, the {w} was fine" for w in ("latte", "mocha", "tea", "cake")] * 50
    window = ["Acme recall: my cup leaked and the lid broke, I want a refund from @acme",
              "the Acme recall is a joke, cup leaked everywhere #acme",
              "did you hear about the Acme recall? leaked cup https://acme.example/recall",
              "Acme coffee is nice today, the latte was fine"] * 3
    terms = distinctive_terms(window, baseline, term_exclusions(["Acme", "#acme", "@acme"]))
    words = [t["term"] for t in terms]
    assert words[:3] == sorted(words[:3], key=lambda w: -next(t["z"] for t in terms if t["term"] == w))
    assert {"recall", "leaked", "cup"} <= set(words)
    assert not {"acme", "the", "is", "latte", "https"} & set(words)
    assert all(t["z"] >= 3 for t in terms)
    assert distinctive_terms(baseline[:20], baseline) == []  # nothing new, nothing claimed
    assert tokens("I can't believe it's $5!! Acme's #NewCup @bob", term_exclusions(["Acme"])) == {"believe", "newcup"}


def test_source_breakdown_names_the_source_that_carries_the_change():
    hours = [H + timedelta(hours=i) for i in range(-48, 2)]
    window, baseline = hours[-2:], hours[:-2]
    rows = [SourceHour("x", h, 10, 10, 5, 1) for h in hours]
    rows += [SourceHour("reddit", h, 4, 4, 2, 0) for h in baseline]
    rows += [SourceHour("reddit", h, 40, 40, 2, 30) for h in window]
    out = source_breakdown(rows, window, baseline, lambda h: h.hour, "volume")
    assert [s["source"] for s in out] == ["reddit", "x"]
    assert out[0]["mentions"] == 80 and out[0]["expected_mentions"] == 8.0 and out[0]["contribution"] == 72.0
    mood = source_breakdown(rows, window, baseline, lambda h: h.hour, "mood")
    assert mood[0]["source"] == "reddit" and mood[0]["nss"] == -70.0 and mood[0]["baseline_nss"] == 50.0


def test_written_out_distribution_constants_match_scipy():
    import math

    from scipy.stats import chi2, norm

    from analysis import alerts

    assert alerts._CHI2_MEDIAN == pytest.approx(chi2.ppf(0.5, 1), rel=1e-12)
    assert alerts._CHI2_99 == pytest.approx(chi2.ppf(0.99, 1), rel=1e-12)
    assert alerts._TRUNCATED_MEAN == pytest.approx(chi2.cdf(alerts._CHI2_99, 3) / 0.99, rel=1e-12)
    q = norm.ppf(0.5 + alerts._TRIM / 2)
    assert alerts._TRIM_Q == pytest.approx(q, rel=1e-12)
    assert alerts._TRIM_FACTOR == pytest.approx(math.sqrt(1 - 2 * q * norm.pdf(q) / alerts._TRIM), rel=1e-12)


def test_an_alert_summary_writes_the_hour_as_the_report_does():
    """The summary is read by people (the report's 48 hours, chat, the live view): its hour
    is written by the report's one formatter, not as "2026-11-21 09:00 UTC"."""
    from analysis.alerts import Reading, summarize
    from analysis.timefmt import human_time

    hour = datetime(2026, 11, 21, 9, tzinfo=timezone.utc)
    reading = Reading("mood", hour, -5.0, 3.0, -4.0, 15.2, -19.2, 120, True, True, hour - timedelta(hours=2))
    text = summarize("Brewly", reading, "dip")
    assert text.startswith(f"Brewly: mood dip at {human_time(hour)}: ") and "21 Nov 2026, 09:00 UTC" in text
