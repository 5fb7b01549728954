"""kioku (記憶, "memory"): LSTMs in NumPy, forward and backward by hand.

``kioku.load(path)`` reads what ``kioku train`` wrote and returns a predictor
(:mod:`kioku.api`); ``kioku.Classifier``, ``kioku.Tagger``, ``kioku.LanguageModel`` and
``kioku.Forecaster`` train from Python (:mod:`kioku.estimators`). Both are imported on
first use so that ``import kioku`` stays light.
"""

from . import functional, kernels, nn

__version__ = "0.1.0"

__all__ = [
    "Classifier",
    "Forecaster",
    "LanguageModel",
    "Regressor",
    "Tagger",
    "__version__",
    "functional",
    "kernels",
    "load",
    "nn",
]

# the estimators (kioku.estimators): kioku.LanguageModel is the estimator, the model
# class it trains is kioku.models.LanguageModel
_ESTIMATORS = ("Classifier", "Forecaster", "LanguageModel", "Regressor", "Tagger")


# the packages above nn, imported when first named (kioku.models.LanguageModel after a
# plain ``import kioku``, as the docs write it)
_LAZY_PACKAGES = ("data", "estimators", "experiments", "inspect", "interop", "models", "train")


def __getattr__(name: str):
    # the API pulls in models and training code: load it when first asked for
    if name in ("load", "Predictor", "TokenScores"):
        from . import api

        return getattr(api, name)
    if name in _ESTIMATORS:
        from . import estimators

        return getattr(estimators, name)
    if name in _LAZY_PACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'kioku' has no attribute {name!r}")
