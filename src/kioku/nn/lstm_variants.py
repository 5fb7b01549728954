"""``LSTMVariant``: :class:`~kioku.nn.LSTM` with the variants other frameworks carry."""

from __future__ import annotations

import numpy as np

from ..functional import LayerNormParams, LSTMGrads, VariantHooks
from ..functional.onnx_activations import DEFAULT_ACTIVATIONS, Activation, activation
from .batch_shard import batch_random
from .lstm import LSTM


def _is_probability(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value < 1


class LSTMVariant(LSTM):
    """:class:`~kioku.nn.LSTM` (same arguments, parameters and shapes) plus the variants
    of :mod:`kioku.functional.lstm_variants`, each off by default.

    ``peephole`` adds ``weight_peephole_l{k} (3H,)`` ([p_i, p_f, p_o]); ``input_forget``
    couples f = 1 - i; ``clip`` clips gate pre-activations to [-clip, clip]; ``layer_norm``
    adds ``layernorm_{gamma,beta}_{ih,hh}_l{k} (4H,)`` and ``layernorm_{gamma,beta}_c_l{k}
    (H,)``; ``zoneout`` (a probability, or ``(z_h, z_c)``) and ``recurrent_dropout`` act in
    train mode (zoneout uses its expectation in eval mode); ``activations`` is ``(f, g, h)``
    (or six for bidirectional, forward first), each a name of
    :data:`~kioku.functional.onnx_activations.ACTIVATION_NAMES` or ``(name, alpha, beta)``.
    It always runs the reference step (the kernels have no hooks).
    """

    def __init__(
        self,
        *args,
        peephole: bool = False,
        input_forget: bool = False,
        clip: float | None = None,
        layer_norm: bool = False,
        zoneout: float | tuple[float, float] = 0.0,
        recurrent_dropout: float = 0.0,
        activations: list | tuple | None = None,
        **kwargs,
    ) -> None:
        if clip is not None and (
            isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 < clip < np.inf
        ):
            raise ValueError(f"clip: expected None or a positive finite number, found {clip!r}")
        pair = tuple(zoneout) if isinstance(zoneout, (tuple, list)) else (zoneout, zoneout)
        if len(pair) != 2 or not all(_is_probability(z) for z in pair):
            raise ValueError(
                f"zoneout: expected a probability in [0, 1) or a pair (z_h, z_c), found {zoneout!r}"
            )
        if not _is_probability(recurrent_dropout):
            raise ValueError(
                f"recurrent_dropout: expected a probability in [0, 1), found {recurrent_dropout!r}"
            )
        super().__init__(*args, **kwargs)
        parsed_activations = _parse_activations(activations, self.num_directions)
        self.peephole, self.input_forget = bool(peephole), bool(input_forget)
        self.layer_norm = bool(layer_norm)
        self.clip = None if clip is None else float(clip)
        self.zoneout = (float(pair[0]), float(pair[1]))
        self.recurrent_dropout = float(recurrent_dropout)
        self.activations = parsed_activations
        H = self.hidden_size
        bound = 1.0 / np.sqrt(H)
        # drawn after the plain parameters, so a seed gives the plain LSTM's weights
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                sfx = self.suffix(layer, direction)
                if self.peephole:
                    peep = self.rng.uniform(-bound, bound, 3 * H).astype(self.dtype)
                    self.add_param(f"weight_peephole{sfx}", peep)
                norms = (("ih", 4 * H), ("hh", 4 * H), ("c", H)) if self.layer_norm else ()
                for part, size in norms:
                    self.add_param(f"layernorm_gamma_{part}{sfx}", np.ones(size, self.dtype))
                    self.add_param(f"layernorm_beta_{part}{sfx}", np.zeros(size, self.dtype))

    @property
    def uses_variants(self) -> bool:
        """Whether any variant is on."""
        return bool(
            self.peephole
            or self.input_forget
            or self.clip is not None
            or self.layer_norm
            or any(self.zoneout)
            or self.recurrent_dropout
            or self.activations is not None
        )

    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (without ``rng``)."""
        z_h, z_c = self.zoneout
        return {
            **super().config(),
            "zoneout": z_h if z_h == z_c else [z_h, z_c],
            "activations": None
            if self.activations is None
            else [list(a) for triple in self.activations for a in triple],
        }

    def directions_independent(self) -> bool:
        """``False`` while training draws zoneout or recurrent-dropout masks, one direction
        after the other, from the layer's generator."""
        return not (self.training and (any(self.zoneout) or self.recurrent_dropout))

    def step_hooks(self, layer: int, direction: int, steps: int, batch: int) -> VariantHooks | None:
        """This direction's variants, in train mode with fresh zoneout and dropout masks
        (``None``, the plain step, when every variant is off)."""
        if not self.uses_variants:
            return None
        sfx = self.suffix(layer, direction)
        P, H = self.output_size, self.hidden_size
        z_h, z_c = self.zoneout
        recurrent_mask = None
        if self.training:
            if z_h:
                z_h = (batch_random(self.rng, (steps, batch, P), 1) < z_h).astype(self.dtype)
            if z_c:
                z_c = (batch_random(self.rng, (steps, batch, H), 1) < z_c).astype(self.dtype)
            if self.recurrent_dropout:
                keep = batch_random(self.rng, (batch, P), 0) >= self.recurrent_dropout
                scale = self.dtype.type(1 - self.recurrent_dropout)
                recurrent_mask = keep.astype(self.dtype) / scale
        norms = None
        if self.layer_norm:
            norms = LayerNormParams(*(self.params[f"layernorm_{name}{sfx}"] for name in _LN_NAMES))
        return VariantHooks(
            weight_peephole=self.params.get(f"weight_peephole{sfx}"),
            input_forget=self.input_forget,
            clip=self.clip,
            activations=DEFAULT_ACTIVATIONS
            if self.activations is None
            else self.activations[direction],
            layer_norm=norms,
            zoneout_h=z_h,
            zoneout_c=z_c,
            recurrent_mask=recurrent_mask,
        )

    def add_extra_grads(self, grads: LSTMGrads, sfx: str) -> None:
        if grads.dweight_peephole is not None:
            self.grads[f"weight_peephole{sfx}"] += grads.dweight_peephole
        if grads.dlayer_norm is not None:
            for name, value in zip(_LN_NAMES, grads.dlayer_norm):
                self.grads[f"layernorm_{name}{sfx}"] += value


# LayerNormParams' fields as parameter names: gamma_ih -> layernorm_gamma_ih_l0
_LN_NAMES = LayerNormParams._fields


def _parse_activations(activations, num_directions: int) -> list[tuple[Activation, ...]] | None:
    """Per direction ``(f, g, h)`` triples, or ``None`` for sigmoid, tanh, tanh."""
    if activations is None:
        return None
    sizes = (3, 3 * num_directions)
    if not isinstance(activations, (list, tuple)) or len(activations) not in sizes:
        raise ValueError(
            f"activations: expected {' or '.join(map(str, sorted(set(sizes))))} entries "
            f"(f, g, h per direction), found {activations!r}"
        )
    parsed = []
    for index, entry in enumerate(activations):
        if isinstance(entry, str) or (isinstance(entry, (list, tuple)) and len(entry) in (1, 2, 3)):
            try:  # the message names the argument the user gave, not the inner one
                parsed.append(activation(entry) if isinstance(entry, str) else activation(*entry))
            except (ValueError, TypeError) as error:
                raise type(error)(f"activations[{index}]: {error}") from None
        else:
            raise ValueError(
                f"activations: expected a name or (name, alpha, beta), found {entry!r}"
            )
    if len(parsed) == 3:
        parsed = parsed * num_directions
    triples = [tuple(parsed[3 * d : 3 * d + 3]) for d in range(num_directions)]
    if all(t == DEFAULT_ACTIVATIONS for t in triples):
        return None
    return triples


# every variant off: what a plain LSTM amounts to
VARIANT_DEFAULTS = {
    "peephole": False,
    "input_forget": False,
    "clip": None,
    "layer_norm": False,
    "zoneout": (0.0, 0.0),
    "recurrent_dropout": 0.0,
    "activations": None,
}


def variants_of(lstm: LSTM) -> dict:
    """The variant settings of any LSTM, as :data:`VARIANT_DEFAULTS` for a plain one."""
    if isinstance(lstm, LSTMVariant):
        return {name: getattr(lstm, name) for name in VARIANT_DEFAULTS}
    return dict(VARIANT_DEFAULTS)


def make_lstm(*args, **kwargs) -> LSTM:
    """``LSTMVariant(*args, **kwargs)`` if a variant argument turns a variant on, else
    ``LSTM`` with the other arguments: for readers of foreign formats."""
    variants = {name: kwargs.pop(name) for name in VARIANT_DEFAULTS if name in kwargs}
    directions = 2 if kwargs.get("bidirectional") else 1
    off = {
        name: _parse_activations(value, directions) is None
        if name == "activations"
        else not any(value)
        if isinstance(value, (tuple, list))
        else value is None or value is False or value == 0
        for name, value in variants.items()
    }
    if all(off.values()):
        return LSTM(*args, **kwargs)
    return LSTMVariant(*args, **kwargs, **variants)
