"""BiLSTM part-of-speech tagger on UD English-GUM in PyTorch with packed sequences: the
reference for ``kioku train --task tag`` (``benchmarks/tagger_kioku.py``).

    python benchmarks/tagger_torch.py [--steps 200] [--warmup 5] [--data-root DIR]

The word-only configuration of ``benchmarks/tagger_kioku.py``: word embedding 100,
one bidirectional LSTM layer of 1 x 100 per direction, a linear layer to the UPOS tags,
batch 32, Adam lr 3e-3, global gradient-norm clip 5, mean cross-entropy over the real
tokens. The batches are kioku's own (the same shuffled order, padding and lengths:
``kioku.train.tag_task``), fed to ``nn.LSTM`` through ``pack_padded_sequence``.
Prints sentences per second.
"""

from __future__ import annotations

import tempfile
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from whole_task import arguments, report, tag_settings

from kioku.train.tag_task import TagTask

HIDDEN = EMBED = 100


class Tagger(torch.nn.Module):
    def __init__(self, vocab: int, tags: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, EMBED)
        self.lstm = torch.nn.LSTM(EMBED, HIDDEN, 1, bidirectional=True)
        self.output = torch.nn.Linear(2 * HIDDEN, tags)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(self.embedding(x), lengths, enforce_sorted=False)
        y, _ = pad_packed_sequence(self.lstm(packed)[0], total_length=x.shape[0])
        return self.output(y)


def main() -> None:
    args = arguments(__doc__.splitlines()[0], steps=200)
    with tempfile.TemporaryDirectory() as links:
        settings = tag_settings(args, links, HIDDEN, EMBED)
        task = TagTask.from_settings(settings)
    torch.manual_seed(0)
    model = Tagger(len(task.vocab), len(task.labels))
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-1)
    batches = iter(())

    def step() -> int:
        nonlocal batches
        batch = next(batches, None)
        if batch is None:
            batches = task.train_batches()
            batch = next(batches)
        x, lengths, y = (torch.from_numpy(a) for a in batch[:3])  # word ids, lengths, tags
        optimizer.zero_grad()
        logits = model(x, lengths)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
        optimizer.step()
        return int(x.shape[1])

    model.train()
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    sentences = sum(step() for _ in range(args.steps))
    seconds = time.perf_counter() - start
    parameters = sum(p.numel() for p in model.parameters())
    report("tagger", "torch", args.steps, seconds, "sentences", sentences, parameters,
           torch.get_num_threads())  # fmt: skip


if __name__ == "__main__":
    main()
