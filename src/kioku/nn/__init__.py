"""Stateful layers: thin wrappers over :mod:`kioku.functional` and :mod:`kioku.kernels`
that own parameters (PyTorch's names), gradients and the train/eval mode."""

from .cell import LSTMCell
from .lstm import LSTM
from .module import Module
from .recurrent import MERGE_MODES
from .rnn import RNN

__all__ = ["LSTM", "MERGE_MODES", "LSTMCell", "Module", "RNN"]
