"""PTB word LM, Zaremba et al. "small", in PyTorch: the reference for ``kioku train --data ptb``.

    python benchmarks/ptb_torch.py [--steps 600] [--warmup 5] [--data-root DIR]

The configuration of kioku's preset (``kioku/cli/train_cmd.py: PTB_PRESET``): word
embedding 200, 2 x 200 LSTM, no dropout, untied output layer, parameters from
U(-0.1, 0.1), truncated BPTT 20 steps x 20 streams with the state carried across
batches, SGD lr 20 on the mean loss per token, global gradient-norm clip 0.25. The
vocabulary is kioku's: ``<unk>``, ``<eos>`` and every training word, ``<eos>`` ending
each line. Prints tokens per second over ``--steps`` steps after ``--warmup``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from whole_task import arguments, data_folder, report

EMBED, HIDDEN, LAYERS, BPTT, BATCH, LR, CLIP, INIT = 200, 200, 2, 20, 20, 20.0, 0.25, 0.1


def token_ids(folder) -> tuple[np.ndarray, int]:
    lines = (folder / "ptb.train.txt").read_text().splitlines()
    tokens = [w for line in lines if line.split() for w in [*line.split(), "<eos>"]]
    words = sorted(set(tokens) - {"<unk>", "<eos>"})
    index = {w: i for i, w in enumerate(["<unk>", "<eos>", *words])}
    return np.array([index[w] for w in tokens], np.int64), len(index)


class LanguageModel(torch.nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, EMBED)
        self.lstm = torch.nn.LSTM(EMBED, HIDDEN, LAYERS)
        self.decoder = torch.nn.Linear(HIDDEN, vocab)
        for p in self.parameters():
            torch.nn.init.uniform_(p, -INIT, INIT)

    def forward(self, x, state):
        y, state = self.lstm(self.embedding(x), state)
        return self.decoder(y), state


def main() -> None:
    args = arguments(__doc__.splitlines()[0], steps=600)
    ids, vocab = token_ids(data_folder(args, "ptb", ("ptb.train.txt",)))
    torch.manual_seed(0)
    streams = torch.from_numpy(ids[: ids.size // BATCH * BATCH].reshape(BATCH, -1).T.copy())
    model = LanguageModel(vocab)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    state, position = None, 0

    def step() -> None:
        nonlocal state, position
        if position + BPTT + 1 > streams.shape[0]:
            state, position = None, 0  # a new epoch starts from a zero state
        x = streams[position : position + BPTT]
        y = streams[position + 1 : position + 1 + BPTT]
        position += BPTT
        if state is not None:
            state = tuple(s.detach() for s in state)
        optimizer.zero_grad()
        logits, state = model(x, state)
        loss = loss_fn(logits.reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()

    model.train()
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - start
    parameters = sum(p.numel() for p in model.parameters())
    count = args.steps * BPTT * BATCH
    report("ptb", "torch", args.steps, seconds, "tokens", count, parameters,
           torch.get_num_threads())  # fmt: skip


if __name__ == "__main__":
    main()
