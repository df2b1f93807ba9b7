"""The one-call Python API behind ``lumbar.analyze``, ``lumbar.segment`` and the command line.

Each call reads its input (a path, or a :class:`~lumbar.image.SpineImage` already read), lets the router
pick the pipeline (an image no pipeline reads is refused, unless ``force``), computes the result, and only
when ``out`` is given writes it through :mod:`lumbar.outputs`.
"""

from __future__ import annotations

from pathlib import Path

from lumbar.image import SpineImage
from lumbar.io.names import study_stem
from lumbar.io.read import read_image
from lumbar.io.study import read_study
from lumbar.outputs import save_segmentation, write_result, write_results
from lumbar.pipelines import Result, Segmentation, route
from lumbar.progress import SILENT, Progress

Input = str | Path | SpineImage


def _read(
    source: Input, spacing_mm: float | None, modality: str | None, series: str | None, progress: Progress
) -> tuple[SpineImage, str]:
    if isinstance(source, SpineImage):
        return source, Path(source.source).name or "image"
    progress.stage("reading")
    path = Path(source)
    return read_image(path, spacing_mm=spacing_mm, modality=modality, series=series), study_stem(path)


def segment(
    source: Input,
    out: str | Path | None = None,
    *,
    spacing_mm: float | None = None,
    modality: str | None = None,
    series: str | None = None,
    force: bool = False,
    stem: str | None = None,
    progress: Progress = SILENT,
) -> Segmentation:
    """Segment an image and name its levels; with ``out``, also write the masks and levels JSON there,
    named ``stem``."""
    image, default_stem = _read(source, spacing_mm, modality, series, progress)
    chosen = route(image, force)
    seg = chosen.pipeline.segment(image, progress, chosen.notes)
    return save_segmentation(seg, Path(out), stem or default_stem) if out is not None else seg


def analyze(
    source: Input,
    out: str | Path | None = None,
    *,
    spacing_mm: float | None = None,
    modality: str | None = None,
    series: str | None = None,
    force: bool = False,
    report: bool = True,
    stem: str | None = None,
    progress: Progress = SILENT,
) -> Result:
    """Analyse one image: findings, label maps and figures. With ``out``, also write everything into
    ``out/<stem>/`` (masks, findings.json and, with ``report``, the HTML and PDF report)."""
    image, default_stem = _read(source, spacing_mm, modality, series, progress)
    chosen = route(image, force)
    result = chosen.pipeline.analyze(image, notes=chosen.notes, progress=progress)
    if out is None:
        return result
    return write_result(result, Path(out) / (stem or default_stem), report=report, progress=progress)


def analyze_patient(
    sources: list[str | Path],
    out: str | Path | None = None,
    *,
    spacing_mm: float | None = None,
    modality: str | None = None,
    force: bool = False,
    report: bool = True,
    progress: Progress = SILENT,
) -> list[Result]:
    """Several series of one patient (files, or a DICOM study folder holding them), each disc graded from every
    series that shows it. All series are read and checked before anything is computed or written; with ``out``
    each goes into ``out/<name>/``."""
    progress.stage("reading series")
    study = read_study(sources, spacing_mm=spacing_mm, modality=modality)
    routes = [route(image, force) for image in study.images]
    pipelines = {r.pipeline for r in routes}
    if len(pipelines) > 1:
        from lumbar.errors import InputError

        raise InputError("--same-patient: the series need different pipelines; analyse them separately")
    notes = tuple(dict.fromkeys(note for r in routes for note in r.notes))
    results = routes[0].pipeline.analyze_images(
        list(study.images), same_patient=True, notes=(*study.notes, *notes), progress=progress
    )
    if out is None:
        return results
    return write_results(results, [Path(out) / name for name in study.names], report=report, progress=progress)
