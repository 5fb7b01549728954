"""The tiny CoNLL-U treebanks the tests and the checkpoint fixtures write."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def conllu_text(sentences: Iterable[Sequence[tuple[str, str]]]) -> str:
    """CoNLL-U for ``sentences``, each a sequence of ``(word, tag)``: a ``sent_id``
    comment, one row per token (the word as its own lemma, every head the root) and a
    blank line after each sentence."""
    rows = []
    for s, sentence in enumerate(sentences):
        rows.append(f"# sent_id = {s}")
        for i, (word, tag) in enumerate(sentence, 1):
            rows.append(f"{i}\t{word}\t{word}\t{tag}\t_\t_\t0\tdep\t_\t_")
        rows.append("")
    return "\n".join(rows) + "\n"
