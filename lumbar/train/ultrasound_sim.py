"""Simulated paramedian sagittal ultrasound sweeps of the lumbar spine, made from 3D spine label maps.

No ultrasound of the spine exists in ``../shared/data``, so the frames that teach :mod:`lumbar.tasks.ultrasound`
(SLIDE, Hetherington et al., IJCARS 2017) are simulated from real anatomy, as the lateral films are
(:mod:`lumbar.train.lateral_drr`).

**Anatomy** (:class:`SpineVolume`): a map of tissues (:class:`Tissue`) on axes (left-right, head to feet, anterior
to posterior), its voxel size, the midline and the named discs' centres. The vertebra voxels are split by the
spinal canal's anterior edge, row by row, into body (in front) and posterior elements (behind: pedicles, laminae,
facets, spinous process); thin cracks in the posterior elements (under 2 mm head to feet) are closed.

* SPIDER T2 SPACE series (:func:`spider_volume`): the masks of a series' sagittal slices stacked; discs named upwards
  from the lowest (L5/S1). SPIDER leaves the sacrum unlabelled, so it is drawn in every slice: the wedge of
  :func:`lumbar.train.lateral_drr.synthetic_sacrum` below the L5/S1 disc (its body) and a dorsal plate 8 mm thick
  that follows the wedge's back, starting ``SACRAL_GAP_MM`` below L5's lowest posterior element (the L5/S1
  window), its back level with L5's laminae there (the sacral canal between, at least 8 mm deep); labelled bone
  below the L5/S1 disc, in front of the canal or below the plate's top, is S1's and joins the sacrum. The series
  cover only the middle 13-30 mm of the spine, so their "paramedian" planes lie at most at the slab's edge (5-14 mm
  from the midline).
* CT vertebra masks (:func:`ct_volume`: VerSe ids, or TotalSegmentator's, whose S1 is its sacrum): resampled to
  ``CT_SPACING_MM``; the canal is the hole each axial section of bone encloses; discs sit halfway between
  neighbouring bodies.

**Geometry.** A sweep's scan plane lies ``offset_mm`` beside the midline (either side). The probe's path on the
skin follows the envelope of the posterior bone in that plane (its most posterior point per row, the maximum over
±15 mm, smoothed by a Gaussian of 20 mm) ``skin_mm`` behind it (25-45 mm of soft tissue to the laminae). The
probe (footprint ``FOOTPRINT_MM`` across, ``DEPTH_MM`` deep) slides cranially from ``start_below_mm`` below the
sacrum's cranial edge to beyond T12/L1, by ``step_mm`` a frame (1.5-2.8 mm: 12-23 frames a level) varied frame to
frame (a log-normal AR(1) speed); its beam leaves the path's normal by a tilt in the plane and one out of it (a few
degrees each, jittering frame to frame). The tissue under every pixel is sampled from the map (nearest voxel).

**Image formation** (:func:`echo_frames`, vectorised over a sweep). Per pixel a complex amplitude: diffuse
scattering (the tissue's echogenicity times a complex Gaussian, whose envelope is Rayleigh speckle; soft tissue in
layers: bright skin, dark fat with septa, the bright fascia, striated muscle) plus a specular reflection where the
beam enters a new tissue, strongest at bone (times the cosine to the fourth of the angle between the beam and the
surface's normal: a lamina's slopes are dimmer than its crest) and weaker at the dura and a disc; times the
transmission left after every interface above (bone passes a few per cent: the acoustic shadow) and the depth
attenuation (0.4-0.8 dB/cm/MHz at 3-5 MHz, both ways). The point-spread function blurs it (a Gaussian, wider across
than along the beam); the envelope is taken, time-gain compensation restores part of the attenuation, a random gain
and a log compression over 40-60 dB make the grey values; rows are averaged in pairs to ``FRAME_SHAPE`` and a little
noise and 8-bit quantisation added.

**Labels.** A frame's class is what the beam from the probe's centre meets first among the hard tissues: the
sacrum (``sacrum``), posterior elements (``vertebra``), or nothing before the canal and the vertebral body behind it
(``gap``: the beam passes an interlaminar window). Levels are counted from the sacrum as an expert would count
them (:func:`_level_names`): the k-th gap is the k-th of L5/S1, L4/L5, ...; the count is verified against the discs
(the labels give no vertebra instances), gap by gap upwards, as far as each gap faces its own disc: where laminae
overlap (often above L2 this near the midline) a window is hidden and the count above it is no truth. Frames run
caudal to cranial, and inside a frame columns run caudal (left) to cranial (right). Given a seed, a sweep is the same
on every machine.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np
from scipy import ndimage

from lumbar.io.spider import read_overview_voxels, t2space_series
from lumbar.labels import SPINE_ORDER, VERTEBRA_NAMES, disc_name
from lumbar.tasks.ultrasound import FRAME_SHAPE, GAP, GAPS, MIN_RUN, SACRUM, VERTEBRA, VERTEBRAE
from lumbar.train.lateral_drr import synthetic_sacrum

FOOTPRINT_MM = 40.0  # the probe's width across (head to feet)
DEPTH_MM = 80.0  # the image's depth
RENDER_ROWS = 2 * FRAME_SHAPE[0]  # depth samples rendered, averaged in pairs
PAD_BELOW_MM = 130.0  # room below a SPIDER series for the drawn sacrum
PAD_BEHIND_MM = 75.0  # room behind the spine for the soft tissue under the probe
SACRAL_GAP_MM = 10.0  # the L5/S1 window: from L5's lowest posterior element to the drawn sacral plate
L5_REACH_MM = 10.0  # how far below the L5/S1 disc's centre L5's posterior elements are looked for
SACRAL_PLATE_MM = 8.0  # the drawn dorsal sacral plate's thickness
SACRAL_CANAL_MM = 8.0  # the least depth of the drawn sacral canal, between the wedge and the plate
ENVELOPE_MAX_MM, ENVELOPE_SMOOTH_MM = 15.0, 20.0  # the skin follows the posterior bone's envelope, smoothly
CRACK_MM = 2.0  # cracks in the posterior elements narrower than this (head to feet) are closed
CT_SPACING_MM = (1.0, 0.6, 0.6)  # CT masks resampled to (left-right, head-feet, anterior-posterior)
UPWARD_DISCS = tuple(reversed([disc_name(u, lo) for u, lo in itertools.pairwise(SPINE_ORDER)]))


class Tissue(IntEnum):
    """What a voxel of a :class:`SpineVolume` holds."""

    SOFT = 0
    BODY = 1
    DISC = 2
    CANAL = 3
    POSTERIOR = 4
    SACRUM = 5


HARD = (Tissue.BODY, Tissue.POSTERIOR, Tissue.SACRUM)
# Diffuse echogenicity (mean squared amplitude) and the specular reflection on entering each tissue.
DIFFUSE = np.array([0.30, 0.05, 0.18, 0.01, 0.05, 0.05], np.float32)
ENTRY = np.array([0.0, 1.0, 0.25, 0.30, 1.0, 1.0], np.float32)
DIFFUSE_AMPLITUDE = 0.1  # soft tissue's speckle some 25 dB below a bone surface facing the beam


@dataclass
class SpineVolume:
    """One spine's tissue map ``(x left-right, y head to feet, z anterior to posterior)`` (uint8 :class:`Tissue`),
    its voxel size (mm), the midline's x index and the discs' centres ``name -> (y_mm, z_mm)``."""

    patient: str
    source: str
    tissue: np.ndarray
    spacing_mm: tuple[float, float, float]
    midline_x: float
    discs: dict[str, tuple[float, float]]

    @property
    def half_width_mm(self) -> float:
        """How far the map reaches either side of the midline (the nearer edge)."""
        return min(self.midline_x, self.tissue.shape[0] - 1 - self.midline_x) * self.spacing_mm[0]

    def save(self, path: Path) -> None:
        names = list(self.discs)
        np.savez_compressed(
            path,
            patient=self.patient,
            source=self.source,
            tissue=self.tissue,
            spacing_mm=np.array(self.spacing_mm),
            midline_x=self.midline_x,
            disc_names=np.array(names),
            disc_centres=np.array([self.discs[n] for n in names]).reshape(-1, 2),
        )

    @classmethod
    def load(cls, path: Path) -> SpineVolume:
        d = np.load(path, allow_pickle=False)
        discs = {str(n): (float(c[0]), float(c[1])) for n, c in zip(d["disc_names"], d["disc_centres"])}
        spacing = tuple(float(s) for s in d["spacing_mm"])
        return cls(str(d["patient"]), str(d["source"]), d["tissue"], spacing, float(d["midline_x"]), discs)


def _canal_front(canal: np.ndarray) -> np.ndarray:
    """Per row y, the canal's anterior edge (z index, over every x), interpolated across rows without canal."""
    rows = np.flatnonzero(canal.any((0, 2)))
    if rows.size == 0:
        return np.full(canal.shape[1], np.inf)
    first = np.array([np.flatnonzero(canal[:, y].any(0))[0] for y in rows], float)
    return np.interp(np.arange(canal.shape[1]), rows, ndimage.median_filter(first, 9, mode="nearest"))


def _assemble(
    bone: np.ndarray,
    sacrum: np.ndarray,
    disc: np.ndarray,
    canal: np.ndarray,
    spacing_mm: tuple[float, float, float],
    patient: str,
    source: str,
    discs: dict[str, tuple[float, float]],
) -> SpineVolume:
    """The tissue map: bone behind the canal's anterior edge is posterior elements (cracks closed), in front body."""
    front = _canal_front(canal)
    behind = np.arange(bone.shape[2])[None, None, :] > front[None, :, None]
    posterior = bone & ~sacrum & behind
    crack = max(1, round(CRACK_MM / spacing_mm[1]))
    posterior = ndimage.binary_closing(posterior, np.ones((1, crack + 1, 1), bool)) & ~sacrum & behind
    tissue = np.zeros(bone.shape, np.uint8)
    tissue[disc] = Tissue.DISC
    tissue[canal] = Tissue.CANAL
    tissue[bone & ~behind] = Tissue.BODY
    tissue[posterior] = Tissue.POSTERIOR
    tissue[sacrum] = Tissue.SACRUM
    per_x = canal.sum((1, 2)).astype(float)
    midline = float((per_x * np.arange(len(per_x))).sum() / per_x.sum()) if per_x.sum() else (len(per_x) - 1) / 2
    return SpineVolume(patient, source, tissue, spacing_mm, midline, discs)


def _pad(volume: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    below = round(PAD_BELOW_MM / spacing_mm[1])
    behind = round(PAD_BEHIND_MM / spacing_mm[2])
    return np.pad(volume, ((0, 0), (0, below), (0, behind)))


def _centre_mm(mask: np.ndarray, spacing_mm: tuple[float, float, float]) -> tuple[float, float]:
    _, y, z = np.nonzero(mask)
    return float(y.mean() * spacing_mm[1]), float(z.mean() * spacing_mm[2])


def spider_volume(masks: list[Path], spacing_mm: tuple[float, float, float], series: str) -> SpineVolume | None:
    """A SPIDER T2 SPACE series' anatomy from its slices' masks (in slice order; 29 disc, 76 vertebra, 150 canal),
    with the sacrum drawn (see the module's docstring); None without two discs or without L5's posterior elements."""
    from PIL import Image

    labels = _pad(np.stack([np.asarray(Image.open(p).convert("L")) for p in masks]), spacing_mm)
    bone, disc, canal = labels == 76, labels == 29, labels == 150
    pieces, n = ndimage.label(disc)
    sizes = ndimage.sum_labels(disc, pieces, np.arange(1, n + 1))
    kept = [k + 1 for k in np.flatnonzero(sizes >= 0.3 * np.median(sizes))] if n else []
    kept.sort(key=lambda k: -np.nonzero(pieces == k)[1].mean())  # lowest first
    if len(kept) < 2:
        return None
    discs = {name: _centre_mm(pieces == k, spacing_mm) for name, k in zip(UPWARD_DISCS, kept)}
    l5s1 = pieces == kept[0]
    y_l5s1, y_l4l5 = discs["L5/S1"][0] / spacing_mm[1], discs["L4/L5"][0] / spacing_mm[1]
    front = _canal_front(canal)
    behind = np.arange(bone.shape[2])[None, None, :] > front[None, :, None]
    rows = np.arange(bone.shape[1])[None, :, None]
    l5_posterior = bone & behind & (rows > y_l4l5) & (rows < y_l5s1 + L5_REACH_MM / spacing_mm[1])
    if not l5_posterior.any():
        return None
    _, l5_rows, l5_cols = np.nonzero(l5_posterior)
    top = l5_rows.max() + SACRAL_GAP_MM / spacing_mm[1]  # the L5/S1 window below L5's lowest posterior element
    sacrum = _draw_sacrum(l5s1.any(0), 0.75 * (y_l5s1 - y_l4l5), top, float(np.percentile(l5_cols, 90)), spacing_mm[1])
    below = bone & (rows > y_l5s1) & (~behind | (rows >= top))  # S1's labelled parts
    sacrum_3d = np.broadcast_to(sacrum, bone.shape) | below
    plate_canal = np.broadcast_to(_sacral_canal(sacrum), bone.shape) & ~sacrum_3d
    return _assemble(
        bone | sacrum_3d,
        sacrum_3d,
        disc & ~sacrum_3d,
        (canal | plate_canal) & ~sacrum_3d,
        spacing_mm,
        series.split("_")[0],
        f"SPIDER {series}",
        discs,
    )


def _draw_sacrum(disc: np.ndarray, l5_height_px: float, top: float, lamina_back: float, pixel_mm: float) -> np.ndarray:
    """The sacrum on a sagittal plane ``(y, z)``: the body wedge below the L5/S1 disc and a dorsal plate
    ``SACRAL_PLATE_MM`` thick from row ``top`` down that follows the wedge's back, its back surface level with L5's
    laminae (``lamina_back``, z) at the top and at least ``SACRAL_CANAL_MM`` behind the wedge. Pixels are square
    (``pixel_mm``); ``l5_height_px`` sets the wedge's length."""
    wedge, _ = synthetic_sacrum(disc, l5_height_px)
    rows = np.flatnonzero(wedge.any(1))
    back = np.array([np.flatnonzero(wedge[y]).max() for y in rows], float)
    behind = lamina_back - back[min(np.searchsorted(rows, top), len(rows) - 1)]
    behind = max(behind, (SACRAL_CANAL_MM + SACRAL_PLATE_MM) / pixel_mm)
    plate = np.zeros_like(wedge)
    z = np.arange(wedge.shape[1])
    for y, b in zip(rows, back):
        if y >= top:
            plate[y] = (z <= b + behind) & (z > b + behind - SACRAL_PLATE_MM / pixel_mm)
    return wedge | plate


def _sacral_canal(sacrum: np.ndarray) -> np.ndarray:
    """The sacral canal: per row, between the sacrum's wedge and its dorsal plate."""
    canal = np.zeros_like(sacrum)
    for y in np.flatnonzero(sacrum.any(1)):
        cols = np.flatnonzero(sacrum[y])
        inside = np.flatnonzero(np.diff(cols) > 1)
        if inside.size:
            canal[y, cols[inside[0]] + 1 : cols[inside[0] + 1]] = True
    return canal


def ct_volume(labels_path: Path, names: dict[int, str], patient: str) -> SpineVolume | None:
    """A CT vertebra mask's anatomy (``names``: label -> vertebra name; the one named S1 is taken as the sacrum),
    resampled to ``CT_SPACING_MM`` around the spine; None with fewer than two named vertebrae."""
    import nibabel as nib

    image = nib.as_closest_canonical(nib.load(str(labels_path)))  # RAS: x right, y anterior, z superior
    ids = np.asarray(image.dataobj).astype(np.int16).transpose(0, 2, 1)[:, ::-1, ::-1]
    zooms = image.header.get_zooms()[:3]
    spacing = (float(zooms[0]), float(zooms[2]), float(zooms[1]))
    present = [v for v in np.unique(ids) if v in names]
    if len(present) < 2:
        return None
    x, y, z = np.nonzero(ids > 0)
    centre = int(np.median(x))
    reach = round(35 / spacing[0])
    box = (
        slice(max(centre - reach, 0), centre + reach + 1),
        slice(max(y.min() - round(30 / spacing[1]), 0), y.max() + round(30 / spacing[1]) + 1),
        slice(max(z.min() - round(10 / spacing[2]), 0), z.max() + 1),
    )
    ids = ids[box]
    zoom = [s / t for s, t in zip(spacing, CT_SPACING_MM)]
    bone = ndimage.zoom((ids > 0).astype(np.float32), zoom, order=1) > 0.5
    ids = ndimage.zoom(ids, zoom, order=0)
    sacral = [v for v in present if names[v] == "S1"]
    sacrum = bone & np.isin(ids, sacral) if sacral else np.zeros(bone.shape, bool)
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[:, 1, :] = ndimage.generate_binary_structure(2, 1)
    canal = ndimage.binary_fill_holes(bone, in_plane) & ~bone
    bone, sacrum, canal = (_pad(a, CT_SPACING_MM) for a in (bone, sacrum, canal))
    ids = _pad(ids, CT_SPACING_MM)
    front = _canal_front(canal)
    bodies = {}
    for v in present:
        body = (ids == v) & (np.arange(ids.shape[2])[None, None, :] <= front[None, :, None])
        if body.any():
            bodies[names[v]] = _centre_mm(body, CT_SPACING_MM)
    order = sorted(bodies, key=SPINE_ORDER.index)
    discs = {
        disc_name(upper, lower): tuple((np.array(bodies[upper]) + np.array(bodies[lower])) / 2)
        for upper, lower in itertools.pairwise(order)
        if SPINE_ORDER.index(lower) == SPINE_ORDER.index(upper) + 1
    }
    name = Path(labels_path).name
    return _assemble(bone, sacrum, np.zeros(bone.shape, bool), canal, CT_SPACING_MM, patient, f"CT {name}", discs)


def build_spider_volumes(spider: Path, out: Path) -> list[Path]:
    """Every SPIDER T2 SPACE series' anatomy, saved as ``out/<series>.npz`` (cached; a series that gives none is
    remembered as ``<series>.skipped``)."""
    out.mkdir(parents=True, exist_ok=True)
    spacing = read_overview_voxels(spider / "overview.csv")
    kept = []
    for name, masks in t2space_series(spider / "t2space" / "masks").items():
        target, skipped = out / f"{name}.npz", out / f"{name}.skipped"
        if not target.is_file() and not skipped.is_file() and name in spacing:
            volume = spider_volume(masks, spacing[name], name)
            if volume is None:
                skipped.touch()
            else:
                volume.save(target)
        if target.is_file():
            kept.append(target)
    return kept


CT_SOURCES = {
    "verse012": ("ct/verse19_sub-verse012/sub-verse012_seg-vert_msk.nii.gz", VERTEBRA_NAMES),
    "totalseg_example": (
        "ct/totalsegmentator_example/example_ct_vertebrae_totalsegmentator.nii.gz",
        {26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1", 32: "T12", 33: "T11"},
    ),
}


# --- the probe's path and its frames -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbePath:
    """The probe's centre on the skin, caudal to cranial, every 0.5 mm: ``points_mm`` ``(m, 2)`` [y, z], arc length
    ``s_mm``, the unit tangent (cranial) and normal (anterior: the beam's direction)."""

    points_mm: np.ndarray
    s_mm: np.ndarray
    tangent: np.ndarray
    normal: np.ndarray

    def at(self, s_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(points, tangents, normals) at arc lengths ``s_mm`` (interpolated)."""

        def interp(values: np.ndarray) -> np.ndarray:
            return np.stack([np.interp(s_mm, self.s_mm, values[:, k]) for k in range(2)], -1)

        tangent, normal = interp(self.tangent), interp(self.normal)
        return (
            interp(self.points_mm),
            tangent / np.linalg.norm(tangent, axis=-1, keepdims=True),
            normal / np.linalg.norm(normal, axis=-1, keepdims=True),
        )


def probe_path(volume: SpineVolume, offset_mm: float, skin_mm: float) -> ProbePath:
    """The path ``skin_mm`` behind the envelope of the posterior bone (posterior elements and sacrum) in the plane
    ``offset_mm`` beside the midline (the bone within ±2 mm of it); see the module's docstring."""
    sx, sy, sz = volume.spacing_mm
    x = volume.midline_x + offset_mm / sx
    near = slice(max(int(np.floor(x - 2 / sx)), 0), int(np.ceil(x + 2 / sx)) + 1)
    back = np.isin(volume.tissue[near], (Tissue.POSTERIOR, Tissue.SACRUM)).any(0)  # (y, z)
    rows = np.flatnonzero(back.any(1))
    if rows.size < 2:
        raise ValueError(f"{volume.source}: no posterior bone {offset_mm:.1f} mm beside the midline")
    deepest = np.full(back.shape[0], -np.inf)
    deepest[rows] = [np.flatnonzero(back[y]).max() for y in rows]
    envelope = ndimage.maximum_filter1d(deepest, 2 * round(ENVELOPE_MAX_MM / sy) + 1)[rows[0] : rows[-1] + 1]
    y_mm = np.arange(rows[0], rows[-1] + 1) * sy
    z_mm = ndimage.gaussian_filter1d(envelope * sz, ENVELOPE_SMOOTH_MM / sy, mode="nearest") + skin_mm
    points = np.stack([y_mm, z_mm], 1)[::-1]  # caudal to cranial
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    even = np.arange(0, s[-1], 0.5)
    points = np.stack([np.interp(even, s, points[:, k]) for k in range(2)], 1)
    tangent = np.gradient(points, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1)
    normal *= np.where(normal[:, 1:] > 0, -1, 1)  # anterior: decreasing z
    return ProbePath(points, even, tangent, normal)


@dataclass(frozen=True)
class Acquisition:
    """How one sweep is taken (drawn by :func:`draw_acquisition`, or given: known-answer tests)."""

    offset_mm: float  # scan plane beside the midline (sign: side)
    skin_mm: float  # soft tissue from the skin to the laminae's envelope
    tilt_deg: float  # the beam's tilt in the scan plane (mean of the sweep)
    out_of_plane_deg: float  # the beam's tilt out of the plane (mean)
    jitter_deg: float  # frame-to-frame tilt jitter (SD)
    step_mm: float  # mean advance a frame
    speed_sd: float  # frame-to-frame variation of the advance (log SD)
    start_below_mm: float  # the first frame this far below the sacrum's cranial edge
    end_above_mm: float  # the last frame this far above the highest gap named
    noise: bool = True  # speckle and noise (False: the echo model alone)


def draw_acquisition(volume: SpineVolume, rng: np.random.Generator) -> Acquisition:
    """A random acquisition: the plane 10-20 mm beside the midline (at most 1 mm inside the map's edge), either side."""
    reach = max(volume.half_width_mm - 1.0, 2.0)
    high = min(20.0, reach)
    offset = rng.uniform(min(10.0, 0.6 * high), high) * rng.choice([-1, 1])
    return Acquisition(
        offset_mm=float(offset),
        skin_mm=float(rng.uniform(25, 45)),
        tilt_deg=float(rng.uniform(-5, 5)),
        out_of_plane_deg=float(rng.uniform(-3, 3)),
        jitter_deg=float(rng.uniform(0.3, 1.5)),
        step_mm=float(rng.uniform(1.5, 2.8)),
        speed_sd=float(rng.uniform(0.1, 0.35)),
        start_below_mm=float(rng.uniform(15, 35)),
        end_above_mm=float(rng.uniform(15, 30)),
    )


def _beams(path: ProbePath, s_mm: np.ndarray, tilt_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probe centres, beam directions, directions across the footprint) ``(n, 2)`` [y, z] of frames at ``s_mm``
    whose beams are tilted by ``tilt_rad`` in the plane."""
    centre, tangent, normal = path.at(s_mm)
    c, s = np.cos(tilt_rad)[:, None], np.sin(tilt_rad)[:, None]
    return centre, c * normal - s * tangent, c * tangent + s * normal


def sample_tissue(
    volume: SpineVolume,
    path: ProbePath,
    s_mm: np.ndarray,
    offset_mm: float,
    tilt_rad: np.ndarray,
    out_of_plane_rad: np.ndarray,
    across: np.ndarray,
    rows: int = RENDER_ROWS,
    depth_mm: float = DEPTH_MM,
) -> np.ndarray:
    """The tissue ``(n, rows, len(across))`` under frames at arc lengths ``s_mm``: depth down the rows (0 to
    ``depth_mm``), ``across`` (mm, cranial positive) along the columns."""
    sx, sy, sz = volume.spacing_mm
    centre, beam, along = _beams(path, s_mm, tilt_rad)
    depth = (np.arange(rows) + 0.5) * depth_mm / rows
    yz = (
        centre[:, None, None, :]
        + depth[None, :, None, None] * beam[:, None, None, :]
        + across[None, None, :, None] * along[:, None, None, :]
    )
    x_mm = offset_mm + depth[None, :, None] * np.tan(out_of_plane_rad)[:, None, None]
    coords = np.stack(
        [np.broadcast_to(x_mm / sx + volume.midline_x, yz.shape[:3]), yz[..., 0] / sy, yz[..., 1] / sz]
    ).astype(np.float32)
    return ndimage.map_coordinates(volume.tissue, coords, order=0, mode="nearest")


def beam_classes(centre_beams: np.ndarray) -> np.ndarray:
    """The class (index into ``CLASSES``) of frames whose centre beams' tissue is ``(n, depth)``: the first hard
    tissue met decides (sacrum, posterior elements: vertebra); a body or none: a gap."""
    hard = np.isin(centre_beams, HARD)
    first = centre_beams[np.arange(len(centre_beams)), hard.argmax(1)]
    out = np.full(len(centre_beams), GAP)
    out[hard.any(1) & (first == Tissue.SACRUM)] = SACRUM
    out[hard.any(1) & (first == Tissue.POSTERIOR)] = VERTEBRA
    return out


def _smooth_walk(n: int, sd: float, rng: np.random.Generator, keep: float = 0.8) -> np.ndarray:
    """An AR(1) series of ``n`` values with stationary SD ``sd``."""
    out = np.zeros(n)
    shocks = rng.normal(0, sd * np.sqrt(1 - keep**2), n)
    out[0] = rng.normal(0, sd)
    for k in range(1, n):
        out[k] = keep * out[k - 1] + shocks[k]
    return out


# --- image formation ---------------------------------------------------------------------------------------------


def echo_frames(tissue: np.ndarray, rng: np.random.Generator, noise: bool = True) -> np.ndarray:
    """B-mode frames ``(n, rows / 2, cols)`` float32 in [0, 1] from the tissue under them ``(n, rows, cols)`` (rows:
    depth 0 to ``DEPTH_MM``); see the module's docstring for the model. Without ``noise``: no speckle, no noise."""
    n, rows, cols = tissue.shape
    dz = DEPTH_MM / rows
    depth = (np.arange(rows) + 0.5) * dz
    t = tissue.astype(np.intp)
    diffuse = DIFFUSE[t]
    soft = t == Tissue.SOFT
    skin_mm, fat_mm = rng.uniform(1.5, 3.0), rng.uniform(4, 15)
    layer = np.where(depth < skin_mm, 2.5, np.where(depth < fat_mm, 0.35, 1.0)).astype(np.float32)
    fibres = 1 + 0.6 * np.clip(ndimage.gaussian_filter1d(rng.normal(0, 1, (n, rows)), 1.2, axis=1), -1.5, 1.5)
    septa = np.zeros(rows, np.float32)
    for _ in range(rng.integers(1, 4)):
        septa[min(int(rng.uniform(skin_mm, fat_mm) / dz), rows - 1)] = rng.uniform(1.5, 4)
    septa[min(int(fat_mm / dz), rows - 1)] = rng.uniform(4, 8)  # the thoracolumbar fascia
    texture = layer[None, :] * np.where(depth[None, :] >= fat_mm, fibres, 1.0) + septa[None, :]
    diffuse = np.where(soft, diffuse * texture[:, :, None], diffuse) * rng.uniform(0.7, 1.3)

    entering = np.zeros(t.shape, bool)
    entering[:, 1:] = t[:, 1:] != t[:, :-1]
    hard = np.isin(t, HARD)
    smooth = ndimage.gaussian_filter(hard.astype(np.float32), (0, 1.5, 1.5))
    g_depth, g_across = np.gradient(smooth, axis=1), np.gradient(smooth, axis=2)
    facing = np.abs(g_depth) / np.sqrt(g_depth**2 + g_across**2 + 1e-9)  # cosine, beam to surface normal
    specular = np.where(entering, ENTRY[t] * np.where(hard, facing**4, facing**2), 0).astype(np.float32)
    specular *= rng.uniform(0.7, 1.3)

    passed = np.ones(t.shape, np.float32)
    passed[entering & hard] = rng.uniform(0.02, 0.12)
    passed[hard & ~entering] = 0.85
    passed[entering & ~hard] = 1 - 0.5 * ENTRY[t[entering & ~hard]]
    transmitted = np.concatenate([np.ones((n, 1, cols), np.float32), np.cumprod(passed, axis=1)[:, :-1]], axis=1)
    attenuation_np_mm = rng.uniform(0.4, 0.8) * rng.uniform(3, 5) * np.log(10) / 20 / 10  # dB/cm/MHz -> Np/mm
    loss = np.exp(-2 * attenuation_np_mm * depth)[None, :, None]
    scatter = (rng.normal(0, 1, t.shape) + 1j * rng.normal(0, 1, t.shape)) / np.sqrt(2) if noise else 1.0
    blur = (0, rng.uniform(0.5, 1.0), rng.uniform(0.8, 1.8))
    # the PSF's gain: a random field's amplitude is kept through the blur, and a line's (a surface's) peak
    diffuse_gain, line_gain = np.sqrt(4 * np.pi * blur[1] * blur[2]), np.sqrt(2 * np.pi) * blur[1]
    diffuse_part = diffuse_gain * DIFFUSE_AMPLITUDE * np.sqrt(diffuse) * scatter
    amplitude = (diffuse_part + line_gain * specular) * transmitted * loss
    envelope = np.abs(
        ndimage.gaussian_filter(amplitude.real, blur) + 1j * ndimage.gaussian_filter(amplitude.imag, blur)
    )
    envelope *= np.exp(2 * attenuation_np_mm * rng.uniform(0.7, 1.0) * depth)[None, :, None]  # TGC
    range_db, gain_db = rng.uniform(40, 60), rng.uniform(-6, 6)
    grey = 1 + (20 * np.log10(envelope + 1e-6) + gain_db) / range_db
    grey = grey.reshape(n, rows // 2, 2, cols).mean(2)
    if noise:
        grey += rng.normal(0, 0.01, grey.shape)
    return np.clip(grey, 0, 1).astype(np.float32)


# --- sweeps ------------------------------------------------------------------------------------------------------


@dataclass
class Sweep:
    """One simulated sweep: 8-bit frames ``(n, *FRAME_SHAPE)`` caudal to cranial, each frame's class (index into
    ``CLASSES``) and level name (``"sacrum"``, ``"L4/L5"``, ``"L4"``), the probe centre's arc length from the
    sweep's start and its point ``(n, 2)`` [y, z] mm in the map; how many of the counted gaps, from L5/S1 upwards,
    face their own discs (``verified_gaps``: only their names are truth)."""

    patient: str
    source: str
    seed: int
    acquisition: Acquisition
    frames: np.ndarray
    labels: np.ndarray
    levels: list[str]
    position_mm: np.ndarray
    centre_mm: np.ndarray
    verified_gaps: int

    def counted_gaps(self) -> list[tuple[str, int, int]]:
        """(level, first frame, last frame) of each gap counted in the truth (see :func:`_level_names`)."""
        out: list[tuple[str, int, int]] = []
        for k, name in enumerate(self.levels):
            if name in GAPS and out and out[-1][0] == name:
                out[-1] = (name, out[-1][1], k)
            elif name in GAPS:
                out.append((name, k, k))
        return out


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, first, end) of each run of equal values (``end`` exclusive)."""
    edges = np.flatnonzero(np.diff(values)) + 1
    starts, ends = np.concatenate([[0], edges]), np.concatenate([edges, [len(values)]])
    return [(int(values[a]), int(a), int(b)) for a, b in zip(starts, ends)]


def _level_names(labels: np.ndarray, s_mm: np.ndarray, disc_s: dict[str, float]) -> tuple[list[str], int]:
    """Each frame's level, counting the gaps from the sacrum as an expert would: the k-th gap run is ``GAPS[k]``
    and the vertebra frames above it ``VERTEBRAE[k]``. A run shorter than ``MIN_RUN`` frames (shown too briefly to
    count) is no level: a lamina that brief inside a window joins the window, else it and a window that brief take
    the class before them; a lamina straight above the sacrum is L5 (the L5/S1 window passed unseen).

    A counted gap is *verified* when it lies at its own disc's level (of the discs' positions on the path, ``disc_s``,
    arc length, see :func:`_landmarks`, the nearest to the gap's middle is the disc the gap is named after), the
    sweep starts on the sacrum and every gap below is verified. Returns the levels and the number of verified gaps."""
    counted = labels.copy()
    runs = _runs(labels)
    for k, (value, first, end) in enumerate(runs):  # laminae seen too briefly first: islands in a window
        if value == VERTEBRA and end - first < MIN_RUN and 0 < k < len(runs) - 1:
            counted[first:end] = GAP if runs[k - 1][0] == runs[k + 1][0] == GAP else runs[k - 1][0]
    runs = _runs(counted)
    for k, (value, first, end) in enumerate(runs):  # then windows too brief to count
        if value == GAP and end - first < MIN_RUN and k > 0:
            counted[first:end] = counted[first - 1]
    levels: list[str] = []
    gaps: list[float] = []  # where each counted gap's middle lies (arc length)
    previous = None
    for value, first, end in _runs(counted):
        if value == GAP or (value == VERTEBRA and previous == SACRUM and not gaps):
            gaps.append((s_mm[first] + s_mm[end - 1]) / 2 if value == GAP else s_mm[first])
        if value == SACRUM:
            name = "sacrum"
        elif not gaps or len(gaps) > len(GAPS):
            name = "?"
        else:
            name = (GAPS if value == GAP else VERTEBRAE)[len(gaps) - 1]
        levels += [name] * (end - first)
        previous = value
    names = sorted(disc_s, key=disc_s.get)
    faced = [min(names, key=lambda d: abs(disc_s[d] - g)) for g in gaps] if names else []
    verified = 0
    while labels[0] == SACRUM and verified < len(faced) and faced[verified] == GAPS[verified]:
        verified += 1
    return levels, verified


def _landmarks(
    volume: SpineVolume, path: ProbePath, s_mm: np.ndarray, offset_mm: float, skin_mm: float
) -> tuple[np.ndarray, dict[str, float]]:
    """(the arc lengths where the untilted centre beam meets the sacrum first, each disc's position on the path).

    A disc's position is where the beam crosses the disc's plane (through its centre, across the spine's axis
    there) at the laminae's depth (``skin_mm`` + 5 mm): the level a window or a lamina seen there belongs to."""
    zeros = np.zeros(len(s_mm))
    beams = sample_tissue(volume, path, s_mm, offset_mm, zeros, zeros, np.zeros(1))[..., 0]
    on_sacrum = s_mm[beam_classes(beams) == SACRUM]
    centre, beam, _ = _beams(path, s_mm, zeros)
    window = centre + (skin_mm + 5.0) * beam
    names = sorted(volume.discs, key=lambda d: -volume.discs[d][0])  # upwards
    centres = np.array([volume.discs[d] for d in names])
    disc_s = {}
    for k, name in enumerate(names):
        axis = centres[max(k - 1, 0)] - centres[min(k + 1, len(names) - 1)]
        across = (window - centres[k]) @ (axis / max(np.linalg.norm(axis), 1e-6))
        disc_s[name] = float(s_mm[np.argmin(np.abs(across))])
    return on_sacrum, disc_s


def simulate_sweep(volume: SpineVolume, seed: int, acquisition: Acquisition | None = None) -> Sweep:
    """One sweep over ``volume`` (see the module's docstring), the same for the same seed."""
    rng = np.random.default_rng(seed)
    acq = acquisition or draw_acquisition(volume, rng)
    path = probe_path(volume, acq.offset_mm, acq.skin_mm)
    dense = np.arange(0, path.s_mm[-1], 1.0)
    on_sacrum, disc_s = _landmarks(volume, path, dense, acq.offset_mm, acq.skin_mm)
    margin = FOOTPRINT_MM / 2
    top_name = next((g for g in ("T12/L1", "T11/T12") if g in disc_s), max(disc_s, key=disc_s.get))
    if on_sacrum.size:
        start = max(on_sacrum.max() - acq.start_below_mm, on_sacrum.min(), margin)
    else:
        start = max(disc_s.get("L5/S1", margin) - acq.start_below_mm, margin)
    end = min(disc_s[top_name] + acq.end_above_mm, path.s_mm[-1] - margin)
    if end <= start:
        raise ValueError(f"{volume.source}: the path is too short for a sweep")
    n_max = int((end - start) / (0.3 * acq.step_mm)) + 2
    steps = acq.step_mm * np.exp(_smooth_walk(n_max, acq.speed_sd, rng) - acq.speed_sd**2 / 2)
    s = start + np.concatenate([[0], np.cumsum(steps)])
    s = s[s <= end]
    n = len(s)
    jitter = np.radians(acq.jitter_deg)
    tilt = np.radians(acq.tilt_deg) + _smooth_walk(n, jitter, rng)
    out_of_plane = np.radians(acq.out_of_plane_deg) + _smooth_walk(n, jitter, rng)
    across = (np.arange(FRAME_SHAPE[1]) - (FRAME_SHAPE[1] - 1) / 2) * FOOTPRINT_MM / FRAME_SHAPE[1]
    tissue = sample_tissue(volume, path, s, acq.offset_mm, tilt, out_of_plane, across)
    centre = sample_tissue(volume, path, s, acq.offset_mm, tilt, out_of_plane, np.zeros(1))[..., 0]
    labels = beam_classes(centre)
    levels, verified = _level_names(labels, s, disc_s)
    frames = echo_frames(tissue, rng, acq.noise)
    return Sweep(
        volume.patient,
        volume.source,
        seed,
        acq,
        np.round(frames * 255).astype(np.uint8),
        labels,
        levels,
        s - start,
        path.at(s)[0],
        verified,
    )


def simulate_sweeps(volumes: list[SpineVolume], per_volume: int, seed: int) -> list[Sweep]:
    """``per_volume`` sweeps of each volume, sweep ``k`` seeded by ``(seed, the volume's source, k)``: reproducible
    and independent of the other volumes. A draw whose path is too short is skipped."""
    out = []
    for volume in volumes:
        for k in range(per_volume):
            entropy = [seed, zlib.crc32(volume.source.encode()), k]
            try:
                out.append(simulate_sweep(volume, int(np.random.SeedSequence(entropy).generate_state(1)[0])))
            except ValueError:
                continue
    return out
