"""The ``kioku inspect`` report: what a trained token model's gates and cells do on a text.

:func:`inspect_model` runs the model on the text under :func:`~kioku.inspect.trace`, and
writes ``report.html`` (self-contained: figures embedded as PNG), each figure as PNG and
SVG, and ``summary.json`` (saturation and cell-search numbers).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.atomic import write_bytes_atomic, write_json_atomic
from ..data.vocab import UNK, Vocabulary
from ..nn import Module
from ..nn.loss import softmax_cross_entropy
from . import plots
from .cells import cell_search
from .features import FEATURES, get_feature
from .gradients import record_gradients
from .modules import check_word_token_model
from .report import HtmlReport, activation_html
from .saturation import gate_saturation
from .trace import trace


def encode_text(text: str, vocab: Vocabulary, source: str = "text") -> tuple[list[str], np.ndarray]:
    """Tokens and ids ``(T,)`` of ``text``; a token outside the vocabulary reads as
    ``<unk>`` (id 0), as in ``predict`` and ``eval`` (:func:`unknown_tokens` counts them)."""
    tokens = vocab.tokenize(text)  # the run's own tokenizer
    if not tokens:
        raise ValueError(f"{source}: expected some text, found an empty file")
    unk = vocab.index[UNK]
    return tokens, np.array([vocab.index.get(t, unk) for t in tokens], np.int64)


def unknown_tokens(tokens: Sequence[str], vocab: Vocabulary) -> dict[str, int]:
    """How often each token of ``tokens`` outside ``vocab`` occurs, in order of first use."""
    counts: dict[str, int] = {}
    for token in tokens:
        if token not in vocab.index:
            counts[token] = counts.get(token, 0) + 1
    return counts


def _run(model: Module, ids: np.ndarray) -> None:
    """One forward of a token model on ``ids (T,)`` as a batch of one."""
    check_word_token_model(model)
    x = ids[:, None]
    if hasattr(model, "encode"):
        model.encode(x)
    else:
        model(x)


def _gradient_curves(model: Module, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Norms of dL/dh_t and dL/dc_t per layer for a loss on the last step only: the
    language model's cross-entropy of the next token, or the sum of the encoder's last
    outputs for the other models."""
    x = ids[:-1, None] if not hasattr(model, "encode") else ids[:, None]
    with record_gradients(model) as records:
        if hasattr(model, "encode"):
            y = model.encode(x)
            dy = np.zeros_like(y)
            dy[-1] = 1
            model.encode_backward(dy)
        else:
            logits, _ = model(x)
            dlogits = np.zeros_like(logits)
            _, dlast = softmax_cross_entropy(logits[-1:], ids[-1:, None])
            dlogits[-1:] = dlast
            model.backward(dlogits)
    model.zero_grad()
    curves = {}
    for rec in records:
        where = f"layer {rec.layer}" + (" reverse" if rec.direction else "")
        curves[f"{where} ‖dL/dh_t‖"] = rec.dh_norm
        if rec.dc is not None:
            curves[f"{where} ‖dL/dc_t‖"] = rec.dc_norm
    return curves


def inspect_model(
    model: Module,
    vocab: Vocabulary,
    text: str,
    out: str | os.PathLike,
    features: Sequence[str] | None = None,
    max_tokens: int = 2000,
    window: int = 80,
    cells: int = 16,
    title: str = "kioku inspect",
    svg: bool = False,
) -> dict:
    """Trace ``model`` on ``text`` (at most ``max_tokens`` tokens) and write the report
    into folder ``out`` (figures as PNG, and SVG with ``svg``). ``features`` are built-in
    feature names for cell search (default: all of them for a character model, none for
    a word model). Returns the summary (``unknown``: how many tokens, outside the
    vocabulary, were read as ``<unk>``; ``unknown_tokens``: each with its count)."""
    check_word_token_model(model)  # before anything is written
    if features is not None:
        for name in features:
            get_feature(name)  # unknown names fail before any work
        if features and vocab.level != "char":
            raise ValueError(
                "features: the built-in features are per character; this model's vocabulary "
                f"is {vocab.level}-level"
            )
    features = (
        list(FEATURES) if features is None and vocab.level == "char" else list(features or [])
    )
    tokens, ids = encode_text(text[: max_tokens * 50], vocab)
    tokens, ids = tokens[:max_tokens], ids[:max_tokens]
    shown_text = "".join(tokens) if vocab.level == "char" else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    with trace(model) as tr:
        _run(model, ids)
    unknown = unknown_tokens(tokens, vocab)
    report = HtmlReport(title)
    report.paragraph(
        f"{type(model).__name__} with {model.num_parameters()} parameters, "
        f"{vocab.level}-level vocabulary of {len(vocab)}; {len(tokens)} tokens traced"
        + (
            f", {sum(unknown.values())} of them outside the vocabulary, read as <unk>: "
            + ", ".join(repr(t) for t in list(unknown)[:10])
            + ("" if len(unknown) <= 10 else f" and {len(unknown) - 10} more")
            if unknown
            else ""
        )
        + "."
    )
    written: list[str] = []

    def show(name: str, fig, caption: str | None = None) -> None:
        """Render once: ``name.png`` (and ``.svg``), embedded in the page with a caption."""
        png = plots.figure_bytes(fig, "png")
        write_bytes_atomic(out / f"{name}.png", png)
        written.append(f"{name}.png")
        if svg:
            plots.save_figure(fig, out / f"{name}.svg")
            written.append(f"{name}.svg")
        if caption is not None:
            report.png(png, caption)

    summary: dict = {
        "tokens": len(tokens),
        "unknown": sum(unknown.values()),
        "unknown_tokens": unknown,
        "saturation": [],
        "cells": {},
    }

    report.heading("Gates and cells along the text")
    span = min(window, len(tokens))
    for module, layer, direction in tr.keys():
        rec = tr.get(layer, direction, module)
        memory = "c" if "c" in rec.values else "h"  # a GRU's memory is its hidden state
        values = rec.get(memory)[:span, 0, :]
        chosen = np.argsort(-values.std(axis=0))[:cells]  # the most active cells
        name = f"gates_l{layer}" + ("_reverse" if direction else "")
        fig = plots.gate_heatmap(
            rec.window(span),
            tokens[:span],
            cells=sorted(chosen.tolist()),
            title=f"layer {layer}{' reverse' if direction else ''}: first {span} tokens, "
            f"{len(chosen)} most active cells",
        )
        show(
            name,
            fig,
            f"{_shown(rec)}: layer {layer}{' (reverse)' if direction else ''}.",
        )

    report.heading("Gate saturation (Karpathy et al. 2015)")
    saturation = gate_saturation(tr)
    summary["saturation"] = [s.summary() for s in saturation]
    show(
        "saturation",
        plots.saturation_scatter(saturation),
        "One point per cell: fraction of steps < 0.1 against > 0.9.",
    )
    report.table(
        ["layer", "direction", "gate", "fraction < 0.1", "fraction > 0.9"],
        [
            [s.layer, s.direction, s.gate, float(s.low.mean()), float(s.high.mean())]
            for s in saturation
        ],
    )

    if features:
        report.heading("Cell search: cells that follow a feature of the text")
        for name in features:
            matches = cell_search(tr, name, text=shown_text, top=5)
            summary["cells"][name] = [m.to_dict() for m in matches]
            report.heading(name.replace("_", " "), 3)
            report.table(
                ["layer", "direction", "cell", "correlation"],
                [[m.layer, m.direction, m.cell, m.correlation] for m in matches],
            )
            best = matches[0]
            rec = tr.joined(best.layer, best.direction, best.module)
            unit = rec.get(best.quantity)[:, 0, best.cell]
            report.paragraph(
                f"Cell {best.cell} of layer {best.layer} ({best.quantity}, red > 0 > blue):"
            )
            report.raw(activation_html(tokens[:600], unit[:600]))
            if vocab.level == "char":
                fig = plots.activation_text(
                    tokens,
                    unit,
                    f"{name}: layer {best.layer} cell {best.cell} (r = {best.correlation:.2f})",
                )
                show(f"cell_{name}", fig)  # a file only: the page has the HTML version

    report.heading("Gradient flow")
    flow_ids = ids[: min(len(ids), 200)]
    if flow_ids.size >= 3:
        curves = _gradient_curves(model, flow_ids)
        summary["gradient_flow"] = {k: v.tolist() for k, v in curves.items()}
        fig = plots.gradient_flow_plot(
            curves,
            f"Gradient of a loss at step {len(flow_ids) - 1} reaching each step",
            "gradient norm (mean over batch)",
        )
        show("gradient_flow", fig, "Norm of dL/dh_t and dL/dc_t (log scale).")
    else:
        report.paragraph("Text too short for a gradient-flow curve (fewer than 3 tokens).")

    summary["figures"] = written
    write_json_atomic(out / "summary.json", summary)
    report.write(out / "report.html")
    return summary


def _shown(rec) -> str:
    """The heatmap's quantities in words, by the cell's own names: "Input gate, forget
    gate, candidate, output gate and cell" for an LSTM."""
    labels = [q.label for q in rec.quantities if q.short != "h"] or ["hidden"]
    text = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    return text[0].upper() + text[1:]
