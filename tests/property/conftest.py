"""Hypothesis profiles for the hostile-input properties (issue 7).

``ci`` (the default) is deterministic: ``derandomize=True`` derives every example from
the test itself, so the same command draws the same examples on every machine and run,
and no example database is written into the checkout. (Hypothesis also mixes in
constants it reads from the source of the project modules imported, so running a
subset, ``-k`` or one file, may draw other examples than the whole directory: both are
reproducible.) Its ``max_examples`` keeps this whole directory well under two minutes
on a 2-core machine (about 20 s measured).

``dev`` searches harder and at random, keeping failures in the local example database:
``HYPOTHESIS_PROFILE=dev .venv/bin/python -m pytest tests/property``. A failure found
there goes into the test as an explicit ``@example`` so that ``ci`` covers it from then on.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,  # 2 shared cores: wall-clock deadlines would make the suite flaky
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
