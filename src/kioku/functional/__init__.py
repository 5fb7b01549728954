"""Pure functions: the reference math of one recurrent direction, forward and backward.

No state, no classes beyond the caches the backward needs. :mod:`kioku.kernels` holds
faster implementations of the same contract; :mod:`kioku.nn` wraps both.
"""

from .activations import sigmoid, tanh
from .gru import GRUCache, GRUGrads, gru_backward, gru_forward
from .lstm import LSTMCache, LSTMGrads, lstm_backward, lstm_forward
from .rnn import NONLINEARITIES, RNNCache, RNNGrads, rnn_backward, rnn_forward
from .sequence import length_mask, step_order

__all__ = [
    "NONLINEARITIES",
    "GRUCache",
    "GRUGrads",
    "gru_backward",
    "gru_forward",
    "LSTMCache",
    "LSTMGrads",
    "RNNCache",
    "RNNGrads",
    "length_mask",
    "lstm_backward",
    "lstm_forward",
    "rnn_backward",
    "rnn_forward",
    "sigmoid",
    "step_order",
    "tanh",
]

# LSTM variants (peepholes, coupled gates, clipping, layer norm, zoneout, recurrent dropout)
from .lstm_variants import (  # noqa: E402
    LayerNormParams,
    VariantCache,
    VariantGrads,
    lstm_variant_backward,
    lstm_variant_forward,
)
from .onnx_activations import Activation, activation  # noqa: E402

__all__ += [
    "Activation",
    "LayerNormParams",
    "VariantCache",
    "VariantGrads",
    "activation",
    "lstm_variant_backward",
    "lstm_variant_forward",
]
from .slstm import FORGET_GATES, SLSTMCache, SLSTMGrads, slstm_backward, slstm_forward  # noqa: E402

__all__ += ["FORGET_GATES", "SLSTMCache", "SLSTMGrads", "slstm_backward", "slstm_forward"]
