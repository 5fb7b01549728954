"""Checkpoint-level evaluation and description, behind ``kioku eval`` and ``kioku info``."""

from __future__ import annotations

import os
from pathlib import Path

from .checkpoint import CheckpointError, field, load_checkpoint, resolve
from .restore import build_model, load_params, saved_settings
from .runlog import RunLog


def evaluate_checkpoint(
    path: str | os.PathLike,
    split: str | None = None,
    which: str = "best",
    data: str | os.PathLike | None = None,
) -> dict:
    """Loss and metrics of a checkpoint's model: on ``split`` (default ``test``) of its
    own data (``data`` omitted, or the run's own with a ``split``), or on the whole of the
    file ``data`` (split ``"all"``; a folder: its ``split`` file) read with the
    checkpoint's vocabulary, labels and scaling, unknown tokens becoming ``<unk>``."""
    from .setup import TASKS, build_task

    state, directory = load_checkpoint(path, which)
    source = str(directory / "checkpoint.json")
    settings = saved_settings(state, source)
    task_state = field(state, "task", source, dict)
    model = build_model(state, source)
    load_params(model, state, source)
    if data is None or (split is not None and _same_path(data, settings.data)):
        split = split or "test"
        # all of the split, not the training-time prefix
        try:
            task = build_task(settings.replace(eval_tokens=None))
        except (FileNotFoundError, ValueError) as error:
            raise type(error)(
                f"the run's data cannot be read from here: {error} (--data FILE scores a file)"
            ) from None
        task.load_state_dict(task_state, source)
        shown = settings.data
    else:
        file = data_file(data, settings.task, split)
        split = "all"
        task = TASKS[settings.task].on_file(task_state, file, settings.batch_size, source)
        shown = str(file)
    record = {"checkpoint": str(directory), "step": state["step"], "split": split, "data": shown}
    record.update(task.measure(model, split))
    share = task.unknown_share(split) if hasattr(task, "unknown_share") else None
    if share is not None:
        record["unk_share"] = share
    return record


def _same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def data_file(data: str | os.PathLike, task: str, split: str | None) -> Path:
    """The one file ``kioku eval --data`` scores: ``data`` itself, or a folder's file for
    ``split`` (default ``test``)."""
    from ..data.splits import find_splits

    path = Path(data)
    if path.is_dir():
        suffixes = {"classify": (".tsv", ".txt"), "tag": (".conllu",), "forecast": (".csv",)}
        found = find_splits(path, suffixes.get(task))
        if found.single is not None:
            if split is not None:
                raise ValueError(f"--split {split}: {path} holds one data file, scored whole")
            return found.single
        return found.files[split or "test"]
    if split is not None:
        raise ValueError(f"--split {split}: a file given with --data is scored whole")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or directory")
    return path


def _selection(state: dict) -> tuple[str, str]:
    """The validation figure that chose the run's best parameters (its task's)."""
    from .setup import TASKS

    settings = state.get("meta", {}).get("settings") or {}
    task = TASKS.get(settings.get("task"))
    return task.selection if task is not None else ("loss", "min")


def _vocabulary_of(vocab: dict | None) -> str | None:
    """``word-level, 10000 tokens, ud tokenizer`` for a saved vocabulary (``None``)."""
    if not vocab:
        return None
    shown = f"{vocab['level']}-level, {len(vocab['tokens'])} tokens"
    if vocab["level"] == "word":
        shown += f", {vocab.get('tokenizer', 'whitespace')} tokenizer"
    return shown


def describe_checkpoint(path: str | os.PathLike, which: str = "best") -> dict:
    """A JSON-able summary of a checkpoint (and the tail of its run's log)."""
    directory = resolve(path, which)
    state, _ = load_checkpoint(directory)
    source = str(directory / "checkpoint.json")
    params = field(state, "model.params", source, dict)
    load_params(build_model(state, source), state, source)  # the config and tensors agree
    vocab = state.get("task", {}).get("vocab")
    optimizer = field(state, "optimizer", source, dict)
    run_dir = directory.parent
    return {
        "checkpoint": str(directory),
        "model": field(state, "model.kind", source, str),
        "config": field(state, "model.config", source, dict),
        "parameters": int(sum(p.size for p in params.values())),
        "vocabulary": _vocabulary_of(vocab),
        "optimizer": optimizer.get("type"),
        "lr": float(optimizer.get("hyperparams", {}).get("lr", float("nan"))),
        "step": state.get("step"),
        "epoch": state.get("epoch"),
        "position": state.get("task", {}).get("position"),
        "best_valid": state.get("best_valid"),
        "best_valid_figure": _selection(state)[0],
        "elapsed": float(state.get("elapsed", 0.0)),
        "settings": state.get("meta", {}).get("settings"),
        "files": {p.name: p.stat().st_size for p in sorted(directory.iterdir())},
        "log_tail": RunLog(run_dir / "log.jsonl").read()[-3:],
    }


__all__ = ["CheckpointError", "describe_checkpoint", "evaluate_checkpoint"]
