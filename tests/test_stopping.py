"""Why a run stops, said in its output and log, and the plateau decay on the figure that
picks the best parameters (a tagger's dev accuracy, which rises, not a loss)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kioku.cli import main


def _treebank(folder, seed: int = 0) -> None:
    """A tiny CoNLL-U train/dev/test: DET NOUN VERB sentences, some nouns unseen."""
    rng = np.random.default_rng(seed)
    lexicon = {"DET": ["the", "a"], "NOUN": ["cat", "dog", "bird"], "VERB": ["runs", "sings"]}
    for split, n in (("train", 40), ("dev", 12), ("test", 12)):
        rows = []
        for _ in range(n):
            for i, tag in enumerate(("DET", "NOUN", "VERB"), 1):
                word = lexicon[tag][rng.integers(len(lexicon[tag]))]
                if split != "train" and tag == "NOUN" and rng.random() < 0.5:
                    word = word + "s"
                rows.append(f"{i}\t{word}\t_\t{tag}\t_\t_\t0\tdep\t_\t_")
            rows.append("")
        (folder / f"{split}.conllu").write_text("\n".join(rows) + "\n")


def _train(tmp_path, capsys, *flags: str) -> tuple[str, list[dict]]:
    _treebank(tmp_path)
    out = tmp_path / "run"
    args = ["train", "--task", "tag", "--data", str(tmp_path), "--out", str(out), "--no-progress"]
    args += ["--embed", "8", "--hidden", "8", "--char-embed", "0", "--layers", "1"]
    assert main([*args, *flags]) == 0
    text = capsys.readouterr().out
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return text, records


def test_a_run_at_its_epoch_limit_says_so(tmp_path, capsys):
    text, records = _train(tmp_path, capsys, "--epochs", "2", "--patience", "0")
    assert "stopped at epoch 2: epoch limit: 2 epochs" in text
    assert records[-1]["split"] == "test" and records[-1]["stopped"] == "epoch limit: 2 epochs"


def test_patience_names_the_figure_and_its_best(tmp_path, capsys):
    # lr 0: nothing improves after the first evaluation, so patience 2 ends epoch 3
    text, records = _train(tmp_path, capsys, "--epochs", "9", "--patience", "2", "--lr", "1e-9")
    valid = [r for r in records if r["split"] == "valid"]
    assert len(valid) == 3
    best = max(r["accuracy"] for r in valid)
    reason = f"patience: 2 evaluations without a better val_accuracy (best {best:.4f})"
    assert f"stopped at epoch 3: {reason}" in text
    assert records[-1]["stopped"] == reason


def test_the_time_budget_is_named(tmp_path, capsys):
    flags = ["--epochs", "500", "--max-time", "0.5", "--patience", "0"]
    text, records = _train(tmp_path, capsys, *flags)
    assert "time budget: 0.5 s of this session used" in text, text
    assert records[-1]["stopped"] == "time budget: 0.5 s of this session used"


@pytest.mark.parametrize("plateau_patience", [0, 1])
def test_plateau_decays_on_dev_accuracy_for_a_tagger(tmp_path, capsys, plateau_patience):
    """The rate halves after more than ``plateau_patience`` evaluations in a row whose
    accuracy does not beat the best by the relative threshold (1e-4), as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau(mode="max")`` does; recomputed here from
    the logged accuracies."""
    flags = ["--epochs", "8", "--patience", "0", "--plateau", "--lr", "0.05"]
    text, records = _train(tmp_path, capsys, *flags, "--plateau-patience", str(plateau_patience))
    valid = [r for r in records if r["split"] == "valid"]
    lr, best, bad, expected = 0.05, None, 0, []
    for r in valid:
        expected.append(lr)  # the rate the epoch before this evaluation used
        if best is None or r["accuracy"] > best * (1 + 1e-4):
            best, bad = r["accuracy"], 0
        else:
            bad += 1
        if bad > plateau_patience:
            lr, bad = lr * 0.5, 0
    assert [r["lr"] for r in valid] == pytest.approx(expected, rel=1e-12)
    assert len(set(expected)) > 1, "the accuracy never stalled: the test shows nothing"
    said = f"lr 0.05 -> 0.025: {plateau_patience + 1} evaluations without a better accuracy"
    assert said in text
