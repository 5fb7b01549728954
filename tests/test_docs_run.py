"""What the README and the docs show runs (issue 24): every ```python block and every
`kioku ...` line of a ```bash (or unlabelled) block of README.md and docs/*.md, executed.

Python blocks run in a subprocess whose working folder is a workspace in tmp holding the
files and runs the blocks name (``runs/stdlib``, ``runs/reviews``, ``runs/ewt``,
``runs/sales``, trained tiny). A block that is a reference sheet of names it does not
define gets them from :data:`PRELUDES` (small arrays and models of the right kinds) or
runs after the blocks :data:`AFTER` names; nothing in a block itself is changed.

A block's commands run in order in a shell (``kioku`` is the venv's), in a fresh copy of
that workspace; each ``kioku train`` line that does not resume starts its own run (its out
folder is cleared first: the README lists alternatives). Rewrites, so
that nothing trains for minutes (:func:`tiny`): a ``kioku train`` line gets
``--max-steps 2 --hidden 16 --layers 1 --no-progress`` appended (the last value of a flag
wins), a ``--resume`` line ``--max-steps 4`` instead of its own, ``kioku experiments
--quick`` gets ``--only direction``. Skipped, with the reason: :data:`SKIPPED` (benchmarks
and tuning measure speed, ``mpiexec`` needs MPI), and lines whose data is absent
(``--data ptb`` and ``ud-gum/`` without ``../shared/data``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from trained_runs import write_data

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

# python blocks by (file, first line): what runs before them
PRELUDES = {
    ("README.md", "import kioku"): (
        "import numpy as np\nseries = np.linspace(90.0, 110.0, 40)[:, None]  # (N, F)\n"
    ),
    ("cells.md", "lm = kioku.models.LanguageModel("): (
        "import numpy as np\nimport kioku\n"
        "tokens = np.random.default_rng(0).integers(0, 100, (7, 2))  # (T, B)\n"
    ),
    ("cells.md", "slstm = kioku.nn.SLSTM("): "dy = np.ones((35, 4, 64), np.float32)\n",
    ("inspect.md", "import kioku"): (
        "import numpy as np\nimport kioku\n"
        "text = 'def f(x):\\n    return (x + 1)\\n'\n"
        "chars = sorted(set(text))\n"
        "ids = np.array([[chars.index(c)] for c in text])  # (T, 1)\n"
        "targets = np.roll(ids, -1, axis=0)\n"
        "model = kioku.models.LanguageModel(len(chars), 8, 16, num_layers=2, rng=0)\n"
        "x = np.random.default_rng(0).normal(size=(12, 2, 8)).astype(np.float32)\n"
    ),
    ("interop.md", "from kioku.interop import from_torch,"): (
        "import torch\nfrom safetensors.numpy import save_file\n"
        "torch_lstm = torch.nn.LSTM(4, 8, num_layers=2)\n"
        "save_file({f'encoder.lstm.{k}': v.detach().numpy() for k, v in "
        "torch_lstm.state_dict().items()}, 'model.safetensors')\n"
    ),
    ("interop.md", "from kioku.interop import from_keras,"): (
        "import os\nos.environ.setdefault('KERAS_BACKEND', 'torch')\n"
        "import keras\nimport numpy as np\nimport kioku\n"
        "x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype(np.float32)  # (B, T, I)\n"
        "keras_layer = keras.layers.LSTM(8, return_sequences=True)\nkeras_layer(x)\n"
        "lstm = kioku.nn.LSTM(4, 8, rng=0)\n"
    ),
    ("architecture.md", "backend = kioku.kernels.backend_for("): (
        "import numpy as np\nimport kioku\n"
        "rng = np.random.default_rng(0)\n"
        "T, B, I, H = 5, 2, 4, 8\n"
        "x = rng.normal(size=(T, B, I)).astype(np.float32)\n"
        "w_ih = (0.1 * rng.normal(size=(4 * H, I))).astype(np.float32)\n"
        "w_hh = (0.1 * rng.normal(size=(4 * H, H))).astype(np.float32)\n"
        "bias = np.zeros(4 * H, np.float32)\n"
        "h0, c0 = np.zeros((B, H), np.float32), np.zeros((B, H), np.float32)\n"
        "lengths, reverse, w_hr, keep_cache = np.array([5, 3]), False, None, True\n"
    ),
    ("interop.md", "from kioku.interop import to_onnx,"): (
        "import numpy as np\nimport kioku\nfrom onnx import TensorProto, helper\n"
        "lstm = kioku.nn.LSTM(4, 8, rng=0)\n"
        "language_model = kioku.models.LanguageModel(20, 6, 8, rng=0)\n"
        "tagger = kioku.models.SequenceTagger(vocab_size=20, embed_size=6, hidden_size=8, "
        "num_tags=3, rng=0)\n"
        "rng = np.random.default_rng(0)\n"
        "weights = {n: rng.normal(size=s).astype(np.float32) for n, s in "
        "[('W', (1, 32, 4)), ('R', (1, 32, 8)), ('B', (1, 64))]}\n"
        "node = helper.make_node('LSTM', ['X', 'W', 'R', 'B'], ['Y', 'Y_h', 'Y_c'], "
        "hidden_size=8)\n"
        "graph = helper.make_graph([node], 'one_lstm', "
        "[helper.make_tensor_value_info('X', TensorProto.FLOAT, [5, 2, 4])], "
        "[helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ('Y', 'Y_h', "
        "'Y_c')], [helper.make_tensor(n, TensorProto.FLOAT, v.shape, v.flatten()) for n, v in "
        "weights.items()])\n"
        "open('node.onnx', 'wb').write(helper.make_model(graph).SerializeToString())\n"
        "x = rng.normal(size=(5, 2, 4)).astype(np.float32)  # (T, B, I)\n"
    ),
}
# python blocks that continue an earlier block of the same file (its names, its imports)
AFTER = {
    ("README.md", "import torch"): "import numpy as np",
    ("cells.md", "slstm = kioku.nn.SLSTM("): "import numpy as np",
}
SKIPPED_BLOCKS = {
    ("learn.md", "# [en]"): "the notebooks' source convention, not a program "
    "(tests/test_notebooks.py runs the notebooks)",
}
SKIPPED = {
    "kioku bench": "a benchmark measures speed for minutes (tests/test_bench.py runs it tiny)",
    "kioku tune": "measures the kernels' thresholds and stores them for this machine",
    "mpiexec": "needs an MPI launcher (tests/test_distributed.py runs it)",
}


def _blocks() -> list[tuple[str, int, str, str]]:
    """``(file, line, language, body)`` of every fenced block of the docs."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((path.name, line, match.group(1), match.group(2)))
    return found


def _first_line(body: str) -> str:
    return next(line for line in body.splitlines() if line.strip())


def _key(name: str, body: str) -> tuple[str, str] | None:
    """The table key of a python block: its file and the start of its first line."""
    first = _first_line(body)
    for table in (PRELUDES, AFTER, SKIPPED_BLOCKS):
        for file, start in table:
            if file == name and first.startswith(start):
                return file, start
    return None


def _python_cases():
    blocks = [b for b in _blocks() if b[2] == "python"]
    cases = []
    for name, line, _, body in blocks:
        key = _key(name, body)
        before = ""
        if key in AFTER:
            before = next(
                b[3] for b in blocks if b[0] == name and _first_line(b[3]).startswith(AFTER[key])
            )
        marks = [pytest.mark.skip(reason=SKIPPED_BLOCKS[key])] if key in SKIPPED_BLOCKS else []
        code = before + PRELUDES.get(key, "") + body
        cases.append(pytest.param(code, id=f"{name}:{line}", marks=marks))
    return cases


def _command_cases():
    """One case per block holding commands: its ``kioku`` lines, in order."""
    cases = []
    for name, line, language, body in _blocks():
        if language not in ("bash", "sh", ""):
            continue
        commands = [
            text.strip()
            for text in body.splitlines()
            if re.match(r"(kioku |mpiexec |echo .*\| *kioku )", text.strip())
        ]
        if commands:
            cases.append(pytest.param(commands, id=f"{name}:{line}"))
    return cases


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder with the files and the runs the docs name."""
    from kioku.cli import main

    root = tmp_path_factory.mktemp("docs")
    data = write_data(root / "data")
    for name in ("some_module.py", "mycode.py"):
        shutil.copy(data["lm"], root / name)
    (root / "notes.txt").write_text(
        "".join(f"note {i}: the cat sat on the mat\n" for i in range(300))
    )
    (root / "texts.txt").write_text("a good film\nan awful film\n")
    for name in ("en_ewt-ud-test.conllu", "other-treebank.conllu", "train.conllu"):
        shutil.copy(data["tag"], root / name)
    shutil.copy(data["forecast"], root / "sales.csv")
    (root / "apple.txt").write_text("the cat sings\nApple is something that I like to eat .\n")
    (root / "apple_use.txt").write_text("the cat sings\nApple is something that I like to use .\n")
    if (SHARED / "ud-gum").is_dir():
        (root / "ud-gum").symlink_to(SHARED / "ud-gum")
    tiny = ["--hidden", "8", "--layers", "1", "--batch-size", "8", "--no-progress"]
    runs = {
        "stdlib": ["--data", str(data["lm"]), "--max-steps", "2"],
        "reviews": ["--task", "classify", "--data", str(data["classify"]), "--epochs", "1"],
        "ewt": ["--task", "tag", "--data", str(data["tag"]), "--epochs", "1"],
        "sales": ["--task", "forecast", "--data", str(data["forecast"]), "--window", "8"]
        + ["--horizon", "3", "--epochs", "1"],
    }
    for run, argv in runs.items():
        assert main(["train", *argv, *tiny, "--out", str(root / "runs" / run)]) == 0, run
    return root


def _env() -> dict[str, str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.setdefault("KERAS_BACKEND", "torch")
    env["KIOKU_DATA"] = str(SHARED)
    return env


@pytest.mark.parametrize("code", _python_cases())
def test_python_block_runs(code, workspace, tmp_path):
    folder = tmp_path / "ws"
    shutil.copytree(workspace, folder, symlinks=True)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, f"{code}\n--- stderr:\n{done.stderr[-3000:]}"


def tiny(command: str) -> str:
    """``command`` with the budget of a test (see the module's docstring)."""
    if re.search(r"\bkioku train\b", command):
        if "--resume" in command:
            return re.sub(r"--max-steps \d+", "", command.split("#")[0]) + " --max-steps 4"
        return command.split("#")[0] + " --max-steps 2 --hidden 16 --layers 1 --no-progress"
    if "kioku experiments" in command and "--quick" in command:
        return command.split("#")[0] + " --only direction"
    return command


def _out_folder(command: str) -> str | None:
    """The run folder a fresh ``kioku train`` line writes (``--out``, else runs/<data>)."""
    if "kioku train" not in command or "--resume" in command:
        return None
    out = re.search(r"--out (\S+)", command)
    if out:
        return out.group(1)
    data = re.search(r"--data (\S+)", command)
    name = Path(data.group(1).rstrip("/")).stem if data else "stdlib"
    return f"runs/{name}"


def _skip_reason(command: str) -> str | None:
    reason = next((why for start, why in SKIPPED.items() if start in command), None)
    if reason is None and "--data ptb" in command and not (SHARED / "ptb").is_dir():
        reason = f"Penn Treebank not found at {SHARED / 'ptb'} (a clone has no ../shared)"
    if reason is None and "ud-gum/" in command and not (SHARED / "ud-gum").is_dir():
        reason = f"UD English-GUM not found at {SHARED / 'ud-gum'}"
    return reason


@pytest.mark.parametrize("commands", _command_cases())
def test_commands_run(commands, workspace, tmp_path):
    """A block's commands in order, in one copy of the workspace, as a user types them."""
    folder = tmp_path / "ws"
    shutil.copytree(workspace, folder, symlinks=True)
    skipped = []
    for command in commands:
        reason = _skip_reason(command)
        if reason:
            skipped.append(f"{command}: {reason}")
            continue
        out = _out_folder(command)
        if out:  # each train line starts its own run (the lines are alternatives)
            shutil.rmtree(folder / out, ignore_errors=True)
        done = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {tiny(command)}"],
            cwd=folder,
            env=_env(),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"{tiny(command)}\n--- stderr:\n{done.stderr[-3000:]}"
    if len(skipped) == len(commands):
        pytest.skip("; ".join(skipped))


def test_every_block_is_collected():
    """The extraction finds the blocks it should: a change of fence style shows up here."""
    names = {(name, language) for name, _, language, _ in _blocks()}
    assert ("README.md", "python") in names and ("README.md", "bash") in names
    assert len(_python_cases()) >= 10 and len(_command_cases()) >= 5
