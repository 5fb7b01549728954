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
