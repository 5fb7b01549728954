"""The whole-task comparisons: kioku against PyTorch on PTB (tokens/s) and on the UD
tagger (sentences/s), each script in a fresh process, the two libraries alternating.

    python benchmarks/whole_tasks.py ptb    [--rounds 3] [--steps 600] [--out FILE.json]
    python benchmarks/whole_tasks.py tagger [--rounds 3] [--steps 200] [--out FILE.json]

Prints each run, the median rate per library and kioku's ratio, with the share of the
cores that other processes used meanwhile (``kioku.bench.load``). A run where that share
exceeded the limit is NOT VALID: it exits with status 3 and writes no file under
``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from kioku.bench import load
from kioku.data.atomic import write_text_atomic

HERE = Path(__file__).resolve().parent
TASKS = {"ptb": ("tokens_per_s", 600), "tagger": ("sentences_per_s", 200)}


def run_one(task: str, library: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(HERE / f"{task}_{library}.py"), "--steps", str(args.steps)]
    cmd += ["--warmup", str(args.warmup)]
    if args.data_root:
        cmd += ["--data-root", args.data_root]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    last = done.stdout.strip().splitlines()[-1]
    if last.startswith("skipped"):
        raise SystemExit(last)
    return json.loads(last)


def _share(value: float | None) -> str:
    return "an unmeasured share" if value is None else f"{value:.0%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--rounds", type=int, default=3, help="runs per library (default 3)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per run")
    parser.add_argument("--data-root", default=None, help="folder holding ptb/ and ud-gum/")
    parser.add_argument("--out", default=None, help="write the result as JSON here")
    args = parser.parse_args()
    rate_key, default_steps = TASKS[args.task]
    args.steps = args.steps or default_steps
    if args.rounds < 1:
        parser.error(f"--rounds: expected a positive count, found {args.rounds}")
    probe = load.LoadProbe()
    before = load.measure_idle(probe)
    start = probe.sample()
    runs: dict[str, list[dict]] = {"kioku": [], "torch": []}
    for _ in range(args.rounds):
        for library in runs:
            result = run_one(args.task, library, args)
            runs[library].append(result)
            print(f"{library}: {result[rate_key]:,.0f} {rate_key.replace('_per_s', '')}/s",
                  flush=True)  # fmt: skip
    during = load.others_share(start, probe.sample())
    medians = {lib: statistics.median(r[rate_key] for r in rs) for lib, rs in runs.items()}
    params = {lib: rs[0]["parameters"] for lib, rs in runs.items()}
    if params["kioku"] != params["torch"]:
        print(f"configurations differ: parameters {params}", file=sys.stderr)
        return 1
    # no sgemm witness here (1.0 at both ends): the cores' usage decides
    state = load.verdict(before, during, {}, 1.0, 1.0, None)
    ratio = medians["kioku"] / medians["torch"]
    unit = rate_key.replace("_per_s", "")
    verdict = "valid" if state["valid"] else "NOT VALID: " + "; ".join(state["reasons"])
    print(
        f"{args.task}: kioku {medians['kioku']:,.0f} {unit}/s, PyTorch "
        f"{medians['torch']:,.0f} {unit}/s, ratio {ratio:.2f}x (medians of {args.rounds}; "
        f"{params['kioku']:,} parameters each); other processes used "
        f"{_share(before)} of the cores before and {_share(during)} during: {verdict}"
    )
    summary = {"task": args.task, "ratio": ratio, "medians": medians, "runs": runs,
               "load": state, "steps": args.steps, "rounds": args.rounds}  # fmt: skip
    if args.out and (state["valid"] or not load.results_folder(args.out)):
        write_text_atomic(args.out, json.dumps(summary, indent=1) + "\n")
    elif args.out:
        print(f"NOT VALID: nothing written to {args.out}", file=sys.stderr)
    return 0 if state["valid"] else 3


if __name__ == "__main__":
    sys.exit(main())
