"""The seed's claims as fixed-seed experiments: (a) vanishing gradients on the adding
problem (simple RNN, GRU, LSTM, sLSTM), (b) forgetting on a continual stream, (c) depth
on a character language model, (d) direction on tagging. :func:`run_experiments` runs
them and writes ``results.json`` and ``report.html``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..data.atomic import write_json_atomic
from . import adding, depth, direction, forgetting
from .common import Budget, Stopwatch

EXPERIMENTS = ("adding", "forgetting", "depth", "direction")


def claims(results: dict) -> dict[str, bool]:
    """The checks the issue asks for, from the results."""
    out = {}
    if "adding" in results:
        best = {(r["model"], r["T"]): r["test_accuracy"] for r in results["adding"]["runs"]}
        out["LSTM solves the adding problem at T=50 (>= 95% correct)"] = best[("lstm", 50)] >= 0.95
        if ("lstm", 100) in best:
            out["LSTM >= 95% correct at T=100"] = best[("lstm", 100)] >= 0.95
        longest = max(r["T"] for r in results["adding"]["runs"])
        reach = {
            r["model"]: r.get("dx_step0") for r in results["adding"]["runs"] if r["T"] == longest
        }
        if all(reach.get(kind) is not None for kind in ("rnn", "gru", "lstm", "slstm")):
            out[
                f"at T={longest} the gradient reaching step 0 is >= 1000x the RNN's "
                "for the GRU, LSTM and sLSTM"
            ] = all(reach[kind] >= 1000 * reach["rnn"] for kind in ("gru", "lstm", "slstm"))
    if "direction" in results:
        gen = results["direction"]["generated"]["models"]
        out["bidirectional tagger beats unidirectional on later-decided tags"] = (
            gen["bidirectional"]["ambiguous_word_accuracy"]
            > gen["unidirectional"]["ambiguous_word_accuracy"]
        )
    if "forgetting" in results:
        v = results["forgetting"]["variants"]
        held, learned = v["forget gate open (f = 1)"], v["learned forget gate"]
        out["cell state grows on a continual stream with f = 1"] = (
            held["mean_abs_c_last_window"] > 2 * held["mean_abs_c_first_window"]
        )
        out["learned forget gate beats f = 1 on the continual stream"] = (
            learned["accuracy"] > held["accuracy"]
        )
    return out


def run_experiments(
    out: str | os.PathLike,
    quick: bool = True,
    conllu: str | os.PathLike | None = None,
    seed: int = 0,
    only: tuple[str, ...] = EXPERIMENTS,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the experiments named in ``only``; write ``out/results.json``,
    ``out/report.html`` and one PNG per figure. Returns the results dict."""
    unknown = sorted(set(only) - set(EXPERIMENTS))
    if unknown:
        raise ValueError(f"only: expected names from {EXPERIMENTS}, found {unknown}")
    if conllu is not None and not Path(conllu).is_file():
        raise FileNotFoundError(f"conllu: {conllu}: no such file")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    budget = Budget(quick)
    clock = Stopwatch()
    results: dict = {"quick": quick, "seed": seed}
    runners = {
        "adding": lambda: adding.run(budget, seed, log),
        "forgetting": lambda: forgetting.run(budget, seed, log),
        "depth": lambda: depth.run(budget, seed, log),
        "direction": lambda: direction.run(
            budget, seed, None if conllu is None else str(conllu), log
        ),
    }
    for name in EXPERIMENTS:
        if name in only:
            part = Stopwatch()
            results[name] = runners[name]()
            results[name]["seconds"] = part.elapsed
    results["seconds"] = clock.elapsed
    results["claims"] = claims(results)
    write_json_atomic(out / "results.json", results)
    from .report import write_report

    write_report(results, out)
    return results
