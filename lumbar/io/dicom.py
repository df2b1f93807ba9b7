"""DICOM series: find the series in a folder or zip, pick the sagittal lumbar one, build the volume.

Pixel data is decoded by pydicom with pylibjpeg (JPEG, JPEG 2000, RLE) and pyjpegls (JPEG-LS), so
compressed transfer syntaxes read like uncompressed ones. Geometry follows DICOM PS3.3 C.7.6.2:
``ImageOrientationPatient`` gives the row and column directions, ``ImagePositionPatient`` the first
voxel of each slice, in LPS millimetres.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from lumbar.errors import InputError
from lumbar.image import LPS_TO_RAS, Modality, SeriesInfo, SpineImage

# Storage classes that hold no image to analyse (SEG, SR, RT structures, presentation states, ...).
NON_IMAGE_MODALITIES = {"SEG", "SR", "RTSTRUCT", "PR", "KO", "REG", "RTPLAN", "DOC"}


def is_dicom_file(path: Path) -> bool:
    """True for a file with the DICOM preamble (or one pydicom reads as DICOM without forcing)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
        if head[128:132] == b"DICM":
            return True
        pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        return True
    except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError, EOFError, KeyError):
        return False


def folder_has_dicom(folder: Path, probe: int = 20) -> bool:
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()][:probe]
    return any(is_dicom_file(p) for p in files)


def _headers(files: list[Path]) -> list[tuple[Path, pydicom.Dataset]]:
    out = []
    for f in files:
        if f.name.upper() == "DICOMDIR" or not is_dicom_file(f):
            continue
        try:
            out.append((f, pydicom.dcmread(f, stop_before_pixels=True)))
        except Exception:  # a damaged file among good ones is skipped, not fatal
            continue
    return out


def _is_image(ds: pydicom.Dataset) -> bool:
    return "Rows" in ds and "Columns" in ds and str(ds.get("Modality", "")).upper() not in NON_IMAGE_MODALITIES


def _normal(ds: pydicom.Dataset) -> np.ndarray:
    iop = np.array(ds.get("ImageOrientationPatient", [1, 0, 0, 0, 1, 0]), float)
    return np.cross(iop[:3], iop[3:])


def _plane(ds: pydicom.Dataset) -> str:
    """'sagittal', 'coronal' or 'axial', from the slice normal's main LPS axis."""
    return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(_normal(ds))))]


def _series_label(ds: pydicom.Dataset) -> str:
    """A series as a reader names it (number and description), without its UID, for findings and reports."""
    return f"#{ds.get('SeriesNumber', '?')} {ds.get('SeriesDescription', '') or '(no description)'}"


def _describe_series(headers: list[pydicom.Dataset]) -> str:
    ds = headers[0]
    return (f"{_series_label(ds)} "
            f"[{ds.get('Modality', '?')}, {_plane(ds)}, {len(headers)} images, uid {ds.get('SeriesInstanceUID', '?')}]")


def _pick_series(series: dict[str, list[tuple[Path, pydicom.Dataset]]], wanted: str | None, where: Path) -> str:
    """The series asked for, else the sagittal one (T2 first, then most slices)."""
    if wanted is not None:
        for uid, items in series.items():
            if wanted in (uid, str(items[0][1].get("SeriesNumber", ""))):
                return uid
        listing = "; ".join(_describe_series([d for _, d in v]) for v in series.values())
        raise InputError(f"{where}: no series {wanted!r}; found {listing}")

    def rank(uid: str) -> tuple:
        ds = series[uid][0][1]
        desc = str(ds.get("SeriesDescription", "")).upper()
        return (_plane(ds) == "sagittal", "T2" in desc, len(series[uid]))

    return max(series, key=rank)


def _image_series(files: list[Path], where: Path) -> dict[str, list[tuple[Path, pydicom.Dataset]]]:
    """``files`` grouped by SeriesInstanceUID, image objects only."""
    headers = _headers(files)
    if not headers:
        raise InputError(f"{where}: no DICOM files found")
    series: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    for f, ds in headers:
        if _is_image(ds):
            series[str(ds.get("SeriesInstanceUID", "unknown"))].append((f, ds))
    if not series:
        kinds = sorted({str(ds.get("Modality", "?")) for _, ds in headers})
        raise InputError(f"{where}: DICOM holds no image series (only {', '.join(kinds)} objects)")
    return series


def read_dicom_files(files: list[Path], where: Path, wanted_series: str | None = None) -> SpineImage:
    """Group ``files`` into series, pick one, and stack it into a volume."""
    series = _image_series(files, where)
    uid = _pick_series(series, wanted_series, where)
    others = [_describe_series([d for _, d in v]) for k, v in series.items() if k != uid]
    image = _stack_series(series[uid], where)
    image.other_series = tuple(others)
    return image


def read_sagittal_series(folder: Path) -> tuple[list[SpineImage], list[str]]:
    """Every sagittal image series in a DICOM folder (e.g. a study's T1 and T2), by series number, and a
    description of each series left out: not sagittal in every image (a localizer), or not stackable."""
    series = _image_series([p for p in sorted(folder.rglob("*")) if p.is_file()], folder)
    ordered = sorted(series.values(), key=lambda items: str(items[0][1].get("SeriesNumber", "")).zfill(6))
    images, skipped = [], []
    for items in ordered:
        what = _series_label(items[0][1])
        if any(_plane(ds) != "sagittal" for _, ds in items):
            skipped.append(f"{what}: not sagittal")
            continue
        try:
            images.append(_stack_series(items, folder))
        except InputError as exc:
            skipped.append(f"{what}: {str(exc).removeprefix(f'{folder}: ')}")
    if not images:
        raise InputError(f"{folder}: no sagittal image series that can be read ({'; '.join(skipped)})")
    return images, skipped


def _stack_series(items: list[tuple[Path, pydicom.Dataset]], where: Path) -> SpineImage:
    first = items[0][1]
    normal = _normal(first)
    items = sorted(items, key=lambda it: (float(np.dot(np.array(it[1].get("ImagePositionPatient", [0, 0, 0]), float), normal)),
                                          int(it[1].get("InstanceNumber", 0) or 0)))
    affine = _affine(items, where)  # checked before any pixel is decoded
    shapes = {(int(ds.Rows), int(ds.Columns)) for _, ds in items}
    if len(shapes) > 1:
        raise InputError(f"{where}: series mixes image sizes {sorted(shapes)}; pick one series with --series")
    slices = []
    for f, _ in items:
        try:
            ds = pydicom.dcmread(f)
            pixels = ds.pixel_array.astype(np.float32)
        except Exception as exc:  # decoder errors come in many types
            raise InputError(f"{f}: cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from None
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise InputError(f"{f}: colour DICOM images are not supported (photometric {ds.get('PhotometricInterpretation')})")
        pixels = pixels * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
        slices.extend(pixels if pixels.ndim == 3 else [pixels])
    volume = np.stack(slices)  # (slice, row, col)
    if len(slices) != len(items):
        raise InputError(f"{where}: multi-frame DICOM is not supported yet; export the series as single-frame images")
    if affine is None:  # no geometry (secondary capture, some X-rays): pictures shown as read
        spacing = [float(v) for v in first.get("PixelSpacing", first.get("ImagerPixelSpacing", [])) or []]
        known = len(spacing) == 2
        row, col = spacing if known else (1.0, 1.0)
        return SpineImage.from_sagittal_slices(volume, (row, row, col), spacing_known=known,
                                               **_provenance(first, items, ds, where))
    return SpineImage.from_array(volume, affine, **_provenance(first, items, ds, where))


def _provenance(first: pydicom.Dataset, items: list[tuple[Path, pydicom.Dataset]], last: pydicom.Dataset, where: Path) -> dict:
    """Where the image came from, as the typed fields of :class:`SpineImage`."""
    series = SeriesInfo(
        uid=str(first.get("SeriesInstanceUID", "")),
        number=str(first.get("SeriesNumber", "")),
        description=str(first.get("SeriesDescription", "")),
        plane=_plane(first),
        manufacturer=str(first.get("Manufacturer", "")),
        transfer_syntax=str(getattr(getattr(last, "file_meta", None), "TransferSyntaxUID", "")),
    )
    return {"modality": Modality.from_dicom(str(first.get("Modality", "OT"))), "source": str(where), "format": "DICOM",
            "series": series, "patient_id": str(first.get("PatientID", "")), "source_files": tuple(str(f) for f, _ in items)}


def _affine(items: list[tuple[Path, pydicom.Dataset]], where: Path) -> np.ndarray | None:
    """Voxel (slice, row, col) -> RAS mm from IOP/IPP/PixelSpacing; None when the series has no geometry.

    Every slice must share one orientation and the positions must step evenly: a missing or duplicated
    slice would otherwise stretch or squeeze the volume without anyone noticing.
    """
    ds = items[0][1]
    tags = ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing")
    if not all(tag in ds for tag in tags):
        return None
    if not all(all(tag in d for tag in tags) for _, d in items):
        raise InputError(f"{where}: some slices lack position or orientation tags; pick one series with --series")
    iop = np.array(ds.ImageOrientationPatient, float)
    if any(not np.allclose(np.array(d.ImageOrientationPatient, float), iop, atol=1e-3) for _, d in items):
        raise InputError(f"{where}: slices of the series have different orientations (a localizer?); pick one series with --series")
    row_dir, col_dir = iop[:3], iop[3:]
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    positions = np.array([np.array(d.ImagePositionPatient, float) for _, d in items])
    if len(items) > 1:
        steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
        if steps.min() < 1e-3:
            raise InputError(f"{where}: two slices share one position (duplicated images?); pick one series with --series")
        if steps.max() - steps.min() > 0.1 * np.median(steps) + 0.01:
            raise InputError(f"{where}: slice positions are unevenly spaced ({steps.min():.2f}-{steps.max():.2f} mm): "
                             "a slice may be missing")
        step = (positions[-1] - positions[0]) / (len(items) - 1)
    else:
        step = np.cross(row_dir, col_dir) * float(ds.get("SpacingBetweenSlices", ds.get("SliceThickness", 1.0)) or 1.0)
    lps = np.eye(4)
    lps[:3, 0] = step
    lps[:3, 1] = col_dir * row_mm  # moving down a row follows the column direction
    lps[:3, 2] = row_dir * col_mm  # moving along a row follows the row direction
    lps[:3, 3] = positions[0]
    return LPS_TO_RAS @ lps


def read_dicom_folder(folder: Path, wanted_series: str | None = None) -> SpineImage:
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    if not files:
        raise InputError(f"{folder}: folder is empty")
    return read_dicom_files(files, folder, wanted_series)


def read_dicom_zip(path: Path, wanted_series: str | None = None) -> SpineImage:
    """Read a zipped series; the extraction lives until the process ends, so DICOM SEG can reference it."""
    import atexit
    import shutil

    from lumbar.io.read import safe_extract_zip

    tmp = Path(tempfile.mkdtemp(prefix="lumbar-zip-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    safe_extract_zip(path, tmp)
    image = read_dicom_folder(tmp, wanted_series)
    image.source = str(path)
    return image
