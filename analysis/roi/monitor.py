"""Monitoring, not causal inference: the hourly EWMA of standardised NSS that tells a
marketer to adjust a campaign while it runs (docs/roi-method.md, estimator 7).

    z_h = (NSS_h - mu) / (s_h * sqrt(kappa))        s_h = 100 sqrt((p+ + p- - (p+ - p-)^2) / T_h)
    E_h = lambda z_h + (1 - lambda) E_{h-1},  E_0 = 0
    limits = +- L sqrt(lambda / (2 - lambda)),   lambda = 0.2, L = 3

``mu`` and the label shares (p+, p-) inside ``s_h`` come from the baseline hours, so an
hour's SE depends only on its volume (an all-positive hour does not get SE 0).
``kappa`` is the baseline's variance of the raw z (at least 1): hourly mood varies more
than binomial sampling alone (real shifts within a day, threads copying a tone), and
without it a quiet week would raise alarms. An hour with no scored mention has no z;
the EWMA carries over unchanged. The limits are the asymptotic ones (as the method
writes them); the first few hours' EWMA variance is smaller, so early alarms err on the
late side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LAMBDA = 0.2
LIMIT_SIGMAS = 3.0


def ewma_limit(lam: float = LAMBDA, sigmas: float = LIMIT_SIGMAS) -> float:
    """Half-width of the EWMA control band: L sqrt(lambda / (2 - lambda)); 1.0 at the defaults."""
    return sigmas * math.sqrt(lam / (2.0 - lam))


@dataclass(frozen=True, eq=False)
class EwmaMonitor:
    """Per hour: ``z`` (NaN when the hour has no mention), ``ewma``, and ``alarm``
    (-1 below the lower limit, +1 above the upper, 0 inside)."""

    hours: tuple
    nss: np.ndarray
    z: np.ndarray
    ewma: np.ndarray
    limit: float
    alarm: np.ndarray
    baseline_nss: float
    kappa: float
    lam: float


def ewma_monitor(hours: Sequence, total, positive, negative, *, baseline: slice | np.ndarray | None = None,
                 lam: float = LAMBDA, sigmas: float = LIMIT_SIGMAS) -> EwmaMonitor:
    """EWMA of standardised hourly NSS over ``hours``. ``baseline`` selects the hours
    (a slice or a boolean mask) that define "normal"; default: all of them."""
    if not 0 < lam <= 1:
        raise ValueError("lambda must be in (0, 1]")
    t = np.asarray(total, dtype=float)
    p = np.asarray(positive, dtype=float)
    n = np.asarray(negative, dtype=float)
    if not (t.shape == p.shape == n.shape == (len(hours),)):
        raise ValueError("one count per hour")
    base = np.ones(t.shape[0], dtype=bool) if baseline is None else np.zeros(t.shape[0], dtype=bool)
    if baseline is not None:
        base[baseline] = True
    tb = t[base].sum()
    if tb <= 0:
        raise ValueError("the baseline hours have no scored mention")
    pp, pn = p[base].sum() / tb, n[base].sum() / tb
    mu = 100 * (pp - pn)
    unit_sd = 100 * math.sqrt(max(pp + pn - (pp - pn) ** 2, 1e-12))
    with np.errstate(invalid="ignore", divide="ignore"):
        nss = np.where(t > 0, 100 * (p - n) / np.where(t > 0, t, 1), np.nan)
        raw = (nss - mu) / (unit_sd / np.sqrt(np.where(t > 0, t, 1)))
    raw[t <= 0] = np.nan
    rb = raw[base & np.isfinite(raw)]
    kappa = max(float(np.mean(rb ** 2)), 1.0) if rb.size >= 2 else 1.0
    z = raw / math.sqrt(kappa)
    ewma = np.empty_like(z)
    e = 0.0
    for i, v in enumerate(z):
        if math.isfinite(v):
            e = lam * v + (1 - lam) * e
        ewma[i] = e
    limit = ewma_limit(lam, sigmas)
    alarm = np.where(ewma > limit, 1, np.where(ewma < -limit, -1, 0))
    return EwmaMonitor(tuple(hours), nss, z, ewma, limit, alarm, float(mu), kappa, lam)
