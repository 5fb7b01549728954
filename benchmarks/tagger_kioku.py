"""BiLSTM part-of-speech tagger on UD English-GUM through kioku's own training code.

    python benchmarks/tagger_kioku.py [--steps 200] [--warmup 5] [--data-root DIR]

What ``kioku train --task tag --data <ud-gum> --hidden 100 --embed 100 --layers 1
--char-embed 0 --word-dropout 0 --dropout 0 --sort-window 0 --lr 3e-3`` runs per step:
the word-only tagger (batch 32, Adam lr 3e-3, clip 5), one bidirectional layer of
1 x 100 per direction, the task, model and optimizer of ``kioku.train.setup`` and
:class:`kioku.train.loop.Trainer` (no evaluation or checkpoint inside the timed
steps). Prints sentences per second; compare with ``benchmarks/tagger_torch.py``.
"""

from __future__ import annotations

import tempfile

from whole_task import arguments, report, tag_settings, timed_run, warmed_trainer

from kioku.kernels import _threads
from kioku.train.setup import build_model, build_task

HIDDEN = EMBED = 100


class CountingTask:
    """The tag task, counting the sentences of the batches it hands out."""

    def __init__(self, task) -> None:
        self.task, self.sentences = task, 0

    def train_batches(self):
        for batch in self.task.train_batches():
            self.sentences += int(batch[0].shape[1])
            yield batch

    def __getattr__(self, name):
        return getattr(self.task, name)


def main() -> None:
    args = arguments(__doc__.splitlines()[0], steps=200)
    with tempfile.TemporaryDirectory() as links:
        settings = tag_settings(args, links, HIDDEN, EMBED)
        task = CountingTask(build_task(settings))
    model = build_model(settings, task.task)
    trainer = warmed_trainer(args, settings, model, task)
    task.sentences = 0
    seconds = timed_run(trainer)
    report("tagger", "kioku", args.steps, seconds, "sentences", task.sentences,
           model.num_parameters(), _threads.max_threads())  # fmt: skip


if __name__ == "__main__":
    main()
