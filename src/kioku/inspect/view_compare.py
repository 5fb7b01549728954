"""Two sentences side by side (``kioku view RUN --text a.txt --compare b.txt``): the seed's
lesson of the bidirectional LSTM, measured.

The two texts are read as the view reads any text (a tagger: one sentence per line, each
alone) and their segments paired, line k with line k. For each pair, each traced layer
and direction and each quantity, the page gets the largest absolute difference between
the two runs over all cells, at every step both sentences have (aligned by position).
The numbers come from the float64 copies of the trace, before any rounding: a 0 means
the two runs gave exactly the same float32 values.

On "Apple is something that I like to eat ." against "... to use .", a bidirectional
tagger's first forward layer has read only the words up to a step, so it is exactly the
same in both runs up to the first differing word; its reverse direction has read the
words after the step, so it differs already at "Apple".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .view_run import SegmentRun

SIGNIFICANT = 3  # digits kept of each difference (a non-zero one stays non-zero)


def first_difference(a: Sequence[str], b: Sequence[str]) -> int | None:
    """The first position where the token lists ``a`` and ``b`` differ (the shorter one's
    length when one continues the other), ``None`` when they are equal."""
    for t, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return t
    return None if len(a) == len(b) else min(len(a), len(b))


def step_differences(run: SegmentRun, key, a: slice, b: slice) -> dict[str, np.ndarray]:
    """Per quantity of the (module, layer, direction) ``key``: ``(n,)`` the largest
    ``|A - B|`` over the cells at each of the ``n`` steps the two segments ``a`` and ``b``
    (slices of ``run``'s steps) both have."""
    n = min(a.stop - a.start, b.stop - b.start)
    out = {}
    for q, values in run.values[key].items():
        diff = np.abs(values[a.start : a.start + n] - values[b.start : b.start + n])
        out[q] = diff.max(axis=1)
    return out


def _rounded(values: np.ndarray) -> list[float]:
    return [float(f"{x:.{SIGNIFICANT}g}") for x in values]


def compare_pairs(run: SegmentRun, keys: Sequence, count: int) -> dict:
    """The payload's ``compare``: ``run`` holds ``2 * count`` segments, the first text's
    then the second's; pair k is segment k against segment ``count + k``. Each pair:
    ``a`` and ``b`` (first steps), ``length_a``, ``length_b``, ``first`` (the first
    differing word, :func:`first_difference`), ``diff`` (per group in ``keys`` order, per
    quantity, the step differences of :func:`step_differences`, to 3 significant digits)
    and ``first_change`` (per group, the first step where any quantity differs, or
    ``None``)."""
    if len(run.starts) != 2 * count:
        raise ValueError(f"run: expected {2 * count} segments, found {len(run.starts)}")
    ends = run.starts[1:] + [len(run.tokens)]
    pairs = []
    for k in range(count):
        a = slice(run.starts[k], ends[k])
        b = slice(run.starts[count + k], ends[count + k])
        diffs, changes = [], []
        for key in keys:
            step = step_differences(run, key, a, b)
            diffs.append({q: _rounded(v) for q, v in step.items()})
            changed = np.flatnonzero(np.max(np.stack(list(step.values())), axis=0) > 0)
            changes.append(int(changed[0]) if changed.size else None)
        pairs.append(
            {
                "a": a.start,
                "b": b.start,
                "length_a": a.stop - a.start,
                "length_b": b.stop - b.start,
                "first": first_difference(run.tokens[a], run.tokens[b]),
                "diff": diffs,
                "first_change": changes,
            }
        )
    return {"pairs": pairs}
