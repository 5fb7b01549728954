"""kioku without its extras: import, every layer's forward and backward, ``kioku train``.

Run by ``.ci/run`` in two throwaway venvs, one with NumPy alone (``pip install -e .``) and
one with the ``train`` extra (``pip install -e '.[train]'``, then ``--train``), and by
``tests/test_numpy_only.py`` with ``--no-numba`` (``sys.modules['numba'] = None``: an
import of Numba then fails as if it were not installed). Exits 1 with a message on the
first thing that is wrong; prints one line per layer checked.

Each layer runs in float64 and its backward is checked against central differences of
``L = sum(y * w)`` (``w`` random, passed as ``dy``) at a few entries of the input and of
every parameter; then once in float32, whose outputs and gradients ``--save`` writes to an
``.npz`` for the test to compare with the reference backend of a process that has Numba.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

# (name, constructor keyword arguments); the input size is 3, the batch 2, T = 5
LAYERS: list[tuple[str, str, dict]] = [
    ("lstm", "LSTM", {}),
    ("lstm-2l-bi-proj", "LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 2}),
    ("gru-bi", "GRU", {"bidirectional": True}),
    ("rnn-2l", "RNN", {"num_layers": 2}),
    ("slstm", "SLSTM", {"num_heads": 2}),
    ("lstm-variant", "LSTMVariant", {"peephole": True, "layer_norm": True}),
    ("lstm-cell", "LSTMCell", {}),
    ("gru-cell", "GRUCell", {}),
]
INPUT, HIDDEN, BATCH, STEPS = 3, 4, 2, 5
LENGTHS = np.array([5, 3])  # a packed batch for the stacks: the second sequence ends early


def fail(message: str) -> None:
    print(f"numpy_only_smoke: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def build(kind: str, kwargs: dict, dtype: type):
    from kioku import nn

    return getattr(nn, kind)(INPUT, HIDDEN, **kwargs, dtype=dtype, rng=0)


def run_layer(layer, x: np.ndarray, dy: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``y`` of ``x (T, B, I)`` (a cell gets ``x[0] (B, I)``); with ``dy`` (shaped like
    ``y``) also its backward, which adds the parameter gradients into ``layer.grads``
    and returns ``dx``."""
    kind = type(layer).__name__
    if kind == "GRUCell":  # h'
        y = layer(x[0])
    elif kind == "LSTMCell":  # (h', c')
        y = layer(x[0])[0]
    else:  # (y, final state)
        y = layer(x, lengths=LENGTHS)[0]
    if dy is None:
        return y, None
    return y, layer.backward(dy)[0]


def central_difference(loss: Callable[[], float], array: np.ndarray, index: int) -> float:
    flat, eps = array.reshape(-1), 1e-6
    old = flat[index]
    flat[index] = old + eps
    up = loss()
    flat[index] = old - eps
    down = loss()
    flat[index] = old
    return (up - down) / (2 * eps)


def check_gradients(name: str, kind: str, kwargs: dict) -> None:
    """float64: the backward's dx and parameter gradients against central differences."""
    rng = np.random.default_rng(1)
    layer = build(kind, kwargs, np.float64)
    x = rng.standard_normal((STEPS, BATCH, INPUT))
    y, _ = run_layer(layer, x, None)
    w = rng.standard_normal(y.shape)
    layer.zero_grad()
    _, dx = run_layer(layer, x, w)

    def loss() -> float:
        layer.weights_changed()
        value, _ = run_layer(layer, x, None)
        return float(np.sum(value * w))

    checked = [("x", x if not kind.endswith("Cell") else x[0], dx)]
    checked += [(key, layer.params[key], layer.grads[key]) for key in sorted(layer.params)]
    for label, array, grad in checked:
        if grad is None or grad.shape != array.shape or not np.all(np.isfinite(grad)):
            fail(f"{name}: gradient of {label}: expected finite, shape {array.shape}")
        for index in rng.choice(array.size, size=min(3, array.size), replace=False):
            numeric = central_difference(loss, array, int(index))
            analytic = float(grad.reshape(-1)[index])
            # central differences of a smooth float64 function: error ~1e-9 here
            if abs(numeric - analytic) > 1e-6 * max(1.0, abs(numeric)):
                fail(f"{name}: d L / d {label}[{index}]: backward {analytic!r}, "
                     f"central difference {numeric!r}")  # fmt: skip


def float32_results() -> dict[str, np.ndarray]:
    """Every layer once in float32 (seeded), training then inference: ``{name}/y``,
    ``{name}/dx``, ``{name}/grad/{param}`` and ``{name}/y_inference`` arrays, for
    comparison across processes."""
    from kioku import nn

    results: dict[str, np.ndarray] = {}
    for name, kind, kwargs in LAYERS:
        rng = np.random.default_rng(2)
        layer = build(kind, kwargs, np.float32)
        x = rng.standard_normal((STEPS, BATCH, INPUT)).astype(np.float32)
        y, _ = run_layer(layer, x, None)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        layer.zero_grad()
        y, dx = run_layer(layer, x, dy)
        if y.dtype != np.float32 or dx.dtype != np.float32:
            fail(f"{name}: float32 in, expected float32 out, found {y.dtype} and {dx.dtype}")
        results[f"{name}/y"], results[f"{name}/dx"] = y, dx
        with nn.no_grad(), layer.eval_mode():  # inference: no cache kept
            results[f"{name}/y_inference"], _ = run_layer(layer, x, None)
        for key, grad in layer.grads.items():
            results[f"{name}/grad/{key}"] = grad.copy()
    return results


def check_train(no_numba: bool) -> None:
    """A few steps of ``kioku train`` on a tiny model: exit 0, a test figure on stdout, and
    on stderr exactly one line, the note that the ``fast`` extra makes it faster."""
    with tempfile.TemporaryDirectory() as folder:
        text = Path(folder) / "code.py"
        text.write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(200)))
        script = Path(sys.executable).with_name("kioku")
        if no_numba:
            prelude = "import sys; sys.modules['numba'] = None; from kioku.cli import main; "
            command = [sys.executable, "-c", prelude + "sys.exit(main(sys.argv[1:]))"]
        else:  # the console script the venv installed
            command = [str(script)]
        command += ["train", "--data", str(text), "--out", str(Path(folder) / "run")]
        command += "--max-steps 4 --hidden 16 --embed 8 --layers 1 --bptt 16".split()
        command += "--batch-size 4 --eval-tokens 400 --no-progress".split()
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        fail(f"kioku train: exit {done.returncode}: {done.stderr.strip()[-2000:]}")
    if "test bits per character:" not in done.stdout:
        fail(f"kioku train: no test figure in its output: {done.stdout!r}")
    lines = done.stderr.splitlines()
    if len(lines) != 1 or "pip install 'kioku-lstm[fast]'" not in lines[0]:
        fail(f"kioku train: expected one line on stderr naming the fast extra, found {lines!r}")
    print(f"kioku train: 4 steps, exit 0; stderr: {lines[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-numba", action="store_true", help="block Numba's import")
    parser.add_argument("--train", action="store_true", help="also run kioku train")
    parser.add_argument("--save", type=Path, help="write the float32 results to this .npz")
    args = parser.parse_args()
    if args.no_numba:
        sys.modules["numba"] = None  # type: ignore[assignment]
    try:
        import numba  # noqa: F401
    except ImportError:
        pass
    else:
        fail("Numba imports here: run this without the fast extra, or with --no-numba")

    import kioku
    from kioku import kernels

    if kernels.available() != ["reference"] or kernels.backend_name() != "reference":
        fail(f"backends: expected only reference, found {kernels.available()}")
    print(f"import kioku {kioku.__version__}: backends {kernels.available()} (auto: reference)")
    for name, kind, kwargs in LAYERS:
        check_gradients(name, kind, kwargs)
        print(f"{name}: forward and backward, gradients match central differences")
    results = float32_results()
    if args.save:
        np.savez(args.save, **results)
    if args.train:
        check_train(args.no_numba)


if __name__ == "__main__":
    main()
