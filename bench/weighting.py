"""T1 or T2, read from the image: how often the reading (``lumbar.tasks.weighting``) is right, wrong or undetermined.

Every SPIDER mid-sagittal picture (T1, T2, T2 SPACE: the file name says which) and the second centre's 20 T2
slices (``mri_small_t2``, a centre and scanner SPIDER does not hold) are segmented as ``lumbar analyze`` segments
them and read as the pipeline reads them (the canal's median signal over the vertebrae's on the mid-sagittal
slice). The bounds (T1 below 0.7, T2 from 1.0) were set on SPIDER, so its rows are a development measurement; the
second centre's are not. Beside them, the header's rule (textbook bounds) on the echo and repetition times SPIDER's
overview.csv lists for every series. ``python bench/weighting.py`` (about five minutes on 2 cores) writes
bench/results/weighting.json and its summary to bench/claims/.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save, spider_midsag_pictures

from lumbar.io import read_image
from lumbar.pipelines.mr_sagittal import csf_over_marrow_ratio, segment
from lumbar.tasks.weighting import weighting, weighting_from_header


def reading(image) -> float | None:
    return csf_over_marrow_ratio(segment(image))


def header_rule() -> dict:
    """The header's rule (:func:`weighting_from_header`) on the echo and repetition times SPIDER's overview.csv lists
    for each of its series, against the sequence the file name gives."""
    with open(SHARED_DATA / "spider" / "overview.csv", newline="") as table:
        listed = list(csv.DictReader(table))
    read = [
        (weighting_from_header(_ms(r["EchoTime"]), _ms(r["RepetitionTime"]), None), r["new_file_name"].endswith("_t1"))
        for r in listed
    ]
    return {
        "series": len(read),
        "right": int(sum(w == ("T1" if t1 else "T2") for w, t1 in read)),
        "wrong": int(sum(w is not None and w != ("T1" if t1 else "T2") for w, t1 in read)),
        "undetermined": int(sum(w is None for w, _ in read)),
    }


def _ms(text: str) -> float | None:
    return float(text) if text.strip() else None


def main() -> None:
    rows = []
    for path, image in spider_midsag_pictures():
        truth = "T1" if path.stem.endswith("_t1") else "T2"
        sequence = path.stem.split("_", 1)[1]
        rows.append({"picture": path.stem, "set": f"SPIDER {sequence}", "truth": truth, "ratio": reading(image)})
    for path in sorted((SHARED_DATA / "mri_small_t2" / "images").glob("*.png")):
        rows.append(
            {"picture": path.stem, "set": "second centre T2", "truth": "T2", "ratio": reading(read_image(path))}
        )
    if not rows:
        print(f"skipped: no SPIDER or second-centre pictures under {SHARED_DATA}")
        return
    summary = {"SPIDER header timing": header_rule()}
    for name in dict.fromkeys(r["set"] for r in rows):
        members = [r for r in rows if r["set"] == name]
        read = [weighting(r["ratio"]) for r in members]
        ratios = np.array([r["ratio"] for r in members if r["ratio"] is not None])
        summary[name] = {
            "pictures": len(members),
            "right": int(sum(w == r["truth"] for w, r in zip(read, members))),
            "wrong": int(sum(w is not None and w != r["truth"] for w, r in zip(read, members))),
            "undetermined": int(sum(w is None for w in read)),
            "ratio_range": [float(ratios.min()), float(ratios.max())] if len(ratios) else None,
        }
    path = save("weighting", {"summary": summary, "rows": rows})
    for name, s in summary.items():
        count = s.get("pictures", s.get("series"))
        print(f"{name:20s} {s['right']}/{count} right, {s['wrong']} wrong, {s['undetermined']} undetermined")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
