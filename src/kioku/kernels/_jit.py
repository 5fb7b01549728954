"""Numba's ``njit`` for kioku's kernels, with calls between kernels typed on plain values.

Numba compiles a jitted function once per tuple of argument types, and where one jitted
function calls another with a constant (``pair_step(..., 0, n)``, ``step_gemm(...,
0.0, False)``) it types that argument as the constant's literal type: the callee then
compiles once for ``Literal[int](0)`` and again for the ``int64`` other callers pass,
and everything it calls compiles again beneath it. Across the kernels' call sites that
made the first ``kioku tune`` on an empty cache compile 194 specialisations (154 s of
the 186 s it took; Intel Xeon, 2 cores; most of what a new user waits for).

The ``njit`` here is Numba's, with one change to the functions it makes: a call from
compiled code is typed with every literal argument type replaced by its plain type
(``numba.core.types.unliteral``), so the callee compiles once per array layout and
value type. Where the callee cannot be typed that way (an index into a heterogeneous
tuple must be a literal), the call is typed as Numba would have, with the literals. The
kernels branch on such flags per call or per step, outside their inner loops, and LLVM
still folds a constant into a callee it inlines.

The change is a bound method on each dispatcher (Numba's own dispatchers elsewhere are
untouched), overriding :meth:`numba.core.dispatcher._DispatcherBase.get_call_template`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MethodType

from numba import njit as _numba_njit
from numba.core import errors, types


def _call_template(self, args: tuple, kws: dict):
    """``get_call_template`` of a kernel: Numba's, asked first with the literal argument
    types made plain."""
    own = type(self).get_call_template
    plain = tuple(types.unliteral(a) for a in args)
    plain_kws = {name: types.unliteral(t) for name, t in kws.items()}
    if plain != tuple(args) or plain_kws != dict(kws):
        try:
            return own(self, plain, plain_kws)
        except errors.TypingError:  # this callee needs a literal: type it as Numba would
            pass
    return own(self, args, kws)


def plain_calls(dispatcher):
    """``dispatcher`` (a Numba ``njit`` function), typed from other compiled functions on
    plain argument types (module docstring); returns it."""
    dispatcher.get_call_template = MethodType(_call_template, dispatcher)
    return dispatcher


def njit(*args, **options) -> Callable:
    """``numba.njit`` (bare or with options), its functions passed through
    :func:`plain_calls`."""
    if len(args) == 1 and callable(args[0]) and not options:
        return plain_calls(_numba_njit(args[0]))
    decorate = _numba_njit(*args, **options)
    return lambda fn: plain_calls(decorate(fn))
