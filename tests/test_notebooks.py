"""The course notebooks (notebooks/ja, notebooks/en): each one runs from top to bottom
without an error in a fresh kernel of this Python, and the committed files stay
reviewable: no outputs, and each .ipynb is exactly what notebooks/build.py makes, in its
language, of the chapter's one source (notebooks/src/*.py, jupytext percent format)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# notebooks/<language>/*.ipynb; hidden folders (.ipynb_checkpoints, .cache) do not count
NOTEBOOKS = sorted(
    p for p in (REPO / "notebooks").glob("*/*.ipynb") if not p.parent.name.startswith(".")
)
LANGUAGES = ("ja", "en")
# A notebook here takes well under a minute (the first to need the character model
# also trains it); the limit is per cell, generous for a shared, busy machine.
CELL_TIMEOUT_S = 300


pytestmark = pytest.mark.slow


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.name}" for p in paths]


def test_every_language_has_the_same_notebooks():
    names = {lang: sorted(p.name for p in NOTEBOOKS if p.parent.name == lang) for lang in LANGUAGES}
    assert len(names["en"]) >= 4, names
    assert names["ja"] == names["en"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_has_no_outputs(path: Path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for number, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell.get("outputs") == [], f"cell {number} of {path.name} carries outputs"
        assert cell.get("execution_count") is None, f"cell {number} has an execution count"


def _build_module():
    pytest.importorskip("jupytext")
    spec = importlib.util.spec_from_file_location(
        "notebooks_build", REPO / "notebooks" / "build.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_built_from_its_jupytext_source(path: Path):
    source = REPO / "notebooks" / "src" / path.with_suffix(".py").name
    assert source.is_file(), f"{source} (the reviewable source of {path.name}) is missing"
    expected = _build_module().render(source, path.parent.name)
    assert path.read_text(encoding="utf-8") == expected, (
        f"{path.parent.name}/{path.name} is not what src/{source.name} gives: "
        "run `python notebooks/build.py`"
    )


def test_every_source_has_its_notebook_in_every_language():
    targets = [path for path, _ in _build_module().targets()]
    assert sorted(targets) == NOTEBOOKS


_SOURCE = """\
# %% [markdown] lang="en"
# # Title

# %% [markdown] lang="ja"
# # 題名

# %% [markdown]
# `shared`

# %%
x = 1
# [en]
print("one", x)  # why, in English
# [ja]
print("いち", x)  # 理由
# [end]
if x:
    # [en]
    y = "yes"
    # [ja]
    y = "はい"
    # [end]
    print(y)
"""


@pytest.mark.parametrize(
    ("lang", "title", "code"),
    [
        (
            "en",
            "# Title",
            'x = 1\nprint("one", x)  # why, in English\nif x:\n    y = "yes"\n    print(y)',
        ),
        ("ja", "# 題名", 'x = 1\nprint("いち", x)  # 理由\nif x:\n    y = "はい"\n    print(y)'),
    ],
)
def test_a_source_gives_each_language_its_prose_and_lines(tmp_path, lang, title, code):
    source = tmp_path / "00_x.py"
    source.write_text(_SOURCE, encoding="utf-8")
    nb = json.loads(_build_module().render(source, lang))
    cells = [(c["cell_type"], "".join(c["source"]), c["metadata"]) for c in nb["cells"]]
    assert cells == [("markdown", title, {}), ("markdown", "`shared`", {}), ("code", code, {})]


def test_a_code_cell_left_inside_a_language_block_is_refused(tmp_path):
    source = tmp_path / "00_x.py"
    source.write_text("# %%\nx = 1\n# [en]\nprint(x)\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[en\]"):
        _build_module().render(source, "en")
    with pytest.raises(ValueError, match="lang"):
        _build_module().render(source, "fr")


@pytest.fixture(scope="session")
def kernel_dirs(tmp_path_factory) -> dict[str, Path]:
    """A kernel spec for this very interpreter (so the notebooks import the kioku under
    test, not whatever a user-wide ``python3`` kernel points at) and a cache folder for
    the character model, fresh for each test session and shared by its notebooks."""
    root = tmp_path_factory.mktemp("notebooks")
    spec = root / "kernels" / "kioku-course"
    spec.mkdir(parents=True)
    env = {
        "KIOKU_NOTEBOOK_CACHE": str(root / "cache"),
        # Small matrices: one BLAS thread avoids two threads waiting for each other.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kioku course",
        "language": "python",
        "env": env,
    }
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return {"kernels": root / "kernels", "cache": root / "cache"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path: Path, kernel_dirs: dict[str, Path]):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    nb = nbformat.read(path, as_version=4)
    specs = KernelSpecManager(kernel_dirs=[str(kernel_dirs["kernels"])])
    km = KernelManager(kernel_name="kioku-course", kernel_spec_manager=specs)
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    images = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]
    assert images, f"{path.name} drew no figure"
