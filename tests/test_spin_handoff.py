"""The spinning hand-off of two parts (kernels/_spin.py): both parts run, on two threads,
exceptions reach the caller, a worker that went to sleep is woken, and an LSTM call gives
the same numbers through it as through the pool."""

import threading
import time

import numpy as np
import pytest

pytest.importorskip("numba")

from kioku.kernels import _spin, _threads  # noqa: E402


def test_both_parts_run_on_two_threads():
    seen = {}

    def task(part):
        seen[part] = threading.current_thread().name

    for _ in range(50):
        seen.clear()
        _threads.run_parts(task, 2, single_blas=False, spin=True)
        assert set(seen) == {0, 1}
        assert seen[0] != seen[1] and seen[1].startswith("kioku")


def test_worker_asleep_is_woken():
    hits = []
    _threads.run_parts(hits.append, 2, single_blas=False, spin=True)
    time.sleep(0.05)  # far past SPIN_LOOPS: the worker sleeps on its semaphore now
    assert _spin.load(_spin._worker.flags, _spin.SLEEPING) == 1
    _threads.run_parts(hits.append, 2, single_blas=False, spin=True)
    assert sorted(hits) == [0, 0, 1, 1]


@pytest.mark.parametrize("failing", [0, 1])
def test_exception_reaches_caller_and_worker_survives(failing):
    def task(part):
        if part == failing:
            raise RuntimeError(f"part {part}")

    with pytest.raises(RuntimeError, match=f"part {failing}"):
        _threads.run_parts(task, 2, single_blas=False, spin=True)
    hits = []
    _threads.run_parts(hits.append, 2, single_blas=False, spin=True)
    assert sorted(hits) == [0, 1]


def test_busy_worker_falls_back_to_pool():
    worker = _spin.claim()
    assert worker is not None
    try:
        names = {}
        _threads.run_parts(
            lambda part: names.__setitem__(part, threading.current_thread().name), 2, False, True
        )
        assert names[1].startswith("kioku") and names[1] != "kioku-spin"
    finally:
        worker.lock.release()


def test_training_calls_use_the_pool():
    names = {}
    _threads.run_parts(lambda part: names.__setitem__(part, threading.current_thread().name), 2)
    assert names[1].startswith("kioku") and names[1] != "kioku-spin"


def test_lstm_same_through_spin_and_pool(monkeypatch):
    from kioku.nn import LSTM, no_grad

    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    rng = np.random.default_rng(3)
    lstm = LSTM(200, 200)
    x = rng.standard_normal((5, 20, 200)).astype(np.float32)
    with no_grad():
        y_spin, (h_spin, c_spin) = lstm(x)
        monkeypatch.setattr(_threads, "SPIN_HANDOFF", False)
        y_pool, (h_pool, c_pool) = lstm(x)
    assert np.array_equal(y_spin, y_pool)
    assert np.array_equal(h_spin, h_pool) and np.array_equal(c_spin, c_pool)
