"""An interactive view of a model's memory: one self-contained HTML page to explore.

:func:`write_view` runs a token model on a text under :func:`~kioku.inspect.trace` and
writes one HTML file (data as embedded JSON, JavaScript and CSS inline, no external URL,
a Content-Security-Policy that forbids loading anything) that works from ``file://``:
hover a token to see every gate and state of every cell of every layer and direction at
that step (an LSTM's i, f, g, o, c, h; a GRU's r, z, n, h; an sLSTM's i, f, z, o, c, n, m,
h); click a value to colour the text by that cell and see all its quantities over the text
in a strip; drag over a span of text to rank the cells that switch on inside it and those
that switch off (LSTMVis's selection, see :func:`span_scores`). A tagger's text is one
sentence per line, each read alone as ``kioku predict`` reads it; a tagger that reads
characters shows its word-level layers (:mod:`kioku.inspect.view_run`). A second text
puts two sentences side by side (:mod:`kioku.inspect.view_compare`); every word of the
page comes in English or Japanese (:mod:`kioku.inspect.view_text`). The page is
``view.html``, ``view.css`` and the scripts :data:`SCRIPTS` beside this module, joined
into one file.

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
from ..data.vocab import EOS, Vocabulary
from ..nn import Module
from . import colours
from .view_compare import compare_pairs
from .view_run import SegmentRun, check_model, is_tagger, read_segments, run_segments
from .view_text import check_lang, page_text, quantity_label

MAX_VIEW_TOKENS = 20000
MAX_PAGE_BYTES = 64_000_000  # past this a browser takes many seconds to open the page
DEFAULT_DECIMALS = 3
INT16_MAX = 32767
TOP_PREDICTIONS = 3
_DATA_MARK = "/*KIOKU_VIEW_DATA*/"
_STYLE_MARK = "/*KIOKU_VIEW_STYLE*/"
_SCRIPT_MARK = "/*KIOKU_VIEW_SCRIPT*/"
SCRIPTS = ("view.js", "view_rank.js", "view_strip.js", "view_compare.js")


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


def rank_cells(scores: np.ndarray, top: int, way: str = "on") -> list[int]:
    """Cell indices of ``scores (H,)``, first ``top``: ``way="on"`` by decreasing score
    (on inside the span, off around it), ``"off"`` by increasing score (off inside: a gate
    that closes there, a state that drops); ties by index, as the page ranks them."""
    if way not in ("on", "off"):
        raise ValueError(f"way: expected 'on' or 'off', found {way!r}")
    sign = -1.0 if way == "on" else 1.0
    order = sorted(range(len(scores)), key=lambda j: (sign * float(scores[j]), j))
    return order[:top]


def _outputs(run: SegmentRun, vocab: Vocabulary, labels, tagger: bool, text: dict) -> dict | None:
    """The model's top predictions at every step (language model: next token; tagger: tag)
    or, for one prediction per text (classifier), a one-line summary."""
    logits = run.logits
    if not tagger:
        names, kind = [t if t != EOS else "⏎" for t in vocab.tokens], text["next_token"]
    else:
        names, kind = list(labels) if labels is not None else None, text["tag"]
    K = logits.shape[-1]
    if names is None or len(names) != K:
        names = [f"class {k}" for k in range(K)]
    z = logits - logits.max(axis=-1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    if logits.ndim == 2 and logits.shape[0] == len(run.tokens):
        top = np.argsort(-prob, axis=1, kind="stable")[:, :TOP_PREDICTIONS]
        return {
            "kind": kind,
            "labels": names,
            "top": top.tolist(),
            "p": np.round(np.take_along_axis(prob, top, 1), 3).tolist(),
        }
    if logits.ndim == 1:
        k = int(prob.argmax())
        return {"kind": "class", "summary": f"{names[k]} (p = {prob[k]:.3f})"}
    return None


def _check_page_size(run: SegmentRun, max_tokens: int) -> None:
    """Refuse, before encoding, a page the browser could hardly open: each value costs
    two bytes, four thirds of that in base64."""
    per_step = sum(v.shape[1] for key in run.keys for v in run.values[key].values())
    steps = len(run.tokens)
    size = steps * per_step * 8 // 3
    if size > MAX_PAGE_BYTES:
        fits = max(1, MAX_PAGE_BYTES * 3 // (8 * per_step))
        raise ValueError(
            f"max_tokens: {steps} tokens of this model make a page of about {size / 1e6:.0f} MB "
            f"(limit {MAX_PAGE_BYTES / 1e6:.0f} MB); expected at most {fits}, found {max_tokens}"
        )


def _group(run: SegmentRun, key: tuple[str, int, int], several: bool, lang: str) -> dict:
    """One (module, layer, direction) of ``run`` as the page's group."""
    module, layer, direction = key
    text = page_text(lang)
    quantities = run.quantities[key]
    values = {}
    for q in quantities:
        counts, decimals = quantize(run.values[key][q.short])
        values[q.short] = {
            "decimals": decimals,
            "data": base64.b64encode(counts.tobytes()).decode("ascii"),
        }
    rules = colours.quantity_rules(quantities, lang)
    for rule, q in zip(rules, quantities):
        rule["label"] = quantity_label(q.name, q.label, lang)
    label = text["layer"].format(
        layer=layer, direction=text["reverse" if direction else "forward"]
    ) + (f" ({module})" if several else "")
    return {
        "module": module,
        "layer": layer,
        "direction": direction,
        "label": label,
        "cell_type": run.cell_types[key],
        "size": int(run.values[key][quantities[0].short].shape[1]),
        "hidden_size": int(run.values[key]["h"].shape[1]),
        "quantities": rules,
        "values": values,
    }


def view_data(
    model: Module,
    vocab: Vocabulary,
    text: str,
    max_tokens: int = 1000,
    labels: Sequence[str] | None = None,
    title: str = "kioku view",
    window: int = 5,
    *,
    lang: str = "en",
    char_vocab: Vocabulary | None = None,
    compare: str | None = None,
) -> dict:
    """Trace ``model`` (a token model: language model, tagger or classifier) on the first
    ``max_tokens`` tokens of ``text`` and return the page's payload: ``tokens``, one
    ``groups`` entry per (module, layer, direction) with its cell's ``quantities`` (an
    LSTM's ``i f g o c h``, a GRU's ``r z n h``, an sLSTM's ``i f z o c n m h``: short name,
    label, colour kind and legend words, :func:`kioku.inspect.colours.quantity_rules`) and
    each as int16 counts ``(T, H)`` (``h``: ``(T, P)``) in base64 with its ``decimals``, the
    colour rules of :mod:`kioku.inspect.colours`, the model's predictions (``labels``
    names a tagger's or classifier's classes), ``starts`` (each segment's first token: a
    tagger reads one sentence per line, each alone; see :mod:`kioku.inspect.view_run`) and
    the page's words in ``lang`` (``"en"`` or ``"ja"``).

    ``char_vocab``: a tagger that reads characters needs its run's character vocabulary
    (only its word-level layers are shown). ``compare``: a second text whose segments
    (sentence k: line k) are read after ``text``'s and compared with them step by step
    (``compare`` in the payload, :func:`kioku.inspect.view_compare.compare_pairs`)."""
    max_tokens = _check_count(max_tokens, "max_tokens", 1, MAX_VIEW_TOKENS)
    window = _check_count(window, "window", 1, 1000)
    lang = check_lang(lang)
    check_model(model, char_vocab)
    segments = read_segments(model, vocab, text, max_tokens)
    others = [] if compare is None else read_segments(model, vocab, compare, max_tokens, "compare")
    if compare is not None and len(others) != len(segments):
        raise ValueError(
            f"compare: expected as many sentences as text ({len(segments)}, line k compared "
            f"with line k), found {len(others)}"
        )
    run = run_segments(model, vocab, segments + others, char_vocab, compare is not None)
    _check_page_size(run, max_tokens)
    words = page_text(lang)
    modules = list(dict.fromkeys(module for module, _, _ in run.keys))
    keys = sorted(run.keys, key=lambda k: (modules.index(k[0]), k[1], k[2]))
    char_encoder = getattr(model, "char_encoder", None)
    data = {
        "title": title,
        "lang": lang,
        "text": words,
        "model": words["model"].format(
            name=type(model).__name__, count=f"{model.num_parameters():,}"
        ),
        "level": vocab.level,
        "tagger": is_tagger(model),
        "tokens": run.tokens,
        "starts": run.starts,
        "unknown": run.unknown,
        "window": window,
        "groups": [_group(run, key, len(modules) > 1, lang) for key in keys],
        "outputs": _outputs(run, vocab, labels, is_tagger(model), words),
        "colours": colours.page_rules(lang),  # the plots' colour rules, for view.js
        "char_encoder": None if char_encoder is None else int(char_encoder.hidden_size),
        "compare": None,
        "diagram": cell_diagram(model, lang),
    }
    if compare is not None:
        data["compare"] = compare_pairs(run, keys, len(segments))
    return data


def decode_counts(group: dict, quantity: str, steps: int) -> np.ndarray:
    """The int16 counts ``(T, H)`` of one quantity of one payload group (for tests and
    tools that read a page back)."""
    raw = base64.b64decode(group["values"][quantity]["data"])
    return np.frombuffer(raw, "<i2").reshape(steps, -1)


def cell_diagram(model: Module, lang: str) -> str | None:
    """The drawing of one step of ``model``'s cell (LSTM, GRU or sLSTM) with labels in
    ``lang``, as a data URI the page shows in its "how to read" note; ``None`` without
    matplotlib (the note then names the diagrams in docs/learn.md)."""
    from .diagrams import svg_data_uri

    cell = getattr(model, "cell", "lstm")
    return svg_data_uri(f"{cell}_step", lang) if cell in ("lstm", "gru", "slstm") else None


def view_script() -> str:
    """The page's script: :data:`SCRIPTS` beside this module, joined in order (they share
    one scope: the core ``view.js`` first, then the strip and the comparison)."""
    files = resources.files(__package__)
    return "\n".join(files.joinpath(name).read_text("utf-8") for name in SCRIPTS)


def render_view(data: dict) -> str:
    """The HTML page for a payload of :func:`view_data`: ``view.html`` with ``view.css``,
    the scripts (:func:`view_script`) and the payload put in its place, in the payload's
    language."""
    files = resources.files(__package__)
    page = files.joinpath("view.html").read_text("utf-8")
    page = page.replace('<html lang="en">', f'<html lang="{check_lang(data.get("lang", "en"))}">')
    # "<" escaped so no token can close the script element; JSON.parse undoes it
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    parts = {
        _STYLE_MARK: files.joinpath("view.css").read_text("utf-8"),
        _SCRIPT_MARK: view_script(),
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
    *,
    lang: str = "en",
    char_vocab: Vocabulary | None = None,
    compare: str | None = None,
) -> dict:
    """Write the interactive page for ``model`` on ``text`` to the file ``out``
    (atomically; nothing is written when an argument is refused); the keywords as in
    :func:`view_data`. Returns a summary: ``path``, ``tokens``, ``sentences`` (segments
    read alone), ``groups``, ``unknown`` (tokens read as ``<unk>``), ``bytes``, and
    ``first_differences`` (with ``compare``: per sentence pair the first word that
    differs, ``None`` for the same sentence)."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"out: expected a file path for the page, found the folder {out}")
    data = view_data(
        model, vocab, text, max_tokens, labels, title, window,
        lang=lang, char_vocab=char_vocab, compare=compare,
    )  # fmt: skip
    page = render_view(data)
    write_text_atomic(out, page)
    pairs = (data["compare"] or {}).get("pairs", [])
    return {
        "path": str(out),
        "tokens": len(data["tokens"]),
        "sentences": len(data["starts"]),
        "groups": [g["label"] for g in data["groups"]],
        "unknown": len(data["unknown"]),
        "bytes": len(page.encode("utf-8")),
        "first_differences": [p["first"] for p in pairs],
        "char_encoder_left_out": data["char_encoder"] is not None,
    }
