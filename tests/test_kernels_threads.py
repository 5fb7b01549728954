"""The thread rule (:func:`kioku.kernels._threads.plan`), its override, and results that do
not depend on the thread count."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("numba")

from tolerance import assert_close, direction_depth  # noqa: E402

import kioku  # noqa: E402
from kioku.kernels import _blas, _path, _threads, numba_lstm  # noqa: E402
from kioku.kernels._threads import DIRECTIONS_MIN_FLOPS, MIN_FLOPS, MIN_ROWS, plan  # noqa: E402


@pytest.fixture
def cores(monkeypatch):
    """Pretend the process may run on ``n`` cores; no KIOKU_NUM_THREADS."""
    monkeypatch.delenv("KIOKU_NUM_THREADS", raising=False)

    def set_cores(n: int) -> None:
        monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: set(range(n)))

    return set_cores


def test_default_is_every_usable_core(cores):
    cores(2)
    assert _threads.max_threads() == 2
    cores(8)
    assert _threads.max_threads() == 8


def test_environment_overrides_the_core_count(cores, monkeypatch):
    cores(8)
    monkeypatch.setenv("KIOKU_NUM_THREADS", "3")
    assert _threads.max_threads() == 3
    assert plan(64, 10 * MIN_FLOPS).batch_threads == 3
    monkeypatch.setenv("KIOKU_NUM_THREADS", "1")
    assert plan(64, 10 * MIN_FLOPS) == (1, False)
    assert plan(64, 10 * MIN_FLOPS, directions=2) == (1, False)


@pytest.mark.parametrize("bad", ["0", "-2", "two", " "])
def test_bad_override_raises_naming_the_variable(monkeypatch, bad):
    monkeypatch.setenv("KIOKU_NUM_THREADS", bad)
    with pytest.raises(ValueError, match="KIOKU_NUM_THREADS.*positive integer"):
        _threads.max_threads()


def test_large_batch_splits_across_all_threads(cores):
    cores(2)
    assert plan(20, MIN_FLOPS) == (2, False)
    assert _threads.batch_slices(20, MIN_FLOPS) == [slice(0, 10), slice(10, 20)]
    cores(4)
    assert plan(64, MIN_FLOPS).batch_threads == 4


def test_small_work_stays_on_one_thread(cores):
    cores(4)
    assert plan(64, MIN_FLOPS * 0.99) == (1, False)  # a step too short to share
    assert plan(1, 1e12) == (1, False)  # batch 1: nothing to split
    assert plan(MIN_ROWS * 2 - 1, 1e12).batch_threads == 1  # too few rows for two
    assert plan(MIN_ROWS * 3, 1e12).batch_threads == 3  # rows decide below the cores


def test_bidirectional_layers_run_the_directions_side_by_side(cores):
    cores(2)
    assert plan(20, DIRECTIONS_MIN_FLOPS, directions=2) == (1, True)
    assert plan(20, DIRECTIONS_MIN_FLOPS * 0.99, directions=2) == (1, False)
    cores(4)  # each direction gets half the budget for its batch split
    assert plan(64, MIN_FLOPS, directions=2) == (2, True)
    cores(1)
    assert plan(64, 1e12, directions=2) == (1, False)


def test_thread_budget_must_be_positive():
    with pytest.raises(ValueError, match="threads: expected a positive integer, found 0"):
        plan(8, 1e9, threads=0)


def _case(seed, B=16, T=7, I=12, H=24):
    rng = np.random.default_rng(seed)

    def arr(*shape):
        return (rng.standard_normal(shape) * 0.4).astype(np.float32)

    args = dict(
        x=arr(T, B, I),
        weight_ih=arr(4 * H, I),
        weight_hh=arr(4 * H, H),
        bias=arr(4 * H),
        h0=arr(B, H),
        c0=arr(B, H),
        lengths=rng.integers(1, T + 1, B),
        reverse=bool(seed % 2),
    )
    return args, arr(T, B, H)


def _run_all(args, dy):
    y, h_n, c_n, cache = numba_lstm.lstm_forward(**args)
    grads = numba_lstm.lstm_backward(dy, cache, h_n * 0.5, c_n * 0.5)
    inferred = numba_lstm.lstm_forward(**args, keep_cache=False)[:3]
    return [a for a in (y, h_n, c_n, *grads, *inferred) if a is not None]


def test_results_do_not_depend_on_the_thread_count(monkeypatch):
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    for seed in range(3):
        args, dy = _case(seed)
        results = {}
        for threads in (1, 2, 3, 4):
            monkeypatch.setenv("KIOKU_NUM_THREADS", str(threads))
            assert len(_threads.batch_slices(16, 1.0)) == threads
            results[threads] = _run_all(args, dy)
        depth = direction_depth(args["x"], args["weight_hh"])
        for threads in (2, 3, 4):
            for got, want in zip(results[threads], results[1]):
                assert_close(f"{threads} threads vs 1", got, want, depth)


@pytest.mark.parametrize("H, I", [(24, 12), (64, 64)])  # BLAS, and the packed gradients
def test_gemms_split_around_a_one_thread_loop_give_the_same_results(monkeypatch, H, I):
    """The loop on one thread (no batch split), the projection and the weight gradients
    over 1 to 4 threads (``GEMM_SPLIT_FLOPS = 0``): the results of one thread."""
    monkeypatch.setattr(_threads, "MIN_FLOPS", float("inf"))
    monkeypatch.setattr(_threads, "GEMM_SPLIT_FLOPS", 0.0)
    for seed in range(2):
        args, dy = _case(seed, B=3, H=H, I=I)
        results = {}
        for threads in (1, 2, 3, 4):
            monkeypatch.setenv("KIOKU_NUM_THREADS", str(threads))
            split = _path.choose_path(
                7, 3, I, H, 0, np.dtype(np.float32), keep_cache=True, all_valid=False,
                weight_bytes=args["weight_ih"].nbytes + args["weight_hh"].nbytes,
                recurrent_bytes=args["weight_hh"].nbytes,
            )  # fmt: skip
            assert split.parts == 1 and split.gemm_parts == threads
            results[threads] = _run_all(args, dy)
        depth = direction_depth(args["x"], args["weight_hh"])
        for threads in (2, 3, 4):
            for got, want in zip(results[threads], results[1]):
                assert_close(f"GEMMs on {threads} threads vs 1", got, want, depth)


@pytest.mark.parametrize("spin", [False, True])
def test_directions_side_by_side_give_the_same_results(monkeypatch, spin):
    """Side by side (with ``spin``, as inference does: the second direction on the
    spinning worker), each direction on half the threads; the same results as in turn."""
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)
    args, dy = _case(5)
    seen = []

    def direction(reverse):
        def task():
            seen.append((threading.current_thread().name, _threads.max_threads()))
            return _run_all(dict(args, reverse=reverse), dy)

        return task

    together = _threads.run_directions([direction(False), direction(True)], True, spin)
    assert [cap for _, cap in seen] == [1, 1]  # each direction ran on half of the two threads
    if spin:
        assert sorted(name for name, _ in seen) == ["MainThread", "kioku-spin"]
    apart = _threads.run_directions([direction(False), direction(True)], parallel=False)
    assert [cap for _, cap in seen[2:]] == [2, 2]
    depth = direction_depth(args["x"], args["weight_hh"])
    for side_by_side, alone in zip(together, apart):
        for got, want in zip(side_by_side, alone):
            assert_close("side by side vs in turn", got, want, depth)
    assert _threads.max_threads() == 2  # the cap ended with the call


def test_a_direction_failing_on_the_spinning_worker_raises_here():
    def fails():
        raise RuntimeError("direction failed")

    with pytest.raises(RuntimeError, match="direction failed"):
        _threads.run_directions([lambda: 1, fails], parallel=True, spin=True)
    assert _threads.run_directions([lambda: 1, lambda: 2], parallel=True, spin=True) == [1, 2]


@pytest.mark.skipif(
    _blas.DEFAULT_THREADS is None or _blas.DEFAULT_THREADS < 2 or _blas._set_local is None,
    reason="needs an OpenBLAS that reports and sets its thread count, on 2 or more threads",
)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_numpy_gets_its_blas_threads_back_after_kernel_calls(monkeypatch, bidirectional):
    # the loops run their GEMMs on single-threaded BLAS; the caller's NumPy must not stay so
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    lstm = kioku.nn.LSTM(200, 200, 2, bidirectional=bidirectional, rng=0)
    x = np.random.default_rng(0).normal(size=(20, 20, 200)).astype(np.float32)
    y, _ = lstm(x)
    assert _blas._get_threads() == _blas.DEFAULT_THREADS
    lstm.backward(np.ones_like(y))
    assert _blas._get_threads() == _blas.DEFAULT_THREADS


def _weight_gradient_case(seed, N, G, I, P):
    rng = np.random.default_rng(seed)

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return arr(N, G), arr(N, I), arr(N, P), arr(G, I)


@pytest.mark.parametrize(
    "N, G, I, P, kc",  # right for any widths (the layers use it for multiples of NR only)
    # one pass; passes of KC rows and a short first one; a pipelined backward's passes of
    # 16 steps (batch 1: the first 5 rows short; batch 7: 700 rows = 4 x 112 + 252)
    [(1, 4, 3, 1, 256), (37, 48, 17, 12, 16), (700, 80, 70, 20, 112), (600, 256, 64, 128, 256)],
)
def test_packed_weight_gradients_match_blas_and_not_the_thread_count(N, G, I, P, kc):
    from kioku.kernels._loop_gemms import packed_weight_gradients, weight_gradients

    dgates, x, h_in, w_ih = _weight_gradient_case(N, N, G, I, P)
    want = [np.empty((N, I), np.float32), np.empty((G, I), np.float32),
            np.empty((G, P), np.float32), np.empty(G, np.float32)]  # fmt: skip
    weight_gradients(dgates, x, h_in, w_ih, True, *want, False, want[0], h_in, want[2], False, 0, 1)
    results = []
    for parts in (1, 2, 3, 5):
        got = [np.full_like(a, np.nan) for a in want]
        for part in range(parts):
            packed_weight_gradients(dgates, x, h_in, w_ih, True, *got, False, part, parts, kc)
        results.append(got)
        for a, b in zip(got, want):  # sums over the N rows (over the G gates for dx)
            assert_close(f"{parts} parts vs BLAS", a, b, depth=max(N, G))
        # the bias: each column's rows summed in float64, pass by pass (the last rows
        # first) here, in one sweep in order there; float64 holds these few hundred
        # float32 terms with 29 bits to spare, so the float32 results agree bit for bit
        assert np.array_equal(got[3], want[3])
    for got in results[1:]:  # split by rows of each output: every element summed alike
        assert all(np.array_equal(a, b) for a, b in zip(got, results[0]))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_float32_backward_never_switches_blas_threads(monkeypatch, bidirectional):
    # a switch is a global change in OpenBLAS that slows NumPy's GEMMs after the call
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    switches = []
    monkeypatch.setattr(_blas, "set_threads_this_thread", lambda count: switches.append(count))
    lstm = kioku.nn.LSTM(128, 128, 2, bidirectional=bidirectional, rng=0)  # 128: 2 or 4 NR
    x = np.random.default_rng(0).normal(size=(20, 20, 128)).astype(np.float32)
    y, _ = lstm(x)
    lstm.backward(np.ones_like(y))
    assert switches == []
    assert all(np.isfinite(g).all() for g in lstm.grads.values())


@pytest.mark.parametrize("B", [1, 3])
def test_backward_at_panel_widths_matches_the_reference(B):
    # I and P multiples of NR take the packed weight gradients (one compiled entry here)
    from kioku import functional
    from kioku.kernels._packed import NR

    rng = np.random.default_rng(B)
    T, I, H = 9, NR, NR
    args = [rng.standard_normal(s) * 0.3 for s in ((T, B, I), (4 * H, I), (4 * H, H), (4 * H,))]
    lengths = rng.integers(1, T + 1, B)
    dy = rng.standard_normal((T, B, H))
    *_, cache = numba_lstm.lstm_forward(*[a.astype(np.float32) for a in args], lengths=lengths)
    got = numba_lstm.lstm_backward(dy.astype(np.float32), cache)
    *_, cache = functional.lstm_forward(*args, lengths=lengths)
    want = functional.lstm_backward(dy, cache)
    depth = direction_depth(args[0], args[2])  # float32 against the float64 reference
    for name in ("dx", "dweight_ih", "dweight_hh", "dbias", "dh0", "dc0"):
        assert_close(name, getattr(got, name), getattr(want, name), depth)


@pytest.mark.skipif(
    _blas.DEFAULT_THREADS is None or _blas.DEFAULT_THREADS < 2 or _blas._set_local is None,
    reason="needs an OpenBLAS that reports and sets its thread count, on 2 or more threads",
)
@pytest.mark.parametrize(
    ("rows", "one_thread"),
    [(4, False), (640, True), (4000, True), (8000, False)],  # MNK 0.01M, 2.2M, 13.6M, 27M
)
def test_small_linear_gemms_run_on_one_blas_thread_and_give_the_count_back(rows, one_thread):
    layer = kioku.nn.Linear(200, 17, rng=0)
    x = np.random.default_rng(1).normal(size=(rows, 200)).astype(np.float32)
    dy = np.random.default_rng(2).normal(size=(rows, 17)).astype(np.float32)
    want_y = x @ layer.params["weight"].T + layer.params["bias"]  # NumPy's own thread count
    want_dx, want_dw = dy @ layer.params["weight"], dy.T @ x
    y = layer(x)
    dx = layer.backward(dy)
    # the split into row or column blocks is not bit for bit NumPy's one call on every
    # CPU: OpenBLAS picks its kernels and blocking by core and by size (with its Haswell
    # core forced on a Zen 4, 28 % of y differ by an ulp or two); rounding alone, each
    # result one sum over K terms
    assert_close("y", y, want_y, 200 + 1)
    assert_close("dx", dx, want_dx, 17)
    assert_close("dweight", layer.grads["weight"], want_dw, rows)
    assert _blas._get_threads() == _blas.DEFAULT_THREADS
    with _threads.small_gemm_threads(rows * 200 * 17):
        inside = _blas._get_threads()
    assert inside == (1 if one_thread else _blas.DEFAULT_THREADS)
    assert _blas._get_threads() == _blas.DEFAULT_THREADS


def test_environment_reader_follows_os_environ(monkeypatch):
    from kioku.kernels import _environ

    for fallback in (False, True):
        if fallback:  # an os.environ without the dict behind it: the plain look-up
            monkeypatch.setattr(_environ, "_DATA", None)
        read = _environ.reader("KIOKU_TEST_VARIABLE")
        monkeypatch.delenv("KIOKU_TEST_VARIABLE", raising=False)
        assert read() is None
        monkeypatch.setenv("KIOKU_TEST_VARIABLE", "3")
        assert read() == "3"
        monkeypatch.setenv("KIOKU_TEST_VARIABLE", "é4")
        assert read() == "é4"
        monkeypatch.delenv("KIOKU_TEST_VARIABLE")
        assert read() is None


def test_two_phases_of_two_parts_meet_at_the_barrier_in_one_hand_off(monkeypatch):
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    hand_offs = []
    run_parts = _threads.run_parts
    monkeypatch.setattr(
        _threads, "run_parts", lambda *a, **k: (hand_offs.append(a[1]), run_parts(*a, **k))
    )

    def note(phase: str):
        def step(part: int) -> None:
            if phase == "first" and part == 1:
                threading.Event().wait(0.05)  # the late part: the other must wait for it
            with lock:
                events.append((phase, part))

        return step

    _threads.in_phases(2, note("first"), note("second"), 0)
    assert hand_offs == [2]
    assert sorted(events[:2]) == [("first", 0), ("first", 1)]
    assert sorted(events[2:]) == [("second", 0), ("second", 1)]


@pytest.mark.parametrize("failing", [0, 1])
def test_a_failing_first_phase_releases_the_barrier_and_raises(failing):
    ran: list[int] = []

    def first(part: int) -> None:
        if part == failing:
            raise ValueError(f"part {part} failed")

    with pytest.raises(ValueError, match=f"part {failing} failed"):
        _threads.in_phases(2, first, ran.append, 0)
    assert ran == []  # the other part skipped its second phase instead of waiting forever


def test_a_fused_training_forward_hands_its_loop_off_once(monkeypatch):
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    rng = np.random.default_rng(0)
    T, B, H = 5, 16, 32
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    w_ih, w_hh = (rng.uniform(-0.2, 0.2, (4 * H, H)).astype(np.float32) for _ in range(2))
    path = _path.choose_path(T, B, H, H, 0, np.dtype(np.float32), keep_cache=True,
                             all_valid=True, weight_bytes=w_ih.nbytes + w_hh.nbytes,
                             recurrent_bytes=w_hh.nbytes)  # fmt: skip
    assert path.fused and path.parts == 2
    calls = []
    monkeypatch.setattr(numba_lstm, "in_phases", lambda *a, **k: calls.append("in_phases"))
    run_parts = numba_lstm.run_parts
    monkeypatch.setattr(
        numba_lstm, "run_parts", lambda *a, **k: (calls.append(a[1]), run_parts(*a, **k))
    )
    y = numba_lstm.lstm_forward(x, w_ih, w_hh, None)[0]
    assert calls == [2]  # the loop's two parts; no empty projection phase before it
    want = kioku.functional.lstm_forward(x, w_ih, w_hh, None)[0]
    assert_close("fused forward on two threads", y, want, direction_depth(x, w_hh))
