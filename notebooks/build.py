"""Write each notebook's .ipynb from its jupytext source (.py, percent format): no
outputs, and cell ids derived from the cell's content, so that regenerating an unchanged
notebook changes nothing and an edit shows up in the diff as the cells it touched.

    python notebooks/build.py            # rewrite every notebooks/*/*.ipynb
    python notebooks/build.py --check    # exit 1 if any .ipynb is not what its .py gives
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import jupytext
import nbformat

from kioku.data.atomic import write_text_atomic

HERE = Path(__file__).resolve().parent


def sources() -> list[Path]:
    """Every notebook source: ``notebooks/<language>/*.py`` (hidden folders skipped)."""
    return sorted(p for p in HERE.glob("*/*.py") if not p.parent.name.startswith("."))


def render(source: Path) -> str:
    """The .ipynb text for ``source``."""
    nb = jupytext.read(source)
    seen: dict[str, int] = {}
    for cell in nb.cells:
        digest = hashlib.sha256(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell.id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nbformat.writes(nb) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for source in sources():
        target = source.with_suffix(".ipynb")
        text = render(source)
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current == text:
            continue
        stale.append(target)
        if not check:
            write_text_atomic(target, text)
    for target in stale:
        print(f"{'stale' if check else 'wrote'}: {target.relative_to(HERE.parent)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
