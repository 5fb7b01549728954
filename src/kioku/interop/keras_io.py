"""Keras 3 in and out: ``keras.layers.LSTM`` and ``Bidirectional(LSTM)`` <-> kioku.

Keras keeps ``kernel (I, 4H)``, ``recurrent_kernel (H, 4H)`` and one ``bias (4H,)``, gates
in order i, f, c, o (kioku's i, f, g, o), so the conversion transposes; the single bias
becomes ``bias_ih`` with ``bias_hh = 0`` (and kioku's two are summed on the way out).
Keras' call semantics (``go_backwards``, ``return_sequences``, ``return_state``, the
Bidirectional merge modes) live in :class:`KerasLSTM`, which wraps a kioku ``LSTM``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ..functional.merge import merge_directions
from ..functional.onnx_activations import Activation, activation
from ..nn import LSTM
from ..nn.lstm_variants import make_lstm, variants_of
from ..nn.recurrent import RecurrentStack
from .optional import require

# Keras activation name -> kioku activation
_KERAS_ACTIVATIONS = {
    "sigmoid": activation("Sigmoid"),
    "tanh": activation("Tanh"),
    "relu": activation("Relu"),
    "linear": activation("Affine", 1.0, 0.0),
    "softsign": activation("Softsign"),
    "softplus": activation("Softplus"),
    "elu": activation("Elu", 1.0),
    "hard_sigmoid": activation("HardSigmoid", 1 / 6, 0.5),  # relu6(x + 3) / 6
}
_MERGE_FROM_KERAS = {"concat": "concat", "sum": "sum", "mul": "mul", "ave": "mean", None: "concat"}
_MERGE_TO_KERAS = {"concat": "concat", "sum": "sum", "mul": "mul", "mean": "ave"}


def _require_keras(functions: str = "from_keras/to_keras"):
    return require("keras", functions, "Keras 3", "keras")


def keras_directions(layer, cell: type) -> tuple[list, str | None, bool]:
    """The Keras layer of each direction of ``layer`` (a built ``cell``, e.g.
    ``keras.layers.LSTM``, or ``Bidirectional(cell)``; forward first), its Keras merge
    mode (``"concat"`` for a one-direction layer) and its ``go_backwards``."""
    keras = _require_keras()
    name = cell.__name__
    if isinstance(layer, keras.layers.Bidirectional):
        forward, backward = layer.forward_layer, layer.backward_layer
        for part in (forward, backward):
            if not isinstance(part, cell):
                raise TypeError(
                    f"layer: expected Bidirectional({name}), found "
                    f"Bidirectional({type(part).__name__})"
                )
        if forward.go_backwards or not backward.go_backwards:
            raise ValueError("layer: expected the forward layer to read forwards, found otherwise")
        directions, merge_mode, go_backwards = [forward, backward], layer.merge_mode, False
        if merge_mode not in _MERGE_FROM_KERAS:
            raise ValueError(
                f"merge_mode: expected concat, sum, mul, ave or None, found {merge_mode!r}"
            )
    elif isinstance(layer, cell):
        directions, merge_mode, go_backwards = [layer], "concat", layer.go_backwards
    else:
        raise TypeError(
            f"layer: expected keras.layers.{name} or Bidirectional, found {type(layer).__name__}"
        )
    if not layer.built:
        raise ValueError("layer: expected a built layer (call it once or build it), found unbuilt")
    return directions, merge_mode, go_backwards


def keras_weights(directions: list, expected: list[tuple[int, ...]]) -> list[list[np.ndarray]]:
    """The weights of each direction's Keras layer, checked against the ``expected``
    shapes (the same for every direction)."""
    weights = [part.get_weights() for part in directions]
    for found in ([w.shape for w in each] for each in weights):
        if found != expected:
            raise ValueError(f"layer weights: expected shapes {expected}, found {found}")
    return weights


def assign_keras_weights(
    layer, directions: list, expected: list[tuple[int, ...]], convert: Callable
) -> None:
    """Each direction's Keras weights (checked against the ``expected`` shapes) into the
    first layer of ``layer``: ``convert(weights)`` maps them to ``{"weight_ih": ...}``,
    kioku's parameter names without the direction suffix, and the values to copy in."""
    for d, weights in enumerate(keras_weights(directions, expected)):
        sfx = layer.suffix(0, d)
        for name, value in convert(weights).items():
            layer.params[f"{name}{sfx}"][...] = value


def import_keras(
    layer,
    keras_type: type,
    make: Callable,
    options: Callable[[dict], dict],
    shapes: Callable[[object], list[tuple[int, ...]]],
    convert: Callable[[object, list[np.ndarray]], dict],
    wrapper: type,
):
    """The frame of every Keras importer: the kioku layer ``make(input_size, hidden_size,
    batch_first=True, ...)`` with ``options(config)`` of the Keras layer (a ``keras_type``
    or ``Bidirectional`` of one), its weights checked against ``shapes(module)`` and copied
    in through ``convert(module, weights)`` (see :func:`assign_keras_weights`), wrapped in
    ``wrapper`` with the Keras layer's call options."""
    directions, merge_mode, go_backwards = keras_directions(layer, keras_type)
    config = directions[0].get_config()
    kernel = directions[0].get_weights()[0]
    module = make(
        kernel.shape[0], int(config["units"]), batch_first=True,
        bidirectional=len(directions) == 2, merge_mode=_MERGE_FROM_KERAS[merge_mode],
        dtype=np.float64 if kernel.dtype == np.float64 else np.float32, **options(config),
    )  # fmt: skip
    assign_keras_weights(
        module, directions, shapes(module), lambda weights: convert(module, weights)
    )
    return wrapper(
        module.eval(), go_backwards, layer.return_sequences, layer.return_state, merge_mode
    )


def keras_call_options(
    module, layer_type: type, wrapper_type: type, call: tuple[bool, bool, bool]
) -> tuple[object, tuple[bool, bool, bool], str]:
    """The kioku layer inside ``module`` (a ``layer_type`` or a ``wrapper_type`` around
    one), the call options ``(return_sequences, return_state, go_backwards)`` to build the
    Keras layer with (a wrapper brings its own, else ``call``) and the Keras merge mode."""
    if isinstance(module, wrapper_type):
        options = (module.return_sequences, module.return_state, module.go_backwards)
        return module.layer, options, module.merge_mode
    if isinstance(module, layer_type):
        return module, call, _MERGE_TO_KERAS[module.merge_mode]
    raise TypeError(
        f"module: expected kioku.nn.{layer_type.__name__} or {wrapper_type.__name__}, "
        f"found {type(module).__name__}"
    )


def build_keras(module, make, go_backwards: bool, merge_mode: str | None, direction_weights):
    """The built Keras layer for ``module`` (a one-layer kioku recurrent layer):
    ``make(go_backwards)`` makes the Keras layer of one direction, ``Bidirectional`` joins
    two, and ``direction_weights(suffix)`` lists the Keras weights of the direction whose
    kioku parameters end in ``suffix``."""
    keras = _require_keras()
    if module.num_directions == 2:
        layer = keras.layers.Bidirectional(
            make(False), merge_mode=merge_mode, dtype=module.dtype.name
        )
    else:
        layer = make(go_backwards)
    layer.build((None, None, module.input_size))
    layer.set_weights(
        [w for d in range(module.num_directions) for w in direction_weights(module.suffix(0, d))]
    )
    return layer


class KerasRecurrent:
    """A kioku recurrent layer called the way Keras calls the layer it came from.

    ``outputs = layer(x (B, T, I), initial_state=None)`` returns what Keras returns: the
    sequence ``(B, T, D*H or H)`` with ``return_sequences`` else the last output ``(B, ...)``;
    with ``return_state`` a list of the output and the final states, each ``(B, H)``, per
    direction in the layer's state order (``[output, h, c]`` for an LSTM, ``[output, h]``
    for a GRU; forward direction first for Bidirectional). ``merge_mode=None``
    (Bidirectional) returns the two directions' outputs as a list. ``initial_state``
    takes the states in the same order.
    """

    def __init__(
        self,
        layer: RecurrentStack,
        go_backwards: bool = False,
        return_sequences: bool = False,
        return_state: bool = False,
        merge_mode: str | None = "concat",
    ) -> None:
        self.layer = layer
        self.go_backwards = bool(go_backwards)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.merge_mode = merge_mode  # Keras' name; None keeps the directions apart

    def __call__(self, x: np.ndarray, initial_state: list | None = None):
        layer = self.layer
        names = layer.state_names
        n, D = len(names), layer.num_directions
        x = np.asarray(x)
        if self.go_backwards:
            x = x[:, ::-1]
        state = None
        if initial_state is not None:
            parts = [np.asarray(s, layer.dtype) for s in initial_state]
            if len(parts) != n * D:
                raise ValueError(
                    f"initial_state: expected {n * D} arrays ({', '.join(names)} per "
                    f"direction), found {len(parts)}"
                )
            stacked = tuple(np.stack(parts[k::n]) for k in range(n))
            state = stacked if n > 1 else stacked[0]
        y, final = layer(np.ascontiguousarray(x), state)
        finals = final if n > 1 else (final,)
        h_n = finals[0]
        if D == 1:
            output = y if self.return_sequences else h_n[0]
            return [output, *(f[0] for f in finals)] if self.return_state else output
        H = layer.hidden_size
        if self.merge_mode is None:
            output = [y[..., :H], y[..., H:]] if self.return_sequences else [h_n[0], h_n[1]]
        elif self.return_sequences:
            output = y
        else:
            output = merge_directions(h_n[0], h_n[1], layer.merge_mode)
        if not self.return_state:
            return output
        states = [f[d] for d in range(D) for f in finals]
        return (output if isinstance(output, list) else [output]) + states


class KerasLSTM(KerasRecurrent):
    """A kioku ``LSTM`` called as Keras calls its ``LSTM`` (see :class:`KerasRecurrent`):
    states ``[h, c]`` per direction."""

    @property
    def lstm(self) -> LSTM:
        return self.layer


def _keras_activation(name: object, argument: str) -> Activation:
    key = name if isinstance(name, str) else getattr(name, "__name__", repr(name))
    if key not in _KERAS_ACTIVATIONS:
        raise ValueError(
            f"{argument}: expected one of {', '.join(_KERAS_ACTIVATIONS)}, found {key!r}"
        )
    return _KERAS_ACTIVATIONS[key]


def _lstm_options(config: dict, ignore_dropout: bool) -> dict:
    """kioku ``LSTM`` keyword arguments from a Keras LSTM's ``get_config()``."""
    for flag in ("stateful",):
        if config.get(flag):
            raise ValueError(f"{flag}: kioku's LSTM is not stateful across calls, found True")
    if config.get("dropout") and not ignore_dropout:
        raise ValueError(
            f"dropout: kioku has no per-input dropout inside the LSTM (found "
            f"{config['dropout']}); pass ignore_dropout=True to drop it (it acts in training only)"
        )
    f = _keras_activation(config.get("recurrent_activation", "sigmoid"), "recurrent_activation")
    g = _keras_activation(config.get("activation", "tanh"), "activation")
    acts = None
    if (f.name, g.name) != ("Sigmoid", "Tanh"):
        acts = [tuple(f), tuple(g), tuple(g)]
    return {
        "bias": bool(config.get("use_bias", True)),
        "recurrent_dropout": float(config.get("recurrent_dropout", 0.0)),
        "activations": acts,
    }


def _lstm_shapes(lstm: LSTM) -> list[tuple[int, ...]]:
    """The shapes of a Keras LSTM direction's weights for ``lstm``."""
    H = lstm.hidden_size
    return [(lstm.input_size, 4 * H), (H, 4 * H)] + ([(4 * H,)] if lstm.bias else [])


def _lstm_params(lstm: LSTM, weights: list[np.ndarray]) -> dict:
    """A Keras LSTM direction's ``weights`` as ``lstm``'s parameters."""
    # Keras has one bias where torch has two: it all goes to bias_ih
    biases = {"bias_ih": weights[2], "bias_hh": 0} if lstm.bias else {}
    return {"weight_ih": weights[0].T, "weight_hh": weights[1].T, **biases}


def from_keras(layer, ignore_dropout: bool = False) -> KerasLSTM:
    """Wrap the weights and options of a built Keras 3 ``LSTM`` or ``Bidirectional(LSTM)``
    in a :class:`KerasLSTM` (its ``.lstm`` is a ``batch_first`` kioku ``LSTM``)."""
    keras_lstm = _require_keras().layers.LSTM
    options = partial(_lstm_options, ignore_dropout=ignore_dropout)
    return import_keras(
        layer, keras_lstm, make_lstm, options, _lstm_shapes, _lstm_params, KerasLSTM
    )


def to_keras(
    module: LSTM | KerasLSTM,
    return_sequences: bool = True,
    return_state: bool = False,
    go_backwards: bool = False,
):
    """A built Keras 3 ``LSTM`` (``Bidirectional(LSTM)`` for a bidirectional kioku LSTM)
    with the weights of a one-layer kioku ``LSTM``; a :class:`KerasLSTM` brings its own
    call options. Options Keras lacks (projection, stacked layers, peepholes, ...) are
    refused naming them."""
    keras = _require_keras()
    module, call, merge_mode = keras_call_options(
        module, LSTM, KerasLSTM, (return_sequences, return_state, go_backwards)
    )
    return_sequences, return_state, go_backwards = call
    variants = variants_of(module)
    refused = {
        "num_layers": module.num_layers != 1,
        "proj_size": module.proj_size,
        "peephole": variants["peephole"],
        "input_forget": variants["input_forget"],
        "clip": variants["clip"] is not None,
        "layer_norm": variants["layer_norm"],
        "zoneout": any(variants["zoneout"]),
    }
    for name, value in refused.items():
        if value:
            raise ValueError(f"{name}: a Keras LSTM layer has no counterpart, found {value!r}")
    names = {v: k for k, v in _KERAS_ACTIVATIONS.items()}
    recurrent_activation, act = "sigmoid", "tanh"
    activations = variants["activations"]
    if activations is not None:
        f, g, h = activations[0]
        if g != h or f not in names or g not in names or len(set(activations)) != 1:
            raise ValueError(
                f"activations: Keras needs g == h among {', '.join(_KERAS_ACTIVATIONS)} and the "
                f"same in both directions, found {activations}"
            )
        recurrent_activation, act = names[f], names[g]
    dtype = module.dtype.name

    def make(backwards: bool):
        return keras.layers.LSTM(
            module.hidden_size, activation=act, recurrent_activation=recurrent_activation,
            use_bias=module.bias, recurrent_dropout=variants["recurrent_dropout"],
            return_sequences=return_sequences, return_state=return_state,
            go_backwards=backwards, dtype=dtype,
        )  # fmt: skip

    def direction_weights(sfx: str) -> list[np.ndarray]:
        p = module.params
        weights = [p[f"weight_ih{sfx}"].T, p[f"weight_hh{sfx}"].T]
        return weights + ([p[f"bias_ih{sfx}"] + p[f"bias_hh{sfx}"]] if module.bias else [])

    return build_keras(module, make, go_backwards, merge_mode, direction_weights)
