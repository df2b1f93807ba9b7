"""The sagittal MRI pipeline: segment, name levels, measure, grade, and build findings and figures.

One image in, one :class:`~lumbar.pipelines.result.Result` out, nothing written. Several series of one
patient (T1 and T2) can be analysed together (:func:`analyze_study`): each disc is then graded from all
series that show it and whose level names carry no review flag. Evaluation and training data call the
same steps (:func:`segment`, :func:`grade_series`), so what is measured is what ``lumbar analyze`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from lumbar.errors import InputError
from lumbar.figures import Evidence, Figures
from lumbar.findings import Disc, Findings, Grade, Stenosis, Vertebra, graded_together
from lumbar.grades import is_abnormal
from lumbar.image import ASSUMED_FOV_MM, Modality, SpineImage
from lumbar.labels import CANAL_LABEL, REPORTED_DISCS, Structure
from lumbar.models.registry import REGISTRY, OnnxModel, load_model, model_for
from lumbar.pipelines.result import Result, Segmentation, input_description
from lumbar.progress import SILENT, Progress
from lumbar.tasks.disc_crops import crop_disc, crop_labels
from lumbar.tasks.grading import crop_regions, disc_probabilities, fuse_same_disc, grades_from, occlusion_maps
from lumbar.tasks.levels import LevelLabelling, label_levels, mid_sagittal_index
from lumbar.tasks.lumbosacral import body_below_flags, lumbosacral_probability, not_lumbosacral_flag
from lumbar.tasks.measurements import SLIP_SLAB_MM, SpineMeasurements, measure_spine, rejected_heights_withheld
from lumbar.tasks.orientation import header_doubt, slice_of, upright_picture, way_confidences
from lumbar.tasks.overlays import heatmap_overlay, overlay
from lumbar.tasks.quality import quality_problems, smaller_than_adult, unlike_mri
from lumbar.tasks.segmentation import SemanticSegmentation
from lumbar.tasks.segmentation import segment as segment_semantic
from lumbar.tasks.stenosis import CITATION, grade_at_level
from lumbar.tasks.summary import summarise
from lumbar.tasks.weighting import csf_over_marrow, weighting, weighting_from_header
from lumbar.validation import high_specificity_points, level_guess_balanced_accuracy, load_validation
from lumbar.version import __version__

NAME = "mr_sagittal"
DESCRIPTION = "sagittal lumbar MRI (any 3D acquisition is resliced sagittally)"
MODALITIES = REGISTRY["segmentation"].modalities
LOW_CONFIDENCE = 0.8
COARSE_PIXEL_MM = 1.5


def refusal(image: SpineImage) -> str | None:
    """Why this pipeline cannot read ``image`` (None when it can): the segmentation model's registry entry
    says which modalities and planes it was trained on."""
    spec = REGISTRY["segmentation"]
    if image.modality not in spec.modalities:
        return f"{image.modality.value} images: the sagittal MRI models were trained on MR only"
    if image.plane not in spec.planes:
        return f"{image.plane} slices: the models read sagittal slices (give the sagittal series, e.g. with --series)"
    return None


def image_reasons(image: SpineImage) -> list[str]:
    """Why a reader should check a result, from the image itself: modality, spacing, resolution."""
    reasons = []
    if image.series is not None and image.series.gantry_tilt_deg:
        reasons.append(
            f"slices acquired at a gantry tilt of {image.series.gantry_tilt_deg:g} deg: resampled, linearly, onto an "
            "upright grid before anything was measured"
        )
    if not image.spacing_known:
        reasons.append("pixel spacing unknown: distances are in pixels (give --spacing in mm)")
    elif max(image.sagittal_spacing_mm()) > COARSE_PIXEL_MM:
        rows, cols = image.sagittal_spacing_mm()
        # an axial or coronal acquisition's sagittal slices are reformatted: one side is its slice spacing
        across = f", reformatted from {image.plane} slices" if image.plane in ("axial", "coronal") else ""
        reasons.append(
            f"low image quality: the sagittal slices' pixels of {rows:.1f} × {cols:.1f} mm{across} are coarse for "
            "measurements"
        )
    return reasons


def segment(
    image: SpineImage, progress: Progress = SILENT, gate: tuple[str, ...] = (), model: OnnxModel | None = None
) -> Segmentation:
    """Segment every sagittal slice, name the levels and run the quality gate. ``gate`` holds further reasons to
    withhold the Summary (a forced run on an image the pipeline was not made for); ``model`` is a trained candidate
    to use instead of the shipped network (benchmarks compare them on the same path). A picture (PNG/JPEG, no
    stored orientation) is turned upright first where it was stored on its side or head down, and mirrored back where
    it was stored mirrored front to back (``tasks/orientation.py``); a volume is read as its header places it, and
    doubted (its Summary withheld) where the network reads its mid-sagittal slice clearly more surely another way."""
    progress.stage("segmenting slices", total=image.sagittal_slices().shape[0])
    orientation = None
    if image.is_picture:
        image, semantic, orientation = upright_picture(image, model, *lowest_disc_check())
        progress.advance(1)
    else:
        semantic = segment_semantic(image, model, progress=progress.advance)
    progress.stage("naming levels")
    levels = label_levels(semantic.classes, image.display_spacing_mm())
    mid = mid_sagittal_index(semantic.classes)
    levels.flags += lumbosacral_flags(image.sagittal_slices()[mid], image.sagittal_spacing_mm(), levels)
    bone = semantic.classes[mid] == Structure.VERTEBRA
    levels.flags += body_below_flags(bone, image.display_spacing_mm()[1:], levels.instances[mid], levels.discs)
    confidence = semantic.mean_confidence()
    flags = levels.flags if image.spacing_known else [_assumed(flag) for flag in levels.flags]
    pixel_mm = measured_pixel_mm(image)
    withheld = [
        *gate,
        *flags,
        *quality_problems(levels.instances[mid], levels.levels, pixel_mm, image.sagittal_spacing_mm()),
    ]
    foreign = unlike_mri(image.sagittal_slices()[mid], levels.instances[mid], levels.levels, pixel_mm)
    if foreign:
        withheld.append(f"image unlike the MRI the models learnt from: {foreign}")
    if orientation is None and confidence is not None:  # a volume: read as its header places it, unless contradicted
        doubt = header_doubt(way_confidences(slice_of(image, mid), model))
        if doubt:  # first: a header read the wrong way explains the rest
            withheld.insert(0, doubt)
    if image.modality_guessed:  # a CT or a photograph saved as PNG segments confidently: the file must say MR
        withheld.append(
            f"modality not stated by the {image.format or 'file'}: analysed as {image.modality.value}, but no finding "
            "is stated until you confirm it is a sagittal MRI (--modality MR)"
        )
    way_up = orientation.review_reason() if orientation is not None else None
    unclear_way_up = orientation is not None and not orientation.confident
    if way_up and unclear_way_up:
        withheld.append(way_up)
    if orientation is not None:  # whether on its side (the network's call) or mirrored (the check's too): unclear
        withheld += [r for r in (orientation.side_unclear_reason(), orientation.mirror_unclear_reason()) if r]
    if confidence is None:
        withheld.append("nothing of a spine was segmented")
    elif confidence < LOW_CONFIDENCE:
        withheld.append(f"low model confidence: mean segmentation confidence {confidence:.2f}")
    noted = [way_up] if way_up and not unclear_way_up else []  # turned upright: said, not withheld
    if orientation is not None:  # mirrored back or turned off its side: said; withheld where the check mirrored it
        said = [r for r in (orientation.mirror_reason(), orientation.on_side_reason()) if r]
        if orientation.mirrored_by_lowest_disc:
            withheld += said
        else:
            noted += said
    return Segmentation(image, semantic, levels, (*withheld, *image_reasons(image), *noted), tuple(withheld))


def lumbosacral_flags(
    slice_: np.ndarray, spacing: tuple[float, float], levels: LevelLabelling, model: OnnxModel | None = None
) -> list[str]:
    """The lumbosacral check on the lowest disc of the mid-sagittal display slice (is it L5/S1?), as a review flag
    when it says no. ``model``: a trained candidate instead of the shipped one (benchmarks)."""
    model = model or lumbosacral_model()
    if model is None or not levels.discs:
        return []
    if "threshold" not in model.meta:
        raise InputError(f"{model.path}: a lumbosacral check without its operating point (no threshold in its .json)")
    return not_lumbosacral_flag(_at_lowest_disc(model, slice_, spacing, levels), float(model.meta["threshold"]))


def _at_lowest_disc(
    model: OnnxModel, slice_: np.ndarray, spacing: tuple[float, float], levels: LevelLabelling
) -> float:
    """The lumbosacral check's probability that the lowest disc of ``levels`` on ``slice_`` is L5/S1 (0 without one)."""
    return lumbosacral_probability(model, slice_, spacing, levels.discs[0].centroid_mm) if levels.discs else 0.0


def lowest_disc_check() -> tuple[Callable[[SpineImage, SemanticSegmentation], float] | None, float]:
    """The lumbosacral check as :func:`~lumbar.tasks.orientation.upright_picture` asks it where the segmentation
    network cannot tell which way up a picture is: the probability that a segmented picture's lowest disc is L5/S1,
    and its operating point (None and 0.5 where this installation has no check with one)."""
    model = lumbosacral_model()
    if model is None or "threshold" not in model.meta:
        return None, 0.5
    return partial(_lowest_disc_probability, model=model), float(model.meta["threshold"])


def _lowest_disc_probability(image: SpineImage, semantic: SemanticSegmentation, model: OnnxModel) -> float:
    """The lumbosacral check's probability that the lowest disc of ``image``, segmented as ``semantic``, is L5/S1
    (0 where no disc is found)."""
    levels = label_levels(semantic.classes, image.display_spacing_mm())
    mid = mid_sagittal_index(semantic.classes)
    return _at_lowest_disc(model, image.sagittal_slices()[mid], image.sagittal_spacing_mm(), levels)


def _assumed(flag: str) -> str:
    """A level flag measured in assumed millimetres says so (the file did not give its pixel size)."""
    return f"{flag} (mm assuming a {ASSUMED_FOV_MM:.0f} mm field of view)" if " mm" in flag else flag


def measure(seg: Segmentation, physical: bool = False) -> SpineMeasurements:
    """Measurements on the mid-sagittal slice; canal areas too when the study is a volume. Where the file does
    not give its pixel size, distances are in pixels (the size the reader assumed for the network is not a
    measurement and is never reported as one). ``physical``: the image's values mean the same in every study (CT's
    Hounsfield units), so vertebral heights are read to the endplates' edges in them."""
    image, levels, mid = seg.image, seg.levels, seg.mid_slice
    canal = levels.instances == CANAL_LABEL
    volume = canal if canal.shape[0] > 1 and image.spacing_known else None
    reach = round(SLIP_SLAB_MM / image.spacing_mm[0]) if image.spacing_known else 1
    return measure_spine(
        levels.instances[mid],
        levels.levels,
        measured_pixel_mm(image),
        canal_volume=volume,
        lateral_mm=image.spacing_mm[0] if volume is not None else None,
        slab=levels.instances[max(0, mid - reach) : mid + reach + 1],
        in_mm=image.spacing_known,
        intensities=image.sagittal_slices()[mid] if physical else None,
        edge_spacing_mm=image.sagittal_spacing_mm(),  # the assumed pixel size where the file gives none
    )


@dataclass(frozen=True)
class SeriesGrading:
    """The named discs of one series cropped on its mid-sagittal slice, their calibrated probabilities, per disc
    the series those come from (this one, or every series of the patient that shows it whole), the discs the
    slice's edge cuts, and per disc each of those series' own probabilities (``views``; its mean is
    ``probabilities``; empty where the disc was graded from this series alone)."""

    source: str
    crops: dict[str, np.ndarray]
    probabilities: dict[str, dict[str, np.ndarray]]
    graded_from: dict[str, list[str]]
    cut: frozenset[str] = frozenset()
    views: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)


def disc_crops(seg: Segmentation, levels: tuple[str, ...] | None = REPORTED_DISCS) -> dict[str, np.ndarray]:
    """Every named disc of ``levels`` (default the reported ones, T9/T10..L5/S1; None: all) cropped and
    straightened on the mid-sagittal slice."""
    image, mid = seg.image, seg.mid_slice
    slice_, spacing = image.sagittal_slices()[mid], image.sagittal_spacing_mm()
    crops = {}
    for lv in seg.levels.discs:
        crop = (
            crop_disc(slice_, seg.levels.instances[mid], lv, spacing) if levels is None or lv.name in levels else None
        )
        if crop is not None:
            crops[lv.name] = crop.pixels
    return crops


def evidence_regions(seg: Segmentation, levels: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per disc of ``levels``, its crop split into the regions its evidence is judged by (disc, the vertebrae beside
    it, canal, elsewhere: :func:`lumbar.tasks.grading.crop_regions`), in the frame :func:`disc_crops` samples."""
    instances, spacing = seg.levels.instances[seg.mid_slice], seg.image.sagittal_spacing_mm()
    discs = {lv.name: lv for lv in seg.levels.discs}
    vertebrae = {lv.label for lv in seg.levels.vertebrae}
    regions = {}
    for level in levels:
        labels = crop_labels(instances, discs[level], spacing)
        if labels is not None:
            regions[level] = crop_regions(labels.pixels, discs[level].label, vertebrae, labels.mm_per_pixel)
    return regions


def grade_series(seg: Segmentation, model: OnnxModel, source: str | None = None) -> SeriesGrading:
    """Grade every reported disc of one series beside the series' other discs (the network's context); ``source``
    names the series in ``graded_from`` (default: its label, :func:`series_sources` where a patient's are joined)."""
    crops = disc_crops(seg)
    source = source or seg.image.series_label(short=True)
    probabilities = disc_probabilities(list(crops.values()), model)
    cut = frozenset(crops) & edge_cut_discs(seg)
    return SeriesGrading(source, crops, dict(zip(crops, probabilities)), {level: [source] for level in crops}, cut)


def ungraded_note(seg: Segmentation, grading: SeriesGrading) -> str | None:
    """Which named discs got no grade, and why: grades (and measurements) are read on the mid-sagittal slice, and a
    disc segmented on other slices only has no crop there (its row in the grade table was left out without a word)."""
    missing = [lv.name for lv in seg.levels.discs if lv.name in REPORTED_DISCS and lv.name not in grading.probabilities]
    if not missing:
        return None
    return (
        f"not graded: {', '.join(missing)}: named on other slices but not outlined on the mid-sagittal slice, which "
        "grades and measurements are read from"
    )


def edge_cut_discs(seg: Segmentation) -> frozenset[str]:
    """Names of the discs whose outline on the mid-sagittal slice reaches the slice's edge: part of such a disc,
    and of its crop, lies outside the image."""
    instances = seg.levels.instances[seg.mid_slice]
    edge = np.concatenate([instances[0], instances[-1], instances[:, 0], instances[:, -1]])
    return frozenset(lv.name for lv in seg.levels.discs if (edge == lv.label).any())


def fuse_patient_series(gradings: list[SeriesGrading]) -> list[SeriesGrading]:
    """Series of one patient (e.g. T1 and T2): every disc takes the mean of its probabilities over the series
    that show it whole, so that all of them report the same grades. A view cut by its slice's edge counts only
    where no series shows the disc whole: its crop holds part of the disc, and the rest is blank."""
    rows = [(k, level) for k, grading in enumerate(gradings) for level in grading.probabilities]
    if not rows:
        return gradings
    whole = {level for k, level in rows if level not in gradings[k].cut}
    used = [(k, level) for k, level in rows if level not in gradings[k].cut or level not in whole]
    grades = list(gradings[rows[0][0]].probabilities[rows[0][1]])
    fused = fuse_same_disc(
        {g: np.stack([gradings[k].probabilities[level][g] for k, level in used]) for g in grades},
        [level for _, level in used],
    )
    by_level = {level: {g: fused[g][i] for g in grades} for i, (_, level) in enumerate(used)}
    sources = {level: [gradings[k].source for k, other in used if other == level] for level in by_level}
    views = {
        level: {gradings[k].source: gradings[k].probabilities[level] for k, other in used if other == level}
        for level in by_level
    }
    probabilities: list[dict] = [{} for _ in gradings]
    for k, level in rows:
        probabilities[k][level] = by_level[level]
    return [
        SeriesGrading(
            g.source,
            g.crops,
            p,
            {level: sources[level] for level in p},
            g.cut,
            {level: views[level] for level in p if len(views[level]) > 1},
        )
        for g, p in zip(gradings, probabilities)
    ]


def series_sources(images: list[SpineImage]) -> list[str]:
    """How ``graded_from`` names each of a patient's series: its label, and where two share one (a DICOM folder
    whose series state no number nor description, or repeat them) its place among them too, ``[k]``: with one name
    for two series, a T2 was taken for the T1 beside it (its Pfirrmann grades left out of the Summary) and series
    graded together for one graded alone."""
    labels = [image.series_label(short=True) for image in images]
    return [f"{label} [{k}]" if labels.count(label) > 1 else label for k, label in enumerate(labels, start=1)]


def patient_gradings(
    segs: list[Segmentation], model: OnnxModel, sources: list[str] | None = None
) -> tuple[list[SeriesGrading], list[list[str]]]:
    """Grade a patient's series together where their level names can be trusted to mean the same disc
    (:func:`fuse_where_trusted`), each named by its ``sources`` entry (default: its label)."""
    names = sources or [None] * len(segs)
    return fuse_where_trusted(segs, [grade_series(seg, model, name) for seg, name in zip(segs, names)])


def fuse_where_trusted(
    segs: list[Segmentation], gradings: list[SeriesGrading]
) -> tuple[list[SeriesGrading], list[list[str]]]:
    """A patient's series' gradings fused (:func:`fuse_patient_series`) among the series whose level names carry no
    review flag, those whose Summary is withheld (``seg.gate``) apart from those whose is not, and per series the
    notes that say why one was graded alone.

    Fusion joins discs by name, so a series whose naming carries a review flag (a small lowest disc, a gap,
    too few discs) is graded alone and says why: joined by name, its discs could be averaged with their
    neighbours in the other series. A series whose Summary is withheld (an implausible body, a way up in doubt, a
    modality not stated) states nothing itself; joined with one whose Summary is stated, its grades were stated
    there (found in review: SPIDER 241's T1 Summary gained six statements from a T2 with an implausible L1)."""
    gradings = list(gradings)
    unflagged = [k for k, seg in enumerate(segs) if not seg.levels.flags]
    groups = [[k for k in unflagged if not segs[k].gate], [k for k in unflagged if segs[k].gate]]
    for group in groups:
        if len(group) >= 2:
            for k, fused in zip(group, fuse_patient_series([gradings[k] for k in group])):
                gradings[k] = fused
    notes: list[list[str]] = [[] for _ in segs]
    for k, seg in enumerate(segs):
        own, other = groups[::-1] if seg.gate else groups
        if k in own and len(own) >= 2:
            continue
        if k not in own:
            why = "its level names carry a review flag"
        elif seg.gate and other:
            why = f"its own Summary is withheld ({seg.gate[0]}), and the other series' Summaries take nothing from it"
        elif other:
            why = "the Summaries of its other series are withheld"
        else:
            why = "no other series with unflagged level names to join"
        notes[k].append(f"graded alone, not together with the patient's other series: {why}")
    return gradings, notes


def series_grades(grading: SeriesGrading, model: OnnxModel) -> dict[str, dict]:
    """Every disc's grades (values, probabilities, thresholds) from the series' calibrated probabilities."""
    thresholds = model.meta.get("thresholds", {})
    high = high_specificity_points(model.sha256)
    return {
        level: grades_from(p, thresholds, high, grading.views.get(level)) for level, p in grading.probabilities.items()
    }


def evidence_maps(
    grading: SeriesGrading, grades: dict[str, dict], model: OnnxModel, progress: Progress = SILENT
) -> dict[str, dict[str, np.ndarray]]:
    """Per disc graded from this series' own view, the occlusion map of Pfirrmann and of every abnormal grade, each
    for the value decided. A disc graded from the patient's other series alone (its view here cut by the slice's
    edge) gets none here: this view did not decide its grades, and its crop is part blank."""
    context = list(grading.crops.values())
    own = {level: crop for level, crop in grading.crops.items() if grading.source in grading.graded_from[level]}
    maps = {}
    progress.stage("evidence maps", total=len(own))
    for level, crop in own.items():
        shown = ["pfirrmann"] + [g for g, v in grades[level].items() if g != "pfirrmann" and is_abnormal(g, v["value"])]
        maps[level] = occlusion_maps(crop, model, {grade: grades[level][grade]["value"] for grade in shown}, context)
        progress.advance()
    return maps


def grades_and_evidence(
    grading: SeriesGrading, model: OnnxModel, progress: Progress = SILENT
) -> tuple[dict[str, dict], list[Evidence]]:
    """Grades of every disc of a series, and evidence maps for Pfirrmann and every abnormal grade."""
    grades = series_grades(grading, model)
    evidence = [
        Evidence(
            level,
            grade,
            grades[level][grade]["value"],
            grades[level][grade]["probability"],
            heatmap_overlay(grading.crops[level], heat),
        )
        for level, by_grade in evidence_maps(grading, grades, model, progress).items()
        for grade, heat in by_grade.items()
    ]
    return grades, evidence


def grading_reliability(model: OnnxModel, same_patient: bool = False) -> str | None:
    """How far to trust the grades, from the model's own cross-validation record: the figures for series
    graded alone, or for discs graded from all of a patient's series (``same_patient``)."""
    cv = model.meta.get("cv", {})
    key = "metrics_same_patient" if same_patient and "metrics_same_patient" in cv else "metrics"
    metrics = cv.get(key, {})
    if "pfirrmann" not in metrics:
        return None
    pf = metrics["pfirrmann"]
    binary = [m["balanced_accuracy"] for name, m in metrics.items() if name not in ("pfirrmann", "modic")]
    how = {
        "metrics": " (series graded alone)" if same_patient else "",
        "metrics_same_patient": ", each disc graded from the mean of all its patient's series",
    }[key]
    guess = level_guess_balanced_accuracy(model.sha256)
    text = (
        f"Patient {cv.get('folds', 'k')}-fold cross-validation on SPIDER{how}: Pfirrmann balanced accuracy "
        f"{pf['balanced_accuracy']:.2f}"
        + (f" (a guess from the disc's level alone: {guess['pfirrmann']:.2f})" if "pfirrmann" in guess else "")
        + f", linear κ {pf['kappa']:.2f}, within one grade {pf['within_one']:.2f}"
    )
    if binary:
        text += f"; other grades balanced accuracy {min(binary):.2f}–{max(binary):.2f}"
        others = [v for name, v in guess.items() if name not in ("pfirrmann", "modic")]
        if others:
            text += f" (the level alone: {min(others):.2f}–{max(others):.2f})"
    return text + (
        ". An experimental model: treat its grades as a second look, not a reading. Binary grades use"
        " thresholds chosen for balanced accuracy, so a rare finding can be called at a low probability."
    )


def findings_tables(
    seg: Segmentation,
    measurements: SpineMeasurements,
    grades: dict[str, dict] | None = None,
    graded_from: dict[str, list[str]] | None = None,
) -> tuple[list[Disc], list[Vertebra]]:
    """The discs (measurements, stenosis, ``grades`` and the series they come from) and the vertebrae
    (measurements) of one series, as findings.json lists them; the CT pipeline's too."""
    grades, graded_from = grades or {}, graded_from or {}
    discs = []
    for level in seg.levels.discs:
        if level.name not in REPORTED_DISCS:
            continue  # above T9/T10: outside a lumbar study's contract
        m = measurements.discs.get(level.name)
        stenosis = None
        if m is not None:
            graded = grade_at_level(level.name, m.canal_ap_mm, m.canal_area_mm2)
            stenosis = Stenosis(
                grade=graded.grade if seg.image.spacing_known else "unknown",
                basis=graded.basis if seg.image.spacing_known else "pixel spacing unknown",
                thresholds=CITATION,
            )
        discs.append(
            Disc(
                level=level.name,
                label=level.label,
                grades={k: Grade(**v) for k, v in grades.get(level.name, {}).items()},
                graded_from=graded_from.get(level.name, []),
                measurements=m,
                stenosis=stenosis,
            )
        )
    vertebrae = [
        Vertebra(level=lv.name, label=lv.label, measurements=measurements.vertebrae.get(lv.name))
        for lv in seg.levels.vertebrae
    ]
    return discs, rejected_heights_withheld(vertebrae)


# The tables' measurements that are no finding of their own (the findings read from them have their own records):
# marked † in the report like every finding not validated.
MEASURED_ONLY = {
    "disc_measurements": "disc heights, the canal's size and the angle between endplates are measured from the "
    "segmentation, never checked against an expert's measurement as a finding (the canal's diameter is compared "
    "with the expert's outline in the README: python bench/canal.py)",
    "vertebra_measurements": "vertebral heights, depth, ratios and the endplate's angle are measured from the "
    "segmentation, never compared with an expert's measurement here",
}


def build_findings(
    seg: Segmentation,
    measurements: SpineMeasurements,
    grades: dict[str, dict] | None = None,
    model: OnnxModel | None = None,
    graded_from: dict[str, list[str]] | None = None,
    notes: list[str] | None = None,
    weighted: tuple[str | None, str | None] = (None, None),
    t1_series: frozenset[str] = frozenset(),
) -> Findings:
    """Assemble the findings of one series, once: ``grades`` per disc level come from :func:`grades_and_evidence`,
    ``graded_from`` per level names the series they come from, ``notes`` are further review reasons, ``weighted``
    is this series' :func:`series_weighting`, ``t1_series`` the patient's series read as T1-weighted."""
    discs, vertebrae = findings_tables(seg, measurements, grades, graded_from)
    together = bool(graded_together(list((graded_from or {}).values())))
    units = "mm" if seg.image.spacing_known else "pixels"
    digest = model.sha256 if model is not None else ""
    summary, withheld, not_validated = summarise(discs, load_validation(), units, list(seg.gate), digest, t1_series)
    not_validated = {**not_validated, **MEASURED_ONLY}
    return Findings(
        lumbar_version=__version__,
        input=input_description(seg.image).model_copy(
            update={"weighting": weighted[0], "weighting_read_from": weighted[1]}
        ),
        models={
            "segmentation": seg.semantic.model_version,
            "grading": model.version if model is not None else "not available",
            "lumbosacral": check.version if (check := lumbosacral_model()) is not None else "not available",
        },
        units=units,
        discs=discs,
        vertebrae=vertebrae,
        lordosis_deg=measurements.lordosis_deg,
        narrowest_canal_ap_mm=measurements.narrowest_canal_ap_mm,
        narrowest_canal_level=measurements.narrowest_canal_level,
        needs_review=[*seg.review, *(notes or [])],
        summary=summary,
        summary_withheld=withheld,
        not_validated=not_validated,
        grading_reliability=grading_reliability(model, together) if model is not None and grades else None,
    )


def csf_over_marrow_ratio(seg: Segmentation) -> float | None:
    """The canal's signal over the vertebrae's on the mid-sagittal slice (:func:`weighting.csf_over_marrow`)."""
    mid = seg.mid_slice
    return csf_over_marrow(seg.image.sagittal_slices()[mid], seg.levels.instances[mid])


def series_weighting(seg: Segmentation) -> tuple[str | None, str | None]:
    """(``"T1"``, ``"T2"`` or None, where it was read: ``"DICOM header"`` or ``"image"``) of an MR series: the
    header's timing where it decides, else the mid-sagittal slice (:mod:`lumbar.tasks.weighting`); (None, None) for
    an image that is not MR (a forced run)."""
    if seg.image.modality != Modality.MR:
        return None, None
    series = seg.image.series
    if series is not None:
        told = weighting_from_header(series.echo_time_ms, series.repetition_time_ms, series.inversion_time_ms)
        if told is not None:
            return told, "DICOM header"
    seen = weighting(csf_over_marrow_ratio(seg))
    return seen, "image" if seen is not None else None


def overview(seg: Segmentation) -> np.ndarray:
    """The mid-sagittal slice with the structures coloured and every level named."""
    mid = seg.mid_slice
    return overlay(
        seg.image.sagittal_slices()[mid],
        seg.semantic.classes[mid],
        seg.levels.instances[mid],
        seg.label_names(),
        seg.image.sagittal_spacing_mm(),
        pixel_mm=measured_pixel_mm(seg.image),
    )


def measured_pixel_mm(image: SpineImage) -> tuple[float, float]:
    """The (row, col) pixel size a slice is measured and checked in: the image's own, else 1 mm a pixel, so that
    distances are in pixels (the size the reader assumed for the network is not a measurement). Bodies and canal
    specks (``MIN_CANAL_PIECE_MM2``) are judged in it alike by the measurements, the quality gate and the names
    drawn."""
    return image.sagittal_spacing_mm() if image.spacing_known else (1.0, 1.0)


def lumbosacral_model() -> OnnxModel | None:
    """The shipped check of the lowest disc (is it L5/S1?), if this installation has one."""
    spec = model_for("lumbosacral", Modality.MR, "sagittal")
    return load_model(spec.name) if spec is not None else None


def grading_model() -> OnnxModel | None:
    """The shipped grading model for sagittal MRI, if this installation has one."""
    spec = model_for("grading", Modality.MR, "sagittal")
    return load_model(spec.name) if spec is not None else None


def analyze_images(
    images: list[SpineImage],
    *,
    same_patient: bool = False,
    gates: list[tuple[str, ...]] | None = None,
    progress: Progress = SILENT,
) -> list[Result]:
    """Analyse images already read. With ``same_patient`` they are series of one patient (T1, T2, ...): each
    disc is graded from every series that shows it (see :func:`patient_gradings`). ``gates`` holds, per image,
    reasons that withhold its Summary (a forced run)."""
    model = grading_model()
    segs = [segment(image, progress, gate) for image, gate in zip(images, gates or [()] * len(images))]
    measured = []
    for k, seg in enumerate(segs):  # measured first: a series whose Summary they withhold is graded alone
        progress.stage("measuring")
        measurements = measure(seg)
        small = smaller_than_adult(measurements.vertebrae) if seg.image.spacing_known else None
        # a reading taken as a misread, or a spine outside the population every finding was validated on: reviewed,
        # Summary withheld
        doubts = (*measurements.review, *([small] if small else []))
        if doubts:
            segs[k] = replace(seg, review=(*seg.review, *doubts), gate=(*seg.gate, *doubts))
        measured.append(measurements)
    images = [seg.image for seg in segs]
    sources = series_sources(images) if same_patient else [image.series_label(short=True) for image in images]
    extra: list[list[str]] = [[] for _ in segs]
    gradings: list[SeriesGrading | None] = [None] * len(segs)
    if model is not None:
        progress.stage("grading discs")
        if same_patient:
            gradings, extra = patient_gradings(segs, model, sources)  # type: ignore[assignment]
        else:
            gradings = [grade_series(seg, model, source) for seg, source in zip(segs, sources)]
    for seg, grading, own in zip(segs, gradings, extra):
        if grading is not None and (note := ungraded_note(seg, grading)):
            own.append(note)
    weightings = [series_weighting(seg) for seg in segs]
    t1_series = frozenset(source for source, (w, _) in zip(sources, weightings) if w == "T1")
    results = []
    for seg, measurements, grading, own, weighted in zip(segs, measured, gradings, extra, weightings):
        grades, evidence = (
            grades_and_evidence(grading, model, progress) if grading is not None and model is not None else ({}, [])
        )
        graded_from = grading.graded_from if grading else None
        findings = build_findings(seg, measurements, grades, model, graded_from, own, weighted, t1_series)
        results.append(Result(seg, findings, Figures(overview(seg), tuple(evidence))))
    return results


def analyze(image: SpineImage, *, gate: tuple[str, ...] = (), progress: Progress = SILENT) -> Result:
    """Analyse one image: segmentation, levels, measurements, stenosis, grades, findings and figures. ``gate``
    holds reasons to withhold its Summary (a forced run on an image this pipeline was not made for)."""
    return analyze_images([image], gates=[gate], progress=progress)[0]


__all__ = [
    "DESCRIPTION",
    "NAME",
    "SeriesGrading",
    "analyze",
    "analyze_images",
    "build_findings",
    "disc_crops",
    "findings_tables",
    "grade_series",
    "measure",
    "refusal",
    "segment",
]
