"""Does each vertebra carry one name in 3D, or do the disc planes cut its arch under two?

Level names are given to the bone between two disc planes. In front, where the bodies are, the planes divide the
column well; behind the canal a plane carried straight back cuts through the arch above it, whose laminae and spinous
process slope down to the level of the disc below. ``levels.ARCH_DROP_FRACTION`` lowers each plane behind the canal's
front by that fraction of the disc spacing (on MRI; the CT pipeline carries the planes straight back). Measured on
SPIDER's 30 T2 SPACE volumes (the slices of each series stacked, segmented and named by the pipeline as one volume)
against the expert's masks, which label each vertebra's bone without its name: every 3D piece of the expert's
vertebra label of at least ``MIN_PIECE_ML`` (a body, or an arch, where the mask leaves them apart) should carry one
of our names. Reported per fraction:

* pieces split: pieces where two of our names each cover at least ``SPLIT_SHARE`` of the piece;
* voxels off the piece's name: of the piece voxels we name, the share not carrying the piece's commonest name;
* voxels named: the share of the pieces' voxels that carry any of our names (a fraction that left arches unnamed
  would split none).

The fraction shipped is the one with fewest pieces split on the 24 patients the segmentation network was trained or
selected on; the 6 test patients are reported beside them, for the shipped fraction and for planes carried straight
back (0), as before. Run ``.venv/bin/python bench/vertebra_pieces.py``; prints a table and writes
``bench/results/vertebra_pieces.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save, segmentation_model

from lumbar.image import SpineImage
from lumbar.io import read_image
from lumbar.io.spider import patient_id, read_overview_voxels, t2space_series
from lumbar.labels import DISC_OFFSET
from lumbar.metrics import bootstrap_ci
from lumbar.pipelines.mr_sagittal import segment
from lumbar.tasks import levels

T2SPACE = SHARED_DATA / "spider" / "t2space"
SPIDER_VERTEBRA = 76
MIN_PIECE_ML = 1.5
SPLIT_SHARE = 0.1
FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def volumes(network) -> dict[str, tuple[np.ndarray, np.ndarray, tuple[float, float, float]]]:
    """Per patient: the expert's mask, our semantic classes (display slices) and their spacing."""
    voxels = read_overview_voxels(SHARED_DATA / "spider" / "overview.csv")
    out = {}
    for series, files in t2space_series(T2SPACE / "images").items():
        slices = [np.asarray(read_image(f).sagittal_slices()[0]) for f in files]
        masks = [np.asarray(read_image(T2SPACE / "masks" / f.name).sagittal_slices()[0]) for f in files]
        rows, cols = min(s.shape[0] for s in slices), min(s.shape[1] for s in slices)
        image = SpineImage.from_sagittal_slices(
            np.stack([s[:rows, :cols] for s in slices]).astype(np.float32), voxels[series], modality="MR"
        )
        result = segment(image, model=network)
        mask = np.stack([m[:rows, :cols] for m in masks])
        out[patient_id(series)] = (mask, result.semantic.classes, result.image.display_spacing_mm())
    return out


def pieces(mask: np.ndarray, instances: np.ndarray, spacing: tuple[float, float, float]) -> list[dict]:
    """Each piece of the expert's vertebra label: its voxels, those we name, those off its commonest name, split."""
    labelled, _ = ndimage.label(mask == SPIDER_VERTEBRA)
    min_voxels = MIN_PIECE_ML * 1000 / float(np.prod(spacing))
    rows = []
    for k, box in enumerate(ndimage.find_objects(labelled), start=1):
        inside = labelled[box] == k
        if inside.sum() < min_voxels:
            continue
        names = instances[box][inside]
        counts = np.bincount(names[(names > 0) & (names < DISC_OFFSET)])
        named = int(counts.sum())
        rows.append(
            {
                "voxels": int(inside.sum()),
                "named": named,
                "off_name": named - int(counts.max(initial=0)),
                "split": int((counts >= SPLIT_SHARE * inside.sum()).sum() >= 2),
            }
        )
    return rows


def scores(by_patient: dict[str, list[dict]]) -> dict:
    """Pieces split and voxels off the piece's name over patients, with patient-bootstrap CIs."""
    rows = [(pid, r) for pid, items in by_patient.items() for r in items]
    groups = [pid for pid, _ in rows]
    split = np.array([r["split"] for _, r in rows], float)
    mean, low, high = bootstrap_ci(split, groups)
    named = sum(r["named"] for _, r in rows)
    off = sum(r["off_name"] for _, r in rows) / max(1, named)
    return {
        "patients": len(by_patient),
        "pieces": len(rows),
        "split": int(split.sum()),
        "split_share": mean,
        "split_share_ci95": [low, high],
        "voxels_off_name": off,
        "voxels_named": named / max(1, sum(r["voxels"] for _, r in rows)),
    }


def main() -> None:
    network, model = segmentation_model(None)
    if not T2SPACE.is_dir():
        print(f"skipped: {T2SPACE} not found")
        return
    split = network.meta["split_patients"]
    groups = {"trained or selected on": split["train"] + split["val"], "test": split["test"]}
    data = volumes(network)
    shipped = levels.ARCH_DROP_FRACTION
    results: dict[str, dict[str, dict]] = {name: {} for name in groups}
    for fraction in FRACTIONS:
        found = {
            pid: pieces(mask, levels.label_levels(classes, spacing, arch_drop=fraction).instances, spacing)
            for pid, (mask, classes, spacing) in data.items()
        }
        for name, patients in groups.items():
            results[name][f"{fraction:.1f}"] = scores({p: found[p] for p in patients if p in found})
    chosen = min(FRACTIONS, key=lambda f: results["trained or selected on"][f"{f:.1f}"]["split"])
    payload = {"model": model, "shipped_fraction": shipped, "fewest_split_on_training": chosen, "by_fraction": results}
    path = save("vertebra_pieces", payload)

    from rich.console import Console
    from rich.table import Table

    table = Table(title="Pieces of the expert's vertebra label that carry two of our names (T2 SPACE volumes)")
    for column in (
        "plane drop behind the canal",
        *(f"{g}: split" for g in groups),
        *(f"{g}: voxels off" for g in groups),
        *(f"{g}: voxels named" for g in groups),
    ):
        table.add_column(column)
    for fraction in FRACTIONS:
        cells = [results[g][f"{fraction:.1f}"] for g in groups]
        table.add_row(
            f"{fraction:.1f} of the disc spacing" + (" (shipped)" if fraction == shipped else ""),
            *(f"{c['split']} of {c['pieces']}" for c in cells),
            *(f"{100 * c['voxels_off_name']:.1f}%" for c in cells),
            *(f"{100 * c['voxels_named']:.1f}%" for c in cells),
        )
    Console().print(table)
    print(f"fewest pieces split on the training and validation patients at {chosen}; shipped {shipped}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
