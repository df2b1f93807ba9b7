"""Crops of every named disc, straightened along the disc, with its neighbouring endplates.

A crop is sampled in the disc's own frame (``axis`` toward the head, ``across`` toward posterior), so
every disc lies horizontal and centred whatever the lordosis: the input the grading models see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from lumbar.preprocess import CROP_SHAPE
from lumbar.tasks.levels import Level

__all__ = ["CROP_SHAPE", "DiscCrop", "crop_disc", "crop_labels", "disc_length_mm"]
# The crop's width as a multiple of the disc's anteroposterior length; its height follows from CROP_SHAPE's aspect
# at the same pixel size (64 / 96 x 1.6: 1.07 lengths, the disc and its endplates).
CROP_WIDTH = 1.6


@dataclass
class DiscCrop:
    level: str
    pixels: np.ndarray  # CROP_SHAPE: grey float32 (crop_disc) or instance labels (crop_labels)
    mm_per_pixel: float


def disc_length_mm(instances: np.ndarray, level: Level, spacing_mm: tuple[float, float]) -> float:
    """Front-to-back length of the disc on this slice."""
    pts = np.argwhere(instances == level.label) * np.asarray(spacing_mm)
    if not len(pts):
        return float("nan")
    across = np.array([level.axis[1], -level.axis[0]])
    t = pts @ across
    return float(t.max() - t.min())


def _frame(
    instances: np.ndarray, level: Level, spacing_mm: tuple[float, float], shape: tuple[int, int]
) -> tuple[np.ndarray, float] | None:
    """Pixel coordinates ``(2, *shape)`` of the disc's own frame on the slice, and its mm per crop pixel; None if
    the disc is not on the slice."""
    length = disc_length_mm(instances, level, spacing_mm)
    if not np.isfinite(length) or length <= 0:
        return None
    axis = np.asarray(level.axis, float)
    across = np.array([axis[1], -axis[0]])
    if across[1] < 0:
        across = -across
    mm = CROP_WIDTH * length / shape[1]
    centre = np.asarray(level.centroid_mm, float)
    rows = (np.arange(shape[0]) - (shape[0] - 1) / 2) * mm
    cols = (np.arange(shape[1]) - (shape[1] - 1) / 2) * mm
    # Row 0 of the crop is the head end: move against the axis as the crop row grows.
    points = (
        centre[None, None, :] - rows[:, None, None] * axis[None, None, :] + cols[None, :, None] * across[None, None, :]
    )
    coords = points / np.asarray(spacing_mm)[None, None, :]
    return np.moveaxis(coords, -1, 0), float(mm)


def crop_disc(
    slice_: np.ndarray,
    instances: np.ndarray,
    level: Level,
    spacing_mm: tuple[float, float],
    shape: tuple[int, int] = CROP_SHAPE,
) -> DiscCrop | None:
    """Sample a straightened crop around ``level`` from one slice; None if the disc is not on it."""
    frame = _frame(instances, level, spacing_mm, shape)
    if frame is None:
        return None
    coords, mm = frame
    pixels = map_coordinates(slice_.astype(np.float32), coords, order=1, mode="constant")
    return DiscCrop(level.name, pixels.astype(np.float32), mm)


def crop_labels(
    instances: np.ndarray, level: Level, spacing_mm: tuple[float, float], shape: tuple[int, int] = CROP_SHAPE
) -> DiscCrop | None:
    """The instance labels under every pixel of ``level``'s crop (nearest label, 0 outside the slice): where the
    disc, its neighbouring vertebrae and the canal lie in the picture the grading network saw."""
    frame = _frame(instances, level, spacing_mm, shape)
    if frame is None:
        return None
    coords, mm = frame
    return DiscCrop(level.name, map_coordinates(instances, coords, order=0, mode="constant", cval=0), mm)
