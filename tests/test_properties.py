"""Property-based tests over the library's inputs (hypothesis): every constructor argument,
input, state, length vector, dtype, merge mode and variant either gives PyTorch's result
(torch 2.13, the plain LSTM) or raises ValueError/TypeError naming the argument; never a
NumPy error from deep inside, never a crash.

Each example changes at most one argument to a value that is certainly wrong, so the
error must name that argument. ``KIOKU_PROPERTY_EXAMPLES`` raises the example counts
for a longer run by hand."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerance import assert_close, recurrent_depth

import kioku

torch = pytest.importorskip("torch", reason="torch==2.13.0 is the parity reference (test extra)")

EXAMPLES = int(os.environ.get("KIOKU_PROPERTY_EXAMPLES", "120"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

BAD_SIZES = [0, -1, 2.5, True, "3", None, np.nan]
BAD_VALUES = {
    "input_size": BAD_SIZES,
    "hidden_size": BAD_SIZES,
    "num_layers": [0, -2, 1.5, "2", None],
    "dropout": [-0.1, 1.5, float("nan"), "0.1", None],
    "proj_size": [-1, "hidden", 1.5, "1"],
    "merge_mode": ["foo", None, 3, "CONCAT"],
    "x": ["features", "rank4", "rank1", "empty", "int", "other_float", "strings"],
    "state": ["h_shape", "c_shape", "dtype", "not_tuple", "three", "batch"],
    "lengths": ["zero", "too_long", "negative", "count", "float", "rank2", "strings"],
}


pytestmark = pytest.mark.torch


@st.composite
def cases(draw):
    """A layer configuration and a call, with at most one argument made wrong."""
    bad = draw(st.sampled_from([None, None, None, *BAD_VALUES]))
    hidden = draw(st.integers(1, 5))
    config = {
        "input_size": draw(st.integers(1, 4)),
        "hidden_size": hidden,
        "num_layers": draw(st.integers(1, 2)),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bidirectional": draw(st.booleans()),
        "proj_size": draw(st.integers(0, hidden - 1)) if hidden > 1 else 0,
        "dropout": 0.0,
        "merge_mode": "concat",
        "dtype": draw(st.sampled_from([np.float32, np.float64])),
    }
    if config["bidirectional"]:
        config["merge_mode"] = draw(st.sampled_from(["concat", "concat", "sum", "mean", "mul"]))
        if config["merge_mode"] != "concat":
            config["num_layers"] = 1  # deeper layers read the merged output, torch the concat
    call = {
        "T": draw(st.integers(1, 4)),
        "B": draw(st.integers(1, 3)),
        "unbatched": draw(st.booleans()) and draw(st.booleans()),
        "lengths": draw(st.booleans()),
        "state": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }
    if bad in ("input_size", "hidden_size", "num_layers", "dropout"):
        config[bad] = draw(st.sampled_from(BAD_VALUES[bad]))
    elif bad == "proj_size":
        value = draw(st.sampled_from(BAD_VALUES[bad]))
        config[bad] = hidden if value == "hidden" else value
    elif bad == "merge_mode":
        config["bidirectional"] = True
        config[bad] = draw(st.sampled_from(BAD_VALUES[bad]))
    elif bad is not None:
        call["bad"] = draw(st.sampled_from(BAD_VALUES[bad]))
        if bad == "lengths":
            call["unbatched"], call["lengths"] = False, True
        if bad == "state":
            call["state"] = True
            if call["bad"] == "batch":
                call["unbatched"] = False
    return bad, config, call


def make_inputs(config: dict, call: dict, bad: str | None):
    """``x``, ``state`` and ``lengths`` for the call (one of them wrong when ``bad`` names it)."""
    r = np.random.default_rng(call["seed"])
    dtype = config["dtype"]
    T, B, I = call["T"], call["B"], config["input_size"]
    L, H = config["num_layers"], config["hidden_size"]
    D = 2 if config["bidirectional"] else 1
    P = config["proj_size"] or H
    what = call.get("bad")
    if call["unbatched"]:
        x = r.normal(size=(T, I))
    else:
        x = r.normal(size=(B, T, I) if config["batch_first"] else (T, B, I))
    x = x.astype(dtype)
    if bad == "x":
        x = {
            "features": np.zeros((*x.shape[:-1], I + 1), dtype),
            "rank4": x[..., None],
            "rank1": x.reshape(-1),
            "empty": np.zeros((0, B, I) if not config["batch_first"] else (B, 0, I), dtype),
            "int": np.ones(x.shape, np.int64),
            "other_float": x.astype(np.float64 if dtype == np.float32 else np.float32),
            "strings": np.full(x.shape, "a"),
        }[what]
    lengths = None
    if call["lengths"] and not call["unbatched"]:
        lengths = r.integers(1, T + 1, size=B)
        lengths[r.integers(B)] = T  # torch's unpacking keeps T steps only if one has them
        if bad == "lengths":
            lengths = {
                "zero": np.where(np.arange(B) == 0, 0, lengths),
                "too_long": lengths + T,
                "negative": -lengths,
                "count": np.append(lengths, 1),
                "float": lengths + 0.5,
                "rank2": lengths[None, :],
                "strings": np.array(["a"] * B),
            }[what]
    state = None
    if call["state"]:
        batch = () if call["unbatched"] else (B,)
        h0 = r.normal(size=(L * D, *batch, P)).astype(dtype)
        c0 = r.normal(size=(L * D, *batch, H)).astype(dtype)
        state = (h0, c0)
        if bad == "state":
            other = np.float64 if dtype == np.float32 else np.float32
            state = {
                "h_shape": (np.zeros((L * D + 1, *batch, P), dtype), c0),
                "c_shape": (h0, np.zeros((L * D, *batch, H + 1), dtype)),
                "dtype": (h0.astype(other), c0),
                "not_tuple": h0,
                "three": (h0, c0, c0),
                "batch": (np.zeros((L * D, B + 1, P), dtype), np.zeros((L * D, B + 1, H), dtype)),
            }[what]
    return x, state, lengths


def torch_reference(lstm: kioku.nn.LSTM, config: dict, x, state, lengths):
    """torch.nn.LSTM with ``lstm``'s parameters on the same call: ``y, h_n, c_n``."""
    args = {k: config[k] for k in ("input_size", "hidden_size", "num_layers", "bias")}
    args.update(batch_first=config["batch_first"], bidirectional=config["bidirectional"])
    peer = torch.nn.LSTM(**args, proj_size=config["proj_size"])
    if config["dtype"] == np.float64:
        peer = peer.double()
    peer.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in lstm.state_dict().items()})
    x_t = torch.from_numpy(x)
    state_t = None if state is None else tuple(torch.from_numpy(s) for s in state)
    with torch.no_grad():
        if lengths is None:
            y, (h, c) = peer(x_t, state_t)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                x_t, torch.as_tensor(lengths), batch_first=config["batch_first"],
                enforce_sorted=False,
            )  # fmt: skip
            y, (h, c) = peer(packed, state_t)
            y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=config["batch_first"])
    y = y.numpy()
    if config["bidirectional"] and config["merge_mode"] != "concat":
        half = y.shape[-1] // 2
        first, second = y[..., :half], y[..., half:]
        y = {"sum": first + second, "mean": (first + second) / 2, "mul": first * second}[
            config["merge_mode"]
        ]
    return y, h.numpy(), c.numpy()


def names_the_argument(error: Exception, bad: str) -> bool:
    return bad in str(error) or (bad == "merge_mode" and "merge" in str(error))


@SETTINGS
@given(cases())
def test_lstm_gives_torchs_result_or_names_the_bad_argument(case):
    bad, config, call = case
    try:
        lstm = kioku.nn.LSTM(**config, rng=call["seed"])
        x, state, lengths = make_inputs(config, call, bad)
        y, (h_n, c_n) = lstm(x, state, lengths)
    except (ValueError, TypeError) as error:
        assert bad is not None, f"a valid call was refused: {error}"
        assert names_the_argument(error, bad), f"{bad}: {error}"
        return
    assert bad is None, f"{bad} = {call.get('bad', config.get(bad))!r} was accepted"
    y_t, h_t, c_t = torch_reference(lstm, config, x, state, lengths)
    assert y.dtype == config["dtype"] and y.shape == y_t.shape
    H, D = config["hidden_size"], 2 if config["bidirectional"] else 1
    L, P = config["num_layers"], config["proj_size"] or H
    widest = max(config["input_size"], D * P if L > 1 else 0)
    depth = recurrent_depth(call["T"], widest, H, L, call["B"])
    for name, ours, theirs in (("y", y, y_t), ("h_n", h_n, h_t), ("c_n", c_n, c_t)):
        assert_close(name, ours, theirs, depth, config["dtype"])


VARIANT_BAD = {
    "clip": [0, -1.0, float("inf"), "1", True],
    "zoneout": [-0.1, 1.0, 1.5, (0.1,), "0.1"],
    "recurrent_dropout": [-0.5, 1.0, "0.2", float("nan")],
    "activations": [("Sigmoid", "Tanh"), ("Nope", "Tanh", "Tanh"), "Sigmoid", 3],
}


@st.composite
def variant_cases(draw):
    bad = draw(st.sampled_from([None, None, *VARIANT_BAD]))
    kwargs = {
        "peephole": draw(st.booleans()),
        "input_forget": draw(st.booleans()),
        "clip": draw(st.sampled_from([None, 0.5, 3.0])),
        "layer_norm": draw(st.booleans()),
        "zoneout": draw(st.sampled_from([0.0, 0.2, (0.1, 0.3)])),
        "recurrent_dropout": draw(st.sampled_from([0.0, 0.25])),
        "activations": draw(
            st.sampled_from([None, ("HardSigmoid", "Tanh", "Softsign"), ("Sigmoid", "Elu", "Tanh")])
        ),
    }
    if bad is not None:
        kwargs[bad] = draw(st.sampled_from(VARIANT_BAD[bad]))
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    hidden = draw(st.integers(1, 4))
    layers = draw(st.integers(1, 2))
    bidirectional = draw(st.booleans())
    train = draw(st.booleans())
    return bad, kwargs, shape, hidden, layers, bidirectional, train, draw(st.integers(0, 999))


@SETTINGS
@given(variant_cases())
def test_lstm_variants_run_or_name_the_bad_argument(case):
    bad, kwargs, (T, B, I), hidden, layers, bidirectional, train, seed = case
    if bidirectional and kwargs["activations"] is not None and bad != "activations":
        kwargs["activations"] = tuple(kwargs["activations"]) * 2  # one triple per direction
    try:
        lstm = kioku.nn.LSTMVariant(
            I, hidden, layers, bidirectional=bidirectional, rng=seed, **kwargs
        )
        lstm.train(train)
        x = np.random.default_rng(seed).normal(size=(T, B, I)).astype(np.float32)
        y, (h_n, c_n) = lstm(x)
        dx, _ = lstm.backward(np.ones_like(y))
    except (ValueError, TypeError) as error:
        assert bad is not None, f"valid variants {kwargs} were refused: {error}"
        assert bad in str(error), f"{bad}: {error}"
        return
    assert bad is None, f"{bad} = {kwargs[bad]!r} was accepted"
    D = 2 if bidirectional else 1
    assert y.shape == (T, B, D * hidden) and h_n.shape == c_n.shape == (layers * D, B, hidden)
    assert dx.shape == x.shape
    assert all(np.isfinite(a).all() for a in (y, h_n, c_n, dx))


@SETTINGS
@given(st.integers(0, 2**16), st.booleans())
def test_plain_variant_is_torchs_lstm(seed, bidirectional):
    """With every variant off, LSTMVariant is torch.nn.LSTM too."""
    config = {
        "input_size": 3, "hidden_size": 4, "num_layers": 2, "bias": True, "batch_first": False,
        "bidirectional": bidirectional, "proj_size": 0, "merge_mode": "concat",
        "dtype": np.float64,
    }  # fmt: skip
    lstm = kioku.nn.LSTMVariant(3, 4, 2, bidirectional=bidirectional, dtype=np.float64, rng=seed)
    x = np.random.default_rng(seed).normal(size=(5, 2, 3))
    y, (h_n, c_n) = lstm(x)
    y_t, h_t, c_t = torch_reference(lstm, config, x, None, None)
    depth = recurrent_depth(5, 8 if bidirectional else 4, 4, layers=2, batch=2)
    for name, ours, theirs in (("y", y, y_t), ("h_n", h_n, h_t), ("c_n", c_n, c_t)):
        assert_close(name, ours, theirs, depth, np.float64)
