"""CT in Hounsfield units: the checks, the bone window, the spine's midline, vertebrae outlined by their bone, and
trabecular bone density with an opportunistic osteoporosis screen.

The sagittal network was trained on MRI; on CT it finds discs, bodies and the canal on the slices through the spine
(in a bone window), but it calls ribs and pelvis "vertebra" on lateral slices and its outlines do not follow the
cortex. So on CT the network names the levels on the slices near the midline, and each vertebra's voxels are then
taken from the CT itself: bone (attenuation of ``BONE_HU`` or more, marrow enclosed by cortex filled in)
within ``NEAR_NETWORK_MM`` of the network's voxels of that vertebra. Every constant is anatomy or physics, not a fit
to the three labelled CTs the benchmark scores (``bench/ct.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lumbar.findings import BoneDensityScreening
from lumbar.io.arrays import CT_BELOW_HU, HU_OFFSET, MAX_HU, MIN_BONE_HU, offset_ct, sample_values
from lumbar.labels import CANAL_LABEL, is_disc, is_vertebra
from lumbar.tasks.levels import Level, LevelLabelling
from lumbar.tasks.measurements import canal_without_specks, in_front_of_canal

BONE_WINDOW_HU = (-250.0, 1250.0)  # what the network sees: bone bright, soft tissue mid-grey, fat and air dark
MIDLINE_BONE_HU = 200.0  # the skeleton's lateral centre of mass (ribs and pelvis are symmetric) marks the midline
NETWORK_BAND_MM = 25.0  # the network's output is kept this far either side of the midline: the column, not the ribs
SPINE_HALF_WIDTH_MM = 45.0  # a lumbar vertebra with its transverse processes spans about 90 mm
# Cortex and most trabecular bone; unsmoothed, so that an outline stays on its edge (a Gaussian's tail would cross
# 100 HU outside the cortex): the CT phantom's 27 mm bodies measure 0.4 mm taller on average (bench/ct.py).
BONE_HU = 100.0
# Cortical bone reads 400-1500 HU, above 300 even averaged over a 5 mm slice; organs enhanced by contrast stay below
# about 200 (portal venous phase). A piece above ``BONE_HU`` with nothing this bright is no bone.
CORTEX_HU = 250.0
MAX_MARROW_HOLE_MM2 = 2500.0  # a body's cross-section is at most ~2000 mm²: larger holes are the chest or pelvis
NEAR_NETWORK_MM = 6.0  # bone this close to the network's voxels of a vertebra belongs to that vertebra
BELOW_LOWEST_SPACINGS = 1.0  # the vertebra below the lowest disc reaches down to where the next disc would lie
BODY_MARGIN_MM = 3.0  # ... and its body no further in front of or behind the disc's edges (as levels.py's margin)
SECTION_MARGIN_MM = 20.0  # bone looked at that far around it, so that its cortex encloses its marrow on every section

# Trabecular region of a body: the body (in front of the canal) on the slices within ``DENSITY_HALF_WIDTH_MM`` of the
# midline, at least ``CORTEX_MARGIN_MM`` inside its outline (no cortex, no endplate), and not its posterior
# ``VEIN_FRACTION`` of depth (the basivertebral vein enters the body's back at mid-height).
DENSITY_HALF_WIDTH_MM = 10.0
CORTEX_MARGIN_MM = 4.0
VEIN_FRACTION = 0.25
MIN_DENSITY_ML = 0.3
# Trabecular bone averages below ~300 HU even in young adults; a voxel above this inside the region is an endplate or
# cortex the outline's margin did not clear (a body outlined a little past its endplate) or a bone island, which a
# hand-placed ROI avoids (Pickhardt et al. 2013).
TRABECULAR_MAX_HU = 400.0
# Denser than any trabecular bone, and than most cortex: cement (vertebroplasty), metal, or a bone island. Where the
# region holds this much of it, what the cap leaves is the blur around it (a partly cemented L1 read 357 HU against
# 118 HU without the cement: found in review), and the body is not screened.
DENSE_HU = 1000.0
MAX_DENSE_ML = 0.05


def slab_cut(mid: int, lateral_mm: float, n: int) -> bool:
    """Whether the volume's left-right extent cuts the trabecular region's slab (``DENSITY_HALF_WIDTH_MM`` either
    side of slice ``mid``): a thin sagittal slab reads a thinner region, which the body's volume alone did not catch."""
    inner = band(mid, DENSITY_HALF_WIDTH_MM, lateral_mm, n)
    return inner.stop - inner.start < 2 * round(DENSITY_HALF_WIDTH_MM / lateral_mm) + 1


def lateral_centres(instances: np.ndarray, labels: list[int]) -> dict[int, int]:
    """The display slice through the middle of each vertebra of ``labels`` left to right: the median slice of its
    voxels (its arch and processes lie either side alike). Its trabecular region is centred there, not on the
    volume's midline slice, which can lie a slice off it (on 3 mm voxels L1 read 7 HU apart one slice over)."""
    boxes = ndimage.find_objects(instances)
    centres = {}
    for label in labels:
        box = boxes[label - 1] if label <= len(boxes) else None
        if box is not None:
            counts = (instances[box] == label).sum(axis=(1, 2))
            centres[label] = int(box[0].start + np.searchsorted(np.cumsum(counts), counts.sum() / 2))
    return centres


DENSITY_REGION = (
    f"vertebral body within {DENSITY_HALF_WIDTH_MM:g} mm of its own mid-sagittal plane (the middle of its voxels left "
    f"to right), {CORTEX_MARGIN_MM:g} mm (plus half "
    f"the largest voxel side) inside its outline (no cortex or endplate), the posterior {VEIN_FRACTION:.0%} of its "
    f"depth left out (basivertebral vein), and any voxel above {TRABECULAR_MAX_HU:.0f} HU (an endplate, cortex or a "
    "bone island) or as far below the region's median as that lies above it (noise cut evenly on both sides; a "
    f"median above {TRABECULAR_MAX_HU:.0f} HU, sclerotic bone, keeps the cap alone)"
)

# Opportunistic screening from L1 trabecular attenuation (Pickhardt et al., Ann Intern Med 2013;158:588-595; DXA as
# reference, 1867 adults, routine abdominal CT at 120 kVp): <= 110 HU was more than 90% specific for osteoporosis,
# <= 160 HU 90% sensitive.
SCREEN_SPECIFIC_HU = 110.0
SCREEN_SENSITIVE_HU = 160.0
SCREENING_CITATION = (
    "Pickhardt PJ et al. Opportunistic screening for osteoporosis using abdominal computed tomography scans obtained "
    "for other indications. Ann Intern Med 2013;158(8):588-595: L1 trabecular attenuation <= 110 HU more than 90% "
    "specific, <= 160 HU 90% sensitive for osteoporosis by DXA"
)


def calibration_problem(hu: np.ndarray) -> str | None:
    """Why the voxels do not look like Hounsfield units (None when they do): values that are not numbers, an 8-bit
    export, a missing rescale."""
    if np.issubdtype(hu.dtype, np.floating) and not np.isfinite(hu).all():
        return "values that are not finite numbers (NaN or infinite voxels)"
    sample = sample_values(hu, 500_000)
    low, high = float(np.percentile(sample, 0.5)), float(np.percentile(sample, 99.9))
    shown = f"values {low:.3g} to {high:.3g}"
    if offset_ct(hu):
        return (
            f"{shown}: next to nothing below {CT_BELOW_HU:.0f} but padding, soft tissue in a narrow peak near "
            f"{HU_OFFSET:.0f} and a tail as dense as bone: "
            f"looks like CT stored without its HU offset (Hounsfield units + {HU_OFFSET:.0f}); subtract "
            f"{HU_OFFSET:.0f} from every voxel and save it again (or give --modality MR if it is an MRI)"
        )
    if low > CT_BELOW_HU:
        return (
            f"{shown}: no fat or air (below {CT_BELOW_HU:.0f}), so not in Hounsfield units (an 8-bit or windowed "
            "export, or a DICOM without its RescaleSlope/RescaleIntercept)"
        )
    if high < MIN_BONE_HU:
        return f"{shown}: nothing as dense as bone ({MIN_BONE_HU:.0f} HU or more): no spine in view, or not a CT"
    if high > MAX_HU:
        return f"{shown}: above {MAX_HU:.0f}, not Hounsfield units (a rescale missing or wrong)"
    return None


# Metal (pedicle screws, rods, cages; vertebroplasty cement, made radiopaque with barium or zirconia) reads far above
# any bone: cortex 400-1500 HU, and the densest voxel of the real spines here 2309 HU (VerSe 012, 0.05 ml above 2000).
METAL_HU = 2500.0
MIN_METAL_ML = 0.5  # a pedicle screw 6.5 mm wide and 45 mm long holds about 1.5 ml

# Front to back, metal counts from this far in front of the column's anterior wall backwards: screws, cement and cages
# lie inside the bodies and discs, rods and screw heads behind them, an anterior plate on the bodies' front (2-4 mm
# thick, with a millimetre of blooming). The aorta and the vena cava lie in front of the bodies, their lumen 15-25 mm
# wide, and the bowel further: a stent, a caval filter or dense oral contrast beyond this is not the spine's.
METAL_FRONT_MM = 5.0


def column_front(instances: np.ndarray) -> np.ndarray | None:
    """Per row of display slices ``instances (n, rows, cols)``, the column index of the spine's anterior wall: its
    frontmost vertebra or disc voxel on any slice, interpolated over rows without one and held beyond the column's
    ends (None without a vertebra or disc)."""
    column = (is_vertebra(instances) | is_disc(instances)).any(axis=0)
    rows = np.flatnonzero(column.any(axis=1))
    if not rows.size:
        return None
    return np.interp(np.arange(column.shape[0]), rows, column[rows].argmax(axis=1))


def metal_near_spine(
    hu: np.ndarray, instances: np.ndarray, spacing: tuple[float, float, float], mid: int
) -> np.ndarray:
    """The voxels of display slices ``hu (n, rows, cols)`` above ``METAL_HU`` within ``SPINE_HALF_WIDTH_MM`` of the
    midline slice ``mid`` (a hip prosthesis, 80 mm or more from it, is not the spine's) and no more than
    ``METAL_FRONT_MM`` in front of the anterior wall of the column in ``instances`` (:func:`column_front`; an aortic
    stent is not the spine's either). Without a vertebra or disc to place that wall, the band alone bounds them."""
    metal = np.zeros(hu.shape, bool)
    near = band(mid, SPINE_HALF_WIDTH_MM, spacing[0], hu.shape[0])
    metal[near] = hu[near] > METAL_HU
    front = column_front(instances)
    if front is not None:
        metal &= (np.arange(hu.shape[2]) >= front[:, None] - METAL_FRONT_MM / spacing[2])[None]
    return metal


METAL_REACH_MM = 10.0  # metal this far above or below a level's voxels is at that level


def metal_reason(hu: np.ndarray, levels: LevelLabelling, spacing: tuple[float, float, float], mid: int) -> str | None:
    """A review reason naming metal near the spine (:func:`metal_near_spine` of the column in ``levels``: more than
    ``MIN_METAL_ML``) and the named levels it lies at, head to feet (None without it): screws, cement or a cage break
    the network's chain of discs and streak the bone around them, and a failure they cause is otherwise said as a
    generic one."""
    metal = metal_near_spine(hu, levels.instances, spacing, mid)
    ml = float(metal.sum() * np.prod(spacing) / 1000)
    if ml < MIN_METAL_ML:
        return None
    rows = np.flatnonzero(metal.any(axis=(0, 2)))
    reach = round(METAL_REACH_MM / spacing[1])
    boxes = ndimage.find_objects(levels.instances)
    spans = {lv.name: boxes[lv.label - 1][1] for lv in levels.levels if lv.label <= len(boxes) and boxes[lv.label - 1]}
    at = sorted(
        (span.start, name)
        for name, span in spans.items()
        if span.start - reach <= rows.max() and rows.min() <= span.stop - 1 + reach
    )
    where = f"at {', '.join(name for _, name in at)}" if at else "away from every level named"
    return (
        f"metal in view ({ml:.1f} ml above {METAL_HU:.0f} HU near the spine) {where}: screws, cement or an implant; "
        "level names, outlines and heights near it may be wrong"
    )


def windowed(hu: np.ndarray) -> np.ndarray:
    """The bone window the network reads: attenuation clipped to ``BONE_WINDOW_HU``."""
    return np.clip(hu, *BONE_WINDOW_HU).astype(np.float32)


def midline_index(hu: np.ndarray) -> int:
    """The sagittal slice ``hu (n, rows, cols)`` through the body's midline: the median lateral position of bone."""
    per_slice = (hu >= MIDLINE_BONE_HU).sum(axis=(1, 2))
    if per_slice.sum() == 0:
        return hu.shape[0] // 2
    cumulative = np.cumsum(per_slice)
    return int(np.searchsorted(cumulative, cumulative[-1] / 2))


def band(mid: int, half_width_mm: float, lateral_mm: float, n: int) -> slice:
    """The slices within ``half_width_mm`` of slice ``mid``."""
    half = round(half_width_mm / lateral_mm)
    return slice(max(0, mid - half), min(n, mid + half + 1))


def _fill_marrow(bone: np.ndarray, pixel_mm2: float, forbidden: np.ndarray) -> np.ndarray:
    """``bone`` (2D) with its enclosed holes filled where they are small enough to be marrow and hold no canal."""
    holes = ndimage.binary_fill_holes(bone) & ~bone
    labelled, n = ndimage.label(holes)
    if n == 0:
        return bone
    # counted with bincount and unique: ndimage's per-label sum and maximum scan the slice once per label
    keep = np.bincount(labelled.ravel(), minlength=n + 1) * pixel_mm2 <= MAX_MARROW_HOLE_MM2
    keep[np.unique(labelled[forbidden & holes])] = False  # a hole that holds canal stays open
    keep[0] = False
    return bone | keep[labelled]


def bone_mask(hu: np.ndarray, spacing: tuple[float, float, float], canal: np.ndarray) -> np.ndarray:
    """Bone of display slices ``hu (n, rows, cols)``: attenuation of ``BONE_HU`` or more, and the marrow its cortex
    encloses on sagittal or axial sections (never the canal, ``canal``), in pieces that hold cortex (somewhere
    ``CORTEX_HU`` or more): an organ enhanced by contrast (liver, spleen, kidney: 100-160 HU) is not bone."""
    bone = hu >= BONE_HU
    for k in range(bone.shape[0]):
        bone[k] = _fill_marrow(bone[k], spacing[1] * spacing[2], canal[k])
    for r in range(bone.shape[1]):
        bone[:, r, :] = _fill_marrow(bone[:, r, :], spacing[0] * spacing[2], canal[:, r, :])
    bone &= ~canal
    pieces, n = ndimage.label(bone)
    with_cortex = np.zeros(n + 1, bool)
    with_cortex[np.unique(pieces[hu >= CORTEX_HU])] = True
    with_cortex[0] = False
    return with_cortex[pieces]


def vertebrae_from_bone(
    hu: np.ndarray, instances: np.ndarray, spacing: tuple[float, float, float], mid: int
) -> np.ndarray:
    """``instances`` with every vertebra redrawn from the CT's bone: the bone within ``SPINE_HALF_WIDTH_MM`` of the
    midline slice ``mid`` that lies within ``NEAR_NETWORK_MM`` of the network's voxels of a vertebra, connected to
    them, and given that vertebra's label (the nearest one's). Discs and canal keep the network's outline."""
    out = instances.copy()
    out[is_vertebra(out)] = 0
    near = band(mid, SPINE_HALF_WIDTH_MM, spacing[0], hu.shape[0])
    labels = instances[near]
    network = is_vertebra(labels)
    if not network.any():
        return out
    canal = ndimage.binary_dilation(labels == CANAL_LABEL)
    bone = bone_mask(hu[near], spacing, canal) & ~is_disc(labels)
    components, _ = ndimage.label(bone)
    bone &= np.isin(components, np.unique(components[network & bone]))
    # Bone beyond NEAR_NETWORK_MM of the network's vertebrae is never kept, so distances are needed only within its
    # box grown by that much; the box holds every network voxel, so each distance and nearest voxel is the whole
    # volume's, at a fraction of the cost.
    box = tuple(
        slice(max(0, found.start - reach), min(size, found.stop + reach))
        for found, reach, size in zip(
            ndimage.find_objects(network.astype(np.uint8))[0],
            (int(np.ceil(NEAR_NETWORK_MM / side)) + 1 for side in spacing),
            network.shape,
        )
    )
    distance, nearest = ndimage.distance_transform_edt(~network[box], sampling=spacing, return_indices=True)
    keep = bone[box] & (distance <= NEAR_NETWORK_MM)
    region = out[near]
    region[box][keep] = labels[box][tuple(index[keep] for index in nearest)]
    out[near] = region
    return out


def grown_below_lowest_disc(
    hu: np.ndarray,
    instances: np.ndarray,
    lowest: Level,
    label: int,
    spacing: tuple[float, float, float],
    mid: int,
    disc_spacing_mm: float,
) -> np.ndarray:
    """``instances`` with the vertebra below the lowest disc (``label``) grown into the CT's bone below that disc.

    The network learnt from MRI whose sacrum is unlabelled, so it marks little of the bone below the lowest disc it
    finds: of the sacrum, or of a lumbar vertebra where the field of view ends. Bone there (within
    ``SPINE_HALF_WIDTH_MM`` of the midline slice ``mid``) joined to what it did mark is that vertebra's body: from
    the disc's plane down to where the next disc would lie (``BELOW_LOWEST_SPACINGS`` of ``disc_spacing_mm`` along
    the disc's axis), and no more than ``BODY_MARGIN_MM`` in front of the disc's front edge or behind its back edge
    (the arches behind belong as much to the vertebra above). Voxels of other structures keep their labels."""
    out = instances.copy()
    near = band(mid, SPINE_HALF_WIDTH_MM, spacing[0], hu.shape[0])
    labels = out[near]
    seeds = labels == label
    disc = np.argwhere(labels == lowest.label)[:, 1:] * np.array(spacing[1:])
    if not seeds.any() or not len(disc):
        return out
    axis, centre = np.asarray(lowest.axis), np.asarray(lowest.centroid_mm)
    across = np.array([axis[1], -axis[0]])  # toward the back
    extent = (disc - centre) @ across
    rows, cols = np.meshgrid(np.arange(hu.shape[1]) * spacing[1], np.arange(hu.shape[2]) * spacing[2], indexing="ij")
    offset = np.stack([rows - centre[0], cols - centre[1]], axis=-1)
    below, behind = -(offset @ axis), offset @ across
    body = (
        (below > 0)
        & (below <= BELOW_LOWEST_SPACINGS * disc_spacing_mm)
        & (behind >= extent.min() - BODY_MARGIN_MM)
        & (behind <= extent.max() + BODY_MARGIN_MM)
    )
    if not body.any():
        return out
    box = _padded_box(body, round(SECTION_MARGIN_MM / spacing[1]), round(SECTION_MARGIN_MM / spacing[2]))
    labels, seeds = labels[:, box[0], box[1]], seeds[:, box[0], box[1]]  # views: written through to ``out``
    canal = ndimage.binary_dilation(labels == CANAL_LABEL)
    bone = bone_mask(hu[near][:, box[0], box[1]], spacing, canal)
    candidates = bone & body[box][None] & ((labels == 0) | seeds)
    pieces, _ = ndimage.label(candidates)
    labels[np.isin(pieces, np.unique(pieces[seeds & candidates])) & (pieces > 0)] = label
    return out


def _padded_box(mask: np.ndarray, pad_rows: int, pad_cols: int) -> tuple[slice, slice]:
    """The rows and columns of a 2D ``mask``'s bounding box, grown by ``pad_rows`` and ``pad_cols`` (within it)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (
        slice(max(0, rows[0] - pad_rows), rows[-1] + pad_rows + 1),
        slice(max(0, cols[0] - pad_cols), cols[-1] + pad_cols + 1),
    )


@dataclass(frozen=True)
class Density:
    """Trabecular attenuation of one vertebral body, in HU, over ``ml`` millilitres (the region: ``DENSITY_REGION``),
    and that region: ``region`` on the display slices ``slices``."""

    mean_hu: float
    median_hu: float
    ml: float
    slices: slice
    region: np.ndarray
    dense_ml: float = 0.0  # of the region before its cap: voxels above DENSE_HU (cement, metal, a bone island)


def trabecular_density(
    hu: np.ndarray, instances: np.ndarray, label: int, spacing: tuple[float, float, float], mid: int
) -> Density | None:
    """Trabecular attenuation of the body of vertebra ``label`` (see ``DENSITY_REGION``); None where that region
    holds less than ``MIN_DENSITY_ML`` (a body cut by the image's edge, a thin slab) or no canal marks where the body
    ends (a canal of specks alone, each under ``MIN_CANAL_PIECE_MM2``, marks nothing). The margin inside the outline
    grows by half the largest voxel side, so that thick slices' partial volume does not bring the endplates in."""
    margin = CORTEX_MARGIN_MM + max(spacing) / 2
    outer = band(mid, DENSITY_HALF_WIDTH_MM + margin, spacing[0], hu.shape[0])  # the slab's edge is not the body's
    labels = instances[outer]
    # its anterior wall, row by row, from every slice of the slab, without specks (one inside the body cut it short)
    canal = canal_without_specks((labels == CANAL_LABEL).any(axis=0), spacing[1:])
    if not canal.any():
        return None
    front = np.stack([in_front_of_canal(labels[k] == label, canal) for k in range(labels.shape[0])])
    body = _piece_through(front, mid - outer.start)
    inside = np.zeros_like(body)
    box = ndimage.find_objects(body.astype(np.uint8))
    if box:  # the distance to the outline within the body's box (and its 1-voxel rim): exact, and far cheaper
        depth = ndimage.distance_transform_edt(np.pad(body[box[0]], 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
        inside[box[0]] = depth >= margin
    inner = band(mid, DENSITY_HALF_WIDTH_MM, spacing[0], hu.shape[0])
    inside[: inner.start - outer.start] = False
    inside[inner.stop - outer.start :] = False
    inside &= _not_posterior(body, VEIN_FRACTION)
    # The cap alone cut a noisy scan's upper tail only, reading its mean 10-35 HU low (VerSe 012, noise SD 160-240
    # HU: found in review); cut as far below the median, the mean of symmetric noise stays where it is. A body whose
    # median is above the cap (sclerotic bone) keeps the cap alone, as before: the mirror would leave it nothing.
    dense_ml = float((inside & (hu[outer] > DENSE_HU)).sum() * np.prod(spacing) / 1000.0)
    if inside.any():
        median = float(np.median(hu[outer][inside]))
        floor = 2 * median - TRABECULAR_MAX_HU if median < TRABECULAR_MAX_HU else -np.inf
        inside &= (hu[outer] <= TRABECULAR_MAX_HU) & (hu[outer] >= floor)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    if inside.sum() * voxel_ml < MIN_DENSITY_ML:
        return None
    values = hu[outer][inside]
    return Density(
        float(values.mean()), float(np.median(values)), float(inside.sum() * voxel_ml), outer, inside, dense_ml
    )


def _piece_through(mask: np.ndarray, mid: int) -> np.ndarray:
    """The connected piece of ``mask`` with most voxels on slice ``mid`` (the body; not bone the network joined to
    it in front), or the largest piece when none reaches that slice."""
    pieces, n = ndimage.label(mask)
    if n <= 1:
        return mask
    on_mid = np.bincount(pieces[mid].ravel(), minlength=n + 1)[1:]
    chosen = on_mid.argmax() if on_mid.any() else np.bincount(pieces.ravel())[1:].argmax()
    return pieces == chosen + 1


def _not_posterior(body: np.ndarray, fraction: float) -> np.ndarray:
    """Everything but the posterior ``fraction`` of the body's depth, row by row (display columns run anterior to
    posterior), so that a tilted body loses its own back, not a fixed band of columns."""
    cols = np.arange(body.shape[-1])
    first = np.argmax(body, axis=-1)
    last = body.shape[-1] - 1 - np.argmax(body[..., ::-1], axis=-1)
    limit = last - fraction * (last - first)
    return cols <= limit[..., None]


def screen(level: str, mean_hu: float, *, level_confirmed: bool, contrast: str) -> BoneDensityScreening:
    """Pickhardt's L1 thresholds applied to ``mean_hu`` (see ``SCREENING_CITATION``): a screen, not a diagnosis.
    Where the level names are not confirmed, the text says that the vertebra screened may not be ``level``;
    ``contrast`` says whether the series was contrast-enhanced."""
    if not np.isfinite(mean_hu):
        raise ValueError(f"no screen from an attenuation of {mean_hu}")
    mean_hu = round(mean_hu, 1)  # decided on the value shown: 110.3 HU must not read "110 HU" beside "indeterminate"
    if mean_hu <= SCREEN_SPECIFIC_HU:
        category, why = "osteoporosis likely", f"at or below {SCREEN_SPECIFIC_HU:.0f} HU (over 90% specific)"
    elif mean_hu <= SCREEN_SENSITIVE_HU:
        category, why = "indeterminate", f"between {SCREEN_SPECIFIC_HU:.0f} and {SCREEN_SENSITIVE_HU:.0f} HU"
    else:
        category, why = "osteoporosis unlikely", f"above {SCREEN_SENSITIVE_HU:.0f} HU (90% sensitive)"
    which = level if level_confirmed else f"the vertebra named {level} (its name is not confirmed: see the review)"
    text = (
        f"Opportunistic screening, not a diagnosis: {which} trabecular attenuation {mean_hu:.1f} HU, {why}: "
        f"{category}. DXA confirms."
    )
    return BoneDensityScreening(
        level=level,
        level_confirmed=level_confirmed,
        mean_hu=mean_hu,
        category=category,  # type: ignore[arg-type]
        text=text,
        thresholds=SCREENING_CITATION,
        region=DENSITY_REGION,
        contrast=contrast,
    )


CANAL_IN_LINE_MM = 10.0  # a piece of canal continues the canal's tube: this close to it, front to back and across


def canal_in_line(instances: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """``instances`` (sagittal slices, rows head to feet, columns front to back) without the canal's pieces that do
    not continue its tube. The canal is one tube: its largest 3D piece stays, and another piece only where its end
    nearest the largest lies within ``CANAL_IN_LINE_MM`` front to back and across of the largest piece where that
    comes nearest head to feet (a stretch of the tube the MRI-trained network lost). What it marks "canal" on
    para-sagittal slices inside the vertebral bodies, or in the pelvis, lies far from the tube and goes: inside a
    body it would cut the body short where the trabecular region is read (:func:`trabecular_density`)."""
    canal = instances == CANAL_LABEL
    if not canal.any():
        return instances
    bounds = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(canal))  # the network's band, not the CT
    labelled, n = ndimage.label(canal[bounds])
    if n <= 1:
        return instances
    scale = np.asarray(spacing_mm, float)
    main = int(np.argmax(np.bincount(labelled.ravel())[1:])) + 1
    boxes = ndimage.find_objects(labelled)  # each piece read within its own box, not the whole volume

    def points_of(piece: int) -> np.ndarray:
        box = boxes[piece - 1]
        return (np.argwhere(labelled[box] == piece) + [b.start for b in box]) * scale  # offsets within the bounds

    tube = points_of(main)
    tube_rows = np.unique(tube[:, 1])
    keep = [main]
    for piece in (k for k in range(1, n + 1) if k != main):
        points = points_of(piece)
        rows = np.unique(points[:, 1])
        gap = np.abs(rows[:, None] - tube_rows[None, :])  # the piece's row nearest the tube, and the tube's
        end, nearest = np.unravel_index(np.argmin(gap), gap.shape)
        piece_end = points[np.abs(points[:, 1] - rows[end]) <= scale[1] / 2]
        tube_end = tube[np.abs(tube[:, 1] - tube_rows[nearest]) <= scale[1] / 2]
        if np.all(np.abs(piece_end[:, [0, 2]].mean(0) - tube_end[:, [0, 2]].mean(0)) <= CANAL_IN_LINE_MM):
            keep.append(piece)
    out = instances.copy()
    out[bounds][canal[bounds] & ~np.isin(labelled, keep)] = 0
    return out
