"""The compiled ``numba`` backend against the reference functions, and backend choice."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from cases import assert_all_close, lstm_direction_case  # noqa: E402
from tolerance import direction_depth  # noqa: E402

from kioku import functional, kernels  # noqa: E402
from kioku.kernels import _gemm, _primitives, _threads, numba_gru, numba_lstm  # noqa: E402

make_case = lstm_direction_case


def check_parity(args, grads, dtype):
    y, h_n, c_n, cache = numba_lstm.lstm_forward(**args)
    y_r, h_r, c_r, cache_r = functional.lstm_forward(**args)
    assert isinstance(cache, functional.LSTMCache)
    depth = direction_depth(args["x"], args["weight_hh"])
    outputs = ("y", "h_n", "c_n")
    assert_all_close(outputs, (y, h_n, c_n), (y_r, h_r, c_r), dtype=True, depth=depth)
    fields = ("gates", "h_state", "c_state", "tanh_c", "hidden")
    actual, expected = ([getattr(c, f) for f in fields] for c in (cache, cache_r))
    assert_all_close([f"cache.{f}" for f in fields], actual, expected, dtype=True, depth=depth)
    got = numba_lstm.lstm_backward(
        grads["dy"], cache, grads["dh_n"], grads["dc_n"], grads["need_dx"]
    )
    want = functional.lstm_backward(
        grads["dy"], cache_r, grads["dh_n"], grads["dc_n"], grads["need_dx"]
    )
    assert_all_close(want._fields, got, want, dtype=True, depth=depth)


@pytest.mark.parametrize("seed", range(40))
def test_random_configurations_match_reference(seed):
    check_parity(*make_case(seed))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch,steps", [(1, 1), (1, 6), (2, 1), (9, 6)])
def test_edge_shapes(dtype, batch, steps):
    for seed in range(3):
        check_parity(*make_case(100 + seed, dtype, batch, steps))


@pytest.mark.parametrize("threads", [2, 3])
def test_batch_split_across_threads_matches_reference(monkeypatch, threads):
    monkeypatch.setenv("KIOKU_NUM_THREADS", str(threads))
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    assert len(_threads.batch_slices(9, 1.0)) == threads
    for seed in range(8):
        check_parity(*make_case(200 + seed, batch=9))


def test_tiled_recurrent_gemm_matches_reference(monkeypatch):
    monkeypatch.setattr(_primitives, "L2_BYTES", 0)  # as if the weights missed the cache
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)
    for seed in range(6):
        check_parity(*make_case(300 + seed, batch=(9, 13, 3)[seed % 3]))


def test_strided_output_gradient():
    args, grads, dtype = make_case(11, np.float64, batch=3, steps=4)
    _, _, _, cache = numba_lstm.lstm_forward(**args)
    wide = np.concatenate([grads["dy"], grads["dy"][..., :1]], axis=2)
    view = wide[..., : grads["dy"].shape[2]]  # what nn passes for one direction of a concat
    assert not view.flags.c_contiguous
    got = numba_lstm.lstm_backward(view, cache)
    want = functional.lstm_backward(grads["dy"], cache)
    assert_all_close(want._fields, got, want, 1e-10)


def test_traces_and_mixed_dtypes_fall_back_to_reference(monkeypatch):
    reference = {name: getattr(functional, name) for name in ("lstm_forward", "lstm_backward")}
    fallbacks = []

    def spy(name):  # the reference, counted when the kernel hands a call over to it
        def call(*args, **kwargs):
            fallbacks.append(name)
            return reference[name](*args, **kwargs)

        return call

    for name in reference:
        monkeypatch.setattr(functional, name, spy(name))
    args, grads, dtype = make_case(7, np.float64, batch=3, steps=5)
    _, _, _, cache = numba_lstm.lstm_forward(**args)
    assert fallbacks == []  # the compiled path ran
    T, B, P = grads["dy"].shape
    H = args["weight_ih"].shape[0] // 4
    traces = [np.empty((T, B, P)), np.empty((T, B, H))]
    traces_r = [np.empty((T, B, P)), np.empty((T, B, H))]
    numba_lstm.lstm_backward(grads["dy"], cache, None, None, True, *traces)
    assert fallbacks == ["lstm_backward"]  # traces are the reference's job
    reference["lstm_backward"](grads["dy"], cache, None, None, True, *traces_r)
    for a, e in zip(traces, traces_r):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-10)
    mixed = dict(args, x=args["x"].astype(np.float32))
    y, *_ = numba_lstm.lstm_forward(**mixed)
    assert fallbacks == ["lstm_backward", "lstm_forward"]  # so are mixed dtypes
    y_r, *_ = reference["lstm_forward"](**mixed)
    np.testing.assert_array_equal(y, y_r)


def test_bad_shapes_raise_before_the_compiled_loop():
    args, grads, _ = make_case(3, np.float64, batch=3, steps=4)
    H = args["weight_ih"].shape[0] // 4
    with pytest.raises(ValueError, match="c0"):
        numba_lstm.lstm_forward(**dict(args, c0=np.zeros((3, H + 1))))
    with pytest.raises(ValueError, match="weight_hh"):
        numba_lstm.lstm_forward(**dict(args, weight_hh=np.zeros((4 * H + 4, H))))
    _, _, _, cache = numba_lstm.lstm_forward(**args)
    with pytest.raises(ValueError, match="dy"):
        numba_lstm.lstm_backward(grads["dy"][:, :2], cache)
    with pytest.raises(ValueError, match="dc_n"):
        numba_lstm.lstm_backward(grads["dy"], cache, None, np.zeros((3, H + 2)))


def test_backend_choice(monkeypatch):
    monkeypatch.delenv("KIOKU_KERNELS", raising=False)
    assert "numba" in kernels.available()
    assert kernels.backend() is numba_lstm
    monkeypatch.setenv("KIOKU_KERNELS", "reference")
    assert kernels.backend() is functional
    monkeypatch.setenv("KIOKU_KERNELS", "numba")
    assert kernels.backend() is numba_lstm
    with kernels.use("reference"):
        assert kernels.backend() is functional
    monkeypatch.setenv("KIOKU_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="KIOKU_NUM_THREADS"):
        _threads.max_threads()


def test_one_registry_gives_every_cell_its_backend(monkeypatch):
    monkeypatch.delenv("KIOKU_KERNELS", raising=False)
    compiled = {"lstm": numba_lstm.lstm_forward, "gru": numba_gru.gru_forward}
    for cell in kernels.CELLS:
        reference = kernels.backend_for(cell, "reference")
        assert reference.name == "reference" and reference.cell == cell
        assert getattr(reference, f"{cell}_forward") is getattr(functional, f"{cell}_forward")
        fast = kernels.backend_for(cell)
        forward = getattr(fast, f"{cell}_forward")
        if cell in compiled:  # the LSTM's keeps the layers' packed weights across calls
            assert getattr(forward, "func", forward) is compiled[cell]
        else:  # no compiled RNN or sLSTM yet: the reference functions
            assert fast is reference
        with kernels.use("reference"):
            assert kernels.backend_for(cell) is reference
    with pytest.raises(ValueError, match="cell: expected one of lstm, gru, rnn, slstm"):
        kernels.backend_for("mlstm")
    with pytest.raises(ValueError, match="name: expected one of"):
        kernels.backend_for("lstm", "cuda")
    monkeypatch.setenv("KIOKU_KERNELS", "cuda")
    with pytest.raises(ValueError, match="KIOKU_KERNELS: expected one of"):
        kernels.backend_for("gru")


def test_the_reference_lstm_backward_adds_into_the_given_buffers():
    rng = np.random.default_rng(5)
    T, B, I, H = 4, 2, 3, 5
    x = rng.standard_normal((T, B, I))
    w_ih, w_hh = rng.standard_normal((4 * H, I)), rng.standard_normal((4 * H, H))
    *_, cache = functional.lstm_forward(x, w_ih, w_hh)
    dy = rng.standard_normal((T, B, H))
    plain = functional.lstm_backward(dy, cache)
    into = (np.ones((4 * H, I)), np.ones((4 * H, H)))
    grads = kernels.backend_for("lstm", "reference").lstm_backward(dy, cache, grads_into=into)
    assert grads.dweight_ih is into[0] and grads.dweight_hh is into[1]
    np.testing.assert_array_equal(into[0], 1 + plain.dweight_ih)
    np.testing.assert_array_equal(into[1], 1 + plain.dweight_hh)
    np.testing.assert_array_equal(grads.dx, plain.dx)


def test_stacked_bidirectional_network_same_under_both_backends():
    nn = pytest.importorskip("kioku.nn")
    rng = np.random.default_rng(3)
    lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng)
    x, lengths = rng.standard_normal((5, 3, 4)), np.array([5, 2, 4])
    results = []
    for name in ("reference", "numba"):
        with kernels.use(name):
            lstm.zero_grad()
            y, (h_n, c_n) = lstm(x, lengths=lengths)
            dx, (dh0, dc0) = lstm.backward(np.cos(y))
            results.append([y, h_n, c_n, dx, dh0, dc0, *(g.copy() for g in lstm.grads.values())])
    for a, e in zip(*results):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-10)


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_paths(trans_a, trans_b):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 3) if trans_a else (3, 4))
    b = rng.standard_normal((5, 4) if trans_b else (4, 5))
    c = rng.standard_normal((3, 5))
    want = (a.T if trans_a else a) @ (b.T if trans_b else b) + c
    for fn in (_gemm.gemm, _gemm._loop_gemm):
        out = c.copy()
        fn(trans_a, trans_b, a, b, out, 1.0)
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-12)
    if not trans_a:
        out = c.copy()
        _primitives._dot_gemm_nt(a, b if trans_b else b.T.copy(), out, 1.0)
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("rows", [1, 3, 4, 8, 11, 13])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_register_tiled_gemm(rows, beta):
    rng = np.random.default_rng(rows)
    a, b = rng.standard_normal((rows, 7)), rng.standard_normal((10, 7))
    c = rng.standard_normal((rows, 10))
    want = a @ b.T + beta * c
    for fn in (_primitives._dot2_gemm_nt, _primitives._tile4_gemm_nt, _primitives._tile8_gemm_nt):
        out = c.copy()
        fn(a, b, out, beta)
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-12)


def test_float32_tanh_approximation():
    from numba import njit

    @njit
    def apply(x, out):
        for k in range(x.shape[0]):
            out[k] = _primitives.fast_tanh(x[k])

    x = np.concatenate([np.linspace(-12, 12, 200001), [0.0, -0.0, np.inf, -np.inf]])
    x = x.astype(np.float32)
    out = np.empty_like(x)
    apply(x, out)
    assert np.abs(out - np.tanh(x.astype(np.float64))).max() < 4e-7  # incl. rounding to float32
    assert out[-2] == 1 and out[-1] == -1
    apply(np.array([np.nan], np.float32), out[:1])
    assert np.isnan(out[0])
