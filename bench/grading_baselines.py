"""The grading network against two baselines in the same patient folds: a guess from the disc's level alone, and
gradient boosting on the quantities the grades are defined by, read from the same disc crops.

Reads a ``lumbar train grading`` run folder (``--run``, default ``runs/grading5``): its ``samples.npz`` (every graded
disc crop with the expert's grades) and its ``fold_<k>.json`` (which discs each fold tests, and the network's
out-of-fold calibrated probabilities, decided at that fold's thresholds, as ``lumbar train grading`` decides them).
With several runs (the members of a ``lumbar train grading-ensemble``), the network is their ensemble: out-of-fold
probabilities and thresholds averaged; the baselines use the first run's folds.

The features model (scikit-learn's ``HistGradientBoostingClassifier``, balanced class weights, one per grade, fit on
each fold's training patients only; a binary grade decided at the threshold with the best balanced accuracy on
out-of-fold predictions over those training patients, as the network's threshold is chosen on validation patients)
sees, per crop scaled to [0, 1] as the network sees it: the nucleus's signal and
its contrast against the neighbouring bodies and against the brightest tissue (CSF on T2), the annulus in front and
behind, the region behind the disc where a bulge or herniation displaces the canal's contents, the signal texture,
the signal just above and below the endplates (Modic changes), vertical and horizontal intensity profiles through
the disc (its height and shape), the sequence and the disc's level. An experiment beside them ("network + level"):
a logistic regression on the network's out-of-fold probabilities and the disc's level, fit on the other folds.
``python bench/grading_baselines.py`` (about ten minutes on 2 cores) prints the table and writes
bench/results/grading_baselines.json and its summary to bench/claims/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save

from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES
from lumbar.labels import SPINE_ORDER
from lumbar.metrics import grade_metrics
from lumbar.tasks.grading import decide, prepare_crops
from lumbar.train.grading_ensemble import ensemble_out_of_fold

GRADES = (*ORDINAL_GRADES, *BINARY_GRADES)
SEQUENCES = ("t1", "t2", "t2_SPACE")


def crop_features(crops: np.ndarray, series: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """One row of features per crop ``(N, 64, 96)``: disc centred, horizontal, anterior left, 1.6 disc-lengths wide
    (so the disc spans about columns 18-78 and rows 24-40, the bodies lie above and below)."""
    x = prepare_crops(list(crops))[:, 0]
    nucleus = x[:, 28:37, 38:58].mean((1, 2))
    bodies = np.concatenate([x[:, 6:18, 30:66], x[:, 46:58, 30:66]], axis=1).mean((1, 2))
    bright = np.percentile(x.reshape(len(x), -1), 99, axis=1)
    columns = {
        "nucleus": nucleus,
        "nucleus_minus_bodies": nucleus - bodies,
        "nucleus_over_brightest": nucleus / np.maximum(bright, 1e-3),
        "annulus_front": x[:, 28:37, 18:30].mean((1, 2)),
        "annulus_back": x[:, 28:37, 66:78].mean((1, 2)),
        "behind_disc": x[:, 24:40, 78:92].mean((1, 2)),
        "texture": x[:, 28:37, 30:66].std((1, 2)),
        "above_upper_endplate": x[:, 14:24, 30:66].mean((1, 2)),
        "below_lower_endplate": x[:, 40:50, 30:66].mean((1, 2)),
        "endplates_minus_bodies": np.concatenate([x[:, 18:24, 30:66], x[:, 40:46, 30:66]], axis=1).mean((1, 2))
        - bodies,
    }
    vertical = x[:, 12:52:2, 38:58].mean(2)  # height and sharpness of the disc's band
    horizontal = x[:, 28:37, 6:94:4].mean(1)  # its signal from front to back
    for k in range(vertical.shape[1]):
        columns[f"vertical_{k}"] = vertical[:, k]
    for k in range(horizontal.shape[1]):
        columns[f"horizontal_{k}"] = horizontal[:, k]
    for seq in SEQUENCES:
        columns[f"is_{seq}"] = np.array([s.split("_", 1)[1] == seq for s in series], float)
    columns["level"] = np.array([SPINE_ORDER.index(str(lv).split("/")[0]) for lv in levels], float)
    names = list(columns)
    return np.column_stack([columns[n] for n in names]).astype(np.float32), names


def folds_of(run: Path, n: int) -> list[np.ndarray]:
    """Each fold's test indices, exactly as the network's cross-validation used them."""
    folds = [np.array(json.loads(p.read_text())["index"]) for p in sorted(run.glob("fold_*.json"))]
    seen = np.zeros(n, bool)
    for f in folds:
        seen[f] = True
    if not folds or not seen.all():
        raise SystemExit(f"{run}: the folds do not cover every disc; finish `lumbar train grading` first")
    return folds


def _empty(n: int) -> tuple[dict, dict]:
    """Per grade, zeroed decisions and probabilities (class probabilities for Pfirrmann and Modic) for ``n`` discs."""
    preds = {name: np.zeros(n, int) for name in GRADES}
    probs = {
        name: np.zeros((n, len(ORDINAL_GRADES[name]))) if name in ORDINAL_GRADES else np.zeros(n) for name in GRADES
    }
    return preds, probs


def _by_grade_class(name: str, classes: np.ndarray, p: np.ndarray) -> np.ndarray:
    """A classifier's probabilities ``p`` (columns ``classes``, those seen in training) over all of the grade's
    classes, zero for a class the training discs did not have."""
    full = np.zeros((len(p), len(ORDINAL_GRADES[name])))
    for j, c in enumerate(classes):
        full[:, list(ORDINAL_GRADES[name]).index(c)] = p[:, j]
    return full


def _booster():
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.05,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        class_weight="balanced",
        random_state=0,
    )


def _positive(model, x: np.ndarray) -> np.ndarray:
    classes = list(model.classes_)
    return model.predict_proba(x)[:, classes.index(1)] if 1 in classes else np.zeros(len(x))


def _threshold(x: np.ndarray, t: np.ndarray, groups: np.ndarray) -> float:
    """A binary grade's threshold for balanced accuracy, chosen on out-of-fold predictions over the training patients
    alone (3 patient folds), as the network's is chosen on validation patients: never on the test fold."""
    from sklearn.model_selection import GroupKFold

    from lumbar.metrics import balanced_accuracy

    scores = np.zeros(len(t))
    for inner_train, inner_test in GroupKFold(n_splits=3).split(x, t, groups):
        scores[inner_test] = _positive(_booster().fit(x[inner_train], t[inner_train]), x[inner_test])
    grid = np.linspace(0.02, 0.98, 49)
    return float(grid[int(np.argmax([balanced_accuracy(t, (scores >= g).astype(int)) for g in grid]))])


def features_out_of_fold(x: np.ndarray, truth: dict, folds: list[np.ndarray], groups: np.ndarray) -> tuple[dict, dict]:
    """Gradient boosting per grade, fit on each fold's other patients, predicting the fold's discs; binary grades
    decided at a threshold chosen on those other patients."""
    n = len(x)
    preds, probs = _empty(n)
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        for name in GRADES:
            model = _booster().fit(x[train], truth[name][train])
            if name in ORDINAL_GRADES:
                full = _by_grade_class(name, model.classes_, model.predict_proba(x[test]))
                probs[name][test] = full
                preds[name][test] = np.array(ORDINAL_GRADES[name])[full.argmax(1)]
            else:
                positive = _positive(model, x[test])
                probs[name][test] = positive
                threshold = _threshold(x[train], truth[name][train], groups[train])
                preds[name][test] = (positive >= threshold).astype(int)
    return preds, probs


def stacked_out_of_fold(
    network_probs: dict, levels: np.ndarray, truth: dict, folds: list[np.ndarray]
) -> tuple[dict, dict]:
    """The network's out-of-fold probabilities beside the disc's level, in a logistic regression (balanced class
    weights) fit on the other folds' discs and applied to this fold's: can the level prior add to the image?"""
    from sklearn.linear_model import LogisticRegression

    names = sorted(set(levels))
    onehot = (levels[:, None] == np.array(names)[None, :]).astype(float)
    n = len(levels)
    preds, probs = _empty(n)
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        for name in GRADES:
            p = np.clip(network_probs[name], 1e-6, 1 - 1e-6)
            score = np.log(p) if p.ndim == 2 else np.log(p / (1 - p))[:, None]
            x = np.hstack([score, onehot])
            model = LogisticRegression(class_weight="balanced", max_iter=2000, C=1.0).fit(x[train], truth[name][train])
            q = model.predict_proba(x[test])
            if name in ORDINAL_GRADES:
                full = _by_grade_class(name, model.classes_, q)
                probs[name][test] = full
                preds[name][test] = np.array(ORDINAL_GRADES[name])[full.argmax(1)]
            else:
                positive = q[:, list(model.classes_).index(1)]
                probs[name][test] = positive
                preds[name][test] = (positive >= 0.5).astype(int)
    return preds, probs


def level_guess_out_of_fold(levels: np.ndarray, truth: dict, folds: list[np.ndarray]) -> tuple[dict, dict]:
    """Each disc gets the grade most typical of its level among the other folds' discs, relative to that grade's
    overall frequency (as bench/grade_validation.py guesses); its probability is that level's class frequency."""
    n = len(levels)
    preds, probs = _empty(n)
    for test_index in folds:
        test = np.zeros(n, bool)
        test[test_index] = True
        for name, t in truth.items():
            classes = np.array(ORDINAL_GRADES.get(name, (0, 1)))
            overall = np.array([np.mean(t[~test] == c) for c in classes]) + 1e-9
            for level in np.unique(levels[test]):
                seen = ~test & (levels == level)
                here = np.array([np.mean(t[seen] == c) for c in classes]) if seen.any() else overall
                rows = test & (levels == level)
                preds[name][rows] = classes[np.argmax(here / overall)]
                probs[name][rows] = here if name in ORDINAL_GRADES else here[1]
    return preds, probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--run", nargs="+", type=Path, default=[Path("runs/grading5")], help="`lumbar train grading` run folder(s)"
    )
    runs = parser.parse_args().run
    run = runs[0]  # its folds are the baselines' folds
    if not (run / "samples.npz").is_file():
        print(f"skipped: {run / 'samples.npz'} not found (run `lumbar train grading` first)")
        return
    data = np.load(run / "samples.npz", allow_pickle=False)
    truth = {name: data["grades"][:, k] for k, name in enumerate(GRADES)}
    n, groups = len(data["patient"]), data["patient"]
    folds = folds_of(run, n)
    x, names = crop_features(data["crops"], data["series"], data["level"])
    results = {}
    probs, thresholds = ensemble_out_of_fold(runs, n)  # several runs: an ensemble (lumbar train grading-ensemble)
    network = (decide(probs, thresholds), probs)
    for label, (preds, probs) in {
        "network": network,
        "features": features_out_of_fold(x, truth, folds, groups),
        "level_guess": level_guess_out_of_fold(data["level"], truth, folds),
        "network_with_level": stacked_out_of_fold(network[1], data["level"], truth, folds),
    }.items():
        metrics = grade_metrics(truth, preds, probs, groups)
        results[label] = {
            name: {k: m[k] for k in ("balanced_accuracy", "balanced_accuracy_ci95", "kappa") if k in m}
            | ({"within_one": m["within_one"]} if "within_one" in m else {})
            | ({"auc": m["auc"]} if "auc" in m else {})
            for name, m in metrics.items()
        }
    contenders = ("network", "features", "level_guess")  # the stacked model is an experiment, not a baseline
    best = {
        name: max(contenders, key=lambda label, name=name: results[label][name]["balanced_accuracy"]) for name in GRADES
    }
    payload = {
        "run": str(run),
        "network_runs": [str(r) for r in runs],
        "n_discs": n,
        "n_patients": len(set(groups)),
        "folds": len(folds),
        "features": names,
        "results": results,
        "best": best,
        "network_beats_both": [g for g in GRADES if best[g] == "network"],
    }
    path = save("grading_baselines", payload)

    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Balanced accuracy [95% CI], patient {len(folds)}-fold cross-validation, {n} discs of "
        f"{payload['n_patients']} patients, the same folds for all"
    )
    for column in ("grade", "network", "features + gradient boosting", "level alone", "best", "network + level"):
        table.add_column(column)

    def cell(label: str, name: str) -> str:
        m = results[label][name]
        low, high = m["balanced_accuracy_ci95"]
        return f"{m['balanced_accuracy']:.3f} [{low:.3f}, {high:.3f}]"

    for name in GRADES:
        table.add_row(
            name,
            cell("network", name),
            cell("features", name),
            cell("level_guess", name),
            best[name],
            cell("network_with_level", name),
        )
    Console(width=140).print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
