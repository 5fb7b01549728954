"""BLAS GEMM callable from Numba-compiled code without allocating.

NumPy's wheels ship OpenBLAS (``scipy-openblas``, 64-bit integers). We load that same
library and bind its CBLAS ``sgemm``/``dgemm`` by symbol name as Numba external
functions, so compiled loops call it per time step with ``beta = 1`` straight into a
slice of a preallocated buffer: no Python, no allocation, and the on-disk JIT cache
stays valid (the symbol is resolved by name at load time, not baked in as an address).

When no such library is found, :data:`HAVE_BLAS` is ``False`` and the kernels use a
compiled triple loop instead (correct, slower).

Intel's oneMKL, where the ``mkl`` extra installed it (``libmkl_rt`` in the environment's
``lib``), is a second GEMM for kioku's own calls: :data:`MKL` binds its ILP64
``cblas_sgemm_64``/``cblas_dgemm_64`` with the same arguments, on MKL's sequential
threading layer (each kioku thread runs its share on itself: no OpenMP threads to spin).
Whether it is used, and from which size on, is measured on the machine
(:mod:`._tuning`, ``MKL_MIN_MNK``): on a 2-core Intel Xeon (Emerald Rapids class) it
ran PTB's output-layer GEMMs 1.1-1.25x as fast as OpenBLAS's SkylakeX kernels on one
thread. NumPy's own products stay on OpenBLAS.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from typing import NamedTuple

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


# --- oneMKL, the `mkl` extra -----------------------------------------------------------------

_MKL_SEQUENTIAL = 1  # MKL_THREADING_SEQUENTIAL (mkl_service.h)


class MklBinding(NamedTuple):
    """oneMKL's ILP64 GEMMs: the library's path, the addresses of ``cblas_sgemm_64`` and
    ``cblas_dgemm_64`` (the same arguments as OpenBLAS's 64-bit CBLAS), its version, and
    the address of ``cblas_sgemm_compute_64`` (a product with one operand packed before by
    ``cblas_sgemm_pack_64``; 0 where the library has none)."""

    library: str
    sgemm: int
    dgemm: int
    version: str
    compute: int = 0


def mkl_candidates() -> list[str]:
    """Where the ``mkl`` wheel puts ``libmkl_rt``: the ``lib`` folder of this environment
    (``sys.prefix``), of the base interpreter, and of the user's site (``pip --user``)."""
    import site

    folders = [sys.prefix, sys.base_prefix, getattr(site, "USER_BASE", None) or ""]
    found: list[str] = []
    for folder in dict.fromkeys(f for f in folders if f):
        found.extend(sorted(glob.glob(os.path.join(folder, "lib", "libmkl_rt.so*")), reverse=True))
    return found


def _already_loaded(path: str) -> bool:
    """Whether ``path`` is loaded in this process already (by NumPy built on MKL, say):
    then its threading layer is someone else's setting, and kioku leaves it alone."""
    try:
        ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except (OSError, AttributeError):
        return False
    return True


def find_mkl(paths: list[str] | None = None) -> MklBinding | None:
    """oneMKL's GEMMs from the first of ``paths`` (default :func:`mkl_candidates`) that
    loads, has both 64-bit CBLAS GEMMs and takes the sequential threading layer; ``None``
    where none does, where MKL is loaded already, or where NumPy's OpenBLAS has no
    64-bit CBLAS (the kernels' calls pass 64-bit integers to both libraries)."""
    if not INT64 or os.environ.get("KIOKU_MKL", "").strip().lower() in ("off", "0", "no", "false"):
        return None
    for path in mkl_candidates() if paths is None else paths:
        if _already_loaded(path):
            return None
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        names = ("cblas_sgemm_64", "cblas_dgemm_64", "MKL_Set_Threading_Layer")
        if not all(hasattr(lib, name) for name in names):
            continue
        lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
        lib.MKL_Set_Threading_Layer.restype = ctypes.c_int
        if lib.MKL_Set_Threading_Layer(_MKL_SEQUENTIAL) != _MKL_SEQUENTIAL:
            continue
        version = ""
        if hasattr(lib, "mkl_get_version_string"):
            text = ctypes.create_string_buffer(198)
            lib.mkl_get_version_string(text, ctypes.c_int(len(text)))
            version = text.value.decode(errors="replace").strip()
        address = ctypes.cast(lib.cblas_sgemm_64, ctypes.c_void_p).value
        d_address = ctypes.cast(lib.cblas_dgemm_64, ctypes.c_void_p).value
        compute = 0
        if all(hasattr(lib, n) for n in ("cblas_sgemm_compute_64", "cblas_sgemm_pack_64",
                                         "cblas_sgemm_pack_get_size_64")):  # fmt: skip
            compute = ctypes.cast(lib.cblas_sgemm_compute_64, ctypes.c_void_p).value or 0
        return MklBinding(path, int(address or 0), int(d_address or 0), version, int(compute))
    return None


MKL: MklBinding | None = find_mkl() if HAVE_BLAS else None
"""oneMKL's GEMMs where the ``mkl`` extra is installed (``KIOKU_MKL=off``: never), else
``None``."""
