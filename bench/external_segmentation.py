"""Generalisation of the segmentation to data unlike its training data: another centre's MRI and CT.

* ``mri_small_t2``: 20 sagittal T2 slices of unknown origin (a second centre; pixel size unknown, so the
  pipeline assumes a 300 mm field of view). Masks label discs and vertebral **bodies only** (no posterior
  elements, no canal) and some slices only part of the visible column, so predictions are scored inside the
  labelled column: the labelled discs and bodies dilated by 5 pixels. Slices with an empty mask (00, 05, 10)
  are left out, and so are the disc-only slices 01 and 13 for bodies (their bodies are visible but unlabelled).
* ``ct/``: CT in Hounsfield units with vertebra labels in VerSe ids: VerSe'19 subject 012 (T10-L3, manual),
  the TPTBox crop (L2-L4, manual) and TotalSegmentator's example CT, whose labels are that tool's output (a
  peer's, not truth: agreement, not accuracy). Scored: Dice of the vertebra class against all labelled vertebrae
  (inside the labelled vertebrae's bounding box grown by 10 mm, as the crops label only some of the bone in view),
  and per level whether the name we give most of that vertebra's voxels is its own.
* ``ct_small``: 4 CT volumes as 8-bit sagittal stacks (not Hounsfield units; geometry distorted, spacing
  unknown), with masks of L1-L5 and of all vertebrae in view. Scored: Dice of the vertebra class against all
  vertebrae, and of the instances we name L1-L5 against the lumbar mask (naming included).

Run ``.venv/bin/python bench/external_segmentation.py [--model runs/X/segmentation.onnx]``; prints a table and
writes ``bench/results/external_segmentation.json``. Nothing here is tuned on: it only measures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save, segmentation_model

from lumbar.evaluate.segmentation import overlap_pixels, pooled_precision_recall
from lumbar.io import read_image
from lumbar.labels import VERTEBRA_IDS, VERTEBRA_NAMES, Structure
from lumbar.metrics import bootstrap_ci, dice
from lumbar.pipelines.mr_sagittal import segment

MRI_SMALL = SHARED_DATA / "mri_small_t2"
CT_SMALL = SHARED_DATA / "ct_small"
CT = SHARED_DATA / "ct"
EMPTY_MASKS = {"00", "05", "10"}
DISCS_ONLY = {"01", "13"}
SPIDER_DISC, SPIDER_VERTEBRA = 29, 76


def _ci(values: list[float]) -> dict:
    mean, lo, hi = bootstrap_ci(np.array(values), np.arange(len(values)))
    return {"mean": mean, "ci95": [lo, hi], "n": len(values)}


def second_centre_mri(model) -> dict | None:
    if not MRI_SMALL.is_dir():
        return None
    rows = []
    for path in sorted((MRI_SMALL / "images").glob("*.png")):
        if path.stem in EMPTY_MASKS:
            continue
        truth = np.asarray(read_image(MRI_SMALL / "masks" / path.name).sagittal_slices()[0])
        seg = segment(read_image(path, modality="MR"), model=model)
        pred = seg.image.in_stored_frame(seg.semantic.classes[0])  # in the file's rows and columns, as the mask
        column = ndimage.binary_dilation(truth > 0, iterations=5)
        disc = truth == SPIDER_DISC, (pred == Structure.DISC) & column
        row = {"image": path.name, "disc_dice": dice(*disc), "disc_pixels": overlap_pixels(*disc)}
        if path.stem not in DISCS_ONLY:
            body = truth == SPIDER_VERTEBRA
            row["body_dice"] = dice(body, (pred == Structure.VERTEBRA) & column)
            row["body_recall"] = float(np.mean(pred[body] == Structure.VERTEBRA))
        rows.append(row)
    summary = {k: _ci([r[k] for r in rows if k in r]) for k in ("disc_dice", "body_dice", "body_recall")}
    # pooled over the slices: are our discs drawn smaller than theirs (precision high, recall low), or misplaced?
    discs = pooled_precision_recall([r["disc_pixels"] for r in rows])
    return {"summary": summary, "disc_precision_recall": discs, "images": rows}


CT_SETS = {
    "verse012": (
        "verse19_sub-verse012/sub-verse012_ct.nii.gz",
        "verse19_sub-verse012/sub-verse012_seg-vert_msk.nii.gz",
    ),
    "tptbox_l3": ("tptbox_crops/sub-ct_label-22_ct.nii.gz", "tptbox_crops/sub-ct_seg-vert_label-22_msk.nii.gz"),
    "totalsegmentator_example (peer labels)": (
        "totalsegmentator_example/example_ct.nii.gz",
        "totalsegmentator_example/example_ct_vertebrae_totalsegmentator.nii.gz",
    ),
}
TOTALSEGMENTATOR_TO_VERSE = {26: 26, 27: 24, 28: 23, 29: 22, 30: 21, 31: 20, 32: 19, 33: 18}  # S1, L5 ... T11


def labelled_ct(model) -> dict | None:
    if not CT.is_dir():
        return None
    rows = []
    for name, (image_file, mask_file) in CT_SETS.items():
        image = read_image(CT / image_file, modality="CT")
        truth = np.rint(read_image(CT / mask_file).sagittal_slices()).astype(int)
        if name.startswith("totalsegmentator"):
            truth = np.vectorize(lambda v: TOTALSEGMENTATOR_TO_VERSE.get(v, 0))(truth)
        result = segment(image, model=model)
        box = tuple(
            slice(max(0, int(idx.min()) - 10), int(idx.max()) + 11) for idx in np.nonzero(truth > 0)
        )  # 10 voxels: at least 10 mm at these spacings
        levels = {}
        for verse_id in sorted(set(np.unique(truth)) - {0}):
            ours = result.levels.instances[truth == verse_id]
            named = np.bincount(ours[ours > 0]).argmax() if np.any(ours > 0) else 0
            levels[VERTEBRA_NAMES.get(int(verse_id), str(verse_id))] = VERTEBRA_NAMES.get(int(named), "none")
        rows.append(
            {
                "data": name,
                "vertebra_dice": dice(truth[box] > 0, result.semantic.classes[box] == Structure.VERTEBRA),
                "levels_named": levels,
                "levels_right": sum(k == v for k, v in levels.items()),
                "levels_total": len(levels),
                "discs_found": len(result.levels.discs),
            }
        )
    summary = {r["data"]: {k: r[k] for k in ("vertebra_dice", "levels_right", "levels_total")} for r in rows}
    return {"summary": summary, "volumes": rows}


def ct_volumes(model) -> dict | None:
    if not CT_SMALL.is_dir():
        return None
    lumbar_ids = [VERTEBRA_IDS[f"L{k}"] for k in range(1, 6)]
    rows = []
    for path in sorted(CT_SMALL.glob("*_ct.nii.gz")):
        vol = path.name.split("_")[0]
        result = segment(read_image(path, modality="CT"), model=model)
        all_truth = read_image(CT_SMALL / f"{vol}_vertebrae.nii.gz").sagittal_slices() > 0
        lumbar_truth = read_image(CT_SMALL / f"{vol}_lumbar.nii.gz").sagittal_slices() > 0
        named_lumbar = np.isin(result.levels.instances, lumbar_ids)
        rows.append(
            {
                "volume": vol,
                "vertebra_dice_all": dice(all_truth, result.semantic.classes == Structure.VERTEBRA),
                "lumbar_named_dice": dice(lumbar_truth, named_lumbar),
                "discs_found": len(result.levels.discs),
                "flags": result.levels.flags,
            }
        )
    summary = {k: _ci([r[k] for r in rows]) for k in ("vertebra_dice_all", "lumbar_named_dice")}
    return {"summary": summary, "volumes": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a trained segmentation ONNX to measure instead of the shipped one")
    args = parser.parse_args()
    network, model = segmentation_model(args.model)
    payload = {
        "model": model,
        "second_centre_mri": second_centre_mri(network),
        "ct_small": ct_volumes(network),
        "ct_labelled": labelled_ct(network),
    }
    name = "external_segmentation" if not args.model else f"external_segmentation_{Path(args.model).parent.name}"
    path = save(name, payload)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Segmentation on data unlike SPIDER T2 SPACE ({model})")
    for column in ("data", "metric", "mean [95% CI]", "n"):
        table.add_column(column)
    for data, part in (("mri_small_t2", payload["second_centre_mri"]), ("ct_small", payload["ct_small"])):
        if part is None:
            table.add_row(data, "skipped: not found under ../shared/data", "", "")
            continue
        for metric, s in part["summary"].items():
            table.add_row(data, metric, f"{s['mean']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]", str(s["n"]))
    Console().print(table)
    if payload["second_centre_mri"]:
        pr = payload["second_centre_mri"]["disc_precision_recall"]
        print(f"mri_small_t2 discs, pixels pooled: precision {pr['precision']:.2f}, recall {pr['recall']:.2f}")
    if payload["ct_labelled"]:
        ct = Table(title="CT with vertebra labels: Dice of the vertebra class, levels named right")
        for column in ("data", "vertebra Dice", "levels right", "named (truth: ours)"):
            ct.add_column(column)
        for r in payload["ct_labelled"]["volumes"]:
            named = ", ".join(f"{k}: {v}" for k, v in r["levels_named"].items())
            ct.add_row(r["data"], f"{r['vertebra_dice']:.3f}", f"{r['levels_right']}/{r['levels_total']}", named)
        Console().print(ct)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
