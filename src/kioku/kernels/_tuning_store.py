"""Where a tuning is kept: the machine's identity (CPU model, the instruction-set flags that
matter, library versions, thread budget), its key, and the tuning file in the user's cache
(``$XDG_CACHE_HOME/kioku/tuning-<key>.json``, default ``~/.cache/kioku``): strict JSON
with a schema version, written atomically. What the values mean: :mod:`._tuning`."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

SCHEMA = 1

# Flags that change which code is fast: vector width, FMA, matrix units (x86), NEON/SVE.
FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
    "asimd", "sve", "sve2",
)  # fmt: skip


class TuningFileError(ValueError):
    """A stored tuning file that cannot be used: damaged, foreign or out of range."""


def cpu() -> tuple[str, list[str]]:
    """The CPU model name and the instruction-set flags of :data:`FLAGS` it has."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                field, _, rest = line.partition(":")
                field = field.strip().lower()
                if field == "model name" and not model:
                    model = rest.strip()
                elif field in ("flags", "features") and not flags:
                    flags = set(rest.split())
                if model and flags:
                    break
    except OSError:
        pass
    if not flags:  # not Linux: ask LLVM (Numba's), if it is installed
        try:
            from llvmlite import binding

            flags = {k for k, on in binding.get_host_cpu_features().items() if on}
        except (ImportError, RuntimeError):
            pass
    model = model or platform.processor() or platform.machine() or "unknown"
    return model, [flag for flag in FLAGS if flag in flags]


def thread_budget() -> int:
    """Threads a kernel call may use (``KIOKU_NUM_THREADS``, else the CPU affinity): the
    rule of ``_threads.max_threads``, read here without importing it (its constants
    are defined from this module)."""
    env = os.environ.get("KIOKU_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _version(module: str) -> str | None:
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__version__", None):
        return str(loaded.__version__)
    try:
        from importlib import metadata

        return metadata.version("kioku-lstm" if module == "kioku" else module)
    except Exception:  # not installed, or no metadata: part of the key all the same
        return None


def _mkl_version() -> str | None:
    """oneMKL's version where kioku's kernels can call it (:data:`._blas.MKL`), else
    ``None``."""
    from . import _blas

    return _blas.MKL.version if _blas.MKL is not None else None


def machine() -> dict:
    """What the key is made of: CPU model, flags, versions, thread budget, and the target
    Numba compiles for where ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES`` sets one other
    than the host (AVX2 code on an AVX-512 host is another machine to tune for)."""
    model, flags = cpu()
    versions = {name: _version(name) for name in ("numpy", "numba", "kioku")}
    versions["mkl"] = _mkl_version()  # installing the mkl extra is another machine to tune
    identity = {"cpu": model, "flags": flags, "versions": versions, "threads": thread_budget()}
    target = {
        k: os.environ[k] for k in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES") if os.environ.get(k)
    }
    if target:
        identity["target"] = target
    return identity


def key(identity: dict | None = None) -> str:
    """16 hex digits of SHA-256 over :func:`machine` (or ``identity``)."""
    identity = machine() if identity is None else identity
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages when measured: a busy machine's tuning says so."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def cache_folder() -> Path:
    """``$XDG_CACHE_HOME/kioku``, default ``~/.cache/kioku``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kioku"


def tuning_path(identity: dict | None = None) -> Path:
    """Where this machine's tuning file is (or would be)."""
    return cache_folder() / f"tuning-{key(identity)}.json"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not strict JSON")


def read_file(path: str | os.PathLike, expected_key: str) -> dict:
    """The content of a tuning file, checked as far as its form goes: strict JSON,
    :data:`SCHEMA`, ``key`` equal to ``expected_key``, ``choices`` an object of objects.
    Raises :class:`TuningFileError` with the reason otherwise (the values are checked
    against their bounds by :mod:`._tuning`), :class:`FileNotFoundError` when there is
    none."""
    text = Path(path).read_text(encoding="utf-8", errors="strict")
    try:
        content = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise TuningFileError(f"not valid JSON ({error})") from None
    if not isinstance(content, dict) or content.get("schema") != SCHEMA:
        found = content.get("schema") if isinstance(content, dict) else type(content).__name__
        raise TuningFileError(f"schema: expected {SCHEMA}, found {found!r}")
    if content.get("key") != expected_key:
        raise TuningFileError(
            f"key: expected {expected_key} (this machine), found {content.get('key')!r}"
        )
    choices = content.get("choices")
    if not isinstance(choices, dict) or not all(isinstance(c, dict) for c in choices.values()):
        raise TuningFileError("choices: expected an object of objects")
    return content


def write_file(result: dict, identity: dict) -> Path:
    """Store ``result`` (a measurement: ``choices``, ``seconds``, ...) as the tuning file
    of the machine ``identity`` describes, atomically, with :data:`SCHEMA`, the key, the
    identity and the time; returns its path."""
    from ..data.atomic import write_text_atomic  # a leaf: os, json, tempfile

    content = {
        "schema": SCHEMA,
        "key": key(identity),
        "machine": identity,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **result,
    }
    path = tuning_path(identity)
    text = json.dumps(content, indent=1, sort_keys=True, allow_nan=False)
    write_text_atomic(path, text + "\n")
    return path
