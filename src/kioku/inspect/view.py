"""An interactive view of a model's memory: one self-contained HTML page to explore.

:func:`write_view` runs a token model on a text under :func:`~kioku.inspect.trace` and
writes one HTML file (data as embedded JSON, JavaScript and CSS inline, no external URL,
a Content-Security-Policy that forbids loading anything) that works from ``file://``:
hover a token to see every gate and state of every cell of every layer and direction at
that step (an LSTM's i, f, g, o, c, h; a GRU's r, z, n, h; an sLSTM's i, f, z, o, c, n, m,
h); click a value to colour the text by that cell; drag over a span of text to rank
the cells that are on inside it and off around it (LSTMVis's selection, see
:func:`span_scores`). The page is ``view.html``, ``view.css`` and ``view.js`` beside this
module, joined into one file.

Values travel rounded to ``decimals`` (3, fewer only for a cell state too large for 16
bits) as little-endian int16 in base64: the page shows exactly what it was given.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ..data.atomic import write_text_atomic
from ..data.vocab import EOS, UNK, Vocabulary
from ..nn import Module
from . import colours
from .modules import check_word_token_model
from .trace import trace

MAX_VIEW_TOKENS = 20000
MAX_PAGE_BYTES = 64_000_000  # past this a browser takes many seconds to open the page
DEFAULT_DECIMALS = 3
INT16_MAX = 32767
TOP_PREDICTIONS = 3
_DATA_MARK = "/*KIOKU_VIEW_DATA*/"
_STYLE_MARK = "/*KIOKU_VIEW_STYLE*/"
_SCRIPT_MARK = "/*KIOKU_VIEW_SCRIPT*/"


def _check_count(value: object, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, found {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name}: expected an integer {bound}, found {value}")
    return int(value)


def quantize(values: np.ndarray, decimals: int = DEFAULT_DECIMALS) -> tuple[np.ndarray, int]:
    """``values`` (any shape) as int16 counts of ``10**-d`` and ``d``: ``d = decimals``
    unless the largest magnitude needs fewer digits to fit in 16 bits. Rounding is
    half-to-even on the float64 value."""
    values = np.asarray(values, np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("values: expected finite numbers, found NaN or infinity in the trace")
    peak = float(np.abs(values).max()) if values.size else 0.0
    d = decimals
    while d > 0 and round(peak * 10**d) > INT16_MAX:
        d -= 1
    if round(peak * 10**d) > INT16_MAX:
        raise ValueError(f"values: magnitude {peak:.4g} too large to show (over {INT16_MAX})")
    return np.rint(values * 10**d).astype("<i2"), d


def span_scores(counts: np.ndarray, start: int, stop: int, window: int) -> np.ndarray:
    """LSTMVis's selection score of every cell for the span of steps ``start..stop-1``:
    mean inside the span minus mean over the ``window`` steps on each side of it (clipped
    to the text; no outside steps: the mean inside). ``counts (T, H)`` are the page's
    int16 counts; the result ``(H,)`` is in counts (divide by ``10**decimals``).

    The page computes the same numbers in the same float64 operations, so rankings agree
    exactly, ties broken by cell index."""
    counts = np.asarray(counts)
    T = counts.shape[0]
    if not 0 <= start < stop <= T:
        raise ValueError(f"start/stop: expected 0 <= start < stop <= {T}, found {start}, {stop}")
    _check_count(window, "window", 0)
    inside = counts[start:stop].astype(np.int64).sum(axis=0) / (stop - start)
    before = counts[max(0, start - window) : start].astype(np.int64)
    after = counts[stop : stop + window].astype(np.int64)
    n_out = before.shape[0] + after.shape[0]
    if n_out == 0:
        return inside
    return inside - (before.sum(axis=0) + after.sum(axis=0)) / n_out


def rank_cells(scores: np.ndarray, top: int) -> list[int]:
    """Cell indices of ``scores (H,)`` by decreasing score, ties by index, first ``top``."""
    order = sorted(range(len(scores)), key=lambda j: (-float(scores[j]), j))
    return order[:top]


def _encode(text: str, vocab: Vocabulary, max_tokens: int) -> tuple[list[str], np.ndarray, list]:
    """Tokens, ids ``(T,)`` and the positions of tokens outside the vocabulary: the model
    reads an unseen character or word as ``<unk>``, as ``predict`` and ``eval`` do, and the
    page marks it."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, found {type(text).__name__}")
    source = text[:max_tokens] if vocab.level == "char" else text
    tokens = vocab.tokenize(source)[:max_tokens]  # the run's own tokenizer
    if not tokens:
        raise ValueError("text: expected some text, found none (empty or only whitespace)")
    unknown = [t for t, token in enumerate(tokens) if token not in vocab.index]
    ids = np.array([vocab.index.get(token, vocab.index[UNK]) for token in tokens], np.int64)
    return tokens, ids, unknown


def _outputs(model: Module, output, vocab: Vocabulary, labels, steps: int) -> dict | None:
    """The model's top predictions at every step (language model: next token; tagger: tag)
    or, for one prediction per text (classifier), a one-line summary."""
    logits = np.asarray(output[0] if isinstance(output, tuple) else output, np.float64)
    is_encoder = hasattr(model, "encode")
    if not is_encoder:
        names, kind = [t if t != EOS else "⏎" for t in vocab.tokens], "next token"
    else:
        names, kind = list(labels) if labels is not None else None, "tag"
    K = logits.shape[-1]
    if names is None or len(names) != K:
        names = [f"class {k}" for k in range(K)]
    z = logits - logits.max(axis=-1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    if logits.ndim == 3 and logits.shape[0] == steps:
        per_step = prob[:, 0, :]
        top = np.argsort(-per_step, axis=1, kind="stable")[:, :TOP_PREDICTIONS]
        return {
            "kind": kind,
            "labels": names,
            "top": top.tolist(),
            "p": np.round(np.take_along_axis(per_step, top, 1), 3).tolist(),
        }
    if logits.ndim == 2:
        k = int(prob[0].argmax())
        return {"kind": "class", "summary": f"{names[k]} (p = {prob[0, k]:.3f})"}
    return None


def _check_page_size(tr, steps: int, max_tokens: int) -> None:
    """Refuse, before encoding, a page the browser could hardly open: each value costs
    two bytes, four thirds of that in base64."""
    per_step = sum(
        values.shape[2]
        for module, layer, direction in tr.keys()
        for values in tr.get(layer, direction, module).values.values()
    )
    size = steps * per_step * 8 // 3
    if size > MAX_PAGE_BYTES:
        fits = max(1, MAX_PAGE_BYTES * 3 // (8 * per_step))
        raise ValueError(
            f"max_tokens: {steps} tokens of this model make a page of about {size / 1e6:.0f} MB "
            f"(limit {MAX_PAGE_BYTES / 1e6:.0f} MB); expected at most {fits}, found {max_tokens}"
        )


def view_data(
    model: Module,
    vocab: Vocabulary,
    text: str,
    max_tokens: int = 1000,
    labels: Sequence[str] | None = None,
    title: str = "kioku view",
    window: int = 5,
) -> dict:
    """Trace ``model`` (a token model: language model, tagger or classifier) on the first
    ``max_tokens`` tokens of ``text`` and return the page's payload: ``tokens``, one
    ``groups`` entry per (module, layer, direction) with its cell's ``quantities`` (an
    LSTM's ``i f g o c h``, a GRU's ``r z n h``, an sLSTM's ``i f z o c n m h``: short name,
    label, colour kind and legend words, :func:`kioku.inspect.colours.quantity_rules`) and
    each as int16 counts ``(T, H)`` (``h``: ``(T, P)``) in base64 with its ``decimals``, the
    colour rules of :mod:`kioku.inspect.colours`, and the model's predictions (``labels``
    names a tagger's or classifier's classes)."""
    max_tokens = _check_count(max_tokens, "max_tokens", 1, MAX_VIEW_TOKENS)
    window = _check_count(window, "window", 1, 1000)
    check_word_token_model(model)
    tokens, ids, unknown = _encode(text, vocab, max_tokens)
    with model.eval_mode(), trace(model) as tr:  # dropout off: as the model predicts
        output = model(ids[:, None])
    _check_page_size(tr, len(tokens), max_tokens)
    groups = []
    modules = list(dict.fromkeys(module for module, _, _ in tr.keys()))
    keys = sorted(tr.keys(), key=lambda k: (modules.index(k[0]), k[1], k[2]))
    for module, layer, direction in keys:
        record = tr.get(layer, direction, module)
        values = {}
        for q in record.quantities:
            counts, decimals = quantize(record.get(q.short)[:, 0, :])
            values[q.short] = {
                "decimals": decimals,
                "data": base64.b64encode(counts.tobytes()).decode("ascii"),
            }
        groups.append(
            {
                "module": module,
                "layer": layer,
                "direction": direction,
                "label": f"layer {layer} {'reverse' if direction else 'forward'}"
                + (f" ({module})" if len(modules) > 1 else ""),
                "cell_type": record.cell_type,
                "size": int(record.get(record.quantities[0].short).shape[2]),
                "hidden_size": int(record.hidden.shape[2]),
                "quantities": colours.quantity_rules(record.quantities),
                "values": values,
            }
        )
    return {
        "title": title,
        "model": f"{type(model).__name__}, {model.num_parameters():,} parameters",
        "level": vocab.level,
        "tokens": tokens,
        "unknown": unknown,
        "window": window,
        "groups": groups,
        "outputs": _outputs(model, output, vocab, labels, len(tokens)),
        "colours": colours.page_rules(),  # the plots' colour rules, for view.js
    }


def decode_counts(group: dict, quantity: str, steps: int) -> np.ndarray:
    """The int16 counts ``(T, H)`` of one quantity of one payload group (for tests and
    tools that read a page back)."""
    raw = base64.b64decode(group["values"][quantity]["data"])
    return np.frombuffer(raw, "<i2").reshape(steps, -1)


def render_view(data: dict) -> str:
    """The HTML page for a payload of :func:`view_data`: ``view.html`` with ``view.css``,
    ``view.js`` and the payload put in its place."""
    files = resources.files(__package__)
    page = files.joinpath("view.html").read_text("utf-8")
    # "<" escaped so no token can close the script element; JSON.parse undoes it
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    parts = {
        _STYLE_MARK: files.joinpath("view.css").read_text("utf-8"),
        _SCRIPT_MARK: files.joinpath("view.js").read_text("utf-8"),
        _DATA_MARK: payload,  # last: the text itself may hold a marker
    }
    for mark, text in parts.items():
        if page.count(mark) != 1:
            raise RuntimeError(f"view.html: expected the marker {mark} once")
        page = page.replace(mark, text)
    return page


def write_view(
    model: Module,
    vocab: Vocabulary,
    text: str,
    out: str | os.PathLike,
    max_tokens: int = 1000,
    labels: Sequence[str] | None = None,
    title: str = "kioku view",
    window: int = 5,
) -> dict:
    """Write the interactive page for ``model`` on ``text`` to the file ``out``
    (atomically; nothing is written when an argument is refused). Returns a summary:
    ``path``, ``tokens``, ``groups``, ``unknown`` (tokens read as ``<unk>``), ``bytes``."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"out: expected a file path for the page, found the folder {out}")
    data = view_data(model, vocab, text, max_tokens, labels, title, window)
    page = render_view(data)
    write_text_atomic(out, page)
    return {
        "path": str(out),
        "tokens": len(data["tokens"]),
        "groups": [g["label"] for g in data["groups"]],
        "unknown": len(data["unknown"]),
        "bytes": len(page.encode("utf-8")),
    }
