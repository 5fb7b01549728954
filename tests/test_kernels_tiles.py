"""The packed kernel's tall tile (``kernels/_tiles.py``): the same sums bit for bit as
the 6 x 4 tile at every row count, width and accumulation, chosen through a value the
compiled code reads at call time, which the tuning and the probes set."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from kioku.kernels import _packed, _tiles, _tuning, _tuning_probes  # noqa: E402
from kioku.kernels._tuning_choices import NO_LIMIT  # noqa: E402

NR, MR = _packed.NR, _packed.MR


def _operands(rng, m, k, n, row_pad=0):
    a = rng.standard_normal((m, k + row_pad)).astype(np.float32)[:, :k]  # rows lda apart
    b = rng.standard_normal((k, n)).astype(np.float32)
    panels = np.empty(_packed.panels_shape(k, n), np.float32)
    _packed.pack_panels(b, panels)
    c = rng.standard_normal((m, n + row_pad)).astype(np.float32)[:, :n]
    return a, panels, c


@pytest.mark.parametrize("m", [2, 6, 7, 11, 12, 13, 20, 24, 25, 37, 64])
@pytest.mark.parametrize("k,n", [(1, NR), (33, 2 * NR), (200, 800), (64, 3 * NR + 8), (5, 20)])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_the_tall_tile_sums_as_the_wide_one(m, k, n, beta):
    rng = np.random.default_rng(m * 7919 + k * 31 + n)
    a, panels, c = _operands(rng, m, k, n, row_pad=3)
    wide, tall = c.copy(), c.copy()
    tile = np.empty((MR, NR), np.float32)
    _packed.packed_gemm(a, panels, wide, beta, tile)
    _tiles.tall_gemm(a, panels, tall, beta, tile)
    np.testing.assert_array_equal(tall, wide)
    want = a.astype(np.float64) @ np.hstack(list(panels)).astype(np.float64)[:, :n]
    want += beta * c
    scale = np.abs(a).astype(np.float64) @ np.abs(np.hstack(list(panels)))[:, :n] + np.abs(c)
    assert np.all(np.abs(tall - want) <= 4 * (k + 1) * np.finfo(np.float32).eps * scale)


def test_the_threshold_reaches_the_compiled_code_through_tuning_and_probes(monkeypatch):
    """``packed_product`` reads TALL_MIN_ROWS from the C integer each call: apply() and a
    probe's forced setting move it, and the default (never) is back after each."""
    assert _tiles._cell.value == int(min(_tiles.TALL_MIN_ROWS, NO_LIMIT))
    seen = []
    forced = _tuning_probes._with(
        {"TALL_MIN_ROWS": (_tiles, 0)}, lambda: seen.append(_tiles._cell.value)
    )
    before = _tiles._cell.value
    forced()
    assert seen == [0] and _tiles._cell.value == before
    was = _tuning.in_force()
    try:
        _tuning.apply({**was["values"], "TALL_MIN_ROWS": 16}, "test")
        assert _tiles._cell.value == 16 and _tiles.TALL_MIN_ROWS == 16
    finally:
        _tuning.apply(was["values"], was["source"], was["path"])
    assert _tiles._cell.value == before


@pytest.mark.parametrize("threshold", [0, 16, NO_LIMIT])
def test_a_layer_trains_alike_on_either_tile(monkeypatch, threshold):
    """A training step's outputs and gradients are the same bit for bit whichever tile
    the threshold picks (both run the same sums)."""
    from kioku.bench import workloads

    shape = workloads.Shape(6, 20, 64)
    state, x = workloads.torch_state(shape), workloads.inputs(shape)

    def grads(rows):
        monkeypatch.setattr(_tiles, "TALL_MIN_ROWS", rows)
        _tiles.sync_tuned()
        step = workloads.kioku_train(shape, state, x)
        dx = step()
        return [dx] + [g.copy() for _, g in step.model.parameters()]

    try:
        base, other = grads(NO_LIMIT), grads(threshold)
    finally:
        monkeypatch.undo()
        _tiles.sync_tuned()
    for u, v in zip(base, other):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("m", [7, 10, 12, 13, 20, 33])
@pytest.mark.parametrize(
    "hidden,features,width", [(16, 8, 16), (48, 33, 48), (200, 200, 1), (64, 128, 64)]
)
def test_the_fused_steps_tall_tile_sums_as_the_wide_one(m, hidden, features, width):
    """Both products of a fused step (gate-order panels, a last panel partly filled at
    H = 200, a one-column state at the first step) on either tile, all panels or a
    thread's range: the same pre-activations bit for bit."""
    from kioku.kernels._gate_order import GATE_UNITS, gate_panels_shape, pack_gate_panels

    rng = np.random.default_rng(m * 131 + hidden + features + width)
    w_ih = rng.standard_normal((4 * hidden, features)).astype(np.float32)
    w_hh = rng.standard_normal((4 * hidden, width)).astype(np.float32)
    p_ih = np.empty(gate_panels_shape(features, hidden), np.float32)
    p_hh = np.empty(gate_panels_shape(width, hidden), np.float32)
    pack_gate_panels(w_ih, p_ih)
    pack_gate_panels(w_hh, p_hh)
    x = rng.standard_normal((m + 2, features)).astype(np.float32)
    h = rng.standard_normal((m + 2, width)).astype(np.float32)
    tile = np.empty((MR, NR), np.float32)
    count = p_hh.shape[0]
    for q0, q1 in ((0, count), (count // 2, count)):
        wide = np.full((m + 2, 4 * hidden), np.nan, np.float32)
        tall = wide.copy()
        _tiles.pair_product_panels(x, p_ih, h, p_hh, wide, 1, m + 1, tile, q0, q1)
        _tiles.tall_pair_panels(x, p_ih, h, p_hh, tall, 1, m + 1, tile, q0, q1)
        np.testing.assert_array_equal(tall, wide)
        u0 = q0 * GATE_UNITS  # gate i of the units written is filled
        assert u0 >= hidden or not np.isnan(wide[1 : m + 1, u0:hidden]).any()
