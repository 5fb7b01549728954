"""The activation functions an ONNX recurrent node may name, with their derivatives.

ONNX lets an LSTM swap its three functions: ``f`` (the gates i, f, o), ``g`` (the
candidate cell) and ``h`` (the cell before the output gate), each one of the names in
:data:`ACTIVATION_NAMES`, some taking ``alpha`` and ``beta``. The defaults and the way
``activation_alpha``/``activation_beta`` are consumed follow ONNX Runtime: a function
that takes no alpha consumes none; a missing value defaults to 0 except LeakyRelu
(alpha 0.01), HardSigmoid (0.2, 0.5) and Elu (alpha 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .activations import sigmoid

# canonical name -> (takes alpha, takes beta, default alpha, default beta)
_SPEC = {
    "Sigmoid": (False, False, 0.0, 0.0),
    "Tanh": (False, False, 0.0, 0.0),
    "Relu": (False, False, 0.0, 0.0),
    "Affine": (True, True, 0.0, 0.0),
    "LeakyRelu": (True, False, 0.01, 0.0),
    "ThresholdedRelu": (True, False, 0.0, 0.0),
    "ScaledTanh": (True, True, 0.0, 0.0),
    "HardSigmoid": (True, True, 0.2, 0.5),
    "Elu": (True, False, 1.0, 0.0),
    "Softsign": (False, False, 0.0, 0.0),
    "Softplus": (False, False, 0.0, 0.0),
}
ACTIVATION_NAMES = tuple(_SPEC)
_BY_LOWER = {name.lower(): name for name in _SPEC}


class Activation(NamedTuple):
    """One element-wise function ``y = act(x)`` with its parameters."""

    name: str
    alpha: float = 0.0
    beta: float = 0.0

    def __call__(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write ``act(x)`` into ``out`` (same shape as ``x``, may be ``x``)."""
        a, b, name = self.alpha, self.beta, self.name
        if name == "Sigmoid":
            return sigmoid(x, out)
        if name == "Tanh":
            return np.tanh(x, out=out)
        if name == "Relu":
            return np.maximum(x, 0, out=out)
        if name == "Affine":
            np.multiply(x, a, out=out)
            out += b
            return out
        if name == "LeakyRelu":
            out[...] = np.where(x >= 0, x, a * x)
            return out
        if name == "ThresholdedRelu":
            out[...] = np.where(x > a, x, 0)
            return out
        if name == "ScaledTanh":
            np.multiply(x, b, out=out)
            np.tanh(out, out=out)
            out *= a
            return out
        if name == "HardSigmoid":
            np.multiply(x, a, out=out)
            out += b
            return np.clip(out, 0, 1, out=out)
        if name == "Elu":
            out[...] = np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0)))
            return out
        if name == "Softsign":
            return np.divide(x, 1 + np.abs(x), out=out)
        return np.logaddexp(0, x, out=out)  # Softplus

    def grad(self, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write ``d act / d x`` at ``x`` into ``out``; ``y = act(x)`` (all the same shape)."""
        a, b, name = self.alpha, self.beta, self.name
        if name == "Sigmoid":  # s (1 - s)
            np.subtract(1, y, out=out)
            out *= y
            return out
        if name == "Tanh":  # 1 - tanh^2
            np.multiply(y, y, out=out)
            return np.subtract(1, out, out=out)
        if name == "Relu":
            return np.greater(x, 0, out=out, casting="unsafe")
        if name == "Affine":
            out[...] = a
            return out
        if name == "LeakyRelu":
            out[...] = np.where(x >= 0, 1, a)
            return out
        if name == "ThresholdedRelu":
            return np.greater(x, a, out=out, casting="unsafe")
        if name == "ScaledTanh":  # a b (1 - tanh(b x)^2), tanh(b x) = y / a
            if a == 0:
                out[...] = 0
                return out
            np.divide(y, a, out=out)
            np.multiply(out, out, out=out)
            np.subtract(1, out, out=out)
            out *= a * b
            return out
        if name == "HardSigmoid":
            inside = (y > 0) & (y < 1)
            return np.multiply(inside, a, out=out)
        if name == "Elu":
            out[...] = np.where(x >= 0, 1, y + a)
            return out
        if name == "Softsign":  # 1 / (1 + |x|)^2
            np.abs(x, out=out)
            out += 1
            np.multiply(out, out, out=out)
            return np.divide(1, out, out=out)
        return sigmoid(x, out)  # Softplus' = sigmoid


def activation(name: str, alpha: float | None = None, beta: float | None = None) -> Activation:
    """The activation called ``name`` (any case) with ONNX Runtime's default parameters
    filled in; ``ValueError`` naming ``name`` for an unknown function."""
    canonical = _BY_LOWER.get(str(name).lower())
    if canonical is None:
        raise ValueError(
            f"activation: expected one of {', '.join(ACTIVATION_NAMES)}, found {name!r}"
        )
    takes_alpha, takes_beta, default_alpha, default_beta = _SPEC[canonical]
    return Activation(
        canonical,
        float(default_alpha if alpha is None or not takes_alpha else alpha),
        float(default_beta if beta is None or not takes_beta else beta),
    )


def parse_onnx_activations(
    names: Sequence[str], alphas: Sequence[float] = (), betas: Sequence[float] = ()
) -> list[Activation]:
    """ONNX's ``activations``, ``activation_alpha``, ``activation_beta`` attributes as a list
    of :class:`Activation`: each function that takes an alpha (beta) consumes the next one."""
    alpha_iter, beta_iter = iter(alphas), iter(betas)
    result = []
    for name in names:
        spec = _SPEC.get(_BY_LOWER.get(str(name).lower(), ""))
        if spec is None:
            activation(name)  # raises with the list of known names
        alpha = next(alpha_iter, None) if spec[0] else None
        beta = next(beta_iter, None) if spec[1] else None
        result.append(activation(name, alpha, beta))
    return result


def onnx_activation_attributes(acts: Sequence[Activation]) -> tuple[list, list, list]:
    """Inverse of :func:`parse_onnx_activations`: ``(names, alphas, betas)`` lists."""
    names, alphas, betas = [], [], []
    for act in acts:
        takes_alpha, takes_beta, _, _ = _SPEC[act.name]
        names.append(act.name)
        if takes_alpha:
            alphas.append(act.alpha)
        if takes_beta:
            betas.append(act.beta)
    return names, alphas, betas


DEFAULT_ACTIVATIONS = (Activation("Sigmoid"), Activation("Tanh"), Activation("Tanh"))
