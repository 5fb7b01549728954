"""``python -m kioku.kernels._fingerprints_cli [--check | --write]``: check or regenerate
the table of :mod:`kioku.kernels._fingerprints` (kept apart from it, since
``kioku.kernels`` imports that module before ``-m`` could run it)."""

from __future__ import annotations

import os
import sys

from . import _fingerprints

COMMAND = "python -m kioku.kernels._fingerprints_cli --write"


def main(argv: list[str] | None = None) -> int:
    """``--write`` regenerates the table; ``--check`` (default) exits 1 when it is stale."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"], ["--write"]):
        print("usage: python -m kioku.kernels._fingerprints_cli [--check | --write]",
              file=sys.stderr)  # fmt: skip
        return 2
    if args == ["--write"]:
        changed = _fingerprints.write()
        where = os.path.relpath(_fingerprints.__file__)
        print(f"{where}: {'updated' if changed else 'already current'}")
        return 0
    wrong = _fingerprints.stale()
    if wrong:
        print(f"stale fingerprints: {', '.join(wrong)}; run {COMMAND}", file=sys.stderr)
        return 1
    print("fingerprints current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
