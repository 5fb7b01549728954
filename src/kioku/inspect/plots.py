"""Figures of what the gates and cells do (matplotlib, imported lazily).

Every function returns a ``matplotlib.figure.Figure`` built without pyplot (so no GUI
backend and no global state is touched); :func:`save_figure` writes PNG or SVG, and
:func:`figure_png` gives PNG bytes for embedding in an HTML report.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..data.atomic import write_bytes_atomic
from . import colours
from .saturation import Saturation
from .trace import DirectionTrace

FORMATS = ("png", "svg")


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "kioku.inspect plots need matplotlib: pip install matplotlib "
            "(or pip install 'kioku-lstm[plot]')"
        ) from None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def token_label(token: str) -> str:
    """A printable tick label for a token (newline, tab and space made visible)."""
    return {"\n": "⏎", "\t": "⇥", " ": "␣"}.get(token, token)


def gate_heatmap(
    record: DirectionTrace,
    tokens: Sequence[str],
    batch_index: int = 0,
    cells: Sequence[int] | None = None,
    quantities: str | Sequence[str] | None = None,
    title: str | None = None,
):
    """Heatmaps of the chosen quantities of one direction (short names; default every
    quantity of the cell but ``h``: an LSTM's i, f, g, o, c, a GRU's r, z, n, an sLSTM's
    i, f, z, o, c, n, m), each labelled by the cell's own name for it: units on the
    vertical axis, steps on the horizontal one labelled by ``tokens`` (one per step:
    ``len(tokens) == T``). ``cells`` defaults to every unit up to 32."""
    T = record.steps
    if len(tokens) != T:
        raise ValueError(f"tokens: expected {T} tokens (one per traced step), found {len(tokens)}")
    if quantities is None:
        quantities = [q.short for q in record.quantities if q.short != "h"] or ["h"]
    chosen = [record.quantity(q) for q in quantities]  # ValueError names an unknown one
    H = record.get(chosen[0].short).shape[2]
    cells = list(range(min(H, 32))) if cells is None else list(cells)
    # rows and tokens sized for 8-point labels, readable at normal zoom
    fig = _figure(max(6.0, 0.16 * T + 1.5), 1.0 + len(chosen) * max(0.9, 0.16 * len(cells)))
    axes = fig.subplots(len(chosen), 1, squeeze=False)[:, 0]
    for ax, q in zip(axes, chosen):
        values = record.get(q.short)[:, batch_index, :][:, cells].T
        scale = colours.colour_scale(q.scale, values, q.short)
        image = ax.imshow(
            values,
            aspect="auto",
            cmap=colours.colormap(q.scale),
            vmin=scale.low,
            vmax=scale.high,
            interpolation="nearest",
        )
        ax.set_ylabel(f"{q.label}\ncell", fontsize=9)
        ax.set_yticks(range(len(cells)))
        ax.set_yticklabels([str(c) for c in cells], fontsize=8)
        ax.set_xticks(range(T))
        if q is chosen[-1]:  # tokens under the last panel only: labels are slow to lay out
            ax.set_xticklabels([token_label(t) for t in tokens], fontsize=8, family="monospace")
        else:
            ax.set_xticklabels([])
        colour_bar(fig, image, ax, scale, fraction=0.02)
    kind = record.cell_type.lower()
    axes[0].set_title(
        title or f"{record.module or kind} layer {record.layer} direction {record.direction}"
    )
    return fig


def gradient_flow_plot(
    curves: Mapping[str, np.ndarray], title: str = "Gradient reaching each step", ylabel: str = ""
):
    """One line per label: ``curves[label] (T,)`` the gradient norm at each step, log
    scale (a vanishing gradient is a straight line falling towards the start)."""
    fig = _figure(6.5, 3.6)
    ax = fig.subplots()
    for label, values in curves.items():
        values = np.asarray(values, np.float64)
        ax.semilogy(np.arange(values.size), np.maximum(values, 1e-30), label=label)
    ax.set_xlabel("step t")
    ax.set_ylabel(ylabel or "‖dL/dh_t‖ (mean over batch)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def saturation_scatter(saturations: Sequence[Saturation], title: str = "Gate saturation"):
    """Karpathy et al.'s plot: one point per cell, fraction of steps with the gate
    < 0.1 (x) against > 0.9 (y); one panel per gate, colour per layer and direction."""
    gates = list(dict.fromkeys(s.gate for s in saturations))
    fig = _figure(3.2 * max(len(gates), 1), 3.4)
    axes = fig.subplots(1, max(len(gates), 1), squeeze=False)[0]
    for ax, gate in zip(axes, gates):
        for s in saturations:
            if s.gate != gate:
                continue
            label = f"{s.module + ' ' if s.module else ''}layer {s.layer}" + (
                " reverse" if s.direction else ""
            )
            ax.scatter(s.low, s.high, s=10, alpha=0.7, label=label)
        ax.plot([0, 1], [1, 0], color="grey", lw=0.5)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("fraction < 0.1")
        ax.set_ylabel("fraction > 0.9")
        ax.set_title(f"{gate} gate")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    logy: bool = False,
    markers: bool = False,
):
    """A generic labelled line plot: ``series[label] = (x, y)``."""
    fig = _figure(6.5, 3.6)
    ax = fig.subplots()
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o" if markers else None, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def bar_plot(groups: Mapping[str, Mapping[str, float]], ylabel: str, title: str):
    """Grouped bars: ``groups[group][bar] = height``, each bar labelled with its value."""
    fig = _figure(6.5, 3.6)
    ax = fig.subplots()
    names = list(dict.fromkeys(bar for bars in groups.values() for bar in bars))
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        xs = [g + (k - (len(names) - 1) / 2) * width for g in range(len(groups))]
        heights = [bars.get(name, np.nan) for bars in groups.values()]
        drawn = ax.bar(xs, heights, width, label=name)
        ax.bar_label(drawn, fmt="%.3f", fontsize=8)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(list(groups))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def colour_bar(fig, image, ax, scale: colours.ColourScale, lang: str = "en", **kwargs):
    """A colour bar for ``image`` whose ends say what they mean: ``0 closed`` and ``1 open``
    for a gate, ``−b negative``, ``0`` and ``+b positive`` otherwise (the words of
    :data:`kioku.inspect.colours.MEANINGS`)."""
    bar = fig.colorbar(image, ax=ax, pad=0.01, **kwargs)
    words = colours.MEANINGS[lang]["gate" if scale.kind == "gate" else "signed"]
    if scale.kind == "gate":
        bar.set_ticks([0.0, 0.5, 1.0], labels=[f"0 {words[0]}", "0.5", f"1 {words[1]}"])
    else:
        ends = [f"{scale.low:.3g} {words[0]}", "0", f"+{scale.high:.3g} {words[1]}"]
        bar.set_ticks([scale.low, 0.0, scale.high], labels=ends)
    bar.ax.tick_params(labelsize=8)
    return bar


def activation_text(
    tokens: Sequence[str],
    values: np.ndarray,
    title: str = "",
    max_lines: int = 30,
    max_columns: int = 100,
    scale: float | None = None,
    kind: str = "free",
    quantity: str = "",
    lang: str = "en",
):
    """Character text coloured by ``values (T,)`` (one per token) in the colours of
    :mod:`kioku.inspect.colours`: for ``kind="gate"`` white (0, closed) to green (1, open);
    otherwise blue below zero, white at 0, red above, full colour at ``±scale`` (default: 1
    for ``"signed"``, the largest |value| for ``"free"``). ``quantity`` (a short name such as
    ``"f"``) picks the legend's words, in ``lang``. The picture version of
    :func:`~kioku.inspect.report.activation_html` for places that show images but not HTML.
    Lines split at newline tokens, and lines longer than ``max_columns`` wrap at a space;
    ``max_lines`` ends at a line's end."""
    values = np.asarray(values, np.float64)
    if values.shape != (len(tokens),):
        raise ValueError(f"values: expected shape ({len(tokens)},), found {values.shape}")
    rows: list[list[tuple[str, float]]] = [[]]
    for token, value in zip(tokens, values):
        if token == "\n":
            rows[-1].append(("⏎", value))
            rows.append([])
        else:
            rows[-1].append((token, value))
    rows = [part for row in rows for part in wrap_at_words(row, max_columns)][:max_lines]
    width = max(1, max(len(row) for row in rows))
    grid = np.full((len(rows), width), np.nan)
    for r, row in enumerate(rows):
        grid[r, : len(row)] = [v for _, v in row]
    if scale is not None and kind != "gate":
        if not scale > 0:
            raise ValueError(f"scale: expected a positive number, found {scale!r}")
        grid_scale = colours.colour_scale(kind, np.array([scale]), quantity, lang)
    else:
        grid_scale = colours.colour_scale(kind, grid, quantity, lang)
    heading = (title + "\n" if title else "") + grid_scale.legend
    longest = max(len(line) for line in heading.split("\n"))  # 9-point text: ~0.075 inch a letter
    fig = _figure(max(0.105 * width + 1.6, 0.075 * longest + 1.0, 4.5), 0.2 * len(rows) + 0.9)
    ax = fig.subplots()
    image = ax.imshow(
        grid,
        cmap=colours.colormap(kind),
        vmin=grid_scale.low,
        vmax=grid_scale.high,
        aspect="auto",
        interpolation="nearest",
    )
    for r, row in enumerate(rows):
        for c, (ch, value) in enumerate(row):
            if ch.strip():
                ink = "white" if colours.dark(value, grid_scale) else "black"
                ax.text(c, r, ch, ha="center", va="center", family="monospace", fontsize=7.5,
                        color=ink)  # fmt: skip
    ax.set_axis_off()
    colour_bar(fig, image, ax, grid_scale, lang, fraction=0.015)
    ax.set_title(heading, fontsize=9)
    return fig


def wrap_at_words(row: list, width: int) -> list[list]:
    """``row`` of ``(token, value)`` pairs in pieces of at most ``width``, each broken
    after the last blank token that fits (mid-word only where a word is longer)."""
    pieces = []
    while len(row) > width:
        blanks = [i for i, (token, _) in enumerate(row[:width]) if not token.strip()]
        cut = blanks[-1] + 1 if blanks else width
        pieces.append(row[:cut])
        row = row[cut:]
    pieces.append(row)
    return pieces


def figure_bytes(fig, fmt: str = "png") -> bytes:
    """The figure encoded as ``png`` or ``svg``."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt: expected one of {', '.join(FORMATS)}, found {fmt!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=100)
    return buffer.getvalue()


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` atomically; the format comes from the suffix (``.png`` or ``.svg``)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"path: expected a .png or .svg file name, found {str(path)!r}")
    write_bytes_atomic(path, figure_bytes(fig, fmt))
    return path
