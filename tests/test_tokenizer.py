"""The plain-text tokenizer (kioku.data.tokenize) and the vocabulary that records it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kioku.data.tokenize import tokenize_words
from kioku.data.vocab import EOS, Vocabulary

PTB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ptb"


@pytest.mark.parametrize(
    "text, words",
    [
        ("Apple is something that I like to eat.", "Apple is something that I like to eat ."),
        ("don't", "do n't"),
        ("I'm", "I 'm"),
        ("it's", "it 's"),
        ("can't", "ca n't"),
        ("won't", "wo n't"),
        ("They'll say we'd've", "They 'll say we'd 've"),
        ("It\u2019s John's.", "It 's John 's ."),
        ("It costs 3.5 or 1,000 dollars, at 12:30.", "It costs 3.5 or 1,000 dollars , at 12:30 ."),
        ("The U.S. economy, e.g. Mr. Smith's.", "The U.S. economy , e.g. Mr. Smith 's ."),
        (
            "See https://example.com/a?b=1. Or write me@x.org!",
            "See https://example.com/a?b=1 . Or write me@x.org !",
        ),
        (
            'He said "hello"... (twice) -- well-known AT&T',
            'He said " hello " ... ( twice ) -- well-known AT&T',
        ),
        ("Wait?! Really.", "Wait ? ! Really ."),
        ("J. Smith met him. He left.", "J. Smith met him . He left ."),
        (
            "mr. <unk> is chairman of <unk> n.v. the group",
            "mr. <unk> is chairman of <unk> n.v. the group",
        ),
    ],
)
def test_ud_tokenizer_splits_as_documented(text: str, words: str):
    assert tokenize_words(text, "ud") == words.split()


def test_whitespace_tokenizer_is_str_split():
    text = "eat. don't  U.S.\tx"
    assert tokenize_words(text, "whitespace") == text.split() == ["eat.", "don't", "U.S.", "x"]


def test_unknown_tokenizer_is_refused_by_name():
    with pytest.raises(
        ValueError,
        match=r"tokenizer: expected one of \['ud', 'whitespace'\], "
        r"found 'spacy'",
    ):
        tokenize_words("a b", "spacy")
    with pytest.raises(ValueError, match="tokenizer"):
        Vocabulary(["<unk>", "<eos>"], "word", "spacy")


@pytest.mark.skipif(not PTB.is_dir(), reason="../shared/data/ptb absent (the PTB files)")
@pytest.mark.parametrize("split", ["valid", "test"])
def test_ud_tokenizer_is_the_identity_on_ptb(split: str):
    """PTB is tokenized already: the documented tokenizer changes none of its lines."""
    lines = (PTB / f"ptb.{split}.txt").read_text(encoding="utf-8").splitlines()
    changed = [line for line in lines if tokenize_words(line, "ud") != line.split()]
    assert changed == []


def test_vocabulary_records_its_tokenizer_and_encodes_with_it():
    vocab = Vocabulary.build("I like to eat.\nI don't.\n", "word", tokenizer="ud")
    assert vocab.tokenizer == "ud"
    assert vocab.tokenize("eat.") == ["eat", ".", EOS]
    assert vocab.decode(vocab.encode("I don't eat.")) == "I do n't eat .\n"
    again = Vocabulary.from_dict(vocab.to_dict())
    assert again == vocab and again.tokenizer == "ud"
    # a vocabulary saved before the field existed reads raw text as whitespace did
    old = Vocabulary.from_dict({"level": "word", "tokens": vocab.tokens})
    assert old.tokenizer == "whitespace"
    assert old.tokenize("eat.") == ["eat.", EOS]
    with pytest.raises(ValueError, match="field 'tokenizer': expected 'ud', found 'whitespace'"):
        old.check_same(vocab, "run")


def test_view_inspect_and_sample_read_text_with_the_runs_tokenizer():
    """``view``, ``inspect`` and ``sample --prefix`` split text as the vocabulary says."""
    from kioku.cli.sample_cmd import unknown_prefix
    from kioku.inspect.model_report import encode_text
    from kioku.inspect.view_run import read_segments
    from kioku.models import LanguageModel, SequenceTagger

    vocab = Vocabulary.build("I like to eat .\nI do n't .\n", "word", tokenizer="ud")
    tokens, ids = encode_text("I don't eat.", vocab)
    assert tokens == ["I", "do", "n't", "eat", ".", EOS] and 0 not in ids.tolist()
    model = LanguageModel(len(vocab), 2, 2, rng=0)
    assert read_segments(model, vocab, "I don't eat.", 100) == [tokens]
    tagger = SequenceTagger(len(vocab), 2, 2, num_tags=2, rng=0)  # a sentence a line, no <eos>
    assert read_segments(tagger, vocab, "I don't eat.\nI do.", 100) == [
        tokens[:-1],
        tokens[:2] + ["."],
    ]
    assert unknown_prefix("I don't eat.", vocab) is None
    old = Vocabulary(vocab.tokens, "word")  # whitespace: 'eat.' and "don't" unknown
    assert encode_text("I don't eat.", old)[0] == ["I", "don't", "eat.", EOS]
    assert '"don\'t"' in unknown_prefix("I don't eat.", old)
