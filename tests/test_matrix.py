"""Every cell in every task through every command works, or refuses in one line that says
why (issue 24). The cases come from ``tests/matrix_table.py``; each (task, cell) run is
trained once per session with ``kioku train`` (tiny sizes, a few steps), and every command
runs in-process through :func:`kioku.cli.main`."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from matrix_table import CELLS, COMMANDS, DOC, RNN_REFUSAL, TASKS, expected, markdown
from tolerance import assert_close, recurrent_depth
from trained_runs import LABEL_WORDS, LEXICON, write_data

from kioku.cli import main
from kioku.nn import no_grad

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on the torch the tests install

TINY = ["--hidden", "8", "--layers", "1", "--batch-size", "8", "--seed", "0", "--no-progress"]
BUDGET = {
    "lm": ["--bptt", "8", "--max-steps", "4", "--eval-every", "2"],
    "other": ["--epochs", "1"],
}
# a text per kind of model, each with a token unseen in training (read as <unk>)
TEXTS = {
    "char LM": "def f7(x):\n    return x + 7  # é\n",
    "word LM": "the cat sat on the zebra\n",
    "classify": "good fine film zebra\n",
    "tag (words)": "the cat zebra\n",
    "tag (chars)": "the cat zebra\n",
}
TAGS = set(LEXICON)


@pytest.fixture(scope="session")
def matrix(tmp_path_factory):
    """``run(task, cell)``: the folder of that run (trained on first use) and its data."""
    root = tmp_path_factory.mktemp("matrix")
    data = write_data(root / "data")
    words = root / "data" / "words.txt"
    rng = np.random.default_rng(0)
    vocab = "the cat dog sat on a mat and ran to".split()
    words.write_text("".join(" ".join(rng.choice(vocab, 8)) + "\n" for _ in range(200)))
    files = {
        "char LM": data["lm"],
        "word LM": words,
        "classify": data["classify"],
        "tag (words)": data["tag"],
        "tag (chars)": data["tag"],
        "forecast": data["forecast"],
    }
    runs: dict[tuple[str, str], Path] = {}

    def run(task: str, cell: str) -> tuple[Path, Path]:
        if (task, cell) not in runs:
            out = root / "runs" / f"{task.replace(' ', '_')}-{cell}"
            flags, _ = TASKS[task]
            size = ["--window", "8", "--horizon", "2"] if task == "forecast" else ["--embed", "4"]
            budget = BUDGET["lm" if "LM" in task else "other"]
            argv = ["train", *flags, "--data", str(files[task]), "--cell", cell, "--out", str(out)]
            assert main([*argv, *TINY, *size, *budget]) == 0, (task, cell)
            runs[task, cell] = out
        return runs[task, cell], files[task]

    return run


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    # what came before (a session fixture training its run inside this test) is not the
    # command's output
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _refused_in_one_line(code: int, err: str, phrase: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert phrase in lines[0], lines[0]


def _text_file(folder: Path, task: str) -> Path:
    path = folder / f"text-{task.replace(' ', '_')}.txt"
    path.write_text(TEXTS.get(task, "1,2\n"), encoding="utf-8")
    return path


# -- the commands ---------------------------------------------------------------------------
def _eval(run, data, task, cell, tmp_path, capsys, extra=()):
    code, out, err = _cli(["eval", str(run), "--json", *extra], capsys)
    assert code == 0, err
    figures = json.loads(out)
    assert math.isfinite(figures["loss"])
    if "LM" in task:
        assert figures["ppl"] > 1
    elif task == "forecast":
        assert math.isfinite(figures["rmse_units"])
    else:
        assert 0 <= figures["accuracy"] <= 1
    return figures


def check_eval(run, data, task, cell, tmp_path, capsys):
    _eval(run, data, task, cell, tmp_path, capsys)


def check_eval_data(run, data, task, cell, tmp_path, capsys):
    assert _eval(run, data, task, cell, tmp_path, capsys, ["--data", str(data)])["data"]


def check_predict(run, data, task, cell, tmp_path, capsys):
    code, out, err = _cli(["predict", str(run), str(data)], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    if "LM" in task:
        assert lines[-1].startswith("# perplexity ") and "bits per token" in lines[-1]
    elif task == "classify":
        for line in lines:
            label, probability = line.split("\t")
            assert label in LABEL_WORDS and 0 <= float(probability) <= 1
    elif task == "forecast":  # rows labelled by the input's day count, which goes on
        last_day = int(Path(data).read_text().strip().splitlines()[-1].split(",")[0])
        assert lines[0] == "day,units" and len(lines) == 3
        assert [int(line.split(",")[0]) for line in lines[1:]] == [last_day + 1, last_day + 2]
        assert all(math.isfinite(float(line.split(",")[1])) for line in lines[1:])
    else:  # the CoNLL-U given back, UPOS filled in
        rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
        assert rows and all(row[3] in TAGS for row in rows)


def check_sample(run, data, task, cell, tmp_path, capsys):
    code, out, err = _cli(["sample", str(run), "--length", "12", "--seed", "1"], capsys)
    assert code == 0, err
    assert out.strip()


def check_info(run, data, task, cell, tmp_path, capsys):
    code, out, err = _cli(["info", str(run)], capsys)
    assert code == 0, err
    assert f"model:       {TASKS[task][1]} (" in out
    assert f'"cell": "{cell}"' in out


def check_inspect(run, data, task, cell, tmp_path, capsys):
    out_dir = tmp_path / "report"
    text = _text_file(tmp_path, task)
    argv = ["inspect", str(run), "--text", str(text), "--out", str(out_dir), "--max-tokens", "40"]
    argv += ["--feature", "indentation"] if task == "char LM" else []  # one feature: quicker
    code, out, err = _cli(argv, capsys)
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["tokens"] > 0 and (out_dir / "report.html").stat().st_size > 0
    assert summary["unknown"] >= 1 and "read as <unk>" in out  # the unseen token, counted


def check_view(run, data, task, cell, tmp_path, capsys):
    page = tmp_path / "view.html"
    text = _text_file(tmp_path, task)
    code, out, err = _cli(["view", str(run), "--text", str(text), "--out", str(page)], capsys)
    assert code == 0, err
    assert "read as <unk>" in out and page.read_text().startswith("<!DOCTYPE html>")


def _load(run):
    import kioku

    return kioku.load(run)


def _sample_ids(predictor, steps=5, batch=2):
    return np.random.default_rng(0).integers(0, len(predictor.vocab), (steps, batch))


def check_to_onnx(run, data, task, cell, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    from kioku.interop import to_onnx

    predictor = _load(run)
    session = ort.InferenceSession(
        to_onnx(predictor.model).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    ids = _sample_ids(predictor)
    if "LM" in task:
        (logits, *_) = session.run(None, {"tokens": ids})
        with no_grad():
            expected_logits = predictor.model(ids)[0]
    else:
        lengths = np.array([5, 3])
        feed = {"inputs": ids, "sequence_lens": lengths.astype(np.int32)}
        (logits,) = session.run(None, feed)
        with no_grad():
            expected_logits = predictor.model(ids, lengths)
    layer = predictor.model.recurrent  # then pooling over the 5 steps and the output layer
    depth = _depth(layer) + 5 + layer.num_directions * layer.hidden_size
    assert_close("logits", logits, expected_logits, depth)


def _depth(layer, steps=5, batch=2) -> int:
    """Roundings of ``layer`` on :func:`_layer_input` (tests/tolerance.py)."""
    widest = max(layer.input_size, layer.num_directions * layer.hidden_size)
    gates = {"GRU": 3, "SLSTM": 4}.get(type(layer).__name__, 4)
    return recurrent_depth(steps, widest, layer.hidden_size, layer.num_layers, batch, gates)


def _layer_input(layer, steps=5, batch=2):
    rng = np.random.default_rng(0)
    return rng.standard_normal((steps, batch, layer.input_size)).astype(np.float32)


def check_to_torch(run, data, task, cell, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from kioku.interop import to_torch

    layer = _load(run).model.recurrent
    x = _layer_input(layer)
    with torch.no_grad():
        found = to_torch(layer)(torch.from_numpy(x))[0].numpy()
    with no_grad():
        assert_close("y", found, layer(x)[0], _depth(layer))


def check_to_keras(run, data, task, cell, tmp_path, capsys):
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    from kioku.interop import to_keras, to_keras_gru

    layer = _load(run).model.recurrent
    x = _layer_input(layer)
    export = to_keras_gru if cell == "gru" else to_keras
    found = keras.ops.convert_to_numpy(export(layer)(x.transpose(1, 0, 2)))
    with no_grad():
        assert_close("y", found, layer(x)[0].transpose(1, 0, 2), _depth(layer))


def check_load_predict(run, data, task, cell, tmp_path, capsys):
    predictor = _load(run)
    if "LM" in task:
        scores = predictor.predict(TEXTS[task])
        assert len(scores.tokens) == scores.bits.size > 0 and scores.perplexity > 1
    elif task == "classify":
        assert predictor.predict(["good film", "bad film"])[0] in LABEL_WORDS
    elif task == "forecast":
        series = np.linspace(90, 110, 20)
        assert predictor.predict(series).shape == (2, 1)
    else:
        assert len(predictor.predict("the cat sleeps")) == 3
        assert set(predictor.predict("the cat sleeps")) <= TAGS
    assert predictor.predict([]) == []  # nothing in, nothing out


CHECKS = {
    "eval": check_eval,
    "eval --data": check_eval_data,
    "predict": check_predict,
    "sample": check_sample,
    "info": check_info,
    "inspect": check_inspect,
    "view": check_view,
    "to_onnx": check_to_onnx,
    "to_torch": check_to_torch,
    "to_keras": check_to_keras,
    "load().predict": check_load_predict,
}
PYTHON = ("to_onnx", "to_torch", "to_keras", "load().predict")


def _refusal(run, data, task, cell, command, tmp_path, capsys, phrase):
    if command not in PYTHON:
        argv = {
            "sample": ["sample", str(run)],
            "inspect": ["inspect", str(run), "--out", str(tmp_path / "report")],
            "view": ["view", str(run), "--out", str(tmp_path / "view.html")],
        }[command]
        if command in ("inspect", "view"):
            argv += ["--text", str(_text_file(tmp_path, task))]
        _refused_in_one_line(*_cli(argv, capsys)[::2], phrase)
        assert not (tmp_path / "report").exists() and not (tmp_path / "view.html").exists()
        return
    model = _load(run).model
    if command == "to_onnx":
        pytest.importorskip("onnx")
        from kioku.interop import to_onnx as export

        target = model
    elif command == "to_torch":
        pytest.importorskip("torch")
        from kioku.interop import to_torch as export

        target = model.recurrent
    else:
        pytest.importorskip("keras")
        from kioku.interop import to_keras as export

        target = model.recurrent
    with pytest.raises((ValueError, TypeError)) as caught:
        export(target)
    message = str(caught.value)
    assert "\n" not in message and phrase in message, message


CASES = [
    pytest.param(
        task,
        cell,
        command,
        id=f"{task}-{cell}-{command}",
        marks=[pytest.mark.torch] * (command in ("to_torch", "to_keras"))
        + [pytest.mark.slow] * (command == "inspect" and expected(task, cell, command) is None),
    )
    for task in TASKS
    for cell in CELLS
    for command in COMMANDS
]


@pytest.mark.parametrize("task, cell, command", CASES)
def test_matrix(matrix, task, cell, command, tmp_path, capsys):
    run, data = matrix(task, cell)  # "train": the run exists, trained by kioku train
    assert (run / "best").exists() or any(run.glob("ckpt-*")), run
    if command == "train":
        return
    phrase = expected(task, cell, command)
    if phrase is None:
        CHECKS[command](run, data, task, cell, tmp_path, capsys)
    else:
        _refusal(run, data, task, cell, command, tmp_path, capsys, phrase)


def test_no_task_takes_the_rnn_cell(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["train", "--cell", "rnn", "--out", str(tmp_path / "run")])
    assert caught.value.code == 2
    assert RNN_REFUSAL in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_matrix_page_is_current():
    assert DOC.read_text(encoding="utf-8") == markdown(), (
        "docs/matrix.md is out of date: run python tests/matrix_table.py --write"
    )
