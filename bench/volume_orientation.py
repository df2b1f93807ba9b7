"""A volume whose header places it the wrong way: how often the MRI path doubts a right header, and catches a wrong one.

A DICOM, NIfTI, MetaImage or NRRD volume states where the head and the front are; ``lumbar analyze`` reads it so, and
doubts it only where the segmentation network reads the mid-sagittal slice clearly more surely another of the eight
ways a slice can lie (``lumbar.tasks.orientation.header_doubt``, margin ``HEADER_MARGIN``). Measured on slices whose
orientation is known:

* the 30 SPIDER T2 SPACE volumes (head up, anterior left, as the data README states), their mid-sagittal slice
  chosen as the pipeline chooses it (from the network's segmentation of the whole volume);
* the 20 second-centre T2 slices (``mri_small_t2``, head up per its README), each read as a one-slice volume: a
  centre the network never saw, and slices often beside the midline (harder than a volume's mid-sagittal slice).

Each slice is judged as it lies (a doubt is a false alarm; whether another review reason withholds that volume's
Summary anyway is counted) and laid each of the seven wrong ways (a doubt is a catch; whether the reason names the way
that lays it back is counted too). The wrong ways lay the slice the pipeline chose on the right volume: a volume
whose header is wrong would have its mid-sagittal slice chosen from its own segmentation, which may read worse. The
margins (as it lies, less the best of the other seven ways) are summarised too. And, to show why the CT path does not
ask: the three labelled CTs in ``../shared/data/ct``, their midline slice in the bone window the network reads,
judged as they lie.

``python bench/volume_orientation.py`` (about 5 min on 2 cores) prints a table and writes
``bench/results/volume_orientation.json`` and its summary to ``bench/claims/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.image import Modality, SpineImage
from lumbar.io import read_image
from lumbar.io.spider import patient_id, read_overview_voxels, t2space_series
from lumbar.metrics import bootstrap_ci
from lumbar.pipelines.mr_sagittal import segment as segment_volume
from lumbar.tasks.ct_bone import midline_index, windowed
from lumbar.tasks.levels import mid_sagittal_index
from lumbar.tasks.orientation import (
    HEADER_MARGIN,
    WAYS,
    best_other_way,
    header_doubt,
    slice_of,
    way_confidences,
    ways,
)
from lumbar.tasks.segmentation import segment

SPIDER = SHARED_DATA / "spider"
SECOND_CENTRE = SHARED_DATA / "mri_small_t2" / "images"
CTS = {
    "VerSe 012": "ct/verse19_sub-verse012/sub-verse012_ct.nii.gz",
    "TotalSegmentator example": "ct/totalsegmentator_example/example_ct.nii.gz",
    "TPTBox crop": "ct/tptbox_crops/sub-ct_label-22_ct.nii.gz",
}


def inverse_ways() -> list[int]:
    """For each of ``WAYS``, the way that lays a slice so laid back as it was (found on a slice of distinct pixels)."""
    slice_ = SpineImage.from_sagittal_slices(np.arange(12, dtype=np.float32).reshape(1, 3, 4), (1.0, 1.0, 1.0))
    upright = slice_.sagittal_slices()[0]
    return [
        next(j for j, back in enumerate(ways(laid)) if np.array_equal(back.sagittal_slices()[0], upright))
        for laid in ways(slice_)
    ]


INVERSE = inverse_ways()


def judged(name: str, group: str, volume: SpineImage, mid: int) -> dict:
    """One volume whose way is known, judged on slice ``mid``: the doubt as it lies (and, where it is doubted,
    whether another review reason withholds its Summary anyway), and for each wrong way whether it is caught."""
    upright = slice_of(volume, mid)
    confidences = way_confidences(upright)
    caught, named_back = {}, {}
    for k, way in enumerate(ways(upright)):
        if k:
            laid_confidences = way_confidences(way)
            caught[WAYS[k]] = header_doubt(laid_confidences) is not None
            named_back[WAYS[k]] = caught[WAYS[k]] and best_other_way(laid_confidences) == INVERSE[k]
    doubted = header_doubt(confidences) is not None
    others = [r for r in segment_volume(volume).gate if r != header_doubt(confidences)] if doubted else []
    return {
        "image": name,
        "group": group,
        "confidences": [round(c, 4) for c in confidences],
        "margin": round(confidences[0] - max(confidences[1:]), 4),
        "doubted": doubted,
        "withheld_anyway": bool(others),
        "caught": caught,
        "named_back": named_back,
    }


def t2space_volumes() -> list[dict]:
    """Each T2 SPACE volume's mid-sagittal slice, the pipeline's choice (the network's segmentation of the volume)."""
    voxels = read_overview_voxels(SPIDER / "overview.csv")
    rows = []
    for series, files in t2space_series(SPIDER / "t2space" / "images").items():
        slices = [np.asarray(read_image(f).sagittal_slices()[0]) for f in files]
        height, width = min(s.shape[0] for s in slices), min(s.shape[1] for s in slices)
        volume = SpineImage.from_sagittal_slices(
            np.stack([s[:height, :width] for s in slices]).astype(np.float32), voxels[series], modality=Modality.MR
        )
        mid = mid_sagittal_index(segment(volume).classes)
        rows.append(judged(series, "SPIDER T2 SPACE volume", volume, mid))
        print(rows[-1]["image"], rows[-1]["margin"], rows[-1]["doubted"], flush=True)
    return rows


def second_centre() -> list[dict]:
    rows = []
    for path in sorted(SECOND_CENTRE.glob("*.png")):
        picture = read_image(path, modality="MR")  # read as a one-slice volume would be: no picture's turning
        volume = SpineImage.from_sagittal_slices(
            picture.sagittal_slices(), picture.display_spacing_mm(), modality=Modality.MR, spacing_known=False
        )
        rows.append(judged(path.stem, "second centre T2", volume, 0))
        print(rows[-1]["image"], rows[-1]["margin"], rows[-1]["doubted"], flush=True)
    return rows


def cts() -> dict[str, dict]:
    """The labelled CTs' midline slice in the bone window, judged as they lie (the CT path does not ask)."""
    rows = {}
    for name, relative in CTS.items():
        image = read_image(SHARED_DATA / relative)
        hu = image.sagittal_slices()
        mid = midline_index(hu)
        shown = SpineImage.from_sagittal_slices(windowed(hu[mid : mid + 1]), image.display_spacing_mm())
        confidences = way_confidences(shown)
        rows[name] = {
            "confidences": [round(c, 4) for c in confidences],
            "margin": round(confidences[0] - max(confidences[1:]), 4),
            "best_other": WAYS[int(np.argmax(confidences[1:])) + 1],
            "doubted": header_doubt(confidences) is not None,
        }
        print(name, rows[name]["margin"], rows[name]["best_other"], flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    """Right headers doubted and wrong ones caught, with 95% CIs by patient bootstrap, and the margins."""
    patients = np.array([patient_id(r["image"]) for r in rows])
    doubted = np.array([r["doubted"] for r in rows], float)
    caught = np.array([list(r["caught"].values()) for r in rows], float)  # (slices, seven wrong ways)
    named_back = np.array([list(r["named_back"].values()) for r in rows], float)
    margins = np.array([r["margin"] for r in rows])
    return {
        "slices": len(rows),
        "right_header_doubted": int(doubted.sum()),
        "right_header_doubted_ci95": list(bootstrap_ci(doubted, patients)[1:]),
        "right_header_doubted_withheld_anyway": int(sum(r["withheld_anyway"] for r in rows)),
        "wrong_headers": int(caught.size),
        "wrong_header_caught": int(caught.sum()),
        "wrong_header_caught_share": float(caught.mean()),
        "wrong_header_caught_ci95": list(bootstrap_ci(caught.ravel(), np.repeat(patients, caught.shape[1]))[1:]),
        "caught_per_way": {way: int(caught[:, k].sum()) for k, way in enumerate(WAYS[1:])},
        "caught_naming_the_way_back": int(named_back.sum()),
        "margin_min_p5_p50": [float(margins.min()), *map(float, np.percentile(margins, [5, 50]))],
    }


def main() -> None:
    if not (SPIDER / "t2space").is_dir():
        print(f"skipped: {SPIDER} not found")
        return
    rows = t2space_volumes() + second_centre()
    groups = {
        group: summarise([r for r in rows if r["group"] == group]) for group in dict.fromkeys(r["group"] for r in rows)
    }
    groups["all"] = summarise(rows)
    ct_rows = cts()
    print(f"\nheader margin {HEADER_MARGIN}; margin = confidence as it lies - best of the other seven ways")
    print(f"{'set':28s} {'slices':>6s} {'right doubted (anyway)':>22s} {'wrong caught':>20s}  margin min / p5 / median")
    for group, s in groups.items():
        caught = f"{s['wrong_header_caught']}/{s['wrong_headers']} ({s['caught_naming_the_way_back']} back)"
        doubted = f"{s['right_header_doubted']} ({s['right_header_doubted_withheld_anyway']})"
        print(f"{group:28s} {s['slices']:6d} {doubted:>22s} {caught:>20s}  {s['margin_min_p5_p50']}")
    for name, r in ct_rows.items():
        print(f"CT {name:25s} margin {r['margin']:+.4f} (best other: {r['best_other']}), doubted {r['doubted']}")
    save("volume_orientation", {"header_margin": HEADER_MARGIN, "sets": groups, "ct": ct_rows, "rows": rows})


if __name__ == "__main__":
    main()
