"""Forward and backward hooks of the recurrent layers, in the manner of PyTorch's
``register_forward_hook``: a function called at a fixed point of every run, registered
and removed through a handle, so that inspection reads a layer without replacing its
methods.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

_ids = itertools.count()


class HookHandle:
    """What ``register_*_hook`` returns; :meth:`remove` unregisters the hook (twice is fine).
    Usable as a context manager that removes the hook on exit."""

    def __init__(self, hooks: dict[int, Callable], key: int) -> None:
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def add_hook(hooks: dict[int, Callable], hook: Callable, name: str) -> HookHandle:
    """Register ``hook`` (checked to be callable; ``name`` is the argument's name)."""
    if not callable(hook):
        raise TypeError(f"{name}: expected a callable, found {type(hook).__name__}")
    key = next(_ids)
    hooks[key] = hook
    return HookHandle(hooks, key)
