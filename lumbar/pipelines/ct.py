"""The CT pipeline: vertebrae and discs found and named, heights, canal, lordosis, trabecular bone density and an
opportunistic osteoporosis screen, from a CT volume in Hounsfield units (any orientation; it is read in sagittal
slices).

The sagittal network (trained on MRI) reads the slices within ``NETWORK_BAND_MM`` of the midline in a bone window
and names the levels as on MRI (``tasks/levels.py``); every vertebra is then redrawn from the CT's own bone
(``tasks/ct_bone.py``), and measured as on MRI, but for its heights, whose ends are read to the endplates' edges
in Hounsfield units (``tasks/measurements.edge_mm``). The names are counted from the sacrum where the CT shows it joined
to the ilia below the lowest disc found (``tasks/sacrum.py``: a missed L5/S1 disc moves every name up and is
flagged; the rule, checked on one real CT, is named in a review reason); where it does not (a field of view ending
above the pelvis, or too narrow to show it), they are counted from the lowest disc found and carry ``sacrum.NO_ANCHOR``.
No CT finding has been checked against an expert here, so the Summary states nothing and every table value is
marked not validated.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from lumbar.figures import Figures
from lumbar.findings import HEIGHT_FIELDS, Findings, Stenosis, Vertebra
from lumbar.image import Modality, SpineImage
from lumbar.labels import CANAL_LABEL, classes_of, is_vertebra
from lumbar.models.registry import OnnxModel
from lumbar.pipelines import mr_sagittal
from lumbar.pipelines.result import Result, Segmentation, input_description
from lumbar.progress import SILENT, Progress
from lumbar.tasks.ct_bone import (
    BONE_HU,
    DENSE_HU,
    DENSITY_HALF_WIDTH_MM,
    DENSITY_REGION,
    MAX_DENSE_ML,
    MIN_DENSITY_ML,
    NETWORK_BAND_MM,
    Density,
    band,
    calibration_problem,
    canal_in_line,
    grown_below_lowest_disc,
    lateral_centres,
    metal_reason,
    midline_index,
    screen,
    slab_cut,
    trabecular_density,
    vertebrae_from_bone,
    windowed,
)
from lumbar.tasks.levels import LevelLabelling, label_levels, mid_sagittal_index
from lumbar.tasks.measurements import CUT_BY_EDGE
from lumbar.tasks.overlays import overlay
from lumbar.tasks.quality import quality_problems
from lumbar.tasks.sacrum import counted_from_sacrum, disc_spacing_mm, head_down_first
from lumbar.tasks.segmentation import SemanticSegmentation, segment_slices
from lumbar.tasks.stenosis import CITATION
from lumbar.tasks.summary import TABLE_FINDINGS
from lumbar.version import __version__

NAME = "ct"
DESCRIPTION = "CT volumes in Hounsfield units (any orientation)"
MODALITIES = (Modality.CT,)
MIN_VERTEBRA_ML = 1.0  # of bone: the smallest piece of a vertebra worth naming (a lumbar one holds 30-60 ml)
NO_SPINE = "no vertebra found in the CT: where the network saw a spine, the CT has no bone"
# A vertebra's voxels are mostly marrow: their median lies near 100-300 HU (bench/ct.py's whole-vertebra means on real
# CT: 181-218). Above this the "vertebra" is solid bone: an ivory vertebra, metal, or no vertebra at all (a long bone).
MAX_VERTEBRA_MEDIAN_HU = 500.0
MIN_EXTENT_MM = 30.0  # head to feet and front to back: about one vertebral body
MAX_VOXEL_MM = 10.0
# Head to feet: above this, an endplate's partial volume makes a body read taller, by up to a slice (bench/ct.py
# measures it on the CT phantom averaged over thicker slices).
THICK_SLICE_MM = 1.5
# Above this, no height at all: partial volume of up to a slice is over half the 20% loss of a Genant grade 1 in a
# 27 mm body, and the MRI network's chain of discs breaks (bench/ct.py thick_slices: the phantom at 4 and 5 mm, its
# levels misnamed).
MAX_HEIGHT_SLICE_MM = 3.0
SAGITTAL_MARGIN_MM = 50.0  # the overview's sagittal slice: the vertebrae and this much in front and behind
CORONAL_HALF_WIDTH_MM = 90.0  # the coronal reformat: this far either side of the midline
SCREENED_LEVEL = "L1"  # the level the published thresholds were set on
UNGRADED_CANAL = "CT: the canal's outline comes from a network trained on MRI and was not checked on CT"
NOT_VALIDATED = (
    "CT: not compared with an expert's reading of CT here (bench/ct.py measures segmentation and level names on "
    "three labelled CTs and heights and attenuation against a peer tool)"
)


def refusal(image: SpineImage) -> str | None:
    """Why this pipeline cannot read ``image`` (None when it can): not a CT, a scout, a single slice, too short a
    field of view, or values that are not Hounsfield units."""
    if image.modality not in MODALITIES:
        return f"{image.modality.value} images: the CT pipeline reads CT only"
    if image.series is not None and "LOCALIZER" in image.series.image_type.upper():
        return "a CT scout (localiser), a projection: give the axial or sagittal series"
    if image.is_2d:
        return "a single CT slice: the CT pipeline needs a volume"
    if image.series is not None and not image.series.rescale_stated:  # the CT Image module requires it (Type 1)
        return (
            "a CT DICOM without RescaleIntercept: its stored values are not known to be Hounsfield units (padding "
            "outside the field can pass for air); export the series with its rescale"
        )
    coarsest = max(image.spacing_mm)
    if coarsest > MAX_VOXEL_MM:
        return f"voxels of {coarsest:.3g} mm: coarser than {MAX_VOXEL_MM:.0f} mm, too coarse to measure a vertebra"
    _, rows, cols = image.sagittal_slices().shape
    row_mm, col_mm = image.sagittal_spacing_mm()
    for extent, direction in ((rows * row_mm, "head to feet"), (cols * col_mm, "front to back")):
        if extent < MIN_EXTENT_MM:
            return (
                f"the CT covers {extent:.0f} mm {direction}; at least {MIN_EXTENT_MM:.0f} mm (about one vertebral "
                "body) are needed"
            )
    problem = calibration_problem(image.array)
    return f"CT {problem}" if problem else None


def segment(
    image: SpineImage, progress: Progress = SILENT, gate: tuple[str, ...] = (), model: OnnxModel | None = None
) -> Segmentation:
    """Segment the slices near the midline, name the levels, redraw the vertebrae from the bone, and say why a
    reader should check the result. ``model``: a trained candidate instead of the shipped network (benchmarks)."""
    hu = image.sagittal_slices()
    spacing = image.display_spacing_mm()
    mid = midline_index(hu)
    near = band(mid, NETWORK_BAND_MM, spacing[0], hu.shape[0])
    progress.stage("segmenting slices", total=near.stop - near.start)
    found = segment_slices(windowed(hu[near]), spacing[1:], model, progress=progress.advance)
    classes = np.zeros(hu.shape, np.uint8)
    confidence = np.zeros(hu.shape, np.float32)
    classes[near], confidence[near] = found.classes, found.confidence
    progress.stage("naming levels")
    # Disc planes carried straight back: lowered behind the canal as on MRI, they lowered the mean per-vertebra Dice
    # of all three labelled CTs, whose vertebrae are redrawn from the bone below.
    named = label_levels(classes, spacing, arch_drop=0.0)
    redrawn = replace(named, instances=vertebrae_from_bone(hu, named.instances, spacing, mid))
    levels = with_bone(counted_from_sacrum(with_bone_below(redrawn, hu, spacing, mid), hu, spacing, mid), spacing)
    levels = replace(levels, instances=canal_in_line(levels.instances, spacing))  # no canal off the tube
    shown = classes_of(levels.instances)
    semantic = SemanticSegmentation(shown, confidence, found.spacing_mm, found.model_version)
    mid_slice = mid_sagittal_index(shown)
    metal = metal_reason(hu, levels, spacing, mid)
    withheld = head_down_first(
        [
            *gate,
            *([metal] if metal else []),
            *levels.flags,
            *quality_problems(levels.instances[mid_slice], levels.levels, spacing[1:]),
        ]
    )
    mean_confidence = found.mean_confidence()
    if mean_confidence is not None and levels.vertebrae and mean_confidence < mr_sagittal.LOW_CONFIDENCE:
        withheld.append(f"low model confidence: mean segmentation confidence {mean_confidence:.2f}")
    noted = mr_sagittal.image_reasons(image)
    thick = thick_slice_reason(image)
    if thick:
        noted.append(thick)
    if image.modality_guessed:
        noted.append(f"modality not stated by the {image.format or 'file'}: read as CT from its Hounsfield units")
    return Segmentation(image, semantic, levels, (*withheld, *noted), tuple(withheld))


def thick_slice_reason(image: SpineImage) -> str | None:
    """A review reason where the CT's voxels are more than ``THICK_SLICE_MM`` long head to feet (None otherwise)."""
    along = image.display_spacing_mm()[1]
    if along <= THICK_SLICE_MM:
        return None
    return (
        f"slices {along:.3g} mm apart head to feet: partial volume at the endplates makes vertebral heights read "
        "taller, by up to a slice, and discs harder to tell from the bone around them, so level names are less sure; "
        f"a reconstruction of {THICK_SLICE_MM:g} mm or thinner measures better"
    )


def with_bone_below(
    levels: LevelLabelling, hu: np.ndarray, spacing: tuple[float, float, float], mid: int
) -> LevelLabelling:
    """``levels`` with the vertebra below the lowest disc grown into the CT's bone (``grown_below_lowest_disc``):
    the network, taught on MRI whose sacrum is unlabelled, leaves most of it out."""
    if not levels.discs:
        return levels
    lowest = levels.discs[0]
    below = next((lv for lv in levels.vertebrae if lv.name == lowest.name.split("/")[1]), None)
    if below is None:
        return levels
    grown = grown_below_lowest_disc(
        hu, levels.instances, lowest, below.label, spacing, mid, disc_spacing_mm(levels.discs)
    )
    return replace(levels, instances=grown)


def with_bone(levels: LevelLabelling, spacing: tuple[float, float, float]) -> LevelLabelling:
    """The levels whose vertebrae hold bone: a vertebra the network drew where the CT has less than
    ``MIN_VERTEBRA_ML`` of bone is dropped, and so is a disc with no vertebra left above or below it (soft tissue
    the network took for a spine). Without a vertebra left nothing is named, and the one review reason says so."""
    voxel_ml = float(np.prod(spacing)) / 1000
    counts = np.bincount(levels.instances.ravel(), minlength=CANAL_LABEL + 1)
    counted = [replace(lv, voxels=int(counts[lv.label])) for lv in levels.levels]
    bony = {lv.name for lv in counted if lv.kind == "vertebra" and lv.voxels * voxel_ml >= MIN_VERTEBRA_ML}
    if not bony:
        return LevelLabelling(np.zeros_like(levels.instances), [], [NO_SPINE])
    kept = [lv for lv in counted if lv.name in bony or (lv.kind == "disc" and bony & set(lv.name.split("/")))]
    instances = levels.instances.copy()
    instances[~np.isin(instances, [lv.label for lv in kept] + [CANAL_LABEL])] = 0
    return LevelLabelling(instances, kept, list(levels.flags))


def thick_heights_withheld(vertebrae: list[Vertebra], image: SpineImage) -> list[Vertebra]:
    """``vertebrae`` without heights, ratios or Genant grades where the CT's slices are more than
    ``MAX_HEIGHT_SLICE_MM`` apart head to feet (the reason in ``genant_not_graded``); as they are otherwise."""
    along = image.display_spacing_mm()[1]
    if along <= MAX_HEIGHT_SLICE_MM + 1e-3:  # 3 mm read from an oblique DICOM's positions is 3.0000000001
        return vertebrae
    why = f"slices {along:.3g} mm apart head to feet: heights not read (at most {MAX_HEIGHT_SLICE_MM:g} mm)"
    withheld = dict.fromkeys(HEIGHT_FIELDS) | {"genant_not_graded": why}
    return [
        v.model_copy(update={"measurements": v.measurements.model_copy(update=withheld)})
        if v.measurements is not None and any(getattr(v.measurements, f) is not None for f in HEIGHT_FIELDS)
        else v
        for v in vertebrae
    ]


# What scanners write in ContrastBolusAgent for a series without contrast (read with punctuation as spaces and in
# capitals): an agent's name is anything else. Words that open a "none" ("NO IV CONTRAST", "WITHOUT CONTRAST") and
# ones that say unenhanced anywhere ("NON-CONTRAST", "UNENHANCED"); "NON IONIC" names an agent.
NO_AGENT = frozenset({"", "N", "NA", "N A", "0", "NATIVE", "PLAIN"})
NO_AGENT_OPENING = ("NO ", "NONE ", "WITHOUT ", "NIL ")
UNENHANCED = ("NON CONTRAST", "NONCONTRAST", "NON ENHANCED", "NONENHANCED", "UNENHANCED")


def _agent_words(agent: str) -> str:
    return " ".join(re.sub(r"[^0-9A-Za-z]+", " ", agent).upper().split())


def contrast_note(image: SpineImage) -> str:
    """Whether the series was contrast-enhanced, as the file says (an intravenous agent raises trabecular
    attenuation; an oral one alone does not reach the bone)."""
    agent = image.series.contrast_agent if image.series is not None else None
    if agent is None:
        return "not stated by the file: if contrast was given, attenuation reads higher than without"
    if not agent.strip():
        return "no contrast agent stated (ContrastBolusAgent empty)"
    words = _agent_words(agent)
    if words in NO_AGENT or f"{words} ".startswith(NO_AGENT_OPENING) or any(w in words for w in UNENHANCED):
        return f"no contrast agent (ContrastBolusAgent: {agent})"
    tokens = set(words.split())
    if tokens & {"ORAL", "PO"} and not tokens & {"IV", "INTRAVENOUS", "IODINATED"}:
        return (
            f"oral contrast only (ContrastBolusAgent: {agent}): not given into a vein, it does not raise bone "
            "attenuation"
        )
    return f"contrast-enhanced (ContrastBolusAgent: {agent}): attenuation reads higher than without contrast"


NO_REGION = (
    f"{SCREENED_LEVEL}'s body gave no trabecular region of {MIN_DENSITY_ML:g} ml: its marrow was not found inside its "
    f"cortex (marrow below {BONE_HU:.0f} HU, very low density, is one cause: look at the images)"
)


def not_screened(vertebra: Vertebra, density: Density) -> str | None:
    """Why the vertebra to be screened is not, though its density was read: a fracture (its attenuation is no longer
    the bone's alone, and the fracture says more than a threshold), or dense material in its region (cement, metal,
    a bone island), around which the cap keeps only the blur; None where it may be screened."""
    grade = vertebra.measurements.genant_grade if vertebra.measurements else None
    if grade:
        return (
            f"{vertebra.level} has lost height (Genant grade {grade}): a fractured vertebra's attenuation is not "
            "screened (the fracture is itself to be looked at)"
        )
    if density.dense_ml > MAX_DENSE_ML:
        return (
            f"{vertebra.level} holds {density.dense_ml:.2f} ml above {DENSE_HU:.0f} HU inside its trabecular region "
            "(cement, metal or a bone island): its attenuation is not screened"
        )
    return None


def build_findings(seg: Segmentation) -> tuple[Findings, np.ndarray]:
    """The findings of one CT, and where its trabecular density was measured (a mask on the display slices, for the
    figure). The tables are the MRI pipeline's, with each vertebra's density added; stenosis is not graded (the
    canal's outline is the MRI network's, never checked on CT) and nothing is stated in the Summary."""
    hu, instances = seg.image.sagittal_slices(), seg.levels.instances
    spacing = seg.image.display_spacing_mm()
    mid = seg.mid_slice
    measurements = mr_sagittal.measure(seg, physical=True)
    discs, tables = mr_sagittal.findings_tables(seg, measurements)
    ungraded = Stenosis(grade="unknown", basis=UNGRADED_CANAL, thresholds=CITATION)
    discs = [d.model_copy(update={"stenosis": ungraded}) if d.stenosis else d for d in discs]
    vertebrae, screening, contrast = [], None, contrast_note(seg.image)
    unscreened = f"no vertebra named {SCREENED_LEVEL} with a measurable trabecular region"
    regions = np.zeros(hu.shape, bool)
    thin = slab_cut(mid, spacing[0], hu.shape[0])
    if thin:
        unscreened = (
            f"the volume spans {hu.shape[0] * spacing[0]:.0f} mm left to right, too thin a slab for the trabecular "
            f"region ({DENSITY_HALF_WIDTH_MM:g} mm either side of the midline): no density read"
        )
    centres = lateral_centres(instances, [v.label for v in tables])
    for vertebra in thick_heights_withheld(tables, seg.image):
        centre = centres.get(vertebra.label)
        edge = centre is None or slab_cut(centre, spacing[0], hu.shape[0])  # its slab past the volume's side
        density = None if thin or edge else trabecular_density(hu, instances, vertebra.label, spacing, centre)
        # a body the field cuts: its region's edge there is the field's, not the cortex's, and its bone only part
        cut = vertebra.measurements is not None and vertebra.measurements.genant_not_graded == CUT_BY_EDGE
        if density is None or vertebra.measurements is None or cut:
            if vertebra.level == SCREENED_LEVEL and not thin:
                unscreened = f"{SCREENED_LEVEL} is cut by the field of view" if cut else NO_REGION
            vertebrae.append(vertebra)
            continue
        regions[density.slices] |= density.region
        measured = vertebra.measurements.model_copy(
            update={"bone_density_hu": round(density.mean_hu, 1), "bone_density_hu_median": round(density.median_hu, 1)}
        )
        vertebrae.append(vertebra.model_copy(update={"measurements": measured}))
        if vertebra.level == SCREENED_LEVEL:
            unscreened = not_screened(vertebra, density)
            if unscreened is None:
                confirmed = not seg.levels.flags
                screening = screen(vertebra.level, density.mean_hu, level_confirmed=confirmed, contrast=contrast)
    review, gate = [*seg.review, *measurements.review], [*seg.gate, *measurements.review]
    if thin:
        review.append(unscreened)
    solid = _solid(hu, instances, tables)
    if solid:
        why = (
            f"{', '.join(solid)}: solid bone (median above {MAX_VERTEBRA_MEDIAN_HU:.0f} HU over the vertebra): an "
            "ivory vertebra, metal, or not a vertebra at all: check the images"
        )
        review, gate = head_down_first([why, *review]), head_down_first([why, *gate])
    findings = Findings(
        lumbar_version=__version__,
        input=input_description(seg.image).model_copy(update={"contrast": contrast}),
        models={"segmentation": seg.semantic.model_version},
        units="mm" if seg.image.spacing_known else "pixels",
        discs=discs,
        vertebrae=vertebrae,
        lordosis_deg=measurements.lordosis_deg,
        bone_density_screening=screening,
        bone_density_region=DENSITY_REGION,
        bone_density_not_screened=None if screening else unscreened,
        narrowest_canal_ap_mm=measurements.narrowest_canal_ap_mm,
        narrowest_canal_level=measurements.narrowest_canal_level,
        needs_review=review,
        summary=(),
        summary_withheld="; ".join(gate) if gate else None,
        not_validated={
            **dict.fromkeys(
                ("level_names", "vertebra_measurements", "disc_measurements", "canal", *TABLE_FINDINGS), NOT_VALIDATED
            ),
            "bone_density": f"{NOT_VALIDATED}; the screening thresholds are published, not checked against DXA here",
        },
    )
    return findings, regions


def _solid(hu: np.ndarray, instances: np.ndarray, vertebrae: list[Vertebra]) -> list[str]:
    """The vertebrae whose voxels' median exceeds ``MAX_VERTEBRA_MEDIAN_HU`` (one pass over the volume)."""
    where = is_vertebra(instances)
    labels, values = instances[where], hu[where]
    return [v.level for v in vertebrae if np.median(values[labels == v.label]) > MAX_VERTEBRA_MEDIAN_HU]


def overview(seg: Segmentation, regions: np.ndarray) -> np.ndarray:
    """The mid-sagittal slice and a coronal reformat through the bodies, in the bone window and cropped to the
    spine, with every level named and the trabecular regions outlined."""
    hu, instances, classes = seg.image.sagittal_slices(), seg.levels.instances, seg.semantic.classes
    names = seg.label_names()
    lateral_mm, (rows_mm, cols_mm) = seg.image.spacing_mm[0], seg.image.sagittal_spacing_mm()
    mid = seg.mid_slice
    spine = np.nonzero(is_vertebra(instances[mid]).any(axis=0))[0]
    front, back = (spine.min(), spine.max()) if len(spine) else (0, hu.shape[2] - 1)
    cols = slice(max(0, front - round(SAGITTAL_MARGIN_MM / cols_mm)), back + round(SAGITTAL_MARGIN_MM / cols_mm) + 1)
    sagittal = overlay(
        windowed(hu[mid, :, cols]),
        classes[mid, :, cols],
        instances[mid, :, cols],
        names,
        (rows_mm, cols_mm),
        outline=regions[mid, :, cols],
    )
    bodies = np.nonzero(regions.any(axis=(0, 1)))[0]
    col = int(np.median(bodies)) if len(bodies) else (front + back) // 2
    side = band(mid, CORONAL_HALF_WIDTH_MM, lateral_mm, hu.shape[0])
    across = instances[side, :, col].T
    width_mm = (cols.stop - cols.start) * cols_mm
    coronal = overlay(
        windowed(hu[side, :, col].T),
        classes[side, :, col].T,
        np.where(across == CANAL_LABEL, 0, across),  # names on each body's centre: no canal to stand in front of
        names,
        (rows_mm, lateral_mm),
        width_px=max(120, round(520 * (side.stop - side.start) * lateral_mm / width_mm)),
        outline=regions[side, :, col].T,
    )
    height = max(sagittal.shape[0], coronal.shape[0])
    pad = [np.pad(p, ((0, height - p.shape[0]), (0, 8), (0, 0))) for p in (sagittal, coronal)]
    return np.concatenate(pad, axis=1)


def analyze_images(
    images: list[SpineImage],
    *,
    same_patient: bool = False,
    gates: list[tuple[str, ...]] | None = None,
    progress: Progress = SILENT,
) -> list[Result]:
    """Analyse CT volumes already read; each stands alone (``same_patient`` changes nothing here)."""
    results = []
    for image, gate in zip(images, gates or [()] * len(images)):
        seg = segment(image, progress, gate)
        progress.stage("measuring")
        findings, regions = build_findings(seg)
        results.append(Result(seg, findings, Figures(overview(seg, regions))))
    return results


def analyze(image: SpineImage, *, gate: tuple[str, ...] = (), progress: Progress = SILENT) -> Result:
    """Analyse one CT volume."""
    return analyze_images([image], gates=[gate], progress=progress)[0]
