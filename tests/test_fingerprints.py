"""The table of kernel fingerprints (kernels/_fingerprints.py): current, covering every
kernel file compiled into another, and reaching Numba's disk cache, so that an edit to a
file compiled into others recompiles them instead of running the old code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from kioku.kernels import _fingerprints, _fingerprints_cli

KERNELS = Path(_fingerprints.__file__).resolve().parent


def test_the_table_is_current() -> None:
    assert not _fingerprints.stale(), (
        f"kernel files changed since the fingerprint table was written "
        f"({', '.join(_fingerprints.stale())}): run {_fingerprints_cli.COMMAND}, or Numba's "
        "disk cache keeps running the old code compiled into other kernel files"
    )


def _compiled(name: str) -> bool:
    return "@njit" in (KERNELS / name).read_text(encoding="utf-8")


def _kernel_imports(name: str) -> set[str]:
    """The kernel files ``name`` imports (``from ._x import ...``, ``from . import _x``)."""
    found = set()
    for node in ast.walk(ast.parse((KERNELS / name).read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            modules = [node.module] if node.module else [a.name for a in node.names]
            found.update(f"{m}.py" for m in modules if (KERNELS / f"{m}.py").exists())
    return found


@pytest.mark.parametrize("name", sorted(p.name for p in KERNELS.glob("*.py")))
def test_every_compiled_import_is_in_the_graph(name: str) -> None:
    if not _compiled(name):
        assert name not in _fingerprints.COMPILED_IN
        return
    missing = {m for m in _kernel_imports(name) if _compiled(m)} - set(
        _fingerprints.COMPILED_IN.get(name, ())
    )
    assert not missing, (
        f"kernels/{name} compiles in code of {sorted(missing)}: add them to its entry in "
        f"COMPILED_IN (kernels/_fingerprints.py), then run {_fingerprints_cli.COMMAND}"
    )


def test_a_file_is_stamped_with_everything_compiled_into_it(monkeypatch) -> None:
    assert _fingerprints.compiled_in("_entries.py") == [
        "_aligned.py", "_blas.py", "_cells.py", "_gate_order.py", "_gemm.py",
        "_loop_gemms.py", "_lstm_loops.py", "_pack_cache.py", "_packed.py", "_primitives.py",
        "_row_loop.py", "_spin.py", "_tiles.py", "_unit_split.py",
    ]  # fmt: skip
    assert _fingerprints.compiled_in("_packed.py") == []
    before = _fingerprints.stamp("_entries.py")
    monkeypatch.setitem(_fingerprints.SHA256, "_primitives.py", "0" * 16)  # two levels down
    assert _fingerprints.stamp("_entries.py") != before
    assert _fingerprints.stamp("_packed.py") == ()


def test_numbas_cache_uses_the_stamp(monkeypatch) -> None:
    pytest.importorskip("numba")
    from kioku.kernels import _entries, _packed

    assert _fingerprints.install()  # done by kioku.kernels; a second call changes nothing
    locator = _entries.infer_sequence._cache._impl._locator
    assert type(locator).__name__.startswith("Kioku")
    own, stamp = locator.get_source_stamp()
    assert stamp == _fingerprints.stamp("_entries.py")
    monkeypatch.setitem(_fingerprints.SHA256, "_lstm_loops.py", "f" * 16)
    assert locator.get_source_stamp() != (own, stamp)  # the cache index no longer matches
    # a file nothing is compiled into keeps Numba's own locator
    assert not type(_packed.pack_panels._cache._impl._locator).__name__.startswith("Kioku")


def test_write_regenerates_a_stale_table(tmp_path, monkeypatch) -> None:
    copy = tmp_path / "_fingerprints.py"
    source = Path(_fingerprints.__file__).read_text(encoding="utf-8")
    stale = source.replace(_fingerprints.SHA256["_packed.py"], "0123456789abcdef")
    assert stale != source
    copy.write_text(stale, encoding="utf-8")
    monkeypatch.setattr(_fingerprints, "__file__", str(copy))
    assert _fingerprints.write()
    assert copy.read_text(encoding="utf-8") == source
    assert not _fingerprints.write()  # already current


def test_the_command_checks_and_names_the_fix(monkeypatch, capsys) -> None:
    assert _fingerprints_cli.main([]) == 0
    monkeypatch.setitem(_fingerprints.SHA256, "_packed.py", "0" * 16)
    assert _fingerprints_cli.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "_packed.py" in err and _fingerprints_cli.COMMAND in err
    assert _fingerprints_cli.main(["--bogus"]) == 2


def test_the_command_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "kioku.kernels._fingerprints_cli"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fingerprints current"
