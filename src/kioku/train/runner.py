"""One training run from settings to test figures: what ``kioku train`` does, callable.

Builds (or restores) task, model, optimizer and schedule; trains with periodic
evaluation and checkpoints; then evaluates the best checkpoint's parameters on the test
split beside a unigram baseline, and logs that too.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from .baseline import unigram_loss
from .checkpoint import load_checkpoint
from .loop import LoopConfig, Trainer
from .restore import build_model as restore_model
from .restore import load_params
from .setup import build_model, build_optimizer, build_schedule, build_task


def sampler(model, vocab, seed: int, length: int = 240):
    """A callback printing ``length`` tokens sampled at step ``step`` (its own generator,
    seeded by ``(seed, step)``, so sampling never moves the training RNG)."""
    prompt = "def " if vocab.level == "char" else ""
    # a word model starts a new sentence: the prefix is one <eos>
    prefix = vocab.encode(prompt) if prompt else np.array([vocab.eos_id])

    def sample(step: int) -> str:
        ids = model.sample(prefix, length, temperature=0.8, rng=np.random.default_rng([seed, step]))
        rule = "-" * 20
        return f"{rule} sample at step {step} {rule}\n{prompt}{vocab.decode(ids)}\n{rule * 3}"

    return sample


def train_run(
    settings, saved_state: dict | None = None, stream=None, saved_source: str | None = None
) -> dict:
    """Train as ``settings`` say (see :mod:`kioku.cli.train_cmd`); ``saved_state``: a
    loaded checkpoint to resume, read from ``saved_source`` (named in errors). Returns
    a summary dict (figures, report lines)."""
    stream = stream or sys.stdout
    task = build_task(settings)
    out_dir = Path(settings.out)
    if saved_state is not None:
        source = saved_source or str(out_dir / "latest.json")
        model = restore_model(saved_state, source)
    else:
        model = build_model(settings, task)
    optimizer = build_optimizer(settings, model)
    schedule = build_schedule(settings, optimizer)
    config = LoopConfig(
        max_steps=settings.max_steps,
        epochs=settings.epochs,
        eval_every=settings.eval_every or 0,
        patience=settings.patience or 0,
        clip=settings.clip,
        sample_every=settings.sample_every or 0,
        keep=settings.keep,
        progress=not settings.no_progress,
        seed=settings.seed,
        max_time=getattr(settings, "max_time", None),
    )
    meta = {"settings": {k: v for k, v in vars(settings).items() if k != "resume"}}
    on_sample = sampler(model, task.vocab, settings.seed) if settings.task == "lm" else None
    trainer = Trainer(
        model, task, optimizer, schedule, config, out_dir, meta, on_sample, stream=stream
    )
    if saved_state is not None:
        trainer.load_state_dict(saved_state, source)
        trainer.log.truncate_after(trainer.step)
    else:
        if (out_dir / "latest.json").exists():
            raise FileExistsError(
                f"--out {out_dir}: holds a run already; use --resume or another --out"
            )
        print(task.header(), file=stream)
        print(
            f"model: {type(model).__name__} {model.config()} "
            f"({model.num_parameters():,} parameters)",
            file=stream,
        )
    result = trainer.run()
    summary = {
        "interrupted": result.interrupted,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "step": result.step,
        "epoch": result.epoch,
        "losses": result.losses,
        "evaluations": result.evaluations,
        "elapsed": result.elapsed,
        "report": [],
    }
    if result.interrupted:
        return summary
    if (out_dir / "best.json").exists():  # test the parameters that validated best
        best_state, _ = load_checkpoint(out_dir, which="best")
        load_params(model, best_state, str(out_dir / "best.json"))
    record = trainer.evaluate("test")
    trainer.log.write(record)
    summary["test_loss"] = record["loss"]
    summary["test"] = record
    summary["report"] = task.report(record, trainer.step, result)
    if settings.task == "lm":
        base = unigram_loss(task.splits["train"], task.splits["test"], len(task.vocab))
        summary["unigram_loss"] = base
        summary["report"] = task.test_lines(record, base, best_step=_best_step(out_dir))
    if not math.isfinite(record["loss"]):
        summary["report"].append("test loss is not finite: training diverged")
    return summary


def _best_step(out_dir: Path) -> int | None:
    from ..data.atomic import read_json

    path = out_dir / "best.json"
    return int(read_json(path)["step"]) if path.is_file() else None
