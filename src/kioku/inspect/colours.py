"""One colour language for every picture of a cell: the notebooks, the inspect report
(:mod:`kioku.inspect.plots`) and the view (``view.js`` reads these rules from its page).

- A gate (an LSTM's i, f, o; a GRU's r, z; an sLSTM's stabilised i, f, o) lies in (0, 1):
  a sequential scale, white at 0 (closed) to dark green at 1 (open), limits exactly
  ``(0, 1)``, the legend ``closed 0 … 1 open``.
- Everything signed (the candidate g, the cell c, the hidden state h, a GRU's new state n,
  a product such as i ⊙ g): a diverging scale centred on zero, blue below, white at 0, red
  above, with symmetric limits: ±1 for a tanh-bounded quantity (``"signed"``), ±max|value|
  for an unbounded one (``"free"``); the legend says what each side means.

The scales are lists of colour stops (sampled once from matplotlib's ``Greens`` and
``RdBu_r``), so that matplotlib and the browser draw the same colours and the page needs no
matplotlib. The ``kind`` of a quantity is :attr:`kioku.inspect.trace.Quantity.scale`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

KINDS = ("gate", "signed", "free")
# white (0, closed) .. dark green (1, open): matplotlib's Greens at 0, 1/8, ..., 1
GATE_STOPS = (
    "#f7fcf5", "#e5f5e0", "#c7e9c0", "#a0d99b", "#73c476", "#40aa5d", "#228a44", "#006c2c",
    "#00441b",
)  # fmt: skip
# dark blue (-limit) .. white (0) .. dark red (+limit): matplotlib's RdBu_r at 0, 1/8, ..., 1
SIGNED_STOPS = (
    "#053061", "#2a71b2", "#6bacd1", "#c2ddec", "#f7f6f6", "#fbccb4", "#e48066", "#ba2832",
    "#67001f",
)  # fmt: skip
# past this fraction of the scale the stops are dark enough to need white text
DARK_FROM = 0.65

# what the two ends of the scale mean, by quantity name (kioku.inspect.trace's long names;
# an LSTM's short names i, f, g, o, c, h also work), else by kind, per language
MEANINGS = {
    "en": {
        "gate": ("closed", "open"),
        "signed": ("negative", "positive"),
        "forget_gate": ("closed: erases the cell", "open: keeps it"),
        "input_gate": ("closed: writes nothing", "open: writes the candidate"),
        "output_gate": ("closed: hides the cell", "open: shows it"),
        "candidate": ("negative: writes below zero", "positive: writes above zero"),
        "cell": ("negative content", "positive content (white: empty)"),
        "hidden": ("negative output", "positive output (white: silent)"),
        "reset_gate": ("closed: the candidate ignores h", "open: reads it"),
        "update_gate": ("closed: takes the candidate", "open: keeps the old h"),
        "new_state": ("negative: writes below zero", "positive: writes above zero"),
        "cell_input": ("negative: writes below zero", "positive: writes above zero"),
        "normalizer": ("negative", "positive: how much has been written"),
        "stabilizer": ("negative", "positive (a log scale)"),
    },
    "ja": {
        "gate": ("閉", "開"),
        "signed": ("負", "正"),
        "forget_gate": ("閉: セルを消す", "開: セルを保つ"),
        "input_gate": ("閉: 何も書かない", "開: 候補を書き込む"),
        "output_gate": ("閉: セルを隠す", "開: セルを出力する"),
        "candidate": ("負: 負の値を書く", "正: 正の値を書く"),
        "cell": ("負の内容", "正の内容(白: 空)"),
        "hidden": ("負の出力", "正の出力(白: 出力なし)"),
        "reset_gate": ("閉: 候補は h を読まない", "開: h を読む"),
        "update_gate": ("閉: 候補を取る", "開: 前の h を保つ"),
        "new_state": ("負: 負の値を書く", "正: 正の値を書く"),
        "cell_input": ("負: 負の値を書く", "正: 正の値を書く"),
        "normalizer": ("負", "正: 書き込まれた量"),
        "stabilizer": ("負", "正(対数の尺度)"),
    },
}
LSTM_NAMES = {"i": "input_gate", "f": "forget_gate", "g": "candidate", "o": "output_gate",
              "c": "cell", "h": "hidden"}  # fmt: skip


def meaning(quantity: str, kind: str, lang: str = "en") -> tuple[str, str]:
    """What the low and the high end of ``quantity``'s scale mean (a long name such as
    ``"update_gate"``, or an LSTM's short name), or, for another quantity, of ``kind``'s."""
    if lang not in MEANINGS:
        raise ValueError(f"lang: expected one of {', '.join(MEANINGS)}, found {lang!r}")
    words = MEANINGS[lang]
    name = LSTM_NAMES.get(quantity, quantity)
    if name in words and name not in ("gate", "signed"):
        return words[name]
    return words["gate" if _check_kind(kind) == "gate" else "signed"]


class ColourScale(NamedTuple):
    """How to colour one quantity: its ``kind`` (one of :data:`KINDS`), the values at the
    two ends of the scale, ``low`` and ``high`` (``(0, 1)`` for a gate, ``(-b, b)``
    otherwise), its colour ``stops`` and the ``legend`` text."""

    kind: str
    low: float
    high: float
    stops: tuple[str, ...]
    legend: str


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)}, found {kind!r}")
    return kind


def limits(kind: str, values: np.ndarray | None = None) -> tuple[float, float]:
    """The two ends of the scale for ``values`` (any shape) of a quantity of ``kind``:
    ``(0, 1)`` for a gate; ``(-1, 1)`` for a tanh-bounded quantity (wider only if a value
    leaves it, as a projected h may); ``(-b, b)`` with ``b = max|values|`` otherwise."""
    if _check_kind(kind) == "gate":
        return 0.0, 1.0
    peak = 0.0
    if values is not None and np.size(values):
        peak = float(np.nanmax(np.abs(np.asarray(values, np.float64))))
    bound = max(1.0, peak) if kind == "signed" else (peak if peak > 0 else 1.0)
    return -bound, bound


def _number(x: float) -> str:
    return "0" if x == 0 else f"{x:+.3g}".replace("-", "−")


def legend(kind: str, low: float, high: float, quantity: str = "", lang: str = "en") -> str:
    """The legend of a scale: ``closed 0 … 1 open`` for a gate, ``negative −b … 0 … +b
    positive`` otherwise, in the words of ``quantity`` (see :func:`meaning`) where
    :data:`MEANINGS` has them, in language ``lang`` (``"en"`` or ``"ja"``)."""
    words = meaning(quantity, kind, lang)
    if kind == "gate":
        closed, opened = MEANINGS[lang]["gate"]
        text = f"{closed} 0 … 1 {opened}"
        if words != (closed, opened):
            text += f" ({quantity}: {' / '.join(words)})"
        return text
    below, above = words
    return f"{below} {_number(low)} … 0 … {_number(high)} {above}"


def colour_scale(
    kind: str, values: np.ndarray | None = None, quantity: str = "", lang: str = "en"
) -> ColourScale:
    """The scale for ``values`` of a quantity of ``kind`` (see :func:`limits` and
    :func:`legend`)."""
    low, high = limits(kind, values)
    stops = GATE_STOPS if kind == "gate" else SIGNED_STOPS
    return ColourScale(kind, low, high, stops, legend(kind, low, high, quantity, lang))


def position(value: float, scale: ColourScale) -> float:
    """Where ``value`` falls on the scale, 0 (low end) .. 1 (high end), clipped."""
    span = scale.high - scale.low
    return float(np.clip((value - scale.low) / span, 0.0, 1.0))


def colour(value: float, scale: ColourScale) -> str:
    """``#rrggbb`` of ``value``: the stops interpolated linearly (``view.js`` computes the
    same)."""
    stops = [tuple(int(s[k : k + 2], 16) for k in (1, 3, 5)) for s in scale.stops]
    x = position(value, scale) * (len(stops) - 1)
    k = min(int(x), len(stops) - 2)
    w = x - k
    rgb = [round(a + (b - a) * w) for a, b in zip(stops[k], stops[k + 1])]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def dark(value: float, scale: ColourScale) -> bool:
    """Whether text on ``value``'s colour must be white to stay readable."""
    x = position(value, scale)
    if scale.kind == "gate":
        return x > DARK_FROM
    return abs(2 * x - 1) > DARK_FROM


def colormap(kind: str):
    """The matplotlib colormap of ``kind`` made from the same stops (matplotlib imported
    here); NaN draws white."""
    from matplotlib.colors import LinearSegmentedColormap

    stops = GATE_STOPS if _check_kind(kind) == "gate" else SIGNED_STOPS
    cmap = LinearSegmentedColormap.from_list(f"kioku_{kind}", stops, N=256)
    return cmap.with_extremes(bad="white")


def page_rules(lang: str = "en") -> dict:
    """What the view's page needs to colour like the plots: both stop lists, the dark
    threshold and the words of a gate's two ends (each quantity's kind and words travel
    with its layer: :func:`quantity_rules`)."""
    return {
        "gate_stops": list(GATE_STOPS),
        "signed_stops": list(SIGNED_STOPS),
        "dark_from": DARK_FROM,
        "gate_words": list(MEANINGS[lang]["gate"]),
    }


def quantity_rules(quantities, lang: str = "en") -> list[dict]:
    """For the page: each of ``quantities`` (:class:`kioku.inspect.trace.Quantity`) as
    ``short``, ``label``, ``kind`` and the ``words`` of its two ends."""
    return [
        {"short": q.short, "label": q.label, "kind": _check_kind(q.scale),
         "words": list(meaning(q.name, q.scale, lang))}
        for q in quantities
    ]  # fmt: skip
