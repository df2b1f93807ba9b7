"""The sacrum on CT, found by its joints with the pelvis, so that level names are counted from it.

On MRI the networks leave the sacrum unlabelled, and on CT the lowest disc the network finds is not always L5/S1
(a missed disc shifts every name). But on CT the sacrum shows itself: its alae meet the ilia at the sacroiliac
joints, so bone joined to the column reaches far to both sides, which no lumbar vertebra's does (a lumbar vertebra
with its transverse processes spans about ±45-55 mm; the iliac crests beside L4 and L5 are not joined to it). So,
walking down the column from the lowest disc found, along that disc's axis, the first slab whose bone joined to
the column reaches ``SACRUM_REACH_MM`` on both sides is the top of the sacrum; how far below the disc it begins says
how many vertebrae lie between (none when the disc is L5/S1). Where the field of view is too narrow to show the
pelvis, or no such slab lies within ``SEARCH_SPACINGS`` disc spacings, nothing is anchored. Every constant is
anatomy or physics; the rule was checked on the CT phantom's pelvis and on the one labelled CT here that shows a
pelvis (``bench/ct.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from lumbar.labels import VERTEBRA_IDS
from lumbar.tasks.levels import Level, LevelLabelling, renamed_up

SACRUM_REACH_MM = 70.0  # bone joined to the column this far either side of the midline: the alae and the ilia
REACH_BONE_HU = 150.0  # above soft tissue and unenhanced blood, below cortex even at 3 mm partial volume
JOINT_GAP_MM = 4.0  # a sacroiliac joint's cleft (2-4 mm on CT): gaps up to this wide are bridged
COLUMN_CORE_MM = (10.0, 25.0)  # the column in a slab: this far from the midline, and from the disc's centre front-back
MIN_SLAB_MM = 3.0
SEARCH_SPACINGS = 2.5  # look this many disc spacings below the lowest disc: up to two vertebrae missed, never the pubis
ONSET_SPACINGS = 0.15  # the sacrum begins about half a disc (0.15 of a disc spacing) below the L5/S1 disc's centre
DEFAULT_SPACING_MM = 38.0  # one disc to the next in an adult lumbar spine, where fewer than two discs were found


@dataclass(frozen=True)
class Anchor:
    """Where the sacrum begins below the lowest disc found (``depth_mm`` along its axis), and how many vertebrae
    lie between them (0: that disc is L5/S1)."""

    depth_mm: float
    vertebrae_between: int


def wide_enough(n_slices: int, mid: int, lateral_mm: float) -> bool:
    """Whether the field of view reaches ``SACRUM_REACH_MM`` on both sides of the midline slice ``mid``."""
    return min(mid, n_slices - 1 - mid) * lateral_mm >= SACRUM_REACH_MM


def reach_mm(plane: np.ndarray, front_back_mm: np.ndarray, spacing: tuple[float, float, float], mid: int) -> float:
    """How far bone joined to the column reaches from slice ``mid``, on the side where it reaches less: ``plane``
    is a slab's bone projected onto (lateral slice, front-back position ``front_back_mm`` from the disc's centre),
    closed over ``JOINT_GAP_MM``; the column is the piece with most voxels in its core (0 without one)."""
    closed = ndimage.binary_closing(plane, _joint_footprint(spacing[0], spacing[2]))
    pieces, _ = ndimage.label(closed)
    lateral = (np.arange(plane.shape[0]) - mid) * spacing[0]
    core = (np.abs(lateral)[:, None] <= COLUMN_CORE_MM[0]) & (np.abs(front_back_mm)[None, :] <= COLUMN_CORE_MM[1])
    ids = pieces[core & (pieces > 0)]
    if not ids.size:
        return 0.0
    reached = lateral[(pieces == np.bincount(ids).argmax()).any(axis=1)]
    return float(max(0.0, min(-reached.min(), reached.max())))


def _joint_footprint(lateral_mm: float, front_back_mm: float) -> np.ndarray:
    """An ellipse of radius ``JOINT_GAP_MM / 2`` (at least one pixel): closing with it bridges a joint's cleft."""
    a, b = (max(1, round(JOINT_GAP_MM / 2 / size)) for size in (lateral_mm, front_back_mm))
    i, j = np.ogrid[-a : a + 1, -b : b + 1]
    return (i / a) ** 2 + (j / b) ** 2 <= 1


def sacrum_below(
    hu: np.ndarray, spacing: tuple[float, float, float], mid: int, disc: Level, disc_spacing_mm: float
) -> Anchor | None:
    """The sacrum below ``disc`` (the lowest found) on display slices ``hu (n, rows, cols)``: the first two
    consecutive slabs, walking down the disc's axis, whose bone joined to the column reaches ``SACRUM_REACH_MM`` on
    both sides. None where the field of view is too narrow to tell or none is found within ``SEARCH_SPACINGS``."""
    if not wide_enough(hu.shape[0], mid, spacing[0]):
        return None
    axis = np.asarray(disc.axis, float)
    rows, cols = np.meshgrid(np.arange(hu.shape[1]) * spacing[1], np.arange(hu.shape[2]) * spacing[2], indexing="ij")
    below = -((rows - disc.centroid_mm[0]) * axis[0] + (cols - disc.centroid_mm[1]) * axis[1])  # mm toward the feet
    across = np.rint(((rows - disc.centroid_mm[0]) * axis[1] - (cols - disc.centroid_mm[1]) * axis[0]) / spacing[2])
    step = max(MIN_SLAB_MM, 1.5 * max(spacing[1:]))
    slabs = int(np.ceil(SEARCH_SPACINGS * disc_spacing_mm / step))
    slab_of = np.floor(below / step).astype(int)
    searched = (slab_of >= 0) & (slab_of < slabs)
    if not searched.any():
        return None
    low, high = int(across[searched].min()), int(across[searched].max())
    rows_in, cols_in = (np.flatnonzero(searched.any(axis=axis)) for axis in (1, 0))
    box = (slice(rows_in[0], rows_in[-1] + 1), slice(cols_in[0], cols_in[-1] + 1))
    k, r, c = np.nonzero((hu[:, box[0], box[1]] >= REACH_BONE_HU) & searched[box])
    r, c = r + box[0].start, c + box[1].start
    projected = np.zeros((slabs, hu.shape[0], high - low + 1), bool)
    projected[slab_of[r, c], k, across[r, c].astype(int) - low] = True
    front_back = np.arange(low, high + 1) * spacing[2]
    wide = [reach_mm(projected[j], front_back, spacing, mid) >= SACRUM_REACH_MM for j in range(slabs)]
    for j in range(slabs - 1):
        if wide[j] and wide[j + 1]:
            depth = j * step
            return Anchor(depth, vertebrae_between(depth, disc_spacing_mm))
    return None


def vertebrae_between(depth_mm: float, disc_spacing_mm: float) -> int:
    """How many vertebrae lie between a disc and the sacrum beginning ``depth_mm`` below it: the sacrum begins
    ``ONSET_SPACINGS`` of a disc spacing below L5/S1, and each vertebra in between adds one spacing."""
    return max(0, round(depth_mm / disc_spacing_mm - ONSET_SPACINGS))


def disc_spacing_mm(discs: list[Level]) -> float:
    """The median distance between neighbouring discs' centres (``DEFAULT_SPACING_MM`` for fewer than two)."""
    centres = np.array([d.centroid_mm for d in discs])
    if len(centres) < 2:
        return DEFAULT_SPACING_MM
    return float(np.median(np.linalg.norm(np.diff(centres, axis=0), axis=1)))


def anchored(levels: LevelLabelling, anchor: Anchor, spacing: tuple[float, float, float]) -> LevelLabelling:
    """``levels`` named from the sacrum: moved up by the vertebrae between the lowest disc and the sacrum, and,
    where there are any, the bone below the sacrum's top (named with the vertebra below the lowest disc) given to
    S1, with a review flag for each disc missed."""
    k = anchor.vertebrae_between
    if k == 0:
        return levels
    lowest = levels.discs[0]
    out = renamed_up(levels, k)
    instances = out.instances
    below_disc = VERTEBRA_IDS[out.levels[0].name] if out.levels[0].kind == "vertebra" else None
    if below_disc is None:
        return out
    where = np.argwhere(instances == below_disc)
    points = where[:, 1:] * np.array(spacing[1:])
    along = (points - np.array(lowest.centroid_mm)) @ np.array(lowest.axis)
    sacral = along <= -anchor.depth_mm
    instances[tuple(where[sacral].T)] = VERTEBRA_IDS["S1"]
    kept = replace(out.levels[0], centroid_mm=_centre(points[~sacral]), voxels=int((~sacral).sum()))
    s1 = Level("S1", VERTEBRA_IDS["S1"], "vertebra", _centre(points[sacral]), int(sacral.sum()))
    missed = (
        f"the lowest disc found is {out.discs[0].name}: {k} disc{'s' if k > 1 else ''} between it and the sacrum "
        "not found (names counted from the sacrum, which CT shows by its joints with the ilia)"
    )
    return LevelLabelling(
        instances, [s1, kept, *out.levels[1:]] if sacral.any() else [kept, *out.levels[1:]], [*out.flags, missed]
    )


def _centre(points: np.ndarray) -> tuple[float, float]:
    """The mean (row, col) of ``points`` in mm ((nan, nan) for none)."""
    if not len(points):
        return (float("nan"), float("nan"))
    mean = points.mean(axis=0)
    return (float(mean[0]), float(mean[1]))
