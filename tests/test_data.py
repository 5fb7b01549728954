"""kioku.data: vocabularies, batching, readers, corpora; errors that name file and line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kioku.data import (
    EOS,
    UNK,
    Example,
    PaddedBatcher,
    StreamBatcher,
    Vocabulary,
    corpus_from_path,
    load_corpus,
    pad_batch,
    read_conllu,
    read_csv_series,
    read_labeled,
    read_text,
    windows,
)
from kioku.data.stdlib import split_of, stdlib_corpus, stdlib_files


def _refused(path: Path, text: str, read, match: str) -> None:
    """A file of ``text`` at ``path`` makes ``read(path)`` raise a ``ValueError`` whose
    message matches ``match`` (the file's name, the line, what was expected)."""
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read(path)


def test_char_vocabulary_round_trip_and_order(tmp_path):
    vocab = Vocabulary.build("abracadabra\n", "char")
    assert vocab.tokens[:2] == [UNK, EOS]
    assert vocab.tokens[2:] == ["a", "b", "r", "\n", "c", "d"]  # count, then token
    ids = vocab.encode("abcz")
    np.testing.assert_array_equal(ids, [2, 3, 6, 0])  # z is unknown
    assert vocab.decode(vocab.encode("cab\nra")) == "cab\nra"
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocab


def test_word_vocabulary_eos_min_count_and_max_size():
    text = "the cat sat\nthe dog\n\nthe cat\n"
    vocab = Vocabulary.build(text, "word", min_count=2)
    assert vocab.tokens == [UNK, EOS, "the", "cat"]
    ids = vocab.encode(text)
    assert vocab.decode(ids) == "the cat <unk>\nthe <unk>\nthe cat\n"
    assert (ids == vocab.eos_id).sum() == 3  # blank line skipped
    assert len(Vocabulary.build(text, "word", max_size=3)) == 3


def test_vocabulary_load_errors_name_file_and_field(tmp_path):
    bad = tmp_path / "v.json"
    _refused(bad, '{"level": "char", "tokens": ["a"]}', Vocabulary.load, r"v\.json.*start with")
    _refused(
        bad,
        '{"level": "char",\n "tokens": [1, }',
        Vocabulary.load,
        r"v\.json: invalid JSON at line 2",
    )
    _refused(bad, '{"level": "char"}', Vocabulary.load, r"field 'tokens'")
    a, b = Vocabulary.build("abc"), Vocabulary.build("abd")
    with pytest.raises(ValueError, match=r"ckpt: vocabulary field 'tokens\[4\]'"):
        a.check_same(b, "ckpt")


def test_stream_batches_are_contiguous_streams():
    ids = np.arange(103)
    batcher = StreamBatcher(ids, batch_size=4, bptt=5)
    # 103 // 4 = 25 per stream; stream b starts at 25 b
    assert batcher.data.shape == (25, 4)
    assert len(batcher) == 5  # 24 prediction steps in chunks of 5 (last has 4)
    xs, ys = zip(*batcher.epoch_batches())
    x, y = np.concatenate(xs), np.concatenate(ys)
    np.testing.assert_array_equal(x[:, 1], np.arange(25, 49))
    np.testing.assert_array_equal(y, x + 1)  # targets are the next token of each stream
    assert xs[-1].shape == (4, 4)
    assert batcher.epoch == 1 and batcher.batch == 0
    assert len(StreamBatcher(ids, 4, 5, drop_last=True)) == 4


def test_stream_position_saves_and_restores():
    ids = np.random.default_rng(0).integers(0, 50, 1000)
    first = StreamBatcher(ids, 3, 7)
    it = first.epoch_batches()
    for _ in range(10):
        next(it)
    saved = json.loads(json.dumps(first.state_dict()))
    rest = [x.copy() for x, _ in it]
    second = StreamBatcher(ids, 3, 7)
    second.load_state_dict(saved)
    resumed = [x.copy() for x, _ in second.epoch_batches()]
    assert len(rest) == len(resumed) > 0
    assert all(np.array_equal(a, b) for a, b in zip(rest, resumed))
    with pytest.raises(ValueError, match="data position"):
        second.load_state_dict({"epoch": 0, "batch": 999})


def test_pad_batch_and_padded_batcher_resume():
    x, lengths = pad_batch([np.array([1, 2, 3]), np.array([4])])
    np.testing.assert_array_equal(x, [[1, 4], [2, 0], [3, 0]])
    np.testing.assert_array_equal(lengths, [3, 1])
    examples = [Example(np.arange(1, n + 2), n % 3) for n in range(11)]
    batcher = PaddedBatcher(examples, 4, shuffle=True, seed=5)
    full = [b for _ in range(2) for b in batcher.epoch_batches()]
    assert len(full) == 6 and batcher.epoch == 2
    again = PaddedBatcher(examples, 4, shuffle=True, seed=5)
    again.load_state_dict({"epoch": 1, "batch": 1})
    tail = list(again.epoch_batches())
    for (a, la, ya), (b, lb, yb) in zip(full[4:], tail):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(ya, yb)
    tags = [Example(np.array([1, 2]), np.array([3, 4])), Example(np.array([5]), np.array([6]))]
    _, _, y = PaddedBatcher(tags, 2, shuffle=False).collate([0, 1])
    np.testing.assert_array_equal(y, [[3, 6], [4, -1]])


def test_read_text_refuses_empty_and_binary_files(tmp_path):
    empty = tmp_path / "empty.txt"
    _refused(empty, "  \n", read_text, r"empty\.txt: empty file")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"line one\nline two\x00\x01\x02")
    with pytest.raises(ValueError, match=r"blob\.bin: binary file \(NUL byte at line 2"):
        read_text(binary)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"ok\nok\ncaf\xe9\n")
    with pytest.raises(ValueError, match=r"latin\.txt: not UTF-8 text .* at line 3"):
        read_text(latin)
    with pytest.raises(FileNotFoundError, match="nope"):
        read_text(tmp_path / "nope.txt")


def test_corpus_from_file_and_directory(tmp_path):
    text = "".join(f"line {i}\n" for i in range(100))
    (tmp_path / "one.txt").write_text(text)
    corpus = corpus_from_path(tmp_path / "one.txt")
    assert corpus.train + corpus.valid + corpus.test == text
    assert corpus.valid.startswith("line ") and corpus.test.endswith("\n")
    folder = tmp_path / "split"
    folder.mkdir()
    for name in ("train", "valid", "test"):
        (folder / f"{name}.txt").write_text(f"{name} text\n")
    assert load_corpus(str(folder)).valid == "valid text\n"


def test_a_folder_may_name_its_validation_split_dev(tmp_path):
    for name in ("train", "dev", "test"):
        (tmp_path / f"{name}.txt").write_text(f"{name} text\n")
    corpus = load_corpus(str(tmp_path))
    expected = ("train text\n", "dev text\n", "test text\n")
    assert (corpus.train, corpus.valid, corpus.test) == expected


def test_stdlib_corpus_is_a_fixed_deterministic_split():
    files = stdlib_files()
    assert files == sorted(files) and len(files) > 50
    corpus = stdlib_corpus()
    sizes = corpus.sizes()
    assert 2_000_000 < sum(sizes.values()) < 4_000_000
    assert sizes["valid"] > 50_000 and sizes["test"] > 50_000
    assert {split_of(f) for f in files} == {"train", "valid", "test"}
    assert "def " in corpus.test and stdlib_corpus().test == corpus.test


def test_ptb_from_the_data_cache(ptb_dir, monkeypatch):
    monkeypatch.setenv("KIOKU_DATA", str(ptb_dir.parent))
    corpus = load_corpus("ptb")
    vocab = Vocabulary.build(corpus.train, "word")
    assert len(vocab) == 10000  # 9,999 words + <eos>, <unk> among them
    assert vocab.encode(corpus.train).size == 929589
    assert vocab.encode(corpus.test).size == 82430


def test_ptb_missing_offline_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("KIOKU_DATA", str(tmp_path))
    from kioku.data import ptb

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(RuntimeError, match=r"ptb\.train\.txt: missing.*KIOKU_DATA"):
        ptb.ptb_corpus()
    assert not (tmp_path / "ptb").exists() or not any((tmp_path / "ptb").iterdir())


def test_csv_series_and_windows(tmp_path):
    path = tmp_path / "series.csv"
    path.write_text("t,a,b\n0,1.5,2\n1,2.5,3\n2,3.5,4\n3,4.5,5\n")
    values, names = read_csv_series(path, ["a", "b"])
    assert names == ["a", "b"] and values.shape == (4, 2)
    x, y = windows(values, 2, 1)
    assert x.shape == (2, 2, 2) and y.shape == (1, 2, 2)
    np.testing.assert_array_equal(y[0, :, 0], [3.5, 4.5])
    _refused(
        path,
        "t,a\n0,1\n1,oops\n",
        read_csv_series,
        r"series\.csv: line 3, column 2 \('a'\).*'oops'",
    )


def test_conllu_reader(tmp_path):
    good = tmp_path / "good.conllu"
    rows = [
        "# text = Apple is red",
        "1\tApple\tapple\tPROPN\t_\t_\t2\tnsubj\t_\t_",
        "2\tis\tbe\tAUX\t_\t_\t0\troot\t_\t_",
        "3\tred\tred\tADJ\t_\t_\t2\tamod\t_\t_",
        "",
    ]
    good.write_text("\n".join(rows) + "\n")
    assert read_conllu(good) == [(["Apple", "is", "red"], ["PROPN", "AUX", "ADJ"])]
    bad = tmp_path / "bad.conllu"
    _refused(
        bad,
        "\n".join(rows[:2] + ["2\tis\tbe"]) + "\n\n",
        read_conllu,
        r"bad\.conllu: invalid CoNLL-U at line 3",
    )


def test_labeled_reader_names_line(tmp_path):
    path = tmp_path / "labels.tsv"
    _refused(
        path, "pos\tgood film\nneg\tbad film\nno tab here\n", read_labeled, r"labels\.tsv: line 3"
    )
    path.write_text("pos\tgood film\nneg\tbad film\n")
    assert read_labeled(path) == [("pos", "good film"), ("neg", "bad film")]


def test_csv_series_refuses_non_finite_values_and_too_few_rows(tmp_path):
    from kioku.data.timeseries import read_csv_series

    path = tmp_path / "s.csv"
    _refused(
        path,
        "a,b\n1,2\n3,inf\n",
        read_csv_series,
        r"s.csv: line 3, column 2 \('b'\): expected a finite",
    )
    path.write_text("a,b\n1,2\n3,4\n")
    values, names = read_csv_series(path, min_rows=2)
    assert names == ["a", "b"] and np.array_equal(values, [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"s.csv: expected at least 3 data rows \(why\), found 2"):
        read_csv_series(path, min_rows=3, why="why")


def test_data_position_refuses_bad_fields():
    from kioku.data.position import EpochPosition

    class Four(EpochPosition):
        def __len__(self) -> int:
            return 4

    position = Four()
    position.load_state_dict({"epoch": 2, "batch": 3})
    for state, words in [
        ({"epoch": 2}, "field 'batch': expected an integer >= 0, found None"),
        ({"epoch": -1, "batch": 0}, "field 'epoch': expected an integer >= 0, found -1"),
        ({"epoch": 0, "batch": "1"}, "field 'batch': expected an integer >= 0, found '1'"),
        ({"epoch": 0, "batch": 5}, "batch 5 outside 0..4"),
        ([1, 2], "field 'epoch'"),
    ]:
        with pytest.raises(ValueError, match=words):
            position.load_state_dict(state)
        assert (position.epoch, position.batch) == (2, 3)  # unchanged
