"""One line on stderr while kioku's kernels compile cold, so that a first call is not a
silent wait.

Numba compiles a kernel on its first call and keeps the machine code in its disk cache;
after an install, an upgrade or on a new CPU the first training step compiles the whole
loop, its packed products and their callers: 23 s for an LSTM's first forward and 12 s
for its first backward (AMD EPYC, Zen 4), with nothing on the screen. Numba reports
each compilation that its cache could not serve as a ``numba:compile`` event (loads from
the cache send none); :func:`install` registers a listener that, when a compilation of
a kioku kernel is still running :data:`DELAY` seconds after it started, prints
:data:`MESSAGE` once per process. Compilations of other packages' functions are not
watched, and a cache hit prints nothing. ``KIOKU_COMPILE_NOTICE=off`` silences it (the
test suite sets it: tests that read stderr must not depend on whether the cache was
warm). The notice also adds up how long kioku's outermost compilations took
(:func:`compiled_seconds`), so that the first tuning, which compiles every path it
measures, can say which part of its time was compiling.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

# a compilation shorter than this (a new signature of one small function) says nothing
DELAY = 1.0
MESSAGE = (
    "kioku: compiling the kernels for this CPU (first use only; a minute or more, "
    "Numba caches them)..."
)


VARIABLE = "KIOKU_COMPILE_NOTICE"


def _stderr(line: str) -> None:
    """``line`` on stderr, unless ``KIOKU_COMPILE_NOTICE=off`` (read when it is said)."""
    if os.environ.get(VARIABLE, "").strip().lower() != "off":
        print(line, file=sys.stderr, flush=True)


def _ours(event: object) -> bool:
    """Whether ``event`` is the compilation of a function of a kioku module."""
    data = getattr(event, "data", None)
    dispatcher = data.get("dispatcher") if isinstance(data, dict) else None
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
    return module == "kioku" or module.startswith("kioku.")


class Notice:
    """Says :data:`MESSAGE` through ``write`` once, when kioku's outermost compilation
    lasts ``delay`` seconds (a timer started at its start, cancelled at its end).
    Numba compiles under one global lock, so the events nest: a kernel's callees
    compile inside it. ``seconds``: the wall time of every outermost compilation so far,
    added up."""

    def __init__(self, write: Callable[[str], None] = _stderr, delay: float = DELAY) -> None:
        self.write = write
        self.delay = delay
        self.depth = 0
        self.said = False
        self.timer: threading.Timer | None = None
        self.lock = threading.Lock()
        self.seconds = 0.0
        self.started = 0.0

    def _say(self) -> None:
        with self.lock:
            if self.said or self.depth == 0:
                return
            self.said = True
        self.write(MESSAGE)

    def on_start(self, event: object) -> None:
        if not _ours(event):
            return
        with self.lock:
            self.depth += 1
            if self.depth == 1:
                self.started = time.perf_counter()
                if not self.said:
                    self.timer = threading.Timer(self.delay, self._say)
                    self.timer.daemon = True
                    self.timer.start()

    def on_end(self, event: object) -> None:
        if not _ours(event):
            return
        with self.lock:
            if self.depth == 0:  # started before the listener was registered
                return
            self.depth -= 1
            if self.depth == 0:
                self.seconds += time.perf_counter() - self.started
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None


def listener(notice: Notice) -> object:
    """A Numba event listener that hands ``numba:compile`` events to ``notice``."""
    from numba.core import event

    class _Listener(event.Listener):
        def on_start(self, ev: object) -> None:
            notice.on_start(ev)

        def on_end(self, ev: object) -> None:
            notice.on_end(ev)

    return _Listener()


_installed: list[Notice] = []


def install() -> bool:
    """Register the process's :class:`Notice` for Numba's ``numba:compile`` events, once;
    ``False`` where Numba (or its event API) is missing."""
    if _installed:
        return True
    notice = Notice()
    try:
        from numba.core import event

        event.register("numba:compile", listener(notice))
    except (ImportError, AttributeError, TypeError, ValueError):
        return False
    _installed.append(notice)
    return True


def compiled_seconds() -> float:
    """Seconds this process has spent compiling kioku's kernels since :func:`install`
    (0 where it is not installed)."""
    return _installed[0].seconds if _installed else 0.0


def with_compiling(seconds: float, since: float) -> str:
    """``seconds`` as a figure, with the part of it spent compiling kioku's kernels after
    the :func:`compiled_seconds` reading ``since`` where that part was a second or more:
    ``"136.0 s (107 s of it compiling the kernels, once)"``."""
    compiled = compiled_seconds() - since
    if compiled < 1.0:
        return f"{seconds:.1f} s"
    return f"{seconds:.1f} s ({compiled:.0f} s of it compiling the kernels, once)"
