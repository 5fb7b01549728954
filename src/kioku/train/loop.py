"""The training loop: steps, periodic evaluation, checkpoints, early stopping, Ctrl-C.

The loop is task-agnostic: a task (:class:`kioku.train.task.Task`) supplies batches, one
training step's loss and gradients, evaluation on a split and its own resumable state
(data position, recurrent state carried across batches). Everything that decides a
future step is in the checkpoint, so stopping and resuming changes nothing: the losses
and parameters of ``N`` steps + resume + ``N`` steps equal those of ``2N`` steps.

Ctrl-C is deferred to the end of the current step (a second one aborts at once); the
loop then saves a checkpoint and returns with ``interrupted`` set.

A non-finite loss, gradient norm, parameter or validation figure stops the run at once
(:mod:`kioku.train.finite`); nothing non-finite is saved.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from ..nn.module import Module
from . import rngstate
from .callbacks import Callback, EarlyStopping, ModelCheckpoint, epoch_logs
from .checkpoint import resolve
from .distributed import Communicator, DataParallel, quiet_unless_root
from .finite import RunawayWatch, check_step, diverged, first_nonfinite, last_checkpoint
from .progress import Progress
from .runlog import RunLog
from .schedule import ReduceOnPlateau, StepDecay
from .task import Task
from .trainer_state import TrainerState


@dataclass
class LoopConfig:
    """When to stop, evaluate, save and sample. ``max_steps`` and ``epochs`` both bound the
    run (``None``: no bound from it); ``eval_every`` counts steps (0: at epoch ends only);
    ``patience`` counts evaluations without improvement (0: no early stopping)."""

    max_steps: int | None = None
    epochs: int | None = None
    eval_every: int = 0
    eval_at_epoch_end: bool = True
    patience: int = 0
    clip: float | None = None
    sample_every: int = 0
    keep: int = 2
    progress: bool = True
    max_time: float | None = None  # seconds of this session


@dataclass
class LoopResult:
    """What a run did: per-step training losses (this session only), evaluations, and
    where it stopped."""

    step: int
    epoch: int
    losses: list[float] = field(default_factory=list)
    evaluations: list[dict] = field(default_factory=list)
    best_valid: float | None = None
    stopped_early: bool = False
    interrupted: bool = False
    checkpoint: Path | None = None
    elapsed: float = 0.0
    stop_reason: str = ""  # why the run ended, in words (the log's test record has it)


class Trainer(TrainerState):
    """Runs ``task`` on ``model`` with ``optimizer`` (and an optional schedule), saving
    checkpoints and the evaluation log under ``out_dir`` (``None``: no files)."""

    def __init__(
        self,
        model: Module,
        task: Task,
        optimizer,
        schedule=None,
        config: LoopConfig | None = None,
        out_dir: str | Path | None = None,
        meta: dict | None = None,
        on_sample: Callable[[int], str] | None = None,
        stream: TextIO | None = None,
        parallel: DataParallel | None = None,
        callbacks: list[Callback] | None = None,
    ) -> None:
        # data-parallel rank (default: one process); rank 0 alone writes files and shows
        self.parallel = parallel if parallel is not None else DataParallel(Communicator())
        if self.parallel.active and not getattr(task, "data_parallel", False):
            raise ValueError(
                "task: expected a task that splits its batches across ranks under mpiexec, "
                f"found {type(task).__name__}, which would count every gradient "
                f"{self.parallel.size} times"
            )
        task.parallel = self.parallel
        self._run_dir = Path(out_dir) if out_dir is not None else None  # rank 0's, on all
        if not self.parallel.is_root:
            out_dir, on_sample = None, None
            stream = quiet_unless_root(self.parallel, stream)
        self.model = model
        self.task = task
        self.optimizer = optimizer
        self.schedule = schedule
        self.config = config or LoopConfig()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.meta = meta or {}
        self.on_sample = on_sample
        self.stream = stream  # evaluation lines and samples (default: stdout)
        self.log = RunLog(self.out_dir / "log.jsonl" if self.out_dir else None)
        self.step = 0
        self.callbacks = list(callbacks or [])
        # the best parameters (best.json) and --patience: callbacks, on the task's figure;
        # a ModelCheckpoint given among the callbacks says what "best" means instead
        key, direction = task.selection
        given = [c for c in self.callbacks if isinstance(c, ModelCheckpoint)]
        self._own_keeper = not given
        self.keeper = given[0] if given else ModelCheckpoint(f"val_{key}", direction)
        patience = self.config.patience
        self.stopper = EarlyStopping(f"val_{key}", patience, direction) if patience else None
        self.recent: list[float] = []  # training losses since the last evaluation
        self.elapsed_before = 0.0
        self._stop_requested = False
        self._shared_time = 0.0  # rank 0's session time at the last step, on every rank
        self._stop_agreed = False  # any rank's Ctrl-C, as of the last step's allreduce
        self._runaway = RunawayWatch()

    # -- the loop -----------------------------------------------------------------------
    def _session_time(self) -> float:
        return time.perf_counter() - self._started if hasattr(self, "_started") else 0.0

    def _time_used(self) -> float:
        # ranks stop on rank 0's clock, shared by each step's allreduce, all at one step
        return self._shared_time if self.parallel.active else self._session_time()

    def _done(self) -> bool:
        c = self.config
        return (
            (c.max_steps is not None and self.step >= c.max_steps)
            or (c.epochs is not None and self.task.epoch >= c.epochs)
            or (c.max_time is not None and self._time_used() >= c.max_time)
        )

    def _step_bound_reached(self) -> bool:
        c = self.config
        return (c.max_steps is not None and self.step >= c.max_steps) or (
            c.max_time is not None and self._time_used() >= c.max_time
        )

    def total_steps(self) -> int | None:
        """The step bound of this run, ``None`` when only time or early stopping end it."""
        per_epoch = self.task.batches_per_epoch()
        bounds = []
        if self.config.max_steps is not None:
            bounds.append(self.config.max_steps)
        if self.config.epochs is not None:
            bounds.append(self.config.epochs * per_epoch)
        return min(bounds) if bounds else None

    def evaluate(self, split: str = "valid") -> dict:
        """Evaluate on ``split``; returns the log record (also written to the log)."""
        record = {"step": self.step, "epoch": self.task.epoch, "split": split}
        record.update(self.task.measure(self.model, split))
        record["lr"] = float(self.optimizer.lr)
        record["elapsed"] = round(self.elapsed_before + self._session_time(), 3)
        if self.parallel.active:
            record.update(self.parallel.report())
        return record

    def _periodic_eval(
        self, result: LoopResult, progress: Progress, lr: float | None = None
    ) -> bool:
        """Evaluate, log, checkpoint, apply plateau schedules; True to stop early. ``lr``:
        the rate the last steps used, if a schedule has changed it since."""
        record = self.evaluate("valid")
        if lr is not None:
            record["lr"] = lr
        if self.recent:
            record["train_loss"] = float(np.mean(self.recent))
            self.recent.clear()
        key, direction = self.task.selection  # the task's figure, as of now
        for figure in dict.fromkeys(("loss", key)):
            if not math.isfinite(record.get(figure, 0.0)):
                self.log.write(record)  # written as null, named under "nonfinite"
                raise self._diverged(f"validation {figure}", record[figure], self.step)
        logs = epoch_logs(record)
        for monitor in (self.keeper if self._own_keeper else None, self.stopper):
            if monitor is not None:
                monitor.monitor, monitor.mode = f"val_{key}", direction
        self.keeper.on_epoch_end(self.task.epoch, logs)
        stop = bool(self.stopper.on_epoch_end(self.task.epoch, logs)) if self.stopper else False
        decayed = None
        if isinstance(self.schedule, ReduceOnPlateau):  # on the figure "best" follows
            if self.schedule.best is None:
                self.schedule.mode = direction
            before = float(self.optimizer.lr)
            if self.schedule.step(record[key]) < before:
                decayed = (
                    f"lr {before:.4g} -> {self.optimizer.lr:.4g}: "
                    f"{self.schedule.patience + 1} evaluations without a better {key}"
                )
        self.log.write(record)
        result.evaluations.append(record)
        progress.write(self.task.describe(record))
        if decayed:
            progress.write(decayed)
        result.checkpoint = self.save(best=self.keeper.improved) or result.checkpoint
        return self._notify("on_epoch_end", self.task.epoch, logs) or stop

    def _install_sigint(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self._stop_requested:  # second Ctrl-C: abort now
                raise KeyboardInterrupt
            self._stop_requested = True

        return signal.signal(signal.SIGINT, handler)

    def run(self) -> LoopResult:
        """Train until ``max_steps``/``epochs``/early stop/Ctrl-C; returns what happened."""
        self._started = time.perf_counter()
        result = LoopResult(step=self.step, epoch=self.task.epoch, best_valid=self.best_valid)
        shown = self.config.progress and self.parallel.is_root
        limit = self.config.max_time
        limit = None if limit is None else limit - self._time_used()
        progress = Progress(self.total_steps(), self.step, shown, out=self.stream, max_time=limit)
        previous_handler = self._install_sigint()
        self.parallel.broadcast_parameters(self.model)
        if self._notify("on_train_begin", {"step": self.step}):
            result.stopped_early = True
        try:
            while not self._done() and not result.stopped_early:
                self._run_epoch(result, progress)
                if self.task.at_epoch_start():  # an epoch just ended
                    self._end_epoch(result, progress)
            if result.losses and self.best_valid is None:  # a run that never validated
                self._periodic_eval(result, progress)
        except KeyboardInterrupt:
            result.interrupted = True
            progress.write(f"interrupted at step {self.step}: saving a checkpoint")
            result.checkpoint = self.save() or result.checkpoint
        finally:
            progress.close()
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        self._final_checkpoint(result)
        result.step, result.epoch, result.best_valid = self.step, self.task.epoch, self.best_valid
        result.stop_reason = self._stop_reason(result)
        result.elapsed = self.elapsed_before + self._session_time()
        self._notify("on_train_end", {"step": self.step, "best_valid": self.best_valid})
        return result

    def _stop_reason(self, result: LoopResult) -> str:
        """Why the run ended, in words: the first of Ctrl-C, patience, a callback, the
        time, step and epoch bounds that holds."""
        c = self.config
        if result.interrupted:
            return "interrupted (Ctrl-C): resume to go on"
        stopper = self.stopper
        if result.stopped_early and stopper is not None and stopper.stop:
            best = "" if stopper.best is None else f" (best {stopper.best:.4f})"
            return (
                f"patience: {stopper.patience} evaluations without a better {stopper.monitor}{best}"
            )
        if result.stopped_early:
            return "a callback stopped the run"
        if c.max_time is not None and self._time_used() >= c.max_time:
            return f"time budget: {c.max_time:g} s of this session used"
        if c.max_steps is not None and self.step >= c.max_steps:
            return f"step limit: {c.max_steps} steps"
        if c.epochs is not None and self.task.epoch >= c.epochs:
            return f"epoch limit: {c.epochs} epochs"
        return "nothing left to do"

    def _run_epoch(self, result: LoopResult, progress: Progress) -> None:
        """Steps of the current epoch until it ends, a bound is reached or training stops
        early; a Ctrl-C requested during a step is raised after it."""
        batches = self.task.train_batches()
        while True:
            # position, carried state and dropout RNG before this batch
            snapshot = self.task.snapshot(), rngstate.collect(self.model)
            batch = next(batches, None)
            if batch is None:
                return
            loss, tokens = self._train_step(batch, snapshot)
            self._after_step(result, progress, loss, tokens)
            if self._stop_agreed if self.parallel.active else self._stop_requested:
                raise KeyboardInterrupt
            if result.stopped_early or self._step_bound_reached():
                return

    def _train_step(self, batch: tuple, snapshot: tuple) -> tuple[float, int]:
        """Gradients, clipping and the update of one batch. A Ctrl-C inside it puts the
        ``snapshot`` taken before the batch back, so the checkpoint resumes at this batch."""
        try:
            self.model.zero_grad()
            with np.errstate(over="ignore", invalid="ignore"):  # checked below, in one line
                loss, tokens = self.task.train_step(self.model, batch)
            if self.parallel.active:
                loss, tokens = self._reduce(loss, tokens)
            named = list(self.model.named_parameters())
            problem, scale = check_step(loss, [g for _, _, g in named], self.config.clip)
            if problem is not None:  # before the update: the parameters stay finite
                raise self._diverged(*problem)
            with np.errstate(over="ignore", invalid="ignore"):
                # the clipping's scale, the update and the check of every parameter it
                # updated in one pass over each block
                finite = self.optimizer.step_checked(scale)
            stepped = {id(p) for p in self.optimizer.params} if finite else set()
            bad = first_nonfinite((name, p) for name, p, _ in named if id(p) not in stepped)
            if bad is not None:
                raise self._diverged(f"parameter {bad!r}", None)
        except KeyboardInterrupt:
            self.task.rollback(snapshot[0])
            rngstate.restore(self.model, snapshot[1], "snapshot")
            raise
        return loss, tokens

    def _diverged(self, what: str, value: float | None, step: int | None = None):
        """The :class:`~kioku.train.finite.TrainingDiverged` of ``what`` at ``step``
        (default: the next), naming the run folder's last (finite) checkpoint."""
        settings = self.meta.get("settings") if isinstance(self.meta, dict) else None
        init_range = settings.get("init_range") if isinstance(settings, dict) else None
        step = self.step + 1 if step is None else step
        lr, last = float(self.optimizer.lr), last_checkpoint(self.out_dir)
        return diverged(what, value, step, lr, self.config.clip, init_range, last)

    def _reduce(self, loss: float, tokens: int) -> tuple[float, int]:
        """Sum gradients, loss and tokens over ranks in one Allreduce that also carries
        rank 0's clock and any rank's Ctrl-C, so that every rank stops at the same step."""
        clock = self._session_time() if self.parallel.is_root else 0.0
        loss, tokens, (stop, clock) = self.parallel.reduce(
            self.model, loss, tokens, (float(self._stop_requested), clock)
        )
        self._shared_time = float(clock)
        self._stop_agreed = bool(stop)
        return loss, tokens

    def _after_step(self, result: LoopResult, progress: Progress, loss: float, tokens: int) -> None:
        """Count the step, show it, and sample or evaluate when their turn comes."""
        c = self.config
        self.step += 1
        result.losses.append(loss)
        self.recent.append(loss)
        progress.update(1, tokens, self.task.describe_loss(loss))
        if self._notify("on_batch_end", self.step, {"loss": loss}):
            result.stopped_early = True
        warning = self._runaway.check(loss, self.step, float(self.optimizer.lr), c.clip)
        if warning is not None:
            progress.write(warning)
        if c.sample_every and self.on_sample and self.step % c.sample_every == 0:
            progress.write(self.on_sample(self.step))
        if c.eval_every and self.step % c.eval_every == 0:
            if self._periodic_eval(result, progress):
                result.stopped_early = True

    def _end_epoch(self, result: LoopResult, progress: Progress) -> None:
        """Per-epoch decay, then the epoch's evaluation unless this step had one."""
        c = self.config
        lr_used = float(self.optimizer.lr)
        if isinstance(self.schedule, StepDecay):
            self.schedule.step()  # before the checkpoint the eval saves
        evaluated_now = c.eval_every and self.step % c.eval_every == 0
        if c.eval_at_epoch_end and not result.stopped_early and not evaluated_now:
            if self._periodic_eval(result, progress, lr_used):
                result.stopped_early = True

    def _final_checkpoint(self, result: LoopResult) -> None:
        """A checkpoint of the last step if the run took steps that none saved; a resumed
        run that had nothing left to do reports the checkpoint it started from."""
        steps_taken = bool(result.losses)
        if (
            not result.interrupted
            and steps_taken
            and (result.checkpoint is None or self.step != _step_of(result.checkpoint))
        ):
            result.checkpoint = self.save() or result.checkpoint
        if result.checkpoint is None and self.out_dir is not None:
            try:
                result.checkpoint = resolve(self.out_dir)
            except FileNotFoundError:
                result.checkpoint = self.save()


def _step_of(checkpoint: Path) -> int:
    try:
        return int(checkpoint.name.split("-")[1].split(".")[0])
    except (IndexError, ValueError):
        return -1
