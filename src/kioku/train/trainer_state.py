"""What a :class:`~kioku.train.loop.Trainer` keeps across sessions: its state as a
checkpoint holds it (model, optimizer, schedule, task position, RNG, step, the best
validation figure and the validations since), the best figure and the patience count
read from its :class:`~kioku.train.callbacks.ModelCheckpoint` and
:class:`~kioku.train.callbacks.EarlyStopping`, and the callbacks' notification."""

from __future__ import annotations

from pathlib import Path

from . import rngstate
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint


class TrainerState:
    """The state half of :class:`~kioku.train.loop.Trainer` (which sets every attribute
    used here: model, optimizer, schedule, task, keeper, stopper, callbacks, ...)."""

    @property
    def best_valid(self) -> float | None:
        """The best validation figure so far (the keeper's)."""
        return self.keeper.best

    @best_valid.setter
    def best_valid(self, value: float | None) -> None:
        self.keeper.best = value
        if self.stopper is not None:
            self.stopper.best = value

    @property
    def bad_evals(self) -> int:
        """Validations since the best one."""
        return self.keeper.wait

    @bad_evals.setter
    def bad_evals(self, value: int) -> None:
        self.keeper.wait = value
        if self.stopper is not None:
            self.stopper.wait = value

    def _notify(self, event: str, *args) -> bool:
        """Call ``event`` on every user callback; whether one asked to stop."""
        stop = False
        for callback in self.callbacks:
            if callback is self.keeper:
                continue
            answer = getattr(callback, event)(*args)
            stop = stop or answer is True or bool(getattr(callback, "stop", False))
        return stop

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything a resumed run needs, as a nested dict of JSON scalars and arrays."""
        return {
            "model": {
                "kind": type(self.model).__name__,
                "config": self.model.config(),
                "params": self.model.state_dict(),
            },
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "task": self.task.state_dict(),
            "rng": {"model": rngstate.collect(self.model)},
            "step": self.step,
            "epoch": self.task.epoch,
            "best_valid": self.best_valid,
            "bad_evals": self.bad_evals,
            "recent_losses": list(self.recent),
            "elapsed": self.elapsed_before + self._session_time(),
            "meta": self.meta,
        }

    def load_state_dict(self, state: dict, source: str) -> None:
        """Restore a state from :meth:`state_dict`; every check runs before anything is
        written, and errors name ``source`` and the field."""
        from .restore import load_params

        load_params(self.model, state, source)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError, TypeError) as error:
            raise CheckpointError(f"{source}: field 'optimizer': {error}") from None
        if self.schedule is not None and state.get("schedule") is not None:
            self.schedule.load_state_dict(state["schedule"])
        self.task.load_state_dict(state["task"], source)
        rngstate.restore(self.model, state["rng"]["model"], source)
        self.step = int(state["step"])
        self.best_valid = state["best_valid"]
        self.bad_evals = int(state["bad_evals"])
        self.recent = [float(x) for x in state.get("recent_losses", [])]
        self.elapsed_before = float(state["elapsed"])

    def resume(self, path: str | Path) -> Path:
        """Load the latest checkpoint under ``path``; returns its directory."""
        state, directory = load_checkpoint(path)
        self.load_state_dict(state, str(directory / "checkpoint.json"))
        self.log.truncate_after(self.step)
        return directory

    def save(self, best: bool = False) -> Path | None:
        if self._run_dir is None:
            return None
        state = self.state_dict()  # collective: every rank's share of the carried state
        if self.out_dir is None:  # not rank 0: the checkpoint rank 0 writes
            return self._run_dir / f"ckpt-{self.step:09d}"
        return save_checkpoint(self.out_dir, state, self.step, best=best, keep=self.config.keep)
