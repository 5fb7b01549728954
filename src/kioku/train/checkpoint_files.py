"""What a checkpoint may read and trust: its own files, a sealed ``checkpoint.json``,
sizes that its tensors bear out, and finite numbers.

- Confinement: a pointer (``latest.json``, ``best.json``) names a checkpoint folder of
  its own run folder, and ``checkpoint.json`` names a tensor file in its own checkpoint
  folder: a plain name, no ``..``, no absolute path, no link that leads out (paths are
  resolved, then checked to lie inside).
- Seal: ``checkpoint.json`` carries ``meta_sha256``, the SHA-256 of its own content
  (every field but this one) written canonically, so one flipped bit in a vocabulary
  token or a label is refused as the tensors' digest refuses a flipped bit in a weight.
  Checkpoints of format ``kioku-checkpoint-1`` (before the seal) load as the legacy
  format they are.
- Sizes: the integers of a model's config are checked against the shapes in the tensor
  file's header (read without loading data) before any model is built, so a config
  saying ``hidden_size`` 10**12 is refused instead of allocated.
- Finite: every floating-point tensor must hold finite numbers.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

DIGEST_FIELD = "meta_sha256"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message names the file and the key or field."""


# -- confinement ----------------------------------------------------------------------
def inside(folder: Path, name: object, what: str, source: str, field: str) -> Path:
    """``folder / name`` for a ``name`` that stays inside ``folder``: one plain path
    component (no ``/``, ``..`` or absolute path) whose resolved path (links followed)
    lies in the resolved ``folder``. Otherwise a ``CheckpointError`` naming ``source``,
    ``field`` and what was found."""
    shown = repr(name) if isinstance(name, str) else type(name).__name__
    refusal = CheckpointError(f"{source}: {field}: expected {what} inside {folder}, found {shown}")
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise refusal
    if "/" in name or "\\" in name or os.sep in name or "\x00" in name:
        raise refusal
    path = folder / name
    try:
        real, home = path.resolve(), folder.resolve()
    except (OSError, RuntimeError):  # a loop of links
        raise refusal from None
    if real.parent != home:
        raise CheckpointError(
            f"{source}: {field}: expected {what} inside {folder}, found {shown}, a link to {real}"
        )
    return path


# -- the seal of checkpoint.json --------------------------------------------------------
def canonical(meta: dict) -> bytes:
    """The bytes the seal covers: ``meta`` without its seal, as sorted, compact, ASCII,
    strict JSON (``ValueError`` for NaN or infinity)."""
    body = {k: v for k, v in meta.items() if k != DIGEST_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.encode("ascii")


def seal(meta: dict) -> dict:
    """``meta`` with its seal (``meta_sha256``) set; what :func:`check_seal` accepts."""
    return {**meta, DIGEST_FIELD: hashlib.sha256(canonical(meta)).hexdigest()}


def check_seal(meta: dict, source: str) -> None:
    """Refuse a ``checkpoint.json`` whose content does not match its seal."""
    if DIGEST_FIELD not in meta:
        raise CheckpointError(f"{source}: field {DIGEST_FIELD!r} missing")
    try:
        digest = hashlib.sha256(canonical(meta)).hexdigest()
    except ValueError:
        raise CheckpointError(
            f"{source}: corrupted: holds NaN or Infinity, which a sealed checkpoint never does"
        ) from None
    if digest != meta[DIGEST_FIELD]:
        raise CheckpointError(
            f"{source}: corrupted: its content's sha256 {digest} does not match its field "
            f"{DIGEST_FIELD!r} (a changed byte: a token, a label, a setting)"
        )


def check_strict(tree: Any, where: str = "state") -> None:
    """``ValueError`` naming the key of the first NaN or infinity among ``tree``'s JSON
    numbers: a checkpoint is strict JSON."""
    if isinstance(tree, float) and not math.isfinite(tree):
        raise ValueError(f"{where}: expected a finite number, found {tree}")
    if isinstance(tree, dict):
        for key, value in tree.items():
            check_strict(value, f"{where}.{key}")
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            check_strict(value, f"{where}[{index}]")


# -- tensor headers: shapes without data ------------------------------------------------
def tensor_shapes(data: bytes, fmt: str, source: str) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in a safetensors or npz file's bytes, from its header
    (the safetensors JSON header, each ``.npy`` member's header): no array is built."""
    try:
        if fmt == "safetensors":
            (size,) = struct.unpack("<Q", data[:8])
            if size > len(data) - 8:
                raise ValueError(f"header of {size} bytes in a file of {len(data)}")
            header = json.loads(data[8 : 8 + size])
            return {
                key: tuple(int(n) for n in entry["shape"])
                for key, entry in header.items()
                if key != "__metadata__"
            }
        shapes = {}
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                with archive.open(name) as member:
                    version = np.lib.format.read_magic(member)
                    reader = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, _ = reader(member)
                shapes[name.removesuffix(".npy")] = tuple(int(n) for n in shape)
        return shapes
    except Exception as error:
        raise CheckpointError(f"{source}: unreadable tensor header ({error})") from None


_LAYER = re.compile(r"_l(\d+)(?:_reverse)?$")
_COUNTS = frozenset({"num_layers"})
_INDICES = frozenset({"padding_idx"})


def _defaults(kind: object) -> dict[str, object]:
    """The constructor defaults of model class ``kind`` (empty for an unknown kind)."""
    import inspect

    from .. import models

    cls = getattr(models, kind, None) if isinstance(kind, str) else None
    if not isinstance(cls, type):
        return {}
    try:
        parameters = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters if p.default is not p.empty}


def check_config_sizes(tree: Any, shapes: dict[str, tuple[int, ...]], source: str) -> None:
    """Refuse a model config (``tree["model"]["config"]``) whose sizes its tensors (the
    ``shapes`` of ``tree["model"]["params"]``, from the header) cannot bear out, before
    the model is built: a size other than its default must be at most the largest
    dimension of the tensors, ``num_layers`` at most the layers their names count. The
    exact shapes are compared once the model is built (``restore.load_params``)."""
    model = tree.get("model") if isinstance(tree, dict) else None
    if not isinstance(model, dict):
        return
    config, params = model.get("config"), model.get("params")
    if not isinstance(config, dict) or not isinstance(params, dict):
        return
    dims: set[int] = set()
    layers = 0
    for name, ref in params.items():
        key = ref.get("__array__") if isinstance(ref, dict) else None
        if key in shapes:
            dims.update(shapes[key])
        found = _LAYER.search(str(name))
        if found:
            layers = max(layers, int(found.group(1)) + 1)
    largest = max(dims, default=0)
    defaults = _defaults(model.get("kind"))
    for name, value in config.items():
        if isinstance(value, bool) or not isinstance(value, int) or name in _INDICES:
            continue
        where = f"{source}: key 'state.model.config.{name}'"
        if value < 0:
            raise CheckpointError(f"{where}: expected an integer >= 0, found {value}")
        if name in defaults and value == defaults[name]:
            continue  # a default: modest, and perhaps unused by this model
        if name in _COUNTS and value > max(layers, 1):
            raise CheckpointError(
                f"{where}: {value} does not match the tensors, which hold {layers} "
                "layer(s); refused before building the model"
            )
        if value > largest:
            raise CheckpointError(
                f"{where}: {value} does not match the tensors, whose largest dimension is "
                f"{largest}; refused before building the model"
            )


# -- finite numbers ---------------------------------------------------------------------
def nonfinite_key(arrays: dict[str, np.ndarray]) -> str | None:
    """The first key whose floating-point array holds NaN or infinity, else ``None``."""
    for key, array in arrays.items():
        if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
            return key
    return None


def dotted(key: str) -> str:
    """A flat tensor key (``model/params/lstm.weight_hh_l0/``) as the state's dotted
    path (``model.params.lstm.weight_hh_l0``)."""
    return key.strip("/").replace("/", ".")


def check_finite(arrays: dict[str, np.ndarray], source: str) -> None:
    """Refuse tensors holding NaN or infinity, naming ``source`` and the tensor."""
    key = nonfinite_key(arrays)
    if key is not None:
        array = arrays[key]
        count = int(array.size - np.isfinite(array).sum())
        raise CheckpointError(
            f"{source}: tensor '{dotted(key)}' holds {count} non-finite value(s) (NaN or "
            "infinity): the run diverged when it was saved; use an earlier checkpoint"
        )
