"""Data-parallel training over MPI (issue 13): ``mpiexec -n 2`` equals one process.

The runs themselves are this file run as a script (``python tests/test_distributed.py
SPEC``), once alone and once under ``mpiexec -n 2``; rank 0 saves losses, evaluations
and parameters to ``SPEC["result"]`` and the tests compare them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kioku.nn import Dropout
from kioku.nn.batch_shard import batch_random, batch_shard
from kioku.train.distributed import (
    Communicator,
    DataParallel,
    communicator,
    shard_range,
    under_mpiexec,
)

HERE = Path(__file__).resolve()
SRC = HERE.parents[1] / "src"
TEXT = "".join(f"def f{i}(x):\n    return x * {i} + {i % 3}\n" for i in range(40))
WORDS = "the a cat dog sat ran on under mat log big small red".split()


pytestmark = [pytest.mark.mpi, pytest.mark.slow]


def mpiexec() -> str | None:
    """The mpiexec beside this Python (the mpich wheel's) or on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.is_file() else shutil.which("mpiexec")


def have_mpi4py() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


needs_mpi = pytest.mark.skipif(
    mpiexec() is None or not have_mpi4py(),
    reason="mpiexec or mpi4py is absent (pip install -e '.[mpi]')",
)


# -- the worker -------------------------------------------------------------------------
def build(spec: dict):
    """Task, model, optimizer and trainer of one run of ``spec``."""
    from kioku.data import Vocabulary
    from kioku.data.chars import FormTable, build_char_vocab
    from kioku.data.padded import Example
    from kioku.models import LanguageModel, SequenceClassifier, SequenceTagger
    from kioku.train.labeled_tasks import ClassifyTask
    from kioku.train.lm_task import LanguageModelTask
    from kioku.train.loop import LoopConfig, Trainer
    from kioku.train.optim import Adam
    from kioku.train.tag_task import TagTask

    dtype = np.dtype(spec["dtype"])
    if spec["task"] == "lm":
        vocab = Vocabulary.build(TEXT, "char")
        ids = vocab.encode(TEXT)
        splits = {"train": ids[:1200], "valid": ids[1200:1400], "test": ids[1400:]}
        task = LanguageModelTask(vocab, splits, spec["batch"], bptt=20, eval_batch_size=3)
        model = LanguageModel(len(vocab), 12, 16, 2, dropout=0.2, dtype=dtype, rng=0)
    else:
        rng = np.random.default_rng(7)
        vocab = Vocabulary.build(" ".join(WORDS), "word")
        # chartag: words spelled too (a FormTable), word dropout on
        table = FormTable(build_char_vocab(WORDS)) if spec["task"] == "chartag" else None
        splits = {}
        for split, n in (("train", 45), ("valid", 13), ("test", 13)):
            examples = []
            for _ in range(n):
                words = rng.choice(WORDS, rng.integers(2, 9))
                ids = np.array([vocab.index[w] for w in words], np.int64)
                # tags: the word's length class; -1 (left out of the loss) for "the"
                tags = np.array([-1 if w == "the" else min(len(w), 4) - 1 for w in words])
                label = int("cat" in words) if spec["task"] == "classify" else tags
                forms = None if table is None else table.ids(list(words))
                examples.append(Example(ids, label, forms))
            splits[split] = examples
        if spec["task"] == "classify":
            task = ClassifyTask(vocab, ["0", "1"], splits, spec["batch"], seed=3)
            model = SequenceClassifier(
                len(vocab), 8, 12, 2, 2, bidirectional=True, dropout=0.3, dtype=dtype, rng=0
            )
        elif table is None:
            task = TagTask(vocab, ["1", "2", "3", "4"], splits, spec["batch"], seed=3)
            model = SequenceTagger(len(vocab), 8, 12, 4, 1, dropout=0.3, dtype=dtype, rng=0)
        else:
            drop = np.full(len(vocab), 0.2)
            task = TagTask(vocab, ["1", "2", "3", "4"], splits, spec["batch"], seed=3,
                           table=table, train_forms=len(table), word_dropout=drop)  # fmt: skip
            model = SequenceTagger(len(vocab), 8, 12, 4, 2, dropout=0.3, dtype=dtype, rng=0,
                                   char_vocab_size=len(table.char_vocab), char_embed_size=3,
                                   char_hidden_size=4, embed_dropout=0.2)  # fmt: skip
    parallel = DataParallel()
    if spec.get("bind", True):  # else the gradients are copied into the buffer and back
        parallel.bind_gradients(model)
    optimizer = Adam(model.parameters(), lr=0.01)
    config = LoopConfig(max_steps=spec["steps"], eval_every=10, clip=1.0, progress=False)
    return Trainer(model, task, optimizer, None, config, spec.get("out"), parallel=parallel)


def worker(spec: dict) -> None:
    """Train as ``spec`` says, failing on purpose where it asks; rank 0 saves figures."""
    trainer = build(spec)
    if spec.get("resume"):
        trainer.resume(spec["out"])
    fault = spec.get("fault")
    if fault:
        step_of_task = trainer.task.train_step

        def failing_step(model, batch):
            if trainer.step == fault["step"] and trainer.parallel.rank == fault["rank"]:
                Path(fault["stamp"]).write_text(repr(time.time()))
                if fault["kind"] == "kill":
                    os.kill(os.getpid(), 9)
                raise RuntimeError(f"injected failure at step {trainer.step}")
            return step_of_task(model, batch)

        trainer.task.train_step = failing_step
    result = trainer.run()
    valid = trainer.evaluate("valid")
    if trainer.parallel.is_root:
        arrays = {f"param/{k}": v for k, v in trainer.model.state_dict().items()}
        arrays["losses"] = np.array(result.losses)
        arrays["evaluations"] = np.array([r["loss"] for r in result.evaluations])
        arrays["valid"] = np.array([valid["loss"]])
        np.savez(spec["result"], **arrays)


def run_worker(spec: dict, ranks: int, timeout: float = 120) -> subprocess.CompletedProcess:
    """This file as a script, alone (``ranks=0``: no mpiexec) or under mpiexec."""
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"):
        env.pop(name, None)
    command = [sys.executable, str(HERE), json.dumps(spec)]
    if ranks:
        command = [mpiexec(), "-n", str(ranks), *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Element by element (losses, evaluations)."""
    return float(np.max(np.abs(a - b) / np.abs(b)))


def scale_relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """A parameter array against its own scale (its largest magnitude): float32 sums
    leave an error of about one ulp of the array's scale, near-zero entries included."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def max_relative_error(a: dict, b: dict) -> float:
    """The largest error over losses and evaluations (element-wise) and parameters
    (each against its scale)."""
    assert a.keys() == b.keys()
    return max(
        (scale_relative_error if k.startswith("param/") else relative_error)(a[k], b[k]) for k in a
    )


def train(tmp_path: Path, name: str, ranks: int, **spec) -> dict[str, np.ndarray]:
    spec.setdefault("out", str(tmp_path / name))
    spec["result"] = str(tmp_path / f"{name}.npz")
    done = run_worker(spec, ranks)
    assert done.returncode == 0, done.stdout + done.stderr
    return load(Path(spec["result"]))


# -- same result as one process --------------------------------------------------------
TOLERANCE = {"float64": 1e-6, "float32": 1e-4}


@needs_mpi
@pytest.mark.parametrize(
    "task, dtype, batch",
    [
        ("lm", "float64", 5),
        ("lm", "float32", 4),
        ("classify", "float64", 7),
        ("tag", "float64", 6),
        ("chartag", "float64", 6),
    ],  # fmt: skip
)
def test_two_ranks_equal_one_process(tmp_path, task, dtype, batch):
    spec = {"task": task, "dtype": dtype, "batch": batch, "steps": 50, "bind": task != "classify"}
    alone = train(tmp_path, "alone", 0, **spec)
    pair = train(tmp_path, "pair", 2, **spec)
    error = max_relative_error(pair, alone)
    print(f"{task} {dtype}: 2 ranks vs 1 process, max relative error {error:.2e}")
    assert alone["losses"].size == 50
    assert error < TOLERANCE[dtype]
    # evaluation sharded across ranks gives the single process's figures
    assert relative_error(pair["evaluations"], alone["evaluations"]) < TOLERANCE[dtype]


@needs_mpi
def test_resume_bit_for_bit_with_same_ranks_and_close_with_others(tmp_path):
    spec = {"task": "lm", "dtype": "float64", "batch": 5}
    full = train(tmp_path, "full", 2, steps=30, **spec)
    train(tmp_path, "split", 2, steps=15, **spec)
    shutil.copytree(tmp_path / "split", tmp_path / "split1")  # for a one-process resume
    resumed = train(
        tmp_path, "resumed", 2, steps=30, resume=True, out=str(tmp_path / "split"), **spec
    )
    for key in full:
        if key.startswith("param/"):
            assert np.array_equal(full[key], resumed[key]), key
    assert np.array_equal(full["losses"][15:], resumed["losses"])
    # the checkpoint of 2 ranks resumed by one process: the same run within tolerance
    alone = train(tmp_path, "alone", 0, steps=30, resume=True, out=str(tmp_path / "split1"), **spec)
    assert alone["losses"].size == 15
    losses_error = relative_error(alone["losses"], full["losses"][15:])
    error = max_relative_error(
        {k: v for k, v in alone.items() if k.startswith("param/")},
        {k: v for k, v in full.items() if k.startswith("param/")},
    )
    print(
        f"2-rank checkpoint resumed in 1 process: parameters {error:.2e}, losses "
        f"{losses_error:.2e} relative"
    )
    assert max(error, losses_error) < TOLERANCE["float64"]


@needs_mpi
@pytest.mark.parametrize("kind", ["raise", "kill"])
def test_a_failing_rank_ends_every_rank_and_keeps_the_checkpoint(tmp_path, kind):
    out = tmp_path / "run"
    spec = {"task": "lm", "dtype": "float32", "batch": 4, "steps": 40, "out": str(out)}
    spec["result"] = str(tmp_path / "never.npz")
    spec["fault"] = {"kind": kind, "rank": 1, "step": 23}
    spec["fault"]["stamp"] = str(tmp_path / "failed-at")
    done = run_worker(spec, 2, timeout=60)
    seconds = time.time() - float(Path(spec["fault"]["stamp"]).read_text())
    print(
        f"fault {kind} on rank 1: every rank ended {seconds:.2f} s later, status {done.returncode}"
    )
    assert done.returncode != 0
    assert seconds < 10
    assert not Path(spec["result"]).exists()
    if kind == "raise":
        assert "rank 1: RuntimeError: injected failure at step 23" in done.stderr
    # the checkpoint of step 20 (eval_every=10) is whole: a resumed run continues from it
    assert json.loads((out / "latest.json").read_text())["step"] == 20
    spec.pop("fault")
    spec.update(resume=True, result=str(tmp_path / "resumed.npz"), steps=25)
    resumed = run_worker(spec, 2)
    assert resumed.returncode == 0, resumed.stderr
    assert load(Path(spec["result"]))["losses"].size == 5


@needs_mpi
def test_kioku_train_under_mpiexec_reports_and_writes_once(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(TEXT * 3)
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    flags = "--max-steps 12 --eval-every 6 --hidden 16 --embed 8 --batch-size 6 --bptt 16"
    command = [mpiexec(), "-n", "2", sys.executable, "-m", "kioku", "train", "--data"]
    command += [str(text), "--out", str(out), *flags.split(), "--no-progress", "--dropout", "0.1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("model: LanguageModel") == 1
    assert done.stdout.count("data parallel: 2 ranks, allreduce") == 1
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in records] == [(6, "valid"), (12, "valid"), (12, "test")]
    assert all(r["ranks"] == 2 and r["allreduce_ms_per_step"] > 0 for r in records)
    assert json.loads((out / "latest.json").read_text())["step"] == 12


# -- pieces, in one process ------------------------------------------------------------
def test_without_mpiexec_nothing_changes(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    assert not under_mpiexec()
    assert under_mpiexec({"PMI_SIZE": "2"})
    parallel = DataParallel(Communicator())
    assert (parallel.rank, parallel.size, parallel.active) == (0, 1, False)
    batch = (np.arange(6).reshape(2, 3), np.arange(3))
    assert parallel.local(batch, 3) is batch
    assert parallel.sum([1.5, 2.0]) == [1.5, 2.0]
    if not under_mpiexec():
        assert communicator().size == 1


def test_a_task_that_does_not_split_its_batches_is_refused_under_mpi():
    from kioku.models import LanguageModel
    from kioku.train.loop import Trainer
    from kioku.train.optim import SGD

    class TwoRanks(Communicator):
        size = 2

    class WholeBatchTask:  # a task of the protocol that knows nothing of ranks
        epoch = 0

    model = LanguageModel(5, 4, 4, 1, rng=0)
    with pytest.raises(ValueError, match="task: expected a task that splits its batches"):
        Trainer(
            model, WholeBatchTask(), SGD(model.parameters(), 0.1), parallel=DataParallel(TwoRanks())
        )


def test_shard_range_covers_the_batch_once():
    for total in range(0, 12):
        for size in range(1, 5):
            slices = [shard_range(total, rank, size) for rank in range(size)]
            covered = [i for start, stop in slices for i in range(start, stop)]
            assert covered == list(range(total))
            lengths = [stop - start for start, stop in slices]
            assert max(lengths) - min(lengths) <= 1
    with pytest.raises(ValueError, match="rank, size"):
        shard_range(4, 2, 2)


@pytest.mark.parametrize("variational", [False, True])
def test_dropout_masks_do_not_depend_on_the_shard(variational):
    x = np.ones((5, 7, 3))
    whole = Dropout(0.5, variational, rng=11)
    expected = whole(x)
    for start, stop in ((0, 4), (4, 7), (6, 7)):
        part = Dropout(0.5, variational, rng=11)
        with batch_shard(start, stop, 7):
            got = part(x[:, start:stop])
        assert np.array_equal(got, expected[:, start:stop])
        # the generator advanced as the whole batch's did
        assert part.rng.bit_generator.state == whole.rng.bit_generator.state


def test_batch_random_refuses_a_shape_that_is_not_the_shard():
    rng = np.random.default_rng(0)
    with batch_shard(2, 5, 8), pytest.raises(ValueError, match="expected 3 examples on axis 1"):
        batch_random(rng, (4, 4, 2), 1)
    with pytest.raises(ValueError, match="start, stop, total"):
        with batch_shard(3, 3, 8):
            pass


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
