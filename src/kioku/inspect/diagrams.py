"""The cell drawn: diagrams of the LSTM step, its four parts, stacking, the two directions,
and the GRU and sLSTM cells, with English or Japanese labels (matplotlib, imported lazily).

Every diagram is a function of the language that returns a ``matplotlib.figure.Figure`` of a
fixed size (:data:`SIZES`); :func:`write_diagrams` writes each as ``<name>_<lang>.png`` and
``.svg``. The committed copies live in ``docs/img/`` and are made by::

    python -m kioku.inspect.diagrams docs/img

Japanese labels need a CJK font (``fc-list :lang=ja``; on Debian ``apt-get install
fonts-noto-cjk``): without one :func:`japanese_font` raises, naming the fix, instead of
drawing empty boxes. Colours follow :mod:`kioku.inspect.colours`: a gate (σ) is filled with
the gate scale's green, a tanh with the signed scale's red.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..data.atomic import write_bytes_atomic
from .colours import GATE_STOPS, SIGNED_STOPS

LANGUAGES = ("en", "ja")
DPI = 100
INK, DIM, ACCENT = "#222222", "#c4c4c4", "#d95f02"
GATE_FILL, TANH_FILL, CELL_FILL = GATE_STOPS[2], SIGNED_STOPS[5], "#f5f5f5"
_CJK_NAMES = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic")


def japanese_font() -> str:
    """The family name of an installed font with Japanese glyphs, registered with
    matplotlib; ``RuntimeError`` saying how to install one when there is none."""
    from matplotlib import font_manager

    for entry in font_manager.fontManager.ttflist:
        if entry.name in _CJK_NAMES:
            return entry.name
    files = []
    if shutil.which("fc-list"):
        found = subprocess.run(
            ["fc-list", ":lang=ja", "file"], capture_output=True, text=True, check=False
        )
        files = [line.split(":")[0].strip() for line in found.stdout.splitlines() if line]
    files += glob.glob("/usr/share/fonts/**/*CJK*", recursive=True)
    names = []
    for path in sorted(set(files), key=lambda p: ("JP" not in p, "Regular" not in p, p)):
        try:  # every weight of it: bold titles too
            font_manager.fontManager.addfont(path)
            names.append(font_manager.FontProperties(fname=path).get_name())
        except (OSError, RuntimeError, ValueError):
            continue
    if names:
        return names[0]
    raise RuntimeError(
        "diagrams: Japanese labels need a font with Japanese glyphs, found none "
        "(`fc-list :lang=ja` lists nothing); install one, e.g. apt-get install fonts-noto-cjk"
    )


class Canvas:
    """One diagram: an axes in data units filling a fixed-size figure, and the drawing
    primitives the diagrams share. ``highlight`` names the part drawn in colour (the rest
    greyed); ``None`` draws everything in colour."""

    def __init__(self, width: float, height: float, xlim, ylim, highlight: str | None = None):
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(width, height), dpi=DPI)
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(*xlim)
        self.ax.set_ylim(*ylim)
        self.ax.set_axis_off()
        self.highlight = highlight

    def _on(self, parts) -> bool:
        """Whether what belongs to ``parts`` is drawn in colour (``None``: titles and
        captions, always)."""
        return parts is None or self.highlight is None or self.highlight in parts

    def _ink(self, parts) -> tuple[str, float]:
        if self.highlight is None:
            return INK, 1.6
        return (ACCENT, 2.6) if self.highlight in parts else (DIM, 1.4)

    def line(self, points, parts=(), arrow: bool = True) -> None:
        """A polyline through ``points`` ``[(x, y), ...]``, with an arrowhead at its end."""
        from matplotlib.patches import FancyArrowPatch
        from matplotlib.path import Path as MplPath

        colour, width = self._ink(parts)
        patch = FancyArrowPatch(
            path=MplPath(points),
            arrowstyle="-|>" if arrow else "-",
            mutation_scale=12,
            color=colour,
            lw=width,
            shrinkA=0,
            shrinkB=0,
            zorder=1,
        )
        self.ax.add_patch(patch)

    def box(self, x, y, text, fill, parts=(), w=1.0, h=0.75, size=13) -> None:
        """A rounded box centred on ``(x, y)`` holding ``text`` (a layer or an activation)."""
        from matplotlib.patches import FancyBboxPatch

        colour, width = self._ink(parts)
        on = self._on(parts)
        patch = FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor=fill if on else "#f0f0f0", edgecolor=colour, lw=width, zorder=3,
        )  # fmt: skip
        self.ax.add_patch(patch)
        self.text(x, y, text, parts, size=size, zorder=4)

    def node(self, x, y, symbol, parts=(), r=0.25, size=14) -> None:
        """A round operator node (``⊙``, ``+``, ``÷``, ``1−``) centred on ``(x, y)``."""
        from matplotlib.patches import Circle

        colour, width = self._ink(parts)
        self.ax.add_patch(
            Circle((x, y), r, facecolor="white", edgecolor=colour, lw=width, zorder=3)
        )
        self.text(x, y, symbol, parts, size=size, zorder=4)

    def dot(self, x, y, parts=()) -> None:
        """Where a line splits in two."""
        self.ax.plot([x], [y], "o", ms=5, color=self._ink(parts)[0], zorder=2)

    def text(self, x, y, text, parts=None, size=11, ha="center", va="center", **kwargs) -> None:
        """``text`` at ``(x, y)``, greyed unless it belongs to the highlighted part."""
        colour = INK if self._on(parts) else "#9a9a9a"
        highlighted = self.highlight is not None and parts is not None and self.highlight in parts
        if highlighted and "weight" not in kwargs:
            kwargs["weight"] = "bold"
        self.ax.text(x, y, text, ha=ha, va=va, fontsize=size, color=colour, **kwargs)

    def frame(self, x0, y0, x1, y1) -> None:
        """The cell's outline: what happens inside one step."""
        from matplotlib.patches import FancyBboxPatch

        self.ax.add_patch(
            FancyBboxPatch(
                (x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0,rounding_size=0.4",
                facecolor=CELL_FILL, edgecolor="#888888", lw=1.2, zorder=0,
            )
        )  # fmt: skip


# --- the LSTM step -----------------------------------------------------------------------
# the parts of the seed's section 2, as the highlights name them
PARTS = ("forget", "input", "cell", "output")
PART_DIAGRAMS = {  # part -> the name of its diagram
    "forget": "lstm_forget_gate", "input": "lstm_input_gate", "cell": "lstm_cell_update",
    "output": "lstm_output_gate",
}  # fmt: skip
LSTM_WORDS = {
    "en": {
        "title": "One LSTM step",
        "f": "forget gate", "i": "input gate", "g": "candidate", "o": "output gate",
        "caption": "σ: sigmoid, a gate in 0..1 (0 closed, 1 open)    tanh: −1..1    "
                   "⊙: element-wise (Hadamard) product    +: sum",
        "forget": "2.1 Forget gate: what to erase from the cell",
        "input": "2.2 Input gate and candidate: what new information to write",
        "cell": "2.3 The new memory cell: erase, then add",
        "output": "2.4 Output gate: what of the cell to show",
    },
    "ja": {
        "title": "LSTMの1ステップ",
        "f": "忘却ゲート", "i": "入力ゲート", "g": "候補", "o": "出力ゲート",
        "caption": "σ: シグモイド、ゲートの開き具合 0..1 (0 閉、1 開)    tanh: −1..1    "
                   "⊙: アダマール積 (要素ごとの積)    +: 和",
        "forget": "2.1 忘却ゲート (forgetゲート): 記憶セルから何を消すか",
        "input": "2.2 入力ゲート (inputゲート) と候補: 新しい情報をどれだけ書き込むか",
        "cell": "2.3 新しい記憶セル: 消してから加える",
        "output": "2.4 出力ゲート (outputゲート): 記憶セルのどこを出力するか",
    },
}  # fmt: skip
PART_EQUATIONS = {
    "forget": r"$f_t = \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f)$",
    "input": r"$i_t = \sigma(x_t W_{xi} + h_{t-1} W_{hi} + b_i)$,   "
    r"$g_t = \tanh(x_t W_{xg} + h_{t-1} W_{hg} + b_g)$",
    "cell": r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t$",
    "output": r"$o_t = \sigma(x_t W_{xo} + h_{t-1} W_{ho} + b_o)$,   $h_t = o_t \odot \tanh(c_t)$",
}
_GATES_IN = ("forget", "input", "output")  # the parts that read x_t and h_{t-1}


def lstm_step(lang: str = "en", highlight: str | None = None):
    """The LSTM step: ``x_t``, ``h_{t-1}``, ``c_{t-1}`` in; the gates f, i, o (σ) and the
    candidate g (tanh); ``⊙`` and ``+`` on the cell line; ``h_t``, ``c_t`` out.
    ``highlight`` (one of :data:`PARTS`) draws that part in colour, its equation above."""
    words = LSTM_WORDS[lang]
    cv = Canvas(10, 6.4, (0, 12.5), (-1.7, 8.3), highlight)
    cv.frame(1.3, 0.75, 10.9, 7.0)
    title = words["title"] if highlight is None else words[highlight]
    cv.text(6.25, 7.95, title, size=15, weight="bold")
    if highlight is not None:
        cv.text(6.25, 7.4, PART_EQUATIONS[highlight], size=13)
    # the cell line: c_{t-1} -> ⊙ f -> + i ⊙ g -> c_t
    y_c, y_bus = 6.2, 1.5
    cv.line([(0.2, y_c), (2.75, y_c)], ("forget", "cell"), arrow=False)
    cv.line([(3.25, y_c), (5.35, y_c)], ("cell",), arrow=False)
    cv.line([(5.85, y_c), (12.3, y_c)], ("cell", "output"))
    cv.text(0.2, y_c + 0.35, r"$c_{t-1}$", ("forget", "cell"), size=13, ha="left")
    cv.text(12.3, y_c + 0.35, r"$c_t$", ("cell",), size=13, ha="right")
    cv.node(3.0, y_c, "⊙", ("forget", "cell"))
    cv.node(5.6, y_c, "+", ("input", "cell"))
    # the inputs: h_{t-1} along the bottom, x_t from below, into every gate
    cv.line([(0.2, y_bus), (8.2, y_bus)], _GATES_IN, arrow=False)
    cv.line([(2.0, -0.45), (2.0, y_bus)], _GATES_IN, arrow=False)
    cv.dot(2.0, y_bus, _GATES_IN)
    cv.text(0.2, y_bus + 0.35, r"$h_{t-1}$", _GATES_IN, size=13, ha="left")
    cv.text(2.0, -0.75, r"$x_t$", _GATES_IN, size=13)
    y_g = 2.7
    gates = (
        ("f", 3.0, "σ", GATE_FILL, ("forget", "cell")),
        ("i", 4.6, "σ", GATE_FILL, ("input",)),
        ("g", 6.6, "tanh", TANH_FILL, ("input",)),
        ("o", 8.2, "σ", GATE_FILL, ("output",)),
    )
    for short, x, act, fill, parts in gates:
        reads = tuple(p for p in parts if p in _GATES_IN)
        cv.line([(x, y_bus), (x, y_g - 0.38)], reads)
        cv.box(x, y_g, act, fill, parts, size=12 if act == "tanh" else 15)
        cv.text(x + 0.12, y_bus + 0.42, words[short], parts, size=9, ha="left")
        cv.text(x - 0.12, y_g + 0.75, rf"${short}_t$", parts, size=13, ha="right")
    # f scales the old cell; i scales the candidate; their product is added
    cv.line([(3.0, y_g + 0.38), (3.0, y_c - 0.25)], ("forget", "cell"))
    y_ig = 4.4
    cv.line([(4.6, y_g + 0.38), (4.6, y_ig), (5.35, y_ig)], ("input",))
    cv.line([(6.6, y_g + 0.38), (6.6, y_ig), (5.85, y_ig)], ("input",))
    cv.node(5.6, y_ig, "⊙", ("input",))
    cv.line([(5.6, y_ig + 0.25), (5.6, y_c - 0.25)], ("input", "cell"))
    # the output: o ⊙ tanh(c_t), out to the right (next step) and up (the layer's output)
    y_o = 4.0
    cv.dot(9.4, y_c, ("output",))
    cv.line([(9.4, y_c), (9.4, 5.45)], ("output",))
    cv.box(9.4, 5.15, "tanh", TANH_FILL, ("output",), w=0.95, h=0.55, size=11)
    cv.line([(9.4, 4.87), (9.4, y_o + 0.25)], ("output",))
    cv.line([(8.2, y_g + 0.38), (8.2, y_o), (9.15, y_o)], ("output",))
    cv.node(9.4, y_o, "⊙", ("output",))
    cv.line([(9.65, y_o), (10.3, y_o), (10.3, y_bus), (12.3, y_bus)], ("output",))
    cv.dot(10.3, y_o, ("output",))
    top = 8.2 if highlight is None else 7.3  # under a part's longer title
    cv.line([(10.3, y_o), (10.3, top)], ("output",))
    cv.text(12.3, y_bus + 0.35, r"$h_t$", ("output",), size=13, ha="right")
    cv.text(10.45, top - 0.25, r"$h_t$", ("output",), size=13, ha="left")
    cv.text(6.25, -1.35, words["caption"], size=9.5)
    return cv.fig


def _part(name: str) -> Callable:
    def draw(lang: str = "en"):
        return lstm_step(lang, name)

    draw.__name__ = PART_DIAGRAMS[name]
    draw.__doc__ = f"The LSTM step with its {name} part highlighted (see :func:`lstm_step`)."
    return draw


# --- the registry ------------------------------------------------------------------------
def _registry() -> dict[str, Callable]:
    from .diagrams_networks import bidirectional, gru_step, slstm_step, stacked

    diagrams = {"lstm_step": lstm_step}
    diagrams.update({PART_DIAGRAMS[name]: _part(name) for name in PARTS})
    diagrams.update(
        {"lstm_stacked": stacked, "lstm_bidirectional": bidirectional, "gru_step": gru_step}
    )
    diagrams["slstm_step"] = slstm_step
    return diagrams


def diagram_names() -> list[str]:
    """The name of every diagram (the files are ``<name>_<lang>.png`` and ``.svg``)."""
    return list(_registry())


SIZES = {  # (width, height) in pixels of each diagram's PNG
    "lstm_step": (1000, 640), **{name: (1000, 640) for name in PART_DIAGRAMS.values()},
    "lstm_stacked": (1000, 600), "lstm_bidirectional": (1200, 560),
    "gru_step": (1000, 640), "slstm_step": (1000, 680),
}  # fmt: skip


def draw(name: str, lang: str = "en"):
    """The figure of diagram ``name`` with labels in ``lang`` (``"en"`` or ``"ja"``)."""
    registry = _registry()
    if name not in registry:
        raise ValueError(f"name: expected one of {', '.join(registry)}, found {name!r}")
    if lang not in LANGUAGES:
        raise ValueError(f"lang: expected one of {', '.join(LANGUAGES)}, found {lang!r}")
    return registry[name](lang)


@functools.lru_cache(maxsize=8)
def svg_data_uri(name: str, lang: str = "en") -> str | None:
    """Diagram ``name`` in ``lang`` as a ``data:image/svg+xml;base64,...`` URI, for a page
    that holds everything it shows (the view's "how to read" note); ``None`` where it
    cannot be drawn here (no matplotlib, or no Japanese font for ``"ja"``). Drawn once
    per process."""
    import base64

    try:
        import matplotlib
        import matplotlib.pyplot as plt

        rc = _rc(lang, [japanese_font()] if lang == "ja" else [])
    except (ImportError, RuntimeError):
        return None
    with matplotlib.rc_context(rc):
        fig = draw(name, lang)
        try:
            svg = _encoded(fig, "svg")
        finally:
            plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def _encoded(fig, fmt: str) -> bytes:
    import io

    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {}  # the same drawing, the same bytes
    fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def _rc(lang: str, cjk: list[str]) -> dict:
    """The matplotlib settings every diagram is drawn with: DejaVu Sans, then (``"ja"``)
    the Japanese font ``cjk``; SVG text as paths, with a fixed hash salt (same bytes)."""
    family = ["DejaVu Sans"] + (cjk if lang == "ja" else [])
    return {"font.family": family, "svg.fonttype": "path", "svg.hashsalt": "kioku"}


def write_diagrams(
    out: str | os.PathLike, names: list[str] | None = None, languages=LANGUAGES
) -> list[Path]:
    """Write every diagram (or those ``names``) in every language of ``languages`` into the
    folder ``out`` as ``<name>_<lang>.png`` and ``.svg``, atomically; returns the paths."""
    import matplotlib

    out = Path(out)
    cjk = [japanese_font()] if "ja" in languages else []  # before anything is drawn
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for lang in languages:
        with matplotlib.rc_context(_rc(lang, cjk)):
            for name in names or diagram_names():
                fig = draw(name, lang)
                for fmt in ("png", "svg"):
                    path = out / f"{name}_{lang}.{fmt}"
                    write_bytes_atomic(path, _encoded(fig, fmt))
                    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m kioku.inspect.diagrams FOLDER``: write every diagram into FOLDER."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m kioku.inspect.diagrams FOLDER (e.g. docs/img)", file=sys.stderr)
        return 2
    try:
        paths = write_diagrams(argv[0])
    except (RuntimeError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(paths)} files into {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
