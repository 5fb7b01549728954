"""The regressor of float sequences: ``kioku.Regressor().fit(X, y)`` with ``X (N, T, F)``
(or a list of ``(T_i, F)`` arrays) and ``y (N,)`` or ``(N, K)`` numbers.

Its task is :class:`~kioku.train.feature_tasks.FeatureRegressTask` (a forecaster of
horizon 1 over each sequence's last valid step, mean squared error, features and targets
standardised with the training data's mean and deviation); its settings are the classify
preset's (1 x 64, Adam 3e-3, clip 5, counted in epochs), ``settings.task`` reads
``classify`` and the checkpoint's ``task.kind`` reads ``regress``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..train.feature_tasks import FeatureRegressTask, as_sequences, as_targets, encode_targets
from ..train.settings import TrainSettings
from .base import Estimator, holdout


class Regressor(Estimator):
    """``K`` numbers per float sequence; ``predict(X)`` answers ``(N, K)`` in the targets'
    units (``(N, 1)`` for ``y (N,)``)."""

    task = "classify"  # the settings' task: its preset and its checks

    def _task(self, x: Any, y: Any, validation_data: Any, settings: TrainSettings) -> Any:
        sequences = as_sequences(x, "x")
        targets = as_targets(y, len(sequences), "y")
        if validation_data is None:
            parts = holdout(len(sequences), settings.seed, None, self.validation_split)
            data = {s: ([sequences[i] for i in idx], targets[idx]) for s, idx in parts.items()}
        else:
            if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
                raise TypeError("validation_data: expected a tuple (X, y)")
            vx = as_sequences(validation_data[0], "validation_data[0]")
            data = {
                "train": (sequences, targets),
                "valid": (vx, as_targets(validation_data[1], len(vx), "validation_data[1]")),
            }
        return FeatureRegressTask.from_arrays(data, settings)

    def predict(self, x: Any, batch_size: int = 64, **options: Any) -> np.ndarray:
        """The targets ``(N, K)`` of sequences ``x`` in their units (``(K,)`` for one
        ``(T, F)``): :meth:`kioku.api.Predictor.regress`."""
        return self._fitted().regress(x, batch_size)

    def evaluate(self, x: Any, y: Any, batch_size: int = 64) -> dict[str, float]:
        """``{"loss", "rmse_units", "mean_rmse_units"}`` on ``x`` with targets ``y``
        (loss: mean squared error in standardised units; ``mean_rmse_units``: always
        answering the training targets' mean)."""
        p = self._fitted()
        sequences = as_sequences(x, "x")
        targets = as_targets(y, len(sequences), "y")
        scaling, y_scaling = (p.mean, p.std), (p.y_mean, p.y_std)
        examples = encode_targets(scaling, y_scaling, sequences, targets, "x")
        splits = {"train": examples, "all": examples}
        task = FeatureRegressTask(splits, batch_size, 0, scaling, y_scaling)
        return {k: float(v) for k, v in task.measure(p.model, "all").items()}
