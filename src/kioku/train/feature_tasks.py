"""Classification and regression of float sequences: one label (or one vector of
numbers, :class:`FeatureRegressTask`) per sequence of feature vectors
``(T_i, F)``, given in memory (``kioku.Classifier().fit(X, y)`` with ``X (N, T, F)`` or
a list of ``(T_i, F)`` arrays). The features are standardised with the training
sequences' mean and deviation per feature, which the checkpoint keeps (``task.mean``,
``task.std``) so that ``kioku.load(run).predict(X)`` reads raw features as training did.
It is a ``classify`` task whose model reads features instead of token ids (no
vocabulary: ``task.features`` is their count)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.padded import Example
from ..models import Forecaster, Model, SequenceClassifier
from .labeled_tasks import Batch, ClassifyTask, PaddedTask
from .settings import TrainSettings, setting_error


def as_sequences(x: object, name: str) -> list[np.ndarray]:
    """``x`` (an array ``(N, T, F)`` or a list of ``(T_i, F)`` arrays) as float64 arrays;
    a ``ValueError`` naming ``name`` (and the index) for anything else or a non-finite
    number."""
    if isinstance(x, np.ndarray):
        if x.ndim != 3:
            raise ValueError(f"{name}: expected an array (N, T, F), found shape {x.shape}")
        items = list(x)
    elif isinstance(x, Sequence) and not isinstance(x, str):
        items = list(x)
    else:
        raise TypeError(f"{name}: expected an array (N, T, F), found {type(x).__name__}")
    out = []
    for i, item in enumerate(items):
        values = np.asarray(item, np.float64)
        if values.ndim != 2 or values.shape[0] < 1:
            raise ValueError(f"{name}[{i}]: expected a sequence (T, F), found shape {values.shape}")
        if out and values.shape[1] != out[0].shape[1]:
            raise ValueError(
                f"{name}[{i}]: expected {out[0].shape[1]} features, found {values.shape[1]}"
            )
        if not np.isfinite(values).all():
            raise ValueError(f"{name}[{i}]: expected finite numbers, found nan or inf")
        out.append(values)
    return out


def encode_arrays(
    labels: list[str],
    scaling: tuple[np.ndarray, np.ndarray],
    sequences: list[np.ndarray],
    names: list[str],
    where: str,
) -> list[Example]:
    """Examples of raw ``sequences`` ``(T_i, F)`` labelled ``names``, standardised with
    ``scaling`` ``(mean (F,), std (F,))``; a label unseen in training or another number
    of features is a ``ValueError`` naming ``where``."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise ValueError(f"{where}: labels {unknown} not seen in train ({labels})")
    mean, std = (np.asarray(a, np.float64) for a in scaling)
    for i, x in enumerate(sequences):
        if x.shape[1] != mean.size:
            raise ValueError(f"{where}[{i}]: expected {mean.size} features, found {x.shape[1]}")
    return [
        Example(((x - mean) / std).astype(np.float32), index[y]) for x, y in zip(sequences, names)
    ]


class FeatureClassifyTask(ClassifyTask):
    """One label per float sequence; the model a :class:`SequenceClassifier` over
    ``input_size`` features (no embedding)."""

    def __init__(
        self,
        labels: list[str],
        splits: dict[str, list[Example]],
        batch_size: int,
        seed: int,
        scaling: tuple[np.ndarray, np.ndarray],
    ) -> None:
        """``splits``: examples of standardised ``(T_i, F)`` float32 sequences;
        ``scaling``: ``(mean (F,), std (F,))`` of the training sequences."""
        super().__init__(None, labels, splits, batch_size, seed)
        self.mean, self.std = (np.asarray(a, np.float64) for a in scaling)
        self.features = int(self.mean.size)

    @classmethod
    def from_settings(cls, settings: TrainSettings) -> FeatureClassifyTask:
        raise setting_error(
            ValueError, "data", "sequences of features are given in memory: Classifier().fit(X, y)"
        )

    @classmethod
    def from_arrays(
        cls, data: dict[str, tuple[list[np.ndarray], list[str]]], settings: TrainSettings
    ) -> FeatureClassifyTask:
        """The task over ``(sequences, labels)`` per split (``train``, ``valid``): labels
        and scaling from the training split."""
        sequences, names = data["train"]
        labels = sorted(set(names))
        steps = np.concatenate(sequences)
        scaling = (steps.mean(axis=0), steps.std(axis=0) + 1e-8)
        splits = {
            split: encode_arrays(labels, scaling, x, y, split) for split, (x, y) in data.items()
        }
        return cls(labels, splits, settings.batch_size, settings.seed, scaling)

    def extra_state(self) -> dict:
        return {"labels": self.labels, "features": self.features}

    def state_dict(self) -> dict:
        # the scaling is kept for predictions, like a forecaster's
        return {**super().state_dict(), "mean": self.mean.tolist(), "std": self.std.tolist()}

    def unknown_share(self, split: str) -> None:
        return None

    def build_model(
        self, settings: TrainSettings, rng: np.random.Generator, init_range: float | None
    ) -> SequenceClassifier:
        return SequenceClassifier(
            None,
            hidden_size=settings.hidden,
            num_classes=len(self.labels),
            num_layers=settings.layers,
            dropout=settings.dropout,
            input_size=self.features,
            rng=rng,
            init_range=init_range,
            **settings.cell_options(),
            **self.model_options(settings),
        )


class FeatureRegressTask(PaddedTask):
    """One vector of ``K`` numbers per float sequence (``kioku.Regressor().fit(X, y)``,
    ``y (N,)`` or ``(N, K)``): a :class:`~kioku.models.Forecaster` of horizon 1 reads the
    standardised sequence and gives the standardised targets from its last valid step;
    mean squared error. Features and targets are standardised with the training data's
    mean and deviation (kept: ``task.mean``/``std``, ``task.y_mean``/``y_std``), so
    figures and predictions come back in the targets' units. Beside the RMSE, the
    ``mean_rmse_units`` of always answering the training targets' mean."""

    kind = "regress"

    def __init__(
        self,
        splits: dict[str, list[Example]],
        batch_size: int,
        seed: int,
        scaling: tuple[np.ndarray, np.ndarray],
        y_scaling: tuple[np.ndarray, np.ndarray],
    ) -> None:
        super().__init__(splits, batch_size, seed)
        self.mean, self.std = (np.asarray(a, np.float64) for a in scaling)
        self.y_mean, self.y_std = (np.asarray(a, np.float64) for a in y_scaling)
        self.features, self.outputs = int(self.mean.size), int(self.y_mean.size)

    @classmethod
    def from_settings(cls, settings: TrainSettings) -> FeatureRegressTask:
        raise setting_error(
            ValueError, "data", "sequences of features are given in memory: Regressor().fit(X, y)"
        )

    @classmethod
    def from_arrays(
        cls, data: dict[str, tuple[list[np.ndarray], np.ndarray]], settings: TrainSettings
    ) -> FeatureRegressTask:
        """The task over ``(sequences, targets (N, K))`` per split; scaling from train."""
        sequences, targets = data["train"]
        steps = np.concatenate(sequences)
        scaling = (steps.mean(axis=0), steps.std(axis=0) + 1e-8)
        y_scaling = (targets.mean(axis=0), targets.std(axis=0) + 1e-8)
        splits = {
            split: encode_targets(scaling, y_scaling, x, y, split) for split, (x, y) in data.items()
        }
        return cls(splits, settings.batch_size, settings.seed, scaling, y_scaling)

    def build_model(
        self, settings: TrainSettings, rng: np.random.Generator, init_range: float | None
    ) -> Forecaster:
        return Forecaster(
            self.features, settings.hidden, settings.layers, 1, output_size=self.outputs,
            dropout=settings.dropout, rng=rng, init_range=init_range, **settings.cell_options(),
        )  # fmt: skip

    def batch_loss(self, model: Model, batch: Batch, backward: bool) -> tuple[float, int, int]:
        x, lengths, y = batch  # y (K, B): each example's targets, stacked time-major
        loss, _ = model.loss(x, np.transpose(y)[:, None, :], lengths, backward=backward)
        return float(loss), y.shape[1], 0

    def figure_count(self) -> int:
        return 4

    def batch_figures(self, model: Model, batch: Batch) -> np.ndarray:
        """Loss sum, examples, squared errors in the targets' units, and those of the
        training mean (0 in standardised units)."""
        x, lengths, y = batch
        target = np.transpose(y)  # (B, K)
        loss, pred = model.loss(x, target[:, None, :], lengths, backward=False)
        errors = ((pred[:, 0] - target) * self.y_std) ** 2
        baseline = (target * self.y_std) ** 2
        return np.array([loss * y.shape[1], y.shape[1], errors.sum(), baseline.sum()])

    def record(self, sums: np.ndarray) -> dict:
        total, count, squares, baseline = sums
        cells = count * self.outputs
        return {
            "loss": total / count,
            "rmse_units": float(np.sqrt(squares / cells)),
            "mean_rmse_units": float(np.sqrt(baseline / cells)),
        }

    def describe(self, record: dict) -> str:
        return (
            f"step {record['step']} epoch {record['epoch']} | {record['split']} "
            f"loss {record['loss']:.4f} rmse {record['rmse_units']:.4g} (mean: "
            f"{record['mean_rmse_units']:.4g}) | lr {record['lr']:.4g}"
        )

    def extra_state(self) -> dict:
        return {"features": self.features, "outputs": self.outputs}

    def state_dict(self) -> dict:
        scaling = {"mean": self.mean.tolist(), "std": self.std.tolist()}
        targets = {"y_mean": self.y_mean.tolist(), "y_std": self.y_std.tolist()}
        return {**super().state_dict(), **scaling, **targets}


def as_targets(y: object, count: int, name: str) -> np.ndarray:
    """``y`` as ``(count, K)`` finite float64 (``(count,)`` becomes ``(count, 1)``)."""
    values = np.asarray(y, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != count:
        raise ValueError(
            f"{name}: expected ({count},) or ({count}, K) numbers, found {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: expected finite numbers, found nan or inf")
    return values


def encode_targets(
    scaling: tuple[np.ndarray, np.ndarray],
    y_scaling: tuple[np.ndarray, np.ndarray],
    sequences: list[np.ndarray],
    targets: np.ndarray,
    where: str,
) -> list[Example]:
    """Examples of raw ``sequences`` ``(T_i, F)`` with ``targets (N, K)``, both
    standardised (another number of features is a ``ValueError`` naming ``where``)."""
    mean, std = (np.asarray(a, np.float64) for a in scaling)
    y_mean, y_std = (np.asarray(a, np.float64) for a in y_scaling)
    for i, x in enumerate(sequences):
        if x.shape[1] != mean.size:
            raise ValueError(f"{where}[{i}]: expected {mean.size} features, found {x.shape[1]}")
    return [
        Example(((x - mean) / std).astype(np.float32), ((t - y_mean) / y_std).astype(np.float32))
        for x, t in zip(sequences, targets)
    ]
