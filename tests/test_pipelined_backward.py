"""kernels/_entries.pipelined_backward: a training call on one thread hands its weight
gradients, a pass of steps at a time, to a second thread while its backward loop goes
on. The passes and their order are the path's, whatever the thread count, so every
gradient is the same bit for bit on one thread or two (the same passes one after the
other there), through the general path and the layers' plans; the path says from how
many steps it pipelines (``PIPELINE_MIN_FLOPS``), and a waiting thread is released when
the other fails."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from tolerance import assert_close, direction_depth  # noqa: E402

from kioku import functional, nn  # noqa: E402
from kioku.kernels import _entries, _path, _threads, _training_plan, _unit_split, numba_lstm  # noqa: E402  # noqa: E402
from kioku.kernels._loop_gemms import CHUNK_STEPS, KC, pass_rows  # noqa: E402
from kioku.kernels._packed import NR  # noqa: E402
from kioku.kernels._tuning_choices import CHOICES, NO_LIMIT  # noqa: E402

F32 = np.dtype(np.float32)


def _case(T: int, B: int, H: int, seed: int = 0):
    rng = np.random.default_rng(seed)

    def arr(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    args = dict(x=arr(T, B, H, scale=1.0), weight_ih=arr(4 * H, H), weight_hh=arr(4 * H, H),
                bias=arr(4 * H))  # fmt: skip
    return args, arr(T, B, H, scale=1.0)


@pytest.fixture
def handed(monkeypatch):
    """Counts the calls that ran as a pipeline on two threads."""
    calls = []
    real = _entries.run_split

    def spy(kernel, args, parts, spin):
        calls.append(parts)
        return real(kernel, args, parts, spin)

    monkeypatch.setattr(_entries, "run_split", spy)
    return calls


def _train(args: dict, dy: np.ndarray, need_dx: bool, accumulate: bool):
    *_, cache = numba_lstm.lstm_forward(
        args["x"], args["weight_ih"], args["weight_hh"], args["bias"]
    )
    H, I = args["weight_hh"].shape[1], args["weight_ih"].shape[1]
    into = None
    if accumulate:  # gradient buffers that already hold something
        into = (np.full((4 * H, I), 0.25, F32), np.full((4 * H, H), -0.5, F32))
    return numba_lstm.lstm_backward(dy, cache, need_dx=need_dx, grads_into=into)


@pytest.mark.parametrize(
    "T, B, need_dx, accumulate",
    # passes of CHUNK_STEPS steps from the end: 50 = 2 + 3 x 16, 17 = 1 + 16, 40 steps of
    # 3 rows, 33 steps of 16 rows (one pass of KC rows and a short one)
    [(50, 1, True, False), (17, 1, True, True), (40, 3, False, False), (33, 16, True, True)],
)
def test_the_pipeline_gives_the_one_thread_gradients_bit_for_bit(
    monkeypatch, handed, T, B, need_dx, accumulate
):
    for name, value in (("MIN_FLOPS", np.inf), ("GEMM_SPLIT_FLOPS", np.inf),
                        ("UNITS_MIN_FLOPS", np.inf), ("UNITS_ROW_MIN_FLOPS", np.inf)):  # fmt: skip
        monkeypatch.setattr(_threads, name, value)
    monkeypatch.setattr(_threads, "PIPELINE_MIN_FLOPS", 0.0)
    args, dy = _case(T, B, NR)
    monkeypatch.setenv("KIOKU_NUM_THREADS", "1")  # the same passes, on one thread
    alone = _train(args, dy, need_dx, accumulate)
    assert handed == []
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    piped = _train(args, dy, need_dx, accumulate)
    assert handed == [2]
    for name in ("dweight_ih", "dweight_hh", "dbias", "dh0", "dc0") + (("dx",) if need_dx else ()):
        assert np.array_equal(getattr(piped, name), getattr(alone, name)), name
    # and right: the float64 reference within float32 rounding
    f64 = {k: v.astype(np.float64) for k, v in args.items()}
    *_, cache = functional.lstm_forward(f64["x"], f64["weight_ih"], f64["weight_hh"], f64["bias"])
    want = functional.lstm_backward(dy.astype(np.float64), cache)
    depth = direction_depth(args["x"], args["weight_hh"])
    shift = 0.0 if not accumulate else 0.25
    assert_close("dweight_ih", piped.dweight_ih - shift, want.dweight_ih, depth)
    if need_dx:
        assert_close("dx", piped.dx, want.dx, depth)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_layers_plan_the_pipeline_and_keep_the_results(monkeypatch, handed, bidirectional):
    # an nn.LSTM at batch 1: the plan's backward pipelines as the general path does; of a
    # bidirectional layer's two directions (one after the other at this size) only the
    # forward one (the reverse one's loop finishes its steps first to last)
    monkeypatch.setattr(_threads, "PIPELINE_MIN_FLOPS", 0.0)
    grads = []
    for threads in ("2", "1"):
        monkeypatch.setenv("KIOKU_NUM_THREADS", threads)
        _training_plan.forget_all()
        layer = nn.LSTM(NR, NR, bidirectional=bidirectional, rng=1)
        x = np.random.default_rng(4).standard_normal((48, 1, NR)).astype(np.float32)
        y, _ = layer(x)
        dx = layer.backward(np.ones_like(y))[0]
        grads.append([dx] + [layer.grads[k].copy() for k in sorted(layer.grads)])
    assert handed == [2]
    for a, b in zip(*grads):
        assert np.array_equal(a, b)


def _path_of(T=50, B=1, H=NR, I=NR, P=0, keep_cache=True, all_valid=True, dtype=F32):
    item = np.dtype(dtype).itemsize
    return _path.choose_path(
        T, B, I, H, P, np.dtype(dtype), keep_cache=keep_cache, all_valid=all_valid,
        weight_bytes=4 * H * (I + (P or H)) * item, recurrent_bytes=4 * H * (P or H) * item,
    )  # fmt: skip


def test_the_path_says_from_how_many_steps_a_call_pipelines(monkeypatch):
    for name in ("MIN_FLOPS", "UNITS_MIN_FLOPS", "UNITS_ROW_MIN_FLOPS"):
        monkeypatch.setattr(_threads, name, np.inf)
    monkeypatch.setattr(_threads, "PIPELINE_MIN_FLOPS", 0.0)
    # at least two passes: one more step than a pass holds
    assert _path_of(B=1).pipeline_steps == CHUNK_STEPS + 1
    assert _path_of(B=KC // 4).pipeline_steps == 5
    per_step = 8.0 * 2 * NR * NR
    monkeypatch.setattr(_threads, "PIPELINE_MIN_FLOPS", 100 * per_step)
    assert _path_of(B=2).pipeline_steps == 100
    monkeypatch.setattr(_threads, "PIPELINE_MIN_FLOPS", np.inf)
    assert _path_of(B=2).pipeline_steps == NO_LIMIT
    monkeypatch.setattr(_threads, "PIPELINE_MIN_FLOPS", 0.0)
    never = [
        _path_of(keep_cache=False),  # inference
        _path_of(all_valid=False),  # lengths: the plan and the pipeline want every step
        _path_of(P=NR // 2),  # a projection
        _path_of(I=NR + 3),  # weight gradients off the packed kernel
        _path_of(dtype=np.float64),
        _path_of(B=KC + 1),  # a pass is less than a step
    ]
    assert all(p.pipeline_steps == NO_LIMIT for p in never)
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)  # the batch split by rows
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    assert _path_of(B=4).parts == 2 and _path_of(B=4).pipeline_steps == NO_LIMIT


def test_the_pipeline_probe_reaches_both_paths_at_every_level(monkeypatch):
    from kioku.kernels import _tuning_probes

    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    for name, (module, value) in _tuning_probes._ONE_THREAD.items():
        monkeypatch.setattr(module, name, value)
    for hidden in CHOICES["PIPELINE_MIN_FLOPS"].candidates:
        taken = []
        for least in (0.0, np.inf):  # the probe's two settings
            monkeypatch.setattr(_threads, "PIPELINE_MIN_FLOPS", least)
            path = _path_of(T=48, B=1, H=int(hidden), I=int(hidden))
            assert path.parts == path.gemm_parts == path.unit_parts == 1 and path.packed_grads
            taken.append(path.pipelined(48))
        assert taken == [True, False], hidden


def test_a_failed_loop_releases_the_thread_waiting_for_its_passes():
    T, B, H = 40, 1, NR
    args, dy = _case(T, B, H)
    *_, cache = numba_lstm.lstm_forward(
        args["x"], args["weight_ih"], args["weight_hh"], args["bias"]
    )
    kc = pass_rows(T, B, True)
    assert T * B > kc
    progress = _unit_split.counters(2)
    _unit_split.abort(progress)  # as run_split does when thread 0 raises
    grad_ih = np.full((4 * H, H), np.nan, F32)
    grad_hh, dbias = np.full_like(grad_ih, np.nan), np.full(4 * H, np.nan, F32)
    panels = numba_lstm.packed_weights(args["weight_hh"], False, False)
    dgates = np.zeros((T, B, 4 * H), F32)
    state = [np.zeros((B, H), F32) for _ in range(4)]
    _entries.pipelined_backward(
        dy, cache.gates, cache.c_state, cache.tanh_c, args["weight_hh"], panels, dgates,
        *state, np.full(B, T, np.int64), False, args["x"].reshape(T * B, H),
        cache.h_state[:T].reshape(T * B, H), args["weight_ih"], False, dgates.reshape(T * B, -1),
        grad_ih, grad_hh, dbias, False, kc, 1, 2, progress,
    )  # fmt: skip
    # returned at once without waiting for passes that will never come, nothing written
    assert np.isnan(grad_ih).all() and np.isnan(dbias).all()
