"""Looking inside the memory: gate traces, gradient flow, gate saturation, cell search,
and the plots and HTML reports built on them.

``with kioku.inspect.trace(model) as tr: model(x)`` records f, i, g, o, c and h of every
LSTM inside ``model``; :func:`gradient_flow` and :func:`record_gradients` give dL/dh_t and
dL/dc_t of every step; :func:`gate_saturation` and :func:`cell_search` summarise a trace.
Plots need matplotlib (imported only when a plot is drawn).
"""

from .cells import CellMatch, cell_search, correlations
from .features import FEATURES, get_feature
from .gradients import StateGradients, gradient_flow, record_gradients, step_norms
from .saturation import Saturation, gate_saturation
from .trace import DirectionTrace, Trace, trace

__all__ = [
    "FEATURES",
    "CellMatch",
    "DirectionTrace",
    "Saturation",
    "StateGradients",
    "Trace",
    "cell_search",
    "correlations",
    "gate_saturation",
    "get_feature",
    "gradient_flow",
    "record_gradients",
    "step_norms",
    "trace",
]
