"""PTB "small" trained data-parallel: tokens per second and the Allreduce share of a step.

    # one process of one thread, then two ranks of one thread each (same global batch 20)
    KIOKU_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/ptb_distributed.py
    KIOKU_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python benchmarks/ptb_distributed.py

What ``kioku train --data ptb`` runs per step (the preset's settings, task, model and
optimizer, :class:`kioku.train.loop.Trainer` with no evaluation or checkpoint inside
the timed steps), with the trainer's :class:`~kioku.train.distributed.DataParallel`.
Rank 0 prints tokens per second, the time per step spent in the gradient Allreduce
(waiting for the slower rank included), and the time of the same Allreduce alone,
repeated after a barrier (the communication itself).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from whole_task import arguments, ptb_settings, timed_run, warmed_trainer

from kioku.kernels import _threads
from kioku.train.distributed import DataParallel, params_and_grads
from kioku.train.setup import build_model, build_task


def main() -> None:
    args = arguments(__doc__.splitlines()[0], steps=200)
    settings = ptb_settings(args)
    task = build_task(settings)
    model = build_model(settings, task)
    parallel = DataParallel()
    parallel.bind_gradients(model)  # as kioku train does: no copy into the Allreduce buffer
    trainer = warmed_trainer(args, settings, model, task, parallel)
    parallel.allreduce_seconds, parallel.steps = 0.0, 0
    parallel.barrier()
    seconds = timed_run(trainer)
    in_steps = parallel.allreduce_seconds
    # the same buffer reduced alone: the communication without the wait for the other rank
    floats = sum(g.size for _, g in params_and_grads(model)) + 4
    buffer = np.zeros(floats, dtype=np.float32)
    parallel.barrier()
    alone = time.perf_counter()
    for _ in range(args.steps):
        parallel.comm.allreduce(buffer)
    alone = (time.perf_counter() - alone) / args.steps
    if not parallel.is_root:
        return
    tokens = args.steps * settings.bptt * settings.batch_size
    line = {
        "ranks": parallel.size,
        "threads_per_rank": _threads.max_threads(),
        "steps": args.steps,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1),
        "step_ms": round(1000 * seconds / args.steps, 3),
        "allreduce_ms_per_step": round(1000 * in_steps / args.steps, 3),
        "allreduce_share": round(in_steps / seconds, 4),
        "allreduce_alone_ms": round(1000 * alone, 3),
        "buffer_bytes": int(buffer.nbytes),
        "load_avg": round(os.getloadavg()[0], 2),
    }
    print(
        f"ptb small, {parallel.size} rank(s) x {line['threads_per_rank']} thread: "
        f"{line['tokens_per_s']:,.0f} tokens/s, {line['step_ms']:.1f} ms/step, allreduce "
        f"{line['allreduce_ms_per_step']:.2f} ms/step ({100 * line['allreduce_share']:.1f}%), "
        f"alone {line['allreduce_alone_ms']:.3f} ms for {buffer.nbytes:,} bytes"
    )
    print(json.dumps(line))


if __name__ == "__main__":
    main()
