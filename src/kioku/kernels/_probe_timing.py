"""How :mod:`._tuning_probes` times the kernels: an interleaved clock, the settings forced
for one call, and the calls it times (an LSTM layer's training step, inference and
training forward, on weight arrays of their own). What each probe times and why:
:mod:`._tuning_probes`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from . import _threads, _training_plan, numba_lstm
from ._tuning import _sync

_INF = float("inf")
# The probes' batches grow with the threads they split over, up to this many: on a big
# machine the tuning stays seconds long (the threshold is about a thread's share of rows
# and flops, which more threads do not change much).
MAX_PROBE_THREADS = 8


class Clock:
    """Times callables interleaved (A B A B ...): ``rounds`` blocks of about ``block_s``
    seconds each; a callable's figure is its fastest block's seconds per call (the least
    disturbed by whatever else the machine runs)."""

    def __init__(self, block_s: float = 0.02, rounds: int = 5) -> None:
        self.block_s, self.rounds = block_s, rounds

    def time(self, fns: dict[str, Callable[[], object]]) -> dict[str, float]:
        calls = {}
        for name, fn in fns.items():
            fn()  # warm: first-call costs (loading compiled code, pages) are not the path's
            start = time.perf_counter()
            fn()
            calls[name] = max(1, int(self.block_s / max(time.perf_counter() - start, 1e-7)))
        best = {name: _INF for name in fns}
        for _ in range(self.rounds):
            for name, fn in fns.items():
                start = time.perf_counter()
                for _ in range(calls[name]):
                    fn()
                best[name] = min(best[name], (time.perf_counter() - start) / calls[name])
        return best


def _with(settings: dict[str, tuple[object, float]], fn: Callable[[], object]):
    """``fn`` run with ``settings`` (``name: (module, value)``) in force, restored after."""

    def run() -> None:
        saved = {name: getattr(module, name) for name, (module, _) in settings.items()}
        try:
            for name, (module, value) in settings.items():
                setattr(module, name, value)
                _sync(module)
            fn()
        finally:
            for name, (module, _) in settings.items():
                setattr(module, name, saved[name])
                _sync(module)

    return run


def _lstm(steps: int, batch: int, hidden: int, seed: int = 0):
    """float32 ``x (T, B, H)``, ``weight_ih (4H, H)``, ``weight_hh (4H, H)``, ``bias
    (4H,)`` and ``dy (T, B, H)``: one layer with I = H."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    x = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    dy = np.ones((steps, batch, hidden), np.float32)
    return x, uniform(4 * hidden, hidden), uniform(4 * hidden, hidden), uniform(4 * hidden), dy


def _training(steps: int, batch: int, hidden: int, reverse: bool = False):
    """One training call of one direction: forward with its cache, backward with dx."""
    x, w_ih, w_hh, b, dy = _lstm(steps, batch, hidden, seed=int(reverse))

    def step() -> None:
        y, _, _, cache = numba_lstm.lstm_forward(x, w_ih, w_hh, b, reverse=reverse)
        numba_lstm.lstm_backward(dy, cache)

    return step


def _forwards(steps: int, batch: int, hidden: int) -> Callable[[], None]:
    """An inference call, then a training forward (keeping its cache), of one layer."""
    x, w_ih, w_hh, b, _ = _lstm(steps, batch, hidden)

    def run() -> None:
        numba_lstm.lstm_forward(x, w_ih, w_hh, b, keep_cache=False)
        numba_lstm.lstm_forward(x, w_ih, w_hh, b)

    return run


# Every split off: one thread runs the whole call (the fused probes compare two ways of
# running one thread's part; a split by units would take each step fused either way)
_ONE_THREAD = {
    name: (_threads, _INF)
    for name in ("MIN_FLOPS", "DIRECTIONS_MIN_FLOPS", "GEMM_SPLIT_FLOPS", "UNITS_MIN_FLOPS",
                 "UNITS_INFER_MIN_FLOPS", "UNITS_ROW_MIN_FLOPS")
}  # fmt: skip


def _steps(steps: int, scale: float) -> int:
    return max(2, int(round(steps * scale)))


def _compare(clock: Clock, quantity: float, on, off) -> dict:
    times = clock.time({"on": on, "off": off})
    return {"quantity": quantity, "on_s": times["on"], "off_s": times["off"]}


def _one_thread_note() -> str | None:
    if _threads.max_threads() < 2:
        return "one thread in the budget: nothing to split, default kept"
    return None


def _probe_threads() -> int:
    return min(_threads.max_threads(), MAX_PROBE_THREADS)


def _planned_training(steps: int, batch: int, hidden: int):
    """One training call of one direction as a layer runs it: through the plans of
    :mod:`._training_plan` (made on the first call, under the settings then in force),
    the general path where they refuse; the weight gradients added into buffers."""
    x, w_ih, w_hh, b, dy = _lstm(steps, batch, hidden)
    into = (np.zeros_like(w_ih), np.zeros_like(w_hh))
    dgates = np.empty((steps, batch, 4 * hidden), np.float32)

    def step() -> None:
        out = _training_plan.planned_forward(x, w_ih, w_hh, b, None, None)
        cache = out[3] if out is not None else numba_lstm.lstm_forward(x, w_ih, w_hh, b)[3]
        if _training_plan.planned_backward(dy, cache, True, into, dgates) is None:
            numba_lstm.lstm_backward(dy, cache, grads_into=into, dgates_buffer=dgates)

    return step


def _eval_levels(
    choice, clock: Clock, steps: int, batch: int, setting: tuple[str, object, float, float],
    quantity,
) -> list[dict]:  # fmt: skip
    """One level per hidden size of ``choice``'s candidates: an inference call (``steps``
    x ``batch``, H = I) with the packed weights kept, as the layers call it in eval mode,
    timed with ``setting = (name, module, on, off)`` at each of its two values; the
    level's quantity ``quantity(H)``."""
    name, module, on_value, off_value = setting
    levels = []
    for hidden in choice.candidates:

        def infer(hidden: int = int(hidden)):
            # arrays of its own for each path: at batch 1 the first call plans the
            # weights' later calls (_inference_plan), and the plan keeps its path
            x, w_ih, w_hh, b, _ = _lstm(steps, batch, hidden)
            return lambda: numba_lstm.lstm_forward(
                x, w_ih, w_hh, b, keep_cache=False, reuse_packs=True
            )

        on = _with({name: (module, on_value)}, infer())
        off = _with({name: (module, off_value)}, infer())
        levels.append(_compare(clock, quantity(int(hidden)), on, off))
    return levels
