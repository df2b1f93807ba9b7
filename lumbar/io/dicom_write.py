"""Write DICOM: a sagittal image series (for tests, the demo and conversions) and DICOM SEG label maps.

SEG objects are built with highdicom (Herrmann et al., J Digit Imaging 2018), one segment per label,
referencing the source series so that viewers overlay them on the images they came from.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

from lumbar.errors import InputError
from lumbar.image import SpineImage
from lumbar.io.dicom_header import read_dataset
from lumbar.io.write import atomic_path
from lumbar.version import __version__

TRANSFER_SYNTAXES = {
    "explicit": ExplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg-ls": JPEGLSLossless,
    "jpeg2000": JPEG2000Lossless,
    "jpeg": JPEGBaseline8Bit,
}
LPS = np.diag([-1.0, -1.0, 1.0])


def _slice_geometry(image: SpineImage, k: int) -> tuple[list[float], list[float]]:
    """ImagePositionPatient and ImageOrientationPatient (LPS) of display slice ``k``."""
    n, nA, nS = image.shape

    def world(r: int, c: int) -> np.ndarray:
        return LPS @ (image.affine @ np.array([n - 1 - k, nA - 1 - c, nS - 1 - r, 1.0]))[:3]

    origin = world(0, 0)
    row_dir = world(0, 1) - origin
    col_dir = world(1, 0) - origin
    iop = [*(row_dir / np.linalg.norm(row_dir)), *(col_dir / np.linalg.norm(col_dir))]
    # Decimal strings (DS) hold at most 16 characters.
    return [round(float(v), 5) for v in origin], [round(float(v), 6) for v in iop]


def write_dicom_series(
    image: SpineImage, folder: str | Path, transfer_syntax: str = "explicit", series_description: str = "lumbar phantom"
) -> list[Path]:
    """Write ``image`` as a sagittal MR or CT series, one file per slice, in ``transfer_syntax``."""
    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise InputError(f"unknown transfer syntax {transfer_syntax!r}; use one of {', '.join(TRANSFER_SYNTAXES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    slices = image.sagittal_slices()
    row_mm, col_mm = image.sagittal_spacing_mm()
    lateral_mm = image.spacing_mm[0]
    is_ct = image.modality == "CT"
    # From the lowest value (a CT's -1024 HU at least, its padding's -3024 too): nothing below it is clipped.
    intercept = float(np.floor(min(-1024.0 if is_ct else 0.0, float(slices.min()))))
    span = float(slices.max() - intercept)
    # Integer-valued images within 16 bits are stored as they are; others are spread over 12 bits with a rescale
    # slope, or over 16 where their range is wider (an MR's 73,560 was clipped at 65,535).
    integral = np.allclose(slices, np.rint(slices)) and span <= 65535
    slope = 1.0 if integral else max(span, 1e-6) / (4095.0 if span <= 4095 else 65535.0)
    pixels = np.clip(np.rint((slices - intercept) / slope), 0, 65535).astype(np.uint16)
    if transfer_syntax == "jpeg":
        scale = 255.0 / max(1.0, float(pixels.max()))
        pixels = np.rint(pixels * scale).astype(np.uint8)
        slope /= scale
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    now = datetime.now()
    paths = []
    for k, plane in enumerate(pixels):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage if is_ct else MRImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = (
            ds.file_meta.MediaStorageSOPClassUID,
            ds.file_meta.MediaStorageSOPInstanceUID,
        )
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality = "CT" if is_ct else "MR"
        ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = "Phantom^Lumbar", "PHANTOM", "O", ""
        ds.StudyDate = ds.SeriesDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = now.strftime("%H%M%S")
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "", ""
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.SeriesDescription = series_description
        ds.Manufacturer = "lumbar"
        ds.BodyPartExamined = "LSPINE"
        ds.ImagePositionPatient, ds.ImageOrientationPatient = _slice_geometry(image, k)
        ds.PixelSpacing = [round(row_mm, 6), round(col_mm, 6)]
        ds.SliceThickness = ds.SpacingBetweenSlices = round(lateral_mm, 6)
        ds.PositionReferenceIndicator = ""
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = plane.shape
        ds.BitsAllocated = ds.BitsStored = 8 if plane.dtype == np.uint8 else 16
        ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
        ds.RescaleSlope, ds.RescaleIntercept = round(slope, 8), intercept
        if is_ct:
            ds.RescaleType = "HU"
        ds.PixelData = plane.tobytes()
        _compress(ds, plane, transfer_syntax)
        path = folder / f"IM{k + 1:04d}.dcm"
        with atomic_path(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        paths.append(path)
    return paths


def _compress(ds: Dataset, plane: np.ndarray, transfer_syntax: str) -> None:
    if transfer_syntax == "explicit":
        return
    if transfer_syntax == "jpeg":
        from PIL import Image
        from pydicom.encaps import encapsulate

        buffer = io.BytesIO()
        Image.fromarray(plane).save(buffer, format="JPEG", quality=95)
        ds.PixelData = encapsulate([buffer.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.LossyImageCompression = "01"
        return
    ds.compress(TRANSFER_SYNTAXES[transfer_syntax], plane)


def write_dicom_seg(labels: np.ndarray, reference: SpineImage, names: dict[int, str], path: str | Path) -> Path:
    """Write a label map on ``reference``'s grid as DICOM SEG over the DICOM series it was read from."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    files = reference.source_files
    if not files:
        raise InputError(f"{reference.source}: DICOM SEG needs a DICOM series as input")
    sources = [_with_type2_attributes(read_dataset(f, stop_before_pixels=True)) for f in files]
    missing = [
        k
        for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
        if not str(sources[0].get(k, ""))
    ]
    if missing:
        raise InputError(
            f"{reference.source}: cannot reference the source series in DICOM SEG; it lacks {', '.join(missing)}"
        )
    source_labels = reference.stored_frames(labels)  # (frame, row, col) as ``files`` hold them
    present = [v for v in sorted(names) if np.any(source_labels == v)]
    if not present:
        raise InputError(f"{reference.source}: nothing segmented to write as DICOM SEG")
    segment_of = np.zeros(int(source_labels.max()) + 1, np.uint16)
    descriptions = []
    algorithm = hd.AlgorithmIdentificationSequence(
        name="lumbar", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    for number, value in enumerate(present, start=1):
        segment_of[value] = number
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=names[value][:64],
                segmented_property_category=codes.SCT.AnatomicalStructure,
                segmented_property_type=_property_type(names[value]),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
            )
        )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=segment_of[source_labels],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="lumbar",
        manufacturer_model_name="lumbar",
        software_versions=__version__,
        device_serial_number="0",
        series_description="lumbar segmentation",
    )
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return Path(path)


# Patient and study attributes a DICOM SEG copies from its source: Type 2, present but possibly empty (PS3.3 C.7.1.1,
# C.7.2.1). Anonymised series often drop them; the SEG then carries them empty rather than failing.
TYPE2_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def _with_type2_attributes(ds: pydicom.Dataset) -> pydicom.Dataset:
    """``ds`` with every attribute of ``TYPE2_COPIED`` present (empty where the source lacked it)."""
    for keyword in TYPE2_COPIED:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def _property_type(name: str):
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    if "/" in name or "disc" in name:
        return Code("360499006", "SCT", "Intervertebral disc")
    if "canal" in name:
        return codes.SCT.VertebralCanal
    return codes.SCT.Vertebra
