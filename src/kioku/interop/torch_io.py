"""PyTorch in and out: ``torch.nn.LSTM`` / ``torch.nn.LSTMCell`` <-> kioku, and PyTorch
state dicts saved as safetensors read with NumPy alone.

kioku uses PyTorch's parameter names, shapes and gate order (i, f, g, o), so the
conversion is a copy; what is checked is that every key is there with its shape.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import numpy as np

from ..nn import LSTM, LSTMCell
from ..nn.lstm_variants import VARIANT_DEFAULTS, variants_of
from .optional import require

_LAYER_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


def _require_torch():
    return require("torch", "to_torch/from_torch(module)", "PyTorch", "'kioku-lstm[torch]'")


def _to_numpy(value: object) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_state_dict(state: Mapping[str, np.ndarray], expected: Mapping[str, tuple]) -> None:
    """``ValueError`` naming the first missing, extra or mis-shaped key of ``state``
    against ``expected`` (name -> shape)."""
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ValueError(f"state_dict: missing key {missing[0]!r} (expected {sorted(expected)})")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise ValueError(f"state_dict: unexpected key {extra[0]!r} (expected {sorted(expected)})")
    for name, shape in expected.items():
        found = np.shape(state[name])
        if tuple(found) != tuple(shape):
            raise ValueError(f"state_dict[{name!r}]: expected shape {tuple(shape)}, found {found}")


def _infer_lstm_config(state: Mapping[str, np.ndarray]) -> dict:
    """Constructor arguments of the ``nn.LSTM`` that produced ``state`` (by its keys)."""
    layers, reverse, proj = set(), False, 0
    for name in state:
        match = _LAYER_KEY.match(name)
        if match is None:
            raise ValueError(
                f"state_dict: unexpected key {name!r} (expected torch.nn.LSTM names such as "
                f"'weight_ih_l0' or torch.nn.LSTMCell names such as 'weight_ih')"
            )
        layers.add(int(match.group(2)))
        reverse = reverse or match.group(3) is not None
        if match.group(1) == "weight_hr":
            proj = int(np.shape(state[name])[0])
    for key in ("weight_ih_l0", "weight_hh_l0"):
        if key not in state:
            raise ValueError(f"state_dict: missing key {key!r}")
    return {
        "input_size": int(np.shape(state["weight_ih_l0"])[1]),
        "hidden_size": int(np.shape(state["weight_hh_l0"])[0]) // 4,
        "num_layers": max(layers) + 1,
        "bias": "bias_ih_l0" in state,
        "bidirectional": reverse,
        "proj_size": proj,
    }


def _dtype_of(state: Mapping[str, np.ndarray]) -> np.dtype:
    dtypes = {np.asarray(v).dtype for v in state.values()}
    return np.dtype(np.float64) if np.dtype(np.float64) in dtypes else np.dtype(np.float32)


def from_torch(module_or_state_dict: object, **config) -> LSTM | LSTMCell:
    """A kioku ``LSTM`` (or ``LSTMCell``) holding the weights of a ``torch.nn.LSTM``
    (``torch.nn.LSTMCell``) or of its state dict (tensors or arrays).

    From a module, every constructor option is read from it; from a state dict, the
    sizes are inferred from the keys and shapes, and ``config`` (e.g. ``batch_first``,
    ``dropout``) fills the rest or overrides. Keys and shapes are checked first:
    ``ValueError`` names a missing, extra or mis-shaped key.
    """
    if isinstance(module_or_state_dict, Mapping):
        state = {k: _to_numpy(v) for k, v in module_or_state_dict.items()}
        if "weight_ih" in state:  # LSTMCell names carry no layer suffix
            cell_config = {
                "input_size": int(np.shape(state["weight_ih"])[1]),
                "hidden_size": int(np.shape(state["weight_ih"])[0]) // 4,
                "bias": "bias_ih" in state,
                "dtype": _dtype_of(state),
            }
            kioku = LSTMCell(**{**cell_config, **config})
        else:
            kioku = LSTM(**{**_infer_lstm_config(state), "dtype": _dtype_of(state), **config})
    elif isinstance(module_or_state_dict, (str, bytes, os.PathLike)):
        raise TypeError(
            "module_or_state_dict: expected torch.nn.LSTM, torch.nn.LSTMCell or a state dict, "
            f"found a path {os.fsdecode(module_or_state_dict)!r}: kioku never unpickles a .pt "
            "file; save the state dict with safetensors.torch.save_file and read it with "
            "load_torch_safetensors"
        )
    else:
        torch = _require_torch()
        module = module_or_state_dict
        if not isinstance(module, (torch.nn.LSTM, torch.nn.LSTMCell)):
            raise TypeError(
                "module_or_state_dict: expected torch.nn.LSTM, torch.nn.LSTMCell or a state "
                f"dict, found {type(module).__name__}"
            )
        state = {k: _to_numpy(v) for k, v in module.state_dict().items()}
        dtype = _dtype_of(state)
        if isinstance(module, torch.nn.LSTMCell):
            kioku = LSTMCell(module.input_size, module.hidden_size, module.bias, dtype=dtype)
        else:
            options = dict(
                input_size=module.input_size,
                hidden_size=module.hidden_size,
                num_layers=module.num_layers,
                bias=module.bias,
                batch_first=module.batch_first,
                dropout=float(module.dropout),
                bidirectional=module.bidirectional,
                proj_size=module.proj_size,
                dtype=dtype,
            )
            kioku = LSTM(**{**options, **config})
    check_state_dict(state, {name: p.shape for name, p in kioku.params.items()})
    kioku.load_state_dict({k: v.astype(kioku.dtype) for k, v in state.items()})
    return kioku


def to_torch(module: LSTM | LSTMCell):
    """The ``torch.nn.LSTM`` (``torch.nn.LSTMCell``) equal to a kioku ``LSTM``
    (``LSTMCell``), weights copied, in the same dtype. Variants PyTorch lacks and merge
    modes other than concat are refused (``ValueError`` naming them)."""
    torch = _require_torch()
    if isinstance(module, LSTMCell):
        result = torch.nn.LSTMCell(module.input_size, module.hidden_size, module.bias)
    elif isinstance(module, LSTM):
        on = [k for k, v in variants_of(module).items() if v != VARIANT_DEFAULTS[k]]
        if on:
            raise ValueError(f"module: torch.nn.LSTM has no {', '.join(on)} (variants set)")
        if module.merge_mode != "concat":
            raise ValueError(
                f"merge_mode: torch.nn.LSTM concatenates directions, found {module.merge_mode!r}"
            )
        result = torch.nn.LSTM(
            module.input_size,
            module.hidden_size,
            num_layers=module.num_layers,
            bias=module.bias,
            batch_first=module.batch_first,
            dropout=module.dropout,
            bidirectional=module.bidirectional,
            proj_size=module.proj_size,
        )
    else:
        raise TypeError(
            f"module: expected kioku.nn.LSTM or kioku.nn.LSTMCell, found {type(module).__name__}"
        )
    result = result.to(torch.float64 if module.dtype == np.float64 else torch.float32)
    tensors = {name: torch.from_numpy(value.copy()) for name, value in module.params.items()}
    result.load_state_dict(tensors, strict=True)
    return result


def load_torch_safetensors(path: str | os.PathLike, prefix: str = "") -> dict[str, np.ndarray]:
    """Read a PyTorch state dict saved with ``safetensors.torch.save_file`` as NumPy arrays,
    without PyTorch. With ``prefix`` (e.g. ``"encoder.lstm."``), keep only the keys that
    start with it, prefix removed. Pass the result to :func:`from_torch`."""
    try:
        from safetensors.numpy import load_file
    except ImportError as error:  # pragma: no cover - safetensors is a train dependency
        raise ImportError(
            "load_torch_safetensors needs safetensors: pip install safetensors"
        ) from error
    if not os.path.isfile(path):
        raise ValueError(f"path: expected a safetensors file, found nothing at {os.fspath(path)!r}")
    try:
        arrays = load_file(os.fspath(path))
    except Exception as error:  # safetensors' SafetensorError and friends
        message = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(
            f"{os.fspath(path)}: not a readable safetensors file ({message})"
        ) from None
    if prefix:
        arrays = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        if not arrays:
            raise ValueError(f"prefix: no key of {os.fspath(path)!r} starts with {prefix!r}")
    return arrays
