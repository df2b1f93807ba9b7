"""The field's metrics for every disc grade, with patient-bootstrap 95% confidence intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lumbar.evaluate.metrics import (
    bootstrap_metric_ci,
    balanced_accuracy,
    cohen_kappa,
    confusion,
    expected_calibration_error,
    per_class_recall,
    roc_auc,
    within_one,
)
from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES, n_grading_outputs


def grade_metrics(truth: dict[str, np.ndarray], pred: dict[str, np.ndarray], probs: dict[str, np.ndarray],
                  groups: np.ndarray) -> dict:
    """Per grade: balanced accuracy, per-class recall, confusion, kappa (linear for ordinal grades),
    within-one (Pfirrmann), AUC (binary), calibration error; CIs by patient bootstrap."""
    report = {}
    for name in (*ORDINAL_GRADES, *BINARY_GRADES):
        t, p, q = np.asarray(truth[name]), np.asarray(pred[name]), np.asarray(probs[name])
        classes = list(ORDINAL_GRADES.get(name, (0, 1)))
        weights = "linear" if name in ORDINAL_GRADES else None
        entry = {
            "n": int(len(t)),
            "balanced_accuracy": balanced_accuracy(t, p),
            "balanced_accuracy_ci95": bootstrap_metric_ci(balanced_accuracy, [t, p], groups),
            "per_class_recall": {str(k): v for k, v in per_class_recall(t, p, classes).items()},
            "confusion": confusion(t, p, classes),
            "kappa": cohen_kappa(t, p, weights, classes),
            "kappa_ci95": bootstrap_metric_ci(lambda a, b: cohen_kappa(a, b, weights, classes), [t, p], groups),
            "kappa_weights": weights or "none",
        }
        if name in ORDINAL_GRADES:
            confidence = q.max(1)
            entry["ece"] = expected_calibration_error(confidence, q.argmax(1) == np.searchsorted(classes, t))
            if name == "pfirrmann":
                entry["within_one"] = within_one(t, p)
                entry["within_one_ci95"] = bootstrap_metric_ci(within_one, [t, p], groups)
        else:
            entry["auc"] = roc_auc(t, q)
            entry["auc_ci95"] = bootstrap_metric_ci(roc_auc, [t, q], groups)
            entry["positives"] = int(t.sum())
            entry["ece"] = expected_calibration_error(np.where(p == 1, q, 1 - q), p == t)
        report[name] = entry
    return report


def evaluate_grading_folder(images: Path, gradings_csv: Path, overview: Path | None = None, progress=None,
                            same_patient: bool = False) -> dict:
    """Grade every disc found in a folder of slices with the shipped model and score it against the CSV.
    With ``same_patient`` each disc is graded from all of its patient's series together."""
    from lumbar.errors import InputError
    from lumbar.io.spider import find_overview, read_overview_spacing
    from lumbar.models.registry import load_model
    from lumbar.tasks.grading import calibrated_probabilities, decide, fuse_same_disc, prepare_crops
    from lumbar.train.grading_data import build_samples, read_gradings

    paths = sorted(Path(images).glob("*.png"))
    if not paths:
        raise InputError(f"{images}: no PNG slices to grade")
    overview = overview or find_overview(Path(images))
    spacing = read_overview_spacing(overview) if overview else {}
    samples, coverage = build_samples(paths, read_gradings(Path(gradings_csv)), spacing, progress)
    if not samples:
        raise InputError(f"{images}: no graded disc could be located and matched")
    model = load_model("grading")
    logits = np.zeros((len(samples), n_grading_outputs()), np.float32)
    for series in {s.series for s in samples}:  # each study's discs graded together, as ``lumbar analyze`` does
        idx = [i for i, s in enumerate(samples) if s.series == series]
        batch = prepare_crops([samples[i].crop for i in idx])
        logits[idx] = model(batch, context=batch)
    probs = calibrated_probabilities(logits, model.meta["temperatures"])
    if same_patient:
        probs = fuse_same_disc(probs, [f"{s.patient} {s.level}" for s in samples])
    preds = decide(probs, model.meta["thresholds"])
    truth = {g: np.array([s.grades[g] for s in samples]) for g in (*ORDINAL_GRADES, *BINARY_GRADES)}
    return {"n_discs": len(samples), "n_patients": len({s.patient for s in samples}), "same_patient": same_patient,
            "coverage": {"overall": coverage.fraction(), **{k: coverage.fraction(k) for k in coverage.graded}},
            "unmatched": coverage.unmatched,
            "metrics": grade_metrics(truth, preds, probs, np.array([s.patient for s in samples]))}


def grading_table(report: dict):
    """A rich table of the grading metrics."""
    from rich.table import Table

    how = ", each disc graded from all its patient's series" if report.get("same_patient") else ""
    table = Table(title=f"{report['n_discs']} discs (one row per series), {report['n_patients']} patients, "
                        f"coverage {100 * report['coverage']['overall']:.1f}%{how}")
    for column in ("grade", "balanced accuracy", "kappa", "within one / AUC", "ECE"):
        table.add_column(column)
    for name, m in report["metrics"].items():
        extra = m.get("within_one", m.get("auc", float("nan")))
        table.add_row(name, f"{m['balanced_accuracy']:.3f} [{m['balanced_accuracy_ci95'][0]:.2f}, {m['balanced_accuracy_ci95'][1]:.2f}]",
                      f"{m['kappa']:.3f} [{m['kappa_ci95'][0]:.2f}, {m['kappa_ci95'][1]:.2f}]", f"{extra:.3f}", f"{m['ece']:.3f}")
    return table
