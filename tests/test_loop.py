"""The training loop: resumed runs equal uninterrupted ones bit for bit; Ctrl-C saves;
early stopping; the log; resume refuses a checkpoint that does not fit."""

from __future__ import annotations

import numpy as np
import pytest

from kioku.data import Vocabulary
from kioku.data.atomic import read_json
from kioku.models import LanguageModel
from kioku.train.checkpoint import CheckpointError
from kioku.train.lm_task import LanguageModelTask
from kioku.train.loop import LoopConfig, Trainer
from kioku.train.optim import SGD, Adam
from kioku.train.schedule import ReduceOnPlateau, StepDecay

TEXT = "".join(f"def f{i}(x):\n    return x * {i} + {i % 3}\n" for i in range(40))


def make_trainer(out, max_steps, text=TEXT, seed=0, hidden=16, schedule="step", **config):
    vocab = Vocabulary.build(text, "char")
    ids = vocab.encode(text)
    splits = {"train": ids[:1200], "valid": ids[1200:1400], "test": ids[1400:]}
    task = LanguageModelTask(vocab, splits, batch_size=4, bptt=25, eval_batch_size=2)
    model = LanguageModel(
        len(vocab), 12, hidden, 2, dropout=0.2, variational_dropout=True, rng=seed
    )
    if schedule == "step":
        optimizer = Adam(model.parameters(), lr=0.01)
        sched = StepDecay(optimizer, 0.5, step_size=1, start_epoch=1)
    else:
        optimizer = SGD(model.parameters(), lr=1.0, momentum=0.9)
        sched = ReduceOnPlateau(optimizer, factor=0.5, patience=0)
    settings = dict(max_steps=max_steps, eval_every=4, clip=0.5, progress=False)
    settings.update(config)
    return Trainer(model, task, optimizer, sched, LoopConfig(**settings), out)


def params(trainer):
    return trainer.model.state_dict()


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def strip_times(records):
    return [{k: v for k, v in r.items() if k != "elapsed"} for r in records]


@pytest.mark.parametrize("schedule", ["step", "plateau"])
@pytest.mark.parametrize("first", [7, 12])  # 12 batches = one epoch: the boundary case
def test_n_plus_resume_plus_n_equals_2n(tmp_path, first, schedule):
    total = 2 * first
    full = make_trainer(tmp_path / "full", total, schedule=schedule)
    full_result = full.run()
    assert full.task.batches_per_epoch() == 12 and full_result.step == total

    part = make_trainer(tmp_path / "part", first, schedule=schedule)
    part_result = part.run()
    resumed = make_trainer(tmp_path / "part", total, seed=99, schedule=schedule)  # other init
    resumed.resume(tmp_path / "part")
    assert resumed.step == first
    rest = resumed.run()

    losses = part_result.losses + rest.losses
    assert len(losses) == total
    assert np.array_equal(np.array(losses), np.array(full_result.losses))
    assert_same_params(params(resumed), params(full))
    assert resumed.optimizer.lr == full.optimizer.lr
    assert strip_times(resumed.log.read()) == strip_times(full.log.read())


def test_ctrl_c_saves_and_the_resumed_run_matches(tmp_path):
    full = make_trainer(tmp_path / "full", 12)
    full_losses = full.run().losses

    run = make_trainer(tmp_path / "run", 12)
    real_step = run.task.train_step
    calls = []

    def interrupting_step(model, batch):
        calls.append(1)
        if len(calls) == 6:  # mid-step: forward done, optimizer not yet
            real_step(model, batch)
            raise KeyboardInterrupt
        return real_step(model, batch)

    run.task.train_step = interrupting_step
    result = run.run()
    assert result.interrupted and result.step == 5
    assert result.checkpoint.name == "ckpt-000000005"

    resumed = make_trainer(tmp_path / "run", 12, seed=3)
    resumed.resume(tmp_path / "run")
    rest = resumed.run().losses
    assert np.array_equal(np.array(result.losses + rest), np.array(full_losses))
    assert_same_params(params(resumed), params(full))


def test_deferred_sigint_stops_after_the_step(tmp_path):
    import os
    import signal

    run = make_trainer(tmp_path / "run", 12)
    real_step = run.task.train_step
    calls = []

    def step_with_signal(model, batch):
        calls.append(1)
        out = real_step(model, batch)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-step, handled after it
        return out

    run.task.train_step = step_with_signal
    # whatever was installed before (SIGINT is ignored in a background job) comes back
    before = signal.getsignal(signal.SIGINT)
    result = run.run()
    assert result.interrupted and result.step == 3
    assert signal.getsignal(signal.SIGINT) is before


def test_tiny_language_model_overfits_short_text(tmp_path):
    text = "hello kioku, the memory cell remembers.\n" * 30
    vocab = Vocabulary.build(text, "char")
    ids = vocab.encode(text)
    task = LanguageModelTask(vocab, {"train": ids, "valid": ids, "test": ids}, 4, 20)
    model = LanguageModel(len(vocab), 16, 48, 1, rng=0)
    optimizer = Adam(model.parameters(), lr=0.02)
    trainer = Trainer(
        model, task, optimizer, None, LoopConfig(max_steps=150, clip=1.0, progress=False), None
    )
    result = trainer.run()
    assert result.losses[0] > 2.5
    assert task.evaluate(model, "valid") < 0.05


def test_early_stopping_and_log(tmp_path):
    trainer = make_trainer(tmp_path / "run", 100, patience=2, eval_every=2)
    trainer.optimizer.lr = 5.0  # diverges: valid stops improving
    result = trainer.run()
    assert result.stopped_early and result.step < 100
    records = trainer.log.read()
    assert [r["step"] for r in records] == [r["step"] for r in result.evaluations]
    assert all({"loss", "ppl", "bpc", "lr", "split", "train_loss"} <= set(r) for r in records)
    assert (tmp_path / "run" / "best.json").is_file()


def snapshot_files(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_resume_refuses_other_vocabulary_and_shape_touching_nothing(tmp_path):
    make_trainer(tmp_path / "run", 4).run()
    before = snapshot_files(tmp_path / "run")

    other = make_trainer(tmp_path / "run", 8, text=TEXT.replace("x", "y"))
    with pytest.raises(CheckpointError, match=r"checkpoint\.json: vocabulary field 'tokens"):
        other.resume(tmp_path / "run")
    wider = make_trainer(tmp_path / "run", 8, hidden=20)
    with pytest.raises(CheckpointError, match=r"checkpoint\.json: key 'model\.params\.\S+': exp"):
        wider.resume(tmp_path / "run")
    assert snapshot_files(tmp_path / "run") == before


def test_resuming_a_finished_run_writes_nothing(tmp_path):
    make_trainer(tmp_path / "run", 4).run()
    before = snapshot_files(tmp_path / "run")
    again = make_trainer(tmp_path / "run", 4)
    again.resume(tmp_path / "run")
    result = again.run()
    assert result.losses == [] and result.checkpoint.name == "ckpt-000000004"
    assert snapshot_files(tmp_path / "run") == before


def test_plain_progress_lines_without_a_terminal(capsys):
    import io

    from kioku.train.progress import Progress

    stream = io.StringIO()
    progress = Progress(total=10, stream=stream, plain_every=0.0)
    assert progress.bar is None  # StringIO is not a terminal
    progress.update(2, 500, "loss 1.000 bpc 1.443")
    line = stream.getvalue()
    assert line.startswith("step 2/10 | loss 1.000 bpc 1.443 |") and "tok/s | left" in line
    progress.write("evaluation line")
    assert capsys.readouterr().out == "evaluation line\n"


def test_progress_without_a_step_bound_shows_the_step_and_the_time_left():
    import io

    from kioku.train.progress import Progress

    stream = io.StringIO()
    Progress(total=None, stream=stream, plain_every=0.0).update(344, 500, "loss 0.444")
    assert stream.getvalue().startswith("step 344 | loss 0.444 |")
    assert "left" not in stream.getvalue()  # nothing bounds it: no time left to show
    stream = io.StringIO()
    Progress(total=None, stream=stream, plain_every=0.0, max_time=840.0).update(3, 9, "l")
    left = stream.getvalue().rsplit("left ", 1)[1].strip()
    assert left in ("13m59s", "14m00s")  # the time bound, less the instant elapsed


def test_a_run_bounded_by_time_alone_has_no_step_total(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=None, epochs=None, max_time=5.0)
    assert trainer.total_steps() is None


@pytest.mark.parametrize(
    ("selection", "best_eval", "best_value"),
    [(("loss", "min"), 1, 0.9), (("accuracy", "max"), 2, 0.7)],
)
def test_the_task_names_the_figure_that_picks_the_best_parameters(
    tmp_path, selection, best_eval, best_value
):
    figures = [{"loss": 1.0, "accuracy": 0.5}, {"loss": 0.9, "accuracy": 0.4}]
    figures += [{"loss": 1.2, "accuracy": 0.7}]
    trainer = make_trainer(tmp_path / "run", max_steps=12)
    trainer.task.selection = selection
    seen, measured = [], trainer.task.measure

    def measure(model, split):  # the task's own record, its two figures replaced
        seen.append(trainer.step)
        return {**measured(model, split), **figures[min(len(seen), len(figures)) - 1]}

    trainer.task.measure = measure
    trainer.run()
    assert trainer.best_valid == best_value
    assert read_json(tmp_path / "run" / "best.json")["step"] == seen[best_eval]


def test_taggers_are_judged_by_dev_accuracy():
    from kioku.train.tag_task import TagTask

    assert TagTask.selection == ("accuracy", "max")
    assert LanguageModelTask.selection == ("loss", "min")
