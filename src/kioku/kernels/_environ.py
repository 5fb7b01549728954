"""An environment variable read on every call, without ``os.environ.get``'s cost.

``os.environ.get`` of an unset name raises and catches a ``KeyError`` inside
``os.environ`` (~1.5 µs, and 6-12 µs right after a long compiled loop has pushed the
interpreter out of the caches): a tenth of a batch-1 call. :func:`reader` looks the
name up in the dict behind ``os.environ``, which ``os.environ``'s own writes (and so
``monkeypatch.setenv``) keep current.
"""

from __future__ import annotations

import os
from collections.abc import Callable

_DATA = getattr(os.environ, "_data", None)
try:
    _encode = os.environ.encodekey  # type: ignore[attr-defined]
    _decode = os.environ.decodevalue  # type: ignore[attr-defined]
except AttributeError:  # an os.environ without them: the plain look-up
    _DATA = None


def reader(name: str) -> Callable[[], str | None]:
    """A function of no arguments that returns ``os.environ.get(name)`` as it is when
    called."""
    if _DATA is None:
        return lambda: os.environ.get(name)
    key, data, decode = _encode(name), _DATA, _decode

    def read() -> str | None:
        raw = data.get(key)
        return None if raw is None else decode(raw)

    return read
