"""Frontal alignment from vertebral body corners: each vertebra's tilt, its heights, and the Cobb angles.

Corners are ``(n, 4, 2)`` [x, y] image pixels (x = column, y = row, origin top-left), vertebrae top to bottom,
each in the order left-superior, right-superior, right-inferior, left-inferior (left/right as in the image).

A vertebra's tilt is the direction of its mid-line: from the middle of its left side to the middle of its right
side. The Cobb angle of a curve is the angle between the mid-lines of its two end vertebrae, the most tilted
towards each other (Cobb 1948, on vertebra mid-lines as the AASCE 2019 challenge's reference script measures it).
``cobb_angles`` follows that script's convention for three angles: the largest angle between any two vertebrae
(the major curve), then the curve next to it on each side when the major curve's middle lies in the upper half of
the image, or the two curves above it when it lies in the lower half. On the 481 training radiographs of
``xray_ap`` this reproduces, from the expert's corners, the dataset's first angle within 1 degree on 476 of them and
its second and third on 439 and 429 (``python bench/radiograph.py``; the script's extra rule for curves that are not
S-shaped is not reproduced).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEFT_SUPERIOR, RIGHT_SUPERIOR, RIGHT_INFERIOR, LEFT_INFERIOR = range(4)


def ordered_quad(points: np.ndarray) -> np.ndarray:
    """Four corner points of a body as left-superior, right-superior, right-inferior, left-inferior.

    Points already so ordered (:func:`is_ordered`: a network's corner channels, the corner network's second look)
    are kept: a body about as tall as wide (10 of the expert's training bodies are taller) would otherwise be turned
    a quarter by the rule below, its tilt read near 90 degrees and every Cobb angle through it with it (found in
    review: an 8.7 degree film read 90, and its Summary said so). Otherwise the points are put in clockwise order
    around their centroid (as seen in the image, y down); on a frontal view a body is wider than tall, so the
    endplates are the longer pair of opposite edges; the superior one is the higher of the two, and its left end
    comes first. Unlike "the two highest points are superior", this holds for a body tilted more than its
    height-to-width angle, as in a severe scoliosis."""
    points = np.asarray(points, np.float64).reshape(4, 2)
    if is_ordered(points):
        return points
    centred = points - points.mean(0)
    clockwise = points[np.argsort(np.arctan2(centred[:, 1], centred[:, 0]), kind="stable")]
    following = np.roll(clockwise, -1, axis=0)
    lengths = np.linalg.norm(following - clockwise, axis=1)
    endplates = (0, 2) if lengths[0] + lengths[2] >= lengths[1] + lengths[3] else (1, 3)
    middle_y = (clockwise[:, 1] + following[:, 1]) / 2
    superior = min(endplates, key=lambda k: middle_y[k])
    return np.roll(clockwise, -superior, axis=0)


MAX_ORDERED_TILT_DEG = 45.0  # a quad read in its given order tilts less than this; one turned a quarter, more


def goes_round_clockwise(quads: np.ndarray) -> np.ndarray:
    """Per quad ``(n, 4, 2)`` [x, y] (y down), whether its corners in turn go round a convex outline clockwise as
    seen in the image, every side of some length: a crossed, reversed or collapsed outline (or a corner that is not
    a number) fails. Frontal (left-superior first) and lateral (anterior-superior first, facing left) bodies alike."""
    c = np.asarray(quads, np.float64).reshape(-1, 4, 2)
    sides = np.roll(c, -1, axis=1) - c  # side k runs from corner k to corner k + 1
    following = np.roll(sides, -1, axis=1)
    return ((sides[..., 0] * following[..., 1] - sides[..., 1] * following[..., 0]) > 0).all(axis=1)


def is_ordered(quad: np.ndarray) -> bool:
    """Whether a quad is already left-superior, right-superior, right-inferior, left-inferior: its edges turn
    clockwise at every corner (a convex, untwisted outline), its superior edge lies above its inferior one, and its
    mid-line tilts less than ``MAX_ORDERED_TILT_DEG`` (the same corners started one place round, a side taken for
    the superior endplate, pass the first two tests with a tilt near 90 degrees)."""
    quad = np.asarray(quad, np.float64).reshape(4, 2)
    superior_y = (quad[LEFT_SUPERIOR, 1] + quad[RIGHT_SUPERIOR, 1]) / 2
    inferior_y = (quad[LEFT_INFERIOR, 1] + quad[RIGHT_INFERIOR, 1]) / 2
    level = abs(tilt_deg(quad[None])[0]) < MAX_ORDERED_TILT_DEG
    return bool(goes_round_clockwise(quad)[0] and superior_y < inferior_y and level)


def midline_vectors(corners: np.ndarray) -> np.ndarray:
    """Each vertebra's mid-line, left side's middle to right side's middle, as unit vectors ``(n, 2)``."""
    corners = np.asarray(corners, np.float64)
    left = (corners[:, LEFT_SUPERIOR] + corners[:, LEFT_INFERIOR]) / 2
    right = (corners[:, RIGHT_SUPERIOR] + corners[:, RIGHT_INFERIOR]) / 2
    vectors = right - left
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def tilt_deg(corners: np.ndarray) -> np.ndarray:
    """Each vertebra's mid-line angle to the image's horizontal, degrees; positive when its right end is higher."""
    v = midline_vectors(corners)
    return np.degrees(np.arctan2(-v[:, 1], v[:, 0]))


def pairwise_angles_deg(corners: np.ndarray) -> np.ndarray:
    """The angle between every two vertebrae's mid-lines, degrees, ``(n, n)``: at most 90, as the AASCE script
    measures it (mid-lines more than 90 degrees apart can only come from a body whose sides were swapped)."""
    v = midline_vectors(corners)
    return np.degrees(np.arccos(np.clip(v @ v.T, 0.0, 1.0)))


def side_heights(corners: np.ndarray) -> np.ndarray:
    """Each body's left and right heights ``(n, 2)``: superior to inferior corner on each side, in pixels."""
    corners = np.asarray(corners, np.float64)
    left = np.linalg.norm(corners[:, LEFT_INFERIOR] - corners[:, LEFT_SUPERIOR], axis=1)
    right = np.linalg.norm(corners[:, RIGHT_INFERIOR] - corners[:, RIGHT_SUPERIOR], axis=1)
    return np.stack([left, right], 1)


@dataclass(frozen=True)
class Curve:
    """One Cobb angle and its end vertebrae (indices into the vertebrae, upper first)."""

    angle_deg: float
    upper: int
    lower: int


@dataclass(frozen=True)
class CobbAngles:
    """The major curve and the two others the AASCE convention reports, in the dataset's column order."""

    major: Curve
    second: Curve
    third: Curve

    def as_array(self) -> np.ndarray:
        return np.array([self.major.angle_deg, self.second.angle_deg, self.third.angle_deg])


def _steepest(angles: np.ndarray, end: int, candidates: range) -> Curve:
    """The curve from vertebra ``end`` to whichever of ``candidates`` makes the largest angle with it."""
    other = max(candidates, key=lambda k: (angles[end, k], -abs(k - end)))
    return Curve(float(angles[end, other]), min(end, other), max(end, other))


def cobb_angles(corners: np.ndarray, image_height: float) -> CobbAngles:
    """The three Cobb angles of a frontal spine with at least two vertebrae (see the module's docstring)."""
    corners = np.asarray(corners, np.float64)
    n = len(corners)
    if n < 2:
        raise ValueError("a Cobb angle needs at least two vertebrae")
    angles = pairwise_angles_deg(corners)
    flat = int(np.argmax(angles))
    upper, lower = sorted(divmod(flat, n))
    major = Curve(float(angles[upper, lower]), upper, lower)
    above = _steepest(angles, upper, range(0, upper + 1))
    superior_mid_y = (corners[:, LEFT_SUPERIOR, 1] + corners[:, RIGHT_SUPERIOR, 1]) / 2
    if superior_mid_y[upper] + superior_mid_y[lower] < image_height:
        third = _steepest(angles, lower, range(lower, n))
    else:
        third = _steepest(angles, above.upper, range(0, above.upper + 1))
    return CobbAngles(major, above, third)
