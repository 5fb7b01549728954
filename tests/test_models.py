"""Models end to end: finite-difference gradients in float64, config round trips,
sampling, learning small tasks, bad input."""

import json
import time

import numpy as np
import pytest
from gradcheck import numeric_grad as numerical_grad

from kioku.models import (
    MODELS,
    Forecaster,
    LanguageModel,
    SequenceClassifier,
    SequenceTagger,
)
from kioku.nn.loss import mse, softmax_cross_entropy
from kioku.train import Adam, clip_grad_norm


def modules(module):
    yield module
    for child in module._children.values():
        yield from modules(child)


def reseed(model, seed=99):
    """Give every random child a fresh generator, so dropout masks repeat exactly."""
    for i, m in enumerate(modules(model)):
        if hasattr(m, "rng"):
            m.rng = np.random.default_rng(seed + i)


def check_model_gradients(model, loss_of_forward, backward, inputs=None):
    """``loss_of_forward()`` runs the forward (after reseeding) and returns
    ``(loss, dout)``; ``backward(dout)`` runs the model's backward."""

    def f():
        reseed(model)
        return loss_of_forward()[0]

    model.zero_grad()
    reseed(model)
    _, dout = loss_of_forward()
    dx = backward(dout)
    seen = set()
    for name, param, grad in model.named_parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        np.testing.assert_allclose(
            grad, numerical_grad(f, param), rtol=1e-5, atol=1e-8, err_msg=name
        )
    if inputs is not None:
        np.testing.assert_allclose(dx, numerical_grad(f, inputs), rtol=1e-5, atol=1e-8)


# -- gradients -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(embed_size=4, hidden_size=4, num_layers=2, tie_weights=True, dropout=0.3),
        dict(
            embed_size=3,
            hidden_size=5,
            proj_size=3,
            tie_weights=True,
            dropout=0.2,
            variational_dropout=True,
            num_layers=1,
        ),
        dict(embed_size=3, hidden_size=4, num_layers=1),
    ],
)
def test_language_model_gradients(kwargs):
    rng = np.random.default_rng(0)
    model = LanguageModel(7, dtype=np.float64, rng=1, **kwargs)
    tokens, targets = rng.integers(0, 7, (4, 2)), rng.integers(0, 7, (4, 2))
    state = tuple(s + rng.standard_normal(s.shape) * 0.5 for s in model.init_state(2))

    def run():
        logits, _ = model(tokens, state)
        return softmax_cross_entropy(logits, targets)

    check_model_gradients(model, run, model.backward)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_gradients(pooling, bidirectional):
    rng = np.random.default_rng(1)
    model = SequenceClassifier(
        6,
        3,
        3,
        num_classes=3,
        pooling=pooling,
        bidirectional=bidirectional,
        dropout=0.25,
        padding_idx=0,
        dtype=np.float64,
        rng=2,
    )
    lengths = np.array([5, 2, 4])
    tokens = rng.integers(1, 6, (5, 3))
    tokens[np.arange(5)[:, None] >= lengths] = 0
    labels = np.array([0, 2, 1])
    check_model_gradients(
        model, lambda: softmax_cross_entropy(model(tokens, lengths), labels), model.backward
    )


def test_classifier_on_features_gradients_include_inputs():
    rng = np.random.default_rng(3)
    model = SequenceClassifier(
        input_size=2,
        hidden_size=3,
        num_classes=2,
        num_layers=2,
        pooling="mean",
        dtype=np.float64,
        rng=4,
    )
    x, lengths, labels = rng.standard_normal((4, 2, 2)), np.array([4, 3]), np.array([1, 0])
    check_model_gradients(
        model, lambda: softmax_cross_entropy(model(x, lengths), labels), model.backward, x
    )


def _check_tagger_gradients(seed: int, hidden_size: int, num_tags: int, **cell) -> None:
    """A float64 tagger (vocabulary 6, embedding 3, dropout) on a padded batch of three
    sentences (lengths 4, 2, 3): the masked loss's gradients against central differences."""
    rng = np.random.default_rng(seed)
    model = SequenceTagger(
        6, 3, hidden_size, num_tags=num_tags, dropout=0.2, dtype=np.float64, rng=seed + 1, **cell
    )
    lengths = np.array([4, 2, 3])
    tokens, tags = rng.integers(0, 6, (4, 3)), rng.integers(0, num_tags, (4, 3))
    mask = np.arange(4)[:, None] < lengths

    def run():
        return softmax_cross_entropy(model(tokens, lengths), tags, mask=mask)

    check_model_gradients(model, run, model.backward)


def test_tagger_gradients_with_padding():
    _check_tagger_gradients(5, hidden_size=3, num_tags=4)


def test_forecaster_gradients_include_inputs():
    rng = np.random.default_rng(7)
    model = Forecaster(2, 3, num_layers=2, horizon=3, output_size=1, dtype=np.float64, rng=8)
    x, target = rng.standard_normal((5, 2, 2)), rng.standard_normal((2, 3, 1))
    lengths = np.array([5, 3])
    check_model_gradients(model, lambda: mse(model(x, lengths), target), model.backward, x)


# -- configs, state, sampling ---------------------------------------------------------


def build_all():
    return [
        LanguageModel(
            9, 4, 6, 2, dropout=0.1, tie_weights=False, proj_size=4, rng=0, init_range=0.1
        ),
        SequenceClassifier(9, 4, 5, 3, bidirectional=True, pooling="max", rng=0),
        SequenceClassifier(input_size=3, hidden_size=4, num_classes=2, rng=0),
        SequenceTagger(9, 4, 5, 3, num_layers=2, rng=0),
        Forecaster(3, 4, horizon=2, rng=0),
    ]


def test_config_round_trip_rebuilds_the_same_model():
    rng = np.random.default_rng(0)
    for model in build_all():
        config = json.loads(json.dumps(model.config()))
        clone = type(model).from_config(config)
        assert clone.config() == model.config()
        assert MODELS[type(model).__name__] is type(model)
        clone.load_state_dict(model.state_dict())
        model.eval()
        clone.eval()
        if isinstance(model, Forecaster) or getattr(model, "embedding", None) is None:
            x = rng.standard_normal((4, 2, 3)).astype(np.float32)
        else:
            x = rng.integers(0, 9, (4, 2))
        out, again = model(x), clone(x)
        out, again = (out[0], again[0]) if isinstance(out, tuple) else (out, again)
        np.testing.assert_array_equal(out, again)
    with pytest.raises(TypeError, match=r"config: unexpected keys \['colour'\] for Forecaster"):
        Forecaster.from_config({"input_size": 2, "colour": "red"})


def test_init_range_and_tying():
    model = LanguageModel(11, 6, 6, 2, tie_weights=True, init_range=0.1, rng=0)
    assert model.decoder.params["weight"] is model.embedding.params["weight"]
    for name, param, _ in model.named_parameters():
        assert np.abs(param).max() <= 0.1, name
        assert np.abs(param).max() > 0.05, name
    unique = {id(p): p.size for p, _ in model.parameters()}
    assert model.num_parameters() == sum(unique.values())
    untied = LanguageModel(11, 6, 6, 2, rng=0)
    assert untied.num_parameters() - model.num_parameters() == 11 * 6


def test_sampling_is_reproducible_and_respects_top_k():
    model = LanguageModel(8, 4, 6, 1, rng=0)
    a = model.sample([1, 2, 3], 20, temperature=1.0, rng=5)
    b = model.sample([1, 2, 3], 20, temperature=1.0, rng=5)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20,) and a.dtype == np.int64 and a.min() >= 0 and a.max() < 8
    greedy = model.sample([1, 2, 3], 10, temperature=0)
    np.testing.assert_array_equal(model.sample([1, 2, 3], 10, top_k=1, rng=1), greedy)
    # with top_k = 2 only the two most likely ids after the prefix can come first
    logits, _ = model(np.array([[1], [2], [3]]))
    top2 = set(np.argsort(logits[-1, 0])[-2:])
    firsts = {int(model.sample([1, 2, 3], 1, top_k=2, rng=s)[0]) for s in range(30)}
    assert firsts <= top2 and len(firsts) == 2
    assert model.training  # sampling restores the mode


# -- learning ------------------------------------------------------------------------


def test_tiny_language_model_overfits_a_short_text():
    text = "the cat sat on the mat; the dog ate the log."
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    x, y = ids[:-1, None], ids[1:, None]
    model = LanguageModel(len(chars), 16, 48, 1, rng=0)
    opt = Adam(model, lr=0.02)
    start = time.perf_counter()
    for _ in range(250):
        opt.zero_grad()
        loss, _ = model.loss(x, y)
        clip_grad_norm(model, 5.0)
        opt.step()
    assert loss < 0.005, loss
    assert time.perf_counter() - start < 20
    # greedy sampling now recites the text
    out = model.sample(ids[:5], len(text) - 5, temperature=0)
    assert "".join(chars[i] for i in out) == text[5:]


def make_contains_task(rng, n, vocab=8, needle=3, min_len=3, max_len=10):
    lengths = rng.integers(min_len, max_len + 1, n)
    tokens = rng.integers(1, vocab, (max_len, n))
    tokens[tokens == needle] = 1
    labels = rng.integers(0, 2, n)
    for b in np.flatnonzero(labels):
        tokens[rng.integers(0, lengths[b]), b] = needle
    tokens[np.arange(max_len)[:, None] >= lengths] = 0  # padding id
    return tokens, lengths, labels


def test_classifier_learns_whether_a_sequence_contains_a_token():
    rng = np.random.default_rng(0)
    model = SequenceClassifier(8, 8, 16, 2, pooling="max", bidirectional=True, padding_idx=0, rng=1)
    opt = Adam(model, lr=0.02)
    for _ in range(150):
        tokens, lengths, labels = make_contains_task(rng, 32)
        opt.zero_grad()
        model.loss(tokens, labels, lengths)
        opt.step()
    tokens, lengths, labels = make_contains_task(np.random.default_rng(99), 500)
    accuracy = np.mean(model.predict(tokens, lengths) == labels)
    assert accuracy > 0.97, accuracy


def make_tag_task(rng, n, vocab=6, max_len=9):
    """Tag 1 where the next token is larger than this one (needs the right context)."""
    lengths = rng.integers(2, max_len + 1, n)
    tokens = rng.integers(0, vocab, (max_len, n))
    tags = np.zeros((max_len, n), np.int64)
    tags[:-1] = tokens[1:] > tokens[:-1]
    valid = np.arange(max_len)[:, None] < lengths
    tags[np.arange(max_len)[:, None] >= lengths - 1] = 0  # the last token has no next one
    return tokens, lengths, tags, valid


def test_tagger_learns_a_rule_that_needs_the_next_token():
    rng = np.random.default_rng(1)
    model = SequenceTagger(6, 8, 16, num_tags=2, rng=2)
    opt = Adam(model, lr=0.02)
    for _ in range(150):
        tokens, lengths, tags, _ = make_tag_task(rng, 32)
        opt.zero_grad()
        model.loss(tokens, tags, lengths)
        opt.step()
    tokens, lengths, tags, valid = make_tag_task(np.random.default_rng(98), 300)
    predicted = model.predict(tokens, lengths)
    accuracy = np.mean(predicted[valid] == tags[valid])
    assert accuracy > 0.97, accuracy
    assert np.all(predicted[~valid] == -1)


def test_forecaster_beats_the_last_value_baseline_on_a_sine():
    rng = np.random.default_rng(2)
    model = Forecaster(1, 16, horizon=3, rng=3)
    opt = Adam(model, lr=0.02)

    def batch(n):
        phase = rng.uniform(0, 2 * np.pi, n)
        t = np.arange(15)[:, None] * 0.4 + phase
        series = np.sin(t).astype(np.float32)[:, :, None]
        return series[:12], series[12:].transpose(1, 0, 2)

    for _ in range(200):
        x, target = batch(32)
        opt.zero_grad()
        model.loss(x, target)
        opt.step()
    x, target = batch(200)
    loss, _ = mse(model(x), target)
    baseline, _ = mse(np.repeat(x[-1][:, None, :], 3, axis=1), target)
    assert loss < 0.01 * baseline, (loss, baseline)


# -- bad input -----------------------------------------------------------------------


def test_bad_input_errors():
    model = LanguageModel(10, 4, 4, 1, rng=0)
    with pytest.raises(TypeError, match="tokens: expected an integer array.*float64"):
        model(np.zeros((3, 2)))
    with pytest.raises(
        ValueError, match=r"tokens: expected ids in 0\.\.9, found 10 at index \(2, 1\)"
    ):
        model(np.array([[1, 2], [3, 4], [5, 10]]))
    with pytest.raises(ValueError, match=r"tokens: expected shape \(T, B\)"):
        model(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"prefix_ids: expected ids in 0\.\.9, found 12"):
        model.sample([12], 3)
    with pytest.raises(ValueError, match="tie_weights: needs embed_size == hidden_size"):
        LanguageModel(10, 4, 5, tie_weights=True)
    with pytest.raises(ValueError, match="vocab_size, input_size: expected exactly one"):
        SequenceClassifier(10, input_size=3)
    with pytest.raises(ValueError, match="pooling: expected one of"):
        SequenceClassifier(10, pooling="first")
    classifier = SequenceClassifier(10, 4, 4, 2, rng=0)
    with pytest.raises(ValueError, match=r"targets: expected class ids in 0\.\.1, found 2"):
        classifier.loss(np.zeros((3, 2), int), np.array([0, 2]))
    with pytest.raises(ValueError, match="lengths"):
        classifier(np.zeros((3, 2), int), np.array([4, 1]))
    with pytest.raises(ValueError, match=r"inputs: expected features of shape \(T, B, I\)"):
        Forecaster(2)(np.zeros((3, 2), np.float32))


def test_tagger_loss_skips_negative_tags_and_backward_false_adds_nothing():
    rng = np.random.default_rng(5)
    tagger = SequenceTagger(9, 4, 5, 3, rng=0)
    x = rng.integers(0, 9, (4, 2))
    tags = np.array([[0, 1], [-1, 2], [2, 0], [1, 2]])  # step 3 of sequence 1 is padding
    lengths = np.array([4, 3])
    loss, logits = tagger.loss(x, tags, lengths, backward=False)
    assert all(not grad.any() for _, _, grad in tagger.named_parameters())
    counted = [(t, b) for t in range(4) for b in range(2) if tags[t, b] >= 0 and t < lengths[b]]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean([log_probs[t, b, tags[t, b]] for t, b in counted])
    assert len(counted) == 6 and np.isclose(loss, expected, rtol=1e-6)
    again, _ = tagger.loss(x, tags, lengths)
    assert again == loss and any(grad.any() for _, _, grad in tagger.named_parameters())


# -- the GRU and sLSTM cells in every model ------------------------------------------

OTHER_CELLS = [dict(cell="gru"), dict(cell="slstm", num_heads=2)]


@pytest.mark.parametrize("cell", OTHER_CELLS, ids=lambda c: c["cell"])
def test_language_model_gradients_with_other_cells(cell):
    rng = np.random.default_rng(10)
    model = LanguageModel(
        7, 4, 4, num_layers=2, dropout=0.2, tie_weights=True, dtype=np.float64, rng=11, **cell
    )
    # a state the model reached itself: the sLSTM's normaliser n must stay positive
    with model.eval_mode():
        _, state = model(rng.integers(0, 7, (3, 2)))
    assert len(state) == {"gru": 1, "slstm": 4}[cell["cell"]]
    tokens, targets = rng.integers(0, 7, (4, 2)), rng.integers(0, 7, (4, 2))

    def run():
        logits, _ = model(tokens, state)
        return softmax_cross_entropy(logits, targets)

    check_model_gradients(model, run, model.backward)


@pytest.mark.parametrize("cell", OTHER_CELLS, ids=lambda c: c["cell"])
def test_tagger_gradients_with_other_cells(cell):
    _check_tagger_gradients(12, hidden_size=4, num_tags=3, **cell)


@pytest.mark.parametrize("cell", OTHER_CELLS, ids=lambda c: c["cell"])
def test_classifier_and_forecaster_gradients_with_other_cells(cell):
    rng = np.random.default_rng(14)
    classifier = SequenceClassifier(
        input_size=2, hidden_size=4, num_classes=3, pooling="max", bidirectional=True,
        dtype=np.float64, rng=15, **cell,
    )  # fmt: skip
    x, lengths, labels = rng.standard_normal((4, 2, 2)), np.array([4, 3]), np.array([2, 0])
    check_model_gradients(
        classifier,
        lambda: softmax_cross_entropy(classifier(x, lengths), labels),
        classifier.backward,
        x,
    )
    forecaster = Forecaster(2, 4, num_layers=2, horizon=2, dtype=np.float64, rng=16, **cell)
    target = rng.standard_normal((2, 2, 2))
    check_model_gradients(
        forecaster, lambda: mse(forecaster(x, lengths), target), forecaster.backward, x
    )


def test_cell_choice_round_trips_and_bad_cells_are_named():
    for cls, args in [
        (LanguageModel, (9,)),
        (SequenceClassifier, (9,)),
        (SequenceTagger, (9,)),
        (Forecaster, (3,)),
    ]:
        for cell, layer_name, heads in [
            ("lstm", "LSTM", 1),
            ("gru", "GRU", 1),
            ("slstm", "SLSTM", 4),
        ]:
            model = cls(*args, hidden_size=8, cell=cell, num_heads=heads, rng=0)
            assert type(model.recurrent).__name__ == layer_name
            assert getattr(model, cell) is model.recurrent
            assert all(
                name.split(".")[0] != "lstm" or cell == "lstm" for name in model.state_dict()
            )
            config = json.loads(json.dumps(model.config()))
            assert config["cell"] == cell and config["num_heads"] == heads
            rebuilt = cls.from_config(config)
            assert rebuilt.state_dict().keys() == model.state_dict().keys()
        old = {k: v for k, v in model.config().items() if k not in ("cell", "num_heads")}
        assert cls.from_config(old).cell == "lstm"  # configs from before the cells
    with pytest.raises(ValueError, match="cell: expected one of lstm, gru, slstm, found 'rnn'"):
        LanguageModel(9, cell="rnn")
    with pytest.raises(ValueError, match="num_heads: only the slstm cell has heads"):
        SequenceTagger(9, cell="gru", num_heads=2)
    with pytest.raises(ValueError, match="num_heads: expected a divisor of hidden_size 8"):
        Forecaster(3, 8, cell="slstm", num_heads=3)
    with pytest.raises(ValueError, match="proj_size: only the lstm cell has a projection"):
        LanguageModel(9, 4, 6, proj_size=4, cell="slstm")
    with pytest.raises(TypeError, match="num_heads: expected an integer, found float"):
        LanguageModel(9, cell="slstm", num_heads=2.0)
    gru = LanguageModel(9, 4, 6, num_layers=1, cell="gru", rng=0)
    with pytest.raises(ValueError, match=r"state: expected a tuple \(h,\) for the gru cell"):
        gru(np.zeros((2, 1), int), np.zeros((1, 1, 6), np.float32))
