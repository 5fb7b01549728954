"""Gate saturation (Karpathy, Johnson & Fei-Fei 2015): per cell, how often a gate is
nearly shut (< 0.1) or nearly open (> 0.9). Right-saturated forget gates are cells that
remember for long; a gate that is never saturated acts as a soft, input-driven mixer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .trace import Trace

GATES = {"input": "input_gate", "forget": "forget_gate", "output": "output_gate"}  # LSTM's


@dataclass
class Saturation:
    """``low (H,)`` and ``high (H,)``: fraction of valid steps (over all traced calls
    and sequences) at which each cell's ``gate`` was below the low / above the high
    threshold."""

    module: str
    layer: int
    direction: int
    gate: str
    low: np.ndarray
    high: np.ndarray

    def summary(self) -> dict:
        """JSON-able means over cells."""
        return {
            "module": self.module,
            "layer": self.layer,
            "direction": self.direction,
            "gate": self.gate,
            "fraction_low": float(self.low.mean()),
            "fraction_high": float(self.high.mean()),
        }


def gate_saturation(tr: Trace, low: float = 0.1, high: float = 0.9) -> list[Saturation]:
    """Saturation of the gates (quantities in 0..1: an LSTM's or sLSTM's input, forget
    and output gates, a GRU's reset and update gates) of every traced (module, layer,
    direction), steps past a sequence's length excluded. ``gate`` is the gate's label
    without " gate" (``"forget"``, ``"reset"``)."""
    if not 0 <= low < high <= 1:
        raise ValueError(f"low, high: expected 0 <= low < high <= 1, found {low}, {high}")
    results = []
    for module, layer, direction in tr.keys():
        records = tr.select(layer, direction, module)
        gates = [q for q in records[0].quantities if q.scale == "gate"]
        for quantity in gates:
            gate = quantity.label.removesuffix(" gate")
            below = above = 0
            count = 0
            for rec in records:
                values = rec.get(quantity.short)
                valid = (
                    np.ones(values.shape[:2], bool) if rec.mask is None else rec.mask.astype(bool)
                )
                picked = values[valid]  # (N, H)
                below = below + (picked < low).sum(axis=0)
                above = above + (picked > high).sum(axis=0)
                count += picked.shape[0]
            count = max(count, 1)
            results.append(Saturation(module, layer, direction, gate, below / count, above / count))
    return results
