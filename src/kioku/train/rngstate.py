"""RNG states as JSON, for the loop's generator and every generator a model holds.

NumPy's ``Generator.bit_generator.state`` is a dict of ints and strings, so it goes
into a checkpoint's JSON as it is (Python ints are unbounded, so PCG64's 128-bit state
survives). Modules keep their generators in attributes (``rng`` for dropout, LSTM
inter-layer dropout); they are found by walking the module tree.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..nn.module import Module


def get_state(rng: np.random.Generator) -> dict:
    """``rng``'s bit-generator state (a JSON-able dict)."""
    return rng.bit_generator.state


def set_state(rng: np.random.Generator, state: dict, source: str = "rng") -> None:
    """Restore a state from :func:`get_state`; a state of another kind names ``source``."""
    expected = rng.bit_generator.state.get("bit_generator")
    if not isinstance(state, dict) or state.get("bit_generator") != expected:
        found = state.get("bit_generator") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{source}: expected a {expected} state, found {found}")
    try:
        rng.bit_generator.state = state
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{source}: not a valid {expected} state ({error!r})") from None


def module_generators(
    module: Module, prefix: str = ""
) -> Iterator[tuple[str, np.random.Generator]]:
    """``(dotted attribute path, generator)`` for each generator in the module tree."""
    for name, value in sorted(vars(module).items()):
        if isinstance(value, np.random.Generator):
            yield prefix + name, value
        elif isinstance(value, Module) and not name.startswith("_"):
            yield from module_generators(value, f"{prefix}{name}.")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, Module):
                    yield from module_generators(item, f"{prefix}{name}.{i}.")


def collect(module: Module) -> dict[str, dict]:
    """States of every generator held by ``module`` and its children."""
    return {path: get_state(rng) for path, rng in module_generators(module)}


def restore(module: Module, states: dict[str, dict], source: str) -> None:
    """Put back states from :func:`collect`; a generator missing from either side is an
    error naming ``source`` and the path."""
    own = dict(module_generators(module))
    missing = sorted(set(own) - set(states))
    if missing:
        raise ValueError(f"{source}: field 'rng.model': no state for generator {missing[0]!r}")
    for path, state in states.items():
        if path not in own:
            raise ValueError(f"{source}: field 'rng.model.{path}': model has no such generator")
        set_state(own[path], state, f"{source}: field 'rng.model.{path}'")
