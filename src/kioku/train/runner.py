"""One training run from settings to test figures: what ``kioku train`` does, callable.

Builds (or restores) task, model, optimizer and schedule; trains with periodic
evaluation and checkpoints; then evaluates the best checkpoint's parameters on the test
split and logs that too.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TextIO

from ..data.atomic import read_json
from . import callbacks as run_callbacks
from .callbacks import Callback
from .checkpoint import load_checkpoint, remove_dead_run, remove_leftovers, resolve
from .config_file import write_settings
from .distributed import DataParallel, communicator, quiet_unless_root
from .finite import TrainingDiverged
from .lock import RunLock, RunLockedError
from .loop import LoopConfig, Trainer
from .restore import build_model as restore_model
from .restore import load_params
from .settings import TrainSettings, setting_error
from .setup import build_model, build_optimizer, build_schedule, build_task
from .task import Task


def loop_config(settings: TrainSettings) -> LoopConfig:
    """The loop's share of the settings."""
    return LoopConfig(
        max_steps=settings.max_steps,
        epochs=settings.epochs,
        eval_every=settings.eval_every or 0,
        patience=settings.patience or 0,
        clip=settings.clip,
        sample_every=settings.sample_every or 0,
        keep=settings.keep,
        progress=not settings.no_progress,
        max_time=settings.max_time,
    )


def absolute_data(data: str) -> str:
    """``data`` as a run records it: a path that exists made absolute and resolved, so
    that ``eval`` and ``predict`` find the data from any folder; the names ``stdlib``
    and ``ptb`` (and a path that does not exist, for the task to refuse) as given."""
    if data in ("stdlib", "ptb"):
        return data
    path = Path(data).expanduser()
    return str(path.resolve()) if path.exists() else data


def run_folder(settings: TrainSettings) -> Path:
    """``settings.out`` as a path; ``ValueError`` naming ``out`` when there is none."""
    if settings.out is None:
        raise setting_error(ValueError, "out", "expected a run folder, found None")
    return Path(settings.out)


def check_vocabulary(settings: TrainSettings, task: Task) -> None:
    """Refuse a fresh run whose vocabulary holds only ``<unk>`` and ``<eos>``: every token
    would read as ``<unk>`` and its score, however good it looks, would mean nothing."""
    vocab = getattr(task, "vocab", None)
    if vocab is None or len(vocab) > 2:
        return
    detail = (
        f"the vocabulary holds only {' and '.join(vocab.tokens)}: no token of the data occurs "
        "often enough, so every token would read as <unk> and the score would mean nothing"
    )
    if settings.min_count is not None:
        raise setting_error(ValueError, "min_count", f"{detail}; lower it", settings.min_count)
    raise setting_error(ValueError, "data", detail, settings.data)


def build_trainer(
    settings: TrainSettings,
    saved_state: dict | None = None,
    stream: TextIO | None = None,
    saved_source: str | None = None,
    task: Task | None = None,
    callbacks: list[Callback] | None = None,
) -> Trainer:
    """Task, model, optimizer and schedule of ``settings`` in a trainer writing to
    ``settings.out``: fresh (announced on ``stream``; an ``out`` that holds a run is
    refused), or restored from ``saved_state``, a checkpoint read from ``saved_source``.
    ``task``: one built already (from data in memory; default: ``settings.data``'s);
    ``callbacks``: besides those the settings turn on (``csv_log``, ``tensorboard``).
    Under ``mpiexec`` the trainer is this rank's part of a data-parallel run."""
    parallel = DataParallel()
    stream = quiet_unless_root(parallel, stream)
    out_dir = run_folder(settings)
    if saved_state is None and task is None:
        settings = settings.replace(data=absolute_data(settings.data))
    task = build_task(settings) if task is None else task
    source = saved_source or str(out_dir / "latest.json")
    if saved_state is not None:
        model = restore_model(saved_state, source)
    else:
        if (out_dir / "latest.json").exists():
            detail = "holds a run already; resume it or choose another out folder"
            raise setting_error(FileExistsError, "out", detail, out_dir)
        check_vocabulary(settings, task)
        model = build_model(settings, task)
    parallel.bind_gradients(model)  # before the optimizer takes the gradient arrays
    optimizer = build_optimizer(settings, model)
    schedule = build_schedule(settings, optimizer)
    meta = {"settings": settings.to_dict()}
    on_sample = task.sampler(model, settings)
    trainer = Trainer(
        model,
        task,
        optimizer,
        schedule,
        loop_config(settings),
        out_dir,
        meta,
        on_sample,
        stream,
        parallel,
        [*run_callbacks.from_settings(settings, saved_state is not None), *(callbacks or [])],
    )
    if saved_state is not None:
        trainer.load_state_dict(saved_state, source)
        trainer.log.truncate_after(trainer.step)
    else:
        print(task.header(), file=stream)
        print(
            f"model: {type(model).__name__} {model.config()} "
            f"({model.num_parameters():,} parameters)",
            file=stream,
        )
    return trainer


def train_run(
    settings: TrainSettings,
    saved_state: dict | None = None,
    stream: TextIO | None = None,
    saved_source: str | None = None,
    task: Task | None = None,
    callbacks: list[Callback] | None = None,
) -> dict:
    """Train as ``settings`` say (see :func:`build_trainer` for the other arguments),
    then test the parameters that validated best. Returns a summary dict (figures,
    report lines); a run stopped by a non-finite number has ``diverged`` (the one-line
    message) and ``checkpoint`` (the last finite one, or ``None``)."""
    stream = stream or sys.stdout
    out = run_folder(settings)
    if out.exists() and not out.is_dir():  # now, not at the first save an epoch later
        raise setting_error(NotADirectoryError, "out", "expected a run folder, found a file", out)
    if communicator().rank != 0:  # under mpiexec rank 0 alone writes, so it alone locks
        return _train_run(settings, saved_state, stream, saved_source, task, callbacks)
    lock = RunLock(out)
    try:
        lock.acquire()  # one writer per folder; then its leftovers are safe to delete
    except RunLockedError:
        raise
    except OSError as error:
        detail = f"cannot create or write the run folder ({error.strerror or error})"
        raise setting_error(ValueError, "out", detail, out) from None
    with lock:
        leftovers = remove_leftovers(out)
        if leftovers:
            print(f"removed what an interrupted write left: {', '.join(leftovers)}", file=stream)
        dead = remove_dead_run(out) if saved_state is None else []
        if dead:  # a fresh start is fresh: no record of a run that saved nothing
            names = ", ".join(dead)
            print(f"starting clean: removed a dead run's files: {names}", file=stream)
        return _train_run(settings, saved_state, stream, saved_source, task, callbacks)


def _train_run(
    settings: TrainSettings,
    saved_state: dict | None,
    stream: TextIO,
    saved_source: str | None,
    task: Task | None = None,
    callbacks: list[Callback] | None = None,
) -> dict:
    trainer = build_trainer(settings, saved_state, stream, saved_source, task, callbacks)
    if trainer.out_dir is not None:  # rank 0: the run's settings, runnable again as TOML
        trainer.out_dir.mkdir(parents=True, exist_ok=True)
        write_settings(trainer.out_dir, settings_of(trainer, settings))
    try:
        result = trainer.run()
    except TrainingDiverged as error:  # the last finite checkpoint is kept, and named
        checkpoint = str(error.checkpoint) if error.checkpoint else None
        return {"interrupted": False, "diverged": str(error), "step": error.step,
                "checkpoint": checkpoint, "report": [], "losses": []}  # fmt: skip
    summary = {
        "interrupted": result.interrupted,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "step": result.step,
        "epoch": result.epoch,
        "losses": result.losses,
        "evaluations": result.evaluations,
        "elapsed": result.elapsed,
        "stop_reason": result.stop_reason,
        "report": [],
    }
    if trainer.parallel.active:
        summary["parallel"] = trainer.parallel.report()
    if not result.interrupted:
        summary.update(evaluate_best(trainer, result.stop_reason))
    return summary


def evaluate_best(trainer: Trainer, stop_reason: str = "") -> dict:
    """The best checkpoint's parameters (the last ones if none validated) on the test
    split, logged (with ``stopped``: ``stop_reason``, why the run ended); returns
    ``test``, ``test_loss`` and the ``report`` lines, the last saying why it stopped."""
    loaded = load_best(trainer)
    stopped = [f"stopped at epoch {trainer.task.epoch}: {stop_reason}"] if stop_reason else []
    splits = getattr(trainer.task, "splits", None)
    if isinstance(splits, dict) and "test" not in splits:  # data in memory: no test split
        return {"report": stopped, **loaded}
    tested, best_step = loaded["tested_checkpoint"], loaded["best_step"]
    record = trainer.evaluate("test")
    if stop_reason:
        record["stopped"] = stop_reason
    trainer.log.write(record)
    report = trainer.task.report(record, trainer.step, best_step)
    if not math.isfinite(record["loss"]):
        report.append("test loss is not finite: training diverged")
    which = "best on valid" if best_step else "the latest: none was validated"
    report.append(f"test figures from checkpoint {tested} ({which})")
    report += stopped
    return {"test_loss": record["loss"], "test": record, "report": report, **loaded}


def settings_of(trainer: Trainer, given: TrainSettings) -> TrainSettings:
    """The settings a trainer runs on: ``given`` with the data path it recorded."""
    saved = trainer.meta.get("settings") if isinstance(trainer.meta, dict) else None
    return TrainSettings.from_dict(saved) if isinstance(saved, dict) else given


def load_best(trainer: Trainer) -> dict:
    """The best checkpoint's parameters into ``trainer.model`` (the last ones if none
    validated); returns ``tested_checkpoint`` (its folder) and ``best_step``."""
    best_step = None
    tested = None
    if trainer.out_dir is not None:  # rank 0; the others receive its parameters
        tested = resolve(trainer.out_dir, "best")
        best = trainer.out_dir / "best.json"
        if best.is_file():
            best_state, _ = load_checkpoint(trainer.out_dir, which="best")
            load_params(trainer.model, best_state, str(best))
            best_step = int(read_json(best)["step"])
    trainer.parallel.broadcast_parameters(trainer.model)
    return {"tested_checkpoint": str(tested), "best_step": best_step}
