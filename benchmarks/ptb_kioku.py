"""PTB word LM, Zaremba et al. "small", through kioku's own training code.

    python benchmarks/ptb_kioku.py [--steps 600] [--warmup 5] [--data-root DIR]

Exactly what ``kioku train --data ptb`` runs per step: the preset's settings
(``kioku/cli/train_cmd.py``), the task, model and optimizer built by
``kioku.train.setup``, and :class:`kioku.train.loop.Trainer` (no evaluation, sampling,
checkpoint or progress output inside the timed steps). Prints tokens per second over
``--steps`` steps after ``--warmup``; compare with ``benchmarks/ptb_torch.py``.
"""

from __future__ import annotations

import argparse
import os
import time

from whole_task import arguments, data_folder, report

from kioku.cli import train_cmd
from kioku.kernels import _threads
from kioku.train.loop import LoopConfig, Trainer
from kioku.train.setup import build_model, build_optimizer, build_schedule, build_task


def main() -> None:
    args = arguments(__doc__.splitlines()[0], steps=600)
    data_folder(args, "ptb", ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"))
    os.environ["KIOKU_DATA"] = args.data_root  # kioku reads <KIOKU_DATA>/ptb/ptb.*.txt
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    settings = train_cmd.resolve_settings(parser.parse_args(["--data", "ptb"]))
    task = build_task(settings)
    model = build_model(settings, task)
    optimizer = build_optimizer(settings, model)
    config = LoopConfig(
        max_steps=args.warmup,
        epochs=settings.epochs,
        eval_every=0,
        eval_at_epoch_end=False,
        clip=settings.clip,
        progress=False,
    )
    trainer = Trainer(model, task, optimizer, build_schedule(settings, optimizer), config)
    if args.warmup:
        trainer.run()
    config.max_steps = args.warmup + args.steps
    start = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - start
    count = args.steps * settings.bptt * settings.batch_size
    report("ptb", "kioku", args.steps, seconds, "tokens", count, model.num_parameters(),
           _threads.max_threads())  # fmt: skip


if __name__ == "__main__":
    main()
