"""What the notebooks share: the small character LSTM they look inside (trained once,
then cached), the Python snippet they look at, and a printer for source excerpts.

The notebooks import this file from ``notebooks/`` (they add the folder to ``sys.path``).
The cache lives in ``notebooks/.cache`` unless ``KIOKU_NOTEBOOK_CACHE`` names another
folder; its files are keyed by a hash of the training settings, so a changed setting
trains anew instead of loading a stale model.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import time
from pathlib import Path

import numpy as np

import kioku
from kioku.data import Vocabulary, stdlib_corpus
from kioku.data.atomic import write_bytes_atomic, write_json_atomic
from kioku.models import LanguageModel
from kioku.train import Adam, clip_grad_norm

# Small enough to train in about half a minute on two quiet cores (a minute and a half
# under a load of 8), big enough that its gates and cells do something worth looking at.
SETTINGS = {
    "corpus_bytes": 600_000,
    "embed_size": 32,
    "hidden_size": 64,
    "num_layers": 2,
    "steps": 800,
    "batch_size": 32,
    "bptt": 64,
    "lr": 0.01,
    "max_norm": 1.0,
    "seed": 0,
}

# The text the notebooks trace: fixed here (not read from the stdlib, which changes
# between Python versions) and rich in what a character model of code learns first:
# brackets, strings, indentation, line ends.
SNIPPET = '''def greet(names, sep=", "):
    """Say hello to everyone."""
    if not names:
        return "hello, nobody"
    words = [name.title() for name in names]
    return "hello, " + sep.join(words)
'''


def cache_dir() -> Path:
    """The folder holding the cached model (created on first use)."""
    default = Path(__file__).resolve().parent / ".cache"
    return Path(os.environ.get("KIOKU_NOTEBOOK_CACHE", default))


def _key() -> str:
    text = json.dumps({"settings": SETTINGS, "kioku": kioku.__version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def untrained_model(vocab_size: int, num_layers: int | None = None) -> LanguageModel:
    """The character model before training, with the same seed as the trained one
    (``num_layers``: another depth than ``SETTINGS``'s, for notebook 03's comparison)."""
    s = SETTINGS
    return LanguageModel(
        vocab_size,
        embed_size=s["embed_size"],
        hidden_size=s["hidden_size"],
        num_layers=s["num_layers"] if num_layers is None else num_layers,
        rng=s["seed"],
    )


def train_char_model(
    log=print, num_layers: int | None = None
) -> tuple[LanguageModel, Vocabulary, dict]:
    """Train the character LSTM on the start of the Python standard library's source:
    random windows of ``bptt`` characters, Adam, gradient clipping. Returns the model,
    its vocabulary and a summary (loss in bits per character, seconds). ``num_layers``
    trains another depth than ``SETTINGS``'s on the same data in the same order (not
    cached: :func:`char_model` keeps the course's model only)."""
    s = SETTINGS
    clock = time.perf_counter()
    text = stdlib_corpus(max_bytes=s["corpus_bytes"]).train
    vocab = Vocabulary.build([text + SNIPPET], level="char")
    ids = vocab.encode(text)
    model = untrained_model(len(vocab), num_layers)
    opt = Adam(model.parameters(), lr=s["lr"])
    rng = np.random.default_rng(s["seed"])
    T, B = s["bptt"], s["batch_size"]
    first = last = float("nan")
    for step in range(1, s["steps"] + 1):
        starts = rng.integers(0, ids.size - T - 1, B)
        window = np.stack([ids[i : i + T + 1] for i in starts], axis=1)  # (T+1, B)
        loss, _ = model.loss(window[:-1], window[1:])
        clip_grad_norm(model.parameters(), s["max_norm"])
        opt.step()
        model.zero_grad()
        bits = loss / np.log(2)
        first = bits if step == 1 else first
        last = bits if step == 1 else 0.95 * last + 0.05 * bits  # smoothed
        if step % 100 == 0:
            log(f"step {step}: {last:.2f} bits/char")
    model.eval()
    summary = {
        "first_bits_per_char": float(first),
        "last_bits_per_char": float(last),
        "seconds": time.perf_counter() - clock,
        "train_characters": len(text),
    }
    return model, vocab, summary


def char_model(log=print) -> tuple[LanguageModel, Vocabulary, dict]:
    """The trained character model: loaded from the cache, or trained and cached."""
    folder = cache_dir()
    weights, meta = folder / f"char_lstm_{_key()}.npz", folder / f"char_lstm_{_key()}.json"
    if weights.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        model = LanguageModel.from_config(info["config"])
        with np.load(weights, allow_pickle=False) as arrays:
            model.load_state_dict(dict(arrays))
        model.eval()
        log(f"loaded the cached model from {weights}")
        return model, Vocabulary.from_dict(info["vocab"]), info["summary"]
    model, vocab, summary = train_char_model(log)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **model.state_dict())
    write_bytes_atomic(weights, buffer.getvalue())
    info = {"config": model.config(), "vocab": vocab.to_dict(), "summary": summary}
    write_json_atomic(meta, info)
    log(f"trained in {summary['seconds']:.0f} s and cached in {folder}")
    return model, vocab, summary


def show_source(function, start: str, stop: str | None = None) -> None:
    """Print the lines of ``function``'s source from the first one containing ``start``
    to the next one containing ``stop`` (default: that line alone), with their line
    numbers in the file."""
    lines, first = inspect.getsourcelines(function)
    begin = next(n for n, line in enumerate(lines) if start in line)
    end = begin if stop is None else next(n for n in range(begin, len(lines)) if stop in lines[n])
    path = Path(inspect.getsourcefile(function))
    print(f"# kioku/{path.parent.name}/{path.name}, {function.__name__}")
    for n in range(begin, end + 1):
        print(f"{first + n:4d}  {lines[n].rstrip()}")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The textbook logistic function, ``1 / (1 + exp(-z))``, for checking by hand."""
    return 1.0 / (1.0 + np.exp(-z))
