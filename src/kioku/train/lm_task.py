"""The language-modelling task: truncated BPTT over contiguous streams.

The recurrent state at the end of one batch starts the next (reset at each epoch);
it is part of the task's saved state, so a resumed run continues mid-epoch exactly.
Losses are mean cross-entropy per token in nats; ``unit`` picks how they are shown:
perplexity (``exp(loss)``, word level) or bits per character (``loss / ln 2``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from ..data.stream import StreamBatcher
from ..data.vocab import Vocabulary
from ..nn.loss import softmax_cross_entropy
from .checkpoint import CheckpointError


def metrics_of(loss: float, unit: str) -> dict[str, float]:
    """``{"ppl": ...}`` and, for characters, ``{"bpc": ...}`` of a mean loss in nats."""
    out = {"ppl": math.exp(loss) if loss < 700 else math.inf}
    if unit == "bpc":
        out["bpc"] = loss / math.log(2)
    return out


class LanguageModelTask:
    """Next-token prediction on ``(N,)`` id streams per split."""

    kind = "lm"

    def __init__(
        self,
        vocab: Vocabulary,
        splits: dict[str, np.ndarray],
        batch_size: int,
        bptt: int,
        eval_batch_size: int = 10,
        eval_tokens: int | None = None,
        unit: str | None = None,
    ) -> None:
        self.vocab = vocab
        self.splits = splits
        self.batch_size, self.bptt = batch_size, bptt
        self.eval_batch_size = eval_batch_size
        self.eval_tokens = eval_tokens  # periodic valid evaluations use a prefix this long
        self.unit = unit or ("bpc" if vocab.level == "char" else "ppl")
        self.batcher = StreamBatcher(splits["train"], batch_size, bptt)
        self.carry = None

    # -- position -------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self.batcher.epoch

    def batches_per_epoch(self) -> int:
        return len(self.batcher)

    def at_epoch_start(self) -> bool:
        return self.batcher.batch == 0

    def train_batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.batcher.batch == 0:
            self.carry = None  # each epoch starts from a zero state
        return self.batcher.epoch_batches()

    def snapshot(self):
        return self.batcher.state_dict(), self.carry

    def rollback(self, snapshot) -> None:
        position, self.carry = snapshot
        self.batcher.load_state_dict(position)

    # -- steps ----------------------------------------------------------------------------
    def train_step(self, model, batch) -> tuple[float, int]:
        """Forward, loss and backward of one batch ``(x (T, B), y (T, B))``; gradients
        accumulate in the model. Returns the mean loss and the token count."""
        x, y = batch
        logits, self.carry = model(x, self.carry)
        loss, dlogits = softmax_cross_entropy(logits, y)
        model.backward(dlogits)
        return float(loss), int(y.size)

    def evaluate(self, model, split: str, limit: int | None = None) -> float:
        """Mean loss per token over ``split`` (``valid``: a prefix of ``eval_tokens``
        unless ``limit`` says otherwise), the state carried across the whole text."""
        ids = self.splits[split]
        limit = limit if limit is not None else (self.eval_tokens if split == "valid" else None)
        if limit:
            ids = ids[: limit + 1]
        batcher = StreamBatcher(ids, min(self.eval_batch_size, max(1, ids.size // 2)), self.bptt)
        was_training = model.training
        model.eval()
        total, count, state = 0.0, 0, None
        try:
            for x, y in batcher.epoch_batches():
                logits, state = model(x, state)
                loss, _ = softmax_cross_entropy(logits, y)
                total += float(loss) * y.size
                count += y.size
        finally:
            model.train(was_training)
        return total / count

    # -- display --------------------------------------------------------------------------
    def metrics(self, loss: float) -> dict[str, float]:
        return metrics_of(loss, self.unit)

    def describe_loss(self, loss: float) -> str:
        if self.unit == "bpc":
            return f"loss {loss:.3f} bpc {loss / math.log(2):.3f}"
        return f"loss {loss:.3f} ppl {math.exp(min(loss, 700)):.1f}"

    def describe(self, record: dict) -> str:
        shown = f"bpc {record['bpc']:.3f}" if "bpc" in record else f"ppl {record['ppl']:.2f}"
        return (
            f"step {record['step']} epoch {record['epoch']} | {record['split']} "
            f"loss {record['loss']:.4f} {shown} | lr {record['lr']:.4g}"
        )

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "vocab": self.vocab.to_dict(),
            "batch_size": self.batch_size,
            "bptt": self.bptt,
            "unit": self.unit,
            "position": self.batcher.state_dict(),
            "carry": list(self.carry) if self.carry is not None else None,
        }

    def load_state_dict(self, state: dict, source: str) -> None:
        """Restore position and carried state; the vocabulary and batch shape must be
        those of this run (errors name ``source`` and the field)."""
        saved = Vocabulary.from_dict(state.get("vocab"), f"{source}: field 'task.vocab'")
        try:
            self.vocab.check_same(saved, source)
        except ValueError as error:
            raise CheckpointError(f"{error} (the data gives another vocabulary)") from None
        for name in ("batch_size", "bptt"):
            if state.get(name) != getattr(self, name):
                raise CheckpointError(
                    f"{source}: field 'task.{name}': checkpoint has {state.get(name)}, "
                    f"this run {getattr(self, name)}"
                )
        self.batcher.load_state_dict(state["position"])
        carry = state.get("carry")
        self.carry = tuple(np.asarray(a) for a in carry) if carry is not None else None

    # -- reporting ------------------------------------------------------------------------
    def header(self) -> str:
        sizes = {s: int(ids.size) for s, ids in self.splits.items()}
        return (
            f"data: {self.vocab.level}-level, vocabulary {len(self.vocab)}, tokens {sizes}; "
            f"batch {self.batch_size} x bptt {self.bptt}, {len(self.batcher)} batches/epoch"
        )

    def report(self, record: dict, step: int, result) -> list[str]:
        return [self.describe(record)]

    def test_lines(self, record: dict, baseline_loss: float, best_step: int | None) -> list[str]:
        """The final figures beside the unigram baseline's."""
        where = f" (parameters of step {best_step}, the best on valid)" if best_step else ""
        base = metrics_of(baseline_loss, self.unit)
        if self.unit == "bpc":
            return [
                f"test bits per character: {record['bpc']:.3f}{where}",
                f"unigram baseline:        {base['bpc']:.3f}",
            ]
        return [
            f"test perplexity: {record['ppl']:.2f}{where}",
            f"unigram baseline: {base['ppl']:.2f}",
        ]
