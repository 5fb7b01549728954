"""PyTorch, Keras and ONNX in and out. Each framework is imported only when used.

- :func:`from_torch`, :func:`to_torch`, :func:`load_torch_safetensors`
- :func:`from_keras`, :func:`to_keras`
- :func:`to_onnx`, :func:`from_onnx`
"""

from .keras_io import KerasLSTM, from_keras, to_keras
from .onnx_io import OnnxLSTM, from_onnx, to_onnx
from .torch_io import from_torch, load_torch_safetensors, to_torch

__all__ = [
    "KerasLSTM",
    "OnnxLSTM",
    "from_keras",
    "from_onnx",
    "from_torch",
    "load_torch_safetensors",
    "to_keras",
    "to_onnx",
    "to_torch",
]
