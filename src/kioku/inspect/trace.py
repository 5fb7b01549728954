"""Gate traces: f, i, g, o, c and h of every LSTM layer, direction and step of a run.

``with trace(model) as tr: model(x)`` records every forward of every :class:`~kioku.nn.LSTM`
inside ``model`` (found by walking its children) through a forward hook
(:meth:`~kioku.nn.LSTM.register_forward_hook`). Inside the block the LSTMs run on the
reference backend, whose cache holds the activated gates; on leaving it the hooks are
removed, so tracing costs nothing unless asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .. import kernels
from ..functional import split_gates
from ..nn import LSTM, Module
from .modules import recurrent_layers

QUANTITIES = {
    "i": "input_gate",
    "f": "forget_gate",
    "g": "candidate",
    "o": "output_gate",
    "c": "cell",
    "h": "hidden",
}


@dataclass
class DirectionTrace:
    """One direction of one layer during one forward call, time-major.

    ``input_gate``, ``forget_gate``, ``candidate``, ``output_gate``, ``cell`` (the cell
    leaving each step) are ``(T, B, H)``; ``hidden`` (the state leaving each step) is
    ``(T, B, P)``; ``mask (T, B)`` marks valid steps (``None``: all valid). ``module`` is
    the LSTM's dotted name inside the traced model (``""`` for the model itself) and
    ``call`` counts that LSTM's forwards inside the block from 0.
    """

    module: str
    layer: int
    direction: int
    call: int
    input_gate: np.ndarray
    forget_gate: np.ndarray
    candidate: np.ndarray
    output_gate: np.ndarray
    cell: np.ndarray
    hidden: np.ndarray
    mask: np.ndarray | None

    def get(self, quantity: str) -> np.ndarray:
        """One of ``i f g o c h`` (or its long name): the ``(T, B, H)`` array."""
        name = QUANTITIES.get(quantity, quantity)
        if name not in QUANTITIES.values():
            raise ValueError(
                f"quantity: expected one of {', '.join(QUANTITIES)} or "
                f"{', '.join(QUANTITIES.values())}, found {quantity!r}"
            )
        return getattr(self, name)

    @property
    def steps(self) -> int:
        return self.cell.shape[0]


def _from_cache(module: str, layer: int, direction: int, call: int, cache) -> DirectionTrace:
    gates = split_gates(cache.gates)
    return DirectionTrace(
        module, layer, direction, call, *gates, cache.c_out, cache.h_out, cache.mask
    )


class Trace:
    """What :func:`trace` recorded: a list of :class:`DirectionTrace`, in call order."""

    def __init__(self, names: list[str]) -> None:
        self.modules = names
        self.records: list[DirectionTrace] = []

    def __iter__(self) -> Iterator[DirectionTrace]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def _module(self, module: str | None) -> str:
        if module is None:
            if len(self.modules) != 1:
                raise ValueError(
                    f"module: expected one of {self.modules} (the model has several LSTMs), "
                    "found None"
                )
            return self.modules[0]
        if module not in self.modules:
            raise ValueError(f"module: expected one of {self.modules}, found {module!r}")
        return module

    def select(
        self, layer: int = 0, direction: int = 0, module: str | None = None
    ) -> list[DirectionTrace]:
        """Every call's record of one (module, layer, direction), in call order."""
        name = self._module(module)
        found = [
            r
            for r in self.records
            if r.module == name and r.layer == layer and r.direction == direction
        ]
        if not found:
            raise ValueError(
                f"layer/direction: no record for module {name!r} layer {layer} "
                f"direction {direction} (recorded: {self.keys()})"
            )
        return found

    def get(
        self, layer: int = 0, direction: int = 0, module: str | None = None, call: int = -1
    ) -> DirectionTrace:
        """The record of one call (default: the last) of one (module, layer, direction)."""
        return self.select(layer, direction, module)[call]

    def joined(
        self, layer: int = 0, direction: int = 0, module: str | None = None
    ) -> DirectionTrace:
        """All calls of one (module, layer, direction) joined along time: for a model run
        chunk by chunk (or step by step) with its state carried over. Arrays ``(ΣT, B, H)``."""
        parts = self.select(layer, direction, module)
        if len(parts) == 1:
            return parts[0]
        arrays = {}
        for name in QUANTITIES.values():
            arrays[name] = np.concatenate([getattr(p, name) for p in parts], axis=0)
        masks = [p.mask if p.mask is not None else np.ones(p.cell.shape[:2], bool) for p in parts]
        mask = None if all(p.mask is None for p in parts) else np.concatenate(masks, axis=0)
        first = parts[0]
        return DirectionTrace(first.module, layer, direction, -1, mask=mask, **arrays)

    def keys(self) -> list[tuple[str, int, int]]:
        """Distinct ``(module, layer, direction)`` recorded, in first-seen order."""
        return list(dict.fromkeys((r.module, r.layer, r.direction) for r in self.records))


def _recorder(name: str, tr: Trace):
    """A forward hook that appends each direction's gates and states to ``tr``."""
    calls = {"count": -1}

    def hook(lstm: LSTM, layer: int, direction: int, cache) -> None:
        if layer == 0 and direction == 0:
            calls["count"] += 1
        tr.records.append(_from_cache(name, layer, direction, calls["count"], cache))

    return hook


@contextlib.contextmanager
def trace(model: Module) -> Iterator[Trace]:
    """Record every LSTM forward inside ``model`` during the ``with`` block.

    ``model`` is an :class:`~kioku.nn.LSTM` or any module holding LSTMs as children.
    The LSTMs run on the reference backend inside the block (so a backward of a traced
    forward must also run inside it or under ``kernels.use("reference")``).
    """
    layers, seen = [], set()
    for name, lstm in recurrent_layers(model, (LSTM,)):
        if id(lstm) not in seen:  # a shared LSTM is hooked once
            seen.add(id(lstm))
            layers.append((name, lstm))
    if not layers:
        raise ValueError(
            f"model: expected a module containing a kioku.nn.LSTM, found none in "
            f"{type(model).__name__}"
        )
    tr = Trace([n for n, _ in layers])
    with contextlib.ExitStack() as hooks:
        for name, lstm in layers:
            hooks.enter_context(lstm.register_forward_hook(_recorder(name, tr)))
        with kernels.use("reference"):
            yield tr
