"""MR–CT fusion of one patient's MR and CT: registered, fused by wavelets, measured (``lumbar fuse``).

The CT is the reference: the MR is registered onto it and resampled onto its grid, and every output lies on the
CT's grid. Both fusion rules run (the trained weight network and the classic average / larger-magnitude rules),
and each fused image is measured beside the two sources alone, so a reader sees what fusing adds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lumbar.errors import InputError
from lumbar.image import Modality, SpineImage
from lumbar.models.registry import load_model
from lumbar.progress import SILENT, Progress
from lumbar.tasks.fusion import (
    RULES,
    Registration,
    fusion_measures,
    normalise_mr,
    register,
    resample_onto,
    wavelet_fuse,
    window_ct,
)

MIN_EXTENT_MM = 30.0  # a volume must reach this far along each axis: less is a localiser or a crop of nothing
MIN_SLICES = 8  # a volume thinner than this is a picture or a localiser, not something to register in 3D
MIN_COVERAGE = 0.3  # share of the CT's body the registered MR must cover, or the result asks for review
# Mutual information (bits) the registered MR and the CT must share (the measures' mr_alone mi_ct_bits), or the
# result asks for review: in bench/fusion.py's rows, the pairs of one anatomy that registered within 2 mm share
# 0.27-1.33 bits, the two that ended 22 and 24 mm off 0.05 and 0.07 (a pair a whole level off shares as much as a
# right one: this catches a registration that found nothing, not one that found the wrong vertebra).
MIN_SHARED_MI_BITS = 0.15
MEASURE_PLANES = 64  # the measures are read on at most this many evenly spaced sagittal planes


RULE_TEXT = {
    "cnn": "a trained network weighs the MR and CT coefficient of every band (lumbar train fusion)",
    "classic": "approximation averaged, details by the larger magnitude",
}
CAUTION = (
    "Experimental: the fusion network was trained, and the registration measured, on made pairs only (no patient "
    "here has both an MR and a CT); check the registered MR against the CT before reading the fused image"
)


@dataclass
class FusionResult:
    """The registered MR, the fused images (values in [0, 1]) on the CT's grid, and what was measured."""

    mr: SpineImage
    ct: SpineImage
    registration: Registration
    mr_on_ct: np.ndarray  # the MR's own intensities on the CT's grid (0 outside the MR's field of view)
    fused: dict[str, np.ndarray]
    measures: dict[str, dict[str, float]]
    seconds: dict[str, float]
    model: dict[str, str] = field(default_factory=dict)
    needs_review: list[str] = field(default_factory=list)
    folder: str = ""  # where it was written, if it was
    dims: int = 2  # the wavelet transform: of each sagittal plane (2) or of the whole volume (3)

    def describe(self) -> dict:
        return {
            "mr": self.mr.describe(),
            "ct": self.ct.describe(),
            "grid": "the CT's",
            "registration": self.registration.describe(),
            "fusion": {
                "wavelet": "haar",
                "levels": 2,
                "dims": self.dims,
                "rules": {name: RULE_TEXT[name] for name in self.fused if name in RULE_TEXT},
            },
            "measures": self.measures,
            "measures_note": "entropy (bits), mutual information with each source (bits, 64 bins), Q^AB/F "
            "(Xydeas & Petrovic 2000), SSIM to each source; mr_alone / ct_alone: a source taken as the fused "
            f"image, the baseline; on up to {MEASURE_PLANES} sagittal planes",
            "seconds": self.seconds,
            "model": self.model,
            "needs_review": self.needs_review,
            "caution": CAUTION,
        }


def check_options(rules: tuple[str, ...], dims: int) -> None:
    """Refuse fusion rules and wavelet dimensions there are none of (before any image is read, where possible)."""
    if dims not in (2, 3):
        raise InputError(f"wavelet dimensions {dims}: 2 (each sagittal plane) or 3 (the whole volume)")
    unknown = [r for r in rules if r not in RULES]
    if unknown or not rules:
        raise InputError(f"fusion rule {', '.join(unknown) or '(none)'}: choose from {', '.join(RULES)}")


def check_pair(mr: SpineImage, ct: SpineImage) -> None:
    """Refuse what cannot be fused: pictures, thin stacks, an MR given as the CT or the other way round."""
    for image, role in ((mr, "MR"), (ct, "CT")):
        if image.is_picture or min(image.shape) < MIN_SLICES:
            raise InputError(
                f"{image.source}: the {role} has {'x'.join(map(str, image.shape))} voxels; fusion registers two "
                f"volumes in 3D (at least {MIN_SLICES} slices each), not a picture or a thin stack"
            )
        extent = np.array(image.shape) * np.array(image.spacing_mm)
        if extent.min() < MIN_EXTENT_MM:
            raise InputError(
                f"{image.source}: the {role} covers {' x '.join(f'{e:.0f}' for e in extent)} mm; fusion needs at "
                f"least {MIN_EXTENT_MM:g} mm along each axis"
            )
        sample = image.array[::2, ::2, ::2]
        if not np.isfinite(sample).all() or np.ptp(sample) == 0:
            raise InputError(
                f"{image.source}: the {role} holds one value throughout (or none finite): nothing to register"
            )
    if not mr.modality_guessed and mr.modality == Modality.CT:
        raise InputError(f"{mr.source}: is a CT; give the MR first and the CT second")
    mr_low = float(np.percentile(mr.array[::2, ::2, ::2], 0.1))
    if mr_low < -100:
        raise InputError(
            f"{mr.source}: values down to {mr_low:.0f}, as a CT in Hounsfield units has; give the MR first and the CT "
            "second"
        )
    if not ct.modality_guessed and ct.modality not in (Modality.CT, Modality.OTHER):
        raise InputError(f"{ct.source}: is {ct.modality.label}, not a CT; give the MR first and the CT second")
    low, high = np.percentile(ct.array[::2, ::2, ::2], [0.1, 99.9])
    if low > -20 or high < 150:
        raise InputError(
            f"{ct.source}: voxels from {low:.0f} to {high:.0f}, not a CT in Hounsfield units "
            "(nothing below -20, as fat and air are, or no bone above 150)"
        )


def _centre_plane(ct_hu: np.ndarray) -> int:
    """The sagittal plane (first axis) through the middle of the CT's bone, or the middle plane."""
    bone = ct_hu[:, ::2, ::2] > 200
    counts = bone.sum(axis=(1, 2))
    if counts.sum() == 0:
        return ct_hu.shape[0] // 2
    return round(float(np.average(np.arange(len(counts)), weights=counts)))


def measure_step(planes: int) -> int:
    """Every how many sagittal planes the measures are read, so that at most :data:`MEASURE_PLANES` are."""
    return max(1, -(-planes // MEASURE_PLANES))


def fuse_images(
    mr: SpineImage,
    ct: SpineImage,
    *,
    rules: tuple[str, ...] = RULES,
    affine: bool = False,
    dims: int = 2,
    model_path: str | None = None,
    progress: Progress = SILENT,
) -> FusionResult:
    """Register ``mr`` onto ``ct`` (rigid, then affine if asked), fuse them by each of ``rules`` and measure."""
    check_pair(mr, ct)
    check_options(rules, dims)
    model = load_model("fusion", model_path) if "cnn" in rules else None  # a bad model file is refused first
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    progress.stage("registering the MR onto the CT")
    try:
        registration = register(ct, mr, affine=affine)
    except RuntimeError as exc:  # ITK's own failures (e.g. no overlap left at all): one line, the reason's first
        reason = str(exc).strip().splitlines()[-1][:200]
        raise InputError(f"{mr.source} onto {ct.source}: registration failed ({reason})") from None
    mr_on_ct = resample_onto(mr, ct, registration.transform)
    seconds["registration"] = round(time.perf_counter() - started, 2)

    a, b = normalise_mr(mr_on_ct), window_ct(ct.array)
    review = []
    body = ct.array > -500
    covered = float((mr_on_ct[body] > 0).mean()) if body.any() else 0.0
    if covered < MIN_COVERAGE:
        review.append(
            f"the registered MR covers {covered:.0%} of the CT's body (under {MIN_COVERAGE:.0%}): check the "
            "registration, or that the two images show the same region"
        )
    fused: dict[str, np.ndarray] = {}
    for rule in rules:
        progress.stage(f"fusing ({rule})")
        started = time.perf_counter()
        fused[rule] = wavelet_fuse(a, b, rule=rule, model=model, dims=dims)
        seconds[f"fusion_{rule}"] = round(time.perf_counter() - started, 2)
    progress.stage("measuring")
    every = measure_step(a.shape[0])
    candidates = {**fused, "mr_alone": a, "ct_alone": b}
    measures = {name: fusion_measures(a, b, image, every=every) for name, image in candidates.items()}
    shared = measures["mr_alone"]["mi_ct_bits"]
    if shared < MIN_SHARED_MI_BITS:
        review.append(
            f"the registered MR and the CT share {shared:.2f} bits of mutual information (under "
            f"{MIN_SHARED_MI_BITS:g}): the registration has likely failed, or the images do not show the same anatomy"
        )
    described = (
        {
            "name": model.name,
            "sha256": model.sha256,
            **{k: str(model.meta[k]) for k in ("trained_on", "trained_steps") if k in model.meta},
        }
        if model
        else {}
    )
    return FusionResult(mr, ct, registration, mr_on_ct, fused, measures, seconds, described, review, dims=dims)


def overview_picture(result: FusionResult) -> np.ndarray:
    """The CT, the registered MR and each fused image through the spine's middle sagittal plane, side by side
    (RGB uint8, titled)."""
    from PIL import Image, ImageDraw

    plane = _centre_plane(result.ct.array)
    panels = {"CT": window_ct(result.ct.array), "MR registered": normalise_mr(result.mr_on_ct)}
    panels.update({f"fused ({rule})": image for rule, image in result.fused.items()})
    pictures = []
    for title, volume in panels.items():
        display = np.flip(volume[plane], axis=(0, 1)).T  # head up, anterior left (as sagittal_slices)
        row, col = result.ct.sagittal_spacing_mm()
        grey = Image.fromarray((np.clip(display, 0, 1) * 255).astype(np.uint8))
        height = 320
        width = max(1, round(height * display.shape[1] * col / (display.shape[0] * row)))
        panel = grey.resize((width, height), Image.BILINEAR).convert("RGB")
        ImageDraw.Draw(panel).text((6, 6), title, fill=(255, 220, 0))
        pictures.append(np.asarray(panel))
    return np.concatenate(pictures, axis=1)
