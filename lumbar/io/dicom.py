"""DICOM series: find the series in a folder or zip, pick the sagittal lumbar one (how series are told apart and
picked: :mod:`lumbar.io.dicom_series`), build the image.

Pixel data is decoded by pydicom with pylibjpeg (JPEG, JPEG 2000, RLE) and pyjpegls (JPEG-LS), so
compressed transfer syntaxes read like uncompressed ones. Single-frame files stack into a volume by their
positions (see :mod:`lumbar.io.dicom_header`); a multi-frame file is read by :mod:`lumbar.io.dicom_frames`;
a projection radiograph (CR, DX) or a file without geometry is one picture shown as read.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
from scipy import ndimage

from lumbar.errors import InputError
from lumbar.image import FrameSequence, Modality, OtherSeries, SpineImage
from lumbar.io.archive import safe_extract_zip
from lumbar.io.arrays import check_size, finite, refuse_infinite
from lumbar.io.dicom_frames import read_multiframe
from lumbar.io.dicom_header import (
    HEADER_VALUE_ERRORS,
    decode,
    frame_count,
    is_dicom_file,
    modality,
    orientation,
    pixel_spacing_mm,
    position_mm,
    read_dataset,
    rescale,
    rescaled,
    series_info,
    shown_inverted,
    slice_spacing_mm,
    stated,
    text,
    volume_affine,
)
from lumbar.io.dicom_series import Series, group_series, pick_series

# Storage classes that hold no image to analyse (SEG, SR, RT structures, presentation states, ...).
NON_IMAGE_MODALITIES = {"SEG", "SR", "RTSTRUCT", "PR", "KO", "REG", "RTPLAN", "DOC"}


DICOM_ENDINGS = (".dcm", ".dicom", ".dic", ".ima")  # the endings DICOM files are given, where they are given one


def _unlike_dicom(path: Path) -> int:
    """0 for a DICOM file's name (``.dcm``), 1 for a name without an ending or with a number for one (``IM0001``, a
    UID), 2 for any other (a viewer's ``.dll``, ``.DS_Store``)."""
    suffix = path.suffix.lower()
    if suffix in DICOM_ENDINGS:
        return 0
    return 1 if not path.name.startswith(".") and (suffix == "" or suffix[1:].isdigit()) else 2


# files probed before a folder is called not DICOM: 132 bytes each (some 40 ms on a local disk), more only for a file
# that begins as a dataset stored without its preamble
MAX_PROBED_FILES = 1_000


def folder_has_dicom(folder: Path, limit: int = MAX_PROBED_FILES) -> bool:
    """Whether reading ``folder`` would find DICOM: its files at any depth probed (:func:`is_dicom_file`: the
    preamble, or a dataset stored without it that names a SOP Class) in :func:`_probe_order` until one is DICOM, at
    most ``limit`` of them (20 probes missed the images behind a folder's README and 25 thumbnails; thousands of other
    files take a moment)."""
    return any(is_dicom_file(path) for path in _probe_order(folder)[:limit])


def _probe_order(folder: Path) -> list[Path]:
    """``folder``'s files at any depth but a DICOMDIR (an index of images, which reading skips), DICOM-like names
    first and, among names alike, each folder's first file before any second (a CD's 25 viewer libraries hid its
    DICOM folder from the first 20 files in name order)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.upper() != "DICOMDIR")
    seen: Counter[Path] = Counter()
    ranked = []
    for path in files:
        ranked.append((_unlike_dicom(path), seen[path.parent], path))
        seen[path.parent] += 1
    return [path for *_, path in sorted(ranked)]


# Called with a picked series' (frames, rows, columns) and the number of image files read, before any pixel is decoded.
DecodeCheck = Callable[[tuple[int, int, int], int], None]

# What grouping, picking and listing the series of a folder read: every file's header is held until one series
# is picked, so only these elements are kept (a third of a header's memory on phantom files, far less on scanners'
# files with their private elements); the picked series' files are read again in full.
GROUPING_TAGS = (
    "SOPClassUID",
    "Modality",
    "PatientID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "ImageType",
    "EchoNumbers",
    "ViewPosition",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "ImageOrientationPatient",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
)


def _headers(files: list[Path]) -> list[tuple[Path, pydicom.Dataset]]:
    """The grouping elements of every DICOM file among ``files``; a damaged file among good ones is skipped."""
    out = []
    for f in files:
        if f.name.upper() == "DICOMDIR" or not is_dicom_file(f):
            continue
        try:
            out.append((f, read_dataset(f, stop_before_pixels=True, specific_tags=list(GROUPING_TAGS))))
        except Exception:  # a damaged file among good ones is skipped, not fatal
            continue
    return out


def _full_headers(items: list[tuple[Path, pydicom.Dataset]], where: Path) -> list[tuple[Path, pydicom.Dataset]]:
    """The picked series' files with every header element (geometry, rescale, provenance)."""
    full = []
    for f, _ in items:
        try:
            full.append((f, read_dataset(f, stop_before_pixels=True)))
        except Exception as exc:  # read once already: the file changed or its later elements are damaged
            raise InputError(f"{f}: DICOM header cannot be read ({type(exc).__name__}: {exc})") from None
    return full


def _series_shape(items: list[tuple[Path, pydicom.Dataset]], where: Path) -> tuple[int, int, int]:
    """(frames, rows, columns) the series decodes to, from its grouping elements (the largest image size); refused
    where that is more voxels than any scan holds, before anything is allocated (found in review: Rows and Columns
    of 65535 over a tiny file asked for hundreds of GiB)."""
    frames = sum(frame_count(ds) for _, ds in items)
    shape = frames, max(int(ds.Rows) for _, ds in items), max(int(ds.Columns) for _, ds in items)
    check_size(shape, where)
    return shape


def _is_image(ds: pydicom.Dataset) -> bool:
    return "Rows" in ds and "Columns" in ds and text(ds, "Modality").upper() not in NON_IMAGE_MODALITIES


def _image_series(files: list[Path], where: Path) -> list[Series]:
    """The image series among ``files`` (see :func:`group_series`), of one patient."""
    headers = _headers(files)
    if not headers:
        raise InputError(f"{where}: no DICOM files found")
    series = group_series([(f, ds) for f, ds in headers if _is_image(ds)])
    if not series:
        kinds = sorted({text(ds, "Modality") or "?" for _, ds in headers})
        raise InputError(f"{where}: DICOM holds no image series (only {', '.join(kinds)} objects)")
    patients = {text(ds, "PatientID") for s in series for _, ds in s.files}
    if len(patients) > 1:  # the IDs themselves are never shown
        raise InputError(f"{where}: DICOM images of {len(patients)} different patients (PatientID); give one patient's")
    return series


@contextlib.contextmanager
def _damaged_headers_refused(where: Path) -> Iterator[None]:
    """Turn a damaged header value (an unknown VR, text where a number belongs) into one ``InputError`` line
    (found by fuzzing: a corrupted Rows element escaped as TypeError/NotImplementedError/ValueError)."""
    try:
        yield
    except HEADER_VALUE_ERRORS as exc:
        problem = " ".join(str(exc).split())
        raise InputError(f"{where}: DICOM header is damaged ({type(exc).__name__}: {problem})") from None


def read_dicom_files(
    files: list[Path], where: Path, wanted_series: str | None = None, before_decoding: DecodeCheck | None = None
) -> SpineImage | FrameSequence:
    """Group ``files`` into series, pick one, and read it: a volume, a picture or, for a cine file, frames.
    ``before_decoding`` is called with the picked series' (frames, rows, columns) and the number of image files
    whose headers were read, before any pixel is decoded (an analysis refuses there what would not fit)."""
    with _damaged_headers_refused(where):
        series = _image_series(files, where)
        picked = pick_series(series, wanted_series, where)
        others = [OtherSeries(s.describe(), s.key) for s in series if s is not picked]
        shape = _series_shape(picked.files, where)
    if before_decoding is not None:  # outside: the caller's own errors are not a damaged header
        before_decoding(shape, sum(len(s.files) for s in series))
    image = _read_series(picked, where)
    if isinstance(image, SpineImage):
        image.other_series = tuple(others)
    return image


def read_still_series(study: Path, before_decoding: DecodeCheck | None = None) -> tuple[list[SpineImage], list[str]]:
    """Every still image series in a DICOM folder, or a zip of one (a study's T1, T2, axial, ...), by series number,
    and a description of each series left out: a cine, or one that cannot be stacked (a slice missing, a header
    damaged).
    Which of them a pipeline reads is the router's choice, not the reader's. ``before_decoding`` is called with each
    series' (frames, rows, columns) and its number of files before its pixels are decoded."""
    if not study.is_file():
        return _still_series(study, before_decoding)
    folder = _unpacked(study)
    with _naming_the_zip(study, folder):
        images, skipped = _still_series(folder, before_decoding)
    for image in images:
        image.source = str(study)
    return images, [note.replace(str(folder), str(study)) for note in skipped]


def _still_series(folder: Path, before_decoding: DecodeCheck | None) -> tuple[list[SpineImage], list[str]]:
    """:func:`read_still_series` of a folder."""
    with _damaged_headers_refused(folder):
        series = _image_series([p for p in sorted(folder.rglob("*")) if p.is_file()], folder)
        ordered = sorted(series, key=lambda s: (text(s.first, "SeriesNumber").zfill(6), s.part))
    images, skipped = [], []
    for one in ordered:
        what = one.label()
        try:
            if before_decoding is not None:
                with _damaged_headers_refused(folder):
                    shape = _series_shape(one.files, folder)
        except InputError as exc:  # a damaged series is left out, as its reading would be
            skipped.append(f"{what}: {str(exc).removeprefix(f'{folder}: ')}")
            continue
        if before_decoding is not None:  # outside: the caller's refusal refuses the folder, not one series
            before_decoding(shape, len(one.files))
        try:
            image = _read_series(one, folder)
        except InputError as exc:
            skipped.append(f"{what}: {str(exc).removeprefix(f'{folder}: ')}")
            continue
        if isinstance(image, FrameSequence):
            skipped.append(f"{what}: a time sequence of {len(image.frames)} frames")
        else:
            images.append(image)
    if not images:
        raise InputError(f"{folder}: no still image series that can be read ({'; '.join(skipped)})")
    return images, skipped


def _read_series(series: Series, where: Path) -> SpineImage | FrameSequence:
    """One series: a multi-frame file on its own, else single-frame files stacked; a part numbered as listed."""
    with _damaged_headers_refused(where):
        _series_shape(series.files, where)
        multiframe = [f for f, ds in series.files if frame_count(ds) > 1]
        if multiframe and len(series.files) > 1:
            raise InputError(
                f"{where}: series {series.label()} holds {len(series.files)} files, "
                f"{len(multiframe)} of them multi-frame; read one multi-frame file at a time"
            )
        image = (
            read_multiframe(multiframe[0], where)
            if multiframe
            else _stack_series(_full_headers(series.files, where), where)
        )
    if series.part and image.series is not None:
        image.series = replace(image.series, number=series.number, part=series.part)
    return image


def _stack_series(items: list[tuple[Path, pydicom.Dataset]], where: Path) -> SpineImage:
    """Single-frame files as slices of a volume, or as pictures shown as read (radiographs, no geometry)."""
    first = items[0][1]
    iop = orientation(first)
    normal = np.cross(iop[:3], iop[3:]) if iop is not None else np.array([0.0, 0.0, 1.0])
    items = sorted(items, key=lambda it: (_depth_mm(it[1], normal), int(it[1].get("InstanceNumber", 0) or 0)))
    projection = modality(first) is Modality.RADIOGRAPH
    affine = None if projection else _affine(items, where)  # checked before any pixel is decoded
    shapes = {(int(ds.Rows), int(ds.Columns)) for _, ds in items}
    if len(shapes) > 1:
        raise InputError(f"{where}: series mixes image sizes {sorted(shapes)}; pick one series with --series")
    volume = np.empty((len(items), *shapes.pop()), np.float32)  # (slice, row, col), filled in place: one copy
    for index, (f, _) in enumerate(items):
        ds, pixels = decode(f)
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise InputError(
                f"{f}: colour DICOM images are not supported (photometric {ds.get('PhotometricInterpretation')})"
            )
        if pixels.shape != volume.shape[1:]:
            raise InputError(f"{f}: pixel data of shape {pixels.shape} where its header states {volume.shape[1:]}")
        slope, intercept = rescale(ds, f)
        volume[index] = rescaled(pixels, slope, intercept)
        refuse_infinite(volume[index], f)  # named by its file, not the folder: the slice to look at
    volume = finite(volume, where)  # NaN in float pixel data: the series' lowest value
    if shown_inverted(first):  # stored with the minimum shown white: invert
        volume = volume.max() + volume.min() - volume
    if affine is None:  # a projection, or no geometry (secondary capture): pictures shown as read
        spacing = pixel_spacing_mm(first)
        row, col = spacing if spacing is not None else (1.0, 1.0)
        lateral = slice_spacing_mm(first, row) if spacing is not None else row  # was the row spacing, always
        return SpineImage.from_sagittal_slices(
            volume, (lateral, row, col), spacing_known=spacing is not None, **_provenance(first, items, where)
        )
    volume, affine, tilt = upright_grid(volume, affine)
    provenance = _provenance(first, items, where)
    if tilt:
        provenance["series"] = replace(provenance["series"], gantry_tilt_deg=round(tilt, 1))
    return SpineImage.from_array(volume, affine, **provenance)


def _depth_mm(ds: pydicom.Dataset, normal: np.ndarray) -> float:
    """How far along ``normal`` the slice lies (0 where it gives no position): the order slices stack in."""
    position = position_mm(ds)
    return 0.0 if position is None else float(np.dot(position, normal))


MAX_SHEAR_DEG = 0.5  # a slice step this close to the slices' normal is taken as square to them


def upright_grid(volume: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A series whose slices step at an angle to their own normal (a CT's gantry tilt) resampled, linearly, onto
    the grid of the same slices stepping along the normal, as dcm2niix does; with the tilt in degrees (0 where
    none). Every measurement reads the voxel grid as square: on the slanted one, heights along the slices' step read
    short by the tilt's cosine and depths long (found in review: 20 degrees shortened vertebral heights by 2-6 mm).
    Voxels the slanted slab does not reach take its lowest value (air)."""
    step, rows, cols = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    normal = np.cross(rows, cols)
    normal /= np.linalg.norm(normal)
    along = float(np.dot(step, normal))
    tilt = float(np.degrees(np.arccos(min(1.0, abs(along) / np.linalg.norm(step)))))
    if tilt < MAX_SHEAR_DEG:
        return volume, affine, 0.0
    upright = affine.copy()
    upright[:3, 0] = normal * along
    voxels = np.linalg.inv(affine) @ upright  # an upright voxel -> the slanted voxel at the same point
    resampled = ndimage.affine_transform(
        volume, voxels[:3, :3], offset=voxels[:3, 3], order=1, cval=float(volume.min()), output=np.float32
    )
    return resampled, upright, tilt


LATERAL_VIEWS = {"LAT", "LL", "RL", "LATERAL"}  # DICOM ViewPosition of a lateral film
FRONTAL_VIEWS = {"AP", "PA"}  # decubitus codes (LLD, RLD: a horizontal beam, AP or PA) are left to the networks


def view_of(ds: pydicom.Dataset) -> str | None:
    """A radiograph's view from its ``ViewPosition``: "lateral", "frontal", or None when the file does not say."""
    position = text(ds, "ViewPosition").upper()
    return "lateral" if position in LATERAL_VIEWS else "frontal" if position in FRONTAL_VIEWS else None


def _provenance(first: pydicom.Dataset, items: list[tuple[Path, pydicom.Dataset]], where: Path) -> dict:
    """Where the image came from, as the typed fields of :class:`SpineImage`."""
    return {
        "view": view_of(first),
        "modality": modality(first),
        "source": str(where),
        "format": "DICOM",
        "series": series_info(first),
        "patient_id": text(first, "PatientID"),
        "source_files": tuple(str(f) for f, _ in items),
    }


def _affine(items: list[tuple[Path, pydicom.Dataset]], where: Path) -> np.ndarray | None:
    """Voxel (slice, row, col) -> RAS mm from IOP/IPP/PixelSpacing (at each file's top level or, in an enhanced
    object, its functional groups); None when the series has no geometry.

    Every slice must share one orientation (see :func:`volume_affine` for the spacing checks).
    """
    ds = items[0][1]
    if not _places_its_image(ds):
        return None
    if not all(_places_its_image(d) for _, d in items):
        raise InputError(f"{where}: some slices lack position or orientation tags; pick one series with --series")
    iop = orientation(ds)
    if iop is None:
        stated_iop = _shown(stated(ds, "ImageOrientationPatient", "PlaneOrientationSequence"))
        raise InputError(
            f"{where}: ImageOrientationPatient {stated_iop} gives no two perpendicular directions (zero, parallel or "
            "skewed cosines); the file is damaged"
        )
    slice_iops = [orientation(d) for _, d in items]
    if any(o is None or not np.allclose(o, iop, atol=1e-3) for o in slice_iops):
        raise InputError(
            f"{where}: slices of the series have different orientations (a localizer?); pick one series with --series"
        )
    spacing = pixel_spacing_mm(ds)
    if spacing is None:
        stated_spacing = _shown(stated(ds, "PixelSpacing", "PixelMeasuresSequence"))
        raise InputError(f"{where}: PixelSpacing {stated_spacing} is not a positive pixel size in mm")
    positions_mm = np.array([position_mm(d) for _, d in items])
    return volume_affine(iop, positions_mm, spacing, slice_spacing_mm(ds, 1.0), where)


# Where a file states its geometry: each element at its top level, or in this functional group (PS3.3 C.7.6.16)
GEOMETRY = (
    ("ImageOrientationPatient", "PlaneOrientationSequence"),
    ("ImagePositionPatient", "PlanePositionSequence"),
    ("PixelSpacing", "PixelMeasuresSequence"),
)


def _places_its_image(ds: pydicom.Dataset) -> bool:
    """Whether the file states its orientation, position and pixel spacing (a secondary capture need not)."""
    return all(stated(ds, keyword, group) is not None for keyword, group in GEOMETRY)


def _shown(values: object) -> str:
    """A header's numbers as a reader writes them: ``[0, 1, 0, 0, 0, -1]``."""
    try:
        return "[" + ", ".join(f"{float(v):g}" for v in values) + "]"  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return repr(values)


def read_dicom_folder(
    folder: Path, wanted_series: str | None = None, before_decoding: DecodeCheck | None = None
) -> SpineImage | FrameSequence:
    """The series ``wanted_series`` (UID or number) of a folder, else the one :func:`_pick_series` prefers."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    if not files:
        raise InputError(f"{folder}: folder is empty")
    return read_dicom_files(files, folder, wanted_series, before_decoding)


_CLEANUP_REGISTERED = False
_EXTRACTED: list[tuple[Path, Path]] = []  # (zip, where it is unpacked) of this process, until removed or its end
_EXTRACTED_LOCK = threading.Lock()  # threads of one process (the service's viewer requests) share the list


def remove_extracted(of: str | Path | None = None) -> None:
    """Remove what this process unpacked of the zip ``of`` (of every zip, by default): a worker of a batch or of the
    service calls it after each study (its DICOM SEG written), since a pool's worker lives on and its end-of-process
    cleanup never comes; naming the zip leaves another study's, read in another thread, alone."""
    import shutil

    wanted = None if of is None else Path(of).resolve()
    with _EXTRACTED_LOCK:
        gone = [entry for entry in _EXTRACTED if wanted is None or entry[0] == wanted]
        _EXTRACTED[:] = [entry for entry in _EXTRACTED if entry not in gone]
    for _, folder in gone:
        shutil.rmtree(folder, ignore_errors=True)


def _unpacked(path: Path) -> Path:
    """A new folder holding the zip ``path``'s files; it lives until :func:`remove_extracted` or the process's end,
    so that a DICOM SEG written over its series can reference its files."""
    global _CLEANUP_REGISTERED
    import atexit

    tmp = Path(tempfile.mkdtemp(prefix="lumbar-zip-"))
    with _EXTRACTED_LOCK:
        if not _CLEANUP_REGISTERED:
            atexit.register(remove_extracted)
            _CLEANUP_REGISTERED = True
        _EXTRACTED.append((Path(path).resolve(), tmp))
    safe_extract_zip(path, tmp)
    return tmp


@contextlib.contextmanager
def _naming_the_zip(path: Path, folder: Path) -> Iterator[None]:
    """Refusals name the archive the user gave, not the folder it was unpacked to."""
    try:
        yield
    except InputError as exc:
        raise InputError(str(exc).replace(str(folder), str(path))) from None


def read_dicom_zip(
    path: Path, wanted_series: str | None = None, before_decoding: DecodeCheck | None = None
) -> SpineImage | FrameSequence:
    """Read a zipped series (see :func:`_unpacked` for how long its files live)."""
    folder = _unpacked(path)
    with _naming_the_zip(path, folder):
        image = read_dicom_folder(folder, wanted_series, before_decoding)
    image.source = str(path)
    return image
