"""Sagittal alignment from vertebral body corners on a lateral view: heights, wedging, slips, lordosis, disc angles.

Corners are ``(n, 4, 2)`` [x, y] (x = column, y = row, origin top-left), vertebrae top to bottom, each in the order
anterior-superior, posterior-superior, posterior-inferior, anterior-inferior, measured in a frame where the patient
faces left (anterior = smaller x); a film facing right is mirrored before and after (:func:`facing_left`). Lengths
come out in the corners' units (mm where the pixel size is known).

A tilt is the angle of an endplate, posterior corner to anterior corner, below the horizontal: positive when its
anterior end lies lower (the sacrum's superior endplate tilts some 40 degrees that way). Lumbar lordosis is the
Cobb angle from L1's superior endplate to S1's (the tilt of S1's minus that of L1's); a disc's angle is the tilt of
the lower body's superior endplate minus that of the upper body's inferior endplate, positive when the disc opens
anteriorly. A slip (Meyerding 1932) is how far the upper body's posterior-inferior corner lies in front of the lower
body's posterior-superior corner, along the disc's mid-plane (the bisector of the endplates bounding it), in mm and
in % of the lower body's superior endplate's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbar.tasks.cobb import goes_round_clockwise

AS, PS, PI, AI = range(4)
MAX_DISC_OPENING_DEG = 60.0  # a lumbar disc opens by at most about 30-40 degrees (L5/S1); beyond this, no disc


def facing_left(corners: np.ndarray, width: float) -> np.ndarray:
    """Corners of a film whose patient faces right, mirrored into the frame where the patient faces left
    (x -> width - 1 - x; anterior and posterior corners keep their roles). Mirroring twice gives the points back."""
    mirrored = np.asarray(corners, np.float64).copy()
    mirrored[..., 0] = width - 1 - mirrored[..., 0]
    return mirrored


def body_corners(mask: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The four corners [x, y] of a vertebral body outlined by ``mask`` (rows, columns; the patient facing left),
    ``up`` the direction of the spine's axis at the body, towards the head.

    In the frame of that axis the body's pixels are scaled so that it spans 2 along the axis and across it (1st to
    99th percentile, so that a stray pixel does not stretch it); each corner is the pixel furthest along its diagonal
    (anterior-superior: furthest forward plus furthest up): on a rounded corner, the point of the outline where
    endplate turns into wall, as an annotator marks it. Heights between such corners run 1-3 mm shorter than the
    body's full height where its corners are rounded."""
    rows, cols = np.nonzero(mask)
    if len(rows) < 4:
        raise ValueError("a body needs at least four pixels")
    points = np.stack([cols, rows], axis=1).astype(np.float64)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    forward = np.array([up[1], -up[0]])  # up turned a quarter: towards smaller x when up points to -y
    if forward[0] > 0:
        forward = -forward
    scaled = []
    for values in (points @ forward, points @ up):  # where the body is does not move an argmax below: no centring
        low, high = np.percentile(values, [1, 99])
        scaled.append(values / max((high - low) / 2, 1e-9))
    a, u = scaled
    return points[[np.argmax(a + u), np.argmax(-a + u), np.argmax(-a - u), np.argmax(a - u)]]


MAX_ANGLE_DEG = 90.0  # a lordosis or a disc's angle beyond this is no spine's: the corners are wrong


def _tilt_deg(anterior: np.ndarray, posterior: np.ndarray) -> np.ndarray:
    d = anterior - posterior
    tilt = np.degrees(np.arctan2(d[:, 1], -d[:, 0]))
    return np.where(np.linalg.norm(d, axis=1) > 0, tilt, np.nan)  # an endplate of no length has no direction


def superior_tilt_deg(corners: np.ndarray) -> np.ndarray:
    """Each body's superior endplate tilt (degrees, positive = anterior end lower; NaN for an endplate of no
    length)."""
    c = np.asarray(corners, np.float64).reshape(-1, 4, 2)
    return _tilt_deg(c[:, AS], c[:, PS])


def inferior_tilt_deg(corners: np.ndarray) -> np.ndarray:
    """Each body's inferior endplate tilt (degrees, positive = anterior end lower; NaN for no length)."""
    c = np.asarray(corners, np.float64).reshape(-1, 4, 2)
    return _tilt_deg(c[:, AI], c[:, PI])


def _wrapped_deg(lower_tilt: float, upper_tilt: float) -> float:
    """``lower_tilt - upper_tilt`` wrapped into (-180, 180]."""
    return float((lower_tilt - upper_tilt + 180.0) % 360.0 - 180.0)


def angle_between_deg(lower_tilt: float, upper_tilt: float, limit: float = MAX_ANGLE_DEG) -> float:
    """``lower_tilt - upper_tilt`` wrapped into (-180, 180]; NaN beyond ``limit`` either way."""
    difference = _wrapped_deg(lower_tilt, upper_tilt)
    return difference if abs(difference) <= limit else float("nan")


def corners_in_order(corners: np.ndarray) -> np.ndarray:
    """Per body, whether its corners outline one: anterior-superior, posterior-superior, posterior-inferior and
    anterior-inferior in turn go round a convex quadrilateral clockwise on the film (the patient facing left), every
    side of some length. Corners crossed (a superior pair swapped), run the other way or fallen onto one line give
    heights, tilts and slips that are no body's (:func:`lumbar.tasks.cobb.goes_round_clockwise`)."""
    return goes_round_clockwise(corners)


def beyond_film(corners: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per body (corners ``(n, k, 2)`` [x, y] in the film's pixels), whether a corner lies beyond the film of
    ``shape`` (rows, columns): the network placed it where the film shows nothing, as it does for a body the film's
    edge cuts, and for some beside the edge (``bench/radiograph_lateral.py`` counts how many such bodies of held-out
    films the film truly cut)."""
    c = np.asarray(corners, np.float64)
    size = np.array(shape[::-1], np.float64) - 1
    return ((c < 0) | (c > size)).any(axis=(-2, -1))


def heights(corners: np.ndarray) -> np.ndarray:
    """Each body's anterior, middle and posterior height ``(n, 3)``: the anterior corners' distance, the distance
    between the endplates' midpoints, the posterior corners' distance."""
    c = np.asarray(corners, np.float64).reshape(-1, 4, 2)
    anterior = np.linalg.norm(c[:, AS] - c[:, AI], axis=1)
    posterior = np.linalg.norm(c[:, PS] - c[:, PI], axis=1)
    middle = np.linalg.norm((c[:, AS] + c[:, PS]) / 2 - (c[:, AI] + c[:, PI]) / 2, axis=1)
    return np.stack([anterior, middle, posterior], axis=1)


def disc_heights(upper: np.ndarray, lower: np.ndarray) -> tuple[float, float, float]:
    """The anterior, middle and posterior height of the space between the bodies with corners ``upper`` and
    ``lower``: anterior corners' distance, the distance between the two endplates' midpoints, posterior corners'."""
    upper, lower = np.asarray(upper, np.float64), np.asarray(lower, np.float64)
    middle = np.linalg.norm((upper[AI] + upper[PI]) / 2 - (lower[AS] + lower[PS]) / 2)
    return float(np.linalg.norm(upper[AI] - lower[AS])), float(middle), float(np.linalg.norm(upper[PI] - lower[PS]))


def space_ratios(corners: list[np.ndarray] | np.ndarray, names: list[str]) -> list[float]:
    """Each space between neighbouring bodies (corners top to bottom) over their mean middle height, S1's left out
    (its inferior pair is a definition): no disc is as tall as its bodies, a missed body's space is."""
    ratios = []
    for k in range(len(corners) - 1):
        bodies = [heights(corners[j])[0, 1] for j in (k, k + 1) if names[j] != "S1"]
        ratios.append(disc_heights(corners[k], corners[k + 1])[1] / float(np.mean(bodies)))
    return ratios


def slip(upper: np.ndarray, lower: np.ndarray) -> tuple[float, float]:
    """(slip, slip in % of the lower superior endplate's length) of the body with corners ``upper`` over the one
    with corners ``lower``: positive = anterolisthesis, negative = retrolisthesis. Measured along the disc's
    mid-plane, the bisector of the two endplates bounding it (posterior to anterior), so that two bodies turned
    against each other by the lordosis do not read as displaced, as along the lower endplate alone they did (its
    tilt against the upper one's carries the disc's posterior height into the slip). NaN where a corner is not a
    number, the lower endplate has no length, or the two lie more than ``MAX_DISC_OPENING_DEG`` apart (corners out
    of order); along the lower endplate alone where the upper one has no length."""
    upper, lower = np.asarray(upper, np.float64), np.asarray(lower, np.float64)
    endplates = lower[AS] - lower[PS], upper[AI] - upper[PI]
    lengths = [float(np.linalg.norm(e)) for e in endplates]
    if not np.isfinite(lengths).all() or lengths[0] == 0:
        return float("nan"), float("nan")
    units = [e / n for e, n in zip(endplates, lengths) if n > 0]
    if len(units) == 2 and float(units[0] @ units[1]) < np.cos(np.radians(MAX_DISC_OPENING_DEG)):
        return float("nan"), float("nan")  # corners out of order: no disc opens that far
    direction = sum(units)
    offset = float((upper[PI] - lower[PS]) @ (direction / np.linalg.norm(direction)))
    return offset, 100.0 * offset / lengths[0]


@dataclass(frozen=True)
class SagittalAlignment:
    """Lordosis L1-S1 and the angle of every disc between neighbouring bodies found (upper name -> degrees); NaN
    where the corners give no spine's angle (:func:`angle_between_deg`; a disc's beyond ``MAX_DISC_OPENING_DEG``,
    where :func:`slip` too finds no disc)."""

    lordosis_deg: float | None
    disc_angles_deg: dict[str, float]
    review: tuple[str, ...] = ()  # why the lordosis is not given: a reading no spine has (corners misplaced)


def alignment(names: list[str], corners: np.ndarray) -> SagittalAlignment:
    """Lordosis (where L1 and S1 are both found) and each disc's angle between bodies named one level apart."""
    from lumbar.labels import SPINE_ORDER
    from lumbar.tasks.measurements import lordosis_misread

    c = np.asarray(corners, np.float64).reshape(-1, 4, 2)
    at = {name: k for k, name in enumerate(names)}
    lordosis, review = None, ()
    if "L1" in at and "S1" in at:
        lordosis = _wrapped_deg(superior_tilt_deg(c[at["S1"]])[0], superior_tilt_deg(c[at["L1"]])[0])
        misread = lordosis_misread(lordosis)
        if misread:
            lordosis, review = float("nan"), (misread,)
    angles = {}
    for name, k in at.items():
        below = SPINE_ORDER[SPINE_ORDER.index(name) + 1] if name != SPINE_ORDER[-1] else None
        if below in at:
            angles[name] = angle_between_deg(
                superior_tilt_deg(c[at[below]])[0], inferior_tilt_deg(c[k])[0], MAX_DISC_OPENING_DEG
            )
    return SagittalAlignment(lordosis, angles, review)
