"""kioku (記憶, "memory"): LSTMs in NumPy, forward and backward by hand."""

from . import functional, kernels, nn

__version__ = "0.1.0"

__all__ = ["__version__", "functional", "kernels", "nn"]
