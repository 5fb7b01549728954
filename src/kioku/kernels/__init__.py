"""Fast implementations of the :mod:`kioku.functional` contract, chosen at call time.

The layers ask one function, :func:`backend_for`, for their cell's backend: an object
whose functions have the reference's signatures (``lstm_forward``/``lstm_backward``,
``gru_forward``/``gru_backward``, ``rnn_forward``/``rnn_backward``,
``slstm_forward``/``slstm_backward``), compiled where a fast backend has them and the
reference functions of :mod:`kioku.functional` otherwise. Plans, packed weights and
thread splits live behind it (docs/architecture.md).

``KIOKU_KERNELS`` selects the backend: ``auto`` (default: the fastest one that is
installed), ``reference`` (the readable NumPy of :mod:`kioku.functional`), or a
backend's name. :func:`use` switches it for a block of code.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

from .. import functional
from . import _compile_notice, _contract, _environ, _fingerprints
from ._weights_epoch import weights_changed

# Numba's disk cache of each kernel file covers the files compiled into it (before any
# kernel file is compiled or loaded: this package's __init__ runs first)
_fingerprints.install()
# a line on stderr while a first call compiles the kernels cold (tens of seconds)
_compile_notice.install()

__all__ = [
    "CELLS", "CellBackend", "available", "backend", "backend_for", "backend_name", "use",
    "weights_changed",
]  # fmt: skip

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


CELLS = ("lstm", "gru", "rnn", "slstm")

# backend -> cell -> (module, options its forward takes from the layers); a cell a
# backend does not list runs the reference
_CELL_MODULES: dict[str, dict[str, tuple[str, dict]]] = {}


class CellBackend:
    """One cell's functions on one backend: ``name`` (the backend's), ``cell``, and
    ``<cell>_forward`` / ``<cell>_backward`` with :mod:`kioku.functional`'s signatures.

    The LSTM's backward also takes ``grads_into = (gw_ih (4H, I), gw_hh (4H, P))``, into
    which it adds the weight gradients (returning those arrays as ``dweight_ih`` and
    ``dweight_hh``), and ``dgates_buffer``, a ``(T, B, 4H)`` scratch it may use: on the
    reference as on the compiled backend, so a layer calls every backend alike."""

    __slots__ = ("name", "cell", "__dict__")

    def __init__(self, name: str, cell: str, functions: dict[str, Callable]) -> None:
        self.name, self.cell = name, cell
        self.__dict__.update(functions)

    def __repr__(self) -> str:
        return f"CellBackend({self.name!r}, {self.cell!r})"


def _reference_lstm_backward(
    dy, cache, dh_n=None, dc_n=None, need_dx=True, dh_trace=None, dc_trace=None,
    grads_into=None, dgates_buffer=None,
):  # fmt: skip
    """:func:`kioku.functional.lstm_backward` with the compiled backend's
    ``grads_into`` (added into, returned) and ``dgates_buffer`` (not needed here)."""
    grads = functional.lstm_backward(dy, cache, dh_n, dc_n, need_dx, dh_trace, dc_trace)
    return _contract.added_into(grads, grads_into)


def _reference(cell: str) -> CellBackend:
    functions = {f"{cell}_{part}": getattr(functional, f"{cell}_{part}")
                 for part in ("forward", "backward")}  # fmt: skip
    if cell == "lstm":
        functions["lstm_backward"] = _reference_lstm_backward
    return CellBackend("reference", cell, functions)


_REFERENCE = {cell: _reference(cell) for cell in CELLS}
_resolved: dict[tuple[str, str], CellBackend] = {}  # (backend, cell) -> its functions


def backend_for(cell: str, name: str | None = None) -> CellBackend:
    """The functions ``cell`` (one of :data:`CELLS`) runs on backend ``name`` (default:
    the one a call made now would use, :func:`backend_name`): the compiled ones where the
    backend has them, the reference ones of :mod:`kioku.functional` otherwise."""
    chosen = name is None
    if chosen:  # backend_name() inlined where it is cheap: layers call this per step
        name = _forced[-1] if _forced else _env_choice()
        if name == "auto":
            name = _auto[0] if _auto else backend_name()
    found = _resolved.get((name, cell))
    if found is not None:
        return found
    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {', '.join(CELLS)}, found {cell!r}")
    if name not in _BACKENDS:
        if chosen:  # KIOKU_KERNELS holds it: backend_name() says so, naming the variable
            backend_name()
        raise ValueError(f"name: expected one of {', '.join(_BACKENDS)}, found {name!r}")
    entry = _CELL_MODULES.get(name, {}).get(cell)
    if entry is None:
        found = _REFERENCE[cell]
    else:
        path, options = entry
        module = sys.modules.get(path) or importlib.import_module(path)
        functions = {f"{cell}_{part}": getattr(module, f"{cell}_{part}")
                     for part in ("forward", "backward")}  # fmt: skip
        if options:  # what the layers ask of the forward beyond the contract
            forward = functions[f"{cell}_forward"]
            functions[f"{cell}_forward"] = functools.partial(forward, **options)
        found = CellBackend(name, cell, functions)
    _resolved[(name, cell)] = found
    return found


def backend() -> ModuleType:
    """The module whose ``lstm_forward``/``lstm_backward`` a call made now would use
    (:mod:`kioku.functional` or :mod:`kioku.kernels.numba_lstm`): for code that calls
    the kernels directly; the layers use :func:`backend_for`."""
    name = backend_name()
    if name == "reference":
        return functional
    path = _CELL_MODULES[name]["lstm"][0]
    # sys.modules first: import_module costs microseconds on every forward at batch 1
    return sys.modules.get(path) or importlib.import_module(path)


_register("numba", "kioku.kernels.numba_lstm")
# inference through a layer keeps the packed weights for its next call (_pack_cache)
_CELL_MODULES["numba"] = {
    "lstm": ("kioku.kernels.numba_lstm", {"reuse_packs": True}),
    "gru": ("kioku.kernels.numba_gru", {}),
}


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
