"""Measurements with units from named instances on a mid-sagittal slice: pure functions on masks.

Coordinates are (row, col) in mm, rows toward the feet and columns toward posterior (the display
view). Each structure is measured in its own frame: ``axis`` points toward the head along the spine,
``across`` toward posterior, perpendicular to it.

Heights are read at 15% of the depth in from the anterior and posterior edges and at the middle, the
positions of the six-point morphometry of vertebral bodies (Genant et al., J Bone Miner Res 1993) and of
disc heights on sagittal images.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lumbar.findings import HEIGHT_FIELDS, LORDOSIS_MISREAD, DiscMeasurements, Vertebra, VertebraMeasurements
from lumbar.labels import CANAL_LABEL, LUMBAR_DISCS, SPINE_ORDER

MEASURE_AT = 0.7  # fraction of the half-depth from the centre: 15% in from each edge
# Beyond these a "slip" means the segmentation went wrong: an anterolisthesis past Meyerding V (spondyloptosis
# starts at 100%), a retrolisthesis past a third of the endplate (retrolisthesis rarely passes a quarter).
MAX_PLAUSIBLE_SLIP_PERCENT = 110.0
MAX_PLAUSIBLE_RETRO_PERCENT = 35.0
MAX_ENDPLATE_MISFIT_DEG = 12.0
MAX_BODY_AXIS_STRAY_DEG = 15.0
MIN_DEPTH_RATIO = 0.75  # adjacent vertebral bodies differ in depth by far less than this
NOT_CONVEX = "outline not convex (a fragment, or posterior elements joined to it)"
NO_DISC_BESIDE = "no disc found above or below it: its endplates are not both seen"
CUT_BY_EDGE = "cut by the image edge"  # why such a body has no heights, Genant grade or (CT) density
EDGE_MARGIN_MM = 2.0  # a body this close to the image's edge is cut by it: an outline stops a pixel or two short
MIN_SOLIDITY = 0.85  # a body's area over its convex hull's: below, a fragment or joined posterior elements
# An anterior or middle height this much above the posterior one is no anatomy: the outline is wrong.
MAX_WEDGE_RATIO = 1.25
MAX_BICONCAVE_RATIO = 1.15
# A body's area matches its depth times its mean height (a trapezoid) within this: heights read where the
# endplates are not (a pedicle stump, a cut corner) disagree with the area and withhold the fracture grade.
AREA_AGREEMENT = (0.85, 1.2)
SLIP_SLAB_MM = 3.0  # slips are read on the mid-sagittal slice and its neighbours this far to either side
MIN_SLIP_SLICES = 3  # ... on at least this many of them (or two thirds of a thinner study's slab)
MAX_SLIP_SPREAD_MM = 3.0  # ... agreeing within this; otherwise no slip is reported
# A posterior wall is the line along its body's half next to the disc, less this fraction of that half at the
# disc's end (the rounded corner), fitted to the points within WALL_INLIER_PIXELS of a Theil-Sen line through them.
WALL_CORNER = 0.2
WALL_INLIER_PIXELS = 1.5
# A translation under 3 mm is within what two readers disagree by; 3 mm is the cut-off population studies of
# degenerative spondylolisthesis commonly use (no single source is cited here): no Meyerding grade below it.
MIN_LISTHESIS_MM = 3.0
# ... and where the image gives no pixel size, 3 mm of a lumbar body 30-35 mm deep (front to back): a 2-pixel slip
# on a small picture read 9% and Meyerding I.
MIN_LISTHESIS_PERCENT_IN_PIXELS = 10.0
# An L1-S1 lordosis above this (or a kyphosis as steep) is an endplate misread (L1 out of the slice, a body in
# pieces), not a spine: on the SPIDER images (`python bench/measurements.py`) the readings' 99th percentile lies near
# 80°; above 90° lay only the two series of one patient whose upper lumbar bodies leave the mid-sagittal slice.
MAX_LORDOSIS_DEG = 90.0
# A body's ends to a fraction of a pixel where its intensities are given (CT): the half-maximum of the edge between
# the darkest point within EDGE_OUT_MM beyond the mask's end (the disc) and the brightest within EDGE_IN_MM inside it
# (the endplate's cortex, blurred by a thick slice), on a profile sampled every EDGE_STEP_MM.
EDGE_OUT_MM = 3.0
EDGE_IN_MM = 4.0
EDGE_STEP_MM = 0.25
# An outline's end along a line is looked for this many pixels either side of its outermost pixel centre near the line.
EDGE_SEARCH_PIXELS = 1.5
# A piece of canal smaller than this on a slice is a speck, not the canal: one in front of the canal (the SPIDER
# expert's outlines hold such specks) made the canal's diameter at a disc read 1 mm where the canal is 12 mm wide.
MIN_CANAL_PIECE_MM2 = 5.0
# The canal is one tube past every lumbar disc: its diameter at a disc is read only where the outline goes on at
# least this far above and below the disc's mid-plane. An outline that ends at the disc (the dural sac's tapering
# tip at L5/S1 on T1, a canal broken off) reads its tip, not the canal. What it costs on the expert's own outlines:
# `python bench/canal.py`. "Goes on" counts canal within CANAL_TUBE_MM in front of and behind the diameter read.
# On a picture without a pixel size these millimetres are pixels (about 0.6 mm on a 300 mm field of 512 pixels).
CANAL_REACH_MM = 5.0
CANAL_TUBE_MM = 5.0


@dataclass(frozen=True)
class Frame:
    """A local frame: origin (row, col mm), ``axis`` toward superior, ``across`` toward posterior."""

    origin: np.ndarray
    axis: np.ndarray

    @property
    def across(self) -> np.ndarray:
        across = np.array([self.axis[1], -self.axis[0]])
        return across if across[1] >= 0 else -across


def points_mm(mask: np.ndarray, spacing_mm: tuple[float, float]) -> np.ndarray:
    """Pixel centres of a 2D mask as (row, col) mm."""
    return np.argwhere(mask) * np.asarray(spacing_mm, float)


def frame_of(points: np.ndarray, axis: np.ndarray | None = None, fallback_axis: np.ndarray | None = None) -> Frame:
    """Frame at the centroid with ``axis`` if given, else the direction of least spread.

    The least-spread direction is unreliable for a nearly round shape: there ``fallback_axis`` (e.g. the
    mean axis of the neighbouring discs) is used instead when given.
    """
    centre = points.mean(0)
    if axis is None:
        values, vecs = np.linalg.eigh(np.cov((points - centre).T))
        round_shape = values[1] < 1.3 * values[0]
        axis = fallback_axis if round_shape and fallback_axis is not None else vecs[:, 0]
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return Frame(centre, axis if axis[0] <= 0 else -axis)


def local(points: np.ndarray, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """(s, t): position along the axis (toward superior) and across it (toward posterior), mm."""
    d = points - frame.origin
    return d @ frame.axis, d @ frame.across


def _pixel_along(direction: np.ndarray, spacing_mm: tuple[float, float]) -> float:
    """Width of one pixel projected on a unit direction: how far apart two points of a run may lie."""
    return float(abs(direction[0]) * spacing_mm[0] + abs(direction[1]) * spacing_mm[1])


def mask_edge_mm(
    mask: np.ndarray, spacing_mm: tuple[float, float], point: np.ndarray, direction: np.ndarray, near: float
) -> float:
    """Where ``mask`` ends on the line ``point + d * direction`` (mm, ``direction`` a unit vector), to a fraction of a
    pixel: the last ``d`` within ``EDGE_SEARCH_PIXELS`` of ``near`` (the outermost pixel centre found there) where
    the mask, interpolated linearly between pixel centres, falls through one half. A tilted outline's extent read
    between pixel centres plus one pixel projected on the line read up to 0.7 pixel long at every tilt but 0 and 90
    degrees (a square's corners stick out along a tilted line; `tests/test_measurement_exact_answers.py`). Where
    the line finds no such fall (the outline's tip lies off the line), ``near`` plus half that projected pixel."""
    spacing = np.asarray(spacing_mm, float)
    reach, step = EDGE_SEARCH_PIXELS * float(spacing.max()), float(spacing.min()) / 20
    d = np.arange(near - reach, near + reach + step / 2, step)
    rc = (point + np.outer(d, direction)) / spacing
    values = ndimage.map_coordinates(np.asarray(mask, np.float32), rc.T, order=1, mode="constant", cval=0.0)
    inside = np.flatnonzero(values >= 0.5)
    if not inside.size or inside[-1] == len(d) - 1:
        return near + _pixel_along(direction, spacing_mm) / 2
    i = inside[-1]
    return float(d[i] + (values[i] - 0.5) / (values[i] - values[i + 1]) * step)


def heights_mm(
    mask: np.ndarray,
    spacing_mm: tuple[float, float],
    frame: Frame,
    span: tuple[float, float] | None = None,
    intensities: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """Anterior, middle and posterior height along ``frame.axis`` (NaN where the structure is missing).

    ``span`` is the (anterior, posterior) extent across the frame that sets the measurement positions;
    by default the structure's own. For a disc, pass the adjacent vertebral bodies' extent so that a
    herniation does not move the positions. With ``intensities`` (the slice's values, CT), each end is placed to a
    fraction of a pixel (:func:`edge_mm`) where the profile shows an edge; elsewhere, and without them, where the
    mask's outline crosses the line (:func:`mask_edge_mm`).
    """
    pts = points_mm(mask, spacing_mm)
    if len(pts) < 3:
        return (float("nan"),) * 3
    s, t = local(pts, frame)
    t_lo, t_hi = span if span is not None else walls(s, t, max(spacing_mm))
    centre, half = (t_lo + t_hi) / 2, (t_hi - t_lo) / 2
    band = max(spacing_mm) * 0.75
    out = []
    for position in (centre - MEASURE_AT * half, centre, centre + MEASURE_AT * half):
        sel = np.abs(t - position) <= band
        if not sel.any():
            out.append(float("nan"))
            continue
        line = frame.origin + position * frame.across
        top = mask_edge_mm(mask, spacing_mm, line, frame.axis, float(s[sel].max()))
        bottom = -mask_edge_mm(mask, spacing_mm, line, -frame.axis, -float(s[sel].min()))
        if intensities is not None:
            up = edge_mm(intensities, spacing_mm, frame, position, top, 1.0)
            down = edge_mm(intensities, spacing_mm, frame, position, bottom, -1.0)
            top, bottom = (top if up is None else up), (bottom if down is None else down)
        out.append(top - bottom)
    return tuple(out)  # type: ignore[return-value]


def edge_mm(
    intensities: np.ndarray, spacing_mm: tuple[float, float], frame: Frame, t: float, end: float, outward: float
) -> float | None:
    """Where a body ends along ``frame.axis`` on the line ``t`` across, to a fraction of a pixel: the profile of
    ``intensities`` from ``EDGE_IN_MM`` inside ``end`` (the mask's end, ``outward`` +1 toward the head, -1 toward
    the feet) to ``EDGE_OUT_MM`` beyond it, followed outward from its brightest point inside until it falls below
    half-way between that and the darkest point beyond. A thick slice averages the endplate with the disc, so the
    mask, which takes any pixel bright enough, reaches up to a pixel too far; the half-maximum of the blurred edge
    lies where the edge is. None where the profile leaves the slice or shows no edge (nothing darker beyond)."""
    d = np.arange(-EDGE_IN_MM, EDGE_OUT_MM + EDGE_STEP_MM / 2, EDGE_STEP_MM)
    points = frame.origin + np.outer(end + outward * d, frame.axis) + t * frame.across
    rc = points / np.asarray(spacing_mm, float)
    if (rc < 0).any() or (rc[:, 0] > intensities.shape[0] - 1).any() or (rc[:, 1] > intensities.shape[1] - 1).any():
        return None
    profile = ndimage.map_coordinates(np.asarray(intensities, float), rc.T, order=1)
    inside = d <= 0
    peak = int(np.argmax(np.where(inside, profile, -np.inf)))
    low = float(profile[~inside].min())
    if profile[peak] <= low:
        return None
    half = (float(profile[peak]) + low) / 2
    j = peak + int(np.flatnonzero(profile[peak:] < half)[0])  # past the edge (the darkest beyond is), the one before
    fraction = (profile[j - 1] - half) / (profile[j - 1] - profile[j])
    return float(end + outward * (d[j - 1] + fraction * EDGE_STEP_MM))


def walls(s: np.ndarray, t: np.ndarray, bin_mm: float) -> tuple[float, float]:
    """(anterior, posterior) wall positions across the frame: the median, over thin bands through the middle 60% of
    the structure's height, of its most anterior and most posterior points. A spur, a rounded corner or a stray
    pixel moves one band's extreme, not the wall (the heights are then read where the endplates really are)."""
    lo, hi = np.percentile(s, [20, 80])
    edges = np.arange(lo, hi + bin_mm, bin_mm)
    bands = [(s >= a) & (s < b) for a, b in itertools.pairwise(edges)]
    bands = [band for band in bands if band.any()]
    if not bands:
        return float(t.min()), float(t.max())
    return float(np.median([t[b].min() for b in bands])), float(np.median([t[b].max() for b in bands]))


def depth_mm(mask: np.ndarray, spacing_mm: tuple[float, float], frame: Frame) -> float:
    """Anteroposterior depth across the middle of the structure, between where its outline crosses the line
    (:func:`mask_edge_mm`)."""
    pts = points_mm(mask, spacing_mm)
    s, t = local(pts, frame)
    middle = float(np.median(s))
    sel = np.abs(s - middle) <= max(spacing_mm) * 0.75
    if not sel.any():
        return float("nan")
    line = frame.origin + middle * frame.axis
    back = mask_edge_mm(mask, spacing_mm, line, frame.across, float(t[sel].max()))
    return back + mask_edge_mm(mask, spacing_mm, line, -frame.across, -float(t[sel].min()))


def canal_without_specks(canal: np.ndarray, spacing_mm: tuple[float, float]) -> np.ndarray:
    """The canal mask of a slice without its pieces under ``MIN_CANAL_PIECE_MM2`` (see there)."""
    labelled, n = ndimage.label(canal, structure=np.ones((3, 3)))
    if n == 0:
        return canal.astype(bool)
    area = np.bincount(labelled.ravel())[1:] * float(np.prod(spacing_mm))
    return np.isin(labelled, np.flatnonzero(area >= MIN_CANAL_PIECE_MM2) + 1)


def thecal_canal(instances: np.ndarray, spacing_mm: tuple[float, float]) -> np.ndarray:
    """The canal of a slice of instance labels, without its specks (:func:`canal_without_specks`): the canal that
    cuts a vertebra's body from its arch wherever an analysis looks for a body (measurements, the quality gate and
    its MRI-likeness check, the names drawn; CT's density region does the same on its slab). A speck inside a body
    cut it in two: SPIDER 160's T1 was withheld as "L2 is 0.3 times the size of the others". The lateral films
    ``lumbar/train/lateral_drr.py`` made for training still cut at the raw canal, as when the shipped network
    learnt from them."""
    return canal_without_specks(instances == CANAL_LABEL, spacing_mm)


def canal_ap_mm(canal: np.ndarray, spacing_mm: tuple[float, float], frame: Frame, half_band_mm: float = 1.5) -> float:
    """The canal's anteroposterior diameter in a disc's mid-plane (:func:`extent_across_mm`), NaN where the canal's
    outline does not go on ``CANAL_REACH_MM`` past the disc on both sides, within ``CANAL_TUBE_MM`` in front of and
    behind the diameter read (the tube itself, not canal further back)."""
    s, t = local(points_mm(canal, spacing_mm), frame)
    front, ap = _run_across(canal, spacing_mm, frame, half_band_mm)
    if np.isnan(ap):
        return ap
    tube = (t >= front - CANAL_TUBE_MM) & (t <= front + ap + CANAL_TUBE_MM)
    goes_on = (tube & (s >= CANAL_REACH_MM)).any() and (tube & (s <= -CANAL_REACH_MM)).any()
    return ap if goes_on else float("nan")


def extent_across_mm(
    mask: np.ndarray, spacing_mm: tuple[float, float], frame: Frame, half_band_mm: float = 1.5
) -> float:
    """Extent of ``mask`` across the frame, within a thin band around the frame's origin plane: from its first point
    behind the origin to where it first stops (a gap of more than two pixels).

    Used for the canal's anteroposterior diameter at a disc: the band is the disc's mid-plane, and the canal is one
    tube, so a piece further back (a blob taken for canal among the back muscles) does not widen it.
    """
    return _run_across(mask, spacing_mm, frame, half_band_mm)[1]


def _run_across(
    mask: np.ndarray, spacing_mm: tuple[float, float], frame: Frame, half_band_mm: float
) -> tuple[float, float]:
    """(where it starts, its extent) across the frame of the first run of ``mask``'s points behind the origin within
    ``half_band_mm`` of the origin's plane, a gap of more than two pixels ending it, its ends where the outline
    crosses the origin's plane (:func:`mask_edge_mm`); NaNs where there is none."""
    s, t = local(points_mm(mask, spacing_mm), frame)
    t = np.sort(t[(np.abs(s) <= half_band_mm) & (t >= 0)])  # only behind the origin (the disc's centre)
    if not len(t):
        return float("nan"), float("nan")
    stops = np.flatnonzero(np.diff(t) > 2 * _pixel_along(frame.across, spacing_mm))
    last = t[stops[0]] if len(stops) else t[-1]
    front = -mask_edge_mm(mask, spacing_mm, frame.origin, -frame.across, -float(t[0]))
    return front, mask_edge_mm(mask, spacing_mm, frame.origin, frame.across, float(last)) - front


def endplate_angle_deg(mask: np.ndarray, spacing_mm: tuple[float, float], frame: Frame, upper: bool = True) -> float:
    """Inclination of the upper (or lower) endplate: angle of the fitted surface line, degrees.

    Measured like a radiograph: 0 when the endplate is horizontal, positive when its posterior end is
    higher (toward the head) than its anterior end.
    """
    pts = points_mm(mask, spacing_mm)
    s, t = local(pts, frame)
    depth = t.max() - t.min()
    edges = np.linspace(t.min() + 0.15 * depth, t.max() - 0.15 * depth, 9)
    surface = []
    for lo, hi in itertools.pairwise(edges):
        sel = (t >= lo) & (t < hi)
        if sel.any():
            i = np.argmax(s[sel]) if upper else np.argmin(s[sel])
            surface.append(pts[sel][i])
    surface = np.array(surface)
    if len(surface) < 3 or np.ptp(surface[:, 1]) == 0:  # a single column (found by fuzzing) made polyfit raise
        return float("nan")
    # Fit row = a * col + b in the image; up is -row, posterior is +col.
    slope = np.polyfit(surface[:, 1], surface[:, 0], 1)[0]
    return float(np.degrees(np.arctan(-slope)))


def genant_grade(heights: tuple[float, float, float]) -> tuple[int | None, float]:
    """Genant semi-quantitative grade from the largest height reduction within the body.

    0 normal (<20%), 1 mild (20-25%), 2 moderate (25-40%), 3 severe (>40%) (Genant et al., J Bone Miner
    Res 1993). Returns (grade, reduction); the grade is None when a height could not be measured.
    """
    h = np.array(heights, float)
    if np.isnan(h).any() or h.max() <= 0:
        return None, float("nan")
    reduction = float(1 - h.min() / h.max())
    r = round(reduction, 9)  # 16 mm of 20 is a 20% loss, not the 19.99...% of floating point: grade 1
    grade = 0 if r < 0.20 else 1 if r < 0.25 else 2 if r <= 0.40 else 3
    return grade, reduction


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Theil-Sen line ``y = slope * x + intercept``: the median of the slopes between every two points apart in x,
    and the median of ``y - slope * x`` (scipy.stats.theilslopes with ``method="joint"``, whose module's import slowed
    every analysis; bench/against_revision.py measures such costs). NaN where no two points are apart in x."""
    dx = x[:, None] - x[None, :]
    dy = y[:, None] - y[None, :]
    apart = dx > 0
    if not apart.any():
        return float("nan"), float("nan")
    slope = float(np.median(dy[apart] / dx[apart]))
    return slope, float(np.median(y - slope * x))


def _posterior_wall_at(s: np.ndarray, t: np.ndarray, lo: float, hi: float, at: float, bin_mm: float) -> float:
    """The posterior wall's position at ``s = at``: a line through the most posterior point of each thin band along
    the axis between ``lo`` and ``hi``, so that a stray pixel or a pedicle fragment that one corner would catch does
    not move it, and a wall leaning against the axis is read where it meets ``at``, not where the bands lie. The
    line is fitted by least squares to the points within ``WALL_INLIER_PIXELS`` of a Theil-Sen line (robust to
    strays), as Theil-Sen's median slope follows the pixel staircase of a slanted wall where least squares averages
    it; with fewer than two such points, the Theil-Sen line. NaN with fewer than three bands."""
    edges = np.arange(lo, hi + bin_mm, bin_mm)
    bands = [np.flatnonzero((s >= a) & (s < b)) for a, b in itertools.pairwise(edges)]
    walls = np.array([band[np.argmax(t[band])] for band in bands if band.size])
    if len(walls) < 3:
        return float("nan")
    slope, intercept = theil_sen(s[walls], t[walls])
    near = np.abs(t[walls] - (slope * s[walls] + intercept)) <= WALL_INLIER_PIXELS * bin_mm
    if near.sum() >= 2:
        slope, intercept = np.polyfit(s[walls][near], t[walls][near], 1)
    return float(slope * at + intercept)


def disc_plane_frame(
    upper_body: np.ndarray,
    upper_frame: Frame,
    lower_body: np.ndarray,
    lower_frame: Frame,
    spacing_mm: tuple[float, float],
) -> Frame:
    """A frame at the lower body's centre whose ``across`` runs along the disc's mid-plane: the bisector of the
    upper body's lower endplate and the lower body's upper endplate (each fitted as :func:`endplate_angle_deg`
    does), a direction neither body's tilt favours. Two bodies turned against each other (lordosis, kyphosis) then
    do not read as displaced; along the lower endplate alone they did, the disc's posterior height and the upper
    body's tilt reading as a retrolisthesis at every lordotic level. With one endplate unfitted the other is used;
    with neither, the lower body's own frame."""
    angles = [
        endplate_angle_deg(upper_body, spacing_mm, upper_frame, upper=False),
        endplate_angle_deg(lower_body, spacing_mm, lower_frame, upper=True),
    ]
    fitted = [a for a in angles if not np.isnan(a)]
    if not fitted:
        return lower_frame
    angle = np.radians(np.mean(fitted))
    # The mid-plane runs toward posterior along (row, col) = (-sin, cos); the axis is perpendicular, toward the head.
    return Frame(lower_frame.origin, np.array([-np.cos(angle), -np.sin(angle)]))


def slip_mm(
    upper_body: np.ndarray, lower_body: np.ndarray, spacing_mm: tuple[float, float], lower_frame: Frame
) -> float:
    """Displacement of the upper vertebra's posterior wall relative to the lower one's where both meet the disc's
    mid-plane, along ``lower_frame.across`` (that mid-plane, see :func:`disc_plane_frame`): positive =
    anterolisthesis (the upper vertebra slipped forward), negative = retrolisthesis. Each wall is the line along the
    half of its body next to the disc (less its rounded corner, ``WALL_CORNER``), carried to the mid-plane, as a
    radiologist extends the walls to the corners. Read as a median over the third of each body next to the disc
    instead, a column leaning against the mid-plane (a wedged L5, an oblique cut) read as a slip of several mm.
    """
    su, tu = local(points_mm(upper_body, spacing_mm), lower_frame)
    sl, tl = local(points_mm(lower_body, spacing_mm), lower_frame)
    bin_mm = max(spacing_mm)
    mid_plane = (su.min() + sl.max()) / 2
    upper_half, lower_half = (su.max() - su.min()) / 2, (sl.max() - sl.min()) / 2
    upper_wall = _posterior_wall_at(
        su, tu, su.min() + WALL_CORNER * upper_half, su.min() + upper_half, mid_plane, bin_mm
    )
    lower_wall = _posterior_wall_at(
        sl, tl, sl.max() - lower_half, sl.max() - WALL_CORNER * lower_half, mid_plane, bin_mm
    )
    return float(lower_wall - upper_wall)


def meyerding_grade(slip_percent: float, slip_mm: float | None = None, in_pixels: bool = False) -> int | None:
    """Meyerding grade of an anterolisthesis from its slip in % of the lower body's depth: 0 (<5%), I <25,
    II <50, III <75, IV <100, V >=100 (Meyerding, Surg Gynecol Obstet 1932). A slip below 5%, or below
    ``MIN_LISTHESIS_MM`` where its size in mm is known, is within measurement error and counted as none; where the
    image gives no pixel size (``in_pixels``), below ``MIN_LISTHESIS_PERCENT_IN_PIXELS``, what 3 mm is of a lumbar
    body's depth; the same holds backwards (a slip of -1 mm is none, not a retrolisthesis). A retrolisthesis beyond
    that has no Meyerding grade (it is reported in mm), and neither has a slip that could not be measured: both give
    None.
    """
    if slip_percent is None or np.isnan(slip_percent):
        return None
    # rounded as genant_grade rounds: a 25% slip read along a tilted disc comes out 24.99999999999996
    percent, mm = round(slip_percent, 9), None if slip_mm is None else round(slip_mm, 9)
    floor = MIN_LISTHESIS_PERCENT_IN_PIXELS if in_pixels else 5
    if abs(percent) < floor or (mm is not None and abs(mm) < MIN_LISTHESIS_MM):
        return 0
    if percent < 0:
        return None
    return min(5, int(percent // 25) + 1)


def canal_area_mm2(
    canal: np.ndarray, spacing_mm: tuple[float, float, float], frame: Frame, slab_mm: float = 2.0
) -> float:
    """Cross-sectional area of the canal in the plane ``frame`` defines, from a volume's display slices.

    ``canal`` is ``(n, rows, cols)`` with (lateral, row, col) spacing: the voxels within ``slab_mm`` of the
    plane are counted and their volume divided by the slab thickness.
    """
    idx = np.argwhere(canal)
    if not len(idx):
        return float("nan")
    s, _ = local(idx[:, 1:] * np.asarray(spacing_mm[1:], float), frame)
    inside = (s >= -slab_mm / 2) & (s < slab_mm / 2)
    if not inside.any():  # no canal in the plane is not measured, not an area of 0 (read as the severest stenosis)
        return float("nan")
    return float(inside.sum() * np.prod(spacing_mm) / slab_mm)


@dataclass(frozen=True)
class SpineMeasurements:
    """Every measured vertebra and disc of a slice, by level name, and the study-level figures."""

    vertebrae: dict[str, VertebraMeasurements]
    discs: dict[str, DiscMeasurements]
    lordosis_deg: float | None  # L1 upper endplate to S1 upper endplate
    narrowest_canal_ap_mm: float | None
    narrowest_canal_level: str | None
    review: tuple[str, ...] = ()  # why a reading was not reported (a lordosis no spine has)


def lordosis_misread(lordosis_deg: float) -> str | None:
    """Why an L1-S1 lordosis reading is not reported (None when it is): beyond ``MAX_LORDOSIS_DEG`` either way (a
    lordosis, or a kyphosis as steep) it is taken as an endplate misread, and the reason gives what was read so that
    a reader can check."""
    if not abs(lordosis_deg) > MAX_LORDOSIS_DEG:
        return None
    return (
        f"{LORDOSIS_MISREAD} {lordosis_deg:.1f}° (L1 to S1 upper endplates), beyond ±{MAX_LORDOSIS_DEG:.0f}°: "
        "taken as an endplate misread and not reported; check L1 and S1 on the images"
    )


def in_front_of_canal(mask: np.ndarray, canal: np.ndarray | None) -> np.ndarray:
    """The part of a vertebra's mask in front of the canal's anterior wall, row by row (rows without canal take
    the nearest row's wall, so the cut also holds between canal rows)."""
    mask = mask.astype(bool)
    if canal is None or not canal.any():
        return mask
    rows = np.nonzero(canal.any(axis=1))[0]
    front = np.full(mask.shape[0], mask.shape[1])
    front[rows] = canal[rows].argmax(axis=1)  # first canal column in each row
    front = np.interp(np.arange(mask.shape[0]), rows, front[rows]).astype(int)
    return mask & (np.arange(mask.shape[1])[None, :] < front[:, None])


def vertebral_body(mask: np.ndarray, canal: np.ndarray | None = None) -> np.ndarray:
    """The body of a vertebra on a mid-sagittal slice: the largest piece in front of the canal.

    Cutting at the canal's anterior wall separates the body from pedicles and posterior elements even where
    the segmentation joins them.
    """
    mask = in_front_of_canal(mask, canal)
    labelled, n = ndimage.label(mask)
    if n <= 1:
        return mask
    return labelled == (np.argmax(np.bincount(labelled.ravel())[1:]) + 1)


def _bodies_fit_disc(
    disc: np.ndarray,
    disc_frame: Frame,
    upper: np.ndarray,
    upper_frame: Frame,
    lower: np.ndarray,
    lower_frame: Frame,
    spacing_mm: tuple[float, float],
) -> bool:
    """True when both bodies are about as deep as each other and their endplates lie along the disc's
    surfaces (within ``MAX_ENDPLATE_MISFIT_DEG``).

    A body the model outlined only in part (often the sacrum, which SPIDER leaves unlabelled) has a
    posterior wall in the wrong place, and a slip measured on it would be an artefact, not a finding.
    """
    depths = depth_mm(upper, spacing_mm, upper_frame), depth_mm(lower, spacing_mm, lower_frame)
    if not MIN_DEPTH_RATIO <= depths[0] / depths[1] <= 1 / MIN_DEPTH_RATIO:
        return False  # one body carries its posterior elements, or is cut
    pairs = (
        (
            endplate_angle_deg(upper, spacing_mm, upper_frame, upper=False),
            endplate_angle_deg(disc, spacing_mm, disc_frame, upper=True),
        ),
        (
            endplate_angle_deg(lower, spacing_mm, lower_frame, upper=True),
            endplate_angle_deg(disc, spacing_mm, disc_frame, upper=False),
        ),
    )
    return all(abs(a - b) <= MAX_ENDPLATE_MISFIT_DEG for a, b in pairs)


def solidity(mask: np.ndarray) -> float:
    """Area of a 2D mask over the area of its convex hull (1 for a convex shape)."""
    from scipy.spatial import ConvexHull, QhullError

    pts = np.argwhere(mask)
    if len(pts) < 3:
        return float("nan")
    corners = np.concatenate([pts + d for d in ((0, 0), (0, 1), (1, 0), (1, 1))])  # pixels as squares
    try:
        return float(len(pts) / ConvexHull(corners).volume)
    except QhullError:  # all pixels on one line
        return float("nan")


def endplates_misread(heights: tuple[float, float, float]) -> bool:
    """Whether the anterior or middle height exceeds the posterior one by more than any body's shape allows
    (``MAX_WEDGE_RATIO``, ``MAX_BICONCAVE_RATIO``): the endplates were not where the heights were read."""
    return heights[0] > MAX_WEDGE_RATIO * heights[2] or heights[1] > MAX_BICONCAVE_RATIO * heights[2]


def outline_problem(
    body: np.ndarray,
    heights: tuple[float, float, float],
    depth: float,
    neighbour_depths: list[float],
    spacing_mm: tuple[float, float] = (1.0, 1.0),
    edge_spacing_mm: tuple[float, float] | None = None,
) -> str | None:
    """Why a body's outline cannot carry a fracture grade (None when it can): Genant's grade needs both
    endplates and both walls where they are, and a segmentation error looks like a fracture otherwise.
    ``edge_spacing_mm``: the pixel size the image's edge is judged in (:func:`cut_by_edge`), if not ``spacing_mm``."""
    if cut_by_edge(body, edge_spacing_mm or spacing_mm):
        return CUT_BY_EDGE
    if np.isnan(heights).any() or np.isnan(depth):
        return "a height could not be measured"
    if solidity(body) < MIN_SOLIDITY:
        return NOT_CONVEX
    if endplates_misread(heights):
        return "anterior or middle height above the posterior one: endplates not found"
    if neighbour_depths and not MIN_DEPTH_RATIO <= depth / float(np.median(neighbour_depths)) <= 1 / MIN_DEPTH_RATIO:
        return "depth unlike its neighbours'"
    area = body.sum() * float(np.prod(spacing_mm)) / (depth * float(np.mean(heights)))
    if not AREA_AGREEMENT[0] <= area <= AREA_AGREEMENT[1]:
        return "heights disagree with the body's area: endplates not found where they were read"
    return None


def _body_frame(points: np.ndarray, disc_axis: np.ndarray | None) -> Frame:
    """A vertebral body's frame: its own least-spread direction, unless that strays more than
    ``MAX_BODY_AXIS_STRAY_DEG`` from its discs' mean axis. Thin discs give a reliable direction; a body's
    shape does not where the model joined a pedicle to it or cut it short (then the discs' axis is used)."""
    if disc_axis is not None and not np.linalg.norm(disc_axis) > 0:
        disc_axis = None  # discs that state no axis (a Level's default (0, 0)) give no direction: no division by 0
    own = frame_of(points, fallback_axis=disc_axis)
    if disc_axis is None:
        return own
    cos = abs(float(np.dot(own.axis, disc_axis))) / float(np.linalg.norm(disc_axis))
    return own if np.degrees(np.arccos(min(1.0, cos))) <= MAX_BODY_AXIS_STRAY_DEG else frame_of(points, axis=disc_axis)


def slip_on_slice(
    instances: np.ndarray,
    upper: int,
    lower: int,
    disc: int,
    canal_label: int,
    spacing_mm: tuple[float, float],
    edge_spacing_mm: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """(slip mm, the lower body's depth, mm) of the vertebra labelled ``upper`` on the one labelled ``lower`` on one
    slice, NaN where the two bodies and the disc between them are not all there and consistent (see
    :func:`_bodies_fit_disc`). The slip is read along the disc's mid-plane; the depth, which a slip's percentage is
    taken of, across the lower body's middle in its own frame (:func:`_body_frame`), about along its endplates
    (Meyerding takes its superior endplate's length): across the mid-plane it read longer by one over the cosine of
    half the segment's angle (2% at 24 degrees). A body whose own frame strays from the disc's takes the disc's, and
    with it that error."""
    canal = canal_without_specks(instances == canal_label, spacing_mm)
    bodies = [vertebral_body(instances == label, canal) for label in (upper, lower)]
    disc_mask = instances == disc
    if (
        any(b.sum() < 3 for b in bodies)
        or disc_mask.sum() < 3
        or any(cut_by_edge(b, edge_spacing_mm or spacing_mm) for b in bodies)
    ):
        return float("nan"), float("nan")
    if any(solidity(b) < MIN_SOLIDITY for b in bodies):  # a fragment or joined posterior elements: no wall to trust
        return float("nan"), float("nan")
    disc_frame = frame_of(points_mm(disc_mask, spacing_mm))
    frames = [_body_frame(points_mm(b, spacing_mm), disc_frame.axis) for b in bodies]
    if not _bodies_fit_disc(disc_mask, disc_frame, bodies[0], frames[0], bodies[1], frames[1], spacing_mm):
        return float("nan"), float("nan")
    along = disc_plane_frame(bodies[0], frames[0], bodies[1], frames[1], spacing_mm)
    return slip_mm(bodies[0], bodies[1], spacing_mm, along), depth_mm(bodies[1], spacing_mm, frames[1])


def consensus_slip(readings: list[tuple[float, float]], available: int) -> tuple[float, float]:
    """(slip mm, slip %) agreed by the slices around the mid-sagittal one: the median where at least
    ``MIN_SLIP_SLICES`` of the ``available`` slices (two thirds of them where fewer lie in the slab, and a single
    picture's one) gave a reading and these agree within ``MAX_SLIP_SPREAD_MM``; NaN otherwise (a slip seen on one
    slice of several is a segmentation artefact as often as a finding)."""
    valid = [(mm, depth) for mm, depth in readings if not np.isnan(mm) and depth > 0]
    needed = min(MIN_SLIP_SLICES, max(1, math.ceil(2 * available / 3)))
    if len(valid) < needed or not valid:
        return float("nan"), float("nan")
    mm = np.array([v[0] for v in valid])
    if mm.max() - mm.min() > MAX_SLIP_SPREAD_MM:
        return float("nan"), float("nan")
    slip = float(np.median(mm))
    percent = 100 * slip / float(np.median([v[1] for v in valid]))
    if percent > MAX_PLAUSIBLE_SLIP_PERCENT or percent < -MAX_PLAUSIBLE_RETRO_PERCENT:  # no spine puts bodies there
        return float("nan"), float("nan")
    return slip, percent


def cut_by_edge(
    mask: np.ndarray, spacing_mm: tuple[float, float] = (1.0, 1.0), margin_mm: float = EDGE_MARGIN_MM
) -> bool:
    """Whether ``mask`` reaches within ``margin_mm`` of any of the slice's four edges (at least its outermost pixels):
    a body the image cuts, whose outline often stops a pixel or two short of the edge that cuts it."""
    rows, cols = (max(1, math.ceil(margin_mm / s - 1e-9)) for s in spacing_mm)
    return bool(mask[:rows].any() or mask[-rows:].any() or mask[:, :cols].any() or mask[:, -cols:].any())


def _s1_endplate_deg(
    instances: np.ndarray,
    levels: list,
    spacing_mm: tuple[float, float],
    frames: dict[str, Frame],
    bodies: dict[str, np.ndarray],
) -> float:
    """S1's upper endplate, read from the lower surface of the L5/S1 disc that lies on it.

    Models trained on SPIDER leave the sacrum unlabelled and any S1 they outline is partial, while the
    disc is outlined well; the S1 body (``bodies``: each cut at the canal) is used only where there is no L5/S1
    disc (found in review: read from the outline uncut, posterior elements joined to it tilted the endplate).
    """
    disc = next((lv for lv in levels if lv.kind == "disc" and lv.name.endswith("/S1")), None)
    if disc is not None and np.count_nonzero(instances == disc.label) >= 3:
        mask = instances == disc.label
        return endplate_angle_deg(
            mask, spacing_mm, frame_of(points_mm(mask, spacing_mm), np.asarray(disc.axis)), upper=False
        )
    body = next((lv for lv in levels if lv.kind == "vertebra" and lv.name == "S1"), None)
    if body is not None and "S1" in frames:
        return endplate_angle_deg(bodies["S1"], spacing_mm, frames["S1"], upper=True)  # cut at the canal, as all
    return float("nan")


def _between_discs(name: str, levels: list) -> bool:
    """True when the discs above and below vertebra ``name`` were both found."""
    discs = {lv.name for lv in levels if lv.kind == "disc"}
    return any(d.endswith(f"/{name}") for d in discs) and any(d.startswith(f"{name}/") for d in discs)


def _adjacent(name: str, present: dict) -> list[str]:
    """The vertebrae just above and below ``name`` that are in ``present``."""
    if name not in SPINE_ORDER:
        return []
    i = SPINE_ORDER.index(name)
    return [SPINE_ORDER[j] for j in (i - 1, i + 1) if 0 <= j < len(SPINE_ORDER) and SPINE_ORDER[j] in present]


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b and not np.isnan(a) and not np.isnan(b) else float("nan")


def measure_spine(
    instances: np.ndarray,
    levels: list,
    spacing_mm: tuple[float, float],
    canal_label: int = 200,
    canal_volume: np.ndarray | None = None,
    lateral_mm: float | None = None,
    slab: np.ndarray | None = None,
    in_mm: bool = True,
    intensities: np.ndarray | None = None,
    edge_spacing_mm: tuple[float, float] | None = None,
) -> SpineMeasurements:
    """Measure every named vertebra and disc of a labelled slice (``levels`` from level labelling).

    With ``canal_volume`` (the canal mask of all display slices) and the slice spacing ``lateral_mm``,
    the canal's cross-sectional area is measured in each disc's plane as well. ``slab`` holds the instance
    labels of the slices around this one (this one included) that slips are read on (see
    :func:`consensus_slip`); by default this slice alone. ``in_mm`` is False when ``spacing_mm`` is a placeholder
    (1 pixel): then no millimetre threshold is applied (Meyerding's 3 mm). ``intensities``: the slice's values
    where they are physical (CT, in HU): vertebral heights are then read to the endplates' half-maximum edges
    (:func:`edge_mm`). ``edge_spacing_mm``: the pixel size a body cut by the image's edge is judged in
    (:func:`cut_by_edge`), where it is not ``spacing_mm``: a picture of unknown pixel size is measured in pixels but
    its edge judged in the pixel size the reader assumed (2 mm is more than 2 of its pixels).
    """
    edge = edge_spacing_mm or spacing_mm
    slab = instances[None] if slab is None else slab
    vertebrae = [lv for lv in levels if lv.kind == "vertebra"]
    canal = canal_without_specks(instances == canal_label, spacing_mm)
    bodies = {lv.name: vertebral_body(instances == lv.label, canal) for lv in vertebrae}
    disc_axes: dict[str, list[np.ndarray]] = {}
    for lv in levels:
        if lv.kind == "disc":
            for name in lv.name.split("/"):
                disc_axes.setdefault(name, []).append(np.array(lv.axis))
    frames = {
        name: _body_frame(points_mm(body, spacing_mm), np.sum(disc_axes[name], axis=0) if name in disc_axes else None)
        for name, body in bodies.items()
        if body.sum() >= 3
    }
    cut = {name: cut_by_edge(body, edge) for name, body in bodies.items()}
    vertebra_out: dict[str, dict] = {}
    outlined: set[str] = set()
    for lv in vertebrae:
        if lv.name not in frames:
            continue
        body, frame = bodies[lv.name], frames[lv.name]
        h = heights_mm(body, spacing_mm, frame, intensities=intensities)
        if lv.name == "S1" or cut[lv.name]:
            # The sacrum has no fracture grade, and a body the image cuts has no true height.
            h = (float("nan"),) * 3
        depth = float("nan") if cut[lv.name] else depth_mm(body, spacing_mm, frame)  # the edge, not its back
        neighbours = [
            depth_mm(bodies[n], spacing_mm, frames[n]) for n in _adjacent(lv.name, frames) if n != "S1" and not cut[n]
        ]
        problem = (  # a sacrum the image cuts says so: its density (CT) is withheld for that, as any cut body's
            "the sacrum has no fracture grade"
            if lv.name == "S1" and not cut[lv.name]
            else outline_problem(body, h, depth, neighbours, spacing_mm, edge)
        )
        if problem is None:  # its outline carries heights a disc's height index may be taken of
            outlined.add(lv.name)
        if problem is None and not _between_discs(lv.name, levels):
            problem = NO_DISC_BESIDE
        grade = genant_grade(h)[0] if problem is None else None
        vertebra_out[lv.name] = {
            "height_anterior_mm": h[0],
            "height_middle_mm": h[1],
            "height_posterior_mm": h[2],
            "depth_mm": depth,
            "wedge_ratio": _ratio(h[0], h[2]),
            "biconcave_ratio": _ratio(h[1], h[2]),
            "genant_grade": grade,
            "genant_not_graded": problem,
            "upper_endplate_deg": float("nan")
            if cut[lv.name]
            else endplate_angle_deg(body, spacing_mm, frame, upper=True),
        }
    by_name = vertebra_out

    disc_out: dict[str, dict] = {}
    for lv in (lv for lv in levels if lv.kind == "disc"):
        upper, lower = lv.name.split("/")
        mask = instances == lv.label
        if mask.sum() < 3:
            continue
        neighbours = [frames[n] for n in (upper, lower) if n in frames]
        axis = np.sum([f.axis for f in neighbours], axis=0) if neighbours else None
        frame = frame_of(points_mm(mask, spacing_mm), axis)
        span = None
        if neighbours:
            # Between the endplates' common extent, within the disc itself (the bodies may be incomplete).
            own = local(points_mm(mask, spacing_mm), frame)[1]
            ts = [local(points_mm(bodies[n], spacing_mm), frame)[1] for n in (upper, lower) if n in frames]
            lo, hi = max([t.min() for t in ts] + [own.min()]), min([t.max() for t in ts] + [own.max()])
            span = (lo, hi) if hi > lo else None
        # a disc the image cuts has no true height (its edge would read as an endplate or a wall), as a body's
        h = (float("nan"),) * 3 if cut_by_edge(mask, edge) else heights_mm(mask, spacing_mm, frame, span)
        adjacent = [  # bodies whose outline is wrong (a fragment, heights against their area) have no true height
            float(np.mean([by_name[n][k] for k in ("height_anterior_mm", "height_middle_mm", "height_posterior_mm")]))
            for n in (upper, lower)
            if n in outlined
        ]
        slip = slip_pct = angle = float("nan")
        labels = {lv2.name: lv2.label for lv2 in vertebrae}
        if upper in labels and lower in labels:
            readings = [
                slip_on_slice(k, labels[upper], labels[lower], lv.label, canal_label, spacing_mm, edge) for k in slab
            ]
            slip, slip_pct = consensus_slip(readings, len(slab))
        grade = meyerding_grade(slip_pct, slip if in_mm else None, in_pixels=not in_mm)
        if (
            upper in frames
            and lower in frames
            and _bodies_fit_disc(mask, frame, bodies[upper], frames[upper], bodies[lower], frames[lower], spacing_mm)
        ):
            angle = endplate_angle_deg(bodies[lower], spacing_mm, frames[lower], upper=True) - endplate_angle_deg(
                bodies[upper], spacing_mm, frames[upper], upper=False
            )
        ap = canal_ap_mm(canal, spacing_mm, frame)
        area = float("nan")
        if canal_volume is not None and lateral_mm and not np.isnan(ap):  # where the diameter is not read (a tip,
            area = canal_area_mm2(canal_volume, (lateral_mm, *spacing_mm), frame)  # no canal) neither is the area
        disc_out[lv.name] = {
            "height_anterior_mm": h[0],
            "height_middle_mm": h[1],
            "height_posterior_mm": h[2],
            "height_index": _ratio(float(np.mean(h)), float(np.nanmean(adjacent)))
            if adjacent and not np.isnan(adjacent).all()
            else float("nan"),
            "canal_ap_mm": ap,
            "canal_area_mm2": area,
            "slip_mm": slip,
            "slip_percent": slip_pct,
            "meyerding_grade": grade,
            "angle_deg": angle,
        }

    # L1 from its own body (a wedge fracture there tilts the endplate away from the disc); S1 from the disc.
    l1 = by_name["L1"]["upper_endplate_deg"] if "L1" in by_name else float("nan")
    s1 = _s1_endplate_deg(instances, levels, spacing_mm, frames, bodies)
    if "S1" in by_name and not np.isnan(s1):
        by_name["S1"]["upper_endplate_deg"] = s1  # the same reading the lordosis uses
    lordosis = s1 - l1
    misread = lordosis_misread(lordosis)
    if misread:
        lordosis = float("nan")
    lumbar = {
        name: d["canal_ap_mm"]
        for name, d in disc_out.items()
        if name in LUMBAR_DISCS and not np.isnan(d["canal_ap_mm"])
    }
    narrowest = min(lumbar, key=lumbar.get) if lumbar else None  # type: ignore[arg-type]
    return SpineMeasurements(
        {name: VertebraMeasurements(**v) for name, v in vertebra_out.items()},
        {name: DiscMeasurements(**d) for name, d in disc_out.items()},
        None if np.isnan(lordosis) else float(lordosis),
        lumbar[narrowest] if narrowest else None,
        narrowest,
        (misread,) if misread else (),
    )


def rejected_heights_withheld(vertebrae: list[Vertebra]) -> list[Vertebra]:
    """``vertebrae`` without heights or ratios where the reason their outline carries no Genant grade
    (``genant_not_graded``) says the heights were not read between the endplates (:func:`heights_unreliable`):
    they look clinical beside that reason (a biconcave ratio of 2.44 beside "endplates not found", found in review).
    Depth and the other vertebrae stay as they were."""
    withheld = dict.fromkeys(HEIGHT_FIELDS)
    return [
        v.model_copy(update={"measurements": v.measurements.model_copy(update=withheld)})
        if v.measurements is not None and heights_unreliable(v.measurements)
        else v
        for v in vertebrae
    ]


def heights_unreliable(m: VertebraMeasurements) -> bool:
    """Whether a vertebra's heights are shown beside a reason that they were not read between its endplates: any
    reason its outline carries no grade, but two that leave the endplates where they were read. An outline joined to
    its posterior elements (not convex) or without a disc beside it keeps its heights unless they fail the endplate
    test themselves (:func:`endplates_misread`; on VerSe 012's CT such heights lie about 1 mm from its labels':
    bench/ct.py)."""
    heights = (m.height_anterior_mm, m.height_middle_mm, m.height_posterior_mm)
    if m.genant_not_graded is None or all(h is None for h in heights):
        return False
    if m.genant_not_graded not in (NOT_CONVEX, NO_DISC_BESIDE) or None in heights:
        return True
    return endplates_misread(heights)
