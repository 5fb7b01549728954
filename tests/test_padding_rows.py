"""A mostly padded batch: the GEMMs after the backward loop on its valid rows alone
(kernels/_padding.py), the same gradients as over every row and as the reference."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from tolerance import assert_close, direction_depth  # noqa: E402

from kioku import functional  # noqa: E402
from kioku.kernels import _padding, numba_lstm  # noqa: E402
from kioku.kernels._packed import NR  # noqa: E402

NAMES = ("dx", "dweight_ih", "dweight_hh", "dbias", "dh0", "dc0")


def _case(seed: int, T: int, B: int, I: int, H: int, lengths: list[int]):
    rng = np.random.default_rng(seed)
    shapes = ((T, B, I), (4 * H, I), (4 * H, H), (4 * H,))
    args = [rng.standard_normal(s) * 0.5 for s in shapes]
    return args, np.array(lengths), rng.standard_normal((T, B, H))


@pytest.mark.parametrize(
    ("I", "H", "threads"),
    [(NR, NR, "1"), (NR, NR, "2"), (24, 40, "1"), (24, 40, "3")],  # packed grads, BLAS
)
@pytest.mark.parametrize("reverse", [False, True])
def test_mostly_padded_batch_gives_the_gradients_of_every_row(monkeypatch, I, H, threads, reverse):
    monkeypatch.setenv("KIOKU_NUM_THREADS", threads)
    T, B = 12, 8
    lengths = [12, 3, 1, 5, 2, 1, 4, 2]  # 30 of 96 rows valid: 69 % padding
    args, lengths, dy = _case(I + H, T, B, I, H, lengths)
    f32 = [a.astype(np.float32) for a in args]
    monkeypatch.setattr(_padding, "MIN_PADDED", 0.5)
    assert _padding.valid_rows(functional.length_mask(lengths, T, B), False) is not None

    def backward(min_padded: float, **kwargs):
        monkeypatch.setattr(_padding, "MIN_PADDED", min_padded)
        *_, cache = numba_lstm.lstm_forward(*f32, lengths=lengths, reverse=reverse)
        return numba_lstm.lstm_backward(dy.astype(np.float32), cache, **kwargs)

    dense, every = backward(0.5), backward(2.0)  # 2.0: never gathered
    *_, cache = functional.lstm_forward(*args, lengths=lengths, reverse=reverse)
    want = functional.lstm_backward(dy, cache)
    depth = direction_depth(args[0], args[2])
    for name in NAMES:
        assert_close(name, getattr(dense, name), getattr(want, name), depth)
        assert_close(name, getattr(dense, name), getattr(every, name), depth)
    padded = ~functional.length_mask(lengths, T, B)
    assert np.all(dense.dx[padded] == 0)  # zeros written there, not left as they were
    np.testing.assert_array_equal(dense.dbias, every.dbias)  # float64 sums of the same terms

    into = (np.ones((4 * H, I), np.float32), np.ones((4 * H, H), np.float32))
    added = backward(0.5, grads_into=into, need_dx=False)
    assert added.dx is None and added.dweight_ih is into[0] and added.dweight_hh is into[1]
    assert_close("dweight_ih + 1", into[0], want.dweight_ih + 1.0, depth)
    assert_close("dweight_hh + 1", into[1], want.dweight_hh + 1.0, depth)


def test_which_batches_are_gathered(monkeypatch):
    monkeypatch.setattr(_padding, "MIN_PADDED", 0.5)
    full = np.ones((4, 3), bool)
    assert _padding.valid_rows(None, False) is None
    assert _padding.valid_rows(full, False) is None
    half = full.copy()
    half[2:] = False  # 6 of 12 rows padded
    np.testing.assert_array_equal(_padding.valid_rows(half, False), np.arange(6))
    assert _padding.valid_rows(half, True) is None  # a projection keeps every row
    less = full.copy()
    less[3:] = False  # a quarter padded
    assert _padding.valid_rows(less, False) is None
