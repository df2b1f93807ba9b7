"""Vertebrae and their four body corners from the frontal radiograph network's output.

The network (a vertebra-focused landmark detector, after Yi et al., MICCAI 2020) gives, per pixel of its input,
one channel for "a vertebral body's centre is here" and eight for the four corners' offsets from that pixel, in
units of ``RADIOGRAPH_OFFSET_SCALE`` pixels. A vertebra is a local maximum of the centre channel; its corners are
read at that pixel and its eight neighbours, each pixel's reading weighted by its centre score. Everything here
is in the network's pixels; ``Letterbox.to_image`` takes it back to the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lumbar.preprocess import RADIOGRAPH_OFFSET_SCALE as OFFSET_SCALE
from lumbar.preprocess import Letterbox
from lumbar.tasks.cobb import ordered_quad

PEAK_WINDOW = 7  # a centre is the maximum of its 7x7 neighbourhood: bodies are >= 12 px apart at 512 rows
MIN_SCORE = 0.1  # a peak below this is no vertebra: on the validation films every one of 17 bodies scores above it


@dataclass(frozen=True)
class FoundVertebra:
    """One vertebra found by the network: centre, corners (left-superior, right-superior, right-inferior,
    left-inferior; [x, y]) and the centre channel's value there (0-1)."""

    centre: np.ndarray
    corners: np.ndarray
    score: float


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def decode(
    logits: np.ndarray, max_count: int, min_score: float = MIN_SCORE, reorder: bool = True
) -> list[FoundVertebra]:
    """The vertebrae in one output ``(9, h, w)``: at most ``max_count`` peaks of at least ``min_score``, the
    strongest kept, returned top to bottom. A peak's centre and corners are the means over its 3x3 neighbourhood
    weighted by the centre channel. ``reorder`` puts each quad in the frontal order (:func:`ordered_quad`: the
    frontal films' annotations came twisted); a lateral network's corners keep the order they were trained in."""
    heat = sigmoid(logits[0])
    peaks = (heat == ndimage.maximum_filter(heat, size=PEAK_WINDOW, mode="constant")) & (heat >= min_score)
    rows, cols = np.nonzero(peaks)
    strongest = np.argsort(-heat[rows, cols], kind="stable")[:max_count]
    found = []
    for r, c in zip(rows[strongest], cols[strongest]):
        r0, r1, c0, c1 = max(r - 1, 0), min(r + 2, heat.shape[0]), max(c - 1, 0), min(c + 2, heat.shape[1])
        weights = heat[r0:r1, c0:c1]
        yy, xx = np.mgrid[r0:r1, c0:c1]
        centre = np.array([(xx * weights).sum(), (yy * weights).sum()]) / weights.sum()
        # each pixel's own reading of the corners (its position plus its offsets), averaged as the centre is
        offsets = logits[1:, r0:r1, c0:c1].reshape(4, 2, *weights.shape) * OFFSET_SCALE
        readings = offsets + np.stack([xx, yy])[None]
        corners = (readings * weights).sum((2, 3)) / weights.sum()
        found.append(FoundVertebra(centre, ordered_quad(corners) if reorder else corners, float(heat[r, c])))
    return sorted(found, key=lambda v: v.centre[1])


def decode_in_image(logits: np.ndarray, box: Letterbox, max_count: int) -> list[FoundVertebra]:
    """:func:`decode`, with every body's centre and corners taken back into the letterboxed image's pixels."""
    return [FoundVertebra(box.to_image(v.centre), box.to_image(v.corners), v.score) for v in decode(logits, max_count)]


def targets(
    corners: np.ndarray, shape: tuple[int, int], radius: int = 2, spread: float = 0.1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training targets for bodies with ``corners (n, 4, 2)`` in the network's pixels: the centre channel (a
    Gaussian at each body's centre, its width ``spread`` of the body's height), the corner offsets ``(8, h, w)`` and
    where they count ``(h, w)`` (pixels within ``radius`` of a centre)."""
    h, w = shape
    heat = np.zeros((h, w), np.float32)
    offsets = np.zeros((8, h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for quad in np.asarray(corners, np.float64):
        centre = quad.mean(0)
        height = np.linalg.norm(quad[3] - quad[0]) / 2 + np.linalg.norm(quad[2] - quad[1]) / 2
        sigma = max(1.0, spread * height)
        x0, y0 = round(centre[0]), round(centre[1])
        r0, r1, c0, c1 = (
            max(y0 - 4 * int(sigma) - 2, 0),
            min(y0 + 4 * int(sigma) + 3, h),
            max(x0 - 4 * int(sigma) - 2, 0),
            min(x0 + 4 * int(sigma) + 3, w),
        )
        if r0 >= r1 or c0 >= c1:
            continue
        g = np.exp(-((xx[r0:r1, c0:c1] - x0) ** 2 + (yy[r0:r1, c0:c1] - y0) ** 2) / (2 * sigma**2))
        heat[r0:r1, c0:c1] = np.maximum(heat[r0:r1, c0:c1], g)
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                y, x = y0 + dy, x0 + dx
                if 0 <= y < h and 0 <= x < w:
                    offsets[:, y, x] = ((quad - [x, y]) / OFFSET_SCALE).ravel()
                    weight[y, x] = 1.0
    return heat, offsets, weight
