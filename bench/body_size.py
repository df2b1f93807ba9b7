"""Vertebral body size on SPIDER's adults, as lumbar measures it: the reference for the "smaller than an adult's"
review reason (``lumbar.tasks.quality.CHILD_BODY_HEIGHT_MM``).

For every mid-sagittal SPIDER slice whose listed pixel spacing fits it, the shipped pipeline segments, names and
measures the vertebrae; the per-image median of the middle heights of the named lumbar bodies (L1-L5) is recorded.
The review threshold must lie below every adult median measured here, so that it never fires on SPIDER.
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
from lumbar.tasks.quality import CHILD_BODY_HEIGHT_MM, median_body_height_mm

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
        height = median_body_height_mm(measure(seg).vertebrae)
        rows.append({"series": path.stem, "median_lumbar_body_height_mm": height})
        print(f"{path.stem}: {height:.1f} mm" if height == height else f"{path.stem}: no lumbar body measured")
    heights = np.array([r["median_lumbar_body_height_mm"] for r in rows], float)
    measured = heights[np.isfinite(heights)]
    summary = {
        "images": len(rows),
        "measured": len(measured),
        "min_mm": float(measured.min()),
        "p1_mm": float(np.percentile(measured, 1)),
        "median_mm": float(np.median(measured)),
        "threshold_mm": CHILD_BODY_HEIGHT_MM,
        "flagged": int((measured < CHILD_BODY_HEIGHT_MM).sum()),
    }
    path = save("body_size", {**summary, "rows": rows})
    print(
        f"{summary['measured']} of {summary['images']} SPIDER mid-sagittal images measured: median lumbar body height "
        f"min {summary['min_mm']:.1f} mm, 1st percentile {summary['p1_mm']:.1f}, median {summary['median_mm']:.1f}; "
        f"threshold {CHILD_BODY_HEIGHT_MM} mm flags {summary['flagged']}"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
