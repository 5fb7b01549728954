"""From :class:`~kioku.train.settings.TrainSettings` to a task, a model, an optimizer and
a schedule. Kept apart from the command so that scripts and tests can build runs too."""

from __future__ import annotations

import numpy as np

from ..models import Model
from ..nn.module import Module
from .fits import check_fits
from .forecast_task import ForecastTask
from .labeled_tasks import ClassifyTask
from .lm_task import LanguageModelTask
from .optim import OPTIMIZERS, Optimizer
from .schedule import ReduceOnPlateau, StepDecay
from .settings import TrainSettings, preset_for, setting_error
from .tag_task import TagTask
from .task import Task

TASKS: dict[str, type[Task]] = {
    task.kind: task for task in (LanguageModelTask, ClassifyTask, TagTask, ForecastTask)
}
"""The tasks by the name ``settings.task`` gives them."""


def build_task(settings: TrainSettings) -> Task:
    """The task ``settings.task`` names, over ``settings.data``."""
    if settings.task not in TASKS:
        detail = f"expected one of {sorted(TASKS)}, found {settings.task!r}"
        raise setting_error(ValueError, "task", detail)
    return TASKS[settings.task].from_settings(settings)


def build_model(settings: TrainSettings, task: Task) -> Model:
    """A fresh model for ``task`` with the sizes in ``settings``, seeded by ``seed``
    (``init_range > 0``: every parameter from U(-init_range, init_range)); one that
    would not fit in the memory available is refused first (``ValueError`` naming the
    setting, :func:`~kioku.train.fits.check_fits`)."""
    init_range = settings.init_range if settings.init_range and settings.init_range > 0 else None
    check_fits(settings, preset_for(settings.task, settings.data), **data_sizes(task))
    return task.build_model(settings, np.random.default_rng(settings.seed), init_range)


def data_sizes(task: Task) -> dict[str, int | None]:
    """The model's sizes that ``task``'s data decided, as
    :func:`kioku.models.size.parameter_count` takes them (``None``: not this task's)."""

    def size(name: str) -> int | None:
        value = getattr(task, name, None)
        return None if value is None else len(value)

    return {
        "vocab_size": size("vocab"),
        "num_outputs": size("labels"),
        "input_size": size("columns"),
        "char_vocab_size": size("char_vocab"),
    }


def build_optimizer(settings: TrainSettings, model: Module) -> Optimizer:
    """``settings.optimizer`` over the model's parameters, with ``lr`` and friends."""
    name = settings.optimizer
    if name not in OPTIMIZERS:
        raise setting_error(
            ValueError, "optimizer", f"expected one of {sorted(OPTIMIZERS)}, found {name!r}"
        )
    kwargs = {"lr": settings.lr, "weight_decay": settings.weight_decay}
    if name == "sgd":
        kwargs.update(momentum=settings.momentum, nesterov=settings.nesterov)
    return OPTIMIZERS[name](model.parameters(), **kwargs)


def build_schedule(
    settings: TrainSettings, optimizer: Optimizer
) -> ReduceOnPlateau | StepDecay | None:
    """``lr_decay`` each epoch from ``decay_start`` (Zaremba's rule), or on a validation
    plateau if ``plateau`` (after ``plateau_patience`` evaluations without improvement of
    the figure that picks the best parameters: the trainer sets its mode), or none."""
    if settings.plateau:
        patience = settings.plateau_patience or 0
        return ReduceOnPlateau(optimizer, factor=settings.lr_decay or 0.5, patience=patience)
    if settings.lr_decay and settings.lr_decay < 1:
        return StepDecay(optimizer, settings.lr_decay, 1, settings.decay_start)
    return None
