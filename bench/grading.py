"""Grading benchmark: the shipped model's cross-validated figures (from its training record) and its speed.

The accuracy figures are those of ``lumbar train grading`` (patient 5-fold cross-validation, recorded in
``lumbar/models/weights/grading.json``), for series graded alone and for each disc graded from all of its
patient's series (``--same-patient``); this script prints them as tables, times grading and evidence maps
per disc on the CPU, and writes ``bench/results/grading.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save, timed

from lumbar.models.registry import available_models, load_model
from lumbar.tasks.disc_crops import CROP_SHAPE
from lumbar.tasks.grading import grade_crops, occlusion_maps


def main() -> None:
    if "grading" not in available_models():
        print("skipped: no grading model shipped")
        return
    model = load_model("grading")
    crops = [np.random.default_rng(k).random(CROP_SHAPE, dtype=np.float32) for k in range(7)]
    speed = {
        "grade_7_discs": timed(lambda: grade_crops(crops, model)),
        "evidence_maps_one_disc_3_grades": timed(
            lambda: occlusion_maps(crops[0], model, {"pfirrmann": 3, "bulging": 1, "herniation": 1})
        ),
    }
    cv = model.meta["cv"]
    path = save("grading", {"cv": cv, "coverage": model.meta.get("coverage"), "speed": speed})

    from rich.console import Console
    from rich.table import Table

    console = Console()
    for key, how in (
        ("metrics", "each series graded alone"),
        ("metrics_same_patient", "each disc graded from all its patient's series"),
    ):
        if key not in cv:
            print(f"no figures for {how} in this model's record (trained before they were measured)")
            continue
        table = Table(
            title=f"Grading, patient {cv['folds']}-fold cross-validation, {how}: "
            f"{cv['n_discs']} discs, {cv['n_patients']} patients"
        )
        for column in ("grade", "balanced accuracy [95% CI]", "kappa [95% CI]", "within one / AUC", "ECE"):
            table.add_column(column)
        for name, m in cv[key].items():
            extra = m.get("within_one", m.get("auc"))
            table.add_row(
                name,
                f"{m['balanced_accuracy']:.3f} [{m['balanced_accuracy_ci95'][0]:.3f}, "
                f"{m['balanced_accuracy_ci95'][1]:.3f}]",
                f"{m['kappa']:.3f} [{m['kappa_ci95'][0]:.3f}, {m['kappa_ci95'][1]:.3f}] ({m['kappa_weights']})",
                "–" if extra is None else f"{extra:.3f}",
                f"{m['ece']:.3f}",
            )
        console.print(table)
    coverage = model.meta.get("coverage", {})
    if coverage:
        print(
            f"coverage: {100 * coverage['overall']:.1f}% of graded discs located and joined "
            f"({', '.join(f'{k} {100 * v:.1f}%' for k, v in coverage['fraction'].items())})"
        )
    for key, value in speed.items():
        print(f"{key}: {value['median_s'] * 1000:.0f} ms")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
