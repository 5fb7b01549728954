"""The base of every stateful layer: named parameters, their gradients, train/eval mode.

A module owns ``params`` and ``grads`` (same keys, same shapes) and may hold child
modules; names of a child's parameters are prefixed with the child's name and a dot,
as in PyTorch's ``state_dict``. Parameter arrays are updated in place (optimizers and
``load_state_dict`` write into them), so references to them stay valid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def check_dtype(dtype: np.dtype | type) -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise ``TypeError``."""
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, found {dtype}")
    return dtype


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a generator, a seed or ``None`` (fresh entropy)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class Module:
    """Named parameters and gradients, children, and the train/eval flag."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True
        self._children: dict[str, Module] = {}

    # -- structure ---------------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register ``value`` as parameter ``name`` with a zero gradient of its shape."""
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def add_module(self, name: str, module: Module) -> Module:
        """Register a child whose parameters appear as ``name.<param>``."""
        self._children[name] = module
        setattr(self, name, module)
        return module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(name, parameter, gradient)`` for this module and its children."""
        for name, value in self.params.items():
            yield prefix + name, value, self.grads[name]
        for child_name, child in self._children.items():
            yield from child.named_parameters(f"{prefix}{child_name}.")

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(parameter, gradient)`` pairs, the form optimizers take."""
        return [(p, g) for _, p, g in self.named_parameters()]

    def num_parameters(self) -> int:
        """Number of scalar parameters (tied parameters counted once)."""
        seen: set[int] = set()
        total = 0
        for _, p, _ in self.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.size
        return total

    # -- modes and gradients -----------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active) here and in every child; returns self."""
        self.training = mode
        for child in self._children.values():
            child.train(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (dropout off); returns self."""
        return self.train(False)

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[Module]:
        """Evaluation mode inside the ``with`` block, the previous mode restored after it
        (also when the block raises)."""
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place."""
        for _, _, grad in self.named_parameters():
            grad[...] = 0

    # -- state -------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters, keyed by their (dotted) names."""
        return {name: value.copy() for name, value, _ in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, np.ndarray], strict: bool = True) -> None:
        """Copy ``state`` into the parameters, in place.

        Every key and shape is checked before anything is written, so a refused state
        leaves the module unchanged. With ``strict``, missing and unexpected keys are
        errors (``KeyError`` naming them); a shape mismatch is a ``ValueError``.
        """
        own = {name: value for name, value, _ in self.named_parameters()}
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"state: {'; '.join(parts)}")
        arrays = {}
        for name, value in state.items():
            if name not in own:
                continue
            array = np.asarray(value)
            if array.shape != own[name].shape:
                raise ValueError(
                    f"state[{name!r}]: expected shape {own[name].shape}, found {array.shape}"
                )
            if not (
                np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
            ):
                raise TypeError(
                    f"state[{name!r}]: expected a numeric array, found dtype {array.dtype}"
                )
            arrays[name] = array
        for name, array in arrays.items():
            own[name][...] = array
