"""What a DICOM file's tags say: orientation, plane, pixel size, slice geometry, rescale and provenance.

Geometry follows DICOM PS3.3 C.7.6.2: ``ImageOrientationPatient`` gives the row and column directions,
``ImagePositionPatient`` the first voxel of each slice, in LPS millimetres. Enhanced multi-frame objects carry the
same attributes per frame in functional groups (PS3.3 C.7.6.16), looked up per frame first, then shared.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Sized
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from lumbar.errors import InputError
from lumbar.image import LPS_TO_RAS, PLANES, Modality, SeriesInfo

# What pydicom raises on a damaged header value: values are decoded when first read, after the file opened fine.
HEADER_VALUE_ERRORS = (
    ValueError,
    TypeError,
    NotImplementedError,
    KeyError,
    AttributeError,
    IndexError,
    OverflowError,
    BytesLengthException,
)


# A DICOM file begins with a 128-byte preamble and "DICM" (PS3.10 7.1). Files some storage servers and older systems
# write hold the dataset alone: they begin with a tag of the meta (0002) or identifying (0008) group, little endian,
# and name a SOP Class (ACR-NEMA files, which name none, and big-endian ones are not read). pydicom reads those only
# when forced, so they are recognised by that beginning.
PART10_MAGIC = b"DICM"
RAW_DATASET_GROUPS = (b"\x02\x00", b"\x08\x00")
HEAD_BYTES = 132  # the preamble and the magic


def stored_raw(head: bytes) -> bool:
    """Whether a file's first :data:`HEAD_BYTES` bytes begin a dataset stored without the preamble and "DICM"."""
    return head[128:132] != PART10_MAGIC and head[:2] in RAW_DATASET_GROUPS


def read_dataset(path: Path, **options: object) -> pydicom.Dataset:
    """The dataset of the DICOM file at ``path`` (``options`` as for ``pydicom.dcmread``), one stored without the
    preamble too. Such a file states no transfer syntax: it is recorded as read (uncompressed little endian, with the
    VR encoding pydicom found), so that its pixels decode as any other's."""
    with open(path, "rb") as f:
        raw = stored_raw(f.read(HEAD_BYTES))
    with warnings.catch_warnings():  # pydicom's notes on damaged elements: what fails is refused in one line later
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=raw, **options)
    if raw and "TransferSyntaxUID" not in ds.get("file_meta", FileMetaDataset()):
        implicit, _ = ds.original_encoding  # little endian: the first tag was read so
        ds.file_meta = ds.get("file_meta", FileMetaDataset())
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    return ds


def is_dicom_file(path: Path) -> bool:
    """True for a DICOM file: the preamble and "DICM", or a dataset stored without them whose SOP Class UID is a
    valid UID (a file of other bytes that happens to begin like a dataset reads as none)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
        if head[128:132] == PART10_MAGIC:
            return True
        if not stored_raw(head):
            return False
        with warnings.catch_warnings():  # a value is checked, and warned of, when it is first read: here
            warnings.simplefilter("ignore")
            ds = read_dataset(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
            sop_class = ds.get("SOPClassUID")
        return sop_class is not None and UID(str(sop_class)).is_valid
    except (InvalidDicomError, OSError, EOFError, struct.error, *HEADER_VALUE_ERRORS):  # a forced parse of damage
        return False


def frame_count(ds: pydicom.Dataset) -> int:
    """Frames in the file: ``NumberOfFrames``, 1 when absent."""
    return int(ds.get("NumberOfFrames", 1) or 1)


def functional_group(ds: pydicom.Dataset, frame: int, name: str) -> pydicom.Dataset | None:
    """The first item of functional group ``name`` (e.g. ``PlanePositionSequence``) for frame ``frame``
    (0-based): from PerFrameFunctionalGroupsSequence, else SharedFunctionalGroupsSequence; None when neither has it."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups) or []
        if index < len(items) and items[index].get(name):
            return items[index].get(name)[0]
    return None


def text(ds: pydicom.Dataset, keyword: str) -> str:
    """An element's value as text; "" where it is absent or empty (``str`` of an empty value says "None")."""
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def stated(ds: pydicom.Dataset, keyword: str, group: str, frame: int = 0) -> object | None:
    """``keyword``'s value in functional group ``group`` of frame ``frame`` (an enhanced object keeps its geometry
    there, even with one frame), else at the file's top level; None where neither gives a value. The groups come
    first: a writer that also puts one orientation or position at the top level of a multi-frame file would
    otherwise hide each frame's own (a localizer's three planes read as one)."""
    for source in (functional_group(ds, frame, group), ds):
        value = None if source is None else source.get(keyword)
        if value is not None and not (isinstance(value, Sized) and len(value) == 0):
            return value
    return None


MAX_SKEW = 0.01  # |cosine| between the row and column directions still taken as perpendicular (about 0.6 degrees)


def unit_cosines(values: object) -> np.ndarray | None:
    """Row and column direction cosines scaled to unit length; None unless they are six finite numbers giving two
    non-zero, perpendicular directions (a zero, parallel or skewed pair places the slices nowhere)."""
    try:
        iop = np.array(values, float).ravel()
    except (TypeError, ValueError):
        return None
    if iop.shape != (6,) or not np.isfinite(iop).all():
        return None
    directions = iop.reshape(2, 3)
    lengths = np.linalg.norm(directions, axis=1)
    if lengths.min() < 1e-6:
        return None
    unit = directions / lengths[:, None]
    return unit.ravel() if abs(float(np.dot(unit[0], unit[1]))) <= MAX_SKEW else None


def orientation(ds: pydicom.Dataset, frame: int = 0) -> np.ndarray | None:
    """``ImageOrientationPatient`` (row then column direction cosines, LPS, unit length) of the file or of one of its
    frames; None where it is absent or gives no two perpendicular directions (see :func:`unit_cosines`)."""
    return unit_cosines(stated(ds, "ImageOrientationPatient", "PlaneOrientationSequence", frame))


def position_mm(ds: pydicom.Dataset, frame: int = 0) -> np.ndarray | None:
    """``ImagePositionPatient`` (LPS mm) of the file or of one of its frames; None where it is absent."""
    value = stated(ds, "ImagePositionPatient", "PlanePositionSequence", frame)
    return None if value is None else np.array(value, float)


def plane(ds: pydicom.Dataset) -> str | None:
    """'sagittal', 'coronal' or 'axial', from the slice normal's main LPS axis; None without a usable orientation."""
    iop = orientation(ds)
    return None if iop is None else plane_of(iop)


def plane_of(iop: np.ndarray) -> str:
    """The plane (see :func:`plane`) of unit direction cosines ``iop``."""
    return PLANES[int(np.argmax(np.abs(np.cross(iop[:3], iop[3:]))))]


def pixel_spacing_mm(ds: pydicom.Dataset) -> tuple[float, float] | None:
    """(row, col) pixel size at the patient, in mm; None when the file does not say.

    ``PixelSpacing`` (top level or the PixelMeasuresSequence group) is at the patient. A projection radiograph
    may give only ``ImagerPixelSpacing``, measured at the detector: divided by
    ``EstimatedRadiographicMagnificationFactor`` when present it estimates the size at the patient (PS3.3 C.8.11.4).
    """
    group = functional_group(ds, 0, "PixelMeasuresSequence")
    # an element present but empty says nothing: the next one is read (an empty PixelSpacing hid ImagerPixelSpacing)
    if ds.get("PixelSpacing"):
        values, magnification = ds.PixelSpacing, 1.0
    elif group is not None and group.get("PixelSpacing"):
        values, magnification = group.PixelSpacing, 1.0
    elif ds.get("ImagerPixelSpacing"):
        values, magnification = ds.ImagerPixelSpacing, float(ds.get("EstimatedRadiographicMagnificationFactor") or 1.0)
    else:
        return None
    spacing = [float(v) / magnification for v in values or []]
    return (spacing[0], spacing[1]) if len(spacing) == 2 and min(spacing) > 0 else None


def volume_affine(
    iop: np.ndarray, positions_mm: np.ndarray, pixel_spacing: tuple[float, float], thickness_mm: float, where: Path
) -> np.ndarray:
    """Voxel (slice, row, col) -> RAS mm for slices at ``positions_mm`` (LPS, sorted along the normal).

    The positions must step evenly along one line: a missing, duplicated or misplaced slice would otherwise stretch,
    squeeze or shear the volume without anyone noticing. A single slice is ``thickness_mm`` thick.
    """
    row_dir, col_dir = iop[:3], iop[3:]
    row_mm, col_mm = pixel_spacing
    if len(positions_mm) > 1:
        steps = np.linalg.norm(np.diff(positions_mm, axis=0), axis=1)
        if steps.min() < 1e-3:
            raise InputError(
                f"{where}: two slices share one position (duplicated images?); pick one series with --series"
            )
        if steps.max() - steps.min() > 0.1 * np.median(steps) + 0.01:
            raise InputError(
                f"{where}: slice positions are unevenly spaced ({steps.min():.2f}-{steps.max():.2f} mm): "
                "a slice may be missing"
            )
        step = (positions_mm[-1] - positions_mm[0]) / (len(positions_mm) - 1)
        _on_one_line(positions_mm, step, where)
        normal = np.cross(row_dir, col_dir)
        if abs(float(np.dot(step, normal))) < 0.5 * float(np.linalg.norm(step)):
            raise InputError(
                f"{where}: slice positions step within the image plane, not across it: the orientation and position "
                "tags disagree"
            )
    else:
        step = np.cross(row_dir, col_dir) * thickness_mm
    lps = np.eye(4)
    lps[:3, 0] = step
    lps[:3, 1] = col_dir * row_mm  # moving down a row follows the column direction
    lps[:3, 2] = row_dir * col_mm  # moving along a row follows the row direction
    lps[:3, 3] = positions_mm[0]
    return LPS_TO_RAS @ lps


def _on_one_line(positions_mm: np.ndarray, step: np.ndarray, where: Path) -> None:
    """Refuse slice positions that stray from the line through the first and last by more than the spacing check
    lets a step differ (10%): evenly long steps may still zigzag or bend, and stacking them on one step would put
    slices where none of them lies."""
    on_line = positions_mm[0] + np.arange(len(positions_mm))[:, None] * step
    stray_mm = float(np.linalg.norm(positions_mm - on_line, axis=1).max())
    if stray_mm > 0.1 * float(np.linalg.norm(step)) + 0.01:
        raise InputError(
            f"{where}: slice positions stray up to {stray_mm:.2f} mm from even steps along one line: a slice is "
            "misplaced or belongs to another stack"
        )


def rescale(ds: pydicom.Dataset, path: Path, frame: int = 0) -> tuple[float, float]:
    """(slope, intercept) mapping stored values to real ones (HU for CT), per frame for enhanced objects. A value
    that is not finite is refused: it would make every voxel NaN or infinite (the other formats' readers refuse such
    voxels too, see :func:`lumbar.io.arrays.finite`)."""
    group = functional_group(ds, frame, "PixelValueTransformationSequence")
    source = group if group is not None and "RescaleSlope" in group else ds
    slope, intercept = float(source.get("RescaleSlope", 1) or 1), float(source.get("RescaleIntercept", 0) or 0)
    for name, value in (("RescaleSlope", slope), ("RescaleIntercept", intercept)):
        if not np.isfinite(value):
            raise InputError(f"{path}: {name} {value} is not a finite number; the file is damaged")
    return slope, intercept


def rescaled(pixels: np.ndarray, slope: float | np.ndarray, intercept: float | np.ndarray) -> np.ndarray:
    """``pixels * slope + intercept`` without numpy's overflow warnings: a value past float32's range becomes
    infinite, which the reader then refuses in one line (:func:`lumbar.io.arrays.finite`), no warning beside it."""
    with np.errstate(over="ignore", invalid="ignore"):
        return pixels * slope + intercept


def states_rescale(ds: pydicom.Dataset) -> bool:
    """Whether the file states how its stored values map to real ones (RescaleIntercept, in the dataset or its
    first frame's functional group): a CT that does not holds values whose Hounsfield units nobody knows."""
    group = functional_group(ds, 0, "PixelValueTransformationSequence")
    return "RescaleIntercept" in ds or (group is not None and "RescaleIntercept" in group)


def shown_inverted(ds: pydicom.Dataset) -> bool:
    """Whether the values are stored with the minimum shown white (MONOCHROME1), to be inverted for analysis: not a
    CT's, whose Hounsfield units mean what they say however the image is shown (inverted, bone read as air)."""
    return ds.get("PhotometricInterpretation") == "MONOCHROME1" and modality(ds) is not Modality.CT


def slice_spacing_mm(ds: pydicom.Dataset, fallback: float) -> float:
    """The distance between slices a series states (SpacingBetweenSlices, else SliceThickness, at the top level or
    in the PixelMeasuresSequence group); ``fallback`` where it states neither, or nothing usable (empty, zero or
    negative: a negative spacing would turn the slice normal around)."""
    for tag in ("SpacingBetweenSlices", "SliceThickness"):
        try:
            value = float(stated(ds, tag, "PixelMeasuresSequence") or 0)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if np.isfinite(value) and value > 0:
            return value
    return fallback


def image_type(ds: pydicom.Dataset) -> str:
    """``ImageType``'s values joined by "\\" (``ORIGINAL\\PRIMARY\\LOCALIZER``); "" where the file gives none."""
    value = ds.get("ImageType")
    values = [value] if isinstance(value, str) else list(value or [])
    return "\\".join(str(v) for v in values)


def modality(ds: pydicom.Dataset) -> Modality:
    """The image's modality from DICOM ``Modality`` (CR/DX radiograph, XA/RF fluoroscopy, ...)."""
    return Modality.from_dicom(text(ds, "Modality") or "OT")


def series_info(ds: pydicom.Dataset) -> SeriesInfo:
    """The series ``ds`` belongs to, as :class:`SeriesInfo`."""
    return SeriesInfo(
        uid=text(ds, "SeriesInstanceUID"),
        number=text(ds, "SeriesNumber"),
        description=text(ds, "SeriesDescription"),
        plane=plane(ds),
        manufacturer=text(ds, "Manufacturer"),
        transfer_syntax=str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")),
        contrast_agent=str(ds.ContrastBolusAgent).strip() if "ContrastBolusAgent" in ds else None,
        image_type=image_type(ds),
        echo_time_ms=_timing(ds, "EchoTime", "MREchoSequence", "EffectiveEchoTime"),
        repetition_time_ms=_timing(ds, "RepetitionTime", "MRTimingAndRelatedParametersSequence", "RepetitionTime"),
        inversion_time_ms=_timing(ds, "InversionTime", "MRModifierSequence", "InversionTimes"),
        rescale_stated=states_rescale(ds),
    )


def _timing(ds: pydicom.Dataset, keyword: str, group: str, group_keyword: str) -> float | None:
    """A sequence timing in ms: the classic attribute, else (enhanced MR, PS3.3 C.8.13.5) the first frame's
    functional group's, where a file keeps it (EffectiveEchoTime in the MR Echo group, RepetitionTime in the MR
    Timing group, InversionTimes in the MR Modifier group, whose first inversion counts). A value that cannot be
    read is no timing, as :func:`_positive` says of one that is not a number."""
    try:
        classic = ds.get(keyword)
        if classic not in (None, ""):  # a classic attribute left empty (type 2: unknown) says nothing
            return _positive(classic)
        item = functional_group(ds, 0, group)
        value = None if item is None else item.get(group_keyword)
    except (BytesLengthException, ValueError, TypeError, AttributeError, IndexError):  # damaged: no timing
        return None
    if isinstance(value, MultiValue) and group_keyword == "InversionTimes" and len(value):
        value = value[0]
    return _positive(value)


def _positive(value: object) -> float | None:
    """A timing value in ms where it is one positive, finite number; None otherwise (absent, empty, several values
    or not a number: a damaged header's timing is no timing)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def decode(path: Path) -> tuple[pydicom.Dataset, np.ndarray]:
    """The dataset and its pixels as float32 (frames first for multi-frame, RGB last for colour), unrescaled."""
    try:
        ds = read_dataset(path)
        if getattr(ds.get("file_meta"), "TransferSyntaxUID", None) == RLELossless:
            # pydicom's own RLE decoder: pylibjpeg-rle's Rust one panics on a damaged segment, printing a backtrace
            # to stderr that no handler can hold back
            ds.pixel_array_options(decoding_plugin="pydicom")
        with warnings.catch_warnings():  # a decoder's notes on odd but decodable data are not the user's business
            warnings.simplefilter("ignore")
            return ds, ds.pixel_array.astype(np.float32)
    except Exception as exc:  # decoder errors come in many types
        raise InputError(f"{path}: cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from None
