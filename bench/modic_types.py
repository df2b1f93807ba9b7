"""Can a Modic type be read from its definition, a patient's T1 and T2 side by side? A rule measured, not shipped.

Modic types are defined by the signal of the marrow beside an endplate: type 1 (oedema) dark on T1 and bright on
T2, type 2 (fat) bright on T1, type 3 (sclerosis) dark on both. The grading network never calls type 1 or 3 (4 and
6 of SPIDER's 1240 graded discs; recall 0 in cross-validation). This bench reads, on each SPIDER patient's
mid-sagittal T1 and T2 pictures segmented as ``lumbar analyze`` segments them, every graded disc's two endplate
bands (the vertebra 1-7 mm from the disc, across the disc's middle 80% front to back, in the disc's own straightened
crop) against the series' normal marrow (the median of the bodies' cores, 10-16 mm from the discs); each band's log
ratio is taken relative to the median of the bands of discs the expert graded Modic 0 on other patients (the
normal endplate zone, partial volume of the cortex included). The rule, fixed from the definition before any
result was seen: the side whose T1 deviates most; T1 above normal: type 2; else T2 above normal: type 1; else 3.

Printed, for discs the expert graded Modic 1-3 and that have both a T1 and a T2 picture: how many of each type the
rule types right, beside "always type 2" (the majority type) and the shipped network's most likely type among 1-3
(in-sample: it was trained on these patients, which favours it). A disc with no side whose bands both pictures show
is left untyped by the rule and counts as wrong. ``python bench/modic_types.py`` (about six
minutes on 2 cores) writes bench/results/modic_types.json and its summary to bench/claims/.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.ndimage import distance_transform_edt

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.datasets.grading import read_graded_series, read_gradings
from lumbar.io.spider import read_overview_spacing
from lumbar.pipelines.mr_sagittal import grade_series, grading_model
from lumbar.tasks.disc_crops import crop_disc, crop_labels

SPIDER = SHARED_DATA / "spider"
BAND_MM, CORE_MM = (1.0, 7.0), (10.0, 16.0)  # from the disc's edge into the vertebra


def endplate_signals(series) -> list[dict]:
    """Per graded disc of one segmented series: mean signal of the upper and lower endplate bands and cores."""
    seg = series.segmentation
    mid = seg.mid_slice
    picture, spacing = seg.image.sagittal_slices()[mid], seg.image.sagittal_spacing_mm()
    instances = seg.levels.instances[mid]
    vertebrae = {lv.name: lv.label for lv in seg.levels.vertebrae}
    rows = []
    for disc in seg.levels.discs:
        crop, labels = crop_disc(picture, instances, disc, spacing), crop_labels(instances, disc, spacing)
        if disc.name not in series.grades or crop is None or not (labels.pixels == disc.label).any():
            continue
        on_disc = labels.pixels == disc.label
        distance = distance_transform_edt(~on_disc) * labels.mm_per_pixel
        columns = np.nonzero(on_disc.any(0))[0]
        trim = 0.1 * (columns.max() - columns.min())
        across = np.zeros(on_disc.shape, bool)
        across[:, int(columns.min() + trim) : int(columns.max() - trim) + 1] = True
        row = {"series": series.series, "patient": series.patient, "sequence": series.sequence, "level": disc.name}
        for side, name in zip("ul", disc.name.split("/")):
            bone = (labels.pixels == vertebrae.get(name, -1)) & across
            for region, (near, far) in (("band", BAND_MM), ("core", CORE_MM)):
                inside = bone & (distance > near) & (distance <= far)
                row[f"{region}_{side}"] = float(crop.pixels[inside].mean()) if inside.sum() >= 5 else float("nan")
        row["modic"] = series.grades[disc.name]["modic"]
        rows.append(row)
    return rows


def log_ratios(rows: list[dict]) -> None:
    """Each band's log ratio to its series' normal marrow (median core), in place."""
    by_series = defaultdict(list)
    for r in rows:
        by_series[r["series"]].append(r)
    for members in by_series.values():
        cores = np.array([r[f"core_{s}"] for r in members for s in "ul"])
        normal = np.nanmedian(cores) if np.isfinite(cores).any() else float("nan")
        for r in members:
            for s in "ul":
                band = r[f"band_{s}"]
                r[f"log_{s}"] = float(np.log(band / normal)) if band > 0 and normal > 0 else float("nan")


def rule_type(t1: dict, t2: dict, normal_t1: float, normal_t2: float) -> int | None:
    """The definition's type from one disc's T1 and T2 rows, or None where no side has both bands."""
    sides = {
        s: (t1[f"log_{s}"] - normal_t1, t2[f"log_{s}"] - normal_t2)
        for s in "ul"
        if np.isfinite([t1[f"log_{s}"], t2[f"log_{s}"]]).all()
    }
    if not sides:
        return None
    on_t1, on_t2 = sides[max(sides, key=lambda s: abs(sides[s][0]))]
    return 2 if on_t1 > 0 else 1 if on_t2 > 0 else 3


def normal_zone(rows: list[dict], patient: str) -> tuple[float, float]:
    """The median log ratio of the T1 and of the T2 endplate bands of discs graded Modic 0 on other patients."""
    return tuple(
        float(
            np.nanmedian(
                [
                    r[f"log_{s}"]
                    for r in rows
                    if r["sequence"] == q and r["modic"] == 0 and r["patient"] != patient
                    for s in "ul"
                ]
            )
        )
        for q in ("t1", "t2")
    )


def main() -> None:
    if not (SPIDER / "midsag").is_dir():
        print(f"skipped: no SPIDER mid-sagittal pictures under {SPIDER}")
        return
    gradings = read_gradings(SPIDER / "radiological_gradings.csv")
    spacing = read_overview_spacing(SPIDER / "overview.csv")
    model = grading_model()
    rows, network = [], {}
    for path in sorted((SPIDER / "midsag").glob("*.png")):
        if not path.stem.endswith(("_t1", "_t2")):
            continue
        (series,) = read_graded_series([path], gradings, spacing)
        rows += endplate_signals(series)
        for level, p in grade_series(series.segmentation, model).probabilities.items():
            network[(series.series, level)] = np.asarray(p["modic"], float)
    log_ratios(rows)
    pairs = defaultdict(dict)
    for r in rows:
        pairs[(r["patient"], r["level"])][r["sequence"]] = r
    typed, normals = [], {}
    for (patient, level), both in sorted(pairs.items()):
        if {"t1", "t2"} - set(both) or both["t1"]["modic"] == 0:
            continue
        if patient not in normals:  # one patient's discs share it
            normals[patient] = normal_zone(rows, patient)
        rule = rule_type(both["t1"], both["t2"], *normals[patient])
        probabilities = [network.get((both[q]["series"], level)) for q in ("t1", "t2")]
        mean = np.mean([p for p in probabilities if p is not None], axis=0)
        typed.append(
            {
                "patient": patient,
                "level": level,
                "modic": both["t1"]["modic"],
                "rule": rule,
                "network": int(np.argmax(mean[1:]) + 1),
            }
        )
    summary = {}
    for reader in ("rule", "network", "always_2"):
        right = {}
        for k in (1, 2, 3):
            discs = [t for t in typed if t["modic"] == k]
            got = [2 if reader == "always_2" else t[reader] for t in discs]
            right[str(k)] = {"discs": len(discs), "typed_right": int(sum(g == k for g in got))}
        recalls = [v["typed_right"] / v["discs"] for v in right.values() if v["discs"]]
        summary[reader] = {"by_type": right, "balanced_typing_accuracy": float(np.mean(recalls))}
    path = save("modic_types", {"summary": summary, "discs_typed": len(typed), "rows": typed})
    for reader, s in summary.items():
        counts = ", ".join(f"type {k}: {v['typed_right']}/{v['discs']}" for k, v in s["by_type"].items())
        print(f"{reader:9s} {counts}; balanced {s['balanced_typing_accuracy']:.2f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
