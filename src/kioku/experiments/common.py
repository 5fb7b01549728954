"""What the experiments share: a settings record per mode, one optimiser step, timing."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..nn import Module
from ..train import Adam, clip_grad_norm


@dataclass
class Budget:
    """How long each experiment trains: quick (CI, a few minutes) or full."""

    quick: bool

    def pick(self, quick_value, full_value):
        return quick_value if self.quick else full_value


def optimiser(model: Module, lr: float) -> Adam:
    """Adam over every parameter of ``model`` (zeroing its gradients first)."""
    model.zero_grad()
    return Adam(model.parameters(), lr=lr)


def update(model: Module, opt: Adam, max_norm: float = 1.0) -> float:
    """Clip the accumulated gradients to ``max_norm``, step, zero them; returns the norm
    before clipping."""
    norm = clip_grad_norm(model.parameters(), max_norm)
    opt.step()
    model.zero_grad()
    return norm


class Stopwatch:
    """Seconds since construction (``elapsed``)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
