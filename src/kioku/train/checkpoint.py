"""Checkpoints that lose nothing: arrays in safetensors (or ``.npz``) beside a JSON tree.

A checkpoint is a nested dict of JSON scalars and NumPy arrays (model parameters and
config, vocabulary, optimizer and schedule state, RNG states, step, epoch, data
position, best validation loss, the recurrent state carried across batches). On disk::

    OUT/latest.json                  {"checkpoint": "ckpt-000001200", "step": 1200}
    OUT/best.json                    the same, for the best validation loss
    OUT/ckpt-000001200/checkpoint.json   the tree, arrays replaced by {"__array__": key},
                                         plus the tensor file's name, size and sha256
    OUT/ckpt-000001200/tensors.safetensors

A checkpoint directory is written under a temporary name (each file fsynced), renamed
into place, and only then does ``latest.json`` (replaced atomically) point at it. An
interruption at any moment leaves the previous checkpoint and pointer untouched.
Loading checks size and sha256 before parsing, so truncation and corruption are
reported with the file's name; a missing array names the key. ``checkpoint.json`` is
sealed by the SHA-256 of its own content, pointers and the tensor file are confined to
their folders, config sizes are checked against the tensor header before a model is
built, and non-finite tensors are refused (:mod:`kioku.train.checkpoint_files`). A
non-finite state is never written: saving one is a ``ValueError`` naming the key.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..data.atomic import fsync_dir, read_json, write_json_atomic
from .checkpoint_files import (
    CheckpointError,
    check_config_sizes,
    check_finite,
    check_seal,
    check_strict,
    dotted,
    inside,
    nonfinite_key,
    seal,
    tensor_shapes,
)
from .run_state import RUN_FIELDS, check_run_state  # noqa: F401  (re-exported)

FORMAT = "kioku-checkpoint-2"
LEGACY_FORMAT = "kioku-checkpoint-1"  # before the seal: read as it is
CONFIG_NAME = "checkpoint.json"
LATEST = "latest.json"
BEST = "best.json"


# -- flattening: nested dicts/lists with arrays <-> JSON tree + flat arrays ----------------
def flatten(tree: Any, arrays: dict[str, np.ndarray], prefix: str = "") -> Any:
    """JSON-able copy of ``tree`` with each array moved into ``arrays`` under its path."""
    if isinstance(tree, np.ndarray):
        key = prefix or "root"
        arrays[key] = np.ascontiguousarray(tree)
        return {"__array__": key}
    if isinstance(tree, dict):
        return {str(k): flatten(v, arrays, f"{prefix}{k}/") for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [flatten(v, arrays, f"{prefix}{i}/") for i, v in enumerate(tree)]
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def unflatten(tree: Any, arrays: dict[str, np.ndarray], source: str) -> Any:
    """Inverse of :func:`flatten`; a reference to a missing array names ``source`` and key."""
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            key = tree["__array__"]
            if key not in arrays:
                raise CheckpointError(f"{source}: array {key!r} missing from the tensor file")
            return arrays[key]
        return {k: unflatten(v, arrays, source) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten(v, arrays, source) for v in tree]
    return tree


# -- tensor files -----------------------------------------------------------------------
def _have_safetensors() -> bool:
    try:
        import safetensors.numpy  # noqa: F401
    except ImportError:
        return False
    return True


def encode_tensors(arrays: dict[str, np.ndarray], fmt: str) -> bytes:
    """Serialize flat arrays as safetensors or npz bytes."""
    if fmt == "safetensors":
        from safetensors.numpy import save

        return save(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode_tensors(data: bytes, fmt: str, source: str) -> dict[str, np.ndarray]:
    """Parse tensor-file bytes; any failure is a ``CheckpointError`` naming ``source``."""
    try:
        if fmt == "safetensors":
            if not _have_safetensors():
                raise CheckpointError(
                    f"{source}: reading safetensors needs the 'safetensors' package "
                    "(pip install safetensors)"
                )
            from safetensors.numpy import load

            return dict(load(data))
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(f"{source}: unreadable tensor file ({error})") from None


# seconds to pause before each file of a checkpoint: only the crash-safety test sets it,
# so that its kills land inside checkpoint writes
_PAUSE_ENV = "KIOKU_TEST_CHECKPOINT_PAUSE"


def _write_file(path: Path, data: bytes) -> None:
    """Write and fsync one file (inside the temporary checkpoint directory)."""
    pause = float(os.environ.get(_PAUSE_ENV) or 0)
    if pause > 0:
        time.sleep(pause)
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


# -- saving -------------------------------------------------------------------------------
def save_checkpoint(
    out_dir: str | os.PathLike, state: dict, step: int, best: bool = False, keep: int = 2
) -> Path:
    """Write ``state`` as checkpoint ``ckpt-<step>`` in ``out_dir`` and point
    ``latest.json`` (and ``best.json`` if ``best``) at it; keep the ``keep`` newest
    checkpoints plus the best one. Returns the checkpoint directory."""

    out_dir = Path(out_dir)
    arrays: dict[str, np.ndarray] = {}
    tree = flatten(state, arrays)
    check_strict(tree)  # strict JSON, finite tensors: refused before anything is written
    bad = nonfinite_key(arrays)
    if bad is not None:
        raise ValueError(
            f"state: tensor '{dotted(bad)}': expected finite numbers, found NaN or inf"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    fmt = "safetensors" if _have_safetensors() else "npz"
    tensor_name = f"tensors.{fmt}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-ckpt-", dir=out_dir))
    try:
        data = encode_tensors(arrays, fmt)
        _write_file(tmp / tensor_name, data)
        meta = {
            "format": FORMAT,
            "tensor_file": tensor_name,
            "tensor_bytes": len(data),
            "tensor_sha256": hashlib.sha256(data).hexdigest(),
            "state": tree,
        }
        text = json.dumps(seal(meta), indent=1, allow_nan=False)
        _write_file(tmp / CONFIG_NAME, (text + "\n").encode("utf-8"))
        fsync_dir(tmp)
        name = f"ckpt-{step:09d}"
        final, n = out_dir / name, 0
        while final.exists():  # the same step saved again (e.g. Ctrl-C right after resume)
            n += 1
            final = out_dir / f"{name}.{n}"
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(out_dir)
    pointer = {"checkpoint": final.name, "step": step}
    write_json_atomic(out_dir / LATEST, pointer)
    if best:
        write_json_atomic(out_dir / BEST, pointer)
    prune(out_dir, keep)
    return final


def remove_leftovers(out_dir: str | os.PathLike) -> list[str]:
    """Delete what an interrupted write left in run folder ``out_dir``: temporary
    checkpoint folders and the temporary files of atomic writes (pointers, log). Call
    it only while holding the folder's lock (:mod:`kioku.train.lock`): another live
    writer's temporaries look the same. Returns the names removed."""
    out_dir = Path(out_dir)
    removed = []
    if not out_dir.is_dir():
        return removed
    for path in sorted(out_dir.iterdir()):
        if path.name.startswith(".tmp-ckpt-") and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file():
            path.unlink()
        else:
            continue
        removed.append(path.name)
    return removed


def remove_dead_run(out_dir: str | os.PathLike) -> list[str]:
    """Before a fresh start in run folder ``out_dir`` (lock held): delete what a run that
    died before its first checkpoint left, which nothing can resume (no ``latest.json``):
    its ``log.jsonl``, a ``best.json`` and checkpoint folders no pointer names. With a
    ``latest.json`` nothing is removed (the run is refused or resumed). Returns the
    names removed."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir() or (out_dir / LATEST).exists() or (out_dir / LATEST).is_symlink():
        return []
    removed = []
    for path in sorted(out_dir.iterdir()):
        if path.name in ("log.jsonl", BEST) and (path.is_file() or path.is_symlink()):
            path.unlink()  # a link is removed, never what it points at
        elif _CHECKPOINT_NAME.fullmatch(path.name) and path.is_symlink():
            path.unlink()
        elif _CHECKPOINT_NAME.fullmatch(path.name) and path.is_dir():
            if not {p.name for p in path.iterdir()} <= _CHECKPOINT_FILES:
                continue  # not only a checkpoint's files: not ours to delete
            shutil.rmtree(path, ignore_errors=True)
        else:
            continue
        removed.append(path.name)
    return removed


_CHECKPOINT_NAME = re.compile(r"ckpt-\d{9}(\.\d+)?")
_CHECKPOINT_FILES = frozenset({CONFIG_NAME, "tensors.safetensors", "tensors.npz"})


def prune(out_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints and those the pointers name."""
    pinned = set()
    for pointer in (LATEST, BEST):
        if (out_dir / pointer).is_file():
            try:
                pinned.add(read_json(out_dir / pointer)["checkpoint"])
            except (ValueError, KeyError, TypeError):
                return  # a damaged pointer: delete nothing
    found = sorted(p for p in out_dir.glob("ckpt-*") if p.is_dir())
    for path in found[: max(0, len(found) - keep)]:
        if path.name not in pinned:
            shutil.rmtree(path, ignore_errors=True)


# -- loading ------------------------------------------------------------------------------
def resolve(path: str | os.PathLike, which: str = "latest") -> Path:
    """The checkpoint directory for ``path``: a run folder (follows ``latest.json``, or
    ``best.json`` for ``which="best"`` when there is one), a checkpoint directory, or its
    ``checkpoint.json``."""
    path = Path(path)
    if path.is_file() and path.name == CONFIG_NAME:
        return path.parent
    if (path / CONFIG_NAME).is_file():
        return path
    best = which == "best" and (path / BEST).is_file()  # no best yet: the latest
    pointer = path / (BEST if best else LATEST)
    if pointer.is_file():
        data = read_json(pointer)
        if not isinstance(data, dict) or not isinstance(data.get("checkpoint"), str):
            raise CheckpointError(f"{pointer}: field 'checkpoint': expected a folder name")
        what = "a checkpoint folder"
        target = inside(path, data["checkpoint"], what, str(pointer), "field 'checkpoint'")
        if not (target / CONFIG_NAME).is_file():
            raise CheckpointError(f"{pointer}: field 'checkpoint': {target} has no {CONFIG_NAME}")
        return target
    raise FileNotFoundError(f"{path}: no checkpoint ({CONFIG_NAME} or {pointer.name}) found")


def load_checkpoint(
    path: str | os.PathLike, which: str = "latest", allow_nonfinite: bool = False
) -> tuple[dict, Path]:
    """Read a checkpoint; returns ``(state, directory)`` with arrays restored.

    Raises ``CheckpointError`` naming the file and field for a truncated, corrupted,
    unsealed, incomplete or non-finite checkpoint (``allow_nonfinite``: NaN and infinity
    accepted), or one whose pointers or tensor file lead out of their folders.
    """
    directory = resolve(path, which)
    config_path = inside(directory, CONFIG_NAME, "the checkpoint's file", str(directory), "file")
    try:
        meta = read_json(config_path)
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object")
    source = str(config_path)
    for field in ("format", "tensor_file", "tensor_bytes", "tensor_sha256", "state"):
        if field not in meta:
            raise CheckpointError(f"{source}: field {field!r} missing")
    if meta["format"] not in (FORMAT, LEGACY_FORMAT):
        raise CheckpointError(
            f"{source}: field 'format': expected {FORMAT!r}, found {meta['format']!r}"
        )
    if meta["format"] == FORMAT:  # the legacy format has no seal
        check_seal(meta, source)
    name = meta["tensor_file"]
    what = "a tensor file"
    tensor_path = inside(directory, name, what, source, "field 'tensor_file'")
    if tensor_path.suffix not in (".safetensors", ".npz"):
        raise CheckpointError(
            f"{source}: field 'tensor_file': expected a .safetensors or .npz file, found {name!r}"
        )
    if not tensor_path.is_file():
        raise CheckpointError(f"{tensor_path}: missing (named by {source})")
    size = tensor_path.stat().st_size
    if size != meta["tensor_bytes"]:  # before reading: a huge file is not read
        raise CheckpointError(
            f"{tensor_path}: truncated or padded: expected {meta['tensor_bytes']} bytes, "
            f"found {size}"
        )
    data = tensor_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta["tensor_sha256"]:
        raise CheckpointError(
            f"{tensor_path}: corrupted: sha256 {digest} does not match field "
            f"'tensor_sha256' of {source}"
        )
    fmt = "safetensors" if tensor_path.suffix == ".safetensors" else "npz"
    check_config_sizes(meta["state"], tensor_shapes(data, fmt, str(tensor_path)), source)
    arrays = decode_tensors(data, fmt, str(tensor_path))
    if not allow_nonfinite:
        check_finite(arrays, str(tensor_path))
    state = unflatten(meta["state"], arrays, str(tensor_path))
    check_run_state(state, source)
    return state, directory


def field(state: dict, dotted: str, source: str, kind: type | tuple | None = None) -> Any:
    """``state["a"]["b"]`` for ``"a.b"``; a missing or mistyped field names ``source``."""
    value: Any = state
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise CheckpointError(f"{source}: field {dotted!r} missing")
        value = value[part]
    if kind is not None and not isinstance(value, kind):
        raise CheckpointError(
            f"{source}: field {dotted!r}: expected {kind}, found {type(value).__name__}"
        )
    return value
