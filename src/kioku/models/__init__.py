"""Models built from :mod:`kioku.nn`: a language model, a sequence classifier, a tagger
and a forecaster. Each has ``config()`` and ``from_config()``; input is time-major."""

from .base import Model
from .classifier import SequenceClassifier
from .forecaster import Forecaster
from .language_model import LanguageModel
from .pooling import POOLINGS, Pooling
from .tagger import SequenceTagger

MODELS = {
    "LanguageModel": LanguageModel,
    "SequenceClassifier": SequenceClassifier,
    "SequenceTagger": SequenceTagger,
    "Forecaster": Forecaster,
}

__all__ = [
    "MODELS",
    "POOLINGS",
    "Forecaster",
    "LanguageModel",
    "Model",
    "Pooling",
    "SequenceClassifier",
    "SequenceTagger",
]
