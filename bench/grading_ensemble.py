"""Is an ensemble of grading networks worth shipping? Out-of-fold probabilities of several cross-validation runs,
averaged, against each run alone.

Each run is a ``lumbar train grading`` folder on the same cached disc crops (copy one run's ``samples.npz`` into
the next before training it) with another ``--seed``; a seed also draws other patient folds, so every member's
prediction for a disc still comes from a network that never saw that patient, and their mean is a fair
out-of-fold ensemble. A binary grade is decided at the mean of the members' thresholds for that disc (each chosen
on its fold's validation patients). Printed: balanced accuracy per grade for each run and for the ensemble, and the
ensemble's gain over the mean of its members with a paired patient-bootstrap 95% CI.

``python bench/grading_ensemble.py runs/gbase runs/gseed1 runs/gseed2`` writes bench/results/grading_ensemble.json
and its summary to bench/claims/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save

from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES
from lumbar.metrics import balanced_accuracy, grade_metrics
from lumbar.tasks.grading import decide
from lumbar.train.grading import out_of_fold
from lumbar.train.grading_ensemble import ensemble_out_of_fold

GRADES = (*ORDINAL_GRADES, *BINARY_GRADES)
RESAMPLES = 1000


def gain_ci(truth: np.ndarray, ensemble: np.ndarray, members: list[np.ndarray], groups: np.ndarray) -> list[float]:
    """Ensemble minus the mean of its members, balanced accuracy, with a paired patient-bootstrap 95% CI."""

    def gain(rows: np.ndarray) -> float:
        alone = np.mean([balanced_accuracy(truth[rows], m[rows]) for m in members])
        return balanced_accuracy(truth[rows], ensemble[rows]) - float(alone)

    patients = np.unique(groups)
    rows_of = {p: np.flatnonzero(groups == p) for p in patients}
    rng = np.random.default_rng(0)
    draws = [gain(np.concatenate([rows_of[p] for p in rng.choice(patients, len(patients))])) for _ in range(RESAMPLES)]
    return [gain(np.arange(len(truth))), *np.percentile(draws, [2.5, 97.5]).tolist()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="`lumbar train grading` folders, the same samples.npz")
    runs = parser.parse_args().runs
    missing = [str(r) for r in runs if not (r / "samples.npz").is_file() or not list(r.glob("fold_*.json"))]
    if missing:
        print(f"skipped: no cross-validation in {', '.join(missing)} (run `lumbar train grading` first)")
        return
    data = np.load(runs[0] / "samples.npz", allow_pickle=False)
    if any(not np.array_equal(np.load(r / "samples.npz")["grades"], data["grades"]) for r in runs[1:]):
        raise SystemExit("the runs were trained on different disc crops: copy one samples.npz into every run")
    truth = {name: data["grades"][:, k] for k, name in enumerate(GRADES)}
    groups, n = data["patient"], len(data["patient"])
    members = [(decide(p, t), p) for p, t in (out_of_fold(r, n) for r in runs)]  # (decisions, probabilities)
    mean_probs, mean_thresholds = ensemble_out_of_fold(runs, n)
    ensemble = decide(mean_probs, mean_thresholds)  # per-disc thresholds broadcast
    table = {
        str(run): {name: m["balanced_accuracy"] for name, m in grade_metrics(truth, d, p, groups).items()}
        for run, (d, p) in zip(runs, members, strict=True)
    }
    metrics = grade_metrics(truth, ensemble, mean_probs, groups)
    table["ensemble"] = {name: m["balanced_accuracy"] for name, m in metrics.items()}
    gains = {name: gain_ci(truth[name], ensemble[name], [d[name] for d, _ in members], groups) for name in GRADES}
    summary = {
        "runs": [str(r) for r in runs],
        "balanced_accuracy": table,
        "ensemble_pfirrmann": {k: metrics["pfirrmann"][k] for k in ("kappa", "within_one")},
        "gain_over_members_mean_ci95": gains,
    }
    path = save("grading_ensemble", summary)
    width = max(len(r) for r in table)
    print(f"{'balanced accuracy':{width}} " + " ".join(f"{name[:11]:>11}" for name in GRADES))
    for run, row in table.items():
        print(f"{run:{width}} " + " ".join(f"{row[name]:11.3f}" for name in GRADES))
    print(f"{'gain (CI)':{width}} " + " ".join(f"{gains[name][0]:+11.3f}" for name in GRADES))
    for name, (point, low, high) in gains.items():
        print(f"  {name}: ensemble - mean of members {point:+.3f} [{low:+.3f}, {high:+.3f}]")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
