"""Data read as the user meant it: split files by their names, one file split in three,
headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kioku.data.corpus import corpus_from_path
from kioku.data.labeled import read_labeled_file
from kioku.data.splits import find_splits, ordered_split, shuffled_split
from kioku.data.timeseries import has_header, read_csv_series
from kioku.data.vocab import Vocabulary

PTB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ptb"
needs_ptb = pytest.mark.skipif(not PTB.is_dir(), reason="../shared/data/ptb absent (PTB files)")


def write(folder: Path, names: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in names.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "names, expected",
    [
        (["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"], ["ptb.train.txt", "ptb.valid.txt",
                                                             "ptb.test.txt"]),
        (["en_gum-ud-train.conllu", "en_gum-ud-dev.conllu", "en_gum-ud-test.conllu"],
         ["en_gum-ud-train.conllu", "en_gum-ud-dev.conllu", "en_gum-ud-test.conllu"]),
        (["train.tsv", "dev.tsv", "test.tsv"], ["train.tsv", "dev.tsv", "test.tsv"]),
        (["valid.txt", "train.txt", "test.txt"], ["train.txt", "valid.txt", "test.txt"]),
    ],
)  # fmt: skip
def test_split_files_found_by_a_word_of_their_name(tmp_path, names, expected):
    folder = write(tmp_path / "d", {n: "x\n" for n in names + ["README.md", "LICENSE"]})
    found = find_splits(folder)
    assert [found.files[s].name for s in ("train", "valid", "test")] == expected
    assert found.single is None
    assert sorted(p.name for p in found.ignored) == ["LICENSE", "README.md"]
    lines = found.describe({"train": "2 lines"})
    assert lines[0] == f"data: {folder.resolve()}"
    assert f"train <- {expected[0]} (2 lines)" in lines[1]
    assert lines[-1] == "  ignored: LICENSE (documentation), README.md (documentation)"


def test_a_word_part_not_a_substring(tmp_path):
    """``trainee.txt`` and ``contest.txt`` name no split: word parts, not substrings."""
    folder = write(tmp_path / "d", {"trainee.txt": "a\n", "contest.txt": "b\n"})
    with pytest.raises(ValueError, match=r"no train file among 2 files \(contest.txt, trainee"):
        find_splits(folder)


def test_other_kinds_of_file_ignored_by_suffix(tmp_path):
    folder = write(
        tmp_path / "ud",
        {
            "en-ud-train.conllu": "x",
            "en-ud-dev.conllu": "x",
            "en-ud-test.conllu": "x",
            "en-ud-train.txt": "raw",
            "stats.xml": "<x/>",
        },
    )
    found = find_splits(folder, (".conllu",))
    assert found.files["train"].name == "en-ud-train.conllu"
    assert found.ignored[folder.resolve() / "en-ud-train.txt"] == "not a .conllu file"


@pytest.mark.parametrize(
    "names, message",
    [
        (["a.train.txt", "b.train.txt", "valid.txt", "test.txt"],
         r"2 train files \(a.train.txt, b.train.txt\); expected one file per split"),
        (["one.txt", "two.txt", "README.md"], r"no train file among 2 files \(one.txt, two.txt\)"),
        (["train.txt", "test.txt"], r"train train.txt, test test.txt but no valid \(or dev\)"),
        (["valid.txt", "test.txt"], r"found valid valid.txt, test test.txt but no train file"),
        (["train-test.txt"], r"train-test.txt names test and train"),
        (["README.md"], r"no data file found \(holds README.md\)"),
    ],
)  # fmt: skip
def test_ambiguous_folders_refused_in_one_line(tmp_path, names, message):
    folder = write(tmp_path / "d", {n: "x\n" for n in names})
    with pytest.raises(ValueError, match=message) as caught:
        find_splits(folder)
    assert "\n" not in str(caught.value) and str(folder.resolve()) in str(caught.value)


def test_one_data_file_in_a_folder_is_split_in_three(tmp_path):
    folder = write(tmp_path / "d", {"reviews.tsv": "a\tb\n", "README.md": "about"})
    found = find_splits(folder)
    assert found.single == (folder / "reviews.tsv").resolve()
    assert "valid <- 10% of reviews.tsv" in "\n".join(found.describe({}))


def test_a_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope: no such file or directory"):
        find_splits(tmp_path / "nope")


def test_corpus_of_a_ptb_like_folder_never_concatenates(tmp_path):
    folder = write(
        tmp_path / "p",
        {
            "ptb.train.txt": " a b c\n a b\n",
            "ptb.valid.txt": " b c\n",
            "ptb.test.txt": " c a\n",
            "README.md": "# not a split\n",
        },
    )
    corpus = corpus_from_path(folder)
    assert (corpus.train, corpus.valid, corpus.test) == (" a b c\n a b\n", " b c\n", " c a\n")
    assert corpus.name == str(folder.resolve())


@needs_ptb
def test_ptb_from_its_folder_has_its_published_sizes():
    """PTB's own vocabulary (9,999 words with <unk>, + <eos> = 10,000) and split sizes:
    words 887,521 / 70,390 / 78,669, plus one <eos> per line."""
    corpus = corpus_from_path(PTB)
    assert sorted(p.name for p in corpus.files.ignored) == ["README.md"]
    vocab = Vocabulary.build(corpus.train, "word", tokenizer="ud")
    assert len(vocab) == 10_000
    sizes = {s: vocab.encode(corpus.split(s)).size for s in ("train", "valid", "test")}
    lines = {s: len(corpus.split(s).splitlines()) for s in ("train", "valid", "test")}
    assert {s: sizes[s] - lines[s] for s in sizes} == {
        "train": 887_521,
        "valid": 70_390,
        "test": 78_669,
    }
    assert sizes == {"train": 929_589, "valid": 73_760, "test": 82_430}


def test_shuffled_split_is_stratified_and_follows_the_seed():
    labels = ["pos", "neg"] * 50  # alternating: the positional split put one class per split
    parts = shuffled_split(len(labels), seed=0, labels=labels)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(100))
    for split, share in (("train", 40), ("valid", 5), ("test", 5)):
        held = [labels[i] for i in parts[split]]
        assert held.count("pos") == held.count("neg") == share, split
    again = shuffled_split(len(labels), seed=0, labels=labels)
    other = shuffled_split(len(labels), seed=1, labels=labels)
    assert all(np.array_equal(parts[s], again[s]) for s in parts)
    assert not all(np.array_equal(parts[s], other[s]) for s in parts)


def test_shuffled_split_keeps_a_small_class_in_every_split():
    labels = ["a"] * 40 + ["b"] * 3
    parts = shuffled_split(len(labels), seed=3, labels=labels)
    for split in ("train", "valid", "test"):
        assert "b" in [labels[i] for i in parts[split]], split


def test_ordered_split_keeps_time_order():
    parts = ordered_split(100)
    assert [(p.start, p.stop) for p in parts.values()] == [(0, 80), (80, 90), (90, 100)]


def test_classify_header_detected_or_declared(tmp_path):
    path = tmp_path / "h.tsv"
    path.write_text("label\ttext\npos\tgood\nneg\tbad\npos\tfine\n", encoding="utf-8")
    pairs, header = read_labeled_file(path)
    assert header == "label\ttext" and [label for label, _ in pairs] == ["pos", "neg", "pos"]
    pairs, header = read_labeled_file(path, header=False)
    assert header is None and pairs[0] == ("label", "text")
    # a rare first label is no header unless declared
    path.write_text("neutral\tso so\npos\tgood\nneg\tbad\n", encoding="utf-8")
    assert read_labeled_file(path)[1] is None
    assert read_labeled_file(path, header=True) == (
        [("pos", "good"), ("neg", "bad")],
        "neutral\tso so",
    )


def test_csv_header_detected_or_declared(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("1.0,2.0\n3.0,4.0\n5.0,6.0\n", encoding="utf-8")
    values, names = read_csv_series(path, header=None)
    assert names == ["column1", "column2"] and values.shape == (3, 2)
    assert has_header([["date", "units"], ["2020-01-01", "3"], ["2020-01-02", "4"]])
    assert not has_header([["2020-01-01", "3"], ["2020-01-02", "4"]])
    path.write_text("a,b\n3.0,4.0\n5.0,6.0\n", encoding="utf-8")
    values, names = read_csv_series(path, header=None)
    assert names == ["a", "b"] and values.tolist() == [[3, 4], [5, 6]]
