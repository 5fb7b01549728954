"""PTB word LM, Zaremba et al. "small", through kioku's own training code.

    python benchmarks/ptb_kioku.py [--steps 600] [--warmup 5] [--data-root DIR]

Exactly what ``kioku train --data ptb`` runs per step: the preset's settings
(``kioku/cli/train_cmd.py``), the task, model and optimizer built by
``kioku.train.setup``, and :class:`kioku.train.loop.Trainer` (no evaluation, sampling,
checkpoint or progress output inside the timed steps). Prints tokens per second over
``--steps`` steps after ``--warmup``; compare with ``benchmarks/ptb_torch.py``.
"""

from __future__ import annotations

from whole_task import arguments, ptb_settings, report, timed_run, warmed_trainer

from kioku.kernels import _threads
from kioku.train.setup import build_model, build_task


def main() -> None:
    args = arguments(__doc__.splitlines()[0], steps=600)
    settings = ptb_settings(args)
    task = build_task(settings)
    model = build_model(settings, task)
    seconds = timed_run(warmed_trainer(args, settings, model, task))
    count = args.steps * settings.bptt * settings.batch_size
    report("ptb", "kioku", args.steps, seconds, "tokens", count, model.num_parameters(),
           _threads.max_threads())  # fmt: skip


if __name__ == "__main__":
    main()
