"""The canal's diameter at each lumbar disc: against the SPIDER expert's canal outlines, and between sequences.

SPIDER grades no stenosis, but its T2 SPACE series carry the expert's canal outline. Two checks of the measurement
the stenosis grade rests on:

- **against the expert's outline** (30 T2 SPACE series with masks): ``lumbar analyze``'s reading at each lumbar disc
  (our segmentation, our names) beside the same measurement on the expert's masks (named by this project's
  labelling, the canal area from their volume); discs joined by name where the two centroids lie within
  ``MATCH_MM``. Per group of the segmentation network's patient split (trained on, validation, test): mean difference,
  mean absolute difference and 95% limits of agreement (patient-bootstrap CIs), the stenosis grades both readings give
  (linear-weighted kappa), and how many of the expert's discs each reading leaves unmeasured (what the rules cost);
- **between sequences** (the 331 mid-sagittal T1, T2 and T2 SPACE pictures measured by ``bench/measurements.py``):
  a patient's disc read on two sequences is one anatomy read twice, so their difference bounds the reading's
  dependence on the sequence (the network learnt T2 SPACE only); "severe" on one sequence where another reads normal
  or mild is an error on one of them. T1 and T2 pictures are not always the same slice: an upper bound.

Each is computed as this version reads the canal and without its two rules (``MIN_CANAL_PIECE_MM2``,
``CANAL_REACH_MM`` switched off), from the same segmentations. Prints tables, writes ``bench/results/canal.json``.
"""

from __future__ import annotations

import itertools
import math
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, SPIDER_SEQUENCES, save, segmentation_model, spider_midsag_in_mm

from lumbar.image import SpineImage
from lumbar.io import read_image
from lumbar.io.spider import patient_id, read_overview_voxels, spider_to_classes, t2space_series
from lumbar.labels import CANAL_LABEL, LUMBAR_DISCS
from lumbar.metrics import bootstrap_ci, bootstrap_metric_ci, cohen_kappa
from lumbar.pipelines.mr_sagittal import measure, segment
from lumbar.tasks import measurements
from lumbar.tasks.levels import label_levels, mid_sagittal_index
from lumbar.tasks.stenosis import GRADES, grade_at_level, grade_central_stenosis

SPIDER = SHARED_DATA / "spider"
MATCH_MM = 10.0  # our disc and the expert's of the same name lie this close, or they are not the same disc
# without the rules: no piece is a speck, and the canal goes on past every disc (an infinite reach's test always holds)
VARIANTS = {"this version": None, "without the speck and reach rules": (0.0, -math.inf)}


@contextmanager
def canal_rules(rules: tuple[float, float] | None):
    """Measure with ``MIN_CANAL_PIECE_MM2`` and ``CANAL_REACH_MM`` set to ``rules`` (None: as shipped)."""
    kept = measurements.MIN_CANAL_PIECE_MM2, measurements.CANAL_REACH_MM
    if rules is not None:
        measurements.MIN_CANAL_PIECE_MM2, measurements.CANAL_REACH_MM = rules
    try:
        yield
    finally:
        measurements.MIN_CANAL_PIECE_MM2, measurements.CANAL_REACH_MM = kept


def t2space_pairs(network) -> list[dict]:
    """Per T2 SPACE series: our segmentation and the expert's classes on the same display slices."""
    voxels = read_overview_voxels(SPIDER / "overview.csv")
    split = {p: group for group, patients in network.meta["split_patients"].items() for p in patients}
    out = []
    for series, files in t2space_series(SPIDER / "t2space" / "images").items():
        slices = [np.asarray(read_image(f).sagittal_slices()[0]) for f in files]
        masks = [np.asarray(read_image(SPIDER / "t2space" / "masks" / f.name).sagittal_slices()[0]) for f in files]
        rows, cols = min(s.shape[0] for s in slices), min(s.shape[1] for s in slices)
        image = SpineImage.from_sagittal_slices(
            np.stack([s[:rows, :cols] for s in slices]).astype(np.float32), voxels[series], modality="MR"
        )
        seg = segment(image, model=network)
        expert = spider_to_classes(np.stack([m[:rows, :cols] for m in masks]))
        out.append({"series": series, "group": split.get(patient_id(series), "unseen"), "seg": seg, "expert": expert})
    return out


def _expert_measured(expert: np.ndarray, spacing: tuple[float, float, float]):
    levels = label_levels(expert, spacing)
    mid = mid_sagittal_index(expert)
    canal = levels.instances == CANAL_LABEL
    measured = measurements.measure_spine(
        levels.instances[mid], levels.levels, spacing[1:], CANAL_LABEL, canal_volume=canal, lateral_mm=spacing[0]
    )
    return levels, measured


def against_expert(pairs: list[dict]) -> list[dict]:
    """Per lumbar disc: our canal AP and area beside the expert outline's, and the stenosis grades they give."""
    rows = []
    for pair in pairs:
        seg, spacing = pair["seg"], pair["seg"].image.display_spacing_mm()
        ours = measure(seg)
        levels, theirs = _expert_measured(pair["expert"], spacing)
        ours_at = {lv.name: np.array(lv.centroid_mm) for lv in seg.levels.levels}
        theirs_at = {lv.name: np.array(lv.centroid_mm) for lv in levels.levels}
        for name in LUMBAR_DISCS:
            if name not in theirs.discs:
                continue
            mine = ours.discs.get(name)
            joined = mine is not None and np.linalg.norm(ours_at[name] - theirs_at[name]) <= MATCH_MM
            expert = theirs.discs[name]
            rows.append(
                {
                    "series": pair["series"],
                    "group": pair["group"],
                    "level": name,
                    "joined": bool(joined),
                    "ap_mm": mine.canal_ap_mm if joined else None,
                    "expert_ap_mm": expert.canal_ap_mm,
                    "area_mm2": mine.canal_area_mm2 if joined else None,
                    "expert_area_mm2": expert.canal_area_mm2,
                    "grade": grade_at_level(name, mine.canal_ap_mm, mine.canal_area_mm2).grade if joined else None,
                    "expert_grade": grade_at_level(name, expert.canal_ap_mm, expert.canal_area_mm2).grade,
                }
            )
    return rows


def _agreement(rows: list[dict], ours: str, theirs: str) -> dict:
    both = [r for r in rows if r[ours] is not None and r[theirs] is not None]
    diff = np.array([r[ours] - r[theirs] for r in both], float)
    patients = np.array([patient_id(r["series"]) for r in both])
    if not len(both):
        return {"discs": 0}
    mean, low, high = bootstrap_ci(diff, patients)
    mae, mae_low, mae_high = bootstrap_ci(np.abs(diff), patients)
    return {
        "discs": len(both),
        "patients": len(set(patients)),
        "mean_difference": mean,
        "mean_difference_ci95": [low, high],
        "mean_absolute_difference": mae,
        "mean_absolute_difference_ci95": [mae_low, mae_high],
        "limits_of_agreement": [
            float(diff.mean() - 1.96 * diff.std(ddof=1)),
            float(diff.mean() + 1.96 * diff.std(ddof=1)),
        ]
        if len(both) > 1
        else [float("nan")] * 2,
        "expert_median": float(np.median([r[theirs] for r in both])),
    }


def expert_summary(rows: list[dict]) -> dict:
    """Per split group and over all: the diameters' and areas' agreement and the grades'."""
    out = {}
    for group in ("test", "val", "train", "all"):
        sel = [r for r in rows if group in ("all", r["group"])]
        graded = [r for r in sel if r["grade"] not in (None, "unknown") and r["expert_grade"] != "unknown"]
        ours = np.array([GRADES.index(r["grade"]) for r in graded])
        theirs = np.array([GRADES.index(r["expert_grade"]) for r in graded])
        patients = np.array([patient_id(r["series"]) for r in graded])
        out[group] = {
            "patients": len({patient_id(r["series"]) for r in sel}),
            "discs": len(sel),
            "joined": sum(r["joined"] for r in sel),
            "measured": sum(r["ap_mm"] is not None for r in sel),
            "expert_measured": sum(r["expert_ap_mm"] is not None for r in sel),
            "ap_mm": _agreement(sel, "ap_mm", "expert_ap_mm"),
            "area_mm2": _agreement(sel, "area_mm2", "expert_area_mm2"),
            "grades_both": len(graded),
            "grade_exact": float(np.mean(ours == theirs)) if len(graded) else float("nan"),
            "grade_kappa_linear": cohen_kappa(theirs, ours, "linear", [0, 1, 2, 3]) if len(graded) else float("nan"),
            "grade_kappa_ci95": bootstrap_metric_ci(
                lambda a, b: cohen_kappa(a, b, "linear", [0, 1, 2, 3]), [theirs, ours], patients
            ),
            "severe_where_expert_normal_or_mild": int(np.sum((ours == 3) & (theirs <= 1))),
            "severe": int(np.sum(ours == 3)),
            "expert_severe": int(np.sum(theirs == 3)),
        }
    return out


def midsag_readings(network) -> list[tuple[str, str, object]]:
    """Every SPIDER mid-sagittal T1/T2/T2 SPACE picture segmented as ``bench/measurements.py`` does."""
    return [
        (path.stem, sequence, segment(image, model=network))
        for path, sequence, image, excluded in spider_midsag_in_mm()
        if not excluded
    ]


def between_sequences(segs: list[tuple[str, str, object]]) -> tuple[dict, list[dict]]:
    """Per pair of sequences: a patient's disc read on both; per sequence: grades and discs not measurable."""
    rows = []
    for series, sequence, seg in segs:
        for level, disc in measure(seg).discs.items():
            if level in LUMBAR_DISCS:
                rows.append({"series": series, "sequence": sequence, "level": level, "ap_mm": disc.canal_ap_mm})
    by_disc: dict[tuple[str, str], dict[str, float | None]] = {}
    for r in rows:
        by_disc.setdefault((patient_id(r["series"]), r["level"]), {})[r["sequence"]] = r["ap_mm"]
    out: dict = {"pairs": {}, "sequences": {}}
    for a, b in itertools.combinations(SPIDER_SEQUENCES, 2):
        pairs = [(d[a], d[b], p) for (p, _), d in by_disc.items() if d.get(a) is not None and d.get(b) is not None]
        diff = np.array([x - y for x, y, _ in pairs], float)
        grades = [(grade_central_stenosis(x).grade, grade_central_stenosis(y).grade) for x, y, _ in pairs]
        mae, low, high = bootstrap_ci(np.abs(diff), np.array([p for *_, p in pairs]))
        out["pairs"][f"{a} vs {b}"] = {
            "discs": len(pairs),
            "mean_difference": float(diff.mean()) if len(pairs) else float("nan"),
            "mean_absolute_difference": mae,
            "mean_absolute_difference_ci95": [low, high],
            "apart_3mm_or_more": float(np.mean(np.abs(diff) >= 3)) if len(pairs) else float("nan"),
            "severe_against_normal_or_mild": sum("severe" in g and bool({"normal", "mild"} & set(g)) for g in grades),
        }
    for sequence in SPIDER_SEQUENCES:
        sel = [r for r in rows if r["sequence"] == sequence]
        measured = [r["ap_mm"] for r in sel if r["ap_mm"] is not None]
        out["sequences"][sequence] = {
            "discs": len(sel),
            "not_measurable": float(np.mean([r["ap_mm"] is None for r in sel])) if sel else float("nan"),
            "not_measurable_at_l5s1": float(np.mean([r["ap_mm"] is None for r in sel if r["level"] == "L5/S1"])),
            "median_ap_mm": float(np.median(measured)) if measured else float("nan"),
            "severe": float(np.mean([grade_central_stenosis(v).grade == "severe" for v in measured]))
            if measured
            else float("nan"),
        }
    return out, rows


def main() -> None:
    if not (SPIDER / "t2space" / "masks").is_dir() or not (SPIDER / "midsag").is_dir():
        print(f"skipped: {SPIDER} (t2space/masks, midsag) not found")
        return
    network, model = segmentation_model(None)
    pairs, segs = t2space_pairs(network), midsag_readings(network)
    results: dict = {"model": model}
    rows = {}
    for variant, rules in VARIANTS.items():
        with canal_rules(rules):
            disc_rows = against_expert(pairs)
            sequences, midsag_rows = between_sequences(segs)
        results[variant] = {"against_expert": expert_summary(disc_rows), "between_sequences": sequences}
        rows[variant] = {"expert_discs": disc_rows, "midsag_discs": midsag_rows}
    path = save("canal", {**results, "rows": [dict(r, variant=v) for v, x in rows.items() for r in x["expert_discs"]]})
    _print(results, path)


def _ci(x: list[float]) -> str:
    return f"[{x[0]:.2f}, {x[1]:.2f}]"


def _print(results: dict, path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Canal AP at lumbar discs: ours vs the expert's outline (T2 SPACE), by segmentation split")
    for column in (
        "variant",
        "patients",
        "discs (measured / expert's)",
        "mean diff mm",
        "mean |diff| mm",
        "limits of agreement",
        "area |diff| mm²",
        "grade κ (linear)",
        "severe: ours / expert's / ours where theirs normal-mild",
    ):
        table.add_column(column)
    for variant in VARIANTS:
        for group, r in results[variant]["against_expert"].items():
            ap, area = r["ap_mm"], r["area_mm2"]
            table.add_row(
                f"{variant}: {group}",
                str(ap.get("patients", 0)),
                f"{r['discs']} ({r['measured']} / {r['expert_measured']})",
                f"{ap['mean_difference']:+.2f} {_ci(ap['mean_difference_ci95'])}",
                f"{ap['mean_absolute_difference']:.2f} {_ci(ap['mean_absolute_difference_ci95'])}",
                _ci(ap["limits_of_agreement"]),
                f"{area['mean_absolute_difference']:.1f} (expert median {area['expert_median']:.0f})",
                f"{r['grade_kappa_linear']:.2f} {_ci(r['grade_kappa_ci95'])}",
                f"{r['severe']} / {r['expert_severe']} / {r['severe_where_expert_normal_or_mild']}",
            )
    console.print(table)
    table = Table(title="Canal AP at lumbar discs read on two sequences of one patient (SPIDER mid-sagittal)")
    for column in (
        "variant",
        "sequences",
        "discs",
        "mean diff mm",
        "mean |diff| mm",
        ">= 3 mm apart",
        "severe vs normal/mild",
    ):
        table.add_column(column)
    for variant in VARIANTS:
        for pair, r in results[variant]["between_sequences"]["pairs"].items():
            table.add_row(
                variant,
                pair,
                str(r["discs"]),
                f"{r['mean_difference']:+.2f}",
                f"{r['mean_absolute_difference']:.2f} {_ci(r['mean_absolute_difference_ci95'])}",
                f"{r['apart_3mm_or_more']:.1%}",
                str(r["severe_against_normal_or_mild"]),
            )
    console.print(table)
    for variant in VARIANTS:
        seqs = results[variant]["between_sequences"]["sequences"]
        console.print(
            f"{variant}: "
            + "; ".join(
                f"{s} {r['discs']} discs, not measurable {r['not_measurable']:.1%} "
                f"(L5/S1 {r['not_measurable_at_l5s1']:.1%}), "
                f"severe {r['severe']:.1%}, median {r['median_ap_mm']:.1f} mm"
                for s, r in seqs.items()
            )
        )
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
