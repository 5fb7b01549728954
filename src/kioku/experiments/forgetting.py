"""(b) Forgetting: the forget gate held open (f = 1, the 1997 LSTM) against a learned
forget gate on a continual stream that is never reset (Gers, Schmidhuber & Cummins 2000).

The stream is a sequence of segments of 12 to 24 steps. Each step shows one of ``K``
symbols (one-hot); one of the first four steps of a segment also raises a *store* flag,
and the last step raises a *query* flag, where the target is the symbol stored in that
segment (8 to 23 steps back: too far for the hidden-state path alone, see (a)). The
state is carried from chunk to chunk and never reset, so a network must erase the old
symbol when a new one comes. Without a forget gate the cell can only add: Gers et al.
found that its state then grows without bound.
"""

from __future__ import annotations

import numpy as np

from ..inspect import trace
from ..nn import LSTM, Module
from ..nn.linear import Linear
from ..nn.loss import softmax_cross_entropy
from .common import Budget, Stopwatch, optimiser, update

SYMBOLS = 4
SEGMENT = (12, 24)  # steps per segment, inclusive
STORE_WITHIN = 4  # the stored symbol comes in the first 4 steps of its segment
OPEN_BIAS = 1e4  # sigmoid(1e4) == 1.0 exactly in float32 and float64; its slope is 0


def recall_stream(
    rng: np.random.Generator, batch: int, steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x (T, B, K + 2)`` float32 (symbol one-hot, store flag, query flag), ``targets
    (T, B)`` int64 (the stored symbol at query steps, 0 elsewhere), ``query (T, B)`` bool."""
    x = np.zeros((steps, batch, SYMBOLS + 2), np.float32)
    targets = np.zeros((steps, batch), np.int64)
    query = np.zeros((steps, batch), bool)
    for b in range(batch):
        t = 0
        while t < steps:
            length = int(rng.integers(SEGMENT[0], SEGMENT[1] + 1))
            symbols = rng.integers(0, SYMBOLS, length)
            store = int(rng.integers(0, STORE_WITHIN))
            for k in range(length - 1):
                if t + k < steps:
                    x[t + k, b, symbols[k]] = 1
            if t + store < steps:
                x[t + store, b, SYMBOLS] = 1
            end = t + length - 1
            if end < steps:
                x[end, b, SYMBOLS + 1] = 1
                targets[end, b] = symbols[store]
                query[end, b] = True
            t += length
    return x, targets, query


def hold_forget_gate_open(lstm: LSTM) -> None:
    """Make every forget gate exactly 1 (no input or recurrent weight, a saturating bias).
    Its gradient is then 0 on the reference backend (a fast kernel's approximate tanh may
    leave ~1e-9), so call this again after each update to keep the gate pinned."""
    H = lstm.hidden_size
    for name, param in lstm.params.items():
        if name.startswith(("weight_ih", "weight_hh")):
            param[H : 2 * H] = 0
        elif name.startswith("bias_ih"):
            param[H : 2 * H] = OPEN_BIAS
        elif name.startswith("bias_hh"):
            param[H : 2 * H] = 0


class StreamTagger(Module):
    """LSTM -> linear at every step: ``x (T, B, I)``, state -> ``logits (T, B, K)``, state."""

    def __init__(self, hidden_size: int, rng: np.random.Generator) -> None:
        super().__init__()
        self.add_module("lstm", LSTM(SYMBOLS + 2, hidden_size, unit_forget_bias=True, rng=rng))
        self.add_module("head", Linear(hidden_size, SYMBOLS, rng=rng))

    def __call__(self, x, state=None):
        y, state = self.lstm(x, state)
        return self.head(y), state

    def backward(self, dlogits: np.ndarray) -> None:
        self.lstm.backward(self.head.backward(dlogits), None, need_dx=False)


def train_model(open_forget: bool, budget: Budget, seed: int) -> tuple[StreamTagger, dict]:
    rng = np.random.default_rng(seed)
    model = StreamTagger(32, rng)
    if open_forget:
        hold_forget_gate_open(model.lstm)
    opt = optimiser(model, lr=0.01)
    chunks, chunk = budget.pick(700, 1500), 40
    x, targets, query = recall_stream(rng, 32, chunks * chunk)
    state = None
    clock = Stopwatch()
    losses = []
    for k in range(chunks):
        part = slice(k * chunk, (k + 1) * chunk)
        logits, state = model(x[part], state)
        loss, dlogits = softmax_cross_entropy(logits, targets[part], mask=query[part])
        model.backward(dlogits.astype(np.float32))
        update(model, opt)
        if open_forget:
            hold_forget_gate_open(model.lstm)
        losses.append(float(loss))
    return model, {
        "chunks": chunks,
        "chunk_steps": chunk,
        "seconds": clock.elapsed,
        "final_loss": float(np.mean(losses[-10:])),
    }


def evaluate(model: StreamTagger, steps: int, seed: int, windows: int = 10) -> dict:
    """Run a fresh stream of ``steps`` steps (16 streams) in chunks of 200 without reset;
    mean |c| per step and query accuracy per window of ``steps / windows`` steps."""
    x, targets, query = recall_stream(np.random.default_rng(seed), 16, steps)
    predictions = []
    state = None
    with trace(model) as tr:
        for start in range(0, steps, 200):
            logits, state = model(x[start : start + 200], state)
            predictions.append(logits.argmax(axis=2))
    cell = tr.joined().cell  # (T, B, H)
    correct = np.concatenate(predictions, axis=0) == targets
    size = steps // windows
    window_acc = [
        float(correct[w * size : (w + 1) * size][query[w * size : (w + 1) * size]].mean())
        for w in range(windows)
    ]
    mean_abs_c = np.abs(cell).mean(axis=(1, 2))
    return {
        "steps": steps,
        "accuracy": float(correct[query].mean()),
        "window_accuracy": window_acc,
        "mean_abs_c": mean_abs_c.tolist(),
        "max_abs_c": float(np.abs(cell).max()),
        "mean_abs_c_first_window": float(mean_abs_c[:size].mean()),
        "mean_abs_c_last_window": float(mean_abs_c[-size:].mean()),
        "forget_gate_mean": float(tr.joined().forget_gate.mean()),
    }


def run(budget: Budget, seed: int = 0, log=print) -> dict:
    """Both variants, trained and then run on one long stream."""
    steps = budget.pick(2000, 10000)
    results = {}
    for label, open_forget in (("forget gate open (f = 1)", True), ("learned forget gate", False)):
        model, training = train_model(open_forget, budget, seed)
        evaluation = evaluate(model, steps, seed + 7)
        results[label] = {"training": training, **evaluation}
        log(
            f"forgetting, {label}: accuracy {evaluation['accuracy']:.3f}, mean |c| "
            f"{evaluation['mean_abs_c_first_window']:.2f} -> "
            f"{evaluation['mean_abs_c_last_window']:.2f} ({training['seconds']:.0f} s)"
        )
    return {"symbols": SYMBOLS, "chance_accuracy": 1 / SYMBOLS, "variants": results}
