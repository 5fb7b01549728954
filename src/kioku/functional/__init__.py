"""Pure functions: the reference math of one recurrent direction, forward and backward.

No state, no classes beyond the caches the backward needs. :mod:`kioku.kernels` holds
faster implementations of the same contract; :mod:`kioku.nn` wraps both.
"""

from .activations import sigmoid, tanh
from .gru import GRUCache, GRUGrads, gru_backward, gru_forward
from .lstm import LSTMCache, LSTMGrads, lstm_backward, lstm_forward
from .merge import MERGE_MODES, merge_directions, merge_directions_backward
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

# the hooks of the one LSTM step, and the variants made of them (peepholes, coupled gates,
# clipping, layer norm, zoneout, recurrent dropout)
from .lstm_hooks import Gates, LSTMHooks, split_gates  # noqa: E402
from .lstm_variants import LayerNormParams, VariantHooks  # noqa: E402
from .onnx_activations import Activation, activation  # noqa: E402

__all__ += [
    "Activation",
    "Gates",
    "LSTMHooks",
    "LayerNormParams",
    "VariantHooks",
    "activation",
    "split_gates",
]
from .slstm import FORGET_GATES, SLSTMCache, SLSTMGrads, slstm_backward, slstm_forward  # noqa: E402

__all__ += ["FORGET_GATES", "SLSTMCache", "SLSTMGrads", "slstm_backward", "slstm_forward"]
__all__ += ["MERGE_MODES", "merge_directions", "merge_directions_backward"]
