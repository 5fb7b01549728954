"""The experiments' figures and their HTML report, built from the results dict alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..inspect import plots
from ..inspect.report import HtmlReport


def figures(results: dict) -> dict[str, object]:
    """Name -> matplotlib Figure for every experiment present in ``results``."""
    figs = {}
    if "adding" in results:
        adding = results["adding"]
        gradients = adding["gradients"]
        curves = {f"{label} ‖dL/dh_t‖": c["dh"] for label, c in gradients.items() if "dh" in c}
        curves.update(
            {f"{label} ‖dL/dc_t‖": c["dc"] for label, c in gradients.items() if "dc" in c}
        )
        figs["adding_gradient_flow"] = plots.gradient_flow_plot(
            curves,
            f"Adding problem, T = {adding['gradient_T']}: gradient of the final loss at step t",
            "gradient norm (mean over 256 sequences)",
        )
        figs["adding_input_gradient"] = plots.gradient_flow_plot(
            {label: c["dx"] for label, c in gradients.items() if "dx" in c},
            f"Adding problem, T = {adding['gradient_T']}: gradient reaching the input of step t",
            "‖dL/dx_t‖ (mean over 256 sequences)",
        )
        by_kind: dict[str, tuple[list, list]] = {}
        for r in adding["runs"]:
            xs, ys = by_kind.setdefault(r["model"], ([], []))
            xs.append(r["T"])
            ys.append(r["test_accuracy"])
        figs["adding_accuracy_by_length"] = plots.line_plot(
            by_kind,
            "sequence length T",
            "fraction correct (|error| < 0.04)",
            "Adding problem: the four cells against T",
            markers=True,
        )
        series = {
            f"{r['model']} T={r['T']}": (
                [h["update"] for h in r["history"]],
                [h["accuracy"] for h in r["history"]],
            )
            for r in adding["runs"]
            if r["T"] == adding["gradient_T"]  # one length: 20 curves would not read
        }
        figs["adding_accuracy"] = plots.line_plot(
            series,
            "update",
            "fraction correct (|error| < 0.04)",
            f"Adding problem, T = {adding['gradient_T']}: test accuracy during training",
        )
    if "forgetting" in results:
        variants = results["forgetting"]["variants"]
        series = {
            label: (np.arange(len(v["mean_abs_c"])), v["mean_abs_c"])
            for label, v in variants.items()
        }
        figs["forgetting_cell"] = plots.line_plot(
            series,
            "step of the stream (never reset)",
            "mean |c| over cells and streams",
            "Continual stream: cell state size",
            logy=True,
        )
    if "depth" in results:
        runs = results["depth"]["runs"]
        figs["depth_bits"] = plots.line_plot(
            {"valid": ([r["parameters"] for r in runs], [r["valid_bits_per_char"] for r in runs])},
            "parameters (1, 2, 3 layers)",
            "bits per character",
            "Character LM on the stdlib corpus: depth",
            markers=True,
        )
    if "direction" in results:
        groups = {
            "ambiguous words\n(generated)": {
                k: v["ambiguous_word_accuracy"]
                for k, v in results["direction"]["generated"]["models"].items()
            },
            "all tokens\n(generated)": {
                k: v["token_accuracy"]
                for k, v in results["direction"]["generated"]["models"].items()
            },
        }
        if "conllu" in results["direction"]:
            groups["UPOS tags\n(treebank)"] = {
                k: v["token_accuracy"] for k, v in results["direction"]["conllu"]["models"].items()
            }
        figs["direction_accuracy"] = plots.bar_plot(
            groups, "fraction correct on test", "Tagging: one direction against two"
        )
    return figs


# what each study asks, how, and what the seed claims; shown above its figures
ABOUT = {
    "adding": (
        "The seed's first claim: a simple RNN's gradient vanishes over long spans, the "
        "LSTM's cell keeps it. Task: read T steps of (a value, a marker), two of them "
        "marked, and give a number set by the two marked values after the last step. "
        "The first figure shows test accuracy during training for each model and "
        "length; the second the size of the gradient of the final loss reaching each "
        "step. The claim holds where the LSTM learns at lengths where the RNN stays at "
        "the constant guess and its gradient reaches the early steps."
    ),
    "forgetting": (
        "The forget gate's claim: without it (f = 1, the original 1997 LSTM) the cell "
        "grows without bound on a stream that is never reset; with it the cell stays "
        "bounded (Gers, Schmidhuber & Cummins 2000). Task: a stream of segments, each "
        "storing one symbol and asking for it at its end, with the state never reset. "
        "The figure shows the mean |c| along the stream for each variant (log scale); "
        "the claim holds where the learned forget gate keeps it flat and the open one "
        "lets it climb."
    ),
    "depth": (
        "The stacking claim: more layers model text better, at more cost. Task: the "
        "character language model on the stdlib corpus with 1, 2 and 3 layers at the "
        "same number of updates. The figure shows validation bits per character against "
        "the number of parameters; lower is better."
    ),
    "direction": (
        "The bidirectional claim, with the seed's own example: in 'Apple is something "
        "that I like to eat' only the later words tell the fruit from the company. Task: "
        "tag generated sentences whose ambiguous first word takes the sense of a context "
        "word that comes later (and, when given, UPOS tags of a treebank). The figure "
        "shows the share of ambiguous words, and of all tokens, tagged right by a "
        "one-directional and a bidirectional tagger. The claim holds where the "
        "bidirectional tagger gets the ambiguous words right far more often."
    ),
}


def caveats(results: dict) -> list[str]:
    """One line per figure of ``results`` too short to carry a claim: in quick mode the
    depth runs (no claim is checked on them)."""
    lines = []
    if results.get("quick") and "depth" in results:
        runs = results["depth"]["runs"]
        bits = " / ".join(f"{r['valid_bits_per_char']:.3f}" for r in runs)
        lines.append(
            f"depth (quick): {runs[0]['updates']} updates of {runs[0]['hidden_size']}-"
            f"cell models are too short to carry the stacking claim (valid bits/char {bits} "
            "for " + "/".join(str(r["layers"]) for r in runs) + " layers: deeper models "
            "start slower); no claim is checked on them, the full mode makes it"
        )
    return lines


def write_report(results: dict, out: Path) -> Path:
    """``out/report.html`` (figures embedded) and each figure as ``out/<name>.png``."""
    figs = figures(results)
    for name, fig in figs.items():
        plots.save_figure(fig, out / f"{name}.png")
    mode = "quick" if results["quick"] else "full"
    report = HtmlReport(f"kioku experiments ({mode} mode)")
    report.paragraph(
        f"Seed {results['seed']}; wall time {results['seconds']:.0f} s. Every number is also "
        "in results.json beside this file."
    )
    report.heading("Claims")
    report.table(["claim", "holds"], [[k, v] for k, v in results["claims"].items()])
    for line in caveats(results):
        report.paragraph(f"Caveat: {line}.")
    if "adding" in results:
        adding = results["adding"]
        report.heading("(a) Vanishing gradients: the adding problem")
        report.paragraph(ABOUT["adding"])
        report.paragraph(
            "Target 0.5 + (X1 + X2) / 4; a sequence is correct when |error| < 0.04 "
            f"(predicting 0.5 always is right for about "
            f"{adding['runs'][0]['baseline_accuracy']:.0%})."
        )
        report.table(
            ["model", "T", "parameters", "updates", "test correct", "‖dL/dx_0‖", "seconds"],
            [
                [
                    r["model"],
                    r["T"],
                    r["parameters"],
                    r["updates"],
                    r["test_accuracy"],
                    r.get("dx_step0", float("nan")),
                    r["seconds"],
                ]
                for r in adding["runs"]
            ],
        )
        report.paragraph(
            "‖dL/dx_0‖: the gradient of the final loss (MSE over 256 sequences) reaching the "
            "input of the first step, after training (L2 over the two inputs, mean over the "
            "sequences)."
        )
        report.figure(figs["adding_accuracy_by_length"], "Test accuracy at each length.")
        report.figure(figs["adding_accuracy"], "Test accuracy during training, longest T.")
        report.figure(
            figs["adding_input_gradient"],
            "Norm of the gradient of the final loss reaching the input of each step (log "
            "scale), for every cell: the RNN's dies away from the end, the gated cells keep it.",
        )
        report.figure(
            figs["adding_gradient_flow"],
            "Norm of the gradient of the final loss reaching the state of each step "
            "(log scale): the RNN's dies away from the end, the LSTM's cell keeps it.",
        )
    if "forgetting" in results:
        report.heading("(b) Forgetting on a continual stream")
        report.paragraph(ABOUT["forgetting"])
        variants = results["forgetting"]["variants"]
        report.table(
            [
                "variant",
                "query accuracy",
                "mean |c| first 10%",
                "mean |c| last 10%",
                "max |c|",
                "mean f",
            ],
            [
                [
                    k,
                    v["accuracy"],
                    v["mean_abs_c_first_window"],
                    v["mean_abs_c_last_window"],
                    v["max_abs_c"],
                    v["forget_gate_mean"],
                ]
                for k, v in variants.items()
            ],
        )
        report.figure(figs["forgetting_cell"], "Mean |c| along the stream (log scale).")
    if "depth" in results:
        report.heading("(c) Depth: character language model")
        report.paragraph(ABOUT["depth"])
        report.table(
            ["layers", "parameters", "updates", "train bits/char", "valid bits/char", "seconds"],
            [
                [
                    r["layers"],
                    r["parameters"],
                    r["updates"],
                    r["train_bits_per_char"],
                    r["valid_bits_per_char"],
                    r["seconds"],
                ]
                for r in results["depth"]["runs"]
            ],
        )
        report.figure(figs["depth_bits"], "Validation bits per character against size.")
    if "direction" in results:
        report.heading("(d) Direction: tags decided by later words")
        report.paragraph(ABOUT["direction"])
        gen = results["direction"]["generated"]["models"]
        report.table(
            ["tagger", "ambiguous words correct", "all tokens correct", "seconds"],
            [
                [k, v["ambiguous_word_accuracy"], v["token_accuracy"], v["seconds"]]
                for k, v in gen.items()
            ],
        )
        if "conllu" in results["direction"]:
            tb = results["direction"]["conllu"]
            report.paragraph(
                f"UPOS tagging of {tb['file']} ({tb['train_sentences']} training "
                f"sentences, {tb['test_sentences']} test sentences)."
            )
            report.table(
                ["tagger", "tags correct", "seconds"],
                [[k, v["token_accuracy"], v["seconds"]] for k, v in tb["models"].items()],
            )
        report.figure(
            figs["direction_accuracy"],
            "Share tagged right on the test sentences, per tagger.",
        )
    return report.write(out / "report.html")
