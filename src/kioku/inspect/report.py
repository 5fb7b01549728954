"""Self-contained HTML reports: headings, text, tables, activation-coloured text and
figures embedded as base64 PNG, written atomically as one file."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.atomic import write_text_atomic
from . import colours
from .plots import figure_bytes

# wide figures scroll rather than shrink, so that their labels keep their size
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th { background: #eee; }
pre.act { white-space: pre-wrap; font-family: monospace; line-height: 1.5; }
figure { margin: 1em 0; overflow-x: auto; } figcaption { font-size: 0.9em; color: #444; }
img { max-width: none; }
"""


_SIGNED = colours.colour_scale("signed")  # the plots' and the view's blue .. white .. red


def _colour(value: float) -> str:
    """Blue (-1) .. white (0) .. red (+1), in the colours of :mod:`kioku.inspect.colours`."""
    return colours.colour(value, _SIGNED)


def activation_html(tokens: Sequence[str], values: np.ndarray, scale: float | None = None) -> str:
    """Tokens as HTML ``<span>``s whose background shows ``values (T,)``: red for
    positive, blue for negative, white for 0, scaled by ``scale`` (default max |value|),
    the colours of :mod:`kioku.inspect.colours`, white text on the darkest. Each span's
    ``title`` holds the exact value."""
    values = np.asarray(values, np.float64)
    if values.shape != (len(tokens),):
        raise ValueError(
            f"values: expected shape ({len(tokens)},) (one per token), found {values.shape}"
        )
    scale = float(np.abs(values).max()) if scale is None else float(scale)
    scale = scale if scale > 0 else 1.0
    spans = []
    for token, value in zip(tokens, values):
        shown = html.escape(token if token != "\n" else "⏎\n")
        ink = ";color:#fff" if colours.dark(value / scale, _SIGNED) else ""
        spans.append(
            f'<span style="background:{_colour(value / scale)}{ink}" title="{value:.3f}">'
            f"{shown}</span>"
        )
    return '<pre class="act">' + "".join(spans) + "</pre>"


class HtmlReport:
    """Builds one HTML page; :meth:`write` saves it. Figures are embedded, so the file
    stands alone."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def raw(self, fragment: str) -> None:
        """Append an HTML fragment the caller built (and escaped)."""
        self.parts.append(fragment)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
            for row in rows
        )
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def figure(self, fig, caption: str = "") -> None:
        """Embed ``fig`` (a matplotlib Figure) as a base64 PNG."""
        self.png(figure_bytes(fig, "png"), caption)

    def png(self, png: bytes, caption: str = "") -> None:
        """Embed PNG bytes (e.g. those also written to a file) as a base64 image."""
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError("png: expected PNG bytes, found data without the PNG signature")
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def render(self) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(self.parts)
            + "\n</body></html>\n"
        )

    def write(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        write_text_atomic(path, self.render())
        return path


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
