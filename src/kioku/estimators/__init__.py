"""Train from Python as Keras users do: ``fit``, ``evaluate``, ``predict``, ``save`` on
data held in memory, on the training loop of ``kioku train``.

    >>> import kioku
    >>> clf = kioku.Classifier(hidden=64, cell="lstm")
    >>> history = clf.fit(texts, labels, validation_data=(dev_texts, dev_labels), epochs=5)
    >>> clf.evaluate(test_texts, test_labels)          # {'accuracy': ..., 'loss': ...}
    >>> clf.save("runs/clf")                           # what kioku.load and every command read

:class:`Classifier` (texts, or float sequences ``(N, T, F)``), :class:`Regressor`
(float sequences), :class:`Tagger`, :class:`LanguageModel` (the estimator;
:class:`kioku.models.LanguageModel` is the model it trains) and :class:`Forecaster`.
"""

from .base import MEMORY, Estimator, FitHistory
from .forecast import Forecaster
from .sequences import Regressor
from .text import Classifier, LanguageModel, Tagger

__all__ = [
    "MEMORY",
    "Classifier",
    "Estimator",
    "FitHistory",
    "Forecaster",
    "LanguageModel",
    "Regressor",
    "Tagger",
]
