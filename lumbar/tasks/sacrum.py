"""The sacrum on CT, found by its joints with the pelvis, so that level names are counted from it.

On MRI the networks leave the sacrum unlabelled, and on CT the lowest disc the network finds is not always L5/S1
(a missed disc shifts every name). But on CT the sacrum shows itself: its alae meet the ilia at the sacroiliac
joints, so bone joined to the column reaches far to both sides, which a lumbar vertebra's does not (with its
transverse processes it spans about ±45-55 mm; the iliac crests beside L4 and L5 lie apart from it). So, walking
down the column from the lowest disc found, along that disc's axis, the first run of slabs at least
``MIN_RUN_MM`` long whose bone joined to the column reaches ``SACRUM_REACH_MM`` on both sides is the sacrum; how
far below the disc it begins says how many vertebrae lie between (none when the disc is L5/S1).

Nothing is anchored where the field of view is too narrow to show the pelvis, where no such run lies within
``SEARCH_SPACINGS`` disc spacings, or where the vertebra above the lowest disc reaches as far (ribs, a sacral disc
taken for L5/S1, or a transitional L5 joined to the ilium: the bone below would then not be the first sacral
segment). Every constant is anatomy or physics; the rule was checked on the CT phantom's pelvis and on the one
labelled CT here that shows a pelvis (``bench/ct.py``), which is not a validation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from lumbar.labels import VERTEBRA_IDS
from lumbar.tasks.levels import LUMBAR_GAPS, NO_SACRUM_IN_VIEW, Level, LevelLabelling, renamed_up

SACRUM_REACH_MM = 70.0  # bone joined to the column this far either side of the midline: the alae and the ilia
REACH_BONE_HU = 150.0  # above soft tissue and unenhanced blood, below cortex even at 3 mm partial volume
JOINT_GAP_MM = 4.0  # a sacroiliac joint's cleft (2-4 mm on CT) is bridged (and up to two voxels more: rounding)
COLUMN_CORE_MM = (10.0, 25.0)  # the column in a slab: this far from the midline, and from the disc's centre front-back
FRONT_MM = 25.0  # nothing further in front of the disc's centre is projected: bowel, vessels, the iliac fossae
MIN_SLAB_MM = 3.0
MIN_RUN_MM = 12.0  # the ilia meet the sacrum over 40-60 mm: a shorter run of wide slabs is something else
SEARCH_SPACINGS = 2.5  # look this many disc spacings below the lowest disc: up to two vertebrae missed, never the pubis
ABOVE_SPACINGS = 0.6  # the vertebra above the lowest disc: from half a disc above its centre to this many spacings
ONSET_SPACINGS = 0.15  # the sacrum begins about half a disc (0.15 of a disc spacing) below the L5/S1 disc's centre
DEFAULT_SPACING_MM = 38.0  # one disc to the next in an adult lumbar spine, where fewer than two discs were found

JOINED_ABOVE = (
    "bone above the lowest disc found is joined to the pelvis too (ribs, a sacral disc taken for L5/S1, or a "
    "transitional L5 joined to the ilium): the sacrum was not used to count the levels"
)
ANCHORED = (
    "level names counted from the sacrum, found where bone joined to the column first reaches both ilia: a rule "
    "checked on one real CT here (bench/ct.py); check the count from the sacrum"
)


@dataclass(frozen=True)
class Anchor:
    """Where the sacrum begins below the lowest disc found (``depth_mm`` along its axis), and how many vertebrae
    lie between them (0: that disc is L5/S1)."""

    depth_mm: float
    vertebrae_between: int


def field_reach_mm(n_slices: int, mid: int, lateral_mm: float) -> float:
    """How far the field of view reaches from the midline slice ``mid``, on its narrower side."""
    return min(mid, n_slices - 1 - mid) * lateral_mm


def wide_enough(n_slices: int, mid: int, lateral_mm: float) -> bool:
    """Whether the field of view reaches ``SACRUM_REACH_MM`` on both sides of the midline slice ``mid``."""
    return field_reach_mm(n_slices, mid, lateral_mm) >= SACRUM_REACH_MM


def _closed(plane: np.ndarray, lateral_mm: float, front_back_mm: float) -> np.ndarray:
    """``plane`` closed with an ellipse of radius ``JOINT_GAP_MM / 2`` (at least one pixel), so that a joint's
    cleft no wider than ``JOINT_GAP_MM`` joins the bones either side."""
    a, b = (max(1, int(np.ceil(JOINT_GAP_MM / 2 / size - 1e-9))) for size in (lateral_mm, front_back_mm))
    i, j = np.ogrid[-a : a + 1, -b : b + 1]
    padded = np.pad(plane, ((a, a), (b, b)))  # bone at the plane's edge is not eroded away
    return ndimage.binary_closing(padded, (i / a) ** 2 + (j / b) ** 2 <= 1)[a:-a, b:-b]


def reach_mm(plane: np.ndarray, front_back_mm: np.ndarray, spacing: tuple[float, float, float], mid: int) -> float:
    """How far bone joined to the column reaches from slice ``mid``, on the side where it reaches less: ``plane``
    is a slab's bone projected onto (lateral slice, front-back position ``front_back_mm`` from the disc's centre),
    closed over a joint's cleft; the column is the piece with most voxels in its core (0 without one)."""
    pieces, _ = ndimage.label(_closed(plane, spacing[0], spacing[2]))
    lateral = (np.arange(plane.shape[0]) - mid) * spacing[0]
    core = (np.abs(lateral)[:, None] <= COLUMN_CORE_MM[0]) & (np.abs(front_back_mm)[None, :] <= COLUMN_CORE_MM[1])
    ids = pieces[core & (pieces > 0)]
    if not ids.size:
        return 0.0
    reached = lateral[(pieces == np.bincount(ids).argmax()).any(axis=1)]
    return float(max(0.0, min(-reached.min(), reached.max())))


def reach_profile(
    hu: np.ndarray, spacing: tuple[float, float, float], mid: int, disc: Level, disc_spacing_mm: float
) -> list[tuple[float, float]]:
    """(depth, reach) of each slab along ``disc``'s axis, from ``ABOVE_SPACINGS`` disc spacings above its centre
    (negative depths) to ``SEARCH_SPACINGS`` below, on display slices ``hu (n, rows, cols)``: the slab's bone
    (``REACH_BONE_HU`` or more, from ``FRONT_MM`` in front of the disc's centre backwards) projected along the
    axis, and :func:`reach_mm` of it. Slabs are ``MIN_SLAB_MM`` thick, or one and a half of the in-plane voxel's
    largest side, and start at multiples of that depth. Empty where the field of view is too narrow to show the
    pelvis."""
    if not wide_enough(hu.shape[0], mid, spacing[0]):
        return []
    axis = np.asarray(disc.axis, float)
    rows, cols = np.meshgrid(np.arange(hu.shape[1]) * spacing[1], np.arange(hu.shape[2]) * spacing[2], indexing="ij")
    below = -((rows - disc.centroid_mm[0]) * axis[0] + (cols - disc.centroid_mm[1]) * axis[1])  # mm toward the feet
    across = (rows - disc.centroid_mm[0]) * axis[1] - (cols - disc.centroid_mm[1]) * axis[0]  # mm toward the back
    step = max(MIN_SLAB_MM, 1.5 * max(spacing[1:]))
    first = int(np.floor(-ABOVE_SPACINGS * disc_spacing_mm / step))
    slabs = int(np.ceil(SEARCH_SPACINGS * disc_spacing_mm / step)) - first
    slab_of = np.floor(below / step).astype(int) - first
    searched = (slab_of >= 0) & (slab_of < slabs) & (across >= -FRONT_MM)
    if not searched.any():
        return []
    bins = np.rint(across / spacing[2]).astype(int)
    low, high = int(bins[searched].min()), int(bins[searched].max())
    rows_in, cols_in = (np.flatnonzero(searched.any(axis=a)) for a in (1, 0))
    box = (slice(rows_in[0], rows_in[-1] + 1), slice(cols_in[0], cols_in[-1] + 1))
    k, r, c = np.nonzero((hu[:, box[0], box[1]] >= REACH_BONE_HU) & searched[box])
    r, c = r + box[0].start, c + box[1].start
    projected = np.zeros((slabs, hu.shape[0], high - low + 1), bool)
    projected[slab_of[r, c], k, bins[r, c] - low] = True
    front_back = np.arange(low, high + 1) * spacing[2]
    return [((first + j) * step, reach_mm(projected[j], front_back, spacing, mid)) for j in range(slabs)]


def sacrum_below(profile: list[tuple[float, float]], disc_spacing_mm: float) -> Anchor | None:
    """The sacrum in a :func:`reach_profile` of the lowest disc: the first run of slabs below the disc's centre,
    ``MIN_RUN_MM`` long, whose bone joined to the column reaches ``SACRUM_REACH_MM`` on both sides (None without)."""
    below = [(depth, reach) for depth, reach in profile if depth >= 0]
    if len(below) < 2:
        return None
    run = max(2, int(np.ceil(MIN_RUN_MM / (below[1][0] - below[0][0]) - 1e-9)))
    wide = [reach >= SACRUM_REACH_MM for _, reach in below]
    for j in range(len(wide) - run + 1):
        if all(wide[j : j + run]):
            depth = below[j][0]
            return Anchor(depth, vertebrae_between(depth, disc_spacing_mm))
    return None


def joined_above(profile: list[tuple[float, float]], disc_spacing_mm: float) -> bool:
    """Whether, in a :func:`reach_profile` of the lowest disc, bone of the vertebra above it (the slabs ending at
    least ``ONSET_SPACINGS`` disc spacings above its centre: its own level is the disc) reaches
    ``SACRUM_REACH_MM`` on both sides, as a lumbar vertebra's never does."""
    if len(profile) < 2:
        return False
    step = profile[1][0] - profile[0][0]
    return any(
        reach >= SACRUM_REACH_MM for depth, reach in profile if depth + step <= -ONSET_SPACINGS * disc_spacing_mm
    )


HEAD_DOWN = (
    "a sacrum joined to the ilia lies above the highest disc found: the CT reads head down (its header's head-to-feet "
    "axis flipped?), so every name is counted from the wrong end and each body's upper and lower endplates are "
    "swapped; check the file's orientation"
)


def pelvis_above(
    levels: LevelLabelling, hu: np.ndarray, spacing: tuple[float, float, float], mid: int, between_mm: float
) -> bool:
    """Whether the sacrum rule (:func:`sacrum_below`) finds a sacrum joined to the ilia above the highest disc, looking
    up its axis as it looks down from the lowest: the pelvis at the head end is a header's axis flipped. Only where
    the field shows the pelvis and the chain of discs reaches near it; the network-confidence checks of
    ``tasks/orientation.py`` (pictures, and MRI volumes' headers) are not asked of CT, where they do not tell head
    from feet."""
    top = levels.discs[-1]
    up = replace(top, axis=(-top.axis[0], -top.axis[1]))
    return sacrum_below(reach_profile(hu, spacing, mid, up, between_mm), between_mm) is not None


NO_ANCHOR = (
    "levels counted up from the lowest disc found, taken as L5/S1: no sacrum joined to the ilia was found below it "
    "(the field of view may end above the pelvis or be too narrow to show it), so a missed lowest disc or a field "
    "that ends above the sacrum would shift every name; check the count from the sacrum"
)


def counted_from_sacrum(
    levels: LevelLabelling, hu: np.ndarray, spacing: tuple[float, float, float], mid: int
) -> LevelLabelling:
    """``levels`` named from the sacrum where the CT shows it below the lowest disc (this module's rule), with the
    review reason that the rule was checked on one CT; as counted from the lowest disc, with ``NO_ANCHOR``, where it
    does not, or where the vertebra above that disc reaches the pelvis too (and the reason why), or where the pelvis
    lies above the highest disc and none below the lowest (``HEAD_DOWN`` first among these: a pelvis at the feet
    rules a flipped head-to-feet axis out, and the ribs above a thoracolumbar field must not outweigh it)."""
    if not levels.discs:
        return levels
    between = disc_spacing_mm(levels.discs)
    profile = reach_profile(hu, spacing, mid, levels.discs[0], between)
    anchor = sacrum_below(profile, between)
    said = [flag for flag in levels.flags if not flag.startswith(NO_SACRUM_IN_VIEW)]  # NO_ANCHOR says it too
    if anchor is None and pelvis_above(levels, hu, spacing, mid, between):
        return replace(levels, flags=[HEAD_DOWN, *said, NO_ANCHOR])
    if anchor is None:
        return replace(levels, flags=[*said, NO_ANCHOR])
    if joined_above(profile, between):
        return replace(levels, flags=[*said, JOINED_ABOVE, NO_ANCHOR])
    out = anchored(levels, anchor, spacing)
    return replace(out, flags=[*out.flags, ANCHORED])


def head_down_first(reasons: list[str]) -> list[str]:
    """``reasons`` with ``HEAD_DOWN`` moved first where it is among them, the others in their order: before any
    other reason, a reader must see that every name is counted from the wrong end."""
    return sorted(reasons, key=lambda reason: reason != HEAD_DOWN)


def vertebrae_between(depth_mm: float, disc_spacing_mm: float) -> int:
    """How many vertebrae lie between a disc and the sacrum beginning ``depth_mm`` below it: the sacrum begins
    ``ONSET_SPACINGS`` of a disc spacing below L5/S1, and each vertebra in between adds one spacing."""
    return max(0, int(np.floor(depth_mm / disc_spacing_mm - ONSET_SPACINGS + 0.5)))


def disc_spacing_mm(discs: list[Level]) -> float:
    """The median distance between neighbouring discs' centres over the lowest ``LUMBAR_GAPS`` gaps
    (``DEFAULT_SPACING_MM`` for fewer than two discs)."""
    centres = np.array([d.centroid_mm for d in discs[: LUMBAR_GAPS + 1]])
    if len(centres) < 2:
        return DEFAULT_SPACING_MM
    return float(np.median(np.linalg.norm(np.diff(centres, axis=0), axis=1)))


def anchored(levels: LevelLabelling, anchor: Anchor, spacing: tuple[float, float, float]) -> LevelLabelling:
    """``levels`` named from the sacrum: moved up by the vertebrae between the lowest disc and the sacrum, the bone
    named below the lowest disc cut where the sacrum begins: S1 below, the vertebra above it above (which may hold
    the missed disc and the top of S1: the sacrum's joints with the ilia begin a little below its top). With two or
    more discs missed, the bone between holds that many vertebrae that cannot be told apart: it is left unnamed,
    not measured as one. A review reason says how many were missed."""
    k = anchor.vertebrae_between
    if k == 0:
        return levels
    lowest = levels.discs[0]
    out = renamed_up(levels, k)
    missed = (
        f"the lowest disc found is {out.discs[0].name}: {k} disc{'s' if k > 1 else ''} between it and the sacrum "
        "not found (names counted from the sacrum)"
    )
    flags = [*out.flags, missed]
    if out.levels[0].kind != "vertebra":  # no bone was named below the lowest disc: nothing to cut
        return LevelLabelling(out.instances, out.levels, flags)
    instances = out.instances
    where = np.argwhere(instances == out.levels[0].label)
    points = where[:, 1:] * np.array(spacing[1:])
    sacral = (points - np.array(lowest.centroid_mm)) @ np.array(lowest.axis) <= -anchor.depth_mm
    instances[tuple(where[sacral].T)] = VERTEBRA_IDS["S1"]
    kept = []
    if sacral.any():
        kept.append(Level("S1", VERTEBRA_IDS["S1"], "vertebra", _centre(points[sacral]), int(sacral.sum())))
    if k == 1 and (~sacral).any():
        kept.append(replace(out.levels[0], centroid_mm=_centre(points[~sacral]), voxels=int((~sacral).sum())))
    else:
        instances[tuple(where[~sacral].T)] = 0
    return LevelLabelling(instances, [*kept, *out.levels[1:]], flags)


def _centre(points: np.ndarray) -> tuple[float, float]:
    """The mean (row, col) of ``points`` in mm."""
    mean = points.mean(axis=0)
    return (float(mean[0]), float(mean[1]))
