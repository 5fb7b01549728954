"""What the estimators share: settings checked as the command checks them, ``fit`` on the
training loop of ``kioku train``, ``save`` in its checkpoint format, ``summary``.

An estimator is built from the names of :class:`~kioku.train.settings.TrainSettings`
(``hidden``, ``layers``, ``cell``, ``dropout``, ``lr``, ``optimizer``, ``batch_size``,
...), each checked against its declaration (the same ranges and one-line errors as the
flags of ``kioku train``). ``fit`` builds the task from the data given in memory (the
vocabulary, labels or scaling from its training part, by the task's own
``from_memory``/``from_corpus``), trains it with :func:`kioku.train.runner.train_run`
(optimizer, clipping, schedule, best-on-valid, patience, checkpoints, progress bar,
Ctrl-C, callbacks) in ``out`` (a temporary folder when none is given), and loads the
best checkpoint back as a :class:`kioku.api.Predictor`: what ``kioku.load`` returns
for the saved folder, so the estimator's predictions are the saved model's.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..api import Predictor, load
from ..train.callbacks import Callback, History
from ..train.checkpoint import load_checkpoint
from ..train.fits import check_fits
from ..train.runner import train_run
from ..train.settings import TrainSettings, check_applies, preset_for
from ..train.settings_fields import check_names, setting_error
from .summary import summary_lines

MEMORY = "<memory>"
"""``settings.data`` of a run fitted on data held in memory (no file to read again:
``kioku eval --data FILE`` scores a file with it)."""

# runs counted in epochs, validated at each epoch's end, no samples (the Keras habit)
_BY_EPOCH = {"max_steps": None, "eval_every": 0, "sample_every": 0, "eval_tokens": None}
_CHOSEN_BY_FIT = ("data", "task")


class FitHistory(History):
    """What ``fit`` returns: Keras's ``History`` (``history`` maps ``loss``,
    ``val_loss``, ``val_accuracy``, ``lr``, ... to one value per epoch; ``epoch`` lists
    the epochs; ``model`` is the estimator) that reads as the estimator for every other
    name, so that both ``history = clf.fit(...)`` and ``tagger = Tagger().fit(...)``
    read as they are written."""

    def __init__(self, model: Estimator) -> None:
        super().__init__()
        self.model = model

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("model", "history", "epoch"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)}) of {self.model!r}"


class Estimator:
    """Base of :class:`~kioku.estimators.Classifier` and its siblings; ``task`` names the
    :class:`~kioku.train.task.Task` it trains. After ``fit``: ``predictor`` (the best
    checkpoint, loaded), ``history_``, ``out_`` (the run folder) and ``task_`` (the task
    built from the data)."""

    task: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}  # besides _BY_EPOCH, where the preset differs

    def __init__(self, **settings: Any) -> None:
        check_names(TrainSettings, settings, type(self).__name__)
        for name in _CHOSEN_BY_FIT:
            if name in settings:
                raise TypeError(f"{name}: chosen by {type(self).__name__}.fit, not a keyword")
        self.given = dict(settings)
        self.settings = self._resolve(self.given)
        self.predictor: Predictor | None = None
        self.history_: FitHistory | None = None
        self.out_: Path | None = None
        self.task_: Any = None

    def _resolve(self, given: dict[str, Any]) -> TrainSettings:
        """The preset of this task, the estimator's defaults, then ``given``; every value
        checked by its declaration, and the run's size against the machine's memory."""
        check_applies(given, self.task)
        preset = preset_for(self.task, MEMORY, given.get("level"))
        values = {**_BY_EPOCH, **self.defaults}
        if self.task != "lm":
            values = {k: v for k, v in values.items() if k not in ("sample_every", "eval_tokens")}
        values.update(given)
        if any(name in given for name in ("max_steps", "epochs", "max_time")):
            for name in ("max_steps", "epochs", "max_time"):
                values[name] = given.get(name)
        settings = preset.replace(task=self.task, data=MEMORY, **values)
        check_fits(settings, preset, given)
        return settings

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.given.items())
        return f"{type(self).__name__}({shown})"

    def get_params(self) -> dict[str, Any]:
        """The settings given to the constructor (scikit-learn's name)."""
        return dict(self.given)

    # -- fit ----------------------------------------------------------------------------
    def _task(self, x: Any, y: Any, validation_data: Any, settings: TrainSettings) -> Any:
        """The task over the data given (each estimator's own)."""
        raise NotImplementedError  # pragma: no cover

    def fit(
        self,
        x: Any,
        y: Any = None,
        validation_data: Any = None,
        validation_split: float = 0.1,
        epochs: int | None = None,
        batch_size: int | None = None,
        callbacks: Sequence[Callback] = (),
        verbose: int = 1,
        out: str | os.PathLike | None = None,
        resume: bool = False,
        **settings: Any,
    ) -> FitHistory:
        """Train on ``x`` (and ``y``), validating on ``validation_data`` (a tuple like
        ``x, y``) or else on the share ``validation_split`` of ``x`` held out (examples
        shuffled with the seed and stratified by label; a text's or series' tail), for
        ``epochs``; ``callbacks`` as
        Keras's (:mod:`kioku.train.callbacks`); ``verbose`` 0 prints nothing, 1 the
        progress bar and a line per epoch; ``out``: the run folder (default: a temporary
        one, removed with the estimator: :meth:`save` keeps it); ``resume``: continue
        the run in ``out`` from its latest checkpoint, with the same data. Other keywords
        change settings for this fit. Returns the :class:`FitHistory`."""
        given = {**settings}
        if epochs is not None:
            given["epochs"] = epochs
        if batch_size is not None:
            given["batch_size"] = batch_size
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose: expected 0, 1 or 2, found {verbose!r}")
        split = validation_split
        if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0 < split < 1:
            raise ValueError(f"validation_split: expected a number in (0, 1), found {split!r}")
        self.validation_split = float(split)
        check_names(TrainSettings, given, "fit")
        run_settings = self._resolve({**self.given, **given}) if given else self.settings
        if out is None and resume:
            raise ValueError("resume: needs out, the run folder to continue")
        run_settings = run_settings.replace(no_progress=verbose != 1)
        task = self._task(x, y, validation_data, run_settings)  # bad data: refused first
        folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="kioku-fit-"))
        try:
            history = self._train(task, run_settings.replace(out=str(folder)), resume, verbose,
                                  callbacks)  # fmt: skip
        except BaseException:
            if out is None:  # nothing of a failed fit in a folder of its own is kept
                shutil.rmtree(folder, ignore_errors=True)
            raise
        if getattr(self, "_temporary", None) is not None:
            self._temporary()  # the previous fit's temporary folder: this fit replaces it
        # a temporary run folder goes with the estimator (save() copies what is kept)
        self._temporary = None if out is not None else weakref.finalize(
            self, shutil.rmtree, str(folder), True
        )  # fmt: skip
        self.settings, self.task_, self.out_, self.history_ = (
            run_settings.replace(out=str(folder)), task, folder, history
        )  # fmt: skip
        self.predictor = load(folder)
        return history

    def _train(
        self,
        task: Any,
        settings: TrainSettings,
        resume: bool,
        verbose: int,
        callbacks: Sequence[Callback],
    ) -> FitHistory:
        """Train ``task`` as ``settings`` say in ``settings.out`` (resumed from its latest
        checkpoint if ``resume``); the history of this session."""
        saved_state, source = None, None
        if resume:
            saved_state, directory = load_checkpoint(settings.out)
            source = str(directory / "checkpoint.json")
        history = FitHistory(self)
        stream = sys.stdout if verbose else io.StringIO()
        summary = train_run(
            settings, saved_state, stream, source, task=task, callbacks=[history, *callbacks]
        )
        if summary.get("diverged"):
            raise RuntimeError(f"fit: {summary['diverged']}")
        return history

    # -- after fit ----------------------------------------------------------------------
    def _fitted(self) -> Predictor:
        if self.predictor is None:
            raise RuntimeError(f"{type(self).__name__}: call fit before using the model")
        return self.predictor

    @property
    def model(self):
        """The trained :class:`~kioku.models.Model` (the best checkpoint's parameters)."""
        return self._fitted().model

    def predict(self, x: Any, batch_size: int = 64, **options: Any) -> Any:
        """What :meth:`kioku.api.Predictor.predict` gives for ``x``: labels, tags, token
        scores or forecasts, in the data's own terms."""
        return self._fitted().predict(x, batch_size=batch_size, **options)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the run (its checkpoints, ``log.jsonl``, ``settings.toml``) to the folder
        ``path``, in the format of ``kioku train``: ``kioku.load(path)`` and every
        ``kioku`` command read it. Written beside ``path`` first, then renamed into place;
        an existing ``path`` is refused unless ``overwrite``. Returns ``path``."""
        self._fitted()
        target = Path(path)
        if target.exists() and not overwrite:
            raise setting_error(
                FileExistsError, "path", "exists (save(..., overwrite=True))", target
            )
        if target.resolve() == Path(self.out_).resolve():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            shutil.copytree(self.out_, staging / "run", ignore=shutil.ignore_patterns(".lock*"))
            old = None
            if target.exists():
                old = staging / "old"
                os.replace(target, old)
            os.replace(staging / "run", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def summary(self, print_fn=print) -> str:
        """Keras's ``summary()``: each layer, its output shape (``None``: the batch, ``T``:
        the time steps) and its parameter count, then the totals; printed with
        ``print_fn`` and returned."""
        text = "\n".join(summary_lines(self.model, type(self).__name__))
        if print_fn is not None:
            print_fn(text)
        return text


def holdout(
    count: int, seed: int, labels: Sequence | None = None, share: float = 0.1
) -> dict[str, list[int]]:
    """Indices of ``count`` items for train and valid when no validation data is given:
    ``share`` held out (stratified by ``labels`` when given), shuffled with ``seed``."""
    from ..data.splits import shuffled_split

    parts = shuffled_split(count, seed, labels, fractions=(share, 0.0))
    # shuffled_split keeps one item of each label of 3 or more for test: train keeps it
    parts["train"] = np.sort(np.concatenate([parts["train"], parts["test"]]))
    if parts["valid"].size == 0 or parts["train"].size == 0:
        raise ValueError(
            f"x: expected at least 2 examples to hold out a validation part, found {count} "
            "(or give validation_data)"
        )
    return {"train": parts["train"].tolist(), "valid": parts["valid"].tolist()}
