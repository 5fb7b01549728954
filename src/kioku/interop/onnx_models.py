"""ONNX export of the kioku models built on the LSTM: ``LanguageModel`` (token ids ->
next-token logits, with its carried state) and ``SequenceTagger`` (one label per token).

Embedding lookups become ``Gather``, the output layers ``MatMul`` + ``Add``, the LSTM
stack one ``LSTM`` node per layer (see :func:`kioku.interop.onnx_io.add_lstm_stack`).
Dropout is an identity at inference and is left out.
"""

from __future__ import annotations

import numpy as np

from .onnx_graph import OnnxGraphBuilder
from .onnx_io import add_lstm_stack


def _linear(graph: OnnxGraphBuilder, linear, x: str, name: str) -> str:
    weight_t = graph.constant(f"{name}_weight_t", np.ascontiguousarray(linear.params["weight"].T))
    out = name if "bias" not in linear.params else f"{name}_matmul"
    graph.node("MatMul", [x, weight_t], [out], name=out)
    if "bias" in linear.params:
        bias = graph.constant(f"{name}_bias", linear.params["bias"])
        graph.node("Add", [out, bias], [name], name=name)
    return name


def _embed(graph: OnnxGraphBuilder, embedding, ids: str, name: str) -> str:
    table = graph.constant(f"{name}_weight", embedding.params["weight"])
    graph.node("Gather", [table, ids], [name], name=name, axis=0)
    return name


def model_graph(model: object, sequence_lens: bool, initial_state: bool) -> OnnxGraphBuilder:
    """The graph of a ``LanguageModel`` or ``SequenceTagger``.

    ``LanguageModel``: inputs ``tokens (T, B)`` int64 (and ``h0 (L, B, H)``, ``c0`` with
    ``initial_state``), outputs ``logits (T, B, V)``, ``h_n``, ``c_n``.
    ``SequenceTagger``: inputs ``inputs`` (``(T, B)`` int64 ids, or ``(T, B, I)``
    features) and ``sequence_lens (B,)`` int32 when asked; output ``logits (T, B, K)``.
    """
    from ..models import LanguageModel, SequenceTagger

    cell = getattr(model, "cell", "lstm")
    if isinstance(model, (LanguageModel, SequenceTagger)) and cell != "lstm":
        layer = (
            "export its kioku.nn.GRU layer with to_onnx_gru"
            if cell == "gru"
            else "ONNX has no operator for this cell"
        )
        raise TypeError(
            f"model: ONNX export of a whole model expected cell 'lstm', found cell {cell!r} "
            f"({layer})"
        )
    if getattr(model, "char_encoder", None) is not None:
        raise TypeError(
            "model: ONNX export expected a word-only tagger, found one with a character "
            "encoder (char_vocab_size set); train with --char-embed 0 to export"
        )
    if isinstance(model, LanguageModel):
        lstm = model.lstm
        L, H = lstm.num_layers * lstm.num_directions, lstm.hidden_size
        graph = OnnxGraphBuilder("kioku_language_model", model.dtype)
        tokens = graph.input("tokens", ["time", "batch"], np.int64)
        state = None
        if initial_state:
            state = (graph.input("h0", [L, "batch", H]), graph.input("c0", [L, "batch", H]))
        x = _embed(graph, model.embedding, tokens, "embedding")
        y, h_n, c_n = add_lstm_stack(graph, lstm, x, None, state)
        logits = _linear(graph, model.decoder, y, "decoder")
        graph.output(logits, "logits", ["time", "batch", model.vocab_size])
        graph.output(h_n, "h_n", [L, "batch", H])
        graph.output(c_n, "c_n", [L, "batch", H])
        return graph
    if isinstance(model, SequenceTagger):
        graph = OnnxGraphBuilder("kioku_sequence_tagger", model.dtype)
        if model.embedding is not None:
            x = _embed(
                graph,
                model.embedding,
                graph.input("inputs", ["time", "batch"], np.int64),
                "embedding",
            )
        else:
            x = graph.input("inputs", ["time", "batch", model.lstm.input_size])
        lens = graph.input("sequence_lens", ["batch"], np.int32) if sequence_lens else None
        y, _, _ = add_lstm_stack(graph, model.lstm, x, lens)
        logits = _linear(graph, model.tagger, y, "tagger")
        graph.output(logits, "logits", ["time", "batch", model.tagger.out_features])
        return graph
    raise TypeError(
        "model: expected kioku.nn.LSTM, kioku.models.LanguageModel or SequenceTagger, "
        f"found {type(model).__name__}"
    )
