"""The base of every stateful layer: named parameters, their gradients, train/eval mode.

A module owns ``params`` and ``grads`` (same keys, same shapes) and may hold child
modules; names of a child's parameters are prefixed with the child's name and a dot,
as in PyTorch's ``state_dict``. Parameter arrays are updated in place (optimizers and
``load_state_dict`` write into them), so references to them stay valid.

As in PyTorch, assigning registers: ``self.lstm = LSTM(...)`` makes ``lstm`` a child,
``self.scale = Parameter(np.ones(4))`` a parameter (the attribute holds the array).
A ``backward`` without a forward since the last one is a ``RuntimeError``: it would
add the same gradients twice.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator, Mapping

import numpy as np

from ..kernels._weights_epoch import weights_changed

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


def zero_fill(array: np.ndarray) -> None:
    """Set every element of ``array`` (any shape, float) to zero, in place: as bytes
    where it is contiguous (C's ``memset``; all-zero bits are 0.0: 2.04 against 2.71 ms
    for PTB small's 18.6 MB of gradients, Intel Xeon, medians of 40 interleaved), else
    element by element."""
    if array.flags.c_contiguous:
        array.reshape(-1).view(np.uint8).fill(0)
    else:
        array[...] = 0


class Parameter:
    """Marks an array to register as a parameter when assigned to a module's attribute:
    ``self.weight = Parameter(np.zeros((4, 3)))``. The attribute then holds the array
    itself (``float32`` or ``float64``), and ``params``/``grads`` hold it under its name."""

    def __init__(self, data: np.ndarray) -> None:
        data = np.asarray(data)
        check_dtype(data.dtype)
        self.data = data


def _marks_forward(function):
    """``function`` (a forward), noting on the module that a backward may follow."""

    @functools.wraps(function)
    def forward(self, *args, **kwargs):
        out = function(self, *args, **kwargs)
        self.__dict__["_forward_pending"] = True
        return out

    forward._kioku_forward = True
    return forward


def _checks_backward(function):
    """``function`` (a backward), refused unless a forward ran since the last backward.
    Modules that keep a stack of forwards (``_stack``, the cells) check it themselves."""

    @functools.wraps(function)
    def backward(self, *args, **kwargs):
        pending = self.__dict__.get("_forward_pending", False)
        if not pending and not isinstance(self.__dict__.get("_stack"), list):
            raise RuntimeError(
                f"{type(self).__name__}.backward: expected a forward since the last backward, "
                "found none: run the forward first (a second backward would add the same "
                "gradients again)"
            )
        out = function(self, *args, **kwargs)
        self.__dict__["_forward_pending"] = False
        return out

    backward._kioku_backward = True
    return backward


def config_from_signatures(module: Module, base: type) -> dict:
    """The constructor's arguments of ``module`` as a JSON-able dict (without ``rng``),
    read from the signatures of the constructors of its classes below ``base`` (whose
    own arguments its subclasses repeat), each value from the attribute of the same name."""
    names: list[str] = []
    for cls in reversed(type(module).__mro__):
        init = cls.__dict__.get("__init__")
        if init is None or not issubclass(cls, base) or cls is base:
            continue
        for param in list(inspect.signature(init).parameters.values())[1:]:
            named = param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
            if named and param.name != "rng" and param.name not in names:
                names.append(param.name)
    values = {name: getattr(module, name) for name in names}
    return {k: v.name if isinstance(v, np.dtype) else v for k, v in values.items()}


class Module:
    """Named parameters and gradients, children, and the train/eval flag. Assigning a
    :class:`Module` or a :class:`Parameter` to an attribute registers it."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("forward", "__call__"):
            function = cls.__dict__.get(name)
            if callable(function) and not hasattr(function, "_kioku_forward"):
                setattr(cls, name, _marks_forward(function))
        function = cls.__dict__.get("backward")
        if callable(function) and not hasattr(function, "_kioku_backward"):
            cls.backward = _checks_backward(function)

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True
        self._children: dict[str, Module] = {}

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, (Module, Parameter)) and "_children" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}.{name}: expected Module.__init__() to have run before "
                "a module or parameter is assigned, found it not run (call super().__init__())"
            )
        if isinstance(value, Parameter):
            value = self.add_param(name, value.data)
        elif isinstance(value, Module):
            self._children[name] = value
        elif name in self.__dict__.get("_children", {}):
            del self._children[name]  # replaced by something that is not a module
        object.__setattr__(self, name, value)

    def __call__(self, *args, **kwargs):
        """``self.forward(...)``, as in PyTorch (layers define ``__call__`` themselves)."""
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        """What the module computes; a subclass defines it (and ``backward``)."""
        raise NotImplementedError(f"{type(self).__name__}.forward: not defined")

    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (without ``rng``): see
        :func:`config_from_signatures` (a module keeps each as the attribute of that name)."""
        return config_from_signatures(self, Module)

    # -- structure ---------------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register ``value`` as parameter ``name`` with a zero gradient of its shape."""
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def add_module(self, name: str, module: Module) -> Module:
        """Register a child whose parameters appear as ``name.<param>`` (what
        ``self.name = module`` does too)."""
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
            zero_fill(grad)

    # -- state -------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters, keyed by their (dotted) names."""
        return {name: value.copy() for name, value, _ in self.named_parameters()}

    def load_state_dict(
        self,
        state: Mapping[str, np.ndarray],
        strict: bool = True,
        allow_nonfinite: bool = False,
    ) -> None:
        """Copy ``state`` into the parameters, in place.

        Every key and shape is checked before anything is written, so a refused state
        leaves the module unchanged. With ``strict``, missing and unexpected keys are
        errors (``KeyError`` naming them); a shape mismatch is a ``ValueError``, and so
        is an array holding NaN or infinity unless ``allow_nonfinite`` (every output
        of such a model would be non-finite).
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
            if not allow_nonfinite and not np.isfinite(array).all():
                count = int(array.size - np.isfinite(array).sum())
                raise ValueError(
                    f"state[{name!r}]: expected finite numbers, found {count} NaN or infinite "
                    "value(s) (pass allow_nonfinite=True to load them anyway)"
                )
            arrays[name] = array
        for name, array in arrays.items():
            own[name][...] = array
        weights_changed()

    def weights_changed(self) -> None:
        """Say that parameter arrays were written in place by code other than kioku's
        optimizers and :meth:`load_state_dict` (which say it themselves), so the next
        forward repacks them instead of reusing a packed copy kept from an earlier
        inference call (:func:`parameters_changed` for every module at once)."""
        weights_changed()

    parameters_changed = weights_changed


def parameters_changed() -> None:
    """Say that parameter arrays of any module were written in place (what kioku's
    optimizers and parameter broadcasts call after each update): the kernels' kept packed
    weights and planned calls notice on their next call. The layers above ``nn`` change
    parameters through this, never through :mod:`kioku.kernels`."""
    weights_changed()
