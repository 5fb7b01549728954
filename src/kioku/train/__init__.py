"""Training: settings and their presets (``CHAR_LM``, ``PTB_SMALL``, ``CLASSIFY``, ``TAG``,
``FORECAST``: ``train_run(PTB_SMALL.replace(out="runs/ptb"))`` trains from a script), tasks,
optimizers, gradient clipping, learning-rate schedules, the loop, checkpoints, and whole
runs. Nothing here knows of the command line."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .clip import clip_grad_norm
from .lm_task import LanguageModelTask
from .loop import LoopConfig, LoopResult, Trainer
from .optim import OPTIMIZERS, SGD, Adam, AdamW, Optimizer
from .restore import load_model
from .runner import train_run
from .schedule import ReduceOnPlateau, StepDecay
from .settings import CHAR_LM, CLASSIFY, FORECAST, PRESETS, PTB_SMALL, TAG, TrainSettings
from .setup import TASKS
from .task import Task

__all__ = [
    "CHAR_LM",
    "CLASSIFY",
    "FORECAST",
    "OPTIMIZERS",
    "PRESETS",
    "PTB_SMALL",
    "SGD",
    "TAG",
    "TASKS",
    "Adam",
    "AdamW",
    "CheckpointError",
    "LanguageModelTask",
    "LoopConfig",
    "LoopResult",
    "Optimizer",
    "ReduceOnPlateau",
    "StepDecay",
    "Task",
    "Trainer",
    "TrainSettings",
    "clip_grad_norm",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "train_run",
]
