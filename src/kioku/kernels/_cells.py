"""Integers the compiled kernels read at run time: tuned values that must not be baked
into Numba's on-disk cache.

A cell is a C ``int64`` that this process owns, bound by name as an external symbol (as
the BLAS functions are, :mod:`._primitives`), so cached machine code reads whatever the
cell holds now: a tuning put in force mid-process takes effect at the next call, and the
cache stays valid whatever value a machine's tuning chose.
"""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm_binding
from llvmlite import ir
from numba import types
from numba.extending import intrinsic


def int_cell(symbol: str, value: int = 0):
    """A new cell named ``symbol`` holding ``value``: returns ``(cell, read)``, ``cell``
    the ``ctypes.c_int64`` to set from Python (``cell.value = n``), ``read()`` the
    intrinsic compiled code calls to load its current value (an ``int64``)."""
    cell = ctypes.c_int64(value)
    llvm_binding.add_symbol(symbol, ctypes.addressof(cell))

    @intrinsic
    def read(typingctx):
        def codegen(context, builder, signature, args):
            try:
                variable = builder.module.get_global(symbol)
            except KeyError:
                variable = ir.GlobalVariable(builder.module, ir.IntType(64), name=symbol)
                variable.linkage = "external"
            return builder.load(variable)

        return types.int64(), codegen

    return cell, read
