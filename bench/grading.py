"""Grading benchmark: the shipped model's cross-validated figures (from its training record) and its speed.

The accuracy figures are those of ``lumbar train grading`` (patient 5-fold cross-validation, recorded in
``lumbar/models/weights/grading.json``), for series graded alone and for each disc graded from all of its
patient's series (``--same-patient``); this script prints them as tables, times grading and evidence maps
for one whole study on the CPU (what ``lumbar analyze`` spends on them: target 1.5 s on 2 cores), measures where the
evidence maps' mass lies on real SPIDER slices (on the disc, on the vertebrae beside it, elsewhere; beside the shares
of the crop those regions cover, which is what a map spread evenly would give), and writes
``bench/results/grading.json`` and ``bench/claims/grading.json``.

    python bench/grading.py [--every K]   # evidence on every K-th mid-sagittal SPIDER slice (default 6)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save, timed

from lumbar.io import read_image
from lumbar.io.spider import patient_id, read_overview_spacing
from lumbar.metrics import bootstrap_ci
from lumbar.models.registry import available_models, load_model
from lumbar.pipelines.mr_sagittal import (
    evidence_maps,
    evidence_regions,
    grade_series,
    grades_and_evidence,
    segment,
    series_grades,
)
from lumbar.tasks.disc_crops import CROP_SHAPE
from lumbar.tasks.grading import evidence_share, hottest_region

SPIDER = SHARED_DATA / "spider"
REGIONS = ("disc", "vertebrae", "canal", "elsewhere")


def read_spider(path: Path, spacing: dict):
    found = spacing.get(path.stem)
    return read_image(path, spacing_mm=found[0] if found else None)


def study_speed(model) -> dict:
    """Grades and evidence maps of one whole study, as ``lumbar analyze`` makes them (segmentation not counted):
    a real SPIDER T2 slice where ../shared is present, else the demo phantom."""
    path = SPIDER / "midsag" / "100_t2.png"
    if path.is_file():
        image, source = read_spider(path, read_overview_spacing(SPIDER / "overview.csv")), "SPIDER 100_t2"
    else:
        from lumbar.demo import demo_phantom

        image, source = demo_phantom().image, "the demo phantom"
    seg = segment(image)
    grading = grade_series(seg, model)
    _, evidence = grades_and_evidence(grading, model)
    timing = timed(lambda: grades_and_evidence(grade_series(seg, model), model))
    return {"study": source, "discs": len(grading.crops), "maps": len(evidence), **timing}


def evidence_rows(model, every: int) -> list[dict]:
    """Every evidence map ``lumbar analyze`` draws for every ``every``-th mid-sagittal SPIDER slice, with the share
    of its mass and of its crop's area on each region."""
    spacing = read_overview_spacing(SPIDER / "overview.csv")
    rows = []
    for path in sorted((SPIDER / "midsag").glob("*.png"))[::every]:
        seg = segment(read_spider(path, spacing))
        grading = grade_series(seg, model)
        by_level = evidence_regions(seg, list(grading.crops))
        for level, by_grade in evidence_maps(grading, series_grades(grading, model), model).items():
            regions = by_level[level]
            area = evidence_share(np.ones(CROP_SHAPE), regions)
            disc_columns = np.flatnonzero(regions["disc"].any(axis=0))
            in_front = (
                regions["elsewhere"]
                & (np.arange(CROP_SHAPE[1]) < (disc_columns.min() if disc_columns.size else 0))[None, :]
            )
            for grade, heat in by_grade.items():
                share = evidence_share(heat, {**regions, "in_front": in_front})
                rows.append(
                    {"series": path.stem, "patient": patient_id(path.stem), "level": level, "grade": grade}
                    | {f"{r}_mass": share[r] for r in REGIONS}
                    | {f"{r}_area": area[r] for r in REGIONS}
                    | {"in_front_mass": share["in_front"], "hottest": hottest_region(heat, regions)}
                )
    return rows


def evidence_summary(rows: list[dict]) -> dict:
    """Mean shares with 95% CIs (patient bootstrap), over every map and per grade."""

    def summarise(chosen: list[dict]) -> dict:
        groups = np.array([r["patient"] for r in chosen])
        out = {"maps": len(chosen)}
        for region in REGIONS:
            for kind in ("mass", "area"):
                mean, lo, hi = bootstrap_ci(np.array([r[f"{region}_{kind}"] for r in chosen]), groups)
                out[f"{region}_{kind}"] = [mean, lo, hi]
        near = np.array([r["disc_mass"] + r["vertebrae_mass"] for r in chosen])
        out["disc_and_vertebrae_mass"] = list(bootstrap_ci(near, groups))
        out["in_front_mass"] = list(bootstrap_ci(np.array([r["in_front_mass"] for r in chosen]), groups))
        out["maps_mostly_near"] = float(np.nanmean(near > 0.5))
        out["hottest"] = {r: float(np.mean([c["hottest"] == r for c in chosen])) for r in REGIONS}
        return out

    grades = sorted({r["grade"] for r in rows})
    return {
        "images": len({r["series"] for r in rows}),
        "all": summarise(rows),
        "by_grade": {g: summarise([r for r in rows if r["grade"] == g]) for g in grades},
    }


def _share(mass: list[float], area: list[float]) -> str:
    return f"{mass[0]:.2f} [{mass[1]:.2f}, {mass[2]:.2f}] / {area[0]:.2f}"


def main() -> None:
    if "grading" not in available_models():
        print("skipped: no grading model shipped")
        return
    every = int(sys.argv[sys.argv.index("--every") + 1]) if "--every" in sys.argv else 6
    model = load_model("grading")
    speed = {"grades_and_evidence_one_study": study_speed(model)}
    evidence = {}
    if (SPIDER / "midsag").is_dir():
        rows = evidence_rows(model, every)
        evidence = {"every": every, **evidence_summary(rows), "rows": rows}
    else:
        print(f"evidence maps not measured: no SPIDER slices at {SPIDER / 'midsag'}")
    cv = model.meta["cv"]
    path = save("grading", {"cv": cv, "coverage": model.meta.get("coverage"), "speed": speed, "evidence": evidence})

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
    one = speed["grades_and_evidence_one_study"]
    print(
        f"grades and evidence maps of one study ({one['study']}: {one['discs']} discs, {one['maps']} maps): "
        f"{one['median_s']:.2f} s (median of {one['repeats']})"
    )
    if evidence:
        table = Table(
            title=f"Where the evidence maps' mass lies: {evidence['all']['maps']} maps of {evidence['images']} SPIDER "
            "mid-sagittal slices (mean share [95% CI], patient bootstrap; area = a map spread evenly)"
        )
        for column in (
            "grade",
            "maps",
            *(f"{r} mass / area" for r in REGIONS),
            "in front of the disc",
            "> 50% on disc + vertebrae",
            "hottest pixel on the disc",
        ):
            table.add_column(column)
        for name, m in {"all": evidence["all"], **evidence["by_grade"]}.items():
            table.add_row(
                name,
                str(m["maps"]),
                *(_share(m[f"{r}_mass"], m[f"{r}_area"]) for r in REGIONS),
                f"{m['in_front_mass'][0]:.2f}",
                f"{100 * m['maps_mostly_near']:.0f}%",
                f"{100 * m['hottest']['disc']:.0f}%",
            )
        console.print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
