"""Fast implementations of the :mod:`kioku.functional` contract, chosen at call time.

``KIOKU_KERNELS`` selects the backend: ``auto`` (default: the fastest one that is
installed), ``reference`` (the readable NumPy of :mod:`kioku.functional`), or a
backend's name. :func:`use` switches it for a block of code.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

from .. import functional
from . import _environ
from ._weights_epoch import weights_changed

__all__ = ["available", "backend", "backend_name", "use", "weights_changed"]

_BACKENDS = {"reference": "kioku.functional"}
_FAST_ORDER: list[str] = []  # fast backends, best first; each registers itself below
_forced: list[str] = []
_importable: dict[str, bool] = {}  # whether a backend's module imports; fixed per process
_auto: list[str] = []  # what ``auto`` means here, once known

_kernels_variable = _environ.reader("KIOKU_KERNELS")  # read on every call: see _environ


def _env_choice() -> str:
    """``KIOKU_KERNELS`` as ``os.environ`` holds it now, ``"auto"`` when unset."""
    value = _kernels_variable()
    return "auto" if value is None else value


def _register(name: str, module_path: str) -> None:
    _BACKENDS[name] = module_path
    _FAST_ORDER.append(name)


def available() -> list[str]:
    """Names of the backends that import on this machine, ``reference`` first."""
    names = ["reference"]
    for name in _FAST_ORDER:
        if name not in _importable:
            try:
                importlib.import_module(_BACKENDS[name])
                _importable[name] = True
            except ImportError:
                _importable[name] = False
        if _importable[name]:
            names.append(name)
    return names


def backend_name() -> str:
    """The backend a call made now would use."""
    choice = _forced[-1] if _forced else _env_choice()
    if choice == "auto":
        if not _auto:  # which backends import is fixed per process
            fast = available()
            _auto.append(fast[1] if len(fast) > 1 else "reference")
        return _auto[0]
    if choice not in _BACKENDS:
        raise ValueError(
            f"KIOKU_KERNELS: expected one of auto, {', '.join(_BACKENDS)}, found {choice!r}"
        )
    return choice


def backend() -> ModuleType:
    """The module whose ``lstm_forward``/``lstm_backward``/``rnn_forward``/``rnn_backward``
    a call made now should use (each with :mod:`kioku.functional`'s signature)."""
    name = backend_name()
    if name == "reference":
        return functional
    # sys.modules first: import_module costs microseconds on every forward at batch 1
    return sys.modules.get(_BACKENDS[name]) or importlib.import_module(_BACKENDS[name])


_register("numba", "kioku.kernels.numba_lstm")


@contextlib.contextmanager
def use(name: str) -> Iterator[None]:
    """Use backend ``name`` (``"reference"``, ``"auto"``, ...) inside the ``with`` block."""
    if name != "auto" and name not in _BACKENDS:
        raise ValueError(f"name: expected one of auto, {', '.join(_BACKENDS)}, found {name!r}")
    _forced.append(name)
    try:
        yield
    finally:
        _forced.pop()
