"""Gate traces: the gates and states of every recurrent layer, direction and step of a run.

``with trace(model) as tr: model(x)`` records every forward of every recurrent layer
with gates (:class:`~kioku.nn.LSTM` and its variants, :class:`~kioku.nn.GRU`,
:class:`~kioku.nn.SLSTM`) inside ``model`` (found by walking its
children) through a forward hook (:meth:`~kioku.nn.LSTM.register_forward_hook`). Each
record holds the cell's own quantities under its own names (:data:`CELL_QUANTITIES`):
the LSTM's i, f, g, o, c, h; the GRU's r, z, n, h; the sLSTM's i, f, z, o, c, n, m, h.
Inside the block the layers run on the reference backend; on leaving it the hooks are
removed, so tracing costs nothing unless asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..functional import split_gates
from ..nn import GRU, LSTM, SLSTM, Module, reference_math
from .modules import recurrent_layers


class Quantity(NamedTuple):
    """One traced quantity: its ``short`` name (``"f"``), attribute ``name``
    (``"forget_gate"``), ``label`` for plots and reports, and ``scale``: ``"gate"``
    (in 0..1), ``"signed"`` (in -1..1) or ``"free"`` (unbounded)."""

    short: str
    name: str
    label: str
    scale: str


def _quantities(*rows: tuple[str, str, str, str]) -> tuple[Quantity, ...]:
    return tuple(Quantity(*row) for row in rows)


def _lstm_like(candidate: tuple[str, ...], *after: tuple[str, ...]) -> tuple[Quantity, ...]:
    """The LSTM's gates and cell, under the names the LSTM and the sLSTM share, with the
    cell's ``candidate`` input between f and o, then the quantities ``after`` them."""
    return _quantities(
        ("i", "input_gate", "input gate", "gate"),
        ("f", "forget_gate", "forget gate", "gate"),
        candidate,
        ("o", "output_gate", "output gate", "gate"),
        ("c", "cell", "cell", "free"),
        *after,
    )


# per cell type, in the order its functional computes them
CELL_QUANTITIES: dict[str, tuple[Quantity, ...]] = {
    "LSTM": _lstm_like(
        ("g", "candidate", "candidate", "signed"), ("h", "hidden", "hidden", "signed")
    ),
    "GRU": _quantities(
        ("r", "reset_gate", "reset gate", "gate"),
        ("z", "update_gate", "update gate", "gate"),
        ("n", "new_state", "new state", "signed"),
        ("h", "hidden", "hidden", "signed"),
    ),
    "SLSTM": _lstm_like(
        ("z", "cell_input", "cell input", "signed"),
        ("n", "normalizer", "normalizer", "free"),
        ("m", "stabilizer", "stabilizer", "free"),
        ("h", "hidden", "hidden", "free"),
    ),
}
# the LSTM's short names and attribute names (what every record had before other cells)
QUANTITIES = {q.short: q.name for q in CELL_QUANTITIES["LSTM"]}


@dataclass
class DirectionTrace:
    """One direction of one layer during one forward call, time-major.

    ``values`` maps each quantity's short name (``CELL_QUANTITIES[cell_type]``) to its
    ``(T, B, S)`` array: gates and cells ``(T, B, H)``, the hidden state leaving each
    step ``(T, B, P)``; each is also an attribute under its long name (``record.cell``,
    ``record.reset_gate``). ``mask (T, B)`` marks valid steps (``None``: all valid).
    ``module`` is the layer's dotted name inside the traced model (``""`` for the model
    itself) and ``call`` counts that layer's forwards inside the block from 0.
    """

    module: str
    layer: int
    direction: int
    call: int
    values: dict[str, np.ndarray]
    mask: np.ndarray | None
    cell_type: str = "LSTM"

    @property
    def quantities(self) -> tuple[Quantity, ...]:
        """This cell's quantities, in order."""
        return CELL_QUANTITIES[self.cell_type]

    def quantity(self, quantity: str) -> Quantity:
        """The :class:`Quantity` named ``quantity`` (short or long name)."""
        for q in self.quantities:
            if quantity in (q.short, q.name):
                return q
        names = [q.short for q in self.quantities] + [q.name for q in self.quantities]
        raise ValueError(
            f"quantity: expected one of {', '.join(names)} (a {self.cell_type}), found {quantity!r}"
        )

    def get(self, quantity: str) -> np.ndarray:
        """One of the cell's quantities by short or long name: the ``(T, B, S)`` array."""
        return self.values[self.quantity(quantity).short]

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("__") or name in ("values", "cell_type"):
            raise AttributeError(name)
        for q in CELL_QUANTITIES.get(self.cell_type, ()):
            if q.name == name:
                return self.values[q.short]
        raise AttributeError(f"{type(self).__name__} of a {self.cell_type} has no {name!r}")

    @property
    def steps(self) -> int:
        return self.values["h"].shape[0]

    @property
    def steps_batch(self) -> tuple[int, int]:
        """``(T, B)``."""
        return self.values["h"].shape[:2]

    def window(self, steps: int) -> DirectionTrace:
        """This record cut to its first ``steps`` steps."""
        values = {k: v[:steps] for k, v in self.values.items()}
        mask = None if self.mask is None else self.mask[:steps]
        return DirectionTrace(
            self.module, self.layer, self.direction, self.call, values, mask, self.cell_type
        )


def cell_values(layer: Module, cache) -> tuple[str, dict[str, np.ndarray]]:
    """The cell type of ``layer`` and its quantities read from one direction's ``cache``
    (views into it, or computed from it where the cache keeps another form)."""
    if isinstance(layer, LSTM):
        gates = split_gates(cache.gates)
        values = dict(zip("ifgo", gates))
        values.update(c=cache.c_out, h=cache.h_out)
        return "LSTM", values
    if isinstance(layer, GRU):
        H = cache.h_state.shape[2]
        g = cache.gates
        values = {"r": g[:, :, :H], "z": g[:, :, H : 2 * H], "n": g[:, :, 2 * H :]}
        return "GRU", {**values, "h": cache.h_out}
    if isinstance(layer, SLSTM):
        H = cache.h_state.shape[2]
        values = {
            "i": cache.input_gate,
            "f": cache.forget_gate,
            "z": cache.gates[:, :, 2 * H : 3 * H],
            "o": cache.output_gate,
            "c": cache.c_out,
            "n": cache.n_out,
            "m": cache.m_out,
            "h": cache.h_out,
        }
        return "SLSTM", values
    raise TypeError(f"layer: expected an LSTM, GRU or SLSTM, found {type(layer).__name__}")


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
                    f"module: expected one of {self.modules} (the model has several "
                    "recurrent layers), found None"
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
        chunk by chunk (or step by step) with its state carried over. Arrays ``(ΣT, B, S)``."""
        parts = self.select(layer, direction, module)
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        values = {k: np.concatenate([p.values[k] for p in parts], axis=0) for k in first.values}
        masks = [
            np.ones(p.values["h"].shape[:2], bool) if p.mask is None else p.mask for p in parts
        ]
        mask = None if all(p.mask is None for p in parts) else np.concatenate(masks, axis=0)
        return DirectionTrace(first.module, layer, direction, -1, values, mask, first.cell_type)

    def keys(self) -> list[tuple[str, int, int]]:
        """Distinct ``(module, layer, direction)`` recorded, in first-seen order."""
        return list(dict.fromkeys((r.module, r.layer, r.direction) for r in self.records))


def _recorder(name: str, tr: Trace):
    """A forward hook that appends each direction's gates and states to ``tr``."""
    calls = {"count": -1}

    def hook(module: Module, layer: int, direction: int, cache) -> None:
        if layer == 0 and direction == 0:
            calls["count"] += 1
        cell_type, values = cell_values(module, cache)
        record = DirectionTrace(
            name, layer, direction, calls["count"], values, cache.mask, cell_type
        )
        tr.records.append(record)

    return hook


@contextlib.contextmanager
def trace(model: Module) -> Iterator[Trace]:
    """Record every forward of the recurrent layers inside ``model`` during the block.

    ``model`` is a gated recurrent layer (LSTM, GRU, SLSTM) or any module holding them
    as children (a plain RNN has no gates to trace). They run on the reference backend
    inside the block (so a backward of a traced forward must also run inside it or under
    :func:`kioku.nn.reference_math`).
    """
    layers, seen = [], set()
    for name, layer in recurrent_layers(model, (LSTM, GRU, SLSTM)):
        if id(layer) not in seen:  # a shared layer is hooked once
            seen.add(id(layer))
            layers.append((name, layer))
    if not layers:
        raise ValueError(
            f"model: expected a module containing a kioku.nn.LSTM, GRU or SLSTM, "
            f"found none in {type(model).__name__}"
        )
    tr = Trace([n for n, _ in layers])
    with contextlib.ExitStack() as hooks:
        for name, layer in layers:
            hooks.enter_context(layer.register_forward_hook(_recorder(name, tr)))
        with reference_math():
            yield tr
