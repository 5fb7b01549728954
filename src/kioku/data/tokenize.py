"""Splitting plain text into words: the one tokenizer kioku uses for raw text.

Two tokenizers, recorded by name in a run's vocabulary so that ``predict``, ``eval``,
``view``, ``inspect`` and ``kioku.load(...).predict`` read text as training did:

- ``"whitespace"``: words are what ``str.split`` gives (text already tokenized, like the
  Penn Treebank; what every run before the tokenizer existed used).
- ``"ud"``: the conventions of Universal Dependencies English (EWT, GUM):

  * punctuation apart: ``eat.`` -> ``eat`` ``.``; ``(yes)`` -> ``(`` ``yes`` ``)``;
  * contractions split off their clitic: ``don't`` -> ``do`` ``n't``, ``can't`` ->
    ``ca`` ``n't``, ``won't`` -> ``wo`` ``n't``, ``I'm`` -> ``I`` ``'m``, ``it's`` ->
    ``it`` ``'s`` (also ``'re``, ``'ve``, ``'ll``, ``'d``; ``’`` reads as ``'``);
  * kept whole: numbers (``3.5``, ``1,000``, ``12:30``, ``1/2``), abbreviations
    (``U.S.``, ``e.g.``, ``Mr.``, and a word whose period is followed by a lower-case
    word: ``mr. smith``), URLs and e-mail addresses, words joined by ``-``, ``&`` or
    an inner apostrophe that is no clitic (``well-known``, ``AT&T``, ``o'clock``),
    markers in angle brackets (``<unk>``), runs of the same punctuation (``...``,
    ``--``, ``!!``).

On text that is tokenized already (one space between tokens, clitics apart, as the
Penn Treebank is), ``"ud"`` gives the tokens ``"whitespace"`` gives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

TOKENIZERS = ("ud", "whitespace")
"""The tokenizers by name: the documented one (``ud``) and plain whitespace."""

# abbreviations that end in a period and often precede a capital
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc inc ltd co corp no vol fig jan feb mar apr jun jul "
    "aug sep sept oct nov dec gen col lt sgt rep sen gov rev dept est approx messrs bros "
    "ala ariz ark calif colo conn del fla ga ill ind kan ky la md mass mich minn miss mo "
    "mont neb nev okla ore pa penn tenn tex va vt wash wis wyo".split()
)

_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://\S+|www\.\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)$", re.I)
_MARKER = re.compile(r"^<[^<>\s]+>$")
_TRAILING = ".,;:!?)]}\"'"
_CLITIC = re.compile(r"^(n't|'s|'m|'d|'ll|'re|'ve)$", re.I)
_NUMBER = r"(?>[-+]?\d+(?:[.,:/]\d+)*)(?![^\W_]|[-&'/]\w|\\/)"  # not 24-hour
_INITIALS = r"(?:[^\W\d_]\.)+[^\W\d_]\.?"  # U.S., e.g., n.v., a.m
# joined by - & / ' (PTB writes \/), digits by . , : (190.58-point), currencies (us$)
_WORD = r"[^\W_](?:\w|(?:[-&'/]|\\/)(?=[^\W_])|(?<=\d)[.,:](?=\d))*(?:(?<=[^\W\d_])\$)?"
_PIECE = re.compile(
    rf"'\d0s\b|(?:\\\*)+|{_NUMBER}|{_INITIALS}|{_WORD}|(n't|'(?:s|m|d|ll|re|ve))\b|(\S)\2*", re.I
)
_SPLIT_CLITIC = re.compile(r"^(.+?)(n't|'s|'m|'d|'ll|'re|'ve)$", re.I)


def tokenize_words(text: str, tokenizer: str = "ud") -> list[str]:
    """The words of ``text`` (one line or many; line ends are not tokens) by
    ``tokenizer`` (``"ud"`` or ``"whitespace"``, see the module docstring)."""
    if tokenizer == "whitespace":
        return text.split()
    if tokenizer != "ud":
        raise ValueError(f"tokenizer: expected one of {list(TOKENIZERS)}, found {tokenizer!r}")
    chunks = text.replace("\u2019", "'").split()
    words: list[str] = []
    for i, chunk in enumerate(chunks):
        if chunk.isalnum():  # most words: nothing to split
            words.append(chunk)
            continue
        following = chunks[i + 1] if i + 1 < len(chunks) else ""
        words.extend(_chunk_words(chunk, following))
    return words


def sentence_words(
    sentences: Iterable[Any], tokenize: Callable[[str], list[str]], name: str = "sentences"
) -> list[list[str]]:
    """Each of ``sentences`` as its words: a ``str`` split by ``tokenize``, a list of words
    (``str``) as it is. ``TypeError`` for anything else and ``ValueError`` for a sentence
    without words, each naming ``name[i]``."""
    words = []
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, str):
            words.append(tokenize(sentence))
        elif isinstance(sentence, Sequence) and all(isinstance(w, str) for w in sentence):
            words.append(list(sentence))
        else:
            raise TypeError(
                f"{name}[{i}]: expected a str or a list of words (str), "
                f"found {type(sentence).__name__}"
            )
        if not words[-1]:
            raise ValueError(f"{name}[{i}]: expected at least one word, found none")
    return words


def _chunk_words(chunk: str, following: str) -> list[str]:
    """The words of one whitespace-separated ``chunk``; ``following`` (the next chunk)
    tells an abbreviation's period from a sentence's end."""
    if _MARKER.match(chunk) or _CLITIC.match(chunk):
        return [chunk]
    core, tail = chunk, ""
    while core and core[-1] in _TRAILING and not _keeps_period(core, following, tail):
        core, tail = core[:-1], core[-1] + tail
    if _URL.match(core):
        return [core, *_punctuation(tail)]
    if re.fullmatch(_INITIALS, core) or _compound(core):
        return [core, *_punctuation(tail)]
    kept = core.endswith(".")  # the loop above kept an abbreviation's period
    words: list[str] = []
    for match in _PIECE.finditer(core[:-1] if kept else core):
        words.extend(_clitics(match.group(0)))
    if kept:
        words[-1:] = [words[-1] + "."] if words else ["."]
    return words + _punctuation(tail)


def _keeps_period(core: str, following: str, tail: str) -> bool:
    """Whether the final ``.`` of ``core`` belongs to it: an abbreviation, initials, or
    a word followed by a lower-case word (a sentence does not end there)."""
    if core[-1] != ".":
        return False
    stem = core[:-1]
    if re.fullmatch(_INITIALS, core) or (stem.isalpha() and stem.lower() in ABBREVIATIONS):
        return True
    if len(stem) == 1 and stem.isalpha():  # an initial: J. Smith
        return True
    # a sentence goes on after it: a lower-case word or a marker (PTB: mass. <unk>)
    return bool(stem) and stem[-1].isalpha() and following[:1].islower() or following[:1] == "<"


def _compound(core: str) -> bool:
    """Whether ``core`` is words joined by hyphens with an abbreviation among them
    (``u.s.-soviet``, ``calif.-based``, ``non-u.s.``): one word."""
    parts = core.split("-")
    if len(parts) < 2 or "." not in core:
        return False
    whole = re.compile(rf"{_INITIALS}|{_WORD}")
    return all(
        whole.fullmatch(p) or (p.endswith(".") and p[:-1].lower() in ABBREVIATIONS) for p in parts
    )


def _clitics(word: str) -> list[str]:
    """``word`` with a contraction's clitic split off: ``don't`` -> ``do``, ``n't``."""
    if _CLITIC.match(word):
        return [word]
    match = _SPLIT_CLITIC.match(word)
    if match and match.group(1)[-1:].isalpha():
        return [match.group(1), match.group(2)]
    return [word]


def _punctuation(tail: str) -> list[str]:
    """Trailing punctuation, runs of one mark kept together (``...``, ``?!`` apart)."""
    return [m.group(0) for m in re.finditer(r"(.)\1*", tail)]
