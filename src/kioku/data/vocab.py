"""Character and word vocabularies: token <-> id, with ``<unk>`` and ``<eos>``.

Ids 0 and 1 are always ``<unk>`` and ``<eos>``; the other tokens follow by decreasing
count, ties broken by the token itself, so building twice from the same text gives the
same ids. A character vocabulary splits text into characters (newlines included, no
``<eos>`` inserted); a word vocabulary splits each line into words with its tokenizer
(:mod:`kioku.data.tokenize`: ``"ud"``, or ``"whitespace"``, what a vocabulary saved
without the field used) and ends it with ``<eos>``, the convention of the Penn Treebank
language-modelling setup.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .atomic import read_json, write_json_atomic
from .tokenize import TOKENIZERS, tokenize_words

UNK = "<unk>"
EOS = "<eos>"
SPECIALS = (UNK, EOS)
LEVELS = ("char", "word")


def tokenize(text: str, level: str, tokenizer: str = "whitespace") -> list[str]:
    """Split ``text`` into characters (``level="char"``) or words (by ``tokenizer``)
    with ``<eos>`` per line."""
    if level == "char":
        return list(text)
    if level == "word":
        tokens: list[str] = []
        for line in text.splitlines():
            words = tokenize_words(line, tokenizer)
            if words:
                tokens.extend(words)
                tokens.append(EOS)
        return tokens
    raise ValueError(f"level: expected one of {LEVELS}, found {level!r}")


class Vocabulary:
    """A fixed mapping between tokens and integer ids (``<unk>`` = 0, ``<eos>`` = 1);
    ``tokenizer`` splits a word vocabulary's raw text (see :mod:`kioku.data.tokenize`)."""

    def __init__(
        self, tokens: Sequence[str], level: str = "char", tokenizer: str = "whitespace"
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"level: expected one of {LEVELS}, found {level!r}")
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer: expected one of {list(TOKENIZERS)}, found {tokenizer!r}")
        tokens = list(tokens)
        if tokens[: len(SPECIALS)] != list(SPECIALS):
            raise ValueError(f"tokens: expected to start with {list(SPECIALS)}, found {tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens: expected unique tokens, found duplicates")
        self.level = level
        self.tokenizer = tokenizer
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}

    @classmethod
    def build(
        cls,
        texts: str | Iterable[str],
        level: str = "char",
        min_count: int = 1,
        max_size: int | None = None,
        tokenizer: str = "whitespace",
    ) -> Vocabulary:
        """Count the tokens of ``texts`` (split by ``tokenizer``) and keep those seen
        ``min_count`` times or more.

        ``max_size`` caps the vocabulary (specials included); rarer tokens map to ``<unk>``.
        """
        if isinstance(texts, str):
            texts = [texts]
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text, level, tokenizer))
        for special in SPECIALS:
            counts.pop(special, None)
        kept = sorted(
            (t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            kept = kept[: max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + kept, level, tokenizer)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self.level == other.level
            and self.tokenizer == other.tokenizer
            and self.tokens == other.tokens
        )

    def __repr__(self) -> str:
        return f"Vocabulary(level={self.level!r}, size={len(self)})"

    @property
    def unk_id(self) -> int:
        return 0

    @property
    def eos_id(self) -> int:
        return 1

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` as this vocabulary reads it (``<eos>`` per line for words)."""
        return tokenize(text, self.level, self.tokenizer)

    def words(self, line: str) -> list[str]:
        """The words of one line of raw text by this vocabulary's tokenizer (no ``<eos>``)."""
        return tokenize_words(line, self.tokenizer)

    def encode(self, text: str) -> np.ndarray:
        """``(N,)`` int64 ids of the tokens of ``text``; unknown tokens become ``<unk>``."""
        get = self.index.get
        return np.fromiter((get(token, 0) for token in self.tokenize(text)), dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``(N,)`` ids: characters joined, or words joined by spaces (``<eos>`` ->
        newline)."""
        tokens = [self.tokens[int(i)] for i in ids]
        if self.level == "char":
            return "".join("" if t == EOS else t for t in tokens)
        text = " ".join(tokens)
        return text.replace(f" {EOS} ", "\n").replace(f" {EOS}", "\n").replace(EOS, "\n")

    def to_dict(self) -> dict:
        """JSON-able form: ``{"level": ..., "tokens": [...], "tokenizer": ...}`` (the
        tokenizer left out when it is ``whitespace``, as older files hold it)."""
        data = {"level": self.level, "tokens": list(self.tokens)}
        if self.tokenizer != "whitespace":
            data["tokenizer"] = self.tokenizer
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "vocabulary") -> Vocabulary:
        """Inverse of :meth:`to_dict`; errors name ``source`` and the bad field."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, found {type(data).__name__}")
        for field, kind in (("level", str), ("tokens", list)):
            if not isinstance(data.get(field), kind):
                found = type(data.get(field)).__name__ if field in data else "nothing"
                raise ValueError(
                    f"{source}: field {field!r}: expected {kind.__name__}, found {found}"
                )
        try:
            return cls(data["tokens"], data["level"], data.get("tokenizer", "whitespace"))
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON, atomically."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`."""
        return cls.from_dict(read_json(path), source=str(Path(path)))

    def check_same(self, other: Vocabulary, source: str) -> None:
        """Raise ``ValueError`` naming ``source`` and the first differing field/token."""
        if self.level != other.level:
            raise ValueError(
                f"{source}: vocabulary field 'level': expected {other.level!r}, "
                f"found {self.level!r}"
            )
        if self.tokenizer != other.tokenizer:
            raise ValueError(
                f"{source}: vocabulary field 'tokenizer': expected {other.tokenizer!r}, "
                f"found {self.tokenizer!r}"
            )
        if len(self) != len(other):
            raise ValueError(
                f"{source}: vocabulary field 'tokens': expected {len(other)} tokens, "
                f"found {len(self)}"
            )
        for i, (mine, theirs) in enumerate(zip(self.tokens, other.tokens)):
            if mine != theirs:
                raise ValueError(
                    f"{source}: vocabulary field 'tokens[{i}]': expected {theirs!r}, found {mine!r}"
                )
