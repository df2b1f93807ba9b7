"""Which measurements may state a finding? Each one against the SPIDER expert, on every MRI sequence.

Every mid-sagittal T1, T2 and T2 SPACE image of the 179 SPIDER training patients is segmented and measured
as ``lumbar analyze`` does; each disc is joined to the expert's grading by level (measurements are not
learned, so every patient may be used). Per finding:

- spondylolisthesis: the slip's size (``|slip_mm|``) as a score for the expert's spondylolisthesis (0/1);
- disc narrowing: the disc height index (lower = narrower) as a score for the expert's narrowing (0/1);
- vertebral height loss: how often Genant >= 2 is stated (SPIDER has no fracture grade: this is an upper bound of
  its false-positive rate, not a validation);
- central stenosis: SPIDER has no stenosis grade; the canal diameters are summarised only;
- lordosis: SPIDER has no expert angle; the readings' spread is summarised, and the images whose reading lies above
  ``MAX_LORDOSIS_DEG`` (taken as a misread, not reported) are named.

For a scored finding: ROC AUC, and the operating point where at most 5% of the expert's negative discs are called
(chosen on all patients) with its sensitivity and false-positive rate; then the same rule chosen on half of the
patients and applied to the other half (cross-fitted), the figure to trust; all with patient-bootstrap 95% CIs. A
finding is *validated* when its AUC's CI lies above 0.5 and, cross-fitted, its point still finds at least 10% of the
expert's positives and at least half of what it states is what the expert graded (precision >= 0.5). ``--ship``
writes the points into ``lumbar/validation.json``: only validated findings reach a report's Summary. Prints a
table, writes ``bench/results/measurements.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, SPIDER_SEQUENCES, save, spider_midsag_in_mm
from validation import MAX_FPR, scored_finding, ship, why_not

from lumbar.datasets.grading import read_gradings
from lumbar.findings import LORDOSIS_MISREAD
from lumbar.io.spider import patient_id, read_overview_spacing, series_name
from lumbar.pipelines.mr_sagittal import measure, segment

SPIDER = SHARED_DATA / "spider"
LORDOTIC_LEVELS = ("L2/L3", "L3/L4", "L4/L5")
REFERENCE = (
    "SPIDER expert gradings (van der Graaf et al. 2024), 179 patients, mid-sagittal T1, T2 and T2 SPACE, "
    "each disc joined by level"
)


def nan_if_none(value: float | None, then=float) -> float:
    """A measurement as a float for the statistics: NaN where it could not be measured."""
    return float("nan") if value is None else float(then(value))


def measure_all() -> tuple[list[dict], list[dict], list[dict]]:
    """Per disc (joined to a grading), per vertebra and per image (its quality gate): what ``lumbar analyze``
    measures on every image."""
    gradings = read_gradings(SPIDER / "radiological_gradings.csv")
    discs, vertebrae, images = [], [], []
    for path, sequence, image, excluded in spider_midsag_in_mm():
        if excluded:
            images.append({"series": path.stem, "sequence": sequence, "excluded": excluded})
            continue
        seg = segment(image)
        measured = measure(seg)
        patient = patient_id(path.stem)
        gate = [*seg.gate, *measured.review]  # as `lumbar analyze` gates: a misread measurement withholds too
        gated = bool(gate)
        images.append(
            {
                "series": path.stem,
                "sequence": sequence,
                "gate": gate,
                "lordosis_deg": nan_if_none(measured.lordosis_deg),
                "lordosis_bound": any(reason.startswith(LORDOSIS_MISREAD) for reason in measured.review),
            }
        )
        for level, disc in measured.discs.items():
            graded = gradings.get((patient, level))
            if graded:
                discs.append(
                    {
                        "sequence": sequence,
                        "patient": patient,
                        "level": level,
                        "slip_mm": nan_if_none(disc.slip_mm),
                        "height_index": nan_if_none(disc.height_index),
                        "canal_ap_mm": nan_if_none(disc.canal_ap_mm),
                        "meyerding": disc.meyerding_grade,
                        "spondylolisthesis": graded["spondylolisthesis"],
                        "narrowing": graded["narrowing"],
                        "gated": gated,
                    }
                )
        for level, vertebra in measured.vertebrae.items():
            vertebrae.append(
                {"sequence": sequence, "patient": patient, "level": level, "genant": vertebra.genant_grade}
            )
    return discs, vertebrae, images


def validate(discs: list[dict], vertebrae: list[dict], images: list[dict]) -> dict:
    """Every finding's record: scored findings on all sequences pooled and per sequence (on the images that pass
    the quality gate: only those can state a finding), rates for the others."""
    out: dict = {}
    stated_from = [d for d in discs if not d["gated"]]
    negatives = [d for d in discs if d["spondylolisthesis"] == 0]
    slips = np.array([d["slip_mm"] for d in negatives], float)
    out["slip_at_expert_negatives"] = {
        "discs": len(negatives),
        "slip_3mm_or_more": float(np.mean(np.abs(slips) >= 3)),
        "anterolisthesis_3mm_or_more": float(np.mean(slips >= 3)),
        "meyerding_1_or_more": float(np.mean([(d["meyerding"] or 0) >= 1 for d in negatives])),
        # where the |slip| comes from: retrolisthesis at the lordotic levels (the measurement's known bias there),
        # and how far the measured slips of these normal discs sit from zero (their median)
        "retrolisthesis_3mm_or_more_by_level": {
            level: {
                "measured": sum(not np.isnan(d["slip_mm"]) for d in negatives if d["level"] == level),
                "retro_3mm_or_more": sum(d["slip_mm"] <= -3 for d in negatives if d["level"] == level),
                "median_slip_mm": float(np.nanmedian([d["slip_mm"] for d in negatives if d["level"] == level])),
            }
            for level in ("L3/L4", "L4/L5")
        },
    }
    # the sacrum is unlabelled on MRI, so the commonest level of a slip is rarely measured at all
    lumbosacral = [d for d in discs if d["level"] == "L5/S1"]
    out["slip_at_l5s1"] = {
        "disc_images": len(lumbosacral),
        "measured": sum(not np.isnan(d["slip_mm"]) for d in lumbosacral),
        "expert_positive": sum(d["spondylolisthesis"] == 1 for d in lumbosacral),
        "expert_positive_measured": sum(
            d["spondylolisthesis"] == 1 and not np.isnan(d["slip_mm"]) for d in lumbosacral
        ),
        "all_expert_positive": sum(d["spondylolisthesis"] == 1 for d in discs),
    }
    for name, label, score in (
        ("slip", "spondylolisthesis", lambda d: abs(d["slip_mm"])),
        ("disc_narrowing", "narrowing", lambda d: -d["height_index"]),
    ):
        rows = {"all": stated_from, **{s: [d for d in stated_from if d["sequence"] == s] for s in SPIDER_SEQUENCES}}
        out[name] = {
            part: scored_finding(
                np.array([d[label] for d in sel]),
                np.array([score(d) for d in sel]),
                np.array([d["patient"] for d in sel]),
                np.array([d["level"] for d in sel]),
            )
            for part, sel in rows.items()
        }
    graded = [v for v in vertebrae if v["genant"] is not None]
    out["vertebral_height_loss"] = {
        "vertebrae": len(vertebrae),
        "graded": len(graded),
        "genant_2_or_more": float(np.mean([v["genant"] >= 2 for v in graded])) if graded else float("nan"),
        "genant_2_or_more_of_all": float(np.mean([(v["genant"] or 0) >= 2 for v in vertebrae])),
    }
    out["quality_gate"] = {
        sequence: {
            "images": len(sel),
            "summary_withheld": float(np.mean([bool(i["gate"]) for i in sel])) if sel else float("nan"),
        }
        for sequence in ("all", *SPIDER_SEQUENCES)
        for sel in [[i for i in images if sequence in ("all", i["sequence"]) and "gate" in i]]
    }
    out["excluded_images"] = [f"{i['series']}: {i['excluded']}" for i in images if "excluded" in i]
    # SPIDER has no expert angle: the readings' spread, and what MAX_LORDOSIS_DEG takes as a misread
    lordosis = np.array([i["lordosis_deg"] for i in images if "gate" in i], float)
    lordosis = lordosis[~np.isnan(lordosis)]
    out["lordosis"] = {
        "images": sum("gate" in i for i in images),
        "measured": int(lordosis.size),
        "percentiles_1_50_99": [float(np.percentile(lordosis, q)) for q in (1, 50, 99)] if lordosis.size else [],
        "max_reported": float(lordosis.max()) if lordosis.size else float("nan"),
        "above_bound": sorted(i["series"] for i in images if i.get("lordosis_bound")),
    }
    canal = np.array([d["canal_ap_mm"] for d in discs if "L" in d["level"].split("/")[0]], float)
    canal = canal[~np.isnan(canal)]
    out["central_stenosis"] = {
        "lumbar_discs_measured": int(canal.size),
        "canal_ap_mm_p5_median": [float(np.percentile(canal, 5)), float(np.median(canal))] if canal.size else [],
        "below_10mm": float(np.mean(canal < 10)) if canal.size else float("nan"),
    }
    return out


def shipped_record(results: dict) -> dict:
    """What ``lumbar/validation.json`` holds: per finding, whether it may reach a Summary and at which point."""
    findings = {}
    for name, score, unit in (("slip", "|slip_mm|", "mm"), ("disc_narrowing", "-height_index", "")):
        r = results[name]["all"]
        findings[name] = {
            "validated": r["validated"],
            "score": score,
            "unit": unit,
            "threshold": r["threshold"],
            **{k: r[k] for k in ("auc", "auc_ci95", "level_only_auc", "n_positive", "n_negative")},
            "false_positive_rate": r["cross_fitted"]["false_positive_rate"],
            "sensitivity": r["cross_fitted"]["sensitivity"],
            "precision": r["cross_fitted"]["precision"],
            "in_sample_ci95": {k: r[f"{k}_ci95"] for k in ("false_positive_rate", "sensitivity")},
            "why": "" if r["validated"] else why_not(r),
        }
    height = results["vertebral_height_loss"]
    findings["vertebral_height_loss"] = {
        "validated": False,
        "why": f"SPIDER has no expert fracture grade; Genant >= 2 is given to {height['genant_2_or_more']:.1%} of the "
        "vertebrae that can be graded",
    }
    findings["central_stenosis"] = {"validated": False, "why": "SPIDER has no expert stenosis grade"}
    findings["lordosis"] = {"validated": False, "why": "SPIDER has no expert lordosis angle"}
    return {
        "reference": REFERENCE,
        "short_reference": "the SPIDER expert (179 patients; T1, T2, T2 SPACE)",
        "max_false_positive_rate": MAX_FPR,
        "rates": "cross-fitted: the point chosen on half of the patients, measured on the other half; counts are disc "
        "images (a disc seen on T1, T2 and T2 SPACE counts three times), of images that pass the quality gate",
        "command": "python bench/measurements.py --ship",
        "findings": findings,
    }


def expert_mask_slips() -> dict:
    """The slip read on the expert's own outlines: every T2 SPACE series with masks (``spider/t2space``), its levels
    named by this project's labelling, the slip read on the mid-sagittal slice and those within ``SLIP_SLAB_MM`` as
    ``lumbar analyze`` reads it; per lordotic level, the median over the discs the expert grades without a slip (no
    network involved: what the definition reads on these outlines)."""
    import csv

    from PIL import Image

    from lumbar.io.spider import spider_to_classes
    from lumbar.labels import CANAL_LABEL
    from lumbar.tasks.levels import label_levels, mid_sagittal_index
    from lumbar.tasks.measurements import SLIP_SLAB_MM, measure_spine

    folder = SPIDER / "t2space" / "masks"
    pixel = read_overview_spacing(SPIDER / "overview.csv")
    with open(SPIDER / "overview.csv", newline="") as overview:
        between = {row["new_file_name"]: float(row["SpacingBetweenSlices"]) for row in csv.DictReader(overview)}
    gradings = read_gradings(SPIDER / "radiological_gradings.csv")
    by_series: dict[str, list[Path]] = {}
    for path in folder.glob("*.png"):
        by_series.setdefault(series_name(path.stem), []).append(path)
    slips: dict[str, list[float]] = {level: [] for level in LORDOTIC_LEVELS}
    for series, paths in sorted(by_series.items()):
        paths.sort(key=lambda p: int(p.stem.rsplit("slice", 1)[1]))
        planes = [np.asarray(Image.open(p).convert("L")) for p in paths]
        if series not in pixel or series not in between or len({q.shape for q in planes}) > 1:
            continue
        spacing = (between[series], *pixel[series])
        classes = spider_to_classes(np.stack(planes))
        levels = label_levels(classes, spacing)
        mid, reach = mid_sagittal_index(classes), max(0, round(SLIP_SLAB_MM / spacing[0]))
        slab = levels.instances[max(0, mid - reach) : mid + reach + 1]
        measured = measure_spine(levels.instances[mid], levels.levels, spacing[1:], CANAL_LABEL, slab=slab)
        for level in LORDOTIC_LEVELS:
            disc, graded = measured.discs.get(level), gradings.get((patient_id(series), level))
            if disc is not None and disc.slip_mm is not None and graded and graded["spondylolisthesis"] == 0:
                slips[level].append(disc.slip_mm)
    return {
        level: {"discs": len(v), "median_slip_mm": float(np.median(v)) if v else None} for level, v in slips.items()
    }


def main() -> None:
    if not (SPIDER / "midsag").is_dir():
        print(f"skipped: {SPIDER / 'midsag'} not found")
        return
    discs, vertebrae, images = measure_all()
    results = validate(discs, vertebrae, images)
    results["slip_at_expert_negatives"]["on_expert_masks"] = expert_mask_slips()
    path = save("measurements", {"findings": results, "discs": discs, "images": images})
    if "--ship" in sys.argv:
        ship("measurements", shipped_record(results))

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Measured findings vs the SPIDER expert (operating point: <= {MAX_FPR:.0%} false positives)")
    for column in (
        "finding",
        "sequence",
        "discs (pos)",
        "measured",
        "AUC [95% CI]",
        "level-only AUC",
        "threshold",
        "sens / FPR",
        "cross-fitted sens / FPR / precision",
        "validated",
    ):
        table.add_column(column)
    for name in ("slip", "disc_narrowing"):
        for part, r in results[name].items():
            table.add_row(
                name,
                part,
                f"{r['n_positive'] + r['n_negative']} ({r['n_positive']})",
                f"{r['measured_at']:.0%}",
                f"{r['auc']:.2f} [{r['auc_ci95'][0]:.2f}, {r['auc_ci95'][1]:.2f}]",
                f"{r['level_only_auc']:.2f}",
                f"{r['threshold']:.2f}",
                f"{r['sensitivity']:.2f} / {r['false_positive_rate']:.3f}",
                f"{r['cross_fitted']['sensitivity']:.2f} / {r['cross_fitted']['false_positive_rate']:.3f} / "
                f"{r['cross_fitted']['precision']:.2f}",
                "yes" if r["validated"] else "no",
            )
    console = Console()
    console.print(table)
    h, c, q = results["vertebral_height_loss"], results["central_stenosis"], results["quality_gate"]
    n, lo = results["slip_at_expert_negatives"], results["lordosis"]
    console.print(
        f"Genant >= 2 given to {h['genant_2_or_more']:.1%} of the {h['graded']} vertebrae that could be graded "
        f"({h['genant_2_or_more_of_all']:.1%} of all {h['vertebrae']}); canal AP p5/median "
        f"{c['canal_ap_mm_p5_median']} mm, < 10 mm at {c['below_10mm']:.1%} of lumbar discs. Where the expert "
        f"grades no spondylolisthesis: |slip| >= 3 mm at {n['slip_3mm_or_more']:.1%}, anterolisthesis >= 3 mm at "
        f"{n['anterolisthesis_3mm_or_more']:.1%}, Meyerding >= 1 at {n['meyerding_1_or_more']:.1%} of discs. Summary "
        f"withheld by the quality gate on {q['all']['summary_withheld']:.0%} of images; lordosis measured on "
        f"{lo['measured']} of {lo['images']} images, 1st/50th/99th percentile "
        f"{', '.join(f'{v:.1f}' for v in lo['percentiles_1_50_99'])} deg, largest reported {lo['max_reported']:.1f}, "
        f"above the bound (not reported): {', '.join(lo['above_bound']) or 'none'}; "
        f"{len(results['excluded_images'])} images excluded (spacing does not fit). Wrote {path}"
    )


if __name__ == "__main__":
    main()
