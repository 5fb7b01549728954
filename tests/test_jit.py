"""kernels/_jit.py: a call between kernels is typed on plain argument types, so a kernel
called with a constant from one kernel and a variable from another compiles once."""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

pytest.importorskip("numba")

from numba import njit as numba_njit  # noqa: E402
from numba.core import types  # noqa: E402
from numba.core.dispatcher import Dispatcher  # noqa: E402

from kioku.kernels._jit import njit  # noqa: E402


def _pair(decorate):
    @decorate
    def inner(a, flag):
        return a + flag

    @decorate
    def with_constant(a):
        return inner(a, 1)

    @decorate
    def with_variable(a, flag):
        return inner(a, flag)

    assert with_constant(1.5) == 2.5
    assert with_variable(1.5, 2) == 3.5
    return inner


def test_a_constant_and_a_variable_compile_one_specialisation() -> None:
    assert [tuple(map(str, s)) for s in _pair(njit).signatures] == [("float64", "int64")]
    # Numba's own njit compiles the callee twice: the literal and the plain one
    assert len(_pair(numba_njit).signatures) == 2


def test_a_callee_that_needs_a_literal_is_typed_with_it() -> None:
    @njit
    def pick(pair, i):  # indexing a heterogeneous tuple needs a literal index
        return pair[i]

    @njit
    def use():
        return pick((1, 2.5), 1)

    assert use() == 2.5
    assert any(isinstance(t, types.Literal) for t in pick.signatures[0])


def test_bare_and_configured_forms() -> None:
    @njit
    def bare(a):
        return a * 2

    @njit(cache=False, nogil=True)
    def configured(a):
        return a * 3

    assert bare(2) == 4 and configured(2) == 6
    assert isinstance(bare, Dispatcher) and isinstance(configured, Dispatcher)


def _kernel_dispatchers() -> list[Dispatcher]:
    import kioku.kernels as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"kioku.kernels.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__:
                found.append(value)
    return found


def test_the_kernels_compile_no_literal_specialisation() -> None:
    """After training and inference steps on several paths, no kernel holds a signature
    with a literal argument type: every constant a kernel passes another was typed plain."""
    from kioku import nn

    rng = np.random.default_rng(0)
    for batch, bidirectional, dtype in [(1, False, "float32"), (6, True, "float32"),
                                        (32, False, "float32"), (4, False, "float64")]:  # fmt: skip
        lstm = nn.LSTM(16, 32, num_layers=2, bidirectional=bidirectional, dtype=dtype)
        x = rng.standard_normal((7, batch, 16)).astype(dtype)
        y, _ = lstm(x)
        lstm.backward(np.ones_like(y))
        lstm.eval()
        with nn.no_grad():
            lstm(x)
    gru = nn.GRU(16, 32)
    y, _ = gru(rng.standard_normal((5, 3, 16)).astype(np.float32))
    gru.backward(np.ones_like(y))
    literal = {
        f"{d.py_func.__module__}.{d.py_func.__name__}{tuple(map(str, s))}"
        for d in _kernel_dispatchers()
        for s in d.signatures
        if any(isinstance(t, types.Literal) for t in s)
    }
    assert not literal
    assert any(d.signatures for d in _kernel_dispatchers())  # the steps ran compiled code
