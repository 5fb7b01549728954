"""The language-modelling task: truncated BPTT over contiguous streams.

The recurrent state at the end of one batch starts the next (reset at each epoch);
it is part of the task's saved state, so a resumed run continues mid-epoch exactly.
Losses are mean cross-entropy per token in nats; ``unit`` picks how they are shown:
perplexity (``exp(loss)``, word level) or bits per character (``loss / ln 2``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..data.corpus import Corpus, load_corpus
from ..data.stream import StreamBatcher
from ..data.text import read_text
from ..data.vocab import Vocabulary
from ..models import LanguageModel, Model
from .baseline import unigram_loss
from .checkpoint import CheckpointError
from .distributed import take
from .settings import TrainSettings, setting_error
from .task import BatchedTask


def metrics_of(loss: float, unit: str) -> dict[str, float]:
    """``{"ppl": ...}`` and, for characters, ``{"bpc": ...}`` of a mean loss in nats."""
    out = {"ppl": math.exp(loss) if loss < 700 else math.inf}
    if unit == "bpc":
        out["bpc"] = loss / math.log(2)
    return out


def word_tokenizer(settings: TrainSettings, level: str) -> str:
    """The tokenizer a run's text is split with: ``settings.tokenizer``, else ``ud``
    (``whitespace`` for the PTB, tokenized already); characters take none (``kioku
    train`` refuses a tokenizer given for them)."""
    if level == "char":
        return "whitespace"
    if settings.tokenizer is not None:
        return settings.tokenizer
    return "whitespace" if settings.data == "ptb" else "ud"


def describe_sources(corpus: Corpus, vocab: Vocabulary, splits: dict[str, np.ndarray]) -> list[str]:
    """Lines saying which file fed which split, with its tokens (words and ``<eos>``
    apart for a word model)."""
    counts = {}
    for split, ids in splits.items():
        if vocab.level == "word":
            eos = int((ids == vocab.eos_id).sum())
            counts[split] = f"{ids.size - eos:,} words + {eos:,} <eos> = {ids.size:,} tokens"
        else:
            counts[split] = f"{ids.size:,} characters"
    if corpus.files is None:
        shown = ", ".join(f"{s} {c}" for s, c in counts.items())
        return [f"data: {corpus.name} (built in): {shown}"]
    how = "in order: valid and test are the text's tail"
    return corpus.files.describe(counts, how, shares=("90%", "5%", "5%"))


class LanguageModelTask(BatchedTask):
    """Next-token prediction on ``(N,)`` id streams per split."""

    kind = "lm"
    data_parallel = True  # train_step and measure take this rank's streams

    def __init__(
        self,
        vocab: Vocabulary,
        splits: dict[str, np.ndarray],
        batch_size: int,
        bptt: int,
        eval_batch_size: int = 10,
        eval_tokens: int | None = None,
        unit: str | None = None,
        sources: list[str] | None = None,
    ) -> None:
        """``splits``: each split's ids ``(N,)``; ``sources``: the lines saying where each
        split came from (printed when a run starts)."""
        self.vocab = vocab
        self.sources = sources or []
        self.data_files: dict | None = None  # the absolute paths of the split files
        self.context = 0  # leading tokens of split "all" that are context, not scored
        self.splits = splits
        self.batch_size, self.bptt = batch_size, bptt
        self.eval_batch_size = eval_batch_size
        self.eval_tokens = eval_tokens  # periodic valid evaluations use a prefix this long
        self.unit = unit or ("bpc" if vocab.level == "char" else "ppl")
        self.batcher = StreamBatcher(splits["train"], batch_size, bptt)
        self.carry = None

    @classmethod
    def from_settings(cls, settings: TrainSettings) -> LanguageModelTask:
        """Corpus -> vocabulary (from the training split) -> id streams -> task."""
        try:
            corpus = load_corpus(settings.data)
        except (FileNotFoundError, ValueError) as error:
            raise setting_error(type(error), "data", str(error)) from None
        return cls.from_corpus(corpus, settings)

    @classmethod
    def from_corpus(
        cls,
        corpus: Corpus,
        settings: TrainSettings,
        split_names: tuple[str, ...] = ("train", "valid", "test"),
    ) -> LanguageModelTask:
        """The task over ``corpus`` (read from files, or texts held in memory): the
        vocabulary from its training split, id streams of ``split_names``."""
        level = settings.level or corpus.default_level
        min_count = settings.min_count
        if min_count is None:
            min_count = 3 if level == "char" else 1
        vocab = Vocabulary.build(
            corpus.train,
            level,
            min_count=min_count,
            max_size=settings.max_vocab,
            tokenizer=word_tokenizer(settings, level),
        )
        splits = {}
        for split in split_names:
            ids = vocab.encode(corpus.split(split))
            if ids.size < 2:
                detail = f"the {split} split has {ids.size} tokens, expected >= 2"
                raise setting_error(ValueError, "data", detail, settings.data)
            splits[split] = ids
        task = cls(
            vocab,
            splits,
            settings.batch_size,
            settings.bptt,
            eval_batch_size=settings.eval_batch_size,
            eval_tokens=settings.eval_tokens,
            sources=describe_sources(corpus, vocab, splits),
        )
        task.data_files = corpus.files.to_dict() if corpus.files is not None else None
        return task

    @classmethod
    def on_file(cls, state: dict, path: Path, batch_size: int, source: str) -> LanguageModelTask:
        """The whole text of ``path`` as split ``"all"``, encoded with a checkpoint's
        vocabulary (``state``, its ``task`` field read from ``source``): unknown tokens
        become ``<unk>``. It is read as ``kioku predict`` reads it: one stream, the state
        carried through the whole text, a word model's text starting after an ``<eos>``
        (so its first word is scored too), so that both give the same figure."""
        vocab = Vocabulary.from_dict(state.get("vocab"), f"{source}: field 'task.vocab'")
        ids = vocab.encode(read_text(path))
        if vocab.level == "word":
            ids = np.concatenate([[vocab.eos_id], ids]).astype(np.int64)
        if ids.size < 2:
            raise ValueError(f"{path}: {ids.size} tokens, expected at least 2")
        bptt = state.get("bptt") if isinstance(state.get("bptt"), int) else 64
        task = cls(vocab, {"train": ids, "all": ids}, 1, bptt, eval_batch_size=1)
        task.context = 1 if vocab.level == "word" else 0
        return task

    def unknown_share(self, split: str) -> float:
        """The share of ``split``'s tokens that read as ``<unk>`` (a word model's
        leading ``<eos>`` of :meth:`on_file` not counted)."""
        ids = self.splits[split][self.context if split == "all" else 0 :]
        return float((ids == self.vocab.unk_id).mean()) if ids.size else 0.0

    def build_model(
        self, settings: TrainSettings, rng: np.random.Generator, init_range: float | None
    ) -> LanguageModel:
        return LanguageModel(
            len(self.vocab),
            embed_size=settings.embed,
            hidden_size=settings.hidden,
            num_layers=settings.layers,
            dropout=settings.dropout,
            tie_weights=settings.tie_weights,
            rng=rng,
            init_range=init_range,
            variational_dropout=settings.variational_dropout,
            **settings.cell_options(),
        )

    def sampler(
        self, model: LanguageModel, settings: TrainSettings, length: int = 240
    ) -> Callable[[int], str]:
        """A callback printing ``length`` tokens sampled at step ``step`` (its own
        generator, seeded by ``(seed, step)``, so sampling never moves the training RNG)."""
        vocab, seed = self.vocab, settings.seed
        prompt = "def " if vocab.level == "char" else ""
        # a word model starts a new sentence: the prefix is one <eos>
        prefix = vocab.encode(prompt) if prompt else np.array([vocab.eos_id])

        def sample(step: int) -> str:
            rng = np.random.default_rng([seed, step])
            ids = model.sample(prefix, length, temperature=0.8, rng=rng)
            rule = "-" * 20
            return f"{rule} sample at step {step} {rule}\n{prompt}{vocab.decode(ids)}\n{rule * 3}"

        return sample

    # -- position -------------------------------------------------------------------------
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
    def train_step(self, model: Model, batch: tuple[np.ndarray, np.ndarray]) -> tuple[float, int]:
        """Loss and backward of one batch ``(x (T, B), y (T, B))`` from the carried state;
        returns the mean loss and the token count."""
        x, y = batch
        parallel = self.parallel
        if not parallel.active:
            loss, self.carry = model.loss(x, y, self.carry)
            return float(loss), int(y.size)
        # this rank's streams; self.carry keeps the global (L, B, H) shape, this rank's
        # columns current (the others' are gathered only when a checkpoint needs them)
        streams = x.shape[1]
        with parallel.shard(streams) as (start, stop, weight):
            carry = None if self.carry is None else tuple(take(a, start, stop) for a in self.carry)
            x_local, y_local = parallel.local(batch, streams)
            loss, carry = model.loss(x_local, y_local, carry)
        parallel.share = weight * y_local.size / y.size
        if self.carry is None:
            self.carry = tuple(
                np.zeros(a.shape[:1] + (streams,) + a.shape[2:], a.dtype) for a in carry
            )
        if weight:  # new arrays: a snapshot taken before this batch keeps the old ones
            self.carry = tuple(whole.copy() for whole in self.carry)
            for whole, mine in zip(self.carry, carry):
                whole[:, start:stop] = mine
        return float(loss), int(weight * y_local.size)

    def measure(self, model: Model, split: str) -> dict[str, float]:
        """Mean loss per token over ``split`` (``valid``: a prefix of ``eval_tokens``),
        the state carried across the whole text, and its perplexity (and bits/char)."""
        ids = self.splits[split]
        limit = self.eval_tokens if split == "valid" else None
        if limit:
            ids = ids[: limit + 1]
        batcher = StreamBatcher(ids, min(self.eval_batch_size, max(1, ids.size // 2)), self.bptt)
        total, count, state = 0.0, 0, None
        parallel = self.parallel  # each rank carries its own streams through the text
        start, stop, weight = parallel.bounds(batcher.batch_size)
        with model.eval_mode():
            for x, y in batcher.epoch_batches():
                if not weight:
                    continue
                x, y = parallel.local((x, y), batcher.batch_size)
                loss, state = model.loss(x, y, state, backward=False)
                total += float(loss) * y.size
                count += y.size
        total, count = parallel.sum([total, count])
        return {"loss": total / count, **metrics_of(total / count, self.unit)}

    # -- display --------------------------------------------------------------------------
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

    def header(self) -> str:
        sizes = {s: int(ids.size) for s, ids in self.splits.items()}
        tokenizer = f", {self.vocab.tokenizer} tokenizer" if self.vocab.level == "word" else ""
        line = (
            f"data: {self.vocab.level}-level{tokenizer}, vocabulary {len(self.vocab)} "
            f"(<unk> and <eos> included), tokens {sizes}; "
            f"batch {self.batch_size} x bptt {self.bptt}, {len(self.batcher)} batches/epoch"
        )
        return "\n".join([*self.sources, line])

    def report(self, record: dict, step: int, best_step: int | None) -> list[str]:
        """The test figures beside those of the unigram baseline (token frequencies)."""
        where = f" (parameters of step {best_step}, the best on valid)" if best_step else ""
        baseline = unigram_loss(self.splits["train"], self.splits["test"], len(self.vocab))
        base = metrics_of(baseline, self.unit)
        if self.unit == "bpc":
            return [
                f"test bits per character: {record['bpc']:.3f}{where}",
                f"unigram baseline:        {base['bpc']:.3f}",
            ]
        return [
            f"test perplexity: {record['ppl']:.2f}{where}",
            f"unigram baseline: {base['ppl']:.2f}",
        ]

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "vocab": self.vocab.to_dict(),
            "batch_size": self.batch_size,
            "bptt": self.bptt,
            "unit": self.unit,
            **({"data_files": self.data_files} if self.data_files else {}),
            "position": self.batcher.state_dict(),
            "carry": self._gathered_carry(),
        }

    def _gathered_carry(self) -> list[np.ndarray] | None:
        """The carried state of every stream (collective under data parallelism)."""
        if self.carry is None:
            return None
        if not self.parallel.active:
            return list(self.carry)
        streams = self.carry[0].shape[1]
        start, stop, _ = self.parallel.bounds(streams)
        return [self.parallel.gather_batch(a[:, start:stop], streams) for a in self.carry]

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
