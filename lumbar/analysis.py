"""``analyze``: one study in, findings out — segmentation, levels, measurements, stenosis, review reasons.

This is the one path through the tasks that ``lumbar analyze`` and ``lumbar.analyze`` run. It returns the
:class:`~lumbar.findings.Findings` and writes, into ``OUT/<stem>/``, the masks, ``findings.json`` and
the report (HTML and PDF). Several series of one patient (T1 and T2) can be analysed together: each
disc is then graded from all series that show it and whose level names carry no review flag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lumbar import __version__
from lumbar.errors import InputError
from lumbar.findings import DISC_LEVELS, Disc, DiscMeasurements, Findings, Grade, InputDescription, Stenosis, Vertebra, VertebraMeasurements
from lumbar.grades import is_abnormal
from lumbar.image import SpineImage
from lumbar.io.read import read_image
from lumbar.io.write import write_text
from lumbar.labels import CANAL_LABEL, Structure
from lumbar.pipeline import SegmentationResult, save_segmentation, segment_image, study_stem, unique_stems
from lumbar.models.registry import available_models, load_model
from lumbar.tasks.disc_crops import crop_disc
from lumbar.tasks.grading import disc_probabilities, fuse_same_disc, grades_from, occlusion_maps
from lumbar.tasks.levels import mid_sagittal_index
from lumbar.tasks.measurements import SpineMeasurements, measure_spine
from lumbar.tasks.stenosis import CITATION, grade_central_stenosis

LOW_CONFIDENCE = 0.8
COARSE_PIXEL_MM = 1.5


def measure(result: SegmentationResult) -> SpineMeasurements:
    """Measurements on the mid-sagittal slice; canal areas too when the study is a volume."""
    image, levels = result.image, result.levels
    mid = mid_sagittal_index(result.semantic.classes)
    canal = levels.instances == CANAL_LABEL
    volume = canal if canal.shape[0] > 1 else None
    return measure_spine(levels.instances[mid], levels.levels, image.sagittal_spacing_mm(),
                         canal_volume=volume, lateral_mm=image.spacing_mm[0] if volume is not None else None)


def review_reasons(result: SegmentationResult) -> list[str]:
    """Why a reader should check this result: level flags, modality, spacing, resolution, confidence."""
    image = result.image
    reasons = list(result.levels.flags)
    if image.modality != "MR":
        reasons.append(f"sequence not supported: modality {image.modality}; the models were trained on sagittal MRI")
    plane = image.metadata.get("plane")
    if plane and plane != "sagittal":
        reasons.append(f"sequence not supported: {plane} images; the models expect sagittal slices")
    if not image.spacing_known:
        reasons.append("pixel spacing unknown: distances are in pixels (give --spacing in mm)")
    elif max(image.sagittal_spacing_mm()) > COARSE_PIXEL_MM:
        reasons.append(f"low image quality: in-plane pixels of {max(image.sagittal_spacing_mm()):.1f} mm are coarse for measurements")
    structure = result.semantic.classes > 0
    if structure.any():
        confidence = float(result.semantic.confidence[structure].mean())
        if confidence < LOW_CONFIDENCE:
            reasons.append(f"low model confidence: mean segmentation confidence {confidence:.2f}")
    return reasons


@dataclass
class Evidence:
    """Where in a disc's crop one grade's decision came from (occlusion sensitivity)."""

    level: str
    grade: str
    value: int
    probability: float
    crop: np.ndarray
    heat: np.ndarray


@dataclass
class StudyGrading:
    """The named discs of one series cropped on its mid-sagittal slice, their calibrated probabilities, and
    per disc the series those come from (this one, or every series of the patient that shows the disc)."""

    source: str
    crops: dict[str, np.ndarray]
    probabilities: dict[str, dict[str, np.ndarray]]
    graded_from: dict[str, list[str]]


def grade_study(result: SegmentationResult, model) -> StudyGrading:
    """Crop every named disc (T9/T10..L5/S1) on the mid-sagittal slice and grade it beside its study's discs."""
    image, levels = result.image, result.levels
    mid = mid_sagittal_index(result.semantic.classes)
    slice_, spacing = image.sagittal_slices()[mid], image.sagittal_spacing_mm()
    crops = {}
    for lv in levels.discs:
        crop = crop_disc(slice_, levels.instances[mid], lv, spacing) if lv.name in DISC_LEVELS else None
        if crop is not None:
            crops[lv.name] = crop.pixels
    described = image.describe()
    series = " ".join(str(described.get(k) or "") for k in ("series_number", "series_description")).strip()
    source = f"{described['source']} (series {series})" if series else described["source"]
    probabilities = disc_probabilities(list(crops.values()), model)
    return StudyGrading(source, crops, dict(zip(crops, probabilities)), {level: [source] for level in crops})


def fuse_patient_series(studies: list[StudyGrading]) -> list[StudyGrading]:
    """Series of one patient (e.g. T1 and T2): every disc takes the mean of its probabilities over the
    series that show it, so that all of them report the same grades."""
    rows = [(k, level) for k, study in enumerate(studies) for level in study.probabilities]
    fused_studies = [StudyGrading(study.source, study.crops, {}, {}) for study in studies]
    if not rows:
        return fused_studies
    grades = list(studies[rows[0][0]].probabilities[rows[0][1]])
    fused = fuse_same_disc({g: np.stack([studies[k].probabilities[level][g] for k, level in rows]) for g in grades},
                           [level for _, level in rows])
    for i, (k, level) in enumerate(rows):
        fused_studies[k].probabilities[level] = {g: fused[g][i] for g in grades}
        fused_studies[k].graded_from[level] = [studies[j].source for j, other in rows if other == level]
    return fused_studies


def patient_gradings(results: list[SegmentationResult], model) -> tuple[list[StudyGrading], list[list[str]]]:
    """Grade a patient's series together where their level names can be trusted to mean the same disc.

    Fusion joins discs by name, so a series whose naming carries a review flag (a small lowest disc, a gap,
    too few discs) is graded alone and says why: joined by name, its discs could be averaged with their
    neighbours in the other series."""
    studies = [grade_study(result, model) for result in results]
    trusted = [k for k, result in enumerate(results) if not result.levels.flags]
    notes: list[list[str]] = [[] for _ in results]
    if len(trusted) >= 2:
        for k, fused in zip(trusted, fuse_patient_series([studies[k] for k in trusted])):
            studies[k] = fused
    for k in range(len(results)):
        if k not in trusted or len(trusted) < 2:
            why = "its level names carry a review flag" if k not in trusted else "no other series with unflagged level names to join"
            notes[k].append(f"graded alone, not together with the patient's other series: {why}")
    return studies, notes


def grades_and_evidence(study: StudyGrading, model) -> tuple[dict[str, dict], list[Evidence]]:
    """Grades of every disc of a study, and evidence maps for Pfirrmann and every abnormal grade."""
    thresholds = model.meta.get("thresholds", {})
    grades = {level: grades_from(p, thresholds) for level, p in study.probabilities.items()}
    context = list(study.crops.values())
    evidence = []
    for level, crop in study.crops.items():
        shown = ["pfirrmann"] + [g for g, v in grades[level].items() if g != "pfirrmann" and is_abnormal(g, v["value"])]
        maps = occlusion_maps(crop, model, {grade: grades[level][grade]["value"] for grade in shown}, context)
        for grade in shown:
            v = grades[level][grade]
            evidence.append(Evidence(level, grade, v["value"], v["probability"], crop, maps[grade]))
    return grades, evidence


def build_findings(result: SegmentationResult, measurements: SpineMeasurements, grades: dict[str, dict] | None = None,
                   grading_version: str = "not available", graded_from: dict[str, list[str]] | None = None,
                   notes: list[str] | None = None) -> Findings:
    """Assemble the findings of one study; ``grades`` per disc level come from :func:`grades_and_evidence`,
    ``graded_from`` per level names the series they come from, ``notes`` are extra review reasons."""
    grades, graded_from = grades or {}, graded_from or {}
    image = result.image
    described = image.describe()
    disc_measures = {d.level: d for d in measurements.discs}
    vertebra_measures = {v.level: v for v in measurements.vertebrae}
    discs = []
    for level in result.levels.discs:
        if level.name not in DISC_LEVELS:
            continue  # above T9/T10: outside a lumbar study's contract
        m = disc_measures.get(level.name)
        stenosis = None
        if m is not None:
            graded = grade_central_stenosis(m.canal_ap_mm, m.canal_area_mm2 if not np.isnan(m.canal_area_mm2) else None)
            stenosis = Stenosis(grade=graded.grade if image.spacing_known else "unknown",
                                basis=graded.basis if image.spacing_known else "pixel spacing unknown", thresholds=CITATION)
        discs.append(Disc(level=level.name, label=level.label, grades={k: Grade(**v) for k, v in grades.get(level.name, {}).items()},
                          graded_from=graded_from.get(level.name, []),
                          measurements=DiscMeasurements(**{k: v for k, v in asdict(m).items() if k != "level"}) if m else None,
                          stenosis=stenosis))
    vertebrae = [Vertebra(level=lv.name, label=lv.label,
                          measurements=VertebraMeasurements(**{k: v for k, v in asdict(vertebra_measures[lv.name]).items() if k != "level"})
                          if lv.name in vertebra_measures else None)
                 for lv in result.levels.vertebrae]
    return Findings(
        lumbar_version=__version__,
        input=InputDescription(source=described["source"], format=described.get("format"), modality=described["modality"],
                               shape=described["shape"], spacing_mm=described["spacing_mm"], orientation=described["orientation"],
                               source_orientation=described["source_orientation"],
                               series_description=described.get("series_description")),
        models={"segmentation": result.semantic.model_version, "grading": grading_version},
        units="mm" if image.spacing_known else "pixels",
        discs=discs, vertebrae=vertebrae,
        lordosis_deg=measurements.lordosis_deg, narrowest_canal_ap_mm=measurements.narrowest_canal_ap_mm,
        narrowest_canal_level=measurements.narrowest_canal_level or None,
        needs_review=review_reasons(result) + (notes or []),
    )


def prepare_study(result: SegmentationResult, study: StudyGrading | None, model, notes: list[str]) -> tuple[Findings, list[Evidence]]:
    """Measurements, grades and evidence maps of one segmented series: everything but the writing."""
    grades, evidence = grades_and_evidence(study, model) if study is not None else ({}, [])
    findings = build_findings(result, measure(result), grades, model.version if model is not None else "not available",
                              study.graded_from if study is not None else None, notes)
    return findings, evidence


def write_study(result: SegmentationResult, findings: Findings, evidence: list[Evidence], out_dir: Path, report: bool = True) -> Findings:
    """Write masks, evidence maps, the reports and findings.json of one series into ``out_dir``."""
    known = len(result.levels.flags)
    outputs = save_segmentation(result, out_dir, "segmentation")
    findings.needs_review += result.levels.flags[known:]  # e.g. a DICOM SEG that could not be written
    findings.outputs = {k: str(Path(v).relative_to(out_dir)) for k, v in outputs.items()}
    findings.outputs["findings"] = "findings.json"
    if evidence:
        from lumbar.report.overlays import save_heatmaps

        findings.outputs["heatmaps"] = str(save_heatmaps(evidence, out_dir / "heatmaps").relative_to(out_dir))
    if report:
        from lumbar.report.html import write_reports

        findings.outputs.update({"report_html": "report.html", "report_pdf": "report.pdf"})
        write_reports(findings, result, out_dir, evidence)
    write_text(out_dir / "findings.json", findings.model_dump_json(indent=1))
    return findings


def analyze_images(images: list[SpineImage], out_dirs: list[Path], *, same_patient: bool = False, report: bool = True,
                   notes: list[str] | None = None, progress: Callable[[int], None] | None = None) -> list[tuple[Findings, SegmentationResult]]:
    """Analyse images already read, each into its own folder. With ``same_patient`` the images are series of
    one patient (T1, T2, ...): each disc is graded from every series that shows it (see :func:`patient_gradings`).
    ``notes`` are review reasons for every image. Every series is measured and graded before any output is written."""
    model = load_model("grading") if "grading" in available_models() else None
    results = [segment_image(image, progress) for image in images]
    notes_each: list[list[str]] = [[] for _ in results]
    studies: list[StudyGrading | None] = [None] * len(results)
    if model is not None and same_patient:
        studies, notes_each = patient_gradings(results, model)  # type: ignore[assignment]
    elif model is not None:
        studies = [grade_study(result, model) for result in results]
    prepared = [prepare_study(result, study, model, (notes or []) + own) for result, study, own in zip(results, studies, notes_each)]
    return [(write_study(result, findings, evidence, Path(out), report), result)
            for result, (findings, evidence), out in zip(results, prepared, out_dirs)]


def analyze_image(image: SpineImage, out_dir: str | Path, *, report: bool = True,
                  progress: Callable[[int], None] | None = None) -> tuple[Findings, SegmentationResult]:
    """Analyse one image already read; write masks, findings.json and the reports into ``out_dir``."""
    return analyze_images([image], [Path(out_dir)], report=report, progress=progress)[0]


def analyze_study(path: str | Path, out_root: str | Path, *, spacing_mm: float | None = None, modality: str | None = None,
                  series: str | None = None, report: bool = True, stem: str | None = None,
                  progress: Callable[[int], None] | None = None) -> Findings:
    """Read and analyse one study; everything goes into ``out_root/<stem>/``."""
    path = Path(path)
    image = read_image(path, spacing_mm=spacing_mm, modality=modality, series=series)
    findings, _ = analyze_image(image, Path(out_root) / (stem or study_stem(path)), report=report, progress=progress)
    return findings


def patient_series(paths: list[str | Path], *, spacing_mm: float | None = None,
                   modality: str | None = None) -> tuple[list[tuple[SpineImage, str]], list[str]]:
    """The series of one patient with their output names, and review notes on series left out: files as
    given, and every sagittal series of a DICOM folder (``<folder>_s<SeriesNumber>``, numbered in order where
    series numbers repeat; a localizer or a series that cannot be stacked is left out and named).

    Refuses a folder of images (it would join unrelated studies), fewer than two series, a series given
    twice, and DICOM series of different patients."""
    from lumbar.io.dicom import folder_has_dicom, read_sagittal_series
    from lumbar.io.read import override_modality

    paths = [Path(p) for p in paths]
    if len({p.resolve() for p in paths}) < len(paths):
        raise InputError("--same-patient: the same series is given twice")
    for path in paths:
        if path.is_dir() and not folder_has_dicom(path):
            raise InputError(f"{path}: with --same-patient give the patient's series as files (or a DICOM study folder), not a folder of images")
    named: list[tuple[SpineImage, str]] = []
    skipped: list[str] = []
    for path, stem in unique_stems(paths).items():
        if path.is_dir():
            series, left_out = read_sagittal_series(path)
            skipped += [f"series left out of the patient's series graded together: {what}" for what in left_out]
            names = [f"{stem}_s{image.metadata.get('series_number') or k}" for k, image in enumerate(series, start=1)]
            if len(set(names)) < len(names):  # series numbers missing or repeated: number them in order
                names = [f"{stem}_s{k}" for k in range(1, len(series) + 1)]
            named += zip((override_modality(image, modality) for image in series), names if len(series) > 1 else [stem])
        else:
            named.append((read_image(path, spacing_mm=spacing_mm, modality=modality), stem))
    uids = [image.metadata.get("series_uid") for image, _ in named if image.metadata.get("series_uid")]
    if len(set(uids)) < len(uids):
        raise InputError("--same-patient: the same series is given twice")
    if len(named) < 2:
        raise InputError("--same-patient needs at least two series of the patient (files, or a DICOM folder holding them)")
    patients = {image.metadata["_patient_id"] for image, _ in named if image.metadata.get("_patient_id")}
    if len(patients) > 1:
        raise InputError("--same-patient: the DICOM series belong to different patients (PatientID differs)")
    if len({stem for _, stem in named}) < len(named):
        raise InputError("--same-patient: two series would share an output folder; rename one of the inputs")
    return named, skipped


def analyze_patient(paths: list[str | Path], out_root: str | Path, *, spacing_mm: float | None = None,
                    modality: str | None = None, report: bool = True) -> list[tuple[str, Findings]]:
    """Several series of one patient (``--same-patient``), each into ``out_root/<name>/``. All are read
    first (see :func:`patient_series`), so a bad input stops the patient before anything is written; then
    each disc is graded from every series that shows it. Returns each series' output name and findings."""
    named, notes = patient_series(paths, spacing_mm=spacing_mm, modality=modality)
    done = analyze_images([image for image, _ in named], [Path(out_root) / stem for _, stem in named], same_patient=True,
                          report=report, notes=notes)
    return [(stem, findings) for (_, stem), (findings, _) in zip(named, done)]
