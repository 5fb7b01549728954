"""``no_grad()``: forwards that keep nothing for a backward, in the manner of PyTorch's
``torch.no_grad()``.

Inside the block every recurrent layer calls its backend with ``keep_cache=False``: the
loop keeps only the current state, and the layer stores no cache, so inference does not
pay for training. Eval mode alone keeps caches (inspection runs backward in eval mode).
The flag is per thread, as PyTorch's is; a layer reads it once per forward, on the
calling thread, so directions run on worker threads follow the caller.
"""

from __future__ import annotations

import contextlib
import threading

_mode = threading.local()


def is_grad_enabled() -> bool:
    """Whether forwards called now keep what their backward needs (``False`` inside
    :class:`no_grad`)."""
    return getattr(_mode, "enabled", True)


class no_grad(contextlib.ContextDecorator):  # noqa: N801 (PyTorch's name)
    """``with kioku.nn.no_grad(): y, _ = lstm(x)``: the forwards inside keep no cache, and
    a backward of them raises ``RuntimeError``. Nestable (leaving a block restores the
    mode it found) and usable as a decorator (``@kioku.nn.no_grad()``)."""

    def __init__(self) -> None:
        self._previous: list[bool] = []  # one per entry, so one instance may nest

    def __enter__(self) -> no_grad:
        self._previous.append(is_grad_enabled())
        _mode.enabled = False
        return self

    def __exit__(self, *exc: object) -> None:
        _mode.enabled = self._previous.pop()
