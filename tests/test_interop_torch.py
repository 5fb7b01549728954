"""PyTorch in and out: nn.LSTM (every option) and nn.LSTMCell both ways, state dicts with
their keys checked, and safetensors state dicts read with torch unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tolerance import assert_close, recurrent_depth

torch = pytest.importorskip("torch")
from kioku.interop import from_torch, load_torch_safetensors, to_torch  # noqa: E402
from kioku.nn import LSTM, LSTMCell, LSTMVariant  # noqa: E402

# every comparison here is a forward of at most 3 layers of 7 cells (14 inputs above a
# bidirectional first layer), 6 steps, 3 sequences: within the rounding of that depth
DEPTH = recurrent_depth(6, 14, 7, layers=3, batch=3)
SRC = Path(__file__).resolve().parents[1] / "src"

TORCH_CONFIGS = {
    "plain": dict(),
    "stacked bidirectional": dict(num_layers=2, bidirectional=True),
    "projection": dict(num_layers=2, proj_size=3),
    "bidirectional projection batch_first": dict(bidirectional=True, proj_size=2, batch_first=True),
    "no bias": dict(bias=False, num_layers=2),
    "dropout": dict(num_layers=3, dropout=0.3),
}


pytestmark = pytest.mark.torch


def _torch_run(module, x, lengths=None):
    with torch.no_grad():
        if lengths is None:
            y, (h, c) = module(torch.from_numpy(x))
            return y.numpy(), h.numpy(), c.numpy()
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            torch.from_numpy(x), torch.tensor(lengths), module.batch_first, enforce_sorted=False
        )
        y, (h, c) = module(packed)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(
            y, module.batch_first, total_length=x.shape[1 if module.batch_first else 0]
        )
        return y.numpy(), h.numpy(), c.numpy()


@pytest.mark.parametrize("case", list(TORCH_CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_torch_matches_torch(case, dtype):
    torch.manual_seed(1)
    module = torch.nn.LSTM(4, 5, **TORCH_CONFIGS[case]).to(dtype).eval()
    kioku = from_torch(module).eval()
    assert kioku.config()["proj_size"] == module.proj_size
    assert kioku.dtype == (np.float64 if dtype == torch.float64 else np.float32)
    shape = (3, 6, 4) if module.batch_first else (6, 3, 4)
    x = np.random.default_rng(0).standard_normal(shape).astype(kioku.dtype)
    for lengths in (None, [6, 2, 5]):
        y, (h, c) = kioku(x, lengths=lengths)
        for found, expected in zip((y, h, c), _torch_run(module, x, lengths)):
            assert_close("y, h, c", found, expected, DEPTH, found.dtype)


@pytest.mark.parametrize("case", list(TORCH_CONFIGS))
def test_to_torch_matches_kioku(case):
    kioku = LSTM(4, 5, rng=3, **TORCH_CONFIGS[case]).eval()
    module = to_torch(kioku).eval()
    assert isinstance(module, torch.nn.LSTM) and module.proj_size == kioku.proj_size
    x = np.random.default_rng(1).standard_normal((3, 6, 4)).astype(np.float32)
    y, (h, c) = kioku(x)
    for found, expected in zip((y, h, c), _torch_run(module, x)):
        assert_close("y, h, c", found, expected, DEPTH, found.dtype)
    back = from_torch(module)
    for name, value in kioku.params.items():
        np.testing.assert_array_equal(back.params[name], value)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_both_ways(bias):
    torch.manual_seed(2)
    cell = torch.nn.LSTMCell(4, 6, bias=bias)
    kioku = from_torch(cell)
    assert isinstance(kioku, LSTMCell)
    rng = np.random.default_rng(2)
    x, h0, c0 = (rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (3, 6), (3, 6)))
    h, c = kioku(x, (h0, c0))
    with torch.no_grad():
        h_t, c_t = cell(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    assert_close("h", h, h_t.numpy(), DEPTH)
    assert_close("c", c, c_t.numpy(), DEPTH)
    again = to_torch(kioku)
    assert isinstance(again, torch.nn.LSTMCell)
    for name, value in again.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), kioku.params[name])
    from_state = from_torch(cell.state_dict())
    assert isinstance(from_state, LSTMCell) and from_state.bias == bias


def test_from_state_dict_infers_sizes_and_takes_config():
    torch.manual_seed(4)
    module = torch.nn.LSTM(3, 7, num_layers=2, bidirectional=True, proj_size=4, batch_first=True)
    kioku = from_torch(module.state_dict(), batch_first=True)
    config = kioku.config()
    assert (config["input_size"], config["hidden_size"], config["num_layers"]) == (3, 7, 2)
    assert config["bidirectional"] and config["proj_size"] == 4 and config["batch_first"]
    x = np.random.default_rng(4).standard_normal((2, 5, 3)).astype(np.float32)
    for found, expected in zip((kioku(x)[0], *kioku(x)[1]), _torch_run(module.eval(), x)):
        assert_close("y, h, c", found, expected, DEPTH, found.dtype)


def _state(**config):
    torch.manual_seed(0)
    return {k: v.numpy() for k, v in torch.nn.LSTM(3, 4, **config).state_dict().items()}


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("weight_hh_l1"), "missing key 'weight_hh_l1'"),
        (lambda s: s.pop("bias_hh_l0"), "missing key 'bias_hh_l0'"),
        (lambda s: s.update(weight_ih_l0_extra=np.zeros(3)), "unexpected key 'weight_ih_l0_extra'"),
        (lambda s: s.update(bias_ih_l2=np.zeros(16)), "missing key"),
        (
            lambda s: s.update(weight_hh_l1=np.zeros((16, 5), np.float32)),
            r"state_dict\['weight_hh_l1'\]: expected shape \(16, 4\), found \(16, 5\)",
        ),
    ],
)
def test_bad_state_dict_is_refused_naming_the_key(edit, message):
    state = _state(num_layers=2)
    edit(state)
    with pytest.raises(ValueError, match=message):
        from_torch(state)


def test_config_conflicting_with_state_dict_is_refused():
    with pytest.raises(ValueError, match="weight_hr_l0"):
        from_torch(_state(proj_size=2), proj_size=0)


def test_to_torch_refuses_what_torch_lacks():
    with pytest.raises(ValueError, match="peephole"):
        to_torch(LSTMVariant(3, 4, peephole=True))
    with pytest.raises(ValueError, match="merge_mode"):
        to_torch(LSTM(3, 4, bidirectional=True, merge_mode="sum"))
    with pytest.raises(TypeError, match="module_or_state_dict"):
        from_torch(torch.nn.GRU(3, 4))


def test_safetensors_state_dict_loads_without_torch(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(5)
    module = torch.nn.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=2).eval()
    state = {f"encoder.lstm.{k}": v.contiguous() for k, v in module.state_dict().items()}
    state["decoder.weight"] = torch.zeros(2, 2)
    save_file(state, tmp_path / "model.safetensors")
    x = np.random.default_rng(5).standard_normal((4, 2, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = f"""
import sys, json
sys.modules["torch"] = None  # importing torch now fails: prove it is not needed
import numpy as np
from kioku.interop import from_torch, load_torch_safetensors
state = load_torch_safetensors({str(tmp_path / "model.safetensors")!r}, prefix="encoder.lstm.")
lstm = from_torch(state).eval()
y, (h, c) = lstm(np.load({str(tmp_path / "x.npy")!r}))
np.savez({str(tmp_path / "out.npz")!r}, y=y, h=h, c=c)
print(json.dumps(sorted(state)))
"""
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == sorted(module.state_dict())
    out = np.load(tmp_path / "out.npz", allow_pickle=False)
    for found, expected in zip((out["y"], out["h"], out["c"]), _torch_run(module, x)):
        assert_close("y, h, c", found, expected, DEPTH, found.dtype)
    with pytest.raises(ValueError, match="prefix"):
        load_torch_safetensors(tmp_path / "model.safetensors", prefix="nothing.")
    with pytest.raises(ValueError, match="path"):
        load_torch_safetensors(tmp_path / "missing.safetensors")
