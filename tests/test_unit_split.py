"""kernels/_unit_split.py: a batch too small to split by rows splits each step by hidden
units over the threads, with a barrier per step. Its results are the float64 reference's
within float32 rounding, at every thread count, in both directions, with and without an
initial state, and at widths that leave the last panel part empty; a failing part never
leaves the others waiting at the barrier."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("numba")

from numba import njit  # noqa: E402
from tolerance import assert_close, direction_depth  # noqa: E402

from kioku import functional  # noqa: E402
from kioku.kernels import _path, _threads, _unit_split, numba_lstm  # noqa: E402
from kioku.kernels._packed import NR  # noqa: E402


def _arrays(seed: int, T: int, B: int, I: int, H: int):
    rng = np.random.default_rng(seed)

    def arr(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    return dict(
        x=arr(T, B, I, scale=1.0), weight_ih=arr(4 * H, I), weight_hh=arr(4 * H, H),
        bias=arr(4 * H), h0=arr(B, H, scale=1.0), c0=arr(B, H, scale=1.0),
    ), arr(T, B, H, scale=1.0)  # fmt: skip


def _reference(args: dict, dy: np.ndarray, reverse: bool, with_state: bool):
    f64 = {k: v.astype(np.float64) for k, v in args.items()}
    if not with_state:
        f64["h0"] = f64["c0"] = None
    y, h_n, c_n, cache = functional.lstm_forward(
        f64["x"], f64["weight_ih"], f64["weight_hh"], f64["bias"], f64["h0"], f64["c0"],
        None, reverse,
    )  # fmt: skip
    grads = functional.lstm_backward(dy.astype(np.float64), cache, h_n * 0.5, c_n * 0.5)
    return y, h_n, c_n, grads


@pytest.mark.parametrize("T, B, I, H", [(6, 1, 33, 130), (5, 3, 64, 200), (4, 4, 128, 256)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_split_by_units_matches_the_reference(monkeypatch, T, B, I, H, reverse, with_state):
    monkeypatch.setattr(_threads, "MIN_FLOPS", float("inf"))  # no split by rows
    monkeypatch.setattr(_threads, "UNITS_MIN_FLOPS", 0.0)
    monkeypatch.setattr(_threads, "UNITS_INFER_MIN_FLOPS", 0.0)
    monkeypatch.setattr(_threads, "UNITS_ROW_MIN_FLOPS", 0.0)
    args, dy = _arrays(T * B + H, T, B, I, H)
    state = {} if with_state else {"h0": None, "c0": None}
    want_y, want_h, want_c, want = _reference(args, dy, reverse, with_state)
    depth = direction_depth(args["x"], args["weight_hh"])
    panels = -(-H // NR)
    for threads in range(1, panels + 2):
        monkeypatch.setenv("KIOKU_NUM_THREADS", str(threads))
        for keep_cache in (True, False):
            chosen = _path.choose_path(
                T, B, I, H, 0, np.dtype(np.float32), keep_cache=keep_cache, all_valid=True,
                weight_bytes=args["weight_ih"].nbytes + args["weight_hh"].nbytes,
                recurrent_bytes=args["weight_hh"].nbytes,
            )  # fmt: skip
            assert chosen.unit_parts == min(threads, panels)
        y, h_n, c_n, cache = numba_lstm.lstm_forward(**{**args, **state}, reverse=reverse)
        grads = numba_lstm.lstm_backward(dy, cache, h_n * 0.5, c_n * 0.5)
        inferred = numba_lstm.lstm_forward(**{**args, **state}, reverse=reverse, keep_cache=False)
        where = f"{threads} threads"
        for name, got, expected in (
            ("y", y, want_y), ("h_n", h_n, want_h), ("c_n", c_n, want_c),
            ("inferred y", inferred[0], want_y), ("inferred h_n", inferred[1], want_h),
            ("inferred c_n", inferred[2], want_c), ("dx", grads.dx, want.dx),
            ("dweight_ih", grads.dweight_ih, want.dweight_ih),
            ("dweight_hh", grads.dweight_hh, want.dweight_hh), ("dbias", grads.dbias, want.dbias),
            ("dh0", grads.dh0, want.dh0), ("dc0", grads.dc0, want.dc0),
        ):  # fmt: skip
            assert_close(f"{name}, {where}", got, expected, depth)


@njit(nogil=True)
def _waits(steps, part, parts, progress):
    for step in range(steps):
        _unit_split.barrier(progress, part, parts, step + 1)


def test_a_failing_part_releases_the_others_from_the_barrier():
    """Part 1 fails before its first step; part 0, waiting for it at the barrier, returns
    and the error reaches the caller (a hang here would be a deadlock in a training run)."""

    def kernel(steps: int, part: int, parts: int, progress: np.ndarray) -> None:
        if part == 1:
            raise RuntimeError("part 1 failed")
        _waits(steps, part, parts, progress)

    outcome: list[BaseException] = []

    def run() -> None:
        try:
            _unit_split.run_split(kernel, (1000,), 2, spin=False)
        except BaseException as error:  # noqa: BLE001 - what the test looks at
            outcome.append(error)

    caller = threading.Thread(target=run, daemon=True)
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive(), "a part waited at the barrier for a part that had failed"
    assert len(outcome) == 1 and "part 1 failed" in str(outcome[0])


def test_barrier_orders_the_steps_of_every_thread():
    """Each thread writes its step number and checks, after each barrier, that every other
    thread has written at least as far: no thread runs ahead of a step not finished."""

    @njit(nogil=True)
    def steps(seen, part, parts, progress):
        for step in range(seen.shape[1]):
            seen[part, step] = 1
            _unit_split.barrier(progress, part, parts, step + 1)
            for other in range(parts):
                if seen[other, step] != 1:
                    seen[part, step] = -1

    parts = 3
    seen = np.zeros((parts, 2000), np.int64)
    progress = _unit_split.counters(parts)
    _threads.run_parts(lambda part: steps(seen, part, parts, progress), parts, False)
    assert (seen == 1).all()
