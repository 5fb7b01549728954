"""The word + character BiLSTM tagger (issue 15): the character encoder's and the whole
tagger's gradients against float64 central differences (relative error <= 1e-6), parity
with the same model written in PyTorch (logits, loss and every parameter gradient within
1e-5 absolute in float32, 1e-10 in float64), checkpoints, word dropout, the tag task's
figures (all tokens, unseen words, per tag) and prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cases import check_gradients, max_abs_diff, parameter_pairs
from tolerance import assert_close, recurrent_depth

import kioku
from kioku.cli import main
from kioku.data.chars import FormTable, build_char_vocab
from kioku.data.vocab import Vocabulary
from kioku.models import SequenceClassifier, SequenceTagger
from kioku.nn.char_encoder import CharEncoder
from kioku.nn.module import Module
from kioku.train.settings import resolve
from kioku.train.tag_task import TagTask, confused_pairs, confused_table, per_tag_figures

# a batch with padding at both levels, repeated forms and a one-character word:
# forms (T=4, B=3) index 5 unique forms; sentence lengths 4, 2, 3
CHARS = np.array(
    [[3, 1, 4, 1, 5], [2, 0, 0, 0, 0], [6, 5, 0, 0, 0], [1, 2, 3, 0, 0], [4, 4, 4, 4, 0]]
)
CHAR_LENGTHS = np.array([5, 1, 2, 3, 4])
FORMS = np.array([[0, 1, 3], [2, 2, 0], [1, 0, 4], [4, 0, 0]])
LENGTHS = np.array([4, 2, 3])
IDS = np.array([[1, 2, 4], [3, 3, 1], [2, 0, 5], [5, 0, 0]])
TAGS = np.array([[0, 1, 2], [2, 2, 0], [1, -1, 1], [0, -1, -1]])


pytestmark = pytest.mark.torch


def small_tagger(dtype=np.float64, **kw) -> SequenceTagger:
    options = dict(char_vocab_size=7, char_embed_size=2, char_hidden_size=2)
    options.update(kw)
    return SequenceTagger(6, 3, 3, 3, 2, dtype=dtype, rng=0, **options)


@pytest.mark.slow
def test_char_encoder_gradients_match_central_differences():
    encoder = CharEncoder(7, 3, 4, dtype=np.float64, rng=1)
    w = np.random.default_rng(2).standard_normal((4, 3, 8))
    out = encoder(CHARS, CHAR_LENGTHS, FORMS)
    assert out.shape == (4, 3, 8)
    # repeated forms read the same encoding
    np.testing.assert_array_equal(out[0, 0], out[2, 1])
    np.testing.assert_array_equal(out[1, 0], out[1, 1])
    encoder.zero_grad()
    encoder.backward(w)

    def loss() -> float:
        return float((encoder(CHARS, CHAR_LENGTHS, FORMS) * w).sum())

    check_gradients(loss, parameter_pairs(encoder))


def test_char_encoder_ignores_char_padding():
    encoder = CharEncoder(7, 3, 4, dtype=np.float64, rng=1)
    padded = CHARS.copy()
    padded[CHARS == 0] = 6  # other padding ids, same lengths
    padded[:, 0] = CHARS[:, 0]
    for u, n in enumerate(CHAR_LENGTHS):
        padded[u, :n] = CHARS[u, :n]
    np.testing.assert_array_equal(
        encoder(CHARS, CHAR_LENGTHS, FORMS), encoder(padded, CHAR_LENGTHS, FORMS)
    )


def test_whole_char_tagger_gradients_match_central_differences():
    # a random weighting of the logits (not the mean loss, whose 1/N leaves the char
    # weights' gradients near the differences' noise floor); the loss is PyTorch's below
    model = small_tagger()
    chars = (CHARS, CHAR_LENGTHS, FORMS)
    w = np.random.default_rng(3).standard_normal((4, 3, 3))
    model.zero_grad()
    model(IDS, LENGTHS, chars)
    assert model.backward(w) is None

    def loss() -> float:
        return float((model(IDS, LENGTHS, chars) * w).sum())

    names = [name for name, _, _ in model.named_parameters()]
    assert any(n.startswith("char_encoder.lstm") for n in names)
    check_gradients(loss, parameter_pairs(model))


def test_char_classifier_gradients_match_central_differences():
    model = SequenceClassifier(
        6, 3, 3, 2, 1, bidirectional=True, pooling="mean", dtype=np.float64, rng=0,
        char_vocab_size=7, char_embed_size=2, char_hidden_size=2,
    )  # fmt: skip
    chars = (CHARS, CHAR_LENGTHS, FORMS)
    w = np.random.default_rng(4).standard_normal((3, 2))
    model.zero_grad()
    model(IDS, LENGTHS, chars)
    model.backward(w)
    check_gradients(lambda: float((model(IDS, LENGTHS, chars) * w).sum()), parameter_pairs(model))


torch = pytest.importorskip("torch", reason="torch==2.13.0 is the parity reference (test extra)")


class TorchCharTagger(torch.nn.Module):
    """The same model in PyTorch, its parameters named as kioku's."""

    def __init__(self, V, E, H, K, L, C, Ce, Hc):
        super().__init__()
        self.embedding = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E + 2 * Hc, H, L, bidirectional=True)
        self.tagger = torch.nn.Linear(2 * H, K)
        self.char_encoder = torch.nn.Module()
        self.char_encoder.embedding = torch.nn.Embedding(C, Ce)
        self.char_encoder.lstm = torch.nn.LSTM(Ce, Hc, bidirectional=True)

    def forward(self, ids, lengths, chars, char_lengths, forms):
        pack = torch.nn.utils.rnn.pack_padded_sequence
        x = self.char_encoder.embedding(chars.T)  # (Lc, U, Ce)
        _, (h_n, _) = self.char_encoder.lstm(pack(x, char_lengths, enforce_sorted=False))
        words = torch.cat([h_n[0], h_n[1]], dim=1)[forms]  # (T, B, 2 Hc)
        x = torch.cat([self.embedding(ids), words], dim=-1)
        y, _ = self.lstm(pack(x, lengths, enforce_sorted=False))
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=ids.shape[0])
        return self.tagger(y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_char_tagger_matches_pytorch(dtype):
    torch.manual_seed(0)
    peer = TorchCharTagger(6, 3, 4, 3, 2, 7, 2, 3).to(
        torch.float64 if dtype == np.float64 else torch.float32
    )
    ours = SequenceTagger(
        6, 3, 4, 3, 2, dtype=dtype, rng=0, char_vocab_size=7, char_embed_size=2,
        char_hidden_size=3,
    )  # fmt: skip
    ours.load_state_dict({k: v.detach().numpy() for k, v in peer.state_dict().items()})
    t = torch.as_tensor
    logits_peer = peer(t(IDS), t(LENGTHS), t(CHARS), t(CHAR_LENGTHS), t(FORMS))
    loss_peer = torch.nn.functional.cross_entropy(
        logits_peer.reshape(-1, 3), t(TAGS).reshape(-1), ignore_index=-1
    )
    loss_peer.backward()
    ours.zero_grad()
    loss, logits = ours.loss(IDS, TAGS, LENGTHS, chars=(CHARS, CHAR_LENGTHS, FORMS))
    mask = TAGS >= 0
    # the char BiLSTM (5 chars of 5 words), the word BiLSTM (2 layers), the output layer
    depth = recurrent_depth(5, 2, 3, batch=5) + recurrent_depth(4, 3 + 6, 4, 2, 3) + 2 * 4
    assert_close("logits", logits[mask], logits_peer.detach().numpy()[mask], depth, dtype)
    assert_close("loss", np.array(loss), np.array(loss_peer.item()), depth, dtype)
    grads = dict((n, p.grad.numpy()) for n, p in peer.named_parameters())
    for name, _, grad in ours.named_parameters():
        assert_close(name, grad, grads[name], depth, dtype)
    assert len(grads) == len(list(ours.named_parameters())) == 28


def test_word_only_tagger_keeps_its_parameters_and_refuses_chars():
    word_only = SequenceTagger(6, 3, 3, 3, 1, rng=0)
    before = SequenceTagger(6, 3, 3, 3, 1, rng=0, char_vocab_size=None)
    for (n, p, _), (m, q, _) in zip(word_only.named_parameters(), before.named_parameters()):
        assert n == m and np.array_equal(p, q)
    assert not any("char" in n for n, _, _ in word_only.named_parameters())
    with pytest.raises(ValueError, match="chars: expected None"):
        word_only(IDS, LENGTHS, (CHARS, CHAR_LENGTHS, FORMS))
    with pytest.raises(ValueError, match="chars: expected"):
        small_tagger()(IDS, LENGTHS)
    with pytest.raises(ValueError, match="char_hidden_size"):
        small_tagger(char_hidden_size=0)
    with pytest.raises(ValueError, match="forms: expected ids in 0..4"):
        small_tagger()(IDS, LENGTHS, (CHARS, CHAR_LENGTHS, FORMS + 1))


def test_char_tagger_config_round_trip_gives_the_same_predictions():
    model = small_tagger(np.float32, embed_dropout=0.5, dropout=0.1)
    copy = SequenceTagger.from_config(json.loads(json.dumps(model.config())))
    copy.load_state_dict(model.state_dict())
    chars = (CHARS, CHAR_LENGTHS, FORMS)
    np.testing.assert_array_equal(
        model.predict(IDS, LENGTHS, chars), copy.predict(IDS, LENGTHS, chars)
    )
    assert copy.input_dropout.p == 0.5 and copy.output_dropout.p == 0.1


def test_form_table_spells_unique_forms_once():
    vocab = build_char_vocab(["ab", "ba", "c"])
    table = FormTable(vocab, max_chars=3)
    ids = table.ids(["ab", "ba", "ab", "zzzzz", "c"])
    np.testing.assert_array_equal(ids, [0, 1, 0, 2, 3])
    batch = table.char_batch(np.array([[0, 3], [2, 0]]))
    assert batch.chars.shape == (3, 3)  # forms 0, 2, 3; the longest kept is 3 chars
    np.testing.assert_array_equal(batch.char_lengths, [2, 3, 1])
    np.testing.assert_array_equal(batch.forms, [[0, 2], [1, 0]])
    assert list(batch.chars[1]) == [vocab.unk_id] * 3  # unseen chars, cut at max_chars
    a, b = vocab.index["a"], vocab.index["b"]
    assert list(batch.chars[0][:2]) == [a, b]


def test_per_tag_precision_recall_by_hand():
    # gold rows, predicted columns: A predicted 4 times (3 right), B 1 time (1 right)
    confusion = np.array([[3, 1, 0], [1, 1, 0], [0, 0, 0]])
    f = per_tag_figures(confusion, ["A", "B", "C"])
    assert f["A"] == {"precision": 3 / 4, "recall": 3 / 4, "f1": 0.75, "support": 4}
    assert f["B"]["precision"] == 1 / 2 and f["B"]["recall"] == 1 / 2
    assert f["C"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


class FixedTagger(Module):
    """Predicts tag ``word id % 3`` for every token."""

    def loss(self, x, y, lengths, backward=False, chars=None):
        logits = np.eye(3)[x % 3]
        return 0.5, logits


def make_task(word_dropout=None) -> TagTask:
    train = [(["a", "b", "c"], ["X", "Y", "Z"]), (["a", "b"], ["X", "Y"])]
    test = [(["a", "d", "B"], ["X", "Y", "Z"]), (["d", "c"], ["Z", "Z"])]
    vocab = Vocabulary.build([" ".join(w) for w, _ in train], "word")
    labels = ["X", "Y", "Z"]
    table = FormTable(None)
    splits = {"train": TagTask.encode(vocab, labels, train, "train", table)}
    seen = len(table)
    splits["valid"] = splits["test"] = TagTask.encode(vocab, labels, test, "test", table)
    return TagTask(
        vocab, labels, splits, 2, 0, table=table, train_forms=seen, word_dropout=word_dropout
    )


def test_confused_pairs_join_both_directions_most_first():
    labels = ["A", "B", "C", "D"]
    confusion = np.array([[9, 2, 0, 1], [3, 8, 0, 0], [0, 4, 7, 0], [1, 0, 0, 5]])
    pairs = confused_pairs(confusion, labels, top=2)
    assert pairs == [
        {"tags": ["A", "B"], "count": 5, "a_as_b": 2, "b_as_a": 3},
        {"tags": ["B", "C"], "count": 4, "a_as_b": 0, "b_as_a": 4},
    ]
    everything = confused_pairs(confusion, labels, top=10)
    assert [p["tags"] for p in everything] == [["A", "B"], ["B", "C"], ["A", "D"]]
    assert confused_pairs(np.eye(3, dtype=int), ["A", "B", "C"]) == []
    table = confused_table(pairs)
    assert table[1].split()[:4] == ["A", "/", "B", "5"] and "B->A 3" in table[1]


def test_measure_counts_all_unseen_and_per_tag_by_hand():
    task = make_task()
    ids = {w: task.vocab.index.get(w, 0) for w in "abcdB"}
    # predicted tag = id % 3; the test tokens a d B | d c, gold X Y Z | Z Z
    predicted = [ids[w] % 3 for w in "adBdc"]
    gold = [0, 1, 2, 2, 2]
    hits = [p == g for p, g in zip(predicted, gold)]
    record = task.measure(FixedTagger(), "test")
    assert record["accuracy"] == sum(hits) / 5
    # unseen in training: d, B (case-sensitive: b was seen), d
    unseen = [1, 2, 3]
    assert record["unseen_tokens"] == 3
    assert record["unseen_accuracy"] == sum(hits[i] for i in unseen) / 3
    assert record["seen_tokens"] == 2
    assert record["seen_accuracy"] == (hits[0] + hits[4]) / 2
    errors: dict[tuple[str, str], int] = {}
    for p, g in zip(predicted, gold):
        if p != g:
            pair = tuple(sorted(("XYZ"[p], "XYZ"[g])))
            errors[pair] = errors.get(pair, 0) + 1
    assert {tuple(c["tags"]): c["count"] for c in record["confused"]} == errors
    z = record["per_tag"]["Z"]
    assert z["support"] == 3
    assert z["recall"] == sum(hits[i] for i in (2, 3, 4)) / 3


def test_word_dropout_only_in_training_batches_at_its_rate():
    drop = np.full(6, 0.3)
    drop[0] = 0.0
    task = make_task(drop)
    train_ids = np.concatenate([e.tokens for e in task.splits["train"]])
    dropped = total = 0
    for epoch in range(2000):
        task.batcher.epoch, task.batcher.batch = epoch, 0
        for x, lengths, _, forms in task.train_batches():
            valid = np.arange(x.shape[0])[:, None] < lengths
            dropped += int(((x == 0) & valid).sum())
            total += int(valid.sum())
            # the forms keep the word
            assert forms.max() < len(task.table)
    assert total == 2000 * train_ids.size
    rate = dropped / total
    assert abs(rate - 0.3) < 4 * np.sqrt(0.3 * 0.7 / total)  # 4 standard errors
    # evaluation batches never drop
    record = task.measure(FixedTagger(), "train")
    assert record["accuracy"] == np.mean([i % 3 == t for i, t in zip(train_ids, [0, 1, 2, 0, 1])])


def test_word_dropout_probability_is_alpha_over_alpha_plus_count(tmp_path):
    rows = []
    for words in (["the", "cat"], ["the", "dog"], ["the", "cat"]):
        rows += [f"{i}\t{w}\t_\tX\t_\t_\t0\tdep\t_\t_" for i, w in enumerate(words, 1)] + [""]
    data = tmp_path / "t.conllu"
    data.write_text("\n".join(rows * 4) + "\n")
    settings = resolve({"task": "tag", "data": str(data), "word_dropout": 0.25})
    task = TagTask.from_settings(settings)
    drop = task.batcher.word_dropout
    counts = {"the": 3 * 4, "cat": 2 * 4, "dog": 4}
    train_counts = {w: 0 for w in counts}
    for e in task.splits["train"]:
        for i in e.tokens:
            train_counts[task.vocab.tokens[i]] += 1
    for w, n in train_counts.items():
        assert drop[task.vocab.index[w]] == pytest.approx(0.25 / (0.25 + n))
    assert sum(train_counts.values()) < sum(counts.values())  # valid/test left out


def test_char_flags_are_refused_for_other_tasks():
    with pytest.raises(ValueError, match="char_embed"):
        resolve({"task": "classify", "data": "x.tsv", "char_embed": 10})
    with pytest.raises(ValueError, match="word_dropout"):
        resolve({"task": "lm", "word_dropout": 0.25})
    preset = resolve({"task": "tag", "data": "ud"})
    assert (preset.char_embed, preset.layers, preset.word_dropout) == (50, 2, 0.25)
    assert (preset.plateau, preset.plateau_patience, preset.patience) == (True, 2, 8)


def test_train_eval_predict_a_char_tagger(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lexicon = {"DET": ["the", "a"], "NOUN": ["cat", "dog", "bird"], "VERB": ["runs", "sings"]}
    for split, n in (("train", 60), ("dev", 10), ("test", 10)):
        rows = []
        for _ in range(n):
            for i, tag in enumerate(("DET", "NOUN", "VERB"), 1):
                word = lexicon[tag][rng.integers(len(lexicon[tag]))]
                if split != "train" and tag == "NOUN" and rng.random() < 0.5:
                    word = word + "s"  # unseen forms
                rows.append(f"{i}\t{word}\t_\t{tag}\t_\t_\t0\tdep\t_\t_")
            rows.append("")
        (tmp_path / f"{split}.conllu").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    args = ["train", "--task", "tag", "--data", str(tmp_path), "--out", str(out)]
    args += ["--embed", "8", "--hidden", "8", "--char-embed", "4", "--char-hidden", "4"]
    assert main([*args, "--epochs", "2", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "words unseen in training" in text and "NOUN" in text.split("precision")[1]
    assert "words seen in training" in text
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all("unseen_accuracy" in r and "per_tag" in r and "confused" in r for r in records)
    assert main(["eval", str(out), "--split", "valid"]) == 0
    shown = capsys.readouterr().out
    assert "unseen_accuracy" in shown and "seen_accuracy" in shown and "precision" in shown
    assert main(["eval", str(out), "--split", "valid", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["seen_tokens"] + scored["unseen_tokens"] == 30
    if scored["confused"]:  # the table names the most confused pair as the record does
        a, b = scored["confused"][0]["tags"]
        assert "most confused tag pairs" in shown and f"{a} / {b}" in shown
    tagger = kioku.load(out)
    assert tagger.model.char_encoder is not None
    tags = tagger.predict(["the cats sings", "a dog"])
    assert [len(t) for t in tags] == [3, 2]
    # the checkpoint round trip: same predictions as the trained model's own
    task = TagTask.on_file(_task_state(out), tmp_path / "test.conllu", 8, "test")
    before = task.measure(tagger.model, "all")
    again = kioku.load(out).model
    assert task.measure(again, "all") == before


def _task_state(run) -> dict:
    from kioku.train.checkpoint import load_checkpoint

    state, _ = load_checkpoint(run)
    return state["task"]


def test_view_needs_the_char_vocab_and_onnx_refuses_a_char_tagger(tmp_path):
    """The view reads a character tagger's words with its character vocabulary (given:
    the word-level layers shown; not given: refused, naming it); ONNX has no character
    encoder and says so."""
    from kioku.inspect.view import view_data
    from kioku.interop.onnx_io import to_onnx

    vocab = Vocabulary(["<unk>", "<eos>", "a", "b", "c", "d"], "word")
    model = small_tagger(np.float32)
    with pytest.raises(ValueError, match="reads characters"):
        view_data(model, vocab, "a b c")
    pytest.importorskip("onnx")
    with pytest.raises(TypeError, match="character encoder"):
        to_onnx(model, str(tmp_path / "m.onnx"))


def test_a_resumed_char_tagger_run_equals_an_uninterrupted_one(tmp_path, capsys):
    rows = []
    words = ["the", "a", "cat", "dogs", "runs", "sings", "bird", "x"]
    rng = np.random.default_rng(1)
    for _ in range(40):
        picked = rng.choice(words, 4)
        rows += [
            f"{i}\t{w}\t_\t{'AB'[len(w) % 2]}\t_\t_\t0\tdep\t_\t_" for i, w in enumerate(picked, 1)
        ]
        rows.append("")
    data = tmp_path / "t.conllu"
    data.write_text("\n".join(rows) + "\n")
    common = ["train", "--task", "tag", "--data", str(data), "--embed", "6", "--hidden", "5"]
    common += ["--char-embed", "3", "--char-hidden", "4", "--batch-size", "4", "--no-progress"]
    common += ["--word-dropout", "1.0", "--eval-every", "3"]
    assert main([*common, "--out", str(tmp_path / "whole"), "--max-steps", "8"]) == 0
    assert main([*common, "--out", str(tmp_path / "part"), "--max-steps", "4"]) == 0
    resumed = ["train", "--resume", str(tmp_path / "part"), "--max-steps", "8", "--no-progress"]
    assert main(resumed) == 0
    capsys.readouterr()
    whole = kioku.load(tmp_path / "whole", "latest").model.state_dict()
    part = kioku.load(tmp_path / "part", "latest").model.state_dict()
    assert sorted(whole) == sorted(part)
    for name in whole:
        assert np.array_equal(whole[name], part[name]), name


def test_length_groups_give_what_one_run_over_all_forms_gives():
    # words of 1, 3, 6, 12, 17 and 25 chars: all four groups of LENGTH_BOUNDS
    from kioku.nn.char_encoder import length_groups

    rng = np.random.default_rng(5)
    lengths = np.array([12, 1, 25, 6, 3, 17])
    chars = rng.integers(1, 7, (6, 25))
    forms = np.array([[5, 0], [1, 2], [3, 4]])
    assert [list(g) for g in length_groups(lengths)] == [[1, 4], [3], [0], [2, 5]]
    encoder = CharEncoder(7, 3, 4, dtype=np.float64, rng=1)
    out = encoder(chars, lengths, forms)
    _, (h_n, _) = encoder.lstm.run(encoder.embedding(chars.T), None, lengths)
    whole = np.concatenate([h_n[0], h_n[1]], axis=1)[forms]
    max_abs_diff("grouped vs one run", out, whole, 1e-14)
    w = rng.standard_normal(out.shape)
    encoder.zero_grad()
    encoder(chars, lengths, forms)
    encoder.backward(w)
    check_gradients(
        lambda: float((encoder(chars, lengths, forms) * w).sum()), parameter_pairs(encoder)
    )


def test_sort_window_batches_similar_lengths_and_covers_every_example_once():
    from kioku.data.padded import Example, PaddedBatcher

    rng = np.random.default_rng(0)
    examples = [Example(np.zeros(int(n), np.int64), 0) for n in rng.integers(1, 60, 203)]
    plain = PaddedBatcher(examples, 8, seed=4)
    sorted_ = PaddedBatcher(examples, 8, seed=4, sort_window=5)
    for epoch in range(3):
        order = sorted_.order(epoch)
        assert sorted(order) == list(range(203))  # each example once
        np.testing.assert_array_equal(order, sorted_.order(epoch))  # from (seed, epoch)
        # the last, smaller batch stays last: 203 = 25 * 8 + 3
        assert len(order[200:]) == 3
    padded_steps = {}
    for name, batcher in (("plain", plain), ("sorted", sorted_)):
        padded_steps[name] = sum(b[0].size for b in batcher.epoch_batches())
        batcher.epoch, batcher.batch = 0, 0
    # less padding to compute: under 80% of random batches' steps
    assert padded_steps["sorted"] < 0.8 * padded_steps["plain"]
    assert sum(len(e.tokens) for e in examples) <= padded_steps["sorted"] // 8 * 8
