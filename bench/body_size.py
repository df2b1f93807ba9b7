"""Vertebral body size on SPIDER's adults, as lumbar measures it: the reference for the "smaller than an adult's"
review reason (``lumbar.tasks.quality.CHILD_BODY_HEIGHT_MM``, and ``CERVICAL_BODY_HEIGHT_MM`` with
``CERVICAL_BODY_DEPTH_MM``).

For every mid-sagittal SPIDER slice whose listed pixel spacing fits it, the shipped pipeline segments, names and
measures the vertebrae; the per-image medians of the middle heights and of the depths of the named lumbar bodies
(L1-L5) are recorded, and whether the review reason fires. Its bounds must lie below every adult measured here, so
that it never fires on SPIDER.
``python bench/body_size.py`` (about 15 min on 2 cores) prints the distribution and writes
bench/results/body_size.json and its summary to bench/claims/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save, spider_midsag_in_mm

from lumbar.pipelines.mr_sagittal import measure, segment
from lumbar.tasks.quality import (
    CERVICAL_BODY_DEPTH_MM,
    CERVICAL_BODY_HEIGHT_MM,
    CHILD_BODY_HEIGHT_MM,
    median_body_depth_mm,
    median_body_height_mm,
    smaller_than_adult,
)

SPIDER = SHARED_DATA / "spider"


def main() -> None:
    if not SPIDER.is_dir():
        print(f"skipped: {SPIDER} absent")
        return
    rows = []
    for path, _, image, excluded in spider_midsag_in_mm():
        if excluded:
            continue
        seg = segment(image)
        vertebrae = measure(seg).vertebrae
        height, depth = median_body_height_mm(vertebrae), median_body_depth_mm(vertebrae)
        rows.append(
            {
                "series": path.stem,
                "median_lumbar_body_height_mm": height,
                "median_lumbar_body_depth_mm": depth,
                "flagged": smaller_than_adult(vertebrae) is not None,
            }
        )
        print(f"{path.stem}: {height:.1f} mm tall, {depth:.1f} mm deep")
    heights = np.array([r["median_lumbar_body_height_mm"] for r in rows], float)
    depths = np.array([r["median_lumbar_body_depth_mm"] for r in rows], float)
    summary = {
        "images": len(rows),
        "flagged": sum(r["flagged"] for r in rows),
        "child_height_mm": CHILD_BODY_HEIGHT_MM,
        "cervical_height_mm": CERVICAL_BODY_HEIGHT_MM,
        "cervical_depth_mm": CERVICAL_BODY_DEPTH_MM,
        "shorter_and_shallower": int(((heights < CERVICAL_BODY_HEIGHT_MM) & (depths < CERVICAL_BODY_DEPTH_MM)).sum()),
    }
    # the adult nearest to being small both ways: the least, over images, of the larger of its two excesses
    excess = np.fmax(heights - CERVICAL_BODY_HEIGHT_MM, depths - CERVICAL_BODY_DEPTH_MM)
    closest = rows[int(np.nanargmin(excess))]
    summary["closest_both_ways"] = {
        "series": closest["series"],
        "height_mm": closest["median_lumbar_body_height_mm"],
        "depth_mm": closest["median_lumbar_body_depth_mm"],
    }
    for size, values in (("height", heights), ("depth", depths)):
        measured = values[np.isfinite(values)]
        summary[size] = {
            "measured": len(measured),
            "min_mm": float(measured.min()),
            "p1_mm": float(np.percentile(measured, 1)),
            "median_mm": float(np.median(measured)),
        }
    path = save("body_size", {**summary, "rows": rows})
    for size in ("height", "depth"):
        s = summary[size]
        print(
            f"{s['measured']} of {summary['images']} SPIDER mid-sagittal images measured: median lumbar body {size} "
            f"min {s['min_mm']:.1f} mm, 1st percentile {s['p1_mm']:.1f}, median {s['median_mm']:.1f}"
        )
    print(f"flagged: {summary['flagged']} of {summary['images']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
