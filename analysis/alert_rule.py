"""The alert rule's parameters (analysis.alerts applies them; docs/alerts.md justifies
each default).

Its own module, without numpy: the config (listener.config) builds an AlertRule for
every brand, so every 'listener' start imports this, while only the commands that
detect alerts need analysis.alerts and numpy (0.1 CPU s to import).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class AlertRule:
    """The detection rule's parameters; docs/alerts.md justifies each default."""

    baseline_days: int = 7
    warmup_days: int = 10
    scale_days: int = 28
    ewma_lambda: float = 0.2
    limit_sigmas: float = 3.5
    min_mentions: int = 10
    min_nss_change: float = 5.0
    min_volume_ratio: float = 1.5
    cooldown_hours: int = 12
    max_wait_hours: int = 6
    min_coverage: float = 0.7

    @property
    def baseline_hours(self) -> int:
        return self.baseline_days * 24

    @property
    def burn_in(self) -> int:
        """Updates after which the EWMA has forgotten its start (its weight < 0.1 %)."""
        return math.ceil(math.log(0.001) / math.log(1 - self.ewma_lambda)) if self.ewma_lambda < 1 else 1

    @property
    def history_hours(self) -> int:
        """Hours of data before the first hour to evaluate that make its reading the
        same whichever run computes it: the scale window, the EWMA's burn-in (in
        hours, allowing for quiet hours that do not update mood) and a baseline."""
        return self.scale_days * 24 + 3 * self.burn_in + self.baseline_hours
