"""``LSTM``: stacked, optionally bidirectional LSTM layers with PyTorch's parameters."""

from __future__ import annotations

import numpy as np

from .. import functional, kernels
from ..functional.lstm_variants import LayerNormParams, VariantCache, VariantGrads
from ..functional.onnx_activations import DEFAULT_ACTIVATIONS, Activation, activation
from .checks import check_positive_int
from .recurrent import RecurrentStack


def _is_probability(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value < 1


class LSTM(RecurrentStack):
    """Multi-layer LSTM, parameter for parameter ``torch.nn.LSTM``.

    ``y, (h_n, c_n) = lstm(x, state=None, lengths=None)``:
    ``x (T, B, I)`` (``(B, T, I)`` with ``batch_first``, or unbatched ``(T, I)``),
    ``state = (h0 (L*D, B, P), c0 (L*D, B, H))``, ``lengths (B,)`` integers in 1..T.
    ``y (T, B, D*P)`` (concat; ``(T, B, P)`` for merge modes sum, mean, mul), ``h_n (L*D, B, P)``,
    ``c_n (L*D, B, H)``; ``P = proj_size or H``, ``D = 2`` if bidirectional.
    ``dx, (dh0, dc0) = lstm.backward(dy, dstate=None)`` adds parameter gradients into
    ``lstm.grads``. Dropout acts on the output of every layer but the last, in train mode.
    ``unit_forget_bias`` sets the forget gate's total bias to 1 (``bias_ih`` 1, ``bias_hh`` 0).
    Inputs are not checked for NaN or inf: a NaN in sequence ``b`` at step ``t`` makes that
    sequence's outputs NaN from ``t`` on (both ways for bidirectional) and leaves the other
    sequences of the batch untouched.

    Variants, each off by default (see :mod:`kioku.functional.lstm_variants`):
    ``peephole`` adds ``weight_peephole_l{k} (3H,)`` ([p_i, p_f, p_o]); ``input_forget``
    couples f = 1 - i; ``clip`` clips gate pre-activations to [-clip, clip]; ``layer_norm``
    adds ``layernorm_{gamma,beta}_{ih,hh}_l{k} (4H,)`` and ``layernorm_{gamma,beta}_c_l{k}
    (H,)``; ``zoneout`` (a probability, or ``(z_h, z_c)``) and ``recurrent_dropout`` act in
    train mode (zoneout uses its expectation in eval mode); ``activations`` is ``(f, g, h)``
    (or six for bidirectional, forward first), each a name of
    :data:`~kioku.functional.onnx_activations.ACTIVATION_NAMES` or ``(name, alpha, beta)``.
    """

    state_names = ("h", "c")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        merge_mode: str = "concat",
        unit_forget_bias: bool = False,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
        peephole: bool = False,
        input_forget: bool = False,
        clip: float | None = None,
        layer_norm: bool = False,
        zoneout: float | tuple[float, float] = 0.0,
        recurrent_dropout: float = 0.0,
        activations: list | tuple | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            batch_first,
            dropout,
            bidirectional,
            merge_mode,
            dtype,
            rng,
        )
        self.proj_size = check_positive_int("proj_size", proj_size, minimum=0)
        if self.proj_size >= self.hidden_size:
            raise ValueError(
                f"proj_size: expected 0 or less than hidden_size ({self.hidden_size}), "
                f"found {self.proj_size}"
            )
        self.bias = bool(bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        H, P = self.hidden_size, self.output_size
        bound = 1.0 / np.sqrt(H)
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                sfx = self.suffix(layer, direction)
                shapes = {
                    f"weight_ih{sfx}": (4 * H, self.layer_input_size(layer)),
                    f"weight_hh{sfx}": (4 * H, P),
                }
                if self.bias:
                    shapes[f"bias_ih{sfx}"] = (4 * H,)
                    shapes[f"bias_hh{sfx}"] = (4 * H,)
                if self.proj_size:
                    shapes[f"weight_hr{sfx}"] = (P, H)
                for name, shape in shapes.items():
                    self.add_param(name, self.rng.uniform(-bound, bound, shape).astype(self.dtype))
                if self.bias and self.unit_forget_bias:
                    self.params[f"bias_ih{sfx}"][H : 2 * H] = 1
                    self.params[f"bias_hh{sfx}"][H : 2 * H] = 0
        self._init_variants(
            peephole, input_forget, clip, layer_norm, zoneout, recurrent_dropout, activations
        )

    # -- variants ----------------------------------------------------------------
    def _init_variants(
        self, peephole, input_forget, clip, layer_norm, zoneout, recurrent_dropout, activations
    ) -> None:
        self.peephole, self.input_forget = bool(peephole), bool(input_forget)
        self.layer_norm = bool(layer_norm)
        if clip is not None and (
            isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 < clip < np.inf
        ):
            raise ValueError(f"clip: expected None or a positive finite number, found {clip!r}")
        self.clip = None if clip is None else float(clip)
        pair = tuple(zoneout) if isinstance(zoneout, (tuple, list)) else (zoneout, zoneout)
        if len(pair) != 2 or not all(_is_probability(z) for z in pair):
            raise ValueError(
                f"zoneout: expected a probability in [0, 1) or a pair (z_h, z_c), found {zoneout!r}"
            )
        self.zoneout = (float(pair[0]), float(pair[1]))
        if not _is_probability(recurrent_dropout):
            raise ValueError(
                f"recurrent_dropout: expected a probability in [0, 1), found {recurrent_dropout!r}"
            )
        self.recurrent_dropout = float(recurrent_dropout)
        self.activations = self._parse_activations(activations)
        H = self.hidden_size
        bound = 1.0 / np.sqrt(H)
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                sfx = self.suffix(layer, direction)
                if self.peephole:
                    peep = self.rng.uniform(-bound, bound, 3 * H).astype(self.dtype)
                    self.add_param(f"weight_peephole{sfx}", peep)
                if self.layer_norm:
                    for part, size in (("ih", 4 * H), ("hh", 4 * H), ("c", H)):
                        self.add_param(f"layernorm_gamma_{part}{sfx}", np.ones(size, self.dtype))
                        self.add_param(f"layernorm_beta_{part}{sfx}", np.zeros(size, self.dtype))

    def _parse_activations(self, activations) -> list[tuple[Activation, ...]] | None:
        """Per direction ``(f, g, h)`` triples, or ``None`` for sigmoid, tanh, tanh."""
        if activations is None:
            return None
        sizes = (3, 3 * self.num_directions)
        if not isinstance(activations, (list, tuple)) or len(activations) not in sizes:
            raise ValueError(
                f"activations: expected {' or '.join(map(str, sorted(set(sizes))))} entries "
                f"(f, g, h per direction), found {activations!r}"
            )
        parsed = []
        for entry in activations:
            if isinstance(entry, str):
                parsed.append(activation(entry))
            elif isinstance(entry, (list, tuple)) and len(entry) in (1, 2, 3):
                parsed.append(activation(*entry))
            else:
                raise ValueError(
                    f"activations: expected a name or (name, alpha, beta), found {entry!r}"
                )
        if len(parsed) == 3:
            parsed = parsed * self.num_directions
        triples = [tuple(parsed[3 * d : 3 * d + 3]) for d in range(self.num_directions)]
        if all(t == DEFAULT_ACTIVATIONS for t in triples):
            return None
        return triples

    @property
    def uses_variants(self) -> bool:
        """Whether any variant is on (the forward then runs the general, slower path)."""
        return bool(
            self.peephole
            or self.input_forget
            or self.clip is not None
            or self.layer_norm
            or any(self.zoneout)
            or self.recurrent_dropout
            or self.activations is not None
        )

    def _variant_forward(self, x, layer, direction, state, lengths):
        weight_ih, weight_hh, bias, weight_hr = self._weights(layer, direction)
        sfx = self.suffix(layer, direction)
        p = self.params
        T, B, _ = x.shape
        P, H = self.output_size, self.hidden_size
        z_h, z_c = self.zoneout
        recurrent_mask = None
        if self.training:
            if z_h:
                z_h = (self.rng.random((T, B, P)) < z_h).astype(self.dtype)
            if z_c:
                z_c = (self.rng.random((T, B, H)) < z_c).astype(self.dtype)
            if self.recurrent_dropout:
                keep = self.rng.random((B, P)) >= self.recurrent_dropout
                recurrent_mask = keep.astype(self.dtype) / self.dtype.type(
                    1 - self.recurrent_dropout
                )
        norms = None
        if self.layer_norm:
            norms = LayerNormParams(
                *(
                    p[f"layernorm_{kind}_{part}{sfx}"]
                    for part in ("ih", "hh", "c")
                    for kind in ("gamma", "beta")
                )
            )
        h0, c0 = state
        y, h_n, c_n, cache = functional.lstm_variant_forward(
            x, weight_ih, weight_hh, bias, h0, c0, lengths, bool(direction), weight_hr,
            weight_peephole=p.get(f"weight_peephole{sfx}"),
            input_forget=self.input_forget,
            clip=self.clip,
            activations=None if self.activations is None else self.activations[direction],
            layer_norm_params=norms,
            zoneout_h=z_h,
            zoneout_c=z_c,
            recurrent_mask=recurrent_mask,
        )  # fmt: skip
        return y, (h_n, c_n), cache

    def _accumulate_variant_grads(self, grads: VariantGrads, sfx: str) -> None:
        g = self.grads
        if grads.dweight_peephole is not None:
            g[f"weight_peephole{sfx}"] += grads.dweight_peephole
        if grads.dlayer_norm is not None:
            for field, value in zip(LayerNormParams._fields, grads.dlayer_norm):
                kind, part = field.split("_")
                g[f"layernorm_{kind}_{part}{sfx}"] += value

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def state_sizes(self) -> tuple[int, ...]:
        return (self.output_size, self.hidden_size)

    def config(self) -> dict:
        """The constructor's arguments as a JSON-able dict (without ``rng``)."""
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bias": self.bias,
            "batch_first": self.batch_first,
            "dropout": self.dropout,
            "bidirectional": self.bidirectional,
            "proj_size": self.proj_size,
            "merge_mode": self.merge_mode,
            "unit_forget_bias": self.unit_forget_bias,
            "dtype": self.dtype.name,
            "peephole": self.peephole,
            "input_forget": self.input_forget,
            "clip": self.clip,
            "layer_norm": self.layer_norm,
            "zoneout": self.zoneout[0]
            if self.zoneout[0] == self.zoneout[1]
            else list(self.zoneout),
            "recurrent_dropout": self.recurrent_dropout,
            "activations": None
            if self.activations is None
            else [list(a) for triple in self.activations for a in triple],
        }

    def _weights(self, layer: int, direction: int):
        sfx = self.suffix(layer, direction)
        p = self.params
        bias = p[f"bias_ih{sfx}"] + p[f"bias_hh{sfx}"] if self.bias else None
        return p[f"weight_ih{sfx}"], p[f"weight_hh{sfx}"], bias, p.get(f"weight_hr{sfx}")

    def forward_direction(self, x, layer, direction, state, lengths):
        if self.uses_variants:
            return self._variant_forward(x, layer, direction, state, lengths)
        weight_ih, weight_hh, bias, weight_hr = self._weights(layer, direction)
        h0, c0 = state
        y, h_n, c_n, cache = kernels.backend().lstm_forward(
            x, weight_ih, weight_hh, bias, h0, c0, lengths, bool(direction), weight_hr
        )
        return y, (h_n, c_n), cache

    def backward_direction(self, dy, cache, layer, direction, dstate, need_dx):
        dh_n, dc_n = dstate
        trace = (None, None)
        if self.state_grads is not None:
            T, B, _ = dy.shape
            trace = (
                np.empty((T, B, self.output_size), self.dtype),
                np.empty((T, B, self.hidden_size), self.dtype),
            )
            self.state_grads[layer][direction] = trace
        if isinstance(cache, VariantCache):
            grads = functional.lstm_variant_backward(dy, cache, dh_n, dc_n, need_dx, *trace)
        else:
            grads = kernels.backend().lstm_backward(dy, cache, dh_n, dc_n, need_dx, *trace)
        sfx = self.suffix(layer, direction)
        g = self.grads
        g[f"weight_ih{sfx}"] += grads.dweight_ih
        g[f"weight_hh{sfx}"] += grads.dweight_hh
        if self.bias:
            g[f"bias_ih{sfx}"] += grads.dbias
            g[f"bias_hh{sfx}"] += grads.dbias
        if self.proj_size:
            g[f"weight_hr{sfx}"] += grads.dweight_hr
        if isinstance(grads, VariantGrads):
            self._accumulate_variant_grads(grads, sfx)
        return grads.dx, (grads.dh0, grads.dc0)

    state_grads: list[list[tuple[np.ndarray, np.ndarray]]] | None = None

    def __call__(self, x, state=None, lengths=None):
        """Forward; see the class docstring for shapes."""
        return self.run(x, state, lengths)

    forward = __call__

    def backward(self, dy, dstate=None, need_dx: bool = True, record_state_grads: bool = False):
        """Backward of the last forward: ``dy`` shaped like ``y``; ``dstate = (dh_n, dc_n)``
        (either may be ``None``). Returns ``dx`` shaped like ``x`` and ``(dh0, dc0)``.
        With ``record_state_grads``, ``self.state_grads[layer][direction]`` receives
        ``(dL/dh_t (T, B, P), dL/dc_t (T, B, H))`` for every step."""
        self.state_grads = None
        if record_state_grads:
            self.state_grads = [[None] * self.num_directions for _ in range(self.num_layers)]
        return self.run_backward(dy, dstate, need_dx)
