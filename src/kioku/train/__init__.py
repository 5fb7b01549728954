"""Training: optimizers, gradient clipping, learning-rate schedules (and, from
part B, the loop and checkpoints)."""

from .clip import clip_grad_norm
from .optim import OPTIMIZERS, SGD, Adam, AdamW, Optimizer
from .schedule import ReduceOnPlateau, StepDecay

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "ReduceOnPlateau",
    "StepDecay",
    "clip_grad_norm",
]

# part B: checkpoints, the loop, tasks, runs
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from .lm_task import LanguageModelTask  # noqa: E402
from .loop import LoopConfig, LoopResult, Trainer  # noqa: E402
from .restore import load_model  # noqa: E402
from .runner import train_run  # noqa: E402

__all__ += [
    "CheckpointError",
    "LanguageModelTask",
    "LoopConfig",
    "LoopResult",
    "Trainer",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "train_run",
]
