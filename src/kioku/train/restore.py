"""Rebuilding models from checkpoints, with errors that name the file and the key."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data.vocab import Vocabulary
from ..nn.module import Module
from .checkpoint import CheckpointError, field, load_checkpoint
from .settings import TrainSettings


def saved_settings(state: dict, source: str) -> TrainSettings:
    """The run settings a checkpoint keeps under ``meta.settings``; a missing or bad
    field is a ``CheckpointError`` naming ``source`` and the key (not a flag: the user
    typed none of them)."""
    values = field(state, "meta.settings", source, dict)
    try:
        return TrainSettings.from_dict(values)
    except (TypeError, ValueError) as error:
        setting = getattr(error, "setting", None)
        key = "meta.settings" if setting is None else f"meta.settings.{setting}"
        detail = getattr(error, "detail", None) or str(error)
        raise CheckpointError(f"{source}: key 'state.{key}': {detail}") from None


def build_model(state: dict, source: str) -> Module:
    """A model of the checkpoint's kind and config (parameters not loaded yet)."""
    from .. import models

    kind = field(state, "model.kind", source, str)
    config = field(state, "model.config", source, dict)
    check_task_sizes(state, config, source)
    cls = getattr(models, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise CheckpointError(f"{source}: field 'model.kind': unknown model {kind!r}")
    try:
        return cls.from_config(config)
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{source}: field 'model.config': {error}") from None


# a size of the model's config and the list of the task's state that it counts
_COUNTED = (
    ("vocab_size", "vocab.tokens"),
    ("num_classes", "labels"),
    ("num_tags", "labels"),
    ("char_vocab_size", "char_vocab.tokens"),
    ("input_size", "columns"),  # a forecaster's
    ("horizon", "horizon"),  # a number, not a list: compared as it is
    ("output_size", "targets"),  # a forecaster's with past covariates
    ("input_size", "features"),  # a classifier's or regressor's of float sequences
    ("output_size", "outputs"),  # a regressor's
)


def check_task_sizes(state: dict, config: dict, source: str) -> None:
    """Refuse a checkpoint whose model config and task disagree on a count (vocabulary
    size, number of labels), naming both keys: a token or label would be read wrong."""
    task = state.get("task")
    if not isinstance(task, dict):
        return
    for size_key, dotted in _COUNTED:
        size = config.get(size_key)
        holder: object = task
        for part in dotted.split("."):
            holder = holder.get(part) if isinstance(holder, dict) else None
        if not isinstance(size, int) or isinstance(size, bool):
            continue
        if isinstance(holder, list) and len(holder) != size:
            raise CheckpointError(
                f"{source}: key 'state.task.{dotted}' holds {len(holder)} entries, but key "
                f"'state.model.config.{size_key}' says {size}"
            )
        if isinstance(holder, int) and holder != size:
            raise CheckpointError(
                f"{source}: key 'state.task.{dotted}' is {holder}, but key "
                f"'state.model.config.{size_key}' says {size}"
            )


def load_params(model: Module, state: dict, source: str) -> None:
    """Copy the checkpoint's parameters into ``model``; checks every key and shape first,
    so a refused checkpoint leaves ``model`` unchanged. Errors name ``source`` and key."""
    params = field(state, "model.params", source, dict)
    own = {name: p for name, p, _ in model.named_parameters()}
    for name in sorted(own):
        if name not in params:
            raise CheckpointError(f"{source}: key 'model.params.{name}' missing")
    for name, value in params.items():
        if name not in own:
            raise CheckpointError(
                f"{source}: key 'model.params.{name}': not a parameter of "
                f"this {type(model).__name__}"
            )
        if not isinstance(value, np.ndarray) or value.shape != own[name].shape:
            found = value.shape if isinstance(value, np.ndarray) else type(value).__name__
            raise CheckpointError(
                f"{source}: key 'model.params.{name}': expected shape {own[name].shape} "
                f"(from model.config), found {found} (in the tensor file)"
            )
    model.load_state_dict(params)


def load_model(
    path: str | os.PathLike, which: str = "best"
) -> tuple[Module, dict, Vocabulary | None, Path]:
    """Model (eval mode), full state, vocabulary (if the task has one) and the checkpoint
    directory from a run folder (its best checkpoint on validation, else its latest;
    ``which="latest"``: the latest) or checkpoint directory."""
    state, directory = load_checkpoint(path, which)
    source = str(directory / "checkpoint.json")
    model = build_model(state, source)
    load_params(model, state, source)
    vocab_data = state.get("task", {}).get("vocab")
    vocab = (
        Vocabulary.from_dict(vocab_data, f"{source}: field 'task.vocab'") if vocab_data else None
    )
    return model.eval(), state, vocab, directory
