"""The layers of the code (docs/architecture.md): nothing above ``nn`` imports
:mod:`kioku.kernels`, whether at the top of a module or inside a function, absolutely
or relatively; they reach the fast paths only through :mod:`kioku.nn`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kioku"
ABOVE_NN = ("train", "models", "cli", "inspect", "interop", "data", "api.py")


def _modules() -> list[Path]:
    found = []
    for entry in ABOVE_NN:
        path = SRC / entry
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def _package_of(path: Path) -> list[str]:
    """``["kioku", "train"]`` for src/kioku/train/optim.py."""
    return ["kioku", *path.relative_to(SRC).parent.parts]


def kernels_imports(source: str, package: list[str]) -> list[str]:
    """Every import in ``source`` (a module of ``package``, e.g. ``["kioku", "train"]``)
    that names ``kioku.kernels`` or a module under it, as ``line: statement``."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        if any(t == "kioku.kernels" or t.startswith("kioku.kernels.") for t in targets):
            hits.append(f"{node.lineno}: {ast.unparse(node)}")
    return hits


@pytest.mark.parametrize(
    "source",
    [
        "from .. import kernels",
        "from ..kernels import weights_changed",
        "from ..kernels._threads import plan",
        "import kioku.kernels",
        "from kioku import kernels",
        "from kioku.kernels import numba_lstm",
        "def f():\n    from .. import functional, kernels",
    ],
)
def test_the_scan_sees_every_form_of_the_import(source: str) -> None:
    assert kernels_imports(source, ["kioku", "train"])


@pytest.mark.parametrize(
    "source",
    [
        "from .. import functional",
        "from ..nn import parameters_changed",
        "import kernels_x",
        "from . import kernels",
    ],  # fmt: skip  (the last: kioku.train.kernels, not ours)
)
def test_the_scan_passes_other_imports(source: str) -> None:
    assert not kernels_imports(source, ["kioku", "train"])


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_above_nn_imports_kernels(path: Path) -> None:
    hits = kernels_imports(path.read_text(encoding="utf-8"), _package_of(path))
    assert not hits, (
        f"{path.relative_to(SRC)} imports kioku.kernels ({'; '.join(hits)}): go through "
        "kioku.nn (nn.parameters_changed, nn.reference_math, the layers) instead"
    )
