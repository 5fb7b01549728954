"""kernels/_path.choose_path: the one place a call's path is decided, read by
lstm_forward, lstm_backward and both plans, with the thresholds read at call time (so
values measured by kernels/_tuning.py take effect)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from tolerance import assert_close, direction_depth  # noqa: E402

from kioku.kernels import _path, _primitives, _threads, numba_lstm  # noqa: E402
from kioku.kernels._packed import NR  # noqa: E402

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def path(T=5, B=1, I=64, H=64, P=0, dtype=F32, keep_cache=False, all_valid=True):
    """The path of an LSTM direction of these sizes (weights as float32/64 arrays)."""
    item = dtype.itemsize
    P_in = P or H
    return _path.choose_path(
        T, B, I, H, P, dtype, keep_cache=keep_cache, all_valid=all_valid,
        weight_bytes=4 * H * (I + P_in) * item, recurrent_bytes=4 * H * P_in * item,
    )  # fmt: skip


def test_one_sequence_inference_is_one_call_only_where_its_rule_holds() -> None:
    assert path().one_sequence
    step_mnk = 1 * 64 * 4 * 64  # B I 4H of one step's input projection
    assert path().max_steps == numba_lstm.PACKED_PROJECTION_MNK // step_mnk
    for other in (
        path(B=2), path(keep_cache=True), path(P=16), path(all_valid=False), path(dtype=F64),
        path(T=numba_lstm.PACKED_PROJECTION_MNK // step_mnk + 1),
    ):  # fmt: skip
        assert not other.one_sequence


def test_thresholds_are_read_at_call_time(monkeypatch) -> None:
    monkeypatch.setattr(numba_lstm, "FUSED_MIN_ROWS", 4)  # the values chosen by hand
    monkeypatch.setattr(_threads, "MIN_ROWS", 4)
    monkeypatch.setattr(_threads, "MIN_FLOPS", 4e6)
    assert not path(B=1).fused and path(B=4, T=3).fused
    monkeypatch.setattr(numba_lstm, "FUSED_MIN_ROWS", 1)
    assert path(B=1).fused and not path(B=1).one_sequence  # batch 1 then fuses too
    monkeypatch.setattr(numba_lstm, "FUSED_MIN_ROWS", 10**9)
    assert not path(B=4, T=3).fused
    monkeypatch.setattr(_primitives, "L2_BYTES", 0)
    assert path().tiled
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    wide = path(B=64, H=256, I=256)
    assert wide.parts == 2 and not wide.budget_free
    monkeypatch.setattr(_threads, "MIN_ROWS", 64)
    assert path(B=64, H=256, I=256).parts == 1


def test_the_split_is_the_thread_rules(monkeypatch) -> None:
    monkeypatch.setenv("KIOKU_NUM_THREADS", "3")
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    split = path(B=9)
    assert split.slices == tuple(_threads.batch_slices(9, 1.0)) and split.parts == 3
    assert not split.one_entry and not split.budget_free
    assert path(B=1).budget_free  # one row: one part whatever the budget


def test_training_paths_and_the_packed_weight_gradients(monkeypatch) -> None:
    monkeypatch.setattr(numba_lstm, "FUSED_MIN_ROWS", 4)
    small = path(B=1, keep_cache=True)
    assert small.budget_free and small.packed_ih and not small.fused and small.packed_grads
    assert small.max_steps == numba_lstm.PACKED_PROJECTION_MNK // (64 * 4 * 64)
    assert not path(B=1, H=NR + 1, keep_cache=True).packed_grads  # off the panel width
    assert not path(B=1, P=NR, H=2 * NR, keep_cache=True).packed_grads  # a projection
    assert not path(B=1, dtype=F64, keep_cache=True).packed_grads
    # up to PACKED_GRADS_MAX_BYTES of both weights (measured per machine: OpenBLAS above)
    weights = 4 * NR * (NR + NR) * 4  # float32, I = H = NR
    monkeypatch.setattr(numba_lstm, "PACKED_GRADS_MAX_BYTES", weights)
    assert path(B=1, I=NR, H=NR, keep_cache=True).packed_grads
    monkeypatch.setattr(numba_lstm, "PACKED_GRADS_MAX_BYTES", weights - 1)
    assert not path(B=1, I=NR, H=NR, keep_cache=True).packed_grads


@pytest.mark.parametrize("threads", ["1", "2"])
def test_the_packed_gemm_probes_reach_both_paths_at_every_level(monkeypatch, threads) -> None:
    """The probes of PACKED_PROJECTION_MNK and PACKED_GRADS_MAX_BYTES time two settings
    that must take two paths at each of their sizes, on one thread or more."""
    from kioku.kernels import _tuning_choices, _tuning_probes

    monkeypatch.setenv("KIOKU_NUM_THREADS", threads)
    choices = _tuning_choices.CHOICES
    monkeypatch.setattr(numba_lstm, "FUSED_MIN_ROWS", 1 << 30)
    monkeypatch.setattr(_threads, "UNITS_MIN_FLOPS", _tuning_probes._INF)
    monkeypatch.setattr(_threads, "UNITS_INFER_MIN_FLOPS", _tuning_probes._INF)
    for hidden in choices["PACKED_PROJECTION_MNK"].candidates:
        taken = []
        for limit in (1 << 62, 0):
            monkeypatch.setattr(numba_lstm, "PACKED_PROJECTION_MNK", limit)
            for keep_cache in (False, True):  # inference and training forward
                taken.append(path(T=20, B=32, I=hidden, H=hidden, keep_cache=keep_cache))
        assert [p.packed_ih for p in taken] == [True, True, False, False]
    for hidden in choices["PACKED_GRADS_MAX_BYTES"].candidates:
        taken = []
        for limit in (1 << 62, 0):
            monkeypatch.setattr(numba_lstm, "PACKED_GRADS_MAX_BYTES", limit)
            taken.append(path(T=16, B=32, I=hidden, H=hidden, keep_cache=True).packed_grads)
        assert taken == [True, False]


def test_the_general_path_and_the_plans_follow_the_path(monkeypatch) -> None:
    """Turning FUSED_MIN_ROWS down to 1 sends batch-1 inference to the fused loop: the
    general path stops calling infer_sequence and no inference plan is made."""
    from kioku.kernels import _inference_plan

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 1, 8)).astype(np.float32)
    w_ih, w_hh = (rng.standard_normal((32, 8)).astype(np.float32) * 0.3 for _ in range(2))
    calls = []
    entry = numba_lstm.infer_sequence
    monkeypatch.setattr(numba_lstm, "infer_sequence", lambda *a: calls.append(1) or entry(*a))
    want = numba_lstm.lstm_forward(x, w_ih, w_hh, keep_cache=False)
    assert calls == [1]
    monkeypatch.setattr(numba_lstm, "FUSED_MIN_ROWS", 1)
    got = numba_lstm.lstm_forward(x, w_ih, w_hh, keep_cache=False, reuse_packs=True)
    assert calls == [1] and _inference_plan.plan_inference(w_ih, w_hh, 3) is None
    assert_close("y", got[0], want[0], direction_depth(x, w_hh))


def test_the_gemms_around_an_unsplit_loop_split_from_their_threshold(monkeypatch) -> None:
    """A batch too small to split keeps its loop on one thread, but the GEMMs around the
    loop (projection, weight gradients) take every thread from GEMM_SPLIT_FLOPS on; the
    step then projects its own inputs no longer (that projection would stay on one)."""
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    monkeypatch.setattr(numba_lstm, "FUSED_MIN_ROWS", 1)
    monkeypatch.setattr(_threads, "UNITS_MIN_FLOPS", float("inf"))  # the loop on one thread
    monkeypatch.setattr(_threads, "GEMM_SPLIT_FLOPS", float("inf"))
    whole = path(T=50, B=2, H=256, I=256, keep_cache=True)
    assert whole.parts == 1 and whole.gemm_parts == 1 and whole.budget_free and whole.fused
    monkeypatch.setattr(_threads, "GEMM_SPLIT_FLOPS", 8.0 * 50 * 2 * 256 * 256)
    split = path(T=50, B=2, H=256, I=256, keep_cache=True)
    assert split.parts == 1 and split.gemm_parts == 2
    assert not (split.budget_free or split.fused or split.one_entry)
    shorter = path(T=49, B=2, H=256, I=256, keep_cache=True)  # one step under the threshold
    assert shorter.gemm_parts == 1 and shorter.fused
    monkeypatch.setenv("KIOKU_NUM_THREADS", "3")
    assert path(T=50, B=2, H=256, I=256).gemm_parts == 3


def test_a_batch_too_small_to_split_by_rows_splits_its_steps_by_units(monkeypatch) -> None:
    """unit_parts: from UNITS_MIN_FLOPS (training; UNITS_ROW_MIN_FLOPS for one row) or
    UNITS_INFER_MIN_FLOPS (inference) a float32 step without projection, every step
    valid, splits by hidden units over the budget (at most one thread per NR-wide panel
    of H), each step projecting its own inputs; never with a projection, shorter
    lengths, float64 or a batch split by rows."""
    monkeypatch.setenv("KIOKU_NUM_THREADS", "4")
    monkeypatch.setattr(_threads, "UNITS_MIN_FLOPS", 8.0 * 2 * 256 * 256)
    monkeypatch.setattr(_threads, "UNITS_INFER_MIN_FLOPS", float("inf"))
    monkeypatch.setattr(_threads, "MIN_FLOPS", float("inf"))  # no row split
    split = path(T=20, B=2, H=256, I=256, keep_cache=True)
    assert split.unit_parts == 4 and split.fused and not split.budget_free
    assert not split.one_entry and split.parts == 1
    assert path(T=20, B=2, H=256, I=256).unit_parts == 1  # inference: its own threshold
    # one training row: its own threshold (UNITS_ROW_MIN_FLOPS, 8 H^2)
    monkeypatch.setattr(_threads, "UNITS_ROW_MIN_FLOPS", 8.0 * 256 * 256 + 1)
    assert path(T=20, B=1, H=256, I=256, keep_cache=True).unit_parts == 1
    monkeypatch.setattr(_threads, "UNITS_ROW_MIN_FLOPS", 8.0 * 256 * 256)
    assert path(T=20, B=1, H=256, I=256, keep_cache=True).unit_parts == 4
    assert path(T=20, B=1, H=256, I=256).unit_parts == 1  # inference: its own again
    monkeypatch.setattr(_threads, "UNITS_ROW_MIN_FLOPS", float("inf"))
    # at most one thread per panel: two panels of H = 2 NR, from a threshold met at B = 8
    monkeypatch.setattr(_threads, "UNITS_MIN_FLOPS", 8.0 * 8 * (2 * NR) ** 2)
    assert path(T=20, B=2, H=2 * NR, I=64, keep_cache=True).unit_parts == 1  # under it
    assert path(T=20, B=8, H=2 * NR, I=64, keep_cache=True).unit_parts == 2  # two panels
    for other in (
        path(T=20, B=2, H=256, I=256, P=128, keep_cache=True),
        path(T=20, B=2, H=256, I=256, all_valid=False, keep_cache=True),
        path(T=20, B=2, H=256, I=256, dtype=F64, keep_cache=True),
        path(T=1, B=2, H=256, I=256, keep_cache=True),
    ):  # fmt: skip
        assert other.unit_parts == 1
    monkeypatch.setattr(_threads, "UNITS_INFER_MIN_FLOPS", 0.0)
    one = path(T=20, B=1, H=256, I=256)
    assert one.unit_parts == 4 and not one.one_sequence
    monkeypatch.setattr(_threads, "MIN_FLOPS", 0.0)  # rows split first
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    assert path(T=20, B=2, H=256, I=256, keep_cache=True).unit_parts == 1


@pytest.mark.parametrize("rows", [1, 4, 8, 16])
def test_the_fused_probe_compares_a_fused_path_with_an_unfused_one(monkeypatch, rows):
    """Its two settings must reach two different paths at every level: with the splits
    left on, a split by units or of the GEMMs took both sides of the probe down one path
    (fused, or not), and the threshold was chosen from noise (32 on an AMD EPYC)."""
    from kioku.kernels import _tuning_probes

    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    w = 4 * 200 * 200 * 4  # one weight's bytes at H = I = 200

    def fused(setting: int) -> bool:
        for name, (module, value) in _tuning_probes._ONE_THREAD.items():
            monkeypatch.setattr(module, name, value)
        monkeypatch.setattr(numba_lstm, "FUSED_MIN_ROWS", setting)
        return _path.choose_path(
            35, rows, 200, 200, 0, np.dtype(np.float32), keep_cache=True, all_valid=True,
            weight_bytes=2 * w, recurrent_bytes=w,
        ).fused  # fmt: skip

    assert fused(1) and not fused(1 << 30)


def test_the_one_row_unit_probe_reaches_both_paths_at_every_level(monkeypatch) -> None:
    from kioku.kernels import _tuning_choices

    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    for hidden in _tuning_choices.CHOICES["UNITS_ROW_MIN_FLOPS"].candidates:
        taken = []
        for least in (0.0, float("inf")):  # the probe's two settings
            monkeypatch.setattr(_threads, "UNITS_ROW_MIN_FLOPS", least)
            taken.append(path(T=32, B=1, I=hidden, H=hidden, keep_cache=True).unit_parts)
        assert taken == [2, 1]


def test_the_rows_probe_compares_a_row_split_with_one_thread(monkeypatch) -> None:
    """``MIN_ROWS``'s probe: at every level one side splits the batch by rows and the other
    runs on one thread. With the split by units left on, its "one thread" was that split
    (level with the split by rows at H = 256) and noise chose the threshold: 4, 8 or 32 in
    six tunings on a 2-core Intel Xeon, where 32 sends a batch of 20 at H = 650 to one
    thread."""
    from kioku.kernels import _tuning, _tuning_probes

    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    settings = []
    monkeypatch.setattr(_tuning_probes, "_with", lambda s, fn: settings.append(s) or fn)
    monkeypatch.setattr(_tuning_probes, "_training", lambda T, B, H: (T, B, H))
    monkeypatch.setattr(_tuning_probes, "_compare", lambda clock, q, on, off: (q, on, off))
    choice = _tuning.CHOICES["MIN_ROWS"]
    levels, note = _tuning_probes.split_rows(choice, None, 1.0)
    assert note is None and len(settings) == 2 * len(choice.candidates)
    for (rows, (T, B, H), _), split, whole in zip(levels, settings[::2], settings[1::2]):
        paths = []
        for setting in (split, whole):
            with monkeypatch.context() as m:
                for name, (module, value) in setting.items():
                    m.setattr(module, name, value)
                paths.append(path(T=T, B=B, H=H, I=H, keep_cache=True))
        assert paths[0].parts == 2 and B == 2 * rows
        assert paths[1].parts == paths[1].unit_parts == paths[1].gemm_parts == 1
