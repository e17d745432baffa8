"""``listener demo`` pauses Python's cycle collector while it runs (listener.demo: a
fifth of its CPU went to collector passes) and must leave it as it found it, also when
the demo fails: the CLI's in-process callers (click's CliRunner, the tests) go on."""

from __future__ import annotations

import gc

import pytest

from listener.demo import _collector_paused


def test_the_collector_is_paused_and_restored_even_after_a_failure():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("the demo failed")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off():
    gc.disable()
    try:
        with _collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
