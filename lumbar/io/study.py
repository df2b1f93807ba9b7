"""Read one patient's series into a :class:`~lumbar.study.Study`: files as given, and every sagittal series
of a DICOM study folder or zip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lumbar.errors import InputError
from lumbar.image import SpineImage
from lumbar.io.dicom import folder_has_dicom, read_still_series
from lumbar.io.names import unique_stems
from lumbar.io.read import declared_shape, override_modality, read_image, suffix_of
from lumbar.study import Study


def read_study(
    paths: list[str | Path],
    *,
    spacing_mm: float | None = None,
    modality: str | None = None,
    leave_out: Callable[[SpineImage], str | None] = lambda image: None,
    before_decoding: Callable[[list[tuple[int, ...]], int], None] | None = None,
) -> Study:
    """The series of one patient with their output names, and review notes on series left out: files as
    given, and every still series of a DICOM folder or zip (``<folder>_s<SeriesNumber>``, numbered in order where
    series numbers repeat; a cine or a series that cannot be stacked is left out and named). ``leave_out`` says
    why a folder's series is not for this study (the router: an axial series, a localizer), or None to keep it.

    Refuses a folder of images (it would join unrelated studies) and a path given twice before anything is
    read; :class:`Study` refuses the rest (one series, a series twice, different patients). ``before_decoding`` is
    called, before each series' voxels are decoded where its header gives its size (DICOM, NIfTI, MHA, NRRD), with the
    shapes of every series held so far and this one, and the number of DICOM files read: an analysis refuses there
    what would not fit beside the series already read (``lumbar.resources.check_memory``)."""
    paths = [Path(p) for p in paths]
    if len({p.resolve() for p in paths}) < len(paths):
        raise InputError("--same-patient: the same series is given twice")
    for path in paths:
        if path.is_dir() and not folder_has_dicom(path):
            raise InputError(
                f"{path}: with --same-patient give the patient's series as files (or a DICOM study folder), "
                "not a folder of images"
            )
    named: list[tuple[SpineImage, str]] = []
    notes: list[str] = []
    held: list[tuple[int, ...]] = []  # every series decoded so far, or about to be: they are all held together
    files_read = 0

    def check(shape: tuple[int, ...], files: int) -> None:
        nonlocal files_read
        held.append(tuple(int(n) for n in shape))
        files_read += files
        if before_decoding is not None:
            before_decoding(list(held), files_read)

    for path, stem in unique_stems(paths).items():
        if path.is_dir() or suffix_of(path) == ".zip":  # a zipped study reads as its folder
            before = len(held)
            read, left_out = read_still_series(path, check)
            series = []
            for image in (override_modality(image, modality) for image in read):
                why = leave_out(image)
                if why is None:
                    series.append(image)
                else:
                    left_out.append(f"{image.series.label() if image.series else image.source}: {why}")
            held[before:] = [tuple(image.shape) for image in series]  # what is left out is not analysed
            notes += [f"series left out of the patient's series graded together: {what}" for what in left_out]
            names = [
                f"{stem}_s{image.series.number if image.series and image.series.number else k}"
                for k, image in enumerate(series, start=1)
            ]
            if len(set(names)) < len(names):  # series numbers missing or repeated: number them in order
                names = [f"{stem}_s{k}" for k in range(1, len(series) + 1)]
            named += zip(series, names if len(series) > 1 else [stem])
        else:
            declared = declared_shape(path)
            if declared is not None:
                check(declared, 0)
            checked = len(held)
            image = read_image(path, spacing_mm=spacing_mm, modality=modality, before_decoding=check)
            if len(held) == checked:  # a picture, whose size its reader learns by decoding it
                check(image.shape, 0)
            named.append((image, stem))
    return Study(tuple(image for image, _ in named), tuple(name for _, name in named), tuple(notes))
