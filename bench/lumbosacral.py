"""Fields of view cut above the sacrum: are the level names reviewed? The lumbosacral check, measured end to end.

Level names are counted up from the lowest disc found. This bench cuts real mid-sagittal slices so that the image
ends within L5 or within L4 (the lowest disc left is L4/L5 or L3/L4), runs the shipped path on the cut image
(segmentation, level naming with its rule-based flags, the lumbosacral check) and reports how often the names are
sent for review, before the check (rule-based level flags only) and with it. On the slices as acquired, where the
lowest disc is L5/S1, it reports how often the check flags them needlessly.

Slices: SPIDER mid-sagittal T1, T2 and T2 SPACE of the check's test patients (never seen in its training), and the
second centre's T2 slices (``mri_small_t2``; pixel size unknown, so a 300 mm field of view is assumed) that show at
least four discs and the sacrum. Cuts are placed from the discs the network finds on the whole slice; a slice
whose whole-image disc count differs from SPIDER's listed count gets no cuts (its lowest disc may not be L5/S1).
Prints a table, writes ``bench/results/lumbosacral.json`` and ``bench/claims/lumbosacral.json``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.image import ASSUMED_FOV_MM
from lumbar.io import read_image
from lumbar.io.spider import patient_id, read_overview_spacing
from lumbar.metrics import bootstrap_ci
from lumbar.models.registry import load_model
from lumbar.pipelines.mr_sagittal import lumbosacral_flags
from lumbar.tasks.levels import label_levels
from lumbar.tasks.orientation import upright_picture
from lumbar.tasks.segmentation import segment_slices

SPIDER = SHARED_DATA / "spider"
SECOND_CENTRE = SHARED_DATA / "mri_small_t2"
CUTS = (("within L5", 1, 0.35), ("within L5", 1, 0.65), ("within L4", 2, 0.35), ("within L4", 2, 0.65))


def reviewed(slice_: np.ndarray, spacing: tuple[float, float], model) -> tuple[bool, bool, int]:
    """(any rule-based level flag, the lumbosacral flag, the named discs caudal first) for one display slice, as
    analyze runs them."""
    classes = segment_slices(slice_[None], spacing).classes
    levels = label_levels(classes, (1.0, *spacing))
    check = lumbosacral_flags(slice_, spacing, levels, model=model)
    return bool(levels.flags), bool(check), levels.discs


def measure_slice(name: str, group: str, slice_: np.ndarray, spacing, model, listed: int | None) -> list[dict]:
    """Rows for one slice, as acquired and cut within L5 and within L4; none when the network's disc count differs
    from the listed one (its lowest disc may not be L5/S1)."""
    rules, check, discs = reviewed(slice_, spacing, model)
    found = len(discs)
    rows = [
        {
            "series": name,
            "group": group,
            "kind": "as acquired (L5/S1 lowest)",
            "rules": rules,
            "check": check,
            "found": found,
        }
    ]
    if found < 4 or (listed is not None and found != listed):
        return []
    for kind, upper, fraction in CUTS:
        lower_row, upper_row = (discs[k].centroid_mm[0] / spacing[0] for k in (upper - 1, upper))
        cut = int(upper_row + fraction * (lower_row - upper_row))
        rules, check, _ = reviewed(slice_[:cut], spacing, model)
        rows.append(
            {"series": name, "group": group, "kind": f"cut {kind}", "rules": rules, "check": check, "found": found}
        )
    return rows


def spider_rows(model, patients: set[str]) -> list[dict]:
    spacing = read_overview_spacing(SPIDER / "overview.csv")
    with open(SPIDER / "overview.csv", newline="") as overview:
        listed = {row["new_file_name"]: int(row["num_discs"]) for row in csv.DictReader(overview)}
    rows = []
    for path in sorted((SPIDER / "midsag").glob("*.png")):
        if patient_id(path.stem) not in patients or path.stem not in spacing or path.stem not in listed:
            continue
        image = upright_picture(read_image(path, spacing_mm=spacing[path.stem][0]))[0]  # most are stored head down
        group = f"SPIDER {path.stem.split('_', 1)[1]}"
        rows += measure_slice(
            path.stem, group, image.sagittal_slices()[0], image.sagittal_spacing_mm(), model, listed[path.stem]
        )
    return rows


def shows_sacrum(mask: np.ndarray) -> bool:
    """At least four discs, and a labelled body (the top of the sacrum) below the lowest disc."""
    from scipy import ndimage

    discs, n_discs = ndimage.label(mask == 29)
    bodies, n_bodies = ndimage.label(mask == 76)
    if n_discs < 4 or not n_bodies:
        return False
    lowest_disc = max(ndimage.center_of_mass(discs > 0, discs, range(1, n_discs + 1)), key=lambda c: c[0])
    lowest_body = max(ndimage.center_of_mass(bodies > 0, bodies, range(1, n_bodies + 1)), key=lambda c: c[0])
    return lowest_body[0] > lowest_disc[0]


def second_centre_rows(model) -> list[dict]:
    rows = []
    for path in sorted((SECOND_CENTRE / "images").glob("*.png")):
        mask = np.asarray(read_image(SECOND_CENTRE / "masks" / path.name).sagittal_slices()[0])
        if not shows_sacrum(mask):
            continue
        image = upright_picture(read_image(path))[0]
        pixel = ASSUMED_FOV_MM / max(image.sagittal_slices().shape[1:])
        rows += measure_slice(path.stem, "second centre T2", image.sagittal_slices()[0], (pixel, pixel), model, None)
    return rows


def summarise(rows: list[dict]) -> dict:
    table: dict[str, dict] = defaultdict(dict)
    for group in [*sorted({r["group"] for r in rows}), "all"]:
        for kind in sorted({r["kind"] for r in rows}):
            items = [r for r in rows if (group == "all" or r["group"] == group) and r["kind"] == kind]
            if not items:
                continue
            # SPIDER's patient 12 is not the second centre's slice 12: resample each dataset's own patients.
            patients = np.array([f"{r['group'].split()[0]}:{patient_id(r['series'])}" for r in items])
            before = np.array([r["rules"] for r in items], float)
            after = np.array([r["rules"] or r["check"] for r in items], float)
            check = np.array([r["check"] for r in items], float)
            table[group][kind] = {
                "n": len(items),
                "reviewed_rules_only": bootstrap_ci(before, patients),
                "reviewed_with_check": bootstrap_ci(after, patients),
                "check_flagged": bootstrap_ci(check, patients),
            }
    return dict(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a trained lumbosacral ONNX to measure instead of the shipped one")
    args = parser.parse_args()
    model = load_model("lumbosacral", args.model) if args.model else load_model("lumbosacral")
    if not (SPIDER / "midsag").is_dir():
        print(f"skipped: {SPIDER / 'midsag'} not found")
        return
    patients = set(model.meta["split_patients"]["test"])
    rows = spider_rows(model, patients)
    if (SECOND_CENTRE / "images").is_dir():
        rows += second_centre_rows(model)
    table = summarise(rows)
    print(
        f"{'slices':<22} {'field of view':<28} {'n':>4}  "
        f"{'reviewed before':>17}  {'reviewed now':>17}  {'check alone':>17}"
    )
    for group, kinds in table.items():
        for kind, entry in kinds.items():
            cells = [
                f"{100 * m:5.1f}% [{100 * lo:3.0f}-{100 * hi:3.0f}]"
                for m, lo, hi in (entry["reviewed_rules_only"], entry["reviewed_with_check"], entry["check_flagged"])
            ]
            print(f"{group:<22} {kind:<28} {entry['n']:>4}  " + "  ".join(cells))
    result = {
        "model": args.model or "shipped",
        "threshold": model.meta["threshold"],
        "hold_out_sequence": model.meta["config"].get("hold_out_sequence"),
        "table": table,
        "rows": rows,
    }
    save(f"lumbosacral_{Path(args.model).parent.name}" if args.model else "lumbosacral", result)


if __name__ == "__main__":
    main()
