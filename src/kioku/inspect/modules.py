"""Finding the recurrent layers inside any model (a walk over a module's children), and
the check that a model is one the text reports can run."""

from __future__ import annotations

from collections.abc import Iterator

from ..nn import GRU, LSTM, RNN, SLSTM, Module


def named_modules(model: Module, prefix: str = "") -> Iterator[tuple[str, Module]]:
    """Yield ``(dotted name, module)`` for ``model`` (name ``""``) and every descendant."""
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a kioku.nn.Module, found {type(model).__name__}")
    yield prefix.rstrip("."), model
    for name, child in model._children.items():
        yield from named_modules(child, f"{prefix}{name}.")


def recurrent_layers(
    model: Module, kinds: tuple[type, ...] = (LSTM, RNN, GRU, SLSTM)
) -> list[tuple[str, Module]]:
    """``(name, layer)`` of every recurrent layer of ``kinds`` (by default LSTM and its
    variants, RNN, GRU, SLSTM) in ``model``, in walk order."""
    return [(name, m) for name, m in named_modules(model) if isinstance(m, kinds)]


def check_word_token_model(model: Module) -> None:
    """``ValueError`` naming ``model`` unless it reads token ids (a language model, tagger
    or classifier built with ``vocab_size``) and no characters: what the reports that run
    a model on a text (:func:`~kioku.inspect.inspect_model`, the view) can feed it."""
    if getattr(model, "embedding", None) is None:
        raise ValueError(
            f"model: expected a model that reads token ids (LanguageModel, SequenceTagger, "
            f"SequenceClassifier), found {type(model).__name__}"
        )
    if getattr(model, "char_encoder", None) is not None:
        raise ValueError(
            "model: expected a word-only model, found a tagger that reads characters (its "
            "character BiLSTM is not traced here yet); train with --char-embed 0 for a "
            "word-only tagger"
        )
