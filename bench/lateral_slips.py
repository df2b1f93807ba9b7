"""Slips on lateral views read from known corners: how far the lateral slip maths reads spines as displaced.

The anatomies the lateral radiograph network is trained on (``lumbar/train/lateral_drr.py``: every SPIDER
mid-sagittal picture whose disc count matches SPIDER's, segmented as ``lumbar analyze`` does, each body's four corners
taken from its outline) give each disc's two bodies by their corners, with no network and no film in between. Per
disc level: the median slip (``lumbar/tasks/lateral.py``, read along the disc's mid-plane) and the share of discs
read at 3 mm or more either way, beside the same slip read along the lower body's upper endplate alone (the
definition before this version). SPIDER's patients were not chosen for slips, so a median far from zero is a bias of
the corners or of the definition, not of these spines; the anatomies are built (and cached in
``runs/lateral/anatomies``, as ``lumbar train radiograph-lateral`` does) where they are not there yet.

``python bench/lateral_slips.py`` writes ``bench/results/lateral_slips.json`` and its summary to ``bench/claims/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.labels import SPINE_ORDER
from lumbar.tasks import lateral
from lumbar.train.lateral_drr import Anatomy, build_anatomies

ANATOMIES = Path(__file__).resolve().parents[1] / "runs" / "lateral" / "anatomies"
LISTHESIS_MM = 3.0


def along_lower_endplate(upper: np.ndarray, lower: np.ndarray) -> float:
    """The slip as it was read before this version: along the lower body's upper endplate alone."""
    endplate = lower[lateral.AS] - lower[lateral.PS]
    return float((upper[lateral.PI] - lower[lateral.PS]) @ (endplate / np.linalg.norm(endplate)))


def slips_by_level(anatomies: list[Anatomy]) -> dict[str, list[tuple[float, float]]]:
    """Per disc between bodies named one level apart: (slip on the mid-plane, slip along the lower endplate), mm."""
    out: dict[str, list[tuple[float, float]]] = {}
    for anatomy in anatomies:
        names, corners = list(anatomy.names), np.asarray(anatomy.corners, np.float64)
        for k in range(len(names) - 1):
            upper, lower = names[k], names[k + 1]
            if SPINE_ORDER.index(lower) == SPINE_ORDER.index(upper) + 1:
                pair = (lateral.slip(corners[k], corners[k + 1])[0], along_lower_endplate(corners[k], corners[k + 1]))
                out.setdefault(f"{upper}/{lower}", []).append(pair)
    return out


def summary(slips: list[tuple[float, float]]) -> dict:
    values = np.array(slips, np.float64)
    return {
        "discs": len(values),
        "median_mm": float(np.nanmedian(values[:, 0])),
        "at_3mm_or_more": float(np.mean(np.abs(values[:, 0]) >= LISTHESIS_MM)),
        "along_lower_endplate_median_mm": float(np.nanmedian(values[:, 1])),
        "along_lower_endplate_at_3mm_or_more": float(np.mean(np.abs(values[:, 1]) >= LISTHESIS_MM)),
    }


def main() -> None:
    spider = SHARED_DATA / "spider"
    if not (spider / "midsag").is_dir():
        sys.exit(f"skipped: {spider} not found (SPIDER lives in ../shared/data/spider)")
    paths = build_anatomies(spider, ANATOMIES)
    anatomies = [Anatomy.load(p) for p in paths]
    by_level = sorted(slips_by_level(anatomies).items(), key=lambda kv: SPINE_ORDER.index(kv[0].split("/")[0]))
    levels = {level: summary(slips) for level, slips in by_level if len(slips) >= 20}
    print(f"{len(anatomies)} anatomies; slip (mm) on their own corners, median and share at 3 mm or more:")
    print(f"{'disc':8s} {'n':>4s} {'mid-plane':>10s} {'>= 3 mm':>8s} {'lower endplate':>15s} {'>= 3 mm':>8s}")
    for level, s in levels.items():
        print(
            f"{level:8s} {s['discs']:4d} {s['median_mm']:10.2f} {s['at_3mm_or_more']:8.0%} "
            f"{s['along_lower_endplate_median_mm']:15.2f} {s['along_lower_endplate_at_3mm_or_more']:8.0%}"
        )
    print(f"wrote {save('lateral_slips', {'anatomies': len(anatomies), 'levels': levels})}")


if __name__ == "__main__":
    main()
