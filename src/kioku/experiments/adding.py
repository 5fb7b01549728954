"""(a) Vanishing gradients: the adding problem (Hochreiter & Schmidhuber 1997, exp. 4).

Each step carries two inputs: a value uniform in [-1, 1] and a marker. Two steps are
marked, the first among the first ten, the second in the second half (the 1997 paper
drew it from the first half); the target at the end is ``0.5 + (X1 + X2) / 4``, and a
sequence counts as correct when the absolute error is below 0.04. A simple RNN, a GRU,
an LSTM and an sLSTM of about the same size train on it at several lengths ``T``; the
gradient of the final loss that reaches each earlier step shows why the RNN fails.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from ..inspect import record_gradients
from ..nn import GRU, LSTM, RNN, SLSTM, Module
from ..nn.linear import Linear
from ..nn.loss import mse
from .common import Budget, Stopwatch, optimiser, update

TOLERANCE = 0.04


@dataclass(frozen=True)
class Contender:
    """How one kind of layer is sized and trained: ``hidden`` units (chosen so that
    every kind has 4.4k to 4.6k recurrent parameters), Adam's ``lr``, and the most
    updates in quick and full mode."""

    hidden: int
    lr: float
    quick_updates: int
    full_updates: int


# The sLSTM's step is the reference NumPy one (no compiled kernel): ~20x the LSTM's time
# per update, hence its smaller budgets.
CONTENDERS = {
    "rnn": Contender(64, 0.003, 300, 1000),
    "gru": Contender(37, 0.01, 300, 3000),
    "lstm": Contender(32, 0.01, 900, 3000),
    "slstm": Contender(32, 0.01, 200, 600),
}
"""The layers compared, in the order the tables list them."""


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
    """A recurrent layer (``kind`` one of :data:`CONTENDERS`) whose last output goes
    through a linear head to one number: ``x (T, B, I)`` -> ``(B,)``. The LSTM starts
    with a forget bias of 1, the sLSTM with its own (3 to 6: long memory from the start)."""

    def __init__(self, kind: str, input_size: int, hidden_size: int, rng: np.random.Generator):
        super().__init__()
        if kind == "lstm":
            layer = LSTM(input_size, hidden_size, unit_forget_bias=True, rng=rng)
        elif kind == "rnn":
            layer = RNN(input_size, hidden_size, rng=rng)
        elif kind == "gru":
            layer = GRU(input_size, hidden_size, rng=rng)
        elif kind == "slstm":
            layer = SLSTM(input_size, hidden_size, rng=rng)
        else:
            raise ValueError(f"kind: expected one of {', '.join(CONTENDERS)}, found {kind!r}")
        self.kind = kind
        self.add_module("recurrent", layer)
        self.add_module("head", Linear(hidden_size, 1, rng=rng))
        self._shape: tuple[int, ...] = ()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.recurrent.run(x)[0]
        self._shape = y.shape
        return self.head(y[-1])[:, 0]

    def backward(self, dpred: np.ndarray, need_dx: bool = False) -> np.ndarray | None:
        """``dpred (B,)`` -> adds the parameter gradients; returns ``dx (T, B, I)`` if
        ``need_dx``, else ``None``."""
        dy = np.zeros(self._shape, np.float32)
        dy[-1] = self.head.backward(dpred[:, None].astype(np.float32))
        return self.recurrent.run_backward(dy, None, need_dx)[0]


def accuracy(model: LastStepRegressor, x: np.ndarray, target: np.ndarray) -> float:
    """Fraction of sequences with ``|prediction - target| < 0.04``."""
    return float(np.mean(np.abs(model(x) - target) < TOLERANCE))


def train_one(kind: str, steps: int, budget: Budget, seed: int) -> tuple[dict, LastStepRegressor]:
    """Train one model at length ``steps``; returns its results (the gradient reaching
    step 0 after training included) and the model."""
    contender = CONTENDERS[kind]
    hidden = contender.hidden
    rng = np.random.default_rng(seed)
    model = LastStepRegressor(kind, 2, hidden, rng)
    opt = optimiser(model, lr=contender.lr)
    test_x, test_y = adding_batch(np.random.default_rng(seed + 1), 1000, steps)
    max_updates = budget.pick(contender.quick_updates, contender.full_updates)
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
    curves = gradient_curves(model, steps, seed)
    result["dx_step0"] = curves["dx"][0]
    if "dh" in curves:
        result["dh_step0"] = curves["dh"][0]
    return result, model


def gradient_curves(model: LastStepRegressor, steps: int, seed: int) -> dict[str, list[float]]:
    """Per-step gradient norms for the MSE loss of one batch of 256 sequences of length
    ``steps`` (L2 over features, mean over sequences): ``dx``, dL/dx_t, the gradient
    reaching the input of step ``t``, for every kind of layer; ``dh`` (dL/dh_t) and
    ``dc`` (dL/dc_t, LSTM) where :func:`kioku.inspect.record_gradients` hooks the layer."""
    x, y = adding_batch(np.random.default_rng(seed + 2), 256, steps)
    records: list = []
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(ValueError):  # a layer kioku.inspect does not hook
            records = stack.enter_context(record_gradients(model))
        _, dpred = mse(model(x), y)
        dx = model.backward(dpred, need_dx=True)
    model.zero_grad()
    curves = {"dx": np.linalg.norm(dx.astype(np.float64), axis=2).mean(axis=1).tolist()}
    if records:
        (rec,) = records
        curves["dh"] = rec.dh_norm.tolist()
        if rec.dc is not None:
            curves["dc"] = rec.dc_norm.tolist()
    return curves


def run(budget: Budget, seed: int = 0, log=print) -> dict:
    """The whole experiment: every (model, T) pair, then gradient curves at the longest
    T, for the trained models and for fresh ones."""
    lengths = budget.pick([50], [10, 20, 50, 100, 200])
    runs, models = [], {}
    for steps in lengths:
        for kind in CONTENDERS:
            result, model = train_one(kind, steps, budget, seed)
            log(
                f"adding T={steps} {kind}: {result['test_accuracy']:.3f} correct after "
                f"{result['updates']} updates ({result['seconds']:.0f} s); "
                f"|dL/dx_0| {result['dx_step0']:.2g}"
            )
            runs.append(result)
            models[(kind, steps)] = model
    longest = lengths[-1]
    curves = {}
    for kind, contender in CONTENDERS.items():
        curves[f"{kind} trained"] = gradient_curves(models[(kind, longest)], longest, seed)
        fresh = LastStepRegressor(kind, 2, contender.hidden, np.random.default_rng(seed))
        curves[f"{kind} at init"] = gradient_curves(fresh, longest, seed)
    return {"tolerance": TOLERANCE, "runs": runs, "gradient_T": longest, "gradients": curves}
