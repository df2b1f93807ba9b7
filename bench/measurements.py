"""Do the measurements agree with an expert? SPIDER mid-sagittal T1 and T2 slices vs radiological_gradings.csv.

For every disc found and joined to its grading (disc ``k`` from the bottom = ``IVD label`` ``k``):
- slip in % of the endplate (``|slip_percent|``) as a score for the expert's spondylolisthesis (0/1),
- disc height index (lower = narrower) as a score for the expert's disc narrowing (0/1),
each as ROC AUC with a patient-bootstrap 95% CI, plus how often a slip could be measured at all and the
spread of the lumbar lordosis angle. Prints a table, writes ``bench/results/measurements.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.datasets.grading import read_gradings
from lumbar.io import read_image
from lumbar.io.spider import patient_id, read_overview_spacing
from lumbar.metrics import bootstrap_metric_ci, roc_auc
from lumbar.pipelines.mr_sagittal import (
    measure,
    segment,
)

SPIDER = SHARED_DATA / "spider"
SEQUENCES = ("t1", "t2")


def _auc_row(truth: np.ndarray, score: np.ndarray, groups: np.ndarray) -> dict:
    keep = ~np.isnan(score)
    t, s, g = truth[keep], score[keep], groups[keep]
    return {
        "n": int(keep.sum()),
        "positives": int(t.sum()),
        "auc": roc_auc(t, s),
        "auc_ci95": bootstrap_metric_ci(roc_auc, [t, s], g),
    }


def nan_if_none(value: float | None, then=float) -> float:
    """A measurement as a float for the statistics: NaN where it could not be measured."""
    return float("nan") if value is None else float(then(value))


def main() -> None:
    if not (SPIDER / "midsag").is_dir():
        print(f"skipped: {SPIDER / 'midsag'} not found")
        return
    spacing = read_overview_spacing(SPIDER / "overview.csv")
    gradings = read_gradings(SPIDER / "radiological_gradings.csv")
    rows, lordosis = [], {s: [] for s in SEQUENCES}
    for path in sorted((SPIDER / "midsag").glob("*.png")):
        sequence = path.stem.split("_", 1)[1]
        if sequence not in SEQUENCES or path.stem not in spacing:
            continue
        result = segment(read_image(path, spacing_mm=spacing[path.stem][0]))
        measured = measure(result)
        lordosis[sequence].append(nan_if_none(measured.lordosis_deg))
        patient = patient_id(path.stem)
        for level, disc in measured.discs.items():
            graded = gradings.get((patient, level))
            if graded:
                rows.append(
                    (
                        sequence,
                        patient,
                        nan_if_none(disc.slip_percent, abs),
                        nan_if_none(disc.height_index),
                        graded["spondylolisthesis"],
                        graded["narrowing"],
                    )
                )
    summary = {}
    for sequence in SEQUENCES:
        sel = [r for r in rows if r[0] == sequence]
        groups = np.array([r[1] for r in sel])
        slip, dhi = np.array([r[2] for r in sel], float), np.array([r[3] for r in sel], float)
        listhesis, narrowing = np.array([r[4] for r in sel]), np.array([r[5] for r in sel])
        angles = np.array(lordosis[sequence], float)
        angles = angles[~np.isnan(angles)]
        summary[sequence] = {
            "discs": len(sel),
            "slip_measured": float(np.mean(~np.isnan(slip))),
            "slip_vs_spondylolisthesis": _auc_row(listhesis, slip, groups),
            "height_index_vs_narrowing": _auc_row(narrowing, -dhi, groups),
            "lordosis_deg": {
                "n": int(angles.size),
                "median": float(np.median(angles)),
                "p10_p90": [float(v) for v in np.percentile(angles, [10, 90])],
            },
        }
    path = save("measurements", summary)

    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="Measurements vs the SPIDER expert's gradings (mid-sagittal slices, sequences the model never saw)"
    )
    for column in (
        "sequence",
        "discs",
        "slip measured",
        "AUC |slip %| vs listhesis",
        "AUC -DHI vs narrowing",
        "lordosis median [p10, p90]",
    ):
        table.add_column(column)
    for sequence, s in summary.items():
        a, b = s["slip_vs_spondylolisthesis"], s["height_index_vs_narrowing"]
        lo = s["lordosis_deg"]
        table.add_row(
            sequence,
            str(s["discs"]),
            f"{100 * s['slip_measured']:.0f}%",
            f"{a['auc']:.2f} [{a['auc_ci95'][0]:.2f}, {a['auc_ci95'][1]:.2f}] ({a['positives']} pos)",
            f"{b['auc']:.2f} [{b['auc_ci95'][0]:.2f}, {b['auc_ci95'][1]:.2f}] ({b['positives']} pos)",
            f"{lo['median']:.0f}° [{lo['p10_p90'][0]:.0f}, {lo['p10_p90'][1]:.0f}]",
        )
    Console().print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
