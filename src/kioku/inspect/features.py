"""Per-character features of Python source text, for cell search (Karpathy et al. 2015
found cells that track quotes, brackets, indentation and the position in a line).

Each feature maps a text of ``N`` characters to a float array ``(N,)``, one value per
character. A small scanner follows Python's lexical rules well enough for this: string
literals (single, double, triple-quoted; backslash escapes; raw prefixes) and comments.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_OPEN, _CLOSE = "([{", ")]}"


def _scan(text: str) -> tuple[np.ndarray, np.ndarray]:
    """``(in_string, in_comment)`` boolean arrays ``(N,)``. A string's quotes count as
    outside it; a comment includes its ``#`` and excludes the newline."""
    n = len(text)
    in_string = np.zeros(n, bool)
    in_comment = np.zeros(n, bool)
    k = 0
    while k < n:
        ch = text[k]
        if ch == "#":
            end = text.find("\n", k)
            end = n if end < 0 else end
            in_comment[k:end] = True
            k = end
            continue
        if ch in "'\"":
            quote = text[k : k + 3] if text[k : k + 3] in ("'''", '"""') else ch
            prefix_start = k
            while prefix_start > 0 and text[prefix_start - 1] in "rRbBuUfF":
                prefix_start -= 1
            raw = "r" in text[prefix_start:k].lower()
            start = k + len(quote)
            j = start
            while j < n:
                if text[j] == "\\" and not raw:
                    j += 2
                    continue
                if text.startswith(quote, j):
                    break
                if text[j] == "\n" and len(quote) == 1:
                    break  # an unterminated one-line string ends at the line
                j += 1
            j = min(j, n)
            in_string[start:j] = True
            k = j + (len(quote) if text.startswith(quote, j) else 0)
            continue
        k += 1
    return in_string, in_comment


def inside_string(text: str) -> np.ndarray:
    """1 for characters inside a string literal (between its quotes), else 0."""
    return _scan(text)[0].astype(np.float64)


def in_comment(text: str) -> np.ndarray:
    """1 for characters of a ``#`` comment, else 0."""
    return _scan(text)[1].astype(np.float64)


def bracket_depth(text: str) -> np.ndarray:
    """Number of ``( [ {`` open after each character (code only: strings and comments
    do not count); an unmatched closer does not go below 0."""
    in_string, in_comm = _scan(text)
    depth = np.zeros(len(text))
    level = 0
    for k, ch in enumerate(text):
        if not (in_string[k] or in_comm[k]):
            if ch in _OPEN:
                level += 1
            elif ch in _CLOSE:
                level = max(level - 1, 0)
        depth[k] = level
    return depth


def indentation(text: str) -> np.ndarray:
    """Leading whitespace characters of the line each character belongs to (its newline
    included)."""
    out = np.zeros(len(text))
    start = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        out[start : start + len(line)] = len(body) - len(body.lstrip(" \t"))
        start += len(line)
    return out


def line_position(text: str) -> np.ndarray:
    """Column of each character in its line, from 0 (the newline gets its column)."""
    out = np.zeros(len(text))
    column = 0
    for k, ch in enumerate(text):
        out[k] = column
        column = 0 if ch == "\n" else column + 1
    return out


FEATURES: dict[str, Callable[[str], np.ndarray]] = {
    "inside_string": inside_string,
    "bracket_depth": bracket_depth,
    "indentation": indentation,
    "line_position": line_position,
    "in_comment": in_comment,
}


def get_feature(name: str) -> Callable[[str], np.ndarray]:
    """The built-in feature called ``name``; ``ValueError`` listing the names if unknown."""
    if name not in FEATURES:
        raise ValueError(f"feature: expected one of {', '.join(FEATURES)}, found {name!r}")
    return FEATURES[name]
