"""Separate and name every vertebra and disc (L1..L5, S1, T12 and above when visible).

Spine-chain reasoning on the semantic map, in display slices ``(n, rows, cols)``:

1. disc candidates are connected components of the disc class, measured in mm;
2. candidates off the spinal column (far from a smooth curve through the others — or, for the top and
   bottom discs, from the line through their two neighbours — or behind the canal) or inside a vertebral body
   (bone in front of them and behind) are dropped, and pieces of one disc split in two are merged;
3. each disc gets a plane from its principal axes; vertebra voxels are assigned to the interval
   between two disc planes (behind the canal each plane lies lower, as the arches slope down behind their
   bodies), then whole vertebra components are kept together;
4. names are counted up from the lowest disc, taken as L5/S1 (the sacrum itself is not segmented:
   SPIDER leaves it unlabelled): L5/S1, L4/L5, ...; the pipeline then asks the lumbosacral check
   (:mod:`lumbar.tasks.lumbosacral`) whether that disc looks like L5/S1 with the sacrum below it.

Bone more than one level's spacing above the highest disc found is left unnamed, and flagged where a body's worth
of it lies most of a level further: its discs were missed (a long field of view), and the disc planes alone would
give all of it the top vertebra's name.

A gap about twice (or three times) as long as the gaps beside it holds a disc (or two) the network missed: it is
counted, so that the names above it stay right and the two vertebrae either side of it get a name each, and the
count is a review flag.

Anything that does not fit a normal spine (a small lowest disc, a gap where a disc should be,
two discs with no vertebra between them, too few lumbar discs) becomes a review flag, never a silent guess.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from lumbar.labels import CANAL_LABEL, CAUDAL_TO_CRANIAL, VERTEBRA_IDS, Structure, disc_label, disc_name

MIN_DISC_AREA_MM2 = 25.0
MAX_OFF_CHAIN_MM = 22.0
MAX_OFF_CHAIN_LOWEST_MM = 35.0  # L5/S1 behind the column above it: the lumbosacral angle
MERGE_ALONG_AXIS_MM = 4.0
MIN_LOWEST_THICKNESS_FRACTION = 0.4  # of the other discs' mean height: thinner, a sacral remnant disc is possible
MIN_INTERIOR_AREA_FRACTION = 0.3  # of the median disc: smaller pieces between two discs are not discs
MIDLINE_MM = 15.0  # bone not joined to anything this close to the mid-sagittal slice is not the column's
POSTERIOR_MARGIN_MM = 3.0  # bone this far behind a disc's posterior edge is posterior elements, not a body
ARCH_DROP_FRACTION = 0.3  # of the disc spacing: behind the canal's front a disc's plane lies this much lower
CANAL_NEAR_PLANE_MM = 6.0  # canal this close to a disc's plane gives the canal's front at that disc
HALF_SLAB_MM = 12.0  # the slab around the mid-sagittal slice where discs and the canal are looked for
NO_SACRUM_IN_VIEW = "no sacrum in view"  # how the flag of :func:`_sacrum_flags` begins
MIN_GAP_FRACTION = 0.55  # of the median distance between neighbouring discs: closer, not two levels
MAX_GAP_FRACTION = 1.5  # of the gaps beside it: a missed disc doubles a gap, while spacing changes gradually
NEIGHBOUR_GAPS = 2  # gaps on each side that a gap is judged against
MAX_COUNTED_MISSED = 2  # discs counted in one gap from the spacing; a longer gap is flagged, not counted
INSIDE_BODY_MM = 6.0  # a disc candidate with bone this far beyond both its front and back edges lies inside a body
INSIDE_BODY_FRACTION = 0.5  # of the points looked at on each side
MIN_BODY_FRACTION = 0.35  # of the typical body area: a smaller piece of bone in line with the discs is not a body
_NAME = r"(?:T1[0-2]|T[1-9]|L[1-5]|S1)\b"
COUNTED_NAME = re.compile(  # level names that flags give from the count, renamed with the levels
    rf"(?<=\bso ){_NAME}(?= and every name above)|(?<=missing near ){_NAME}|(?<=\bmm above ){_NAME}(?=,)"
)
MIN_UNNAMED_ABOVE_FRACTION = 0.75  # of a level: unnamed bone above the top vertebra from which a review is asked
MIN_UNNAMED_ABOVE_AREA = 0.1  # of a level squared: that much of it (mid-sagittal) asks for the review, not a fleck
MIN_CUT_DISC_FRACTION = 0.5  # of the median disc: a highest disc cut by the top edge and smaller is mostly outside
LUMBAR_GAPS = 3  # the lowest gaps (L5, L4, L3): the lumbar disc spacing (thoracic discs lie closer together)
FIRST_THORACIC_GAP = 5  # gaps caudal first: L5, L4, L3, L2, L1, then T12 (between T12/L1 and T11/T12) and up
MAX_THORACIC_FRACTION = 1.25  # of the lumbar gaps: thoracic bodies are smaller (SPIDER: bench/missed_disc.py)


@dataclass
class Level:
    """One named structure: a vertebra or a disc."""

    name: str
    label: int
    kind: str  # "vertebra" or "disc"
    centroid_mm: tuple[float, float]  # (row, col) in the display slice frame, mm
    voxels: int
    axis: tuple[float, float] = (0.0, 0.0)  # unit vector toward superior in (row, col), discs only


@dataclass
class LevelLabelling:
    """Instance labels on the display slices, the named levels (caudal to cranial) and review flags."""

    instances: np.ndarray
    levels: list[Level]
    flags: list[str] = field(default_factory=list)

    @property
    def discs(self) -> list[Level]:
        return [lv for lv in self.levels if lv.kind == "disc"]

    @property
    def vertebrae(self) -> list[Level]:
        return [lv for lv in self.levels if lv.kind == "vertebra"]


@dataclass
class _Disc:
    voxels: np.ndarray  # (m, 3) indices
    centroid: np.ndarray  # (row, col) mm
    axis: np.ndarray  # unit normal toward superior, (row, col)
    area_mm2: float
    found: bool = True  # False: a disc the network missed, placed from the spacing (its voxels: its lower neighbour's)


def _disc_from_voxels(voxels: np.ndarray, spacing: tuple[float, float, float]) -> _Disc:
    pts = voxels[:, 1:] * np.array(spacing[1:])
    centroid = pts.mean(0)
    if len(pts) >= 3:
        _, vecs = np.linalg.eigh(np.cov((pts - centroid).T))
        normal = vecs[:, 0]  # smallest spread: across the disc, along the spine
    else:
        normal = np.array([-1.0, 0.0])
    if normal[0] > 0:
        normal = -normal  # point toward superior (smaller row)
    per_slice = np.bincount(voxels[:, 0]).max()
    return _Disc(voxels, centroid, normal, float(per_slice * spacing[1] * spacing[2]))


def _off_chain_mm(discs: list[_Disc], i: int) -> float:
    """How far disc ``i`` lies from the spinal column through the other discs (mm): from one smooth curve
    col(row) through all of them, or, for the top and bottom discs, from whichever is nearer of that curve
    and the line through their two nearest discs. At the ends the curve is an extrapolation that bends
    away from a strongly lordotic or kyphotic column (and L5/S1 or the top disc would be dropped); the
    neighbours' line follows it: the line through the two nearest whole discs (``_is_whole``), so that two blobs
    in a row below the column do not vouch for each other. Interior discs keep the stricter curve alone, so that a
    blob between two discs is not excused by a line through one of them.
    """
    rows = np.array([d.centroid[0] for d in discs])
    cols = np.array([d.centroid[1] for d in discs])
    weight = np.sqrt([d.area_mm2 for d in discs])  # a whole disc steers the curve more than a small blob
    keep = np.arange(len(discs)) != i
    fit = np.polyfit(rows[keep], cols[keep], 2 if keep.sum() >= 5 else 1, w=weight[keep])
    curve = abs(np.polyval(fit, rows[i]) - cols[i])
    if rows.min() < rows[i] < rows.max():
        return float(curve)
    whole = [n for n in range(len(discs)) if n != i and _is_whole(discs, n)]
    others = whole if len(whole) >= 2 else [n for n in range(len(discs)) if n != i]
    j, k = sorted(others, key=lambda n: abs(rows[n] - rows[i]))[:2]  # two blobs in line must not excuse each other
    (u0, u1), (v0, v1) = discs[k].centroid - discs[j].centroid, discs[i].centroid - discs[j].centroid
    line = abs(u0 * v1 - u1 * v0) / max(float(np.hypot(u0, u1)), 1e-6)  # perpendicular distance to the line
    return float(min(curve, line))


def _is_whole(discs: list[_Disc], i: int) -> bool:
    """Whether disc ``i`` is as large as a whole disc (half the median area of the others or more), not a blob."""
    others = [d.area_mm2 for n, d in enumerate(discs) if n != i]
    return not others or discs[i].area_mm2 >= 0.5 * float(np.median(others))


def _robust_chain(discs: list[_Disc]) -> list[_Disc]:
    """Drop discs off the spinal column, iteratively, farthest first (relative to what each may be off it).

    A whole lowest disc may lie further off (``MAX_OFF_CHAIN_LOWEST_MM``): the lumbosacral junction bends the
    column more sharply than any curve through the discs above follows, L5/S1 sitting well behind the line through
    L3/L4 and L4/L5 on a lordotic spine. A small blob there (a sacral remnant the network outlines) is held to the
    usual distance; one that stays is flagged as a possible remnant by :func:`small_lowest_disc_flags`."""
    discs = list(discs)
    while len(discs) >= 4:
        lowest = int(np.argmax([d.centroid[0] for d in discs]))
        limits = [
            MAX_OFF_CHAIN_LOWEST_MM if i == lowest and _is_whole(discs, i) else MAX_OFF_CHAIN_MM
            for i in range(len(discs))
        ]
        excess = [_off_chain_mm(discs, i) / limits[i] for i in range(len(discs))]
        worst = int(np.argmax(excess))
        if excess[worst] <= 1.0:
            break
        discs.pop(worst)
    return discs


def _thecal_sac(canal: np.ndarray, min_fraction: float = 0.25) -> np.ndarray:
    """The canal's own pieces: its largest connected piece and any other at least ``min_fraction`` of its size
    (a canal pinched shut by stenosis comes in two). Small blobs the network calls canal elsewhere (in front of
    the sacrum, in the pelvis) are left out, so that a disc is not judged "behind the canal" by one of them."""
    pieces, n = ndimage.label(canal)
    if n <= 1:
        return canal
    sizes = np.bincount(pieces.ravel())[1:]
    return np.isin(pieces, 1 + np.flatnonzero(sizes >= min_fraction * sizes.max()))


def _behind_canal(disc: _Disc, canal_pts: np.ndarray) -> bool:
    """True when the canal at the disc's height lies in front of it (a posterior blob, not a disc)."""
    if len(canal_pts) == 0:
        return False
    near = canal_pts[np.abs(canal_pts[:, 0] - disc.centroid[0]) < 6.0]
    return len(near) > 0 and disc.centroid[1] > np.median(near[:, 1])


def _bone_above(disc: _Disc, bone: np.ndarray, spacing: tuple[float, float, float], shape: tuple[int, int]) -> bool:
    """True when vertebra lies right above the disc along its axis, as for every real disc.

    Only the side above is checked: SPIDER, which the model learnt from, leaves the sacrum unlabelled,
    so L5/S1 has no labelled bone below it. Running out of the image counts as bone (a disc at the top
    edge is still a disc).
    """
    pts = disc.voxels[:, 1:] * np.array(spacing[1:]) - disc.centroid
    s, t = pts @ disc.axis, pts @ _across(disc)
    half_width = max(2.0, (t.max() - t.min()) / 4)
    r, c, inside = _sampled(
        disc, s.max() + np.arange(1.0, 8.0), np.linspace(-half_width, half_width, 5), spacing, shape
    )
    return bool(inside.sum() < 10 or bone[r[inside], c[inside]].sum() >= 0.25 * inside.sum())


def _sampled(
    disc: _Disc,
    along_mm: np.ndarray,
    across_mm: np.ndarray,
    spacing: tuple[float, float, float],
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixels (rows, columns) of the points ``along_mm`` up the disc's axis and ``across_mm`` toward its back
    (:func:`_across`) from its centre, every pair, and which of them lie inside an image of ``shape``."""
    points = disc.centroid + along_mm[:, None, None] * disc.axis + across_mm[None, :, None] * _across(disc)
    r, c = np.rint(points.reshape(-1, 2) / np.array(spacing[1:])).astype(int).T
    return r, c, (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])


def _inside_a_body(disc: _Disc, bone: np.ndarray, spacing: tuple[float, float, float]) -> bool:
    """Whether a disc candidate lies inside a vertebral body: on the mid-sagittal slice's ``bone``, at least
    ``INSIDE_BODY_FRACTION`` of the points 1 to ``INSIDE_BODY_MM`` mm in front of its front edge, and as many behind
    its back edge, in its plane (within 1 mm of it), are bone. A disc spans the bodies' depth, with soft tissue in
    front of it and the canal behind; a blob the network marks inside a body (a haemangioma, a Schmorl node, the
    basivertebral vein) has bone on both sides, and counted as a disc it would name the two halves of that body as
    two vertebrae and every level above it one higher than it is. Points outside the image are not looked at."""
    t = (disc.voxels[:, 1:] * np.array(spacing[1:]) - disc.centroid) @ _across(disc)
    beyond, heights = np.arange(1.0, INSIDE_BODY_MM + 0.5), np.array([-1.0, 0.0, 1.0])
    for edge, outward in ((t.min(), -1.0), (t.max(), 1.0)):
        r, c, inside = _sampled(disc, heights, edge + outward * beyond, spacing, bone.shape)
        if not inside.any() or bone[r[inside], c[inside]].mean() < INSIDE_BODY_FRACTION:
            return False
    return True


def _merge_split(discs: list[_Disc], spacing: tuple[float, float, float]) -> list[_Disc]:
    """Merge neighbours that sit at the same height along the spine (one disc cut in two).

    The larger piece's axis is used: a small fragment's principal axes are unreliable.
    """
    merged: list[_Disc] = []
    for d in discs:
        if merged:
            prev = merged[-1]
            axis = prev.axis if prev.area_mm2 >= d.area_mm2 else d.axis
            if abs(float(np.dot(d.centroid - prev.centroid, axis))) < MERGE_ALONG_AXIS_MM:
                merged[-1] = _disc_from_voxels(np.concatenate([prev.voxels, d.voxels]), spacing)
                continue
        merged.append(d)
    return merged


def mid_sagittal_index(classes: np.ndarray) -> int:
    """The slice through the middle of the spine: most canal, else most disc voxels."""
    for structure in (Structure.CANAL, Structure.DISC, Structure.VERTEBRA):
        counts = (classes == structure).sum(axis=(1, 2))
        if counts.max() > 0:
            return int(np.argmax(counts))
    return classes.shape[0] // 2


def _slab(classes: np.ndarray, spacing: tuple[float, float, float], mid: int) -> np.ndarray:
    """The slices within ``HALF_SLAB_MM`` of the mid-sagittal slice ``mid``."""
    half = int(HALF_SLAB_MM // spacing[0])
    return classes[max(0, mid - half) : mid + half + 1]


def _canal_points_mm(slab: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """(row, col) in mm of the thecal sac projected through ``slab``."""
    return np.argwhere(_thecal_sac(np.any(slab == Structure.CANAL, axis=0))) * np.array(spacing[1:])


def find_discs(classes: np.ndarray, spacing: tuple[float, float, float], mid: int) -> list[_Disc]:
    """Disc instances in a slab around the mid-sagittal slice ``mid``, ordered caudal (largest row) to cranial.

    Projecting a slab, rather than taking 3D components, keeps one disc per level even when lateral
    slices bridge two discs or split one.
    """
    slab = _slab(classes, spacing, mid)
    projected = np.any(slab == Structure.DISC, axis=0)
    components, _n = ndimage.label(projected)
    candidates = []
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        local = np.argwhere(components[box] == index) + np.array([s.start for s in box])
        disc = _disc_from_voxels(np.column_stack([np.zeros(len(local), int), local]), spacing)
        if disc.area_mm2 >= MIN_DISC_AREA_MM2 / 4:  # small pieces may still merge into a disc
            candidates.append(disc)
    canal_pts = _canal_points_mm(slab, spacing)
    candidates = [d for d in candidates if not _behind_canal(d, canal_pts)]
    candidates.sort(key=lambda d: -d.centroid[0])
    bone = np.any(slab == Structure.VERTEBRA, axis=0)
    mid_bone = classes[mid] == Structure.VERTEBRA
    candidates = [
        d
        for d in _merge_split(candidates, spacing)
        if _bone_above(d, bone, spacing, projected.shape) and not _inside_a_body(d, mid_bone, spacing)
    ]
    return _drop_interior_fragments(_robust_chain([d for d in candidates if d.area_mm2 >= MIN_DISC_AREA_MM2]))


def _mostly_outside(discs: list[_Disc]) -> bool:
    """Whether the highest disc is cut by the image's top edge with less than ``MIN_CUT_DISC_FRACTION`` of the
    median disc's area in view: then it is not counted (not named, graded or measured, as its outline is not
    the disc's) and the bone beyond it is left unnamed. A reader counting the discs of an image leaves such a
    sliver out too (SPIDER's listed counts do)."""
    if len(discs) < 3 or discs[-1].voxels[:, 1].min() > 0:
        return False
    return discs[-1].area_mm2 < MIN_CUT_DISC_FRACTION * float(np.median([d.area_mm2 for d in discs]))


def _drop_interior_fragments(discs: list[_Disc]) -> list[_Disc]:
    """Drop small pieces between two discs of the chain: every disc fully inside the image is about as
    large as its neighbours, so a blob a third their size (a posterior element, a vessel) would add a level.
    The ends of the chain are kept: a disc cut by the image edge is small for a reason, and a small lowest
    disc is flagged by :func:`small_lowest_disc_flags`."""
    if len(discs) < 4:
        return discs
    floor = MIN_INTERIOR_AREA_FRACTION * float(np.median([d.area_mm2 for d in discs]))
    return [d for i, d in enumerate(discs) if i in (0, len(discs) - 1) or d.area_mm2 >= floor]


def _assign_discs(
    classes: np.ndarray, spacing: tuple[float, float, float], discs: list[_Disc]
) -> tuple[np.ndarray, np.ndarray]:
    """Every disc voxel of the volume goes to the disc whose plane is nearest (or none if too far)."""
    idx = np.argwhere(classes == Structure.DISC)
    pts = idx[:, 1:] * np.array(spacing[1:])
    if not len(idx):
        return idx, np.zeros(0, int)
    offsets = np.stack([(pts - d.centroid) @ d.axis for d in discs], axis=1)
    along = np.stack(
        [np.linalg.norm((pts - d.centroid) - np.outer((pts - d.centroid) @ d.axis, d.axis), axis=1) for d in discs],
        axis=1,
    )
    nearest = np.argmin(np.abs(offsets), axis=1)
    rows = np.arange(len(idx))
    ok = (np.abs(offsets[rows, nearest]) < 12.0) & (along[rows, nearest] < 45.0)
    return idx[ok], nearest[ok]


def _regions(
    points_mm: np.ndarray,
    discs: list[_Disc],
    spacing: tuple[float, float, float],
    canal_pts: np.ndarray,
    arch_drop: float,
) -> np.ndarray:
    """For each point, how many disc planes lie below it (0 = below the lowest disc).

    Behind the canal's front (:func:`_arch_starts_mm`) a disc's plane lies ``arch_drop`` of the disc spacing lower
    (``ARCH_DROP_FRACTION`` on MRI): a vertebra's arch slopes down behind its body (its laminae and spinous process
    reach the level of the disc below), so a plane carried straight back cuts the arch under two names. The fraction
    is the one that cut fewest of the expert's vertebra pieces on the training and validation patients' T2 SPACE
    volumes (``bench/vertebra_pieces.py``, which also measures it on the test patients)."""
    above = np.zeros(len(points_mm), np.int16)
    gaps = _gaps_mm(discs)
    drop = arch_drop * float(np.median(gaps)) if len(gaps) else 0.0
    for d in discs:
        relative = points_mm - d.centroid
        lowered = np.zeros(len(points_mm))
        start = _arch_starts_mm(d, spacing, canal_pts) if drop else None
        if start is not None:
            lowered[relative @ _across(d) > start] = drop
        above += (relative @ d.axis > -lowered).astype(np.int16)
    return above


def _gaps_mm(discs: list[_Disc]) -> np.ndarray:
    """Distances between neighbouring discs' centres along the chain (caudal to cranial)."""
    return np.array([np.linalg.norm(b.centroid - a.centroid) for a, b in itertools.pairwise(discs)])


def _arch_starts_mm(disc: _Disc, spacing: tuple[float, float, float], canal_pts: np.ndarray) -> float | None:
    """How far behind the disc's centre (mm, along :func:`_across`) the arches begin: at the canal's front, where
    the canal lies within ``CANAL_NEAR_PLANE_MM`` of the disc's plane, but never less than ``POSTERIOR_MARGIN_MM`` past
    the disc's back edge. None without canal there: a disc outlined only in part would put its own back edge inside
    the bodies, so only the canal says where the arches are."""
    if not len(canal_pts):
        return None
    near = canal_pts[np.abs((canal_pts - disc.centroid) @ disc.axis) < CANAL_NEAR_PLANE_MM]
    behind = (near - disc.centroid) @ _across(disc)
    if not (behind > 0).any():
        return None
    return max(_back_edge_mm(disc, spacing) + POSTERIOR_MARGIN_MM, float(behind[behind > 0].min()))


def label_levels(
    classes: np.ndarray, spacing: tuple[float, float, float], arch_drop: float = ARCH_DROP_FRACTION
) -> LevelLabelling:
    """Name discs and vertebrae on display slices ``classes (n, rows, cols)`` with (lateral, row, col) spacing.
    ``arch_drop``: how far, as a fraction of the disc spacing, the disc planes lie lower behind the canal
    (:func:`_regions`; 0 carries them straight back)."""
    instances = np.zeros(classes.shape, np.int16)
    instances[classes == Structure.CANAL] = CANAL_LABEL
    mid = mid_sagittal_index(classes)
    discs = find_discs(classes, spacing, mid)
    flags = small_lowest_disc_flags(discs, spacing)
    if flags:
        discs = discs[1:]  # a sacral remnant or rudimentary disc: counting starts at the disc above it
    if not discs:
        return LevelLabelling(instances, [], ["no intervertebral disc found: levels cannot be named"])
    cut = discs.pop() if _mostly_outside(discs) else None
    missed = missed_discs(discs)
    found, discs = discs, with_missed(discs, missed, spacing)
    names = CAUDAL_TO_CRANIAL
    truncated = len(discs) > len(names) - 1
    if truncated:
        flags.append(f"{len(discs)} discs found, more than can be named from the sacrum; the highest are left unnamed")
        discs = discs[: len(names) - 1]

    # Vertebra voxels: interval between disc planes, then whole components kept together.
    bone = classes == Structure.VERTEBRA
    bone_idx = np.argwhere(bone)
    bone_mm = bone_idx[:, 1:] * np.array(spacing[1:])
    canal_pts = _canal_points_mm(_slab(classes, spacing, mid), spacing)
    region = _regions(bone_mm, discs, spacing, canal_pts, arch_drop)
    components, _ = ndimage.label(bone)
    comp_of = components[tuple(bone_idx.T)]
    for comp in np.unique(comp_of):
        sel = comp_of == comp
        counts = np.bincount(region[sel])
        if counts.max() >= 0.8 * sel.sum():
            region[sel] = counts.argmax()
    region = _posterior_below_lowest_disc(bone_mm, region, comp_of, discs[0], spacing)
    region = _s1_at_the_lowest_disc(bone_mm, region, comp_of, discs[0], spacing)
    region[~np.isin(comp_of, _components_near(components, mid, spacing))] = -1
    if cut is not None:  # beyond a disc mostly outside the image, bone is as unnamed as bone outside it
        region[(bone_mm - cut.centroid) @ cut.axis > 0] = -1
    beyond = _beyond_top_vertebra(bone_mm, discs, comp_of)
    if cut is None and not truncated and beyond.any():
        flags += _unnamed_above_flags(bone_idx[beyond], region[beyond], mid, discs, spacing, names[len(discs)])
    region[beyond] = -1
    vertebra_labels = np.array([0, *(VERTEBRA_IDS[n] for n in names[: len(discs) + 1])], np.int16)
    instances[tuple(bone_idx.T)] = vertebra_labels[region + 1]

    disc_idx, disc_of = _assign_discs(classes, spacing, discs)
    levels: list[Level] = []
    for j, name in enumerate(names[: len(discs) + 1]):
        pts = bone_idx[region == j]
        if len(pts):
            centre = tuple(float(v) for v in (pts[:, 1:] * np.array(spacing[1:])).mean(0))
            levels.append(Level(name, VERTEBRA_IDS[name], "vertebra", centre, len(pts)))  # type: ignore[arg-type]
        elif 0 < j < len(discs):  # above the top disc the image may simply end
            flags.append(
                f"no vertebra found between discs {j} and {j + 1} counted from the bottom: a level may be missing"
            )
        if j < len(discs) and discs[j].found:
            d = discs[j]
            label = disc_label(names[j + 1])
            own = disc_idx[disc_of == j]
            instances[tuple(own.T)] = label
            levels.append(
                Level(
                    disc_name(names[j + 1], name),
                    label,
                    "disc",
                    (float(d.centroid[0]), float(d.centroid[1])),
                    len(own),
                    (float(d.axis[0]), float(d.axis[1])),
                )
            )
    flags += _count_flags(found, missed)
    flags += thoracic_spacing_flags(discs)
    flags += _two_bodies_flags(instances[mid], discs, spacing)
    flags += _sacrum_flags(discs[0], spacing, classes.shape[1:])
    return LevelLabelling(instances, levels, flags)


def _top_spacing_mm(discs: list[_Disc]) -> float:
    """Distance between neighbouring discs at the top of the chain (median of its highest three gaps): what one
    more level up would measure. Thoracic levels are shorter than lumbar ones, so the chain's own top is the
    measure, not its median."""
    return float(np.median(_gaps_mm(discs)[-3:]))


def _beyond_top_vertebra(points_mm: np.ndarray, discs: list[_Disc], component_of: np.ndarray) -> np.ndarray:
    """Which bone points lie beyond the vertebra above the highest disc found: more than one level's spacing above
    that disc's plane, where the next disc up would lie. That vertebra ends before there, so bone beyond belongs
    to levels whose discs were not found (a long field of view whose upper discs the network misses); named by
    the planes alone it would all take the top vertebra's name. A piece of bone (``component_of``) at least 80%
    below that plane stays whole, as with the disc planes: the tip of the top vertebra's articular process keeps
    its name. (A piece mostly beyond is cut at the plane: where a missed disc joins the top vertebra to the ones
    above, that vertebra is part of it.) Needs two discs to know the spacing."""
    if len(discs) < 2:
        return np.zeros(len(points_mm), bool)
    top = discs[-1]
    beyond = (points_mm - top.centroid) @ top.axis > _top_spacing_mm(discs)
    for piece in np.unique(component_of[beyond]):
        sel = component_of == piece
        if beyond[sel].mean() <= 0.2:
            beyond[sel] = False
    return beyond


def _unnamed_above_flags(
    voxels: np.ndarray,
    region: np.ndarray,
    mid: int,
    discs: list[_Disc],
    spacing: tuple[float, float, float],
    top_name: str,
) -> list[str]:
    """A review flag when the column's bone (``voxels``, not yet unnamed) goes on for most of a level
    (``MIN_UNNAMED_ABOVE_FRACTION``) above the vertebra over the highest disc found, a body's worth of it on the
    mid-sagittal slice (``MIN_UNNAMED_ABOVE_AREA``): a disc there was not found. Less is the lower part of the next
    vertebra at the image's top edge, whose disc lies outside, or a fleck: left unnamed without a review."""
    top, step = discs[-1], _top_spacing_mm(discs)
    on_mid = voxels[(region >= 0) & (voxels[:, 0] == mid)]
    past = ((on_mid[:, 1:] * np.array(spacing[1:]) - top.centroid) @ top.axis) - step
    far = past >= MIN_UNNAMED_ABOVE_FRACTION * step
    # the lower part of the next vertebra, cut by the image's edge, or a fleck: no review
    if far.sum() * spacing[1] * spacing[2] < MIN_UNNAMED_ABOVE_AREA * step**2:
        return []
    reach = float(past.max())
    more = int(reach // step)  # levels shrink towards the head, so this many at least
    what = f"at least {more} more vertebra{'e' if more > 1 else ''}" if more else "most of another vertebra"
    return [
        f"bone goes on {reach:.0f} mm above {top_name}, {what}, whose discs were not found: left unnamed (names "
        "below are counted from the sacrum; count the levels above on the image)"
    ]


def _sacrum_flags(lowest: _Disc, spacing: tuple[float, float, float], shape: tuple[int, int]) -> list[str]:
    """A review flag when the image ends just below the lowest disc, so that no sacrum is in view.

    Names are counted from the sacrum; without one in view the lowest disc is only assumed to be L5/S1 (on a
    thoracolumbar field of view it may be L3/L4). The networks leave the sacrum unlabelled, so what is checked is
    that the first 15 mm below the middle half of the disc lie mostly inside the image. Whether the bone there is
    the sacrum rather than a lumbar body is not judged: a test of its intensity against L5's, tried on SPIDER's
    mid-sagittal slices, flagged sacra plainly in view (on T1 the sacrum's marrow is often brighter than L5's).
    """
    disc = lowest.voxels[:, 1:] * np.array(spacing[1:]) - lowest.centroid
    t_disc, bottom = disc @ _across(lowest), float((disc @ lowest.axis).min())
    middle_half = t_disc.min() + np.linspace(0.25, 0.75, 7) * np.ptp(t_disc)
    _, _, inside = _sampled(lowest, bottom - np.arange(1.0, 16.0), middle_half, spacing, shape)
    if inside.mean() >= 0.5:
        return []
    return [
        f"{NO_SACRUM_IN_VIEW}: the image ends just below the lowest disc, which is taken as L5/S1 without the sacrum "
        "to confirm it, so every level name may be off; count from the sacrum on an image that shows it"
    ]


def _across(disc: _Disc) -> np.ndarray:
    """Unit vector in the disc's plane pointing posterior (display: anterior is on the left)."""
    return np.array([disc.axis[1], -disc.axis[0]])


def _across_mm(disc: _Disc, spacing: tuple[float, float, float]) -> np.ndarray:
    """Where each of the disc's voxels lies front to back, from its centre (mm, along :func:`_across`)."""
    return (disc.voxels[:, 1:] * np.array(spacing[1:]) - disc.centroid) @ _across(disc)


def _along_and_across(points_mm: np.ndarray, disc: _Disc) -> tuple[np.ndarray, np.ndarray]:
    """Where ``points_mm`` lie from the disc's centre (mm): along its axis (toward the head) and across it (toward the
    back, :func:`_across`)."""
    rel = points_mm - disc.centroid
    return rel @ disc.axis, rel @ _across(disc)


def _back_edge_mm(disc: _Disc, spacing: tuple[float, float, float]) -> float:
    """How far the disc reaches behind its centre (mm, along :func:`_across`)."""
    return float(_across_mm(disc, spacing).max())


def _components_near(components: np.ndarray, mid: int, spacing: tuple[float, float, float]) -> np.ndarray:
    """Bone components that reach within ``MIDLINE_MM`` of the mid-sagittal slice ``mid``: the column's.

    Bone the network finds far out to the side and not joined to the column (ribs and the iliac wings on CT,
    the psoas or a bowel loop on MRI) belongs to no level, so it gets no name: a lateral piece named by the
    disc planes it happens to lie between would give one level two fragments.
    """
    reach = int(MIDLINE_MM // spacing[0])
    return np.unique(components[max(0, mid - reach) : mid + reach + 1])


def _posterior_below_lowest_disc(
    points_mm: np.ndarray,
    region: np.ndarray,
    comp_of: np.ndarray,
    lowest: _Disc,
    spacing: tuple[float, float, float],
) -> np.ndarray:
    """Bone below the lowest disc but behind it is not S1: the networks leave the sacrum unlabelled (SPIDER
    does), so what they label there are L5's spinous and inferior articular processes. Such bone is L5's when its
    component also reaches above the disc, else it is left unnamed (-1), whether the disc's plane lowered behind the
    canal gave it to L5 (:func:`_regions`) or not. Only bone in line with the disc, where the sacral body is, may be
    called S1."""
    along, across = _along_and_across(points_mm, lowest)
    behind = across > _back_edge_mm(lowest, spacing) + POSTERIOR_MARGIN_MM
    out = region.copy()
    candidates = ((region == 0) | ((region == 1) & (along <= 0))) & behind
    reaching_up = np.unique(comp_of[along > 0])
    out[candidates] = np.where(np.isin(comp_of[candidates], reaching_up), 1, -1)
    return out


S1_REACH_MM = 15.0  # S1's body starts at the L5/S1 disc: bone with no point this close below the disc is not S1


def _s1_at_the_lowest_disc(
    points_mm: np.ndarray,
    region: np.ndarray,
    comp_of: np.ndarray,
    lowest: _Disc,
    spacing: tuple[float, float, float],
) -> np.ndarray:
    """Bone below the lowest disc is S1 only in pieces that reach the disc: within ``S1_REACH_MM`` below it and
    within the disc's front-to-back extent (widened as much). A piece lying wholly further away (a blob in the pelvis
    the network took for bone, 35-121 mm below L5/S1 on SPIDER pictures: found in review) is left unnamed (-1), as
    bone outside the column is; nothing checked the S1 it was given."""
    along, across = _along_and_across(points_mm, lowest)
    extent = _across_mm(lowest, spacing)
    near = (
        (along <= 0)
        & (along >= -S1_REACH_MM)
        & (across >= extent.min() - S1_REACH_MM)
        & (across <= extent.max() + S1_REACH_MM)
    )
    s1 = region == 0
    out = region.copy()
    out[s1 & ~np.isin(comp_of, np.unique(comp_of[s1 & near]))] = -1
    return out


def _two_bodies_flags(mid: np.ndarray, discs: list[_Disc], spacing: tuple[float, float, float]) -> list[str]:
    """A review flag when two separate vertebral bodies lie between two neighbouring discs of the chain (on the
    mid-sagittal slice, in line with the discs): a disc between them was not found, so every name above is one
    level off, and one id would cover two vertebrae."""
    flags = []
    pixel = np.array(spacing[1:])
    bodies: list[list[float]] = []
    for j in range(1, len(discs)):
        below, above = discs[j - 1], discs[j]
        name = CAUDAL_TO_CRANIAL[j]
        pts = np.argwhere(mid == VERTEBRA_IDS[name]) * pixel
        if not len(pts):
            bodies.append([])
            continue
        t = (pts - below.centroid) @ _across(below)
        reach = [_back_edge_mm(d, spacing) for d in (below, above)]
        in_line = pts[t <= max(reach) + POSTERIOR_MARGIN_MM]
        mask = np.zeros(mid.shape, bool)
        mask[tuple(np.rint(in_line / pixel).astype(int).T)] = True
        labelled, n = ndimage.label(mask)
        bodies.append(list(np.bincount(labelled.ravel())[1:] * float(np.prod(pixel))) if n else [])
    typical = np.median([max(b) for b in bodies if b]) if any(bodies) else 0.0
    for j, areas in enumerate(bodies, start=1):
        if sum(a >= MIN_BODY_FRACTION * typical for a in areas) >= 2:
            flags.append(
                f"two vertebral bodies between discs {j} and {j + 1} counted from the bottom: a disc between them was "
                f"not found, so {CAUDAL_TO_CRANIAL[j]} and every name above may be one level off"
            )
    return flags


def _disc_length_mm(disc: _Disc, spacing: tuple[float, float, float]) -> float:
    """Anteroposterior length of a disc across its axis."""
    pts = disc.voxels[:, 1:] * np.array(spacing[1:])
    t = (pts - disc.centroid) @ np.array([disc.axis[1], -disc.axis[0]])
    return float(t.max() - t.min())


def small_lowest_disc_flags(discs: list[_Disc], spacing: tuple[float, float, float]) -> list[str]:
    """A review flag when the lowest disc is much shorter front to back (AP length < 70%) and smaller
    (area < 60%) than the median of the others, or much thinner (mean height, area over length, < 40%): such a disc
    is not counted (:func:`label_levels` starts at the disc above it).

    It is most often the remnant disc between S1 and S2 of a sacrum, or the rudimentary disc below a lumbosacral
    transitional vertebra (Castellvi et al., Spine 1984); a collapsed L5/S1 loses height, not length, and keeps more
    than 40% of the others' height. On SPIDER's mid-sagittal slices read head up, leaving it out matches the listed
    disc count in 14 of the 20 images where this fires, counting it in 1 (``bench/midsag_levels.py``); on the held-out
    T2 SPACE slices, leaving it out names L5/S1 right more often (``bench/segmentation.py``). It stays a review flag:
    if the disc is a partly outlined L5/S1, every name is one level too low.
    """
    if len(discs) < 4:
        return []
    areas = np.array([d.area_mm2 for d in discs])
    lengths = np.array([_disc_length_mm(d, spacing) for d in discs])
    thickness = areas / np.maximum(lengths, 1e-6)
    # Short front to back AND small: a collapsed (degenerated) L5/S1 loses height, not length.
    short_and_small = lengths[0] < 0.7 * np.median(lengths[1:]) and areas[0] < 0.6 * np.median(areas[1:])
    if short_and_small or thickness[0] < MIN_LOWEST_THICKNESS_FRACTION * np.median(thickness[1:]):
        return [
            "small lowest disc, not counted: taken as a sacral remnant or the rudimentary disc below a transitional "
            "vertebra, so names start at the disc above it; if it is a partly outlined L5/S1, every level name is one "
            "level too low (check the lumbosacral junction)"
        ]
    return []


def _neighbour_gaps_mm(gaps: np.ndarray) -> np.ndarray:
    """For each gap between neighbouring discs, the median of the gaps beside it (up to ``NEIGHBOUR_GAPS`` on
    each side, itself left out): disc spacing changes gradually along the spine, thoracic discs lying closer
    together than lumbar ones, so a gap is judged against its own stretch of the column, not the whole chain's."""
    beside = [
        np.delete(gaps[max(0, i - NEIGHBOUR_GAPS) : i + NEIGHBOUR_GAPS + 1], min(i, NEIGHBOUR_GAPS))
        for i in range(len(gaps))
    ]
    return np.array([np.median(b) for b in beside])


def missed_discs(discs: list[_Disc]) -> list[int]:
    """For each gap between neighbouring discs of the chain (caudal first), how many discs the network missed in it,
    counted from the spacing: a gap more than ``MAX_GAP_FRACTION`` times the gaps beside it
    (:func:`_neighbour_gaps_mm`) holds ``round(gap / beside) - 1`` of them, at least one. The count rests on a
    chain that is otherwise regular, so nothing is counted (all zeros) where a gap would hold more than
    ``MAX_COUNTED_MISSED`` (the network lost the column there, not a disc) or two discs lie closer than
    ``MIN_GAP_FRACTION`` of the median gap (a piece of bone taken for a disc, or a disc in two)."""
    if len(discs) < 3:
        return [0] * max(0, len(discs) - 1)
    gaps = _gaps_mm(discs)
    beside = _neighbour_gaps_mm(gaps)
    counts = [max(1, round(gap / b) - 1) if gap > MAX_GAP_FRACTION * b else 0 for gap, b in zip(gaps, beside)]
    if max(counts) > MAX_COUNTED_MISSED or (gaps < MIN_GAP_FRACTION * np.median(gaps)).any():
        return [0] * len(gaps)
    return counts


def with_missed(discs: list[_Disc], missed: list[int], spacing: tuple[float, float, float]) -> list[_Disc]:
    """The chain with the discs counted as missed (:func:`missed_discs`) put back, evenly spaced along each gap, their
    axes between their neighbours', their shape and area the lower neighbour's moved there (``found`` False): their
    planes divide the bone between the two discs found into its vertebrae; they have no voxels of their own (disc
    pixels nearest one, a piece of it that the network found, stay unnamed), so they are neither graded nor measured."""
    out = [discs[0]] if discs else []
    for (below, above), count in zip(itertools.pairwise(discs), missed, strict=True):
        for m in range(1, count + 1):
            t = m / (count + 1)
            centroid = below.centroid + t * (above.centroid - below.centroid)
            axis = (1 - t) * below.axis + t * above.axis
            shift = np.rint((centroid - below.centroid) / np.array(spacing[1:])).astype(int)
            voxels = below.voxels + np.array([0, *shift])
            area = (1 - t) * below.area_mm2 + t * above.area_mm2
            out.append(_Disc(voxels, centroid, axis / np.linalg.norm(axis), area, found=False))
        out.append(above)
    return out


def _count_flags(discs: list[_Disc], missed: list[int] | None = None) -> list[str]:
    """Review flags from the spacing of the discs found: gaps where a disc should be (half as long again as the gaps
    beside them; ``missed``: how many :func:`missed_discs` counted in each), discs too close to be two levels (one
    may lie inside a vertebra and split it under two names), too few lumbar discs."""
    flags = []
    if len(discs) >= 3:
        gaps = _gaps_mm(discs)
        median = np.median(gaps)
        beside = _neighbour_gaps_mm(gaps)
        counted = missed or [0] * len(gaps)
        for i, gap in enumerate(gaps):
            if gap > MAX_GAP_FRACTION * beside[i]:
                above = i + 2 + sum(counted[:i])  # the name of the vertebra above the gap's lowest missed disc
                upper = CAUDAL_TO_CRANIAL[above] if above < len(CAUDAL_TO_CRANIAL) else "?"
                gap_is = (
                    f"unexpected gap of {gap:.0f} mm above disc {i + 1} from the bottom (the gaps beside it: "
                    f"{beside[i]:.0f} mm)"
                )
                if counted[i]:
                    number = f"{counted[i]} missed disc{'s' if counted[i] > 1 else ''}"
                    flags.append(
                        f"{gap_is}: counted as {number}, so {upper} and every name above rest on that count; check it "
                        "on the image"
                    )
                else:
                    flags.append(f"{gap_is}: a disc may be missing near {upper}")
            elif gap < MIN_GAP_FRACTION * median:
                flags.append(
                    f"discs {i + 1} and {i + 2} from the bottom only {gap:.0f} mm apart (median {median:.0f} mm): one "
                    "may not be a disc, and the vertebra it cuts would carry two names"
                )
    if len(discs) < 5:
        flags.append(f"only {len(discs)} discs found; a full lumbar spine shows 5 (L1/L2 to L5/S1)")
    return flags


def thoracic_gap_ratios(gaps: np.ndarray) -> np.ndarray:
    """Each thoracic gap between neighbouring discs (caudal first, from ``FIRST_THORACIC_GAP``) over the median of
    the lowest ``LUMBAR_GAPS``: what :func:`thoracic_spacing_flags` judges (none where no thoracic gap is in view)."""
    if len(gaps) <= FIRST_THORACIC_GAP:
        return np.zeros(0)
    return gaps[FIRST_THORACIC_GAP:] / np.median(gaps[:LUMBAR_GAPS])


def thoracic_spacing_flags(discs: list[_Disc]) -> list[str]:
    """A review flag where a gap between thoracic discs (``discs`` caudal first, counted missed discs put back) is
    more than ``MAX_THORACIC_FRACTION`` times the lumbar gaps: thoracic vertebrae are smaller than lumbar ones, so such
    a gap holds a disc the network missed. The neighbour rule (:func:`missed_discs`) cannot see a regular run of
    them, every other thoracic disc missed, since each such gap is as long as the gaps beside it."""
    gaps = _gaps_mm(discs)
    long = np.flatnonzero(thoracic_gap_ratios(gaps) > MAX_THORACIC_FRACTION) + FIRST_THORACIC_GAP
    if not len(long):
        return []
    lumbar = float(np.median(gaps[:LUMBAR_GAPS]))
    first = CAUDAL_TO_CRANIAL[long[0] + 1]  # the chain holds at most as many discs as there are names
    return [
        f"{len(long)} thoracic gap{'s' if len(long) > 1 else ''} between discs, the lowest "
        f"{gaps[long[0]]:.0f} mm: more than {MAX_THORACIC_FRACTION} times the lumbar gaps ({lumbar:.0f} mm), while "
        f"thoracic vertebrae are smaller: a disc may be missed there, so {first} and every name above may be named "
        "lower than it is"
    ]


def renamed_up(labelling: LevelLabelling, steps: int) -> LevelLabelling:
    """``labelling`` with every name moved ``steps`` levels up the spine (S1 becomes L5 for one step), in its
    levels, its instance labels and the names its flags give from the count (``COUNTED_NAME``): where the lowest
    disc found turns out to lie above L5/S1. Names that would pass the top of ``CAUDAL_TO_CRANIAL`` are dropped,
    with their voxels, as are voxels whose label no level lists."""
    if steps == 0:
        return labelling
    up = {name: CAUDAL_TO_CRANIAL[i + steps] for i, name in enumerate(CAUDAL_TO_CRANIAL[:-steps])}
    lookup = np.zeros(CANAL_LABEL + 1, np.int16)
    lookup[CANAL_LABEL] = CANAL_LABEL
    levels = []
    for level in labelling.levels:
        if level.kind == "vertebra":
            name = up.get(level.name)
            label = VERTEBRA_IDS[name] if name else 0
        else:
            upper, lower = (up.get(part) for part in level.name.split("/"))
            name = disc_name(upper, lower) if upper and lower else None
            label = disc_label(upper) if name else 0
        lookup[level.label] = label
        if name:
            levels.append(Level(name, label, level.kind, level.centroid_mm, level.voxels, level.axis))
    flags = [COUNTED_NAME.sub(lambda m: up.get(m.group(0), "?"), flag) for flag in labelling.flags]
    return LevelLabelling(lookup[labelling.instances], levels, flags)
