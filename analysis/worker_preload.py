"""Imported by the fork server of the import workers (analysis.parallel_scoring.worker_pool)
and nowhere else: it loads what every worker needs (VADER's lexicon, py3langid's model and
its batch form) once, in the fork server, so each worker forked from it starts with them
(shared copy-on-write) instead of loading its own: one load instead of N, before the
first chunk instead of N at once while the writer waits (analysis.parallel_scoring)."""

from analysis.language import _batch_model
from analysis.parallel_scoring import worker_vader

worker_vader()
_batch_model()
