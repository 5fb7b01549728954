"""The file readers fuzzed with hypothesis: checkpoint JSON and tensor files, ONNX,
CoNLL-U, CSV series, plain text, vocabularies and run logs. Whatever the bytes, only
the documented errors come out (``ValueError``, its subclass ``CheckpointError``, or
``TypeError``), each naming the file; never an error from deep inside a parser.

Inputs are valid files mutated (bytes flipped, inserted, cut) and free-form text.
CI runs ``KIOKU_FUZZ_EXAMPLES`` (default 300) cases per test, 2,700 in all; a longer
fuzz by hand: ``KIOKU_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_readers.py``."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kioku.data.text import read_text
from kioku.data.timeseries import read_csv_series
from kioku.data.vocab import Vocabulary
from kioku.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from kioku.train.runlog import RunLog

EXAMPLES = int(os.environ.get("KIOKU_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DOCUMENTED = (ValueError, TypeError)


@st.composite
def mutated(draw, seed: bytes):
    """``seed`` with a few bytes replaced, inserted or removed, and perhaps cut short."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "insert", "delete"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    if draw(st.booleans()) and data:
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def refused_or_read(read, path, *args):
    """Run ``read``; an error must be a documented one naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut last log line warns, by design
            return read(path, *args)
    except DOCUMENTED as error:
        assert path.name in str(error), f"{type(error).__name__} without the file: {error}"
        return None


# -- checkpoints ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A run-like checkpoint (arrays, nested state) and its two files' bytes."""
    folder = tmp_path_factory.mktemp("ckpt")
    r = np.random.default_rng(0)
    state = {
        "model": {"kind": "LSTM", "config": {"input_size": 2}, "params": {"w": r.normal(size=3)}},
        "optimizer": {"type": "Adam", "hyperparams": {"lr": 0.1}, "step": 1, "arrays": {}},
        "task": {"kind": "lm", "position": {"epoch": 0, "batch": 1}},
        "rng": {"model": {}},
        "step": 1,
        "epoch": 0,
        "best_valid": None,
        "bad_evals": 0,
        "recent_losses": [1.5],
        "elapsed": 0.5,
        "meta": {},
    }
    directory = save_checkpoint(folder, state, 1)
    tensors = next(directory.glob("tensors.*"))
    return directory, (directory / "checkpoint.json").read_bytes(), tensors.read_bytes()


def load_fuzzed(tmp_path, config: bytes, tensors: bytes, tensor_name: str):
    directory = tmp_path / "c"
    directory.mkdir(exist_ok=True)
    (directory / "checkpoint.json").write_bytes(config)
    (directory / tensor_name).write_bytes(tensors)
    try:
        load_checkpoint(directory)
    except CheckpointError as error:
        assert str(directory) in str(error), error


@FUZZ
@given(data=st.data())
def test_fuzzed_checkpoint_json(tmp_path, checkpoint, data):
    directory, config, tensors = checkpoint
    name = next(directory.glob("tensors.*")).name
    load_fuzzed(tmp_path, data.draw(mutated(config)), tensors, name)


@FUZZ
@given(data=st.data())
def test_fuzzed_tensor_file_behind_a_matching_digest(tmp_path, checkpoint, data):
    """The digest is rewritten to match, so the tensor parser itself meets the bytes."""
    import hashlib

    directory, config, tensors = checkpoint
    name = next(directory.glob("tensors.*")).name
    fuzzed = data.draw(mutated(tensors))
    meta = json.loads(config)
    meta["tensor_bytes"], meta["tensor_sha256"] = len(fuzzed), hashlib.sha256(fuzzed).hexdigest()
    from kioku.train.checkpoint_files import seal

    load_fuzzed(tmp_path, json.dumps(seal(meta)).encode(), fuzzed, name)


# -- ONNX ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_bytes(tmp_path_factory):
    pytest.importorskip("onnx")
    from test_robust_cli import one_lstm_node_model

    return one_lstm_node_model(3, 3).SerializeToString()


@FUZZ
@given(data=st.data())
def test_fuzzed_onnx(tmp_path, onnx_bytes, data):
    from kioku.interop import from_onnx

    path = tmp_path / "model.onnx"
    path.write_bytes(data.draw(mutated(onnx_bytes)))
    lstm = refused_or_read(from_onnx, path)
    if lstm is not None:  # it parsed: running or converting it refuses what is wrong
        try:
            lstm.to_lstm()
        except DOCUMENTED:
            pass


# -- text formats ----------------------------------------------------------------------
CONLLU = (
    b"# sent_id = 1\n1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n"
    b"2\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n\n"
    b"1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tdo\tdo\tAUX\tVB\t_\t0\troot\t_\t_\n"
    b"2\tn't\tnot\tPART\tRB\t_\t1\tadvmod\t_\t_\n\n"
)
CSV = b"a,b\n1,2\n3,4.5\n-1e3,7\n"
VOCAB = json.dumps({"level": "word", "tokens": ["<unk>", "<eos>", "the", "dog"]}).encode()
LOG = b'{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n'
TEXT_INPUT = st.one_of(st.text(max_size=200).map(lambda t: t.encode("utf-8")), st.binary())


@FUZZ
@given(data=st.data())
def test_fuzzed_conllu(tmp_path, data):
    pytest.importorskip("conllu")
    from kioku.data.conllu_io import read_conllu

    path = tmp_path / "t.conllu"
    path.write_bytes(data.draw(st.one_of(mutated(CONLLU), TEXT_INPUT)))
    refused_or_read(read_conllu, path)


@FUZZ
@given(data=st.data(), columns=st.sampled_from([None, ["a"], ["b", "a"], ["z"]]))
def test_fuzzed_csv(tmp_path, data, columns):
    path = tmp_path / "s.csv"
    path.write_bytes(data.draw(st.one_of(mutated(CSV), TEXT_INPUT)))
    result = refused_or_read(read_csv_series, path, columns)
    if result is not None:
        values, _ = result
        assert values.dtype == np.float64 and np.isfinite(values).all()


@FUZZ
@given(data=st.data())
def test_fuzzed_plain_text(tmp_path, data):
    path = tmp_path / "t.txt"
    path.write_bytes(data.draw(TEXT_INPUT))
    text = refused_or_read(read_text, path)
    assert text is None or isinstance(text, str)


@FUZZ
@given(data=st.data())
def test_fuzzed_vocabulary(tmp_path, data):
    path = tmp_path / "vocab.json"
    path.write_bytes(data.draw(st.one_of(mutated(VOCAB), TEXT_INPUT)))
    refused_or_read(Vocabulary.load, path)


@FUZZ
@given(data=st.data())
def test_fuzzed_run_log(tmp_path, data):
    path = tmp_path / "log.jsonl"
    path.write_bytes(data.draw(st.one_of(mutated(LOG), TEXT_INPUT)))
    records = refused_or_read(lambda p: RunLog(p).read(), path)
    assert records is None or all(isinstance(r, dict) for r in records)
