"""MR–CT fusion: registration error on known misalignments, time of a 256³ pair, and the fusion measures.

No patient here has both an MR and a CT, so every pair shares one anatomy by construction, and the misalignment
applied to the MR (a random rigid turn of up to ±10° about each axis and shift of up to ±15 mm along each) is
known: the MR's voxels are placed elsewhere (none lost to the field of view). The registration error is the
distance between where the found and the true transform send each voxel of the spine (mm), mean and maximum per
pair:

* **phantom pairs**: the procedural spine rendered as CT and as T2 MRI on a 256³ grid of 1 mm voxels (the
  issue's size), timed stage by stage through the pipeline (``lumbar.pipelines.fusion.fuse_images``);
* **real CT anatomy**: the three CTs in ``../shared/data/ct`` (VerSe 012, the TotalSegmentator example, the
  TPTBox crop), each beside an MR-like image made from the CT itself (a non-monotonic lookup from HU: fat bright,
  muscle dark, marrow grey, cortex black; a bias field and noise), the spine's voxels from each CT's own
  vertebra labels. This tests registration on real anatomy; the MR contrast is still made. Each pair is also
  registered with the affine stage after the rigid one.

The fusion measures (entropy, MI with each source, Q^AB/F, SSIM to each source) are given for the network, the
classic rules and each source alone (the baseline: what an image that fuses nothing scores).

``python bench/fusion.py [--pairs 3] [--phantom-only]`` writes ``bench/results/fusion.json`` and its summary to
``bench/claims/``, and the README's picture ``docs/fusion.png`` (the first phantom pair).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.image import Modality, SpineImage
from lumbar.io import read_image
from lumbar.phantom import make_phantom
from lumbar.pipelines.fusion import fuse_images
from lumbar.tasks import fusion as F

REAL_CTS = {
    "VerSe 012": (
        "ct/verse19_sub-verse012/sub-verse012_ct.nii.gz",
        "ct/verse19_sub-verse012/sub-verse012_seg-vert_msk.nii.gz",
    ),
    "TotalSegmentator example": (
        "ct/totalsegmentator_example/example_ct.nii.gz",
        "ct/totalsegmentator_example/example_ct_vertebrae_totalsegmentator.nii.gz",
    ),
    "TPTBox crop": ("ct/tptbox_crops/sub-ct_label-22_ct.nii.gz", "ct/tptbox_crops/sub-ct_seg-vert_label-22_msk.nii.gz"),
}
# HU -> MR-like signal: air, lung/fat edge, fat, water, muscle, marrow, dense marrow, cortex, metal.
PICTURE = Path(__file__).resolve().parents[1] / "docs" / "fusion.png"  # the README's picture: a phantom pair
LOOKUP_HU = [-1000, -200, -100, 0, 60, 150, 400, 800, 3000]
LOOKUP_MR = [0.0, 0.3, 0.85, 0.55, 0.25, 0.45, 0.35, 0.05, 0.02]


def pseudo_mr(hu: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MR-like image of a CT's anatomy: the lookup above, blurred, times a smooth bias field, plus noise."""
    from scipy import ndimage

    signal = np.interp(hu, LOOKUP_HU, LOOKUP_MR).astype(np.float32)
    signal = ndimage.gaussian_filter(signal, 0.7)
    axes = np.meshgrid(*(np.linspace(-1, 1, n) for n in hu.shape), indexing="ij")
    bias = np.exp(sum(rng.uniform(-0.25, 0.25) * axis for axis in axes))
    return (signal * bias + rng.normal(0, 0.02, hu.shape)).clip(0, None).astype(np.float32) * 1000


def random_misalignment(image: SpineImage, rng: np.random.Generator) -> sitk.Euler3DTransform:
    volume = F.to_sitk(image)
    truth = sitk.Euler3DTransform()
    truth.SetCenter(volume.TransformContinuousIndexToPhysicalPoint([s / 2 for s in volume.GetSize()]))
    truth.SetRotation(*np.deg2rad(rng.uniform(-10, 10, 3)))
    truth.SetTranslation(tuple(float(t) for t in rng.uniform(-15, 15, 3)))
    return truth


def run_pair(
    name: str,
    mr: SpineImage,
    ct: SpineImage,
    spine: np.ndarray,
    truth: sitk.Transform,
    rules,
    affine: bool = False,
    picture: Path | None = None,
) -> dict:
    started = time.perf_counter()
    result = fuse_images(F.moved_by(mr, truth), ct, rules=rules, affine=affine)
    total = time.perf_counter() - started
    if picture is not None:
        from lumbar.io.write import write_png
        from lumbar.pipelines.fusion import overview_picture

        write_png(overview_picture(result), picture)
    errors = F.target_errors_mm(result.registration.transform, truth, F.world_points_lps(ct, spine))
    matrix, offset = F.affine_parts(truth)
    return {
        "pair": name,
        "affine_stage": affine,
        "shape": list(ct.shape),
        "true_rotation_deg": round(float(np.degrees(np.arccos(np.clip((np.trace(matrix) - 1) / 2, -1, 1)))), 2),
        "true_shift_mm": round(float(np.linalg.norm(offset)), 2),
        "error_mean_mm": round(float(errors.mean()), 3),
        "error_max_mm": round(float(errors.max()), 3),
        "seconds": {**result.seconds, "total_with_measures": round(total, 2)},
        "measures": result.measures,
        "needs_review": result.needs_review,
    }


def summary(rows: list[dict]) -> dict:
    means = [r["error_mean_mm"] for r in rows]
    return {
        "pairs": len(rows),
        "error_mean_mm_median": round(float(np.median(means)), 3),
        "error_mean_mm_worst": round(float(np.max(means)), 3),
        "error_max_mm_worst": round(float(np.max([r["error_max_mm"] for r in rows])), 3),
        "within_2mm": int(sum(m <= 2.0 for m in means)),
        "measures": {
            method: {
                k: round(float(np.mean([r["measures"][method][k] for r in rows])), 4)
                for k in rows[0]["measures"][method]
            }
            for method in rows[0]["measures"]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="Misalignments per anatomy.")
    parser.add_argument("--size", type=int, default=256, help="Phantom grid edge (voxels of 1 mm).")
    parser.add_argument("--phantom-only", action="store_true", help="Time the phantom pairs; keep the rest as saved.")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rules = ("cnn", "classic")

    n = args.size
    ct = make_phantom(contrast="CT", shape=(n, n, n), spacing_mm=(1.0, 1.0, 1.0), seed=1)
    mr = make_phantom(contrast="T2", shape=(n, n, n), spacing_mm=(1.0, 1.0, 1.0), seed=2)
    mr_image = SpineImage(mr.image.array * 1000, mr.image.affine, modality=Modality.MR, source="phantom T2")
    ct_image = SpineImage(ct.image.array, ct.image.affine, modality=Modality.CT, source="phantom CT")
    phantom_rows = []
    for k in range(args.pairs):
        truth = random_misalignment(mr_image, rng)
        picture = PICTURE if k == 0 else None
        row = run_pair(f"phantom {n}³ #{k}", mr_image, ct_image, ct.instances > 0, truth, rules, picture=picture)
        print(row["pair"], row["error_mean_mm"], row["error_max_mm"], row["seconds"], flush=True)
        phantom_rows.append(row)
    fuse_seconds = [r["seconds"]["registration"] + r["seconds"]["fusion_cnn"] for r in phantom_rows]

    real_rows, affine_rows = [], []
    if args.phantom_only:  # the real-CT rows of the last full run, kept
        import json

        from common import RESULTS

        saved = json.loads((RESULTS / "fusion.json").read_text())["rows"]
        real_rows = [r for r in saved if not r["pair"].startswith("phantom") and not r["affine_stage"]]
        affine_rows = [r for r in saved if r["affine_stage"]]
    for name, (image_path, labels_path) in {} if args.phantom_only else REAL_CTS.items():
        if not (SHARED_DATA / image_path).is_file():
            print(f"{name}: {SHARED_DATA / image_path} absent, skipped")
            continue
        ct_real = read_image(SHARED_DATA / image_path, modality="CT")
        spine = read_image(SHARED_DATA / labels_path).array > 0
        mr_real = SpineImage(
            pseudo_mr(ct_real.array, rng), ct_real.affine, modality=Modality.MR, source=f"MR-like image of {name}"
        )
        for k in range(args.pairs):
            truth = random_misalignment(mr_real, rng)
            row = run_pair(f"{name} #{k}", mr_real, ct_real, spine, truth, rules)
            print(row["pair"], row["error_mean_mm"], row["error_max_mm"], row["seconds"], flush=True)
            real_rows.append(row)
            row = run_pair(f"{name} #{k} (affine stage)", mr_real, ct_real, spine, truth, ("classic",), affine=True)
            print(row["pair"], row["error_mean_mm"], row["error_max_mm"], row["seconds"], flush=True)
            affine_rows.append(row)

    payload = {
        "phantom": {
            **summary(phantom_rows),
            "size": n,
            "registration_and_cnn_fusion_s_median": round(float(np.median(fuse_seconds)), 2),
            "registration_s_median": round(float(np.median([r["seconds"]["registration"] for r in phantom_rows])), 2),
            "cnn_fusion_s_median": round(float(np.median([r["seconds"]["fusion_cnn"] for r in phantom_rows])), 2),
            "classic_fusion_s_median": round(
                float(np.median([r["seconds"]["fusion_classic"] for r in phantom_rows])), 2
            ),
        },
        "real_ct_anatomy": summary(real_rows) if real_rows else {},
        "real_ct_anatomy_affine_stage": summary(affine_rows) if affine_rows else {},
        "misalignment": "rotation uniform in ±10° about each axis, shift uniform in ±15 mm along each",
        "rows": phantom_rows + real_rows + affine_rows,
    }
    path = save("fusion", payload)
    print(f"wrote {path}")
    for part in ("phantom", "real_ct_anatomy", "real_ct_anatomy_affine_stage"):
        s = payload[part]
        if s:
            print(
                f"{part}: {s['within_2mm']}/{s['pairs']} within 2 mm, median mean error {s['error_mean_mm_median']} "
                f"mm, worst max {s['error_max_mm_worst']} mm"
            )
            for method, m in s["measures"].items():
                print(f"  {method:9s} " + " ".join(f"{k}={v}" for k, v in m.items()))
    print("256³ registration + cnn fusion (s):", payload["phantom"]["registration_and_cnn_fusion_s_median"])


if __name__ == "__main__":
    main()
