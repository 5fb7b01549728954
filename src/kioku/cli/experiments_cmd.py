"""``kioku experiments [--quick] --out DIR``: the seed's claims as fixed-seed experiments."""

from __future__ import annotations

import argparse
import sys

HELP = "Run the seed's claims as fixed-seed experiments and write a report."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, help="folder for report.html, results.json, PNGs (required)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small budgets, a few minutes (default: full budgets)"
    )
    parser.add_argument(
        "--conllu",
        default=None,
        help="a CoNLL-U file for the direction study (default: generated sentences only)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated subset of adding,forgetting,depth,direction (default: all)",
    )


def run(args: argparse.Namespace) -> int:
    from ..experiments import EXPERIMENTS, run_experiments

    only = EXPERIMENTS if args.only is None else tuple(s.strip() for s in args.only.split(","))
    try:
        results = run_experiments(args.out, args.quick, args.conllu, args.seed, only)
    except (ValueError, OSError) as error:  # bad --only, missing or unreadable --conllu
        print(f"kioku experiments: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/report.html and results.json in {results['seconds']:.0f} s")
    for claim, holds in results["claims"].items():
        print(f"  [{'x' if holds else ' '}] {claim}")
    from ..experiments.report import caveats

    for line in caveats(results):
        print(f"  caveat: {line}")
    return 0 if all(results["claims"].values()) else 1
