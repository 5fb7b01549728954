"""Progress display: a tqdm bar on a terminal, plain periodic lines elsewhere (CI, pipes).

tqdm is imported lazily; without it, or when stderr is not a terminal, or when ``CI``
is set, progress is printed as one line every ``plain_every`` seconds.
"""

from __future__ import annotations

import os
import sys
import time


def format_seconds(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Shows step/total, the running loss and its derived metric, tokens/s, time left.
    ``total`` is ``None`` when no step bound is known (a run bounded by ``max_time`` or by
    early stopping only): then the step is shown alone, and the time left is what remains
    of ``max_time`` seconds, if given."""

    def __init__(
        self,
        total: int | None,
        initial: int = 0,
        enabled: bool = True,
        plain_every: float = 10.0,
        stream=None,
        out=None,
        max_time: float | None = None,
    ) -> None:
        self.total = total
        self.max_time = max_time
        self.step = initial
        self.start_step = initial
        self.stream = stream or sys.stderr  # the bar and progress lines
        self.out = out or sys.stdout  # evaluations and samples, shown even without a bar
        self.plain_every = plain_every
        self.started = time.perf_counter()
        self.last_plain = self.started
        self.tokens = 0
        self.bar = None
        self.enabled = enabled
        interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        if enabled and interactive and not os.environ.get("CI"):
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(
                    total=total, initial=initial, file=self.stream, dynamic_ncols=True, unit="step"
                )

    def update(self, steps: int, tokens: int, postfix: str) -> None:
        """Advance by ``steps`` having processed ``tokens``; ``postfix`` is e.g. the loss."""
        self.step += steps
        self.tokens += tokens
        elapsed = time.perf_counter() - self.started
        rate = self.tokens / elapsed if elapsed > 0 else 0.0
        text = f"{postfix} | {rate:,.0f} tok/s"
        left = self._seconds_left(elapsed)
        if left is not None:
            text += f" | left {format_seconds(left)}"
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix_str(text, refresh=False)
        elif self.enabled and time.perf_counter() - self.last_plain >= self.plain_every:
            self.last_plain = time.perf_counter()
            shown = self.step if self.total is None else f"{self.step}/{self.total}"
            print(f"step {shown} | {text}", file=self.stream, flush=True)

    def _seconds_left(self, elapsed: float) -> float | None:
        """From the steps left at the rate so far, capped by ``max_time``; ``None`` when
        neither bound is known."""
        done = self.step - self.start_step
        by_steps = None
        if self.total is not None:
            by_steps = (self.total - self.step) * elapsed / done if done else 0.0
        if self.max_time is None:
            return by_steps
        by_time = max(self.max_time - elapsed, 0.0)
        return by_time if by_steps is None else min(by_steps, by_time)

    def write(self, line: str) -> None:
        """Print a line to ``out`` without breaking the bar."""
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
