"""The fields of a training run's checkpoint state, checked on load: a damaged file is
refused here, naming the key, instead of failing deep inside a reader with a
``KeyError`` or an ``AttributeError``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .checkpoint_files import CheckpointError

_NUMBER = (int, float)
_ARRAYS = "dict of arrays"
_COUNT = "count"  # an integer >= 0
_NUMBERS = "list of numbers"
_CARRY = "list of arrays"
# What a training run's checkpoint holds (kioku.train.loop.Trainer.state_dict), as far as
# every reader of it relies on: a damaged file is refused here, naming the key, instead
# of failing deep inside a reader with a KeyError or an AttributeError.
RUN_FIELDS: dict[str, object] = {
    "model": dict,
    "model.kind": str,
    "model.config": dict,
    "model.params": _ARRAYS,
    "optimizer": dict,
    "optimizer.type": str,
    "optimizer.hyperparams": dict,
    "optimizer.hyperparams.lr": _NUMBER,
    "optimizer.step": _COUNT,
    "optimizer.arrays": _ARRAYS,
    "schedule": (dict, type(None)),
    "task": dict,
    "task.kind": str,
    "task.position": dict,
    "task.position.epoch": _COUNT,
    "task.position.batch": _COUNT,
    "task.vocab": (dict, type(None)),
    "task.carry": (_CARRY, type(None)),
    "task.vocab.level": str,
    "task.vocab.tokens": list,
    "rng": dict,
    "rng.model": dict,
    "step": _COUNT,
    "epoch": _COUNT,
    "best_valid": (*_NUMBER, type(None)),
    "bad_evals": _COUNT,
    "recent_losses": _NUMBERS,
    "elapsed": _NUMBER,
    "meta": dict,
    "meta.settings": dict,
}
_OPTIONAL = frozenset({"schedule", "task.vocab", "task.carry", "recent_losses", "meta.settings"})


def _describe(kind: object) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {dict: "an object", str: "text", int: "an integer", float: "a number",
             list: "a list", type(None): "null", _COUNT: "an integer >= 0"}  # fmt: skip
    return " or ".join(dict.fromkeys(names.get(k, k) for k in kinds))


def _matches(value: Any, kind: object) -> bool:
    if isinstance(kind, tuple):
        return any(_matches(value, k) for k in kind)
    if isinstance(value, bool):  # JSON true/false is no number
        return kind is bool
    if kind == _ARRAYS:
        return isinstance(value, dict) and all(isinstance(v, np.ndarray) for v in value.values())
    if kind == _CARRY:
        return isinstance(value, list) and all(isinstance(v, np.ndarray) for v in value)
    if kind == _NUMBERS:
        return isinstance(value, list) and all(_matches(v, _NUMBER) for v in value)
    if kind == _COUNT:
        return isinstance(value, int) and value >= 0
    return isinstance(value, kind)


def check_run_state(state: Any, source: str) -> None:
    """Refuse a run checkpoint's ``state`` whose fields (:data:`RUN_FIELDS`) are missing
    or of the wrong type, with a ``CheckpointError`` naming ``source`` and the key.

    A state with a ``meta`` field, or with both ``optimizer`` and ``task``, is a run's,
    and then every field is required (the optional ones aside); in any other state (a
    model and its vocabulary, say) only the fields present are checked, so that other
    trees can still be saved and loaded.
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: field 'state': expected an object")
    is_run = "meta" in state or ("optimizer" in state and "task" in state)
    for dotted, kind in RUN_FIELDS.items():
        parent, _, name = dotted.rpartition(".")
        holder = state
        for part in parent.split(".") if parent else []:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if not isinstance(holder, dict):
            continue  # the parent is optional and absent (refused above otherwise)
        if name not in holder:
            if is_run and dotted not in _OPTIONAL:
                raise CheckpointError(f"{source}: key 'state.{dotted}' missing")
            continue
        value = holder[name]
        if not _matches(value, kind):
            found = _found_arrays(value) if kind in (_ARRAYS, _CARRY) else repr(value)
            if len(found) > 60:
                found = type(value).__name__
            raise CheckpointError(
                f"{source}: key 'state.{dotted}': expected {_describe(kind)}, found {found}"
            )


def _found_arrays(value: Any) -> str:
    if not isinstance(value, (dict, list)):
        return type(value).__name__
    items = value.items() if isinstance(value, dict) else enumerate(value)
    key, bad = next((k, v) for k, v in items if not isinstance(v, np.ndarray))
    return f"{type(bad).__name__} at {key!r}"
