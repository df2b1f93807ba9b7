"""Read any supported file or folder: a registry of readers, one per format, picked by the file's ending.

Each reader declares the endings it claims (after nnU-Net v2's reader-writer registry); a file whose ending no
reader claims is read as DICOM when its content is DICOM, and a folder is a DICOM study. Still images come back
as a ``SpineImage`` (:func:`read_image`), cine runs and videos as a ``FrameSequence`` (:func:`read_sequence`).
Every failure a user can cause (missing, empty, corrupt, non-image, wrong dimensionality, unknown format) raises
``InputError`` with the file and the problem in one line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from lumbar.errors import InputError
from lumbar.image import FrameSequence, Modality, SpineImage
from lumbar.io.archive import safe_extract_zip
from lumbar.io.dicom import (
    DecodeCheck,
    folder_has_dicom,
    is_dicom_file,
    read_dicom_files,
    read_dicom_folder,
    read_dicom_zip,
)
from lumbar.io.itk import ITK_SUFFIXES, read_itk
from lumbar.io.itk_header import header_problem
from lumbar.io.nifti import NIFTI_SUFFIXES, read_nifti
from lumbar.io.raster import RASTER_SUFFIXES, read_raster, read_raster_array
from lumbar.io.video import VIDEO_SUFFIXES, read_video

__all__ = [
    "ITK_SUFFIXES",
    "NIFTI_SUFFIXES",
    "RASTER_SUFFIXES",
    "READERS",
    "VIDEO_SUFFIXES",
    "ReadOptions",
    "Reader",
    "declared_shape",
    "discover_studies",
    "override_modality",
    "read_any",
    "read_image",
    "read_raster_array",
    "read_sequence",
    "reader_for",
    "safe_extract_zip",
    "suffix_of",
]

ReadResult = SpineImage | FrameSequence
MIN_SPACING_MM, MAX_SPACING_MM = 0.01, 20.0  # a pixel size a user may give (--spacing); beyond, a typo
ImageOrFrames = TypeVar("ImageOrFrames", SpineImage, FrameSequence)


@dataclass(frozen=True)
class ReadOptions:
    """What a user may tell a reader that the file does not say."""

    spacing_mm: float | None = None  # square pixel size of PNG/JPEG pictures
    series: str | None = None  # SeriesInstanceUID or SeriesNumber in a DICOM folder or zip
    before_decoding: DecodeCheck | None = None  # a DICOM series' shape and file count, before its pixels are decoded


@dataclass(frozen=True)
class Reader:
    """One format: its name, the file endings it claims (lower case), how it reads a file, and whether a file may
    hold several series that ``--series`` picks from (or, a single DICOM file, names)."""

    name: str
    suffixes: tuple[str, ...]
    read: Callable[[Path, ReadOptions], ReadResult]
    has_series: bool = False


DICOM = Reader(  # known by content, any ending
    "DICOM", (), lambda path, o: read_dicom_files([path], path, o.series, o.before_decoding), has_series=True
)
READERS: tuple[Reader, ...] = (
    Reader("NIfTI", NIFTI_SUFFIXES, lambda path, options: read_nifti(path)),
    Reader("MHA/MHD/NRRD", ITK_SUFFIXES, lambda path, options: read_itk(path)),
    Reader("PNG/JPEG", RASTER_SUFFIXES, lambda path, options: read_raster(path, options.spacing_mm)),
    Reader("video (MP4/AVI/MOV/GIF)", VIDEO_SUFFIXES, lambda path, options: read_video(path)),
    Reader("zipped DICOM", (".zip",), lambda path, o: read_dicom_zip(path, o.series, o.before_decoding), True),
    DICOM,
)


def suffix_of(path: Path) -> str:
    """The lower-case file ending, ``.nii.gz`` counted as one."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def reader_for(path: Path) -> Reader:
    """The reader claiming ``path``'s ending, else the DICOM reader when the file is DICOM."""
    suffix = suffix_of(path)
    for reader in READERS:
        if suffix in reader.suffixes:
            return reader
    if is_dicom_file(path):
        return DICOM
    raise InputError(f"{path}: unknown format (expected {', '.join(r.name for r in READERS)})")


def declared_shape(path: str | Path) -> tuple[int, ...] | None:
    """The voxel grid a NIfTI, MHA, MHD or NRRD header declares, read without decoding a voxel (so that an
    analysis too large for the memory is refused in a moment); None for other formats or an unreadable header,
    which the reader itself then reports."""
    path = Path(path)
    suffix = suffix_of(path)
    try:
        if suffix in NIFTI_SUFFIXES:
            import nibabel as nib

            return tuple(int(n) for n in nib.load(str(path)).shape)
        if suffix in ITK_SUFFIXES and not header_problem(path):
            import SimpleITK as sitk

            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            return tuple(int(n) for n in reader.GetSize())
    except Exception:  # a damaged header is the reader's to report, with its own message
        return None
    return None


def read_image(
    path: str | Path,
    *,
    spacing_mm: float | None = None,
    modality: str | None = None,
    series: str | None = None,
    before_decoding: DecodeCheck | None = None,
) -> SpineImage:
    """Read one still image (a volume or a picture) from a file or a folder.

    Parameters
    ----------
    path : a DICOM folder or .zip, a single DICOM file, .nii/.nii.gz, .mha/.mhd, .nrrd/.nhdr, .png/.jpg.
    spacing_mm : in-plane pixel size for PNG/JPEG slices, which do not store one.
    modality : "MR", "CT", "XR", ...; overrides what the file says or what is guessed.
    series : SeriesInstanceUID or SeriesNumber to pick in a DICOM folder with several series.
    before_decoding : called with a DICOM series' (frames, rows, columns) and the number of files read, before its
        pixels are decoded (the analysis's memory check); may raise ``InputError``.
    """
    path = Path(path)
    image = read_any(path, spacing_mm=spacing_mm, modality=modality, series=series, before_decoding=before_decoding)
    if isinstance(image, FrameSequence):
        raise InputError(
            f"{path}: a time sequence of {len(image.frames)} frames (cine, fluoroscopy or ultrasound), not a still "
            "image: `lumbar track` follows vertebrae through a fluoroscopy run, `lumbar ultrasound` names the levels "
            "of a paramedian sweep (`lumbar info` describes it; lumbar.io.read_sequence reads it)"
        )
    return image


def read_any(
    path: str | Path,
    *,
    spacing_mm: float | None = None,
    modality: str | None = None,
    series: str | None = None,
    before_decoding: DecodeCheck | None = None,
) -> SpineImage | FrameSequence:
    """Read whatever ``path`` holds: a still image, or frames over time (what ``lumbar info`` shows)."""
    check_read_options(spacing_mm, modality)  # a wrong option is refused before anything is decoded
    options = ReadOptions(spacing_mm=spacing_mm, series=series, before_decoding=before_decoding)
    return override_modality(_read(Path(path), options), modality)


def read_sequence(path: str | Path, *, modality: str | None = None) -> FrameSequence:
    """Read frames over time: a multi-frame DICOM cine (XA, RF, US, MR/CT) or a video (.mp4, .avi, .mov, .gif).

    ``modality`` overrides what the file says (a video says nothing: its modality is OTHER unless given).
    """
    path = Path(path)
    sequence = read_any(path, modality=modality)
    if isinstance(sequence, SpineImage):
        raise InputError(
            f"{path}: a still image of shape {sequence.shape}, not frames over time (a video, a multi-frame DICOM "
            "or a folder of frames)"
        )
    return sequence


FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")  # a folder of these is a sequence of frames
MAX_FRAMES = 10_000  # a run's frames at most: about 5 minutes at 30 frames/s


def sequence_of(
    path: str | Path,
    wanted: tuple[Modality, ...],
    what: str,
    *,
    modality: str | None = None,
    max_frames: int = MAX_FRAMES,
) -> FrameSequence:
    """The frames of a run for a command that reads ``what``: a video, a multi-frame DICOM, or a folder of picture
    frames taken in natural name order (``frame2`` before ``frame10``; no times). A run whose file (or
    ``modality``) states another modality than ``wanted`` is refused (a video or a folder states none), and so is one
    of more than ``max_frames`` frames."""
    path = Path(path)
    files = _frame_files(path) if path.is_dir() else []
    if len(files) > max_frames:
        raise InputError(f"{path}: {len(files)} frames; a run has at most {max_frames}")
    sequence = _frame_folder(path, files, modality) if files else read_sequence(path, modality=modality)
    if sequence.modality not in (*wanted, Modality.OTHER):
        raise InputError(f"{path}: a {sequence.modality.value} sequence (as its header or --modality says), not {what}")
    if len(sequence.frames) > max_frames:
        raise InputError(f"{path}: {len(sequence.frames)} frames; a run has at most {max_frames}")
    return sequence


def _frame_files(folder: Path) -> list[Path]:
    """The picture files of ``folder`` in natural name order when it holds pictures and nothing else (a DICOM
    folder with a preview picture beside its cine is refused, not read as the picture); hidden files (a macOS
    copy's ``._`` twin of every frame) are neither."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    files = [p for p in entries if p.suffix.lower() in FRAME_SUFFIXES]
    if files and len(files) < len(entries):
        others = sorted(p.name for p in entries if p not in files)
        raise InputError(
            f"{folder}: holds pictures and other files ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}): "
            "a folder of frames holds the frames alone, a DICOM folder no pictures"
        )
    return sorted(files, key=lambda p: [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)])


def _frame_folder(folder: Path, files: list[Path], modality: str | None) -> FrameSequence:
    frames = [read_raster_array(p) for p in files]
    if len({f.shape for f in frames}) > 1:
        raise InputError(f"{folder}: the frames differ in size; a run's frames must share one size")
    sequence = FrameSequence(np.stack(frames), np.zeros(len(frames)), source=str(folder), format="frames")
    return override_modality(sequence, modality)


def override_modality(image: ImageOrFrames, modality: str | None) -> ImageOrFrames:
    """Set the modality a user gave (``--modality``) on ``image``; none given leaves it as read."""
    parsed = _parse_modality(modality)
    if parsed is not None:
        image.modality = parsed
        if isinstance(image, SpineImage):
            image.modality_guessed = False
    return image


def check_read_options(spacing_mm: float | None, modality: str | None) -> None:
    """Refuse (``InputError``) a pixel size no image has or a modality this project does not know, before any
    reading: the command line's ``--spacing`` and ``--modality``, the service's ``spacing_mm`` and ``modality``."""
    _parse_modality(modality)
    if spacing_mm is not None and not MIN_SPACING_MM <= spacing_mm <= MAX_SPACING_MM:
        raise InputError(
            f"--spacing {spacing_mm}: a pixel size must be between {MIN_SPACING_MM} and {MAX_SPACING_MM} mm"
        )


VIEWS = ("frontal", "lateral")  # a radiograph's views that --view may state


def check_view(view: str | None) -> None:
    """Refuse (``InputError``) a stated view that is not a radiograph's, before anything is read: the command line's
    ``--view``, the service's ``view``, a batch list's ``view`` column."""
    if view is not None and view.lower() not in VIEWS:
        raise InputError(f"--view {view!r}: a radiograph's view is frontal or lateral")


def _parse_modality(modality: str | None) -> Modality | None:
    if not modality:
        return None
    try:
        return Modality.parse(modality)
    except ValueError as exc:
        raise InputError(f"--modality: {exc}") from None


def _check_exists(path: Path) -> None:
    """Refuse a path that leads nowhere: missing, or a symbolic link that is broken or loops."""
    if not path.exists():
        what = "symbolic link is broken or loops" if path.is_symlink() else "no such file or folder"
        raise InputError(f"{path}: {what}")


def _read(path: Path, options: ReadOptions) -> ReadResult:
    """A folder as a DICOM study, a file by the reader for its format."""
    _check_exists(path)
    if path.is_dir():
        return read_dicom_folder(path, options.series, options.before_decoding)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    reader = reader_for(path)
    if options.series is not None and not reader.has_series:  # it was ignored: another image was read than asked
        raise InputError(f"{path}: --series picks a DICOM series; a {reader.name} file holds no series to pick")
    return reader.read(path, options)


def discover_studies(paths: list[str | Path]) -> list[Path]:
    """Expand inputs into studies.

    A file is one study. A folder holding image files (PNG, NIfTI, ...) gives one study per file, plus
    one per subfolder holding DICOM; a folder holding only DICOM (at any depth) is one study. A study reached
    twice (the same file given twice, or a file and its folder) is kept once.
    """
    image_suffixes = (*NIFTI_SUFFIXES, *ITK_SUFFIXES, *RASTER_SUFFIXES, ".zip")
    studies: list[Path] = []
    for raw in paths:
        path = Path(raw)
        _check_exists(path)
        if path.is_file():
            studies.append(path)
            continue
        files = sorted(p for p in path.iterdir() if p.is_file() and suffix_of(p) in image_suffixes)
        if files:
            studies.extend(files)
            studies.extend(sorted(p for p in path.iterdir() if p.is_dir() and folder_has_dicom(p)))
        elif folder_has_dicom(path):
            studies.append(path)
        else:
            raise InputError(f"{path}: folder holds no DICOM series and no image files")
    unique = {path.resolve(): path for path in reversed(studies)}  # a study named twice is one study
    return [path for path in studies if unique[path.resolve()] is path]
