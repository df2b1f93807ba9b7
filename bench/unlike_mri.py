"""Does an image look like the MRI the models learnt from? The bone-rim check on MRI and on CT.

Cortical bone gives no signal on MRI and is the brightest tissue on CT, so the ratio of a vertebral body's rim
intensity to its core's tells them apart (``lumbar/tasks/quality.py``). Prints the ratio's spread on every third
SPIDER mid-sagittal image (MRI) and on every CT volume in ``../shared/data`` analysed as if it were MRI (8-bit
sagittal stacks and HU volumes), and how many of each the check flags. Writes ``bench/results/unlike_mri.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.io import read_image
from lumbar.io.spider import read_overview_spacing
from lumbar.pipelines.mr_sagittal import measured_pixel_mm, segment
from lumbar.tasks.quality import MAX_MRI_RIM_RATIO, bone_rim_ratio


def ratio_of(image) -> float:
    seg = segment(image)
    mid = seg.mid_slice
    pixel_mm = measured_pixel_mm(seg.image)
    ratio = bone_rim_ratio(seg.image.sagittal_slices()[mid], seg.levels.instances[mid], seg.levels.levels, pixel_mm)
    return float("nan") if ratio is None else ratio


def main() -> None:
    spider = SHARED_DATA / "spider"
    if not (spider / "midsag").is_dir():
        print(f"skipped: {spider} not found")
        return
    spacing = read_overview_spacing(spider / "overview.csv")
    mri = [
        ratio_of(read_image(p, spacing_mm=spacing[p.stem][0], modality="MR"))
        for p in sorted((spider / "midsag").glob("*.png"))[::3]
        if p.stem in spacing
    ]
    ct_paths = [
        *sorted((SHARED_DATA / "ct_small").glob("*_ct.nii.gz")),
        *sorted((SHARED_DATA / "ct").rglob("*_ct.nii.gz")),
    ]
    ct = {p.name: ratio_of(read_image(p, modality="MR")) for p in ct_paths}
    measured = np.array([r for r in mri if not np.isnan(r)])
    results = {
        "threshold": MAX_MRI_RIM_RATIO,
        "mri": {
            "images": len(mri),
            "percentiles_0_5_50_95_100": [float(v) for v in np.percentile(measured, [0, 5, 50, 95, 100])],
            "flagged": float(np.mean(measured > MAX_MRI_RIM_RATIO)),
        },
        "ct": ct,
    }
    path = save("unlike_mri", results)
    print(
        f"MRI ({len(mri)} SPIDER images): rim/core {results['mri']['percentiles_0_5_50_95_100']} (0/5/50/95/100%), "
        f"flagged {results['mri']['flagged']:.1%}"
    )
    for name, ratio in ct.items():
        print(f"CT {name}: rim/core {ratio:.2f} -> {'flagged' if ratio > MAX_MRI_RIM_RATIO else 'NOT flagged'}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
