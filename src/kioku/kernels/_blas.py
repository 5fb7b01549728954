"""BLAS GEMM callable from Numba-compiled code without allocating.

NumPy's wheels ship OpenBLAS (``scipy-openblas``, 64-bit integers). We load that same
library and bind its CBLAS ``sgemm``/``dgemm`` by symbol name as Numba external
functions, so compiled loops call it per time step with ``beta = 1`` straight into a
slice of a preallocated buffer: no Python, no allocation, and the on-disk JIT cache
stays valid (the symbol is resolved by name at load time, not baked in as an address).

When no such library is found, :data:`HAVE_BLAS` is ``False`` and the kernels use a
compiled triple loop instead (correct, slower).
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

_SYMBOLS = (  # (sgemm, dgemm, 64-bit integers, set-threads-for-this-thread)
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", True),
    ("cblas_sgemm64_", "cblas_dgemm64_", True),
    ("cblas_sgemm", "cblas_dgemm", False),
)


def _candidate_libraries() -> list[str]:
    root = os.path.dirname(os.path.abspath(np.__file__))
    found: list[str] = []
    for folder in (os.path.join(root, "..", "numpy.libs"), os.path.join(root, ".dylibs")):
        for pattern in ("*openblas*.so*", "*openblas*.dylib"):
            found.extend(sorted(glob.glob(os.path.join(folder, pattern))))
    return found


def _find() -> tuple[str, tuple[str, str, bool], ctypes.CDLL] | None:
    for path in _candidate_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for names in _SYMBOLS:
            if all(hasattr(lib, name) for name in names[:2]):
                return path, names, lib
    return None


_found = _find()
HAVE_BLAS = _found is not None
LIBRARY = _found[0] if _found else None
SGEMM_SYMBOL, DGEMM_SYMBOL, INT64 = _found[1] if _found else ("", "", True)
_lib = _found[2] if _found else None


_set_local = getattr(_lib, "openblas_set_num_threads_local", None) if _lib is not None else None
if _set_local is not None:
    _set_local.argtypes, _set_local.restype = [ctypes.c_int], ctypes.c_int


_get_threads = None
for _name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
              "openblas_get_num_threads"):  # fmt: skip
    if _lib is not None and hasattr(_lib, _name):
        _get_threads = getattr(_lib, _name)
        _get_threads.restype = ctypes.c_int
        break

DEFAULT_THREADS: int | None = _get_threads() if _get_threads is not None else None
"""The thread count NumPy's BLAS had when kioku loaded: what the caller's thread gets back
after a kernel call (``None`` where the library does not tell)."""


def current_threads() -> int | None:
    """OpenBLAS's thread count now (``None`` where the library does not tell)."""
    return _get_threads() if _get_threads is not None else None


def set_threads_this_thread(count: int) -> int | bool:
    """Limit BLAS calls made from the calling thread to ``count`` threads (OpenBLAS
    >= 0.3.27 ``openblas_set_num_threads_local``); returns the previous count, or
    ``False`` when the library cannot do it."""
    if _set_local is None:
        return False
    return _set_local(int(count))


def corename() -> str:
    """The CPU kernel family OpenBLAS chose (e.g. ``SkylakeX``), or ``"none"``."""
    for name in (
        "scipy_openblas_get_corename64_",
        "openblas_get_corename64_",
        "openblas_get_corename",
    ):
        if _lib is not None and hasattr(_lib, name):
            fn = getattr(_lib, name)
            fn.restype = ctypes.c_char_p
            return fn().decode()
    return "none"
