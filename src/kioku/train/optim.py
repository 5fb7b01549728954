"""Optimizers with PyTorch's update rules: SGD (momentum, Nesterov), Adam and AdamW.

An optimizer takes ``(parameter, gradient)`` pairs (``Module.parameters()``, or the
module itself) and updates the parameters in place. Pairs that share a parameter array
(tied weights) are kept once. ``lr`` is a plain attribute that schedules change.

``state_dict()`` is a plain dict (JSON scalars and NumPy arrays, no pickle)::

    {"type": "Adam", "hyperparams": {"lr": ..., ...}, "step": 12,
     "arrays": {"exp_avg.0": array, "exp_avg_sq.0": array, ...}}

where the number after the dot is the parameter's position in the deduplicated list.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..nn import blockwise, parameters_changed
from ..nn.module import zero_fill


def unique_pairs(params: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(parameter, gradient)`` pairs from a module or an iterable of pairs, each
    parameter array once (the first pair seen wins). Raises naming ``params``."""
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    pairs, seen = [], set()
    for index, pair in enumerate(params):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(
                f"params[{index}]: expected a (parameter, gradient) pair, "
                f"found {type(pair).__name__}"
            )
        param, grad = pair
        if not isinstance(param, np.ndarray) or not isinstance(grad, np.ndarray):
            raise TypeError(f"params[{index}]: expected two numpy arrays")
        if param.shape != grad.shape:
            raise ValueError(
                f"params[{index}]: gradient shape {grad.shape} differs from parameter shape "
                f"{param.shape}"
            )
        if not np.issubdtype(param.dtype, np.floating):
            raise TypeError(f"params[{index}]: expected a float parameter, found {param.dtype}")
        if id(param) not in seen:
            seen.add(id(param))
            pairs.append((param, grad))
    if not pairs:
        raise ValueError("params: expected at least one (parameter, gradient) pair, found none")
    return pairs


def attributes(owner: object, names: Iterable[str]) -> dict[str, Any]:
    """``{name: owner.name}`` for each of ``names``, in their order: the JSON-able state
    of an optimizer or a schedule, kept as attributes of the same names."""
    return {name: getattr(owner, name) for name in names}


def _check_nonnegative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name}: expected a number, found {type(value).__name__}")
    if not value >= 0:
        raise ValueError(f"{name}: expected a number >= 0, found {value}")
    return float(value)


class Optimizer:
    """Base: the parameter list, ``lr``, the step count, per-parameter buffers."""

    buffer_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable | Any, lr: float) -> None:
        pairs = unique_pairs(params)
        self.params = [p for p, _ in pairs]
        self.grads = [g for _, g in pairs]
        self.lr = _check_nonnegative("lr", lr)
        self.step_count = 0
        self._checked: _CheckedPass | None = None  # set inside step_checked
        # buffers[name][i] is the array of parameter i, or None before it exists
        self.buffers: dict[str, list[np.ndarray | None]] = {
            name: [None] * len(self.params) for name in self.buffer_names
        }

    def hyperparams(self) -> dict[str, Any]:
        """JSON-able settings, ``lr`` included."""
        return {"lr": self.lr}

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place."""
        for grad in self.grads:
            zero_fill(grad)

    def step(self) -> None:  # pragma: no cover - abstract
        """Update every parameter in place from its gradient."""
        raise NotImplementedError

    def update_blocks(
        self, update: Callable[..., object], param: np.ndarray, grad: np.ndarray,
        *buffers: np.ndarray,
    ) -> None:  # fmt: skip
        """``update(p, g, *bufs)`` over cache-sized blocks of ``param``, ``grad`` and
        ``buffers`` (all of ``param``'s shape) on every thread (:func:`kioku.nn.blockwise`):
        what a subclass's :meth:`step` runs its update through. Inside
        :meth:`step_checked` each block's gradient is first scaled and its parameter
        checked after the update, in the same pass while the block is in cache."""
        checked = self._checked
        if checked is None:
            blockwise(update, param, grad, *buffers)
            return
        scale = checked.scale

        def block(p: np.ndarray, g: np.ndarray, *bufs: np.ndarray) -> None:
            if scale != 1.0:
                g *= g.dtype.type(scale)
            update(p, g, *bufs)
            if not all_finite(p):
                checked.finite = False

        blockwise(block, param, grad, *buffers)

    def step_checked(self, grad_scale: float = 1.0) -> bool:
        """One :meth:`step` with every gradient first multiplied in place by
        ``grad_scale`` (as :func:`kioku.train.clip.clip_grad_norm` scales them: in the
        gradient's dtype) and every parameter checked for NaN and infinity after its
        update. Returns ``True`` when every parameter is finite. The built-in optimizers
        do the scaling, the update and the check in one pass over each block (one read
        of each array fewer than the three passes apart); a subclass whose :meth:`step`
        is its own gets the same results from separate passes."""
        if not math.isfinite(grad_scale) or grad_scale < 0:
            raise ValueError(f"grad_scale: expected a finite number >= 0, found {grad_scale}")
        if type(self).step not in _ONE_PASS_STEPS:
            if grad_scale != 1.0:
                for grad in self.grads:
                    grad *= grad.dtype.type(grad_scale)
            self.step()
            return all(all_finite(p) for p in self.params)
        self._checked = _CheckedPass(float(grad_scale))
        try:
            self.step()
            return self._checked.finite
        finally:
            self._checked = None

    def state_dict(self) -> dict[str, Any]:
        """Type, hyperparameters, step count and copies of the buffers."""
        arrays = {
            f"{name}.{i}": buf.copy()
            for name, bufs in self.buffers.items()
            for i, buf in enumerate(bufs)
            if buf is not None
        }
        return {
            "type": type(self).__name__,
            "hyperparams": self.hyperparams(),
            "step": self.step_count,
            "arrays": arrays,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`. Everything is checked before anything is set;
        errors name the offending key."""
        if state.get("type") != type(self).__name__:
            raise ValueError(
                f"state['type']: expected {type(self).__name__!r}, found {state.get('type')!r}"
            )
        hyper = dict(state.get("hyperparams", {}))
        own = self.hyperparams()
        if set(hyper) != set(own):
            raise KeyError(
                f"state['hyperparams']: expected keys {sorted(own)}, found {sorted(hyper)}"
            )
        for name, value in hyper.items():
            _check_hyperparam(name, value, own[name])
        step = state.get("step")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"state['step']: expected an integer >= 0, found {step!r}")
        new_buffers = {name: [None] * len(self.params) for name in self.buffer_names}
        for key, value in dict(state.get("arrays", {})).items():
            name, _, index = key.rpartition(".")
            if name not in new_buffers or not index.isdigit() or int(index) >= len(self.params):
                raise KeyError(
                    f"state['arrays'][{key!r}]: unexpected key for {type(self).__name__} "
                    f"with {len(self.params)} parameters"
                )
            array = np.asarray(value)
            expected = self.params[int(index)].shape
            if array.shape != expected:
                raise ValueError(
                    f"state['arrays'][{key!r}]: expected shape {expected}, found {array.shape}"
                )
            new_buffers[name][int(index)] = array.astype(self.params[int(index)].dtype, copy=True)
        for name, buffers in new_buffers.items():
            if any(b is None for b in buffers) and any(b is not None for b in buffers):
                index = next(i for i, b in enumerate(buffers) if b is None)
                raise KeyError(f"state['arrays'][{f'{name}.{index}'!r}]: missing")
        for name, value in hyper.items():
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        self.step_count = int(step)
        self.buffers = new_buffers


class _CheckedPass:
    """The state of one :meth:`Optimizer.step_checked`: the gradients' scale and
    whether every block checked so far was finite."""

    def __init__(self, scale: float) -> None:
        self.scale, self.finite = scale, True


def all_finite(array: np.ndarray) -> bool:
    """Whether ``array`` (any shape, float) holds no NaN and no infinity: one read (its
    dot product with itself, non-finite when an element is), read again element by
    element only when that sum overflowed."""
    if array.size == 0:
        return True
    flat = array.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is an answer here
        total = float(np.dot(flat, flat))
    return math.isfinite(total) or bool(np.isfinite(flat).all())


def _check_hyperparam(name: str, value: Any, own: Any) -> None:
    """Refuse a saved hyperparameter unlike the optimizer's own: a number for a number,
    a flag for a flag, a list of as many numbers for a tuple."""

    def is_number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if isinstance(own, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif is_number(own):
        ok, expected = is_number(value), "a number"
    elif isinstance(own, (tuple, list)):
        ok = isinstance(value, (list, tuple)) and len(value) == len(own)
        ok = ok and all(is_number(x) for x in value)
        expected = f"a list of {len(own)} numbers"
    else:
        return
    if not ok:
        raise ValueError(f"state['hyperparams'][{name!r}]: expected {expected}, found {value!r}")


class SGD(Optimizer):
    """``torch.optim.SGD``: with ``g = grad + weight_decay * p``, momentum keeps
    ``buf = momentum * buf + (1 - dampening) * g`` (``buf = g`` at its first step) and
    steps along ``buf``, or ``g + momentum * buf`` with Nesterov; then ``p -= lr * step``."""

    buffer_names = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable | Any,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.momentum = _check_nonnegative("momentum", momentum)
        self.weight_decay = _check_nonnegative("weight_decay", weight_decay)
        self.dampening = _check_nonnegative("dampening", dampening)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov: needs momentum > 0 and dampening 0, found momentum {self.momentum} "
                f"and dampening {self.dampening}"
            )

    def hyperparams(self) -> dict[str, Any]:
        return attributes(self, ("lr", "momentum", "nesterov", "weight_decay", "dampening"))

    def step(self) -> None:
        """One update of every parameter (in cache-sized blocks on every thread:
        :func:`kioku.nn.blockwise`)."""
        buffers = self.buffers["momentum_buffer"]
        lr, momentum, decay, dampening = self.lr, self.momentum, self.weight_decay, self.dampening
        nesterov = self.nesterov
        for i, (param, grad) in enumerate(zip(self.params, self.grads)):
            first = momentum and buffers[i] is None
            if first:
                buffers[i] = np.empty_like(param)  # g at this first step

            def update(p: np.ndarray, g: np.ndarray, buf: np.ndarray | None, first=first) -> None:
                g = g + decay * p if decay else g
                if buf is not None:
                    if first:
                        buf[...] = g
                    else:
                        buf *= momentum
                        buf += (1 - dampening) * g
                    g = g + momentum * buf if nesterov else buf
                p -= lr * g

            if momentum:
                self.update_blocks(update, param, grad, buffers[i])
            else:
                self.update_blocks(lambda p, g: update(p, g, None), param, grad)
        parameters_changed()
        self.step_count += 1


class Adam(Optimizer):
    """``torch.optim.Adam`` (L2 weight decay added to the gradient):
    ``m += (1 - b1) (g - m)``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``."""

    buffer_names = ("exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(
        self,
        params: Iterable | Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if len(betas) != 2 or not all(0.0 <= float(b) < 1.0 for b in betas):
            raise ValueError(f"betas: expected two numbers in [0, 1), found {betas}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = _check_nonnegative("eps", eps)
        self.weight_decay = _check_nonnegative("weight_decay", weight_decay)

    def hyperparams(self) -> dict[str, Any]:
        return {"betas": list(self.betas), **attributes(self, ("lr", "eps", "weight_decay"))}

    def step(self) -> None:
        """One update of every parameter."""
        beta1, beta2 = self.betas
        self.step_count += 1
        t = self.step_count
        step_size = self.lr / (1 - beta1**t)
        bias_correction2_sqrt = (1 - beta2**t) ** 0.5
        exp_avgs, exp_avg_sqs = self.buffers["exp_avg"], self.buffers["exp_avg_sq"]
        lr, eps, decay, decoupled = self.lr, self.eps, self.weight_decay, self.decoupled
        weight = 1 - beta1  # torch.lerp's two branches, for the same rounding

        def update(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray) -> None:
            if decay:
                if decoupled:
                    p *= 1 - lr * decay
                else:
                    g = g + decay * p
            if weight < 0.5:
                m += weight * (g - m)
            else:
                m[...] = g - (g - m) * (1 - weight)
            v *= beta2
            v += (1 - beta2) * g * g
            denom = np.sqrt(v) / bias_correction2_sqrt
            denom += eps
            p -= step_size * (m / denom)

        for i, (param, grad) in enumerate(zip(self.params, self.grads)):
            if exp_avgs[i] is None:
                exp_avgs[i] = np.zeros_like(param)
                exp_avg_sqs[i] = np.zeros_like(param)
            self.update_blocks(update, param, grad, exp_avgs[i], exp_avg_sqs[i])
        parameters_changed()


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay,
    ``p *= 1 - lr * weight_decay`` before the Adam step (default ``weight_decay`` 0.01)."""

    decoupled = True

    def __init__(
        self,
        params: Iterable | Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
# the steps that run every update through Optimizer.update_blocks (AdamW's is Adam's)
_ONE_PASS_STEPS = frozenset({SGD.step, Adam.step})
