"""Callbacks (kioku.train.callbacks): user callbacks stop a run cleanly, the best kept;
EarlyStopping and ModelCheckpoint as objects; CSV and TensorBoard logs equal to the run's
log.jsonl, from Python and from ``kioku train --csv-log / --tensorboard``."""

from __future__ import annotations

import csv
import json
import random
import struct
from pathlib import Path

import pytest

import kioku
from kioku.cli import main
from kioku.data.atomic import read_json
from kioku.train.callbacks import Callback, CSVLogger, EarlyStopping, ModelCheckpoint, epoch_logs

TINY = {"hidden": 8, "embed": 8, "batch_size": 8}


def reviews(n: int = 80, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    pairs = [rng.choice([("pos", "good fine film"), ("neg", "bad awful film")]) for _ in range(n)]
    return [t for _, t in pairs], [label for label, _ in pairs]


def valid_records(run: Path) -> list[dict]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == "valid"]


class Recorder(Callback):
    """Records every event; stops when ``stop_at`` says so."""

    def __init__(self, stop_batch: int | None = None, stop_epoch: int | None = None) -> None:
        self.events: list[tuple] = []
        self.stop_batch, self.stop_epoch = stop_batch, stop_epoch

    def on_train_begin(self, logs=None):
        self.events.append(("begin",))

    def on_batch_end(self, step, logs):
        self.events.append(("batch", step, logs["loss"]))
        if step == self.stop_batch:
            self.stop = True  # the attribute way

    def on_epoch_end(self, epoch, logs):
        self.events.append(("epoch", epoch, logs))
        return epoch == self.stop_epoch  # the return way

    def on_train_end(self, logs=None):
        self.events.append(("end",))


def test_a_callback_sees_every_event_in_order(tmp_path):
    recorder = Recorder()
    clf = kioku.Classifier(**TINY)
    clf.fit(*reviews(), epochs=2, verbose=0, out=tmp_path / "run", callbacks=[recorder])
    kinds = [e[0] for e in recorder.events]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    batches = [e for e in recorder.events if e[0] == "batch"]
    assert [e[1] for e in batches] == list(range(1, len(batches) + 1))
    epochs = [e for e in recorder.events if e[0] == "epoch"]
    assert [e[1] for e in epochs] == [1, 2]
    records = valid_records(tmp_path / "run")
    assert [e[2]["val_loss"] for e in epochs] == [r["loss"] for r in records]
    assert [e[2]["step"] for e in epochs] == [r["step"] for r in records]


def test_setting_stop_in_on_batch_end_ends_the_run_after_that_step(tmp_path):
    clf = kioku.Classifier(**TINY)
    history = clf.fit(*reviews(), epochs=5, verbose=0, out=tmp_path / "run",
                      callbacks=[Recorder(stop_batch=3)])  # fmt: skip
    assert read_json(tmp_path / "run" / "latest.json")["step"] == 3
    # a run stopped before its first validation is validated at its end: best kept
    assert read_json(tmp_path / "run" / "best.json")["step"] == 3
    assert history.history["step"] == [3]


def test_returning_true_from_on_epoch_end_stops_with_the_best_checkpoint_kept(tmp_path):
    clf = kioku.Classifier(**TINY)
    clf.fit(*reviews(), epochs=6, verbose=0, out=tmp_path / "run",
            callbacks=[Recorder(stop_epoch=2)])  # fmt: skip
    records = valid_records(tmp_path / "run")
    assert [r["epoch"] for r in records] == [1, 2]
    best = min(records, key=lambda r: r["loss"])
    assert read_json(tmp_path / "run" / "best.json")["step"] == best["step"]
    assert kioku.load(tmp_path / "run").step == best["step"]


@pytest.mark.parametrize(
    ("mode", "values", "stops_at"),
    [("min", [1.0, 0.9, 0.95, 0.97, 0.5], 4), ("max", [0.1, 0.3, 0.2, 0.4, 0.3, 0.3], 6)],
)
def test_early_stopping_counts_validations_without_improvement(mode, values, stops_at):
    stopper = EarlyStopping("val_accuracy", patience=2, mode=mode)
    answers = [stopper.on_epoch_end(i + 1, {"val_accuracy": v}) for i, v in enumerate(values)]
    assert answers.index(True) + 1 == stops_at
    with pytest.raises(KeyError, match="monitor: expected one of .*'val_accuracy'.*found 'val_f1'"):
        EarlyStopping("val_f1").on_epoch_end(1, {"val_accuracy": 1.0})
    with pytest.raises(ValueError, match="patience: expected an integer >= 1, found 0"):
        EarlyStopping(patience=0)


def test_early_stopping_and_model_checkpoint_given_to_fit(tmp_path):
    # the majority baseline's accuracy never changes: no improvement after the first
    stopper = EarlyStopping("val_majority_accuracy", patience=2, mode="max")
    keeper = ModelCheckpoint("val_majority_accuracy", mode="max")
    clf = kioku.Classifier(**TINY)
    clf.fit(*reviews(), epochs=8, verbose=0, out=tmp_path / "run", callbacks=[stopper, keeper])
    records = valid_records(tmp_path / "run")
    assert len(records) == 3  # the first, then two without improvement
    assert read_json(tmp_path / "run" / "best.json")["step"] == records[0]["step"]
    assert records[-1]["loss"] < records[0]["loss"]  # the loss improved; the figure kept did not


def test_csv_logger_rows_equal_the_run_log(tmp_path):
    logger = CSVLogger(tmp_path / "figures.csv")
    clf = kioku.Classifier(**TINY)
    clf.fit(*reviews(), epochs=3, verbose=0, out=tmp_path / "run", callbacks=[logger])
    with open(tmp_path / "figures.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    records = valid_records(tmp_path / "run")
    assert len(rows) == len(records) == 3
    for row, record in zip(rows, records):
        assert row.keys() >= {"epoch", "step", "loss", "val_loss", "val_accuracy", "lr"}
        assert int(row["step"]) == record["step"] and int(row["epoch"]) == record["epoch"]
        assert float(row["val_loss"]) == record["loss"]
        assert float(row["val_accuracy"]) == record["accuracy"]
        assert float(row["loss"]) == record["train_loss"]


def test_epoch_logs_read_as_keras():
    record = {"step": 10, "epoch": 1, "split": "valid", "loss": 0.5, "accuracy": 0.75,
              "per_tag": {"X": {}}, "lr": 0.01, "elapsed": 1.0, "train_loss": 0.6}  # fmt: skip
    assert epoch_logs(record) == {"epoch": 1, "step": 10, "loss": 0.6, "val_loss": 0.5,
                                  "val_accuracy": 0.75, "lr": 0.01}  # fmt: skip


def _events(folder: Path) -> list:
    """Every Event record of the tfevents files in ``folder`` (TFRecord framing:
    length u64, its crc u32, the data, its crc u32)."""
    from tensorboardX.proto import event_pb2

    out = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[at + 12 : at + 12 + length])
            out.append(event)
            at += 12 + length + 4
    return out


def test_the_command_writes_csv_and_tensorboard_logs(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    data = tmp_path / "reviews.tsv"
    texts, labels = reviews()
    data.write_text("".join(f"{y}\t{x}\n" for x, y in zip(texts, labels)))
    run, board = tmp_path / "run", tmp_path / "board"
    argv = ["train", "--task", "classify", "--data", str(data), "--out", str(run), "--epochs",
            "2", "--hidden", "8", "--embed", "8", "--batch-size", "8", "--no-progress",
            "--csv-log", "figures.csv", "--tensorboard", str(board)]  # fmt: skip
    assert main(argv) == 0
    records = valid_records(run)
    with open(run / "figures.csv", newline="") as f:  # relative: in the run folder
        rows = list(csv.DictReader(f))
    assert [float(r["val_loss"]) for r in rows] == [r["loss"] for r in records]
    scalars = {}
    for event in _events(board):
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    assert [s for s, _ in scalars["valid/loss"]] == [r["step"] for r in records]
    for (_, shown), record in zip(scalars["valid/loss"], records):
        assert shown == pytest.approx(record["loss"], rel=1e-6)  # stored as float32
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, records[-1]["step"] + 1))
    # resumed: the CSV goes on where it stopped
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    with open(run / "figures.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 3
