"""(a) Vanishing gradients: the adding problem (Hochreiter & Schmidhuber 1997, exp. 4).

Each step carries two inputs: a value uniform in [-1, 1] and a marker. Two steps are
marked, the first among the first ten, the second in the second half (the 1997 paper
drew it from the first half); the target at the end is ``0.5 + (X1 + X2) / 4``, and a
sequence counts as correct when the absolute error is below 0.04. A simple RNN and an
LSTM of about the same size train on it at several lengths ``T``; the gradient of the
final loss that reaches each earlier step shows why one of them fails.
"""

from __future__ import annotations

import numpy as np

from ..inspect import record_gradients
from ..nn import LSTM, RNN, Module
from ..nn.linear import Linear
from ..nn.loss import mse
from .common import Budget, Stopwatch, optimiser, update

TOLERANCE = 0.04


def adding_batch(rng: np.random.Generator, batch: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``x (T, B, 2)`` float32 (value, marker) and ``target (B,)``."""
    values = rng.uniform(-1, 1, (steps, batch))
    marks = np.zeros((steps, batch))
    rows = np.arange(batch)
    first = rng.integers(0, min(10, steps // 2), batch)
    second = rng.integers(steps // 2, steps, batch)
    marks[first, rows] = 1
    marks[second, rows] = 1
    target = 0.5 + (values[first, rows] + values[second, rows]) / 4
    return np.stack([values, marks], axis=2).astype(np.float32), target.astype(np.float32)


class LastStepRegressor(Module):
    """A recurrent layer (``lstm`` or ``rnn``) whose last output goes through a linear
    head to one number: ``x (T, B, I)`` -> ``(B,)``."""

    def __init__(self, kind: str, input_size: int, hidden_size: int, rng: np.random.Generator):
        super().__init__()
        if kind == "lstm":
            layer = LSTM(input_size, hidden_size, unit_forget_bias=True, rng=rng)
        elif kind == "rnn":
            layer = RNN(input_size, hidden_size, rng=rng)
        else:
            raise ValueError(f"kind: expected 'lstm' or 'rnn', found {kind!r}")
        self.kind = kind
        self.add_module("recurrent", layer)
        self.add_module("head", Linear(hidden_size, 1, rng=rng))
        self._shape: tuple[int, ...] = ()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.recurrent(x)[0]
        self._shape = y.shape
        return self.head(y[-1])[:, 0]

    def backward(self, dpred: np.ndarray) -> None:
        dy = np.zeros(self._shape, np.float32)
        dy[-1] = self.head.backward(dpred[:, None].astype(np.float32))
        self.recurrent.backward(dy, None, need_dx=False)


def accuracy(model: LastStepRegressor, x: np.ndarray, target: np.ndarray) -> float:
    """Fraction of sequences with ``|prediction - target| < 0.04``."""
    return float(np.mean(np.abs(model(x) - target) < TOLERANCE))


def train_one(kind: str, steps: int, budget: Budget, seed: int) -> tuple[dict, LastStepRegressor]:
    """Train one model at length ``steps``; returns its results and the model."""
    hidden = 32 if kind == "lstm" else 64  # 4.6k vs 4.4k recurrent parameters
    rng = np.random.default_rng(seed)
    model = LastStepRegressor(kind, 2, hidden, rng)
    opt = optimiser(model, lr=0.01 if kind == "lstm" else 0.003)
    test_x, test_y = adding_batch(np.random.default_rng(seed + 1), 1000, steps)
    max_updates = budget.pick(900 if kind == "lstm" else 300, 3000 if kind == "lstm" else 1000)
    stop_at = budget.pick(0.97, 0.99)
    every = 50 if budget.quick else 100
    clock = Stopwatch()
    history, acc, update_count = [], 0.0, 0
    for update_count in range(1, max_updates + 1):
        x, y = adding_batch(rng, 64, steps)
        loss, dpred = mse(model(x), y)
        model.backward(dpred)
        update(model, opt)
        if update_count % every == 0:
            acc = accuracy(model, test_x, test_y)
            history.append({"update": update_count, "loss": float(loss), "accuracy": acc})
            if acc >= stop_at:
                break
    result = {
        "model": kind,
        "T": steps,
        "hidden_size": hidden,
        "parameters": model.num_parameters(),
        "updates": update_count,
        "test_accuracy": acc,
        "baseline_accuracy": float(np.mean(np.abs(0.5 - test_y) < TOLERANCE)),
        "seconds": clock.elapsed,
        "history": history,
    }
    return result, model


def gradient_curves(model: LastStepRegressor, steps: int, seed: int) -> dict[str, list[float]]:
    """Norms of dL/dh_t (and dL/dc_t for the LSTM) at every step for the MSE loss of one
    batch of 256 sequences of length ``steps``."""
    x, y = adding_batch(np.random.default_rng(seed + 2), 256, steps)
    with record_gradients(model) as records:
        _, dpred = mse(model(x), y)
        model.backward(dpred)
    model.zero_grad()
    (rec,) = records
    curves = {"dh": rec.dh_norm.tolist()}
    if rec.dc is not None:
        curves["dc"] = rec.dc_norm.tolist()
    return curves


def run(budget: Budget, seed: int = 0, log=print) -> dict:
    """The whole experiment: every (model, T) pair, then gradient curves at the longest
    T, for the trained models and for fresh ones."""
    lengths = budget.pick([50], [10, 20, 50, 100, 200])
    runs, models = [], {}
    for steps in lengths:
        for kind in ("lstm", "rnn"):
            result, model = train_one(kind, steps, budget, seed)
            log(
                f"adding T={steps} {kind}: {result['test_accuracy']:.3f} correct after "
                f"{result['updates']} updates ({result['seconds']:.0f} s)"
            )
            runs.append(result)
            models[(kind, steps)] = model
    longest = lengths[-1]
    curves = {}
    for kind in ("lstm", "rnn"):
        curves[f"{kind} trained"] = gradient_curves(models[(kind, longest)], longest, seed)
        fresh = LastStepRegressor(
            kind, 2, 32 if kind == "lstm" else 64, np.random.default_rng(seed)
        )
        curves[f"{kind} at init"] = gradient_curves(fresh, longest, seed)
    return {"tolerance": TOLERANCE, "runs": runs, "gradient_T": longest, "gradients": curves}
