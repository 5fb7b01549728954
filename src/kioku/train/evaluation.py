"""Checkpoint-level evaluation and description, behind ``kioku eval`` and ``kioku info``."""

from __future__ import annotations

import os

from .checkpoint import CheckpointError, field, load_checkpoint, resolve
from .restore import build_model, load_params, saved_settings
from .runlog import RunLog


def evaluate_checkpoint(
    path: str | os.PathLike, split: str = "test", which: str = "best", data: str | None = None
) -> dict:
    """Loss and metrics of a checkpoint's model on ``split`` of its data (or ``data``);
    a vocabulary that does not match the checkpoint's is an error naming the file."""
    from .setup import build_task

    state, directory = load_checkpoint(path, which)
    source = str(directory / "checkpoint.json")
    settings = saved_settings(state, source)
    # all of the split, not the training-time prefix
    settings = settings.replace(eval_tokens=None, data=settings.data if data is None else data)
    task = build_task(settings)
    task.load_state_dict(field(state, "task", source, dict), source)
    model = build_model(state, source)
    load_params(model, state, source)
    record = {
        "checkpoint": str(directory),
        "step": state["step"],
        "split": split,
        "data": settings.data,
    }
    record.update(task.measure(model, split))
    return record


def describe_checkpoint(path: str | os.PathLike, which: str = "latest") -> dict:
    """A JSON-able summary of a checkpoint (and the tail of its run's log)."""
    directory = resolve(path, which)
    state, _ = load_checkpoint(directory)
    source = str(directory / "checkpoint.json")
    params = field(state, "model.params", source, dict)
    vocab = state.get("task", {}).get("vocab")
    optimizer = field(state, "optimizer", source, dict)
    run_dir = directory.parent
    return {
        "checkpoint": str(directory),
        "model": field(state, "model.kind", source, str),
        "config": field(state, "model.config", source, dict),
        "parameters": int(sum(p.size for p in params.values())),
        "vocabulary": f"{vocab['level']}-level, {len(vocab['tokens'])} tokens" if vocab else None,
        "optimizer": optimizer.get("type"),
        "lr": float(optimizer.get("hyperparams", {}).get("lr", float("nan"))),
        "step": state.get("step"),
        "epoch": state.get("epoch"),
        "position": state.get("task", {}).get("position"),
        "best_valid": state.get("best_valid"),
        "elapsed": float(state.get("elapsed", 0.0)),
        "settings": state.get("meta", {}).get("settings"),
        "files": {p.name: p.stat().st_size for p in sorted(directory.iterdir())},
        "log_tail": RunLog(run_dir / "log.jsonl").read()[-3:],
    }


__all__ = ["CheckpointError", "describe_checkpoint", "evaluate_checkpoint"]
