"""Stateful layers: thin wrappers over :mod:`kioku.functional` and :mod:`kioku.kernels`
that own parameters (PyTorch's names), gradients and the train/eval mode."""

from .blockwise import blockwise
from .cell import LSTMCell
from .dropout import Dropout
from .embedding import Embedding
from .grad_mode import is_grad_enabled, no_grad
from .gru import GRU, GRUCell
from .hooks import HookHandle
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss, mse, softmax_cross_entropy
from .lstm import LSTM
from .lstm_variants import LSTMVariant
from .math_mode import reference_math
from .module import Module, Parameter, parameters_changed
from .recurrent import MERGE_MODES
from .rnn import RNN
from .slstm import SLSTM

__all__ = [
    "GRU",
    "LSTM",
    "LSTMVariant",
    "MERGE_MODES",
    "RNN",
    "SLSTM",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "GRUCell",
    "HookHandle",
    "LSTMCell",
    "Linear",
    "MSELoss",
    "Module",
    "is_grad_enabled",
    "Parameter",
    "blockwise",
    "mse",
    "no_grad",
    "parameters_changed",
    "reference_math",
    "softmax_cross_entropy",
]
