"""Write each notebook's .ipynb, in every language, from its one source.

A source, ``notebooks/src/NN_name.py`` (jupytext percent format), holds the code of a
chapter once and its prose in each language:

- a markdown cell marked ``# %% [markdown] lang="en"`` (or ``"ja"``) goes only into that
  language's notebook; an unmarked cell goes into every one;
- in a code cell, the lines between a comment line ``# [en]`` (or ``# [ja]``) and the
  next such marker or ``# [end]`` go only into that language's notebook: a comment or a
  printed label written once per language, each beside its translation. The markers
  themselves go nowhere; every other line is shared.

``notebooks/<language>/NN_name.ipynb`` is then the whole chapter in that language, with
no outputs and cell ids derived from the cell's content, so that regenerating an
unchanged notebook changes nothing and an edit shows up in the diff as the cells it
touched.

    python notebooks/build.py            # rewrite every notebooks/*/*.ipynb
    python notebooks/build.py --check    # exit 1 if any .ipynb is not what its source gives
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import jupytext
import nbformat

from kioku.data.atomic import write_text_atomic

HERE = Path(__file__).resolve().parent
LANGUAGES = ("en", "ja")
_MARKER = re.compile(r"^\s*# \[(?P<lang>[a-z]{2}|end)\]$")


def sources() -> list[Path]:
    """Every notebook source: ``notebooks/src/*.py``."""
    return sorted((HERE / "src").glob("*.py"))


def targets() -> list[tuple[Path, str]]:
    """Every generated notebook with the language it is in, as ``(path, language)``."""
    return [
        (HERE / lang / source.with_suffix(".ipynb").name, lang)
        for source in sources()
        for lang in LANGUAGES
    ]


def _code_in(source: str, lang: str) -> str:
    kept = []
    block = "end"  # the language of the lines being read; "end": every language's
    for line in source.split("\n"):
        marker = _MARKER.match(line)
        if marker is not None:
            block = marker["lang"]
        elif block in ("end", lang):
            kept.append(line)
    if block != "end":
        raise ValueError(f"source: a code cell ends inside a '# [{block}]' block:\n{source}")
    return "\n".join(kept)


def render(source: Path, lang: str) -> str:
    """The .ipynb text of ``source`` in language ``lang`` (one of ``LANGUAGES``)."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang: expected one of {LANGUAGES}, got {lang!r}")
    nb = jupytext.read(source)
    nb.metadata.pop("jupytext", None)
    cells = []
    seen: dict[str, int] = {}
    for cell in nb.cells:
        if cell.metadata.pop("lang", lang) != lang:
            continue
        if cell.cell_type == "code":
            cell.source = _code_in(cell.source, lang)
            cell.outputs = []
            cell.execution_count = None
        digest = hashlib.sha256(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell.id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
        cells.append(cell)
    nb.cells = cells
    return nbformat.writes(nb) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for target, lang in targets():
        text = render(HERE / "src" / target.with_suffix(".py").name, lang)
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
