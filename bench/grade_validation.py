"""Which of the grading model's grades may state a finding? Each against the SPIDER expert, out of fold.

Reads ``lumbar train grading`` run folders (``--run``, default ``runs/grading5``): their ``samples.npz`` (every
graded disc found on a T1, T2 or T2 SPACE mid-sagittal image of the 179 SPIDER training patients, with the expert's
grades) and their ``fold_<k>.json`` (each disc's calibrated probabilities from the fold model that never saw its
patient), averaged over the runs when there are several (the members of a ``lumbar train grading-ensemble``, whose
ONNX ``--model`` names). The level guess uses the first run's folds. Per finding (each binary grade; Modic 1-3
against 0; Pfirrmann 4-5 against 1-3) the probability is the score, and the operating point and its validation
follow ``bench/validation.py`` (at most 5% of the expert's negative discs called, cross-fitted rates, precision
>= 0.5). ``--ship`` writes the points into ``lumbar/validation.json``, next to the measured findings: only validated
grades reach a report's Summary. Prints a table, writes ``bench/results/grade_validation.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save
from validation import MAX_FPR, scored_finding, ship, why_not

from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES
from lumbar.metrics import balanced_accuracy, bootstrap_metric_ci
from lumbar.models.registry import weights_sha256
from lumbar.train.grading_ensemble import ensemble_out_of_fold

ROOT = Path(__file__).resolve().parents[1]
GRADES = (*ORDINAL_GRADES, *BINARY_GRADES)  # the column order of samples.npz (lumbar/train/grading.py)
REFERENCE = (
    "SPIDER expert gradings (van der Graaf et al. 2024), 179 patients, mid-sagittal T1, T2 and T2 SPACE; each disc "
    "graded by the fold model of a patient 5-fold cross-validation that never saw its patient"
)


def level_guess(run: Path, truth: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The trivial baseline, out of fold: each disc gets the grade most typical of its level in the other folds'
    patients, relative to that grade's overall frequency (argmax over c of P(c | level) / P(c)); no image."""
    levels = np.load(run / "samples.npz", allow_pickle=False)["level"]
    guess = {name: np.zeros(len(levels), int) for name in truth}
    for fold in sorted(run.glob("fold_*.json")):
        test = np.zeros(len(levels), bool)
        test[np.array(json.loads(fold.read_text())["index"])] = True
        for name, t in truth.items():
            classes = np.unique(t[~test])
            overall = np.array([np.mean(t[~test] == c) for c in classes])
            for level in np.unique(levels[test]):
                seen = ~test & (levels == level)
                here = np.array([np.mean(t[seen] == c) for c in classes]) if seen.any() else overall
                guess[name][test & (levels == level)] = classes[np.argmax(here / overall)]
    return guess


def findings(truth: dict, probs: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per finding: (expert positive 0/1, the model's probability of it)."""
    out = {name: (truth[name], probs[name]) for name in BINARY_GRADES}
    out["modic"] = ((truth["modic"] >= 1).astype(int), 1 - probs["modic"][:, 0])
    out["pfirrmann_4_5"] = ((truth["pfirrmann"] >= 4).astype(int), probs["pfirrmann"][:, 3:].sum(1))
    return out


def _with_ci(metrics: dict) -> str:
    low, high = metrics["balanced_accuracy_ci95"]
    return f"{metrics['balanced_accuracy']:.2f} [{low:.2f}, {high:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", nargs="+", type=Path, default=[ROOT / "runs" / "grading5"], help="grading run(s)")
    parser.add_argument("--model", type=Path, help="the ONNX these runs ship as (default: the one run's own)")
    parser.add_argument("--ship", action="store_true", help="write the operating points into lumbar/validation.json")
    args = parser.parse_args()
    runs, run = args.run, args.run[0]
    model = args.model or run / "grading.onnx"
    if not (run / "samples.npz").is_file():
        print(f"skipped: no grading run at {run} (lumbar train grading --data ../shared/data/spider -o {run})")
        return
    if len(runs) > 1 and not args.model:
        raise SystemExit("several runs: name the ensemble they ship as with --model (lumbar train grading-ensemble)")
    samples = np.load(run / "samples.npz", allow_pickle=False)
    truth = {name: samples["grades"][:, k] for k, name in enumerate(GRADES)}
    patients, levels = samples["patient"], samples["level"]
    probs, _ = ensemble_out_of_fold(runs, len(patients))
    results = {name: scored_finding(t, p, patients, levels) for name, (t, p) in findings(truth, probs).items()}
    guess = level_guess(run, truth)
    baseline = {
        name: {
            "balanced_accuracy": balanced_accuracy(truth[name], guess[name]),
            "balanced_accuracy_ci95": bootstrap_metric_ci(balanced_accuracy, [truth[name], guess[name]], patients),
        }
        for name in GRADES
    }
    path = save(
        "grade_validation",
        {"runs": [str(r) for r in runs], "model": str(model), "findings": results, "level_guess": baseline},
    )
    if args.ship:
        ship(
            "grades",
            {
                "reference": REFERENCE,
                "short_reference": "the SPIDER expert, out of fold (179 patients; T1, T2, T2 SPACE)",
                "max_false_positive_rate": MAX_FPR,
                "rates": "cross-fitted: the point chosen on half of the patients, measured on the other half",
                "command": shlex.join(["python", "bench/grade_validation.py", *sys.argv[1:]]),
                "model_sha256": weights_sha256(model),
                "level_guess_balanced_accuracy": {name: b["balanced_accuracy"] for name, b in baseline.items()},
                "findings": {
                    name: {
                        "validated": r["validated"],
                        "score": "probability",
                        "threshold": r["threshold"],
                        **{k: r[k] for k in ("auc", "auc_ci95", "level_only_auc", "n_positive", "n_negative")},
                        **{k: r["cross_fitted"][k] for k in ("false_positive_rate", "sensitivity", "precision")},
                        "in_sample_ci95": {k: r[f"{k}_ci95"] for k in ("false_positive_rate", "sensitivity")},
                        "why": "" if r["validated"] else why_not(r),
                    }
                    for name, r in results.items()
                },
            },
        )

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Grades vs the SPIDER expert, out of fold (operating point: <= {MAX_FPR:.0%} false positives)")
    for column in (
        "finding",
        "discs (pos)",
        "AUC [95% CI]",
        "level-only AUC",
        "threshold",
        "cross-fitted sens / FPR / precision",
        "ok",
    ):
        table.add_column(column)
    for name, r in results.items():
        c = r["cross_fitted"]
        table.add_row(
            name,
            f"{r['n_positive'] + r['n_negative']} ({r['n_positive']})",
            f"{r['auc']:.2f} [{r['auc_ci95'][0]:.2f}, {r['auc_ci95'][1]:.2f}]",
            f"{r['level_only_auc']:.2f}",
            f"{r['threshold']:.3f}",
            f"{c['sensitivity']:.2f} / {c['false_positive_rate']:.3f} / {c['precision']:.2f}",
            "validated" if r["validated"] else "no",
        )
    Console().print(table)
    record = model.with_suffix(".json")
    cv = json.loads(record.read_text())["cv"]["metrics"] if record.is_file() else {}
    guess_table = Table(title="Balanced accuracy, out of fold: the model against a guess from the disc's level alone")
    for column in ("grade", "model [95% CI]", "level guess [95% CI]"):
        guess_table.add_column(column)
    for name, b in baseline.items():
        m = cv.get(name)
        guess_table.add_row(name, _with_ci(m) if m else "–", _with_ci(b))
    Console().print(guess_table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
