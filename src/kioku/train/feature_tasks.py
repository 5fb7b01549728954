"""Classification of float sequences: one label per sequence of feature vectors
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
from ..models import SequenceClassifier
from .labeled_tasks import ClassifyTask
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
