"""Is the lowest disc found the lumbosacral disc (L5/S1)? A check of the anchor every level name is counted from.

Names are counted up from the lowest disc, taken as L5/S1. The segmentation network cannot confirm that: it learnt
from SPIDER, which leaves the sacrum unlabelled, and it leaves a lumbar body cut by the image's lower edge
unlabelled too (to it, bone at the bottom of a picture is sacrum). So a field of view that ends within L4 or L5,
or an L5/S1 disc the network missed, names every level one or two too low without a word (L4/L5 called L5/S1).

A small classifier (``lumbosacral`` in the registry, trained by ``lumbar train lumbosacral``) reads a patch of the
mid-sagittal slice around the lowest disc, 160 mm square at 2.5 mm pixels with the image's edge marked, and gives
the probability that the disc is L5/S1 with the sacrum below it, rather than a lumbar disc with a lumbar body
below. Where it is below the operating point chosen on validation patients, the levels get a review flag.

The patch shows 120 mm of the spine above the disc (the lumbar curve: where the disc sits in it) and 40 mm below.
Read head up, SPIDER's mid-sagittal slices go on into the sacrum below L5/S1, so the check learnt from patches
that show what lies below the disc (the training draw cuts some short, both classes alike).

Beside the network, a rule on the segmentation itself (:func:`body_below_flags`): where L5/S1 was missed, the
lowest disc found is L4/L5 and L5's whole body lies right below it, in line with it; below L5/S1 the networks label
little or nothing in line (they learnt from SPIDER, which leaves the sacrum unlabelled).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lumbar.preprocess import LUMBOSACRAL_ABOVE_MM as ABOVE_MM
from lumbar.preprocess import LUMBOSACRAL_PATCH_PX as PATCH_PX
from lumbar.preprocess import LUMBOSACRAL_PIXEL_MM as PATCH_PIXEL_MM
from lumbar.tasks.levels import Level
from lumbar.tasks.sacrum import disc_spacing_mm

BODY_START_MM = 10.0  # below a disc's centre: half a disc and an endplate, where the body beneath it begins
BODY_FRACTION = 0.5  # of the disc spacing: a lumbar body is 0.7-0.9 of it; the sacrum's labelled part much less
# (bench/missed_lowest.py: the tallest bone right below L5/S1 on clean pictures, and L5 below a missed L5/S1)
IN_LINE_FRACTION = 0.75  # of the disc's front-to-back extent, from its front: the body, not the arch behind it


def disc_patch(
    image: np.ndarray,
    spacing: tuple[float, float],
    centre_mm: tuple[float, float],
    *,
    angle_deg: float = 0.0,
    scale: float = 1.0,
) -> np.ndarray:
    """The classifier's input: ``(2, PATCH_PX, PATCH_PX)`` float32 around ``centre_mm`` (row, col) of a display slice.

    Channel 0 is the grey image scaled to [0, 1] between the 1st and 99th percentiles of the patch's pixels inside
    the image (0 outside); channel 1 is 1 inside the image and 0 beyond its edge, so that where the picture ends is
    told apart from dark tissue. ``angle_deg`` and ``scale`` turn and zoom the sampling grid (augmentation only).
    """
    half = (PATCH_PX - 1) / 2
    offsets = (np.arange(PATCH_PX) - half) * PATCH_PIXEL_MM * scale
    rows_mm, cols_mm = np.meshgrid(offsets - ABOVE_MM * scale, offsets, indexing="ij")
    turn = np.deg2rad(angle_deg)
    cos, sin = np.cos(turn), np.sin(turn)
    rows = (centre_mm[0] + cos * rows_mm - sin * cols_mm) / spacing[0]
    cols = (centre_mm[1] + sin * rows_mm + cos * cols_mm) / spacing[1]
    inside = (rows >= 0) & (rows <= image.shape[0] - 1) & (cols >= 0) & (cols <= image.shape[1] - 1)
    grey = ndimage.map_coordinates(np.asarray(image, np.float32), [rows, cols], order=1, mode="nearest")
    out = np.zeros((2, PATCH_PX, PATCH_PX), np.float32)
    if inside.any():
        low, high = np.percentile(grey[inside], [1.0, 99.0])
        out[0] = np.where(inside, np.clip((grey - low) / max(float(high - low), 1e-6), 0.0, 1.0), 0.0)
    out[1] = inside
    return out


def lumbosacral_probability(model, image: np.ndarray, spacing: tuple[float, float], centre_mm) -> float:
    """Probability that the disc at ``centre_mm`` of the display slice ``image`` is L5/S1 (``model``: the
    ``lumbosacral`` ONNX network, one logit)."""
    logit = float(np.asarray(model(disc_patch(image, spacing, centre_mm)[None])).ravel()[0])
    return float(1.0 / (1.0 + np.exp(-logit)))


def not_lumbosacral_flag(probability: float, threshold: float) -> list[str]:
    """The review flag when the lowest disc does not look like L5/S1 at the operating point ``threshold``."""
    if probability >= threshold:
        return []
    return [
        f"the lowest disc found does not look like L5/S1 (lumbosacral check {probability:.2f}, below "
        f"{threshold:.2f}): a lumbar body rather than the sacrum seems to lie below it, so the field of view may end "
        "above the sacrum or L5/S1 was missed, and every level may be named one or more levels lower than it is (L4/L5 "
        "called L5/S1)"
    ]


def body_below_mm(bone: np.ndarray, pixel_mm: tuple[float, float], disc: Level, mask: np.ndarray) -> float:
    """How tall (mm, along the disc's axis) the bone right below ``disc`` is on a display slice: the first run of
    bone, in steps of 1 mm (or a pixel, where coarser) below the disc's centre, in line with the front
    ``IN_LINE_FRACTION`` of the disc (``mask``: the disc's pixels); 0 where that run begins more than ``BODY_START_MM``
    below the centre or there is none, or where the disc has no pixel on this slice (found on others: nothing here
    says where it lies in line)."""
    if not mask.any():
        return 0.0
    pixel = np.asarray(pixel_mm, float)
    step = max(1.0, float(pixel.max()))  # mm a step: one pixel at least, or every step of coarse pixels is a gap
    axis = np.asarray(disc.axis, float)
    across = np.array([axis[1], -axis[0]])  # posterior on the display slice
    centre = np.asarray(disc.centroid_mm, float)
    extent = (np.argwhere(mask) * pixel - centre) @ across
    front, back = extent.min(), extent.min() + IN_LINE_FRACTION * np.ptp(extent)
    rel = np.argwhere(bone) * pixel - centre
    below, side = -(rel @ axis), rel @ across
    steps = np.unique(np.floor(below[(below >= 0) & (side >= front) & (side <= back)] / step).astype(int))
    if not len(steps) or steps[0] * step > BODY_START_MM:
        return 0.0
    breaks = np.flatnonzero(np.diff(steps) > 1)
    last = steps[breaks[0]] if len(breaks) else steps[-1]
    return float((last - steps[0] + 1) * step)


def body_below_flags(
    bone: np.ndarray, pixel_mm: tuple[float, float], instances: np.ndarray, discs: list[Level]
) -> list[str]:
    """A review flag where a whole vertebral body lies right below the lowest disc found (``discs`` caudal first,
    their pixels in ``instances``; ``bone``: the network's bone on the same display slice): that disc is then not
    L5/S1 but the one above it, missed or out of view below, and every level is named one lower than it is."""
    if not discs:
        return []
    tall = body_below_mm(bone, pixel_mm, discs[0], instances == discs[0].label)
    spacing = disc_spacing_mm(discs)
    if tall < BODY_FRACTION * spacing:
        return []
    return [
        f"a whole vertebral body ({tall:.0f} mm tall, {tall / spacing:.0%} of the disc spacing) lies right below the "
        "lowest disc found, where the sacrum should begin: that disc may be L4/L5 with L5/S1 missed below it, and then "
        "every level is named one level lower than it is (L4/L5 called L5/S1)"
    ]
