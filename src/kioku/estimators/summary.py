"""Keras's ``model.summary()`` for kioku's models: each layer, its output shape, its
parameters. Shapes are kioku's, time-major: ``T`` the steps, ``B`` the batch."""

from __future__ import annotations

from ..nn.module import Module

_POOLED = ("SequenceClassifier", "Forecaster")  # their output layer reads one vector each


def _own_count(module: Module) -> int:
    return sum(p.size for _, p, _ in module.named_parameters())


def _output_shape(model: Module, name: str, layer: Module, previous: str) -> str:
    """The shape ``layer`` gives, from its sizes (``previous``: the shape before it)."""
    kind = type(layer).__name__
    if kind == "Embedding":
        return f"(T, B, {layer.embedding_dim})"
    if kind == "Dropout":
        return previous
    if hasattr(layer, "num_directions") and hasattr(layer, "hidden_size"):
        width = getattr(layer, "proj_size", 0) or layer.hidden_size
        return f"(T, B, {layer.num_directions * width})"
    if kind == "CharEncoder":
        return f"(T, B, {layer.output_size})"
    if kind == "Linear":
        if type(model).__name__ in _POOLED:
            horizon = getattr(model, "horizon", None)
            if type(model).__name__ == "Forecaster" and horizon:
                return f"(B, {horizon}, {layer.out_features // horizon})"
            return f"(B, {layer.out_features})"
        return f"(T, B, {layer.out_features})"
    return "?"


def summary_lines(model: Module, title: str = "") -> list[str]:
    """The lines of a summary of ``model``: one row per layer (name, type, output shape,
    parameters), then the total and trainable counts (tied parameters counted once)."""
    rows = [("layer (type)", "output shape", "params")]
    width = model.config().get("input_size") if hasattr(model, "config") else None
    previous = f"(T, B, {width or '?'})"  # float features: their count; ids: no width
    for name, layer in model._children.items():
        shape = _output_shape(model, name, layer, previous)
        if type(layer).__name__ != "CharEncoder":  # it reads the words' characters apart
            previous = shape
        rows.append((f"{name} ({type(layer).__name__})", shape, f"{_own_count(layer):,}"))
    own = sum(p.size for p in model.params.values())
    if own:
        rows.append(("(own parameters)", "", f"{own:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    rule = "-" * (sum(widths) + 4)
    head = f'Model: "{type(model).__name__}"' + (f" ({title})" if title else "")
    lines = [head, rule]
    for i, row in enumerate(rows):
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")
        if i == 0:
            lines.append(rule)
    total = model.num_parameters()
    lines += [rule, f"Total params: {total:,}", f"Trainable params: {total:,}", rule]
    return lines
