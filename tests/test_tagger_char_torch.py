"""benchmarks/tagger_char_torch.py: the PyTorch word and character tagger, on a tiny
CoNLL-U treebank written here (the scores, the character encoder's batching, word
dropout, the best-on-dev parameters, the script's JSON)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tolerance import assert_close, recurrent_depth

torch = pytest.importorskip("torch")
pytest.importorskip("conllu")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "tagger_char_torch.py"


pytestmark = [pytest.mark.torch, pytest.mark.slow]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the script imports its helper by this name
    spec.loader.exec_module(module)
    return module


ud = _load("_conllu_ref")
ref = _load("tagger_char_torch")

LEXICON = {
    "DET": ["the", "a", "this"],
    "NOUN": ["cat", "dog", "house", "tree", "idea", "river", "window"],
    "VERB": ["sees", "likes", "finds", "paints", "walks"],
    "ADJ": ["big", "small", "green", "quiet"],
    "PUNCT": [".", "!"],
}


def write_treebank(folder: Path, names: dict[str, str], seed: int = 0) -> None:
    """train/dev/test files of DET (ADJ) NOUN VERB DET NOUN PUNCT sentences, with one
    multiword-token line and one empty node in train (both skipped by the reader)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 40), ("dev", 12), ("test", 12)):
        blocks = []
        for s in range(count):
            tags = ["DET", "ADJ", "NOUN", "VERB", "DET", "NOUN", "PUNCT"]
            if rng.random() < 0.5:
                tags.remove("ADJ")
            words = [str(rng.choice(LEXICON[t])) for t in tags]
            if split != "train" and s % 3 == 0:
                words[-2] = "zebra"  # a form that training never shows
            rows = [f"# sent_id = {split}-{s}"]
            if split == "train" and s == 0:
                rows.append("1-2\tthe_cat\t_\t_\t_\t_\t_\t_\t_\t_")
            for i, (w, t) in enumerate(zip(words, tags), 1):
                rows.append(f"{i}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_")
                if split == "train" and s == 0 and i == 2:
                    rows.append("2.1\tghost\t_\tX\t_\t_\t_\t_\t_\t_")
            blocks.append("\n".join(rows))
        (folder / names[split]).write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")


@pytest.fixture
def treebank(tmp_path: Path) -> Path:
    write_treebank(tmp_path / "ud", {s: f"{s}.conllu" for s in ("train", "dev", "test")})
    return tmp_path / "ud"


def test_tag_scores_count_unseen_forms_exactly_and_per_tag():
    sentences = [
        (["The", "cat", "sat", "."], ["DET", "NOUN", "VERB", "PUNCT"]),
        (["the", "Cat", "ran"], ["DET", "PROPN", "VERB"]),
    ]
    predicted = [["DET", "NOUN", "NOUN", "PUNCT"], ["DET", "NOUN", "VERB"]]
    seen = {"The", "cat", "."}  # "the", "Cat" (case), "sat", "ran" are unseen
    scores = ud.tag_scores(sentences, predicted, seen)
    assert scores["tokens"] == 7 and scores["accuracy"] == 5 / 7
    assert scores["unseen_tokens"] == 4 and scores["unseen_accuracy"] == 2 / 4
    noun = scores["per_tag"]["NOUN"]
    assert (noun["gold"], noun["predicted"], noun["precision"], noun["recall"]) == (1, 3, 1 / 3, 1)
    verb = scores["per_tag"]["VERB"]
    assert (verb["precision"], verb["recall"]) == (1.0, 0.5)
    assert scores["per_tag"]["PROPN"]["precision"] is None  # never predicted
    assert scores["per_tag"]["PROPN"]["recall"] == 0.0
    with pytest.raises(ValueError, match="predicted: expected 3 tags, found 2"):
        ud.tag_scores(sentences, [predicted[0], ["DET", "NOUN"]], seen)
    assert ud.tag_scores([], [], seen)["unseen_accuracy"] is None


def test_split_files_by_either_name(tmp_path: Path):
    write_treebank(tmp_path, {s: f"en_gum-ud-{s}.conllu" for s in ("train", "dev", "test")})
    assert ud.split_file(tmp_path, "dev") == tmp_path / "en_gum-ud-dev.conllu"
    with pytest.raises(ValueError, match=r"--data: expected one test.conllu .* found 0"):
        ud.split_file(tmp_path / "missing", "test")


def _model(treebank: Path, *flags: str):
    args = ref.arguments(["--data", str(treebank), "--threads", "1", *flags])
    torch.manual_seed(0)
    data = ud.Data(ud.read_splits(treebank))
    return ref.CharWordTagger(data, args), data, args


def test_data_vocabularies_skip_ranges_and_cap_words(treebank: Path):
    _, data, _ = _model(treebank)
    assert "the_cat" not in data.words and "ghost" not in data.words
    assert list(data.words)[:2] == ["<pad>", "<unk>"] and "zebra" not in data.words
    assert data.chars["<unk>"] == ud.UNK and "z" not in data.chars  # only training chars
    assert data.tags == ["ADJ", "DET", "NOUN", "PUNCT", "VERB"]
    zebra = list(data.char_table[data.char_lengths == 5])
    assert any((row[:5] == [data.chars.get(c, ud.UNK) for c in "zebra"]).all() for row in zebra)
    long = ud.Data(
        {
            "train": [(["x" * 40, "ab"], ["X", "Y"])],
            "dev": [(["ac"], ["Z"])],
            "test": [(["ab", "ab", "x"], ["Y", "Y", "X"])],
        }
    )
    assert list(long.char_lengths) == [1, ud.MAX_CHARS, 2, 2, 1]  # pad, xxx.., ab, ac, x
    assert list(long.char_table[3, :3]) == [long.chars["a"], ud.UNK, ud.PAD]  # "c" unseen
    assert long.tags == ["X", "Y"] and next(long.batches("dev", 1))[2].tolist() == [[-1]]
    words, forms, tags, lengths = next(long.batches("test", 2))
    assert words.tolist() == [[long.words["ab"]], [long.words["ab"]], [ud.UNK]]
    assert forms[:, 0].tolist() == [2, 2, 4] and tags[:, 0].tolist() == [1, 1, 0]
    words, forms, tags, lengths = next(ud.Data(ud.read_splits(treebank)).batches("dev", 5))
    assert words.shape == forms.shape == tags.shape == (lengths.max(), 5)
    for b, n in enumerate(lengths):
        assert (tags[n:, b] == -1).all() and (words[n:, b] == ud.PAD).all()
        assert (tags[:n, b] >= 0).all() and (forms[:n, b] > 0).all()


def test_char_encoder_equals_each_word_alone(treebank: Path):
    model, data, _ = _model(treebank)
    _, forms, _, lengths = next(data.batches("dev", 5))
    with torch.no_grad():
        batched = model.encode_chars(torch.from_numpy(forms))
        for t, b in [(0, 0), (3, 1), (int(lengths[2]) - 1, 2), (1, 4)]:
            form = int(forms[t, b])
            chars = model.char_table[form, : int(model.char_lengths[form])]
            y, _ = model.char_lstm(model.char_embedding(chars)[:, None, :])
            h = model.char_lstm.hidden_size
            alone = torch.cat([y[-1, 0, :h], y[0, 0, h:]])
            steps, width = len(chars), model.char_embedding.embedding_dim
            depth = recurrent_depth(steps, width, h, batch=forms.size)
            assert_close(f"word ({t}, {b})", batched[t, b].numpy(), alone.numpy(), depth)


def test_embed_dropout_defaults_to_dropout(treebank: Path):
    assert _model(treebank, "--dropout", "0.4")[0].embed_dropout.p == 0.4
    model = _model(treebank, "--dropout", "0.4", "--embed-dropout", "0.1")[0]
    assert (model.embed_dropout.p, model.dropout.p, model.lstm.dropout) == (0.1, 0.4, 0.4)


def test_word_dropout_chance_follows_counts(treebank: Path):
    model, data, args = _model(treebank, "--word-dropout", "0.5")
    for word in ("the", "zebra", "window"):
        i = data.words.get(word, ud.UNK)
        count = data.counts.get(word, 0)
        expected = 0.0 if i == ud.UNK else 0.5 / (0.5 + count)
        assert float(model.unk_chance[i]) == pytest.approx(expected)
    assert float(model.unk_chance[ud.PAD]) == 0.0
    window, the = data.words["window"], data.words["the"]
    words = torch.tensor([window, the, ud.UNK, ud.PAD]).repeat(200_000, 1)
    torch.manual_seed(1)
    dropped = model.train().drop_words(words)
    assert set(dropped.unique().tolist()) <= {window, the, ud.UNK, ud.PAD}
    assert (dropped[:, 2:] == words[:, 2:]).all()  # <unk> and <pad> stay as they are
    for column, word in ((0, "window"), (1, "the")):
        share = float((dropped[:, column] == ud.UNK).double().mean())
        chance = 0.5 / (0.5 + data.counts[word])
        assert abs(share - chance) < 5 * (chance * (1 - chance) / 200_000) ** 0.5, word
    assert (model.eval().drop_words(words) == words).all()


def test_training_keeps_the_best_dev_parameters(treebank: Path):
    model, data, args = _model(treebank, "--epochs", "4", "--patience", "0", "--lr", "0.01")
    result = ref.train(model, data, args)
    dev_history = [h["dev_accuracy"] for h in result["history"]]
    assert result["epochs_run"] == 4 and result["dev"]["accuracy"] == max(dev_history)
    assert result["best_epoch"] == 1 + dev_history.index(max(dev_history))
    again = ref.evaluate(model, data, "dev", 7)  # another batching, the same tags
    assert again["accuracy"] == result["dev"]["accuracy"]


def test_script_reports_json(treebank: Path, tmp_path: Path):
    out = tmp_path / "result.json"
    flags = ["--epochs", "2", "--threads", "1", "--idle-seconds", "0.1", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(treebank), *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == json.loads(out.read_text())
    assert result["library"] == "torch" and result["threads"] == 1 and result["epochs_run"] == 2
    for split in ("dev", "test"):
        assert 0 <= result[split]["accuracy"] <= 1 and result[split]["tokens"] > 50
        assert 0 <= result[split]["unseen_accuracy"] <= 1 and result[split]["unseen_tokens"] == 4
    assert set(result["test"]["per_tag"]) == {"ADJ", "DET", "NOUN", "PUNCT", "VERB"}
    assert result["sentences_per_s"] > 0 and result["train_sentences"] == 80
    assert result["wall_seconds"] >= result["train_seconds"] > 0
    assert {"others_share_before", "others_share_during", "others_share_after"} <= set(
        result["load"]
    )
    assert result["settings"]["embed"] == 100 and result["settings"]["layers"] == 2
    assert "tag    precision  recall" in done.stdout


def test_bad_flags_name_the_flag(treebank: Path):
    for flags, text in (
        (["--hidden", "0"], "--hidden: expected >= 1, found 0"),
        (["--dropout", "1.5"], "--dropout: expected a number in [0, 1), found 1.5"),
        (["--lr-decay", "2"], "--lr-decay: expected a number in (0, 1]"),
    ):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--data", str(treebank), *flags],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2 and text in done.stderr


def test_missing_data_folder_skips_saying_so(tmp_path: Path, capsys):
    assert ref.main(["--data", str(tmp_path / "absent"), "--idle-seconds", "0.1"]) == 0
    assert capsys.readouterr().out.startswith(f"skipped: {tmp_path / 'absent'} not found")
