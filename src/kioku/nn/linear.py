"""Linear: ``y = x W^T + b``, optionally sharing its weight with an embedding.

Tied to an :class:`~kioku.nn.embedding.Embedding` of ``V`` rows of size ``D``, the
layer maps ``D -> V`` with the embedding's own ``(V, D)`` array as its weight, and its
``grads["weight"]`` is the embedding's gradient array: both layers add into it, and
``parameters()`` lists the pair twice with the same ids (optimizers and clipping
count it once). ``state_dict()`` holds both names, as PyTorch's does.
"""

from __future__ import annotations

import numpy as np

from ..kernels import _split_gemm
from .checks import check_positive_int
from .embedding import Embedding
from .module import Module, as_rng, check_dtype


class Linear(Module):
    """``weight (out, in)`` and ``bias (out,)``, both U(-1/sqrt(in), 1/sqrt(in)) as in PyTorch."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
        tied_to: Embedding | None = None,
    ) -> None:
        super().__init__()
        in_features = check_positive_int("in_features", in_features)
        out_features = check_positive_int("out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        self.dtype = check_dtype(dtype)
        rng = as_rng(rng)
        bound = 1.0 / np.sqrt(in_features)
        if tied_to is not None:
            shape = tied_to.params["weight"].shape
            if shape != (out_features, in_features):
                raise ValueError(
                    f"tied_to: expected an embedding weight of shape "
                    f"({out_features}, {in_features}) (out_features, in_features), found {shape}"
                )
            if tied_to.params["weight"].dtype != self.dtype:
                raise TypeError(
                    f"tied_to: expected dtype {self.dtype}, found {tied_to.params['weight'].dtype}"
                )
            self.params["weight"] = tied_to.params["weight"]
            self.grads["weight"] = tied_to.grads["weight"]
        else:
            weight = rng.uniform(-bound, bound, (out_features, in_features)).astype(self.dtype)
            self.add_param("weight", weight)
        self.tied = tied_to is not None
        if bias:
            self.add_param("bias", rng.uniform(-bound, bound, out_features).astype(self.dtype))
        self._x: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x (..., in)`` -> ``y (..., out)``."""
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x: expected shape (..., {self.in_features}) (in_features), found {x.shape}"
            )
        if x.dtype != self.dtype:
            raise TypeError(f"x: expected dtype {self.dtype}, found {x.dtype}")
        self._x = x
        x2 = x.reshape(-1, self.in_features)
        # one 2-D GEMM (NumPy runs a stacked (..., in) @ (in, out) as many small ones),
        # split over kioku's threads when big: see kernels/_split_gemm.py
        y = _split_gemm.gemm(x2, self.params["weight"], trans_b=True, bias=self.params.get("bias"))
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy (..., out)`` -> ``dx (..., in)``; adds into the weight and bias gradients."""
        if self._x is None:
            raise RuntimeError("Linear.backward called before a forward")
        x = self._x
        if dy.shape != x.shape[:-1] + (self.out_features,):
            raise ValueError(
                f"dy: expected shape {x.shape[:-1] + (self.out_features,)}, found {dy.shape}"
            )
        dy2 = dy.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        dw, db = self.grads["weight"], self.grads.get("bias")
        _split_gemm.gemm(dy2, x2, trans_a=True, out=dw, beta=1.0, row_sums=db)  # db += dy2 sums
        dx = _split_gemm.gemm(dy2, self.params["weight"])
        return dx.reshape(x.shape)

    def config(self) -> dict:
        """JSON-able constructor arguments (``tied`` records whether the weight is shared)."""
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": "bias" in self.params,
            "dtype": self.dtype.name,
            "tied": self.tied,
        }
