"""From settings (the ``kioku train`` flags) to a task, a model, an optimizer and a
schedule. Kept apart from the command so that scripts and tests can build runs too.

``settings`` is any object with the attributes of ``kioku train``'s flags (an
``argparse.Namespace`` or ``types.SimpleNamespace``).
"""

from __future__ import annotations

import numpy as np

from ..data.corpus import load_corpus
from ..data.vocab import Vocabulary
from ..nn.module import Module
from .lm_task import LanguageModelTask
from .optim import OPTIMIZERS
from .schedule import ReduceOnPlateau, StepDecay


def build_lm_task(settings) -> LanguageModelTask:
    """Corpus -> vocabulary (from the training split) -> id streams -> task."""
    corpus = load_corpus(settings.data)
    level = settings.level or corpus.default_level
    min_count = (
        settings.min_count if settings.min_count is not None else (3 if level == "char" else 1)
    )
    vocab = Vocabulary.build(corpus.train, level, min_count=min_count, max_size=settings.max_vocab)
    splits = {}
    for split in ("train", "valid", "test"):
        ids = vocab.encode(corpus.split(split))
        if ids.size < 2:
            raise ValueError(
                f"--data {settings.data}: the {split} split has {ids.size} tokens, expected >= 2"
            )
        splits[split] = ids
    return LanguageModelTask(
        vocab,
        splits,
        settings.batch_size,
        settings.bptt,
        eval_batch_size=settings.eval_batch_size,
        eval_tokens=settings.eval_tokens,
    )


def build_task(settings):
    """The task ``settings.task`` names (lm, classify, tag, forecast)."""
    if settings.task == "lm":
        return build_lm_task(settings)
    from .labeled_tasks import build_labeled_task

    return build_labeled_task(settings)


def build_model(settings, task) -> Module:
    """A fresh model for ``task`` with the sizes in ``settings``."""
    from .. import models

    init = settings.init_range if settings.init_range and settings.init_range > 0 else None
    rng = np.random.default_rng(settings.seed)
    if settings.task == "lm":
        return models.LanguageModel(
            len(task.vocab),
            embed_size=settings.embed,
            hidden_size=settings.hidden,
            num_layers=settings.layers,
            dropout=settings.dropout,
            tie_weights=settings.tie_weights,
            rng=rng,
            init_range=init,
            variational_dropout=settings.variational_dropout,
        )
    return task.build_model(settings, rng, init)


def build_optimizer(settings, model: Module):
    """``--optimizer`` over the model's parameters, with ``--lr`` and friends."""
    name = settings.optimizer
    if name not in OPTIMIZERS:
        raise ValueError(f"--optimizer: expected one of {sorted(OPTIMIZERS)}, found {name!r}")
    kwargs = {"lr": settings.lr, "weight_decay": settings.weight_decay}
    if name == "sgd":
        kwargs.update(momentum=settings.momentum, nesterov=settings.nesterov)
    return OPTIMIZERS[name](model.parameters(), **kwargs)


def build_schedule(settings, optimizer):
    """``--lr-decay`` with ``--decay-start`` (per epoch, Zaremba's rule), or ``--plateau``
    (decay on a validation plateau), or none."""
    if settings.plateau:
        return ReduceOnPlateau(optimizer, factor=settings.lr_decay or 0.5, patience=0)
    if settings.lr_decay and settings.lr_decay < 1:
        return StepDecay(optimizer, settings.lr_decay, 1, settings.decay_start)
    return None
