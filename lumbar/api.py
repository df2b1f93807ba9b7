"""The one-call Python API behind ``lumbar.analyze``, ``lumbar.segment`` and the command line.

Each call checks where it will write (when ``out`` is given), reads its input (a path, or a
:class:`~lumbar.image.SpineImage` already read), lets the router pick the pipeline (an image no pipeline reads is
refused, unless ``force``), computes the result, and only when ``out`` is given writes it through
:mod:`lumbar.outputs`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from lumbar.errors import InputError
from lumbar.image import Modality, SpineImage
from lumbar.io.names import study_stem
from lumbar.io.read import check_view, declared_shape, override_modality, read_image, suffix_of
from lumbar.io.study import read_study
from lumbar.outputs import (
    TRACKING_OUTPUTS,
    check_fusion_folder,
    check_output_file,
    check_result_folder,
    check_study_folder,
    ensure_writable,
    save_segmentation,
    write_fusion,
    write_result,
    write_results,
    write_tracking,
)
from lumbar.pipelines import Result, Segmentation, refusal, route
from lumbar.pipelines.fusion import FusionResult, fuse_images
from lumbar.pipelines.fusion import check_options as check_fusion_options
from lumbar.progress import SILENT, Progress
from lumbar.resources import check_memory
from lumbar.tasks.back_pain import BackPainResult
from lumbar.tasks.back_pain import recognise_back_pain as score_back_pain
from lumbar.tasks.tracking import TrackResult, read_boxes, track_sequence
from lumbar.tasks.ultrasound import MIN_RUN, SweepResult, analyse_sweep, read_sweep

MIN_SWEEP_FRAMES = 2 * MIN_RUN  # the sacrum, then a gap above it: the fewest frames that name a level

Input = str | Path | SpineImage


def _read(
    source: Input, spacing_mm: float | None, modality: str | None, series: str | None, progress: Progress
) -> tuple[SpineImage, str]:
    """The image and its output name; an image already read takes ``modality`` but no reading option."""
    if isinstance(source, SpineImage):
        if spacing_mm is not None or series is not None:
            raise InputError("spacing_mm and series are reading options: give them to lumbar.load, not with an image")
        name = Path(source.source).name
        suffix = suffix_of(Path(name))
        return override_modality(source, modality), (name[: -len(suffix)] if suffix else name) or "image"
    progress.stage("reading")
    path = Path(source)
    shape = declared_shape(path) if path.is_file() else None
    if shape is not None:  # refused before decoding: a 2 GB volume costs a header read, not a minute and 4 GB
        check_memory([shape], str(path))
    image = read_image(
        path,
        spacing_mm=spacing_mm,
        modality=modality,
        series=series,
        before_decoding=lambda shape, files: check_memory([shape], str(path), files),
    )
    return image, study_stem(path)


def with_view(image: SpineImage, view: str | None) -> SpineImage:
    """``image`` with its radiograph view stated by the user (overriding the file's); unchanged for None. A view is
    a radiograph's: a picture whose file does not state its modality becomes one (a file that says otherwise, a
    DICOM MR say, keeps its modality and is refused by the radiograph pipelines)."""
    if view is None:
        return image
    check_view(view)
    modality = Modality.RADIOGRAPH if image.modality_guessed else image.modality
    return replace(image, view=view.lower(), view_guessed=False, modality=modality)


def segment(
    source: Input,
    out: str | Path | None = None,
    *,
    spacing_mm: float | None = None,
    modality: str | None = None,
    series: str | None = None,
    view: str | None = None,
    force: bool = False,
    stem: str | None = None,
    progress: Progress = SILENT,
) -> Segmentation:
    """Segment an image and name its levels; with ``out``, also write the masks and levels JSON there,
    named ``stem``. ``view`` states a radiograph's view (frontal or lateral) where its file does not."""
    if out is not None:
        ensure_writable(out)
    image, default_stem = _read(source, spacing_mm, modality, series, progress)
    image = with_view(image, view)
    chosen = route(image, force)
    check_memory([image.shape], image.source, files=len(image.source_files))
    seg = chosen.pipeline.segment(chosen.image, progress, chosen.gate)
    if out is None:
        return seg
    progress.stage("writing masks")
    return save_segmentation(seg, Path(out), stem or default_stem)


def analyze(
    source: Input,
    out: str | Path | None = None,
    *,
    spacing_mm: float | None = None,
    modality: str | None = None,
    series: str | None = None,
    view: str | None = None,
    force: bool = False,
    report: bool = True,
    stem: str | None = None,
    withhold: tuple[str, ...] = (),
    shown_as: str | None = None,
    progress: Progress = SILENT,
) -> Result:
    """Analyse one image: findings, label maps and figures. With ``out``, also write everything into
    ``out/<stem>/`` (masks, findings.json and, with ``report``, the HTML and PDF report). ``withhold`` gives
    reasons the caller knows to withhold the Summary (a phantom, an image outside the validation's population);
    ``shown_as`` names the input in the findings and report instead of its path (the service's stored upload);
    ``view`` states a radiograph's view (frontal or lateral) where its file does not."""
    if out is not None:
        ensure_writable(out)
    image, default_stem = _read(source, spacing_mm, modality, series, progress)
    image = with_view(image, view)
    if shown_as is not None:
        image = replace(image, source=shown_as)
    if out is not None:
        check_study_folder(Path(out) / (stem or default_stem), (image.source, *image.source_files))
    chosen = route(image, force)
    check_memory([image.shape], image.source, files=len(image.source_files))
    result = chosen.pipeline.analyze(chosen.image, gate=(*chosen.gate, *withhold), progress=progress)
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
    series that shows it. A series of a study folder that no pipeline reads (an axial series, say) is left out
    with a note, unless ``force``; a file given by name that none reads is refused. Everything is read and checked
    before anything is computed or written; with ``out`` each series goes into ``out/<name>/``."""
    if out is not None:
        ensure_writable(out)
    progress.stage("reading series")
    named = ", ".join(str(s) for s in sources)
    study = read_study(
        sources,
        spacing_mm=spacing_mm,
        modality=modality,
        leave_out=(lambda image: None) if force else refusal,
        before_decoding=lambda shapes, files: check_memory(shapes, named, files),  # before each series is decoded
    )
    routes = [route(image, force) for image in study.images]
    kinds = sorted({r.pipeline.NAME for r in routes})
    if len(kinds) > 1:  # series of one patient are analysed together by one pipeline: MRI and a film are not
        raise InputError(
            f"{', '.join(str(s) for s in sources)}: the series need different pipelines ({', '.join(kinds)}); "
            "analyse them separately, without --same-patient"
        )
    folders = [Path(out) / name for name in study.names] if out is not None else []
    for folder, image in zip(folders, study.images):
        check_study_folder(folder, (image.source, *image.source_files))
    results = routes[0].pipeline.analyze_images(  # one pipeline reads every series of a study
        [r.image for r in routes],
        same_patient=True,
        gates=[r.gate for r in routes],
        progress=progress,
    )
    results = [result.with_review(study.notes) for result in results]
    if out is None:
        return results
    return write_results(results, folders, report=report, progress=progress)


def fuse(
    mr: Input,
    ct: Input,
    out: str | Path | None = None,
    *,
    rules: tuple[str, ...] = ("cnn", "classic"),
    affine: bool = False,
    dims: int = 2,
    model: str | None = None,
    progress: Progress = SILENT,
) -> FusionResult:
    """Register ``mr`` onto ``ct`` and fuse them (see :mod:`lumbar.pipelines.fusion`); with ``out``, write the
    fused images, the registered MR, the transform, a picture and ``fusion.json`` into that folder."""
    check_fusion_options(rules, dims)
    if out is not None:
        ensure_writable(Path(out).parent)
    mr_image, _ = _read(mr, None, None, None, progress)
    ct_image, _ = _read(ct, None, None, None, progress)
    if out is not None:
        check_fusion_folder(out, (mr_image.source, ct_image.source, *mr_image.source_files, *ct_image.source_files))
    check_memory([mr_image.shape, ct_image.shape, ct_image.shape, ct_image.shape], f"{mr} and {ct}")
    result = fuse_images(mr_image, ct_image, rules=rules, affine=affine, dims=dims, model_path=model, progress=progress)
    if out is not None:
        progress.stage("writing")
        write_fusion(result, out)
        result.folder = str(out)
    return result


def recognise_back_pain(
    inputs: list[str | Path] | str | Path,
    out: str | Path | None = None,
    *,
    model: str | None = None,
    subject: str | None = None,
) -> BackPainResult:
    """Score a cohort folder (``subjects.csv``) or one subject's recordings for low back pain (see
    :mod:`lumbar.tasks.back_pain`); with ``out``, write every recording's and subject's scores there as JSON."""
    from lumbar.io.write import write_text

    paths = [Path(p) for p in (inputs if isinstance(inputs, list) else [inputs])]
    if out is not None:
        check_output_file(out, tuple(str(p) for p in paths), "subjects", "scores.json")
    result = score_back_pain(paths, model=model, subject=subject)
    if out is not None:
        write_text(out, json.dumps(result.to_dict(), indent=1))
    return result


def track(
    sequence: str | Path,
    boxes: str | Path,
    out: str | Path | None = None,
    *,
    model: str | None = None,
    modality: str | None = None,
) -> TrackResult:
    """Track the vertebral bodies boxed on the first frame (``boxes``: JSON or CSV, see
    :mod:`lumbar.tasks.tracking`) through a fluoroscopy sequence (a multi-frame DICOM or a video); with ``out``,
    write ``tracks.json`` and the pictures there."""
    from lumbar.io.read import sequence_of

    if out is not None:
        ensure_writable(Path(out).parent)
        check_result_folder(out, (str(sequence), str(boxes)), "tracks.json", TRACKING_OUTPUTS)
    first_boxes, names = read_boxes(Path(boxes))
    frames = sequence_of(sequence, (Modality.FLUOROSCOPY, Modality.RADIOGRAPH), "fluoroscopy", modality=modality)
    height, width = frames.frames.shape[1:]
    for box, name in zip(first_boxes, names):
        if not (0 <= box.cx < width and 0 <= box.cy < height):
            raise InputError(
                f"{boxes}: the box of {name} is centred at ({box.cx:.0f}, {box.cy:.0f}), outside the "
                f"first frame ({width} x {height} pixels)"
            )
    if len(frames.frames) < 2:
        raise InputError(f"{sequence}: a sequence of {len(frames.frames)} frame: tracking needs at least 2")
    result = track_sequence(frames.frames, first_boxes, names, model_path=model)
    if out is not None:
        write_tracking(result, frames.frames, str(sequence), out)
    return result


def ultrasound_levels(sweep: str | Path, out: str | Path | None = None, *, model: str | None = None) -> SweepResult:
    """Name the vertebral levels of a paramedian sagittal ultrasound sweep that starts below the sacrum and moves
    up (a video, a DICOM cine or a folder of frames: ``docs/ultrasound_format.md``); with ``out``, write every
    frame's class and level and the gaps found there as JSON."""
    from lumbar.io.write import write_text

    if out is not None:
        check_output_file(out, (str(sweep),), "n_frames", "levels.json")
    frames = read_sweep(sweep)
    if len(frames) < MIN_SWEEP_FRAMES:
        raise InputError(
            f"{sweep}: a sweep of {len(frames)} frame(s): naming a level needs at least {MIN_SWEEP_FRAMES} (the sacrum "
            f"and a gap above it, each seen on {MIN_RUN} frames or more)"
        )
    result = analyse_sweep(frames, model_path=model)
    if out is not None:
        write_text(out, json.dumps({"source": str(sweep), **result.to_dict()}, indent=1))
    return result
