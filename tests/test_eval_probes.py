"""The tuning's eval-mode probes time each path on weights of its own
(kernels/_probe_timing._eval_levels): at batch 1 the first call on a pair of weights plans
that pair's later calls (kernels/_inference_plan) and the plan keeps its path, so two
settings timed on one pair would time one path twice."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from kioku.kernels import _threads, _tuning, numba_lstm  # noqa: E402
from kioku.kernels._probe_timing import Clock, _eval_levels  # noqa: E402


def test_each_setting_gets_weights_of_its_own(monkeypatch) -> None:
    calls: list[tuple[np.ndarray, float]] = []

    def record(x, weight_ih, weight_hh, bias, **kwargs):
        calls.append((weight_hh, _threads.UNITS_INFER_MIN_FLOPS))

    monkeypatch.setattr(numba_lstm, "lstm_forward", record)
    choice = _tuning.CHOICES["UNITS_INFER_MIN_FLOPS"]._replace(candidates=(8, 16))
    setting = ("UNITS_INFER_MIN_FLOPS", _threads, 0.0, float("inf"))
    levels = _eval_levels(choice, Clock(block_s=0.0, rounds=1), 3, 1, setting, lambda h: h)
    assert [level["quantity"] for level in levels] == [8, 16]
    arrays = []
    for weight_hh, _ in calls:
        if not any(weight_hh is seen for seen in arrays):
            arrays.append(weight_hh)
    assert len(arrays) == 4  # two hidden sizes, two settings each
    for array in arrays:
        values = {value for weight_hh, value in calls if weight_hh is array}
        assert len(values) == 1  # one setting per pair of weights
    assert {value for _, value in calls} == {0.0, float("inf")}
    for small, large in zip(arrays[:2], arrays[2:]):
        assert small.shape == (32, 8) and large.shape == (64, 16)
    np.testing.assert_array_equal(arrays[0], arrays[1])  # the same values, apart
