"""Read one patient's series into a :class:`~lumbar.study.Study`: files as given, and every sagittal series
of a DICOM study folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lumbar.errors import InputError
from lumbar.image import SpineImage
from lumbar.io.dicom import folder_has_dicom, read_still_series
from lumbar.io.names import unique_stems
from lumbar.io.read import override_modality, read_image
from lumbar.study import Study


def read_study(
    paths: list[str | Path],
    *,
    spacing_mm: float | None = None,
    modality: str | None = None,
    leave_out: Callable[[SpineImage], str | None] = lambda image: None,
) -> Study:
    """The series of one patient with their output names, and review notes on series left out: files as
    given, and every still series of a DICOM folder (``<folder>_s<SeriesNumber>``, numbered in order where
    series numbers repeat; a cine or a series that cannot be stacked is left out and named). ``leave_out`` says
    why a folder's series is not for this study (the router: an axial series, a localizer), or None to keep it.

    Refuses a folder of images (it would join unrelated studies) and a path given twice before anything is
    read; :class:`Study` refuses the rest (one series, a series twice, different patients)."""
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
    for path, stem in unique_stems(paths).items():
        if path.is_dir():
            read, left_out = read_still_series(path)
            series = []
            for image in (override_modality(image, modality) for image in read):
                why = leave_out(image)
                if why is None:
                    series.append(image)
                else:
                    left_out.append(f"{image.series.label() if image.series else image.source}: {why}")
            notes += [f"series left out of the patient's series graded together: {what}" for what in left_out]
            names = [
                f"{stem}_s{image.series.number if image.series and image.series.number else k}"
                for k, image in enumerate(series, start=1)
            ]
            if len(set(names)) < len(names):  # series numbers missing or repeated: number them in order
                names = [f"{stem}_s{k}" for k in range(1, len(series) + 1)]
            named += zip(series, names if len(series) > 1 else [stem])
        else:
            named.append((read_image(path, spacing_mm=spacing_mm, modality=modality), stem))
    return Study(tuple(image for image, _ in named), tuple(name for _, name in named), tuple(notes))
