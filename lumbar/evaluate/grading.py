"""The field's metrics for every disc grade, with patient-bootstrap 95% confidence intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lumbar.evaluate import in_sample_warning
from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES
from lumbar.metrics import grade_metrics


def evaluate_grading_folder(
    images: Path, gradings_csv: Path, overview: Path | None = None, progress=None, same_patient: bool = False
) -> dict:
    """Grade every disc found in a folder of slices exactly as ``lumbar analyze`` does (each series' reported
    discs read together) and score the grades against the CSV. With ``same_patient`` each disc is graded from
    its patient's series together as ``lumbar analyze --same-patient`` grades it (series with flagged level names
    alone, a view the slice's edge cuts left out where another shows the disc whole). A graded disc that analyze
    does not report counts as not covered."""
    from lumbar.datasets.grading import join, read_graded_series, read_gradings
    from lumbar.errors import InputError
    from lumbar.io.spider import find_overview, read_overview_spacing
    from lumbar.pipelines.mr_sagittal import fuse_where_trusted, grade_series, grading_model
    from lumbar.tasks.grading import decide

    paths = sorted(Path(images).glob("*.png"))
    if not paths:
        raise InputError(f"{images}: no PNG slices to grade")
    overview = overview or find_overview(Path(images))
    spacing = read_overview_spacing(overview) if overview else {}
    model = grading_model()
    if model is None:
        raise InputError("no grading model ships with this installation")
    series = read_graded_series(paths, read_gradings(Path(gradings_csv)), spacing, progress)
    graded = [grade_series(s.segmentation, model) for s in series]
    if same_patient:
        for patient in {s.patient for s in series}:
            mine = [k for k, s in enumerate(series) if s.patient == patient]
            fused, _ = fuse_where_trusted([series[k].segmentation for k in mine], [graded[k] for k in mine])
            for k, grading in zip(mine, fused):
                graded[k] = grading
    pairs, coverage = join(series, [g.probabilities for g in graded])
    if not pairs:
        raise InputError(f"{images}: no graded disc could be located and matched")
    probs = {
        g: np.stack([graded[i].probabilities[level][g] for i, level in pairs])
        for g in (*ORDINAL_GRADES, *BINARY_GRADES)
    }
    patients = np.array([series[i].patient for i, _ in pairs])
    preds = decide(probs, model.meta["thresholds"])
    truth = {g: np.array([series[i].grades[level][g] for i, level in pairs]) for g in (*ORDINAL_GRADES, *BINARY_GRADES)}
    return {
        "n_discs": len(pairs),
        "n_patients": len(set(patients)),
        "patients_seen_in_training": sorted(set(patients) & model.patients_seen),
        "same_patient": same_patient,
        "coverage": {"overall": coverage.fraction(), **{k: coverage.fraction(k) for k in coverage.graded}},
        "unmatched": coverage.unmatched,
        "metrics": grade_metrics(truth, preds, probs, patients),
    }


def grading_table(report: dict):
    """A rich table of the grading metrics."""
    from rich.table import Table

    how = ", each disc graded from its patient's series together" if report.get("same_patient") else ""
    table = Table(
        title=f"{report['n_discs']} discs (one row per series), {report['n_patients']} patients, "
        f"coverage {100 * report['coverage']['overall']:.1f}%{how}",
        caption=in_sample_warning(report),
    )
    for column in ("grade", "balanced accuracy", "kappa", "within one / AUC", "ECE"):
        table.add_column(column)
    for name, m in report["metrics"].items():
        extra = m.get("within_one", m.get("auc", float("nan")))
        table.add_row(
            name,
            f"{m['balanced_accuracy']:.3f} "
            f"[{m['balanced_accuracy_ci95'][0]:.2f}, {m['balanced_accuracy_ci95'][1]:.2f}]",
            f"{m['kappa']:.3f} [{m['kappa_ci95'][0]:.2f}, {m['kappa_ci95'][1]:.2f}]",
            f"{extra:.3f}",
            f"{m['ece']:.3f}",
        )
    return table
