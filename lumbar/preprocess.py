"""Small pure functions that bring a 2D sagittal slice to what a network expects, and back.

Models work at a fixed physical pixel size (``MODEL_SPACING_MM``) so that a disc is about the same
number of pixels on every scanner. Where the spacing is unknown (a PNG slice), the reader has assumed
one (:func:`lumbar.image.assumed_spacing_mm`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODEL_SPACING_MM = 0.75
GRID_MULTIPLE = 32
CROP_SHAPE = (64, 96)  # a disc crop for grading: rows along the spine, columns front to back
LUMBOSACRAL_PATCH_PX = 64  # the lumbosacral check's square patch around the lowest disc...
LUMBOSACRAL_PIXEL_MM = 2.5  # ...160 mm wide: the lumbar curve above the disc and what lies below it...
LUMBOSACRAL_ABOVE_MM = 40.0  # ...centred this far above the disc (120 mm above it, 40 mm below)


def normalize_intensity(image: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """Scale intensities to [0, 1] between two percentiles of the pixels above the minimum (the
    background is left out; robust to outliers)."""
    image = np.asarray(image, dtype=np.float32)
    values = image[image > image.min()] if np.any(image > image.min()) else image.ravel()
    lo, hi = np.percentile(values, [low_pct, high_pct]) if values.size else (0.0, 1.0)
    if hi <= lo:
        return np.zeros_like(image)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0)


MAX_FIELD_MM = 2000.0  # a whole body, head to feet: a slice spanning more has a wrong voxel size


def field_problem(shape: tuple[int, int], spacing_mm: tuple[float, float]) -> str | None:
    """Why a slice of ``shape`` pixels at ``spacing_mm`` cannot be a body's (None when it can): the networks resample
    it to their pixel size, and a voxel size a hundred times too large would ask for gigabytes."""
    extent = [n * s for n, s in zip(shape, spacing_mm)]
    if max(extent) <= MAX_FIELD_MM:
        return None
    return (
        f"slices of {extent[0]:.0f} x {extent[1]:.0f} mm, larger than a whole body ({MAX_FIELD_MM:.0f} mm): the "
        "file's voxel size is wrong"
    )


def model_shape(
    shape: tuple[int, int], spacing_mm: tuple[float, float], target_mm: float = MODEL_SPACING_MM
) -> tuple[int, int]:
    """Size of a slice of ``shape`` pixels at ``spacing_mm`` once resampled to ``target_mm`` pixels."""
    return tuple(max(1, round(n * s / target_mm)) for n, s in zip(shape, spacing_mm))  # type: ignore[return-value]


def resize(array: np.ndarray, shape: tuple[int, int], *, labels: bool = False) -> np.ndarray:
    """Resize a 2D array (or a stack ``(n, h, w)`` / ``(n, c, h, w)``) to ``shape``: antialiased bilinear,
    nearest for labels. Pillow does it, so inference needs neither torch nor a GPU library."""
    from PIL import Image

    array = np.asarray(array)
    if tuple(array.shape[-2:]) == tuple(shape):
        return array
    lead = array.shape[:-2]
    planes = array.reshape(-1, *array.shape[-2:])
    method = Image.NEAREST if labels else Image.BILINEAR
    size = (int(shape[1]), int(shape[0]))
    out = np.stack(
        [np.asarray(Image.fromarray(np.ascontiguousarray(p, dtype=np.float32)).resize(size, method)) for p in planes]
    )
    return out.reshape(*lead, *shape).astype(array.dtype if labels else np.float32)


def pad_to_multiple(array: np.ndarray, multiple: int = GRID_MULTIPLE) -> tuple[np.ndarray, tuple[int, int]]:
    """Zero-pad the last two axes at the bottom/right to a multiple of ``multiple``; returns the original size."""
    h, w = array.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    pad = [(0, 0)] * (array.ndim - 2) + [(0, ph), (0, pw)]
    return np.pad(array, pad), (h, w)


RADIOGRAPH_SHAPE = (512, 256)  # the frontal radiograph network's input: rows, columns (a full spine is tall)
RADIOGRAPH_OUTPUTS = 9  # its output channels: a vertebral body's centre, then 4 corners x (dx, dy)...
RADIOGRAPH_OFFSET_SCALE = 32.0  # ...the offsets in units of this many input pixels


@dataclass(frozen=True)
class Window:
    """A square window on one vertebral body of a radiograph (``lumbar.tasks.body_frames``): its size in pixels and
    how many of them the spine's step between neighbouring bodies spans."""

    size: int
    step_px: float


CORNER_WINDOW = Window(size=112, step_px=40.0)  # +-1.4 steps: the body and its neighbours' near endplates
LEVEL_WINDOW = Window(size=96, step_px=12.0)  # +-4 steps: the first ribs beside T1, the iliac crests beside L5
LATERAL_SHAPE = (384, 320)  # the lateral radiograph network's input: a lumbar film is nearly square
ULTRASOUND_FRAME_SHAPE = (64, 64)  # the ultrasound frame network's input: (depth, across) pixels
LATERAL_OUTPUTS = 10  # its channels: the frontal network's nine, then S1's centre (names are counted from it)


@dataclass(frozen=True)
class Letterbox:
    """An image scaled to fit a fixed shape, keeping its aspect, and centred with zero padding: maps points
    between the image's pixels and the network's (x = column, y = row; pixel centres at integers)."""

    scale: tuple[float, float]  # (x, y): the scaled size over the image's, per axis (equal up to rounding)
    offset: tuple[float, float]  # (x, y) of the image's pixel (0, 0) in the network's pixels
    size: tuple[int, int]  # the scaled image's (rows, columns) inside the box

    @classmethod
    def fit(cls, shape: tuple[int, int], box: tuple[int, int] = RADIOGRAPH_SHAPE) -> Letterbox:
        scale = min(box[0] / shape[0], box[1] / shape[1])
        size = (max(1, min(box[0], round(shape[0] * scale))), max(1, min(box[1], round(shape[1] * scale))))
        left, top = (box[1] - size[1]) // 2, (box[0] - size[0]) // 2
        # Resizing maps pixel centres by (i + 0.5) * scale - 0.5 (per axis, with the size actually used).
        sy, sx = size[0] / shape[0], size[1] / shape[1]
        return cls((sx, sy), (left + 0.5 * sx - 0.5, top + 0.5 * sy - 0.5), size)

    def to_box(self, points: np.ndarray) -> np.ndarray:
        """Image pixel coordinates ``(..., 2)`` [x, y] into the network's."""
        return np.asarray(points, np.float64) * np.asarray(self.scale) + np.asarray(self.offset)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """The network's pixel coordinates ``(..., 2)`` [x, y] back into the image's."""
        return (np.asarray(points, np.float64) - np.asarray(self.offset)) / np.asarray(self.scale)

    def apply(self, image: np.ndarray, box: tuple[int, int] = RADIOGRAPH_SHAPE) -> np.ndarray:
        """``image`` (2D grey) scaled into the box, intensities to [0, 1] (percentiles), zero around it."""
        scaled = normalize_intensity(resize(np.asarray(image, np.float32), self.size))
        out = np.zeros(box, np.float32)
        top, left = (box[0] - self.size[0]) // 2, (box[1] - self.size[1]) // 2
        out[top : top + self.size[0], left : left + self.size[1]] = scaled
        return out
