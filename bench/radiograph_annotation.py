"""How far the AASCE expert's own corners repeat: the floor under any corner error measured against them.

The 15 test films of ``xray_ap`` that re-crop a training radiograph (``test_overlaps_training.csv``; 4 of them name
two training films, which are the same radiograph annotated twice) carry landmarks placed again, independently.
Per pair, the training film's 68 corners are moved onto the test film's by the least-squares similarity (the crop
and scale taken out; ``metrics.similarity_fit``), fitted over the levels both annotations share with the training
quads shifted by -2 ... 2 levels (an annotator may have started a level lower), the shift kept whose fit leaves
the smallest median corner difference. The differences are then measured as the network's corner error is
(``metrics.corner_errors``: bodies matched by the nearest centre within half the test body's height; in pixels
and % of that body's height). Pairs fitted level for level (shift 0) give the floor; the others are listed.

Run: ``python bench/radiograph_annotation.py``. Writes ``bench/results/radiograph_annotation.json`` and the claims.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.datasets.xray_ap import Radiograph, read_part
from lumbar.metrics import corner_errors, similarity_fit

DATA = SHARED_DATA / "xray_ap"
SHIFTS = range(-2, 3)


def pairs(test: list[Radiograph], training: list[Radiograph]) -> list[tuple[Radiograph, Radiograph]]:
    """(test film, training film) for every training film the overlap list names for a test film."""
    by_name = {r.name: r for r in training}
    tests = {r.name: r for r in test}
    out = []
    with open(DATA / "test_overlaps_training.csv", newline="") as f:
        for row in csv.DictReader(f):
            for name in row["same_radiograph_in_training"].split(";"):
                out.append((tests[row["test_image"]], by_name[name.strip()]))
    return out


def compare(test: Radiograph, training: Radiograph) -> dict:
    """The training corners moved onto the test film at the level shift that fits best, and what is left."""
    best = None
    for shift in SHIFTS:
        t_levels = np.arange(17)
        keep = (t_levels + shift >= 0) & (t_levels + shift < 17)
        target = test.corners[t_levels[keep]].reshape(-1, 2)
        source = training.corners[t_levels[keep] + shift].reshape(-1, 2)
        # every training corner moved by the fit over the shared levels, so bodies outside them count too
        everything = similarity_fit(source, target, training.corners.reshape(-1, 2))
        pixels, percent, missed = corner_errors(test.corners, everything.reshape(17, 4, 2))
        candidate = {
            "test_image": test.name,
            "training_image": training.name,
            "level_shift": shift,
            "corner_px_median": float(np.median(pixels)),
            "corner_pct_height_median": float(np.median(percent)),
            "bodies_unmatched": missed,
            "corner_pct": percent.tolist(),
        }
        if best is None or candidate["corner_pct_height_median"] < best["corner_pct_height_median"]:
            best = candidate
    return best


def main() -> None:
    if not (DATA / "test_overlaps_training.csv").is_file():
        sys.exit(f"skipped: {DATA} has no test_overlaps_training.csv (the AASCE radiographs live in ../shared/data)")
    rows = [compare(t, r) for t, r in pairs(read_part(DATA, "test"), read_part(DATA, "training"))]
    level_for_level = [r for r in rows if r["level_shift"] == 0]
    pooled = np.concatenate([r["corner_pct"] for r in level_for_level]) if level_for_level else np.array([])
    payload = {
        "pairs": len(rows),
        "pairs_level_for_level": len(level_for_level),
        "level_for_level": {
            "corner_pct_height_median_pooled": float(np.median(pooled)) if pooled.size else None,
            "corner_pct_height_median_per_pair": sorted(r["corner_pct_height_median"] for r in level_for_level),
            "corner_px_median_per_pair": sorted(r["corner_px_median"] for r in level_for_level),
        },
        "all_pairs_corner_pct_height_median_pooled": float(np.median(np.concatenate([r["corner_pct"] for r in rows]))),
        "other_shifts": sorted(
            (r["level_shift"], round(r["corner_pct_height_median"], 1)) for r in rows if r["level_shift"] != 0
        ),
        "rows": [{k: v for k, v in r.items() if k != "corner_pct"} for r in rows],
    }
    print(f"{'test film':36s} {'training film':36s} {'shift':>5s} {'px':>6s} {'% height':>9s}")
    for r in rows:
        print(
            f"{r['test_image']:36s} {r['training_image']:36s} {r['level_shift']:5d} {r['corner_px_median']:6.1f} "
            f"{r['corner_pct_height_median']:9.1f}"
        )
    if pooled.size:
        print(
            f"level for level: {len(level_for_level)} of {len(rows)} pairs, median corner difference "
            f"{np.median(pooled):.1f}% of a body's height (pooled); all pairs at their best shift "
            f"{payload['all_pairs_corner_pct_height_median_pooled']:.1f}%"
        )
    save("radiograph_annotation", payload)


if __name__ == "__main__":
    main()
