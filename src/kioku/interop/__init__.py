"""PyTorch, Keras and ONNX in and out. Each framework is imported only when used.

- :func:`from_torch`, :func:`to_torch`, :func:`load_torch_safetensors`
- :func:`from_keras`, :func:`to_keras`
- :func:`to_onnx`, :func:`from_onnx`
- the GRU: :func:`from_keras_gru`, :func:`to_keras_gru`, :func:`to_onnx_gru`, :func:`from_onnx_gru`
"""

from .keras_gru import KerasGRU, from_keras_gru, to_keras_gru
from .keras_io import KerasLSTM, from_keras, to_keras
from .onnx_gru import OnnxGRU, from_onnx_gru, to_onnx_gru
from .onnx_io import OnnxLSTM, from_onnx, to_onnx
from .torch_io import from_torch, load_torch_safetensors, to_torch

__all__ = [
    "KerasGRU",
    "KerasLSTM",
    "OnnxGRU",
    "OnnxLSTM",
    "from_keras",
    "from_keras_gru",
    "from_onnx",
    "from_onnx_gru",
    "from_torch",
    "load_torch_safetensors",
    "to_keras",
    "to_keras_gru",
    "to_onnx",
    "to_onnx_gru",
    "to_torch",
]
