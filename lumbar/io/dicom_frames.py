"""Multi-frame DICOM files: a cine run as a :class:`FrameSequence`, an enhanced MR/CT volume as a SpineImage.

Frames at distinct positions (``PlanePositionSequence`` per frame, PS3.3 C.7.6.16.2.3) are the slices of a volume;
frames without positions, or all at one position (XA, RF and US runs, MR/CT cine), are one view over time, timed
by the Cine module (PS3.3 C.7.6.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from lumbar.errors import InputError
from lumbar.image import FrameSequence, SpineImage
from lumbar.io.arrays import finite
from lumbar.io.dicom_header import (
    decode,
    frame_count,
    functional_group,
    modality,
    orientation,
    pixel_spacing_mm,
    plane_of,
    rescale,
    rescaled,
    series_info,
    shown_inverted,
    text,
    volume_affine,
)

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 weights, as Pillow's "L" conversion


def read_multiframe(path: Path, where: Path) -> SpineImage | FrameSequence:
    """One multi-frame file: a volume when its frames lie at distinct positions, else a time sequence."""
    ds, pixels = decode(path)
    n_frames = frame_count(ds)
    _one_orientation(ds, n_frames, path)
    positions_mm = _frame_positions_mm(ds, n_frames)
    distinct = 0 if positions_mm is None else len(np.unique(np.round(positions_mm, 3), axis=0))
    if positions_mm is not None and distinct == n_frames:
        return _volume(ds, pixels, positions_mm, path, where)
    if distinct > 1:
        raise InputError(
            f"{path}: {n_frames} frames at {distinct} slice positions (slices over time) are not "
            "supported; export one time point or one slice position"
        )
    return _cine(ds, pixels, path, where)


def frame_times_s(ds: pydicom.Dataset, n_frames: int, path: Path) -> np.ndarray:
    """Seconds from the first frame: FrameTimeVector (ms since the previous frame, the first 0), else FrameTime
    (ms between frames), else CineRate or RecommendedDisplayFrameRate (frames per second)."""
    if "FrameTimeVector" in ds:
        increments_ms = np.asarray(ds.FrameTimeVector, float).ravel()
        if len(increments_ms) != n_frames:
            raise InputError(f"{path}: FrameTimeVector holds {len(increments_ms)} times for {n_frames} frames")
        if (increments_ms[1:] < 0).any():
            raise InputError(f"{path}: FrameTimeVector holds a negative time increment")
        return np.concatenate([[0.0], np.cumsum(increments_ms[1:])]) / 1000.0
    if float(ds.get("FrameTime") or 0) > 0:
        return np.arange(n_frames) * float(ds.FrameTime) / 1000.0
    rate_hz = float(ds.get("CineRate") or ds.get("RecommendedDisplayFrameRate") or 0)
    if rate_hz > 0:
        return np.arange(n_frames) / rate_hz
    raise InputError(
        f"{path}: multi-frame DICOM of {n_frames} frames states no frame timing "
        "(FrameTime, FrameTimeVector, CineRate or RecommendedDisplayFrameRate)"
    )


def _one_orientation(ds: pydicom.Dataset, n_frames: int, path: Path) -> None:
    """Refuse frames that state different orientations (a three-plane localizer in one file): neither a volume nor a
    run holds them, and frames of several planes at one position read as a run. Tolerance as a series' slices'."""
    distinct: list[np.ndarray] = []
    for i in range(n_frames):
        iop = orientation(ds, i)
        if iop is not None and not any(np.allclose(iop, seen, atol=1e-3) for seen in distinct):
            distinct.append(iop)
    if len(distinct) < 2:
        return
    planes = list(dict.fromkeys(plane_of(iop) for iop in distinct))
    if len(planes) > 1:
        why = f"{', '.join(planes)}: a localizer?"
    else:  # one plane: stacks at different angles, or slices that followed the patient's motion
        frames = [np.stack([iop[:3], iop[3:], np.cross(iop[:3], iop[3:])]) for iop in distinct]
        turns = [np.trace(a @ b.T) for a in frames for b in frames]  # 1 + 2 cos(angle) of the turn between two
        apart = np.degrees(np.arccos(np.clip((min(turns) - 1) / 2, -1.0, 1.0)))
        why = f"all {planes[0]}, turned up to {apart:.1f} degrees from one another: stacks at different angles?"
    raise InputError(
        f"{path}: the {n_frames} frames of the multi-frame DICOM lie in {len(distinct)} orientations ({why}); only "
        "frames of one orientation stack or play as a run"
    )


def _frame_positions_mm(ds: pydicom.Dataset, n_frames: int) -> np.ndarray | None:
    """Each frame's ImagePositionPatient (LPS mm) from the functional groups; None unless every frame has one."""
    positions = []
    for i in range(n_frames):
        group = functional_group(ds, i, "PlanePositionSequence")
        if group is None or "ImagePositionPatient" not in group:
            return None
        positions.append(np.array(group.ImagePositionPatient, float))
    return np.array(positions)


def _rescaled(ds: pydicom.Dataset, pixels: np.ndarray, path: Path) -> np.ndarray:
    """Frames in real values, each with its own rescale, checked as every reader's (:func:`finite`: float pixel data
    may hold NaN or infinity); MONOCHROME1 (the minimum shown white) inverted, as a single-frame series is (found in
    review: the multi-frame path kept it as stored)."""
    slope, intercept = np.array([rescale(ds, path, i) for i in range(len(pixels))], np.float32).T
    values = finite(rescaled(pixels, slope[:, None, None], intercept[:, None, None]), path)
    if shown_inverted(ds):
        values = values.max() + values.min() - values
    return values


def _volume(ds: pydicom.Dataset, pixels: np.ndarray, positions_mm: np.ndarray, path: Path, where: Path) -> SpineImage:
    """Frames sorted along the slice normal into a volume with the affine their positions give."""
    if pixels.ndim != 3:
        raise InputError(
            f"{path}: colour DICOM volumes are not supported (photometric {ds.get('PhotometricInterpretation')})"
        )
    iop = orientation(ds)
    spacing = pixel_spacing_mm(ds)
    if iop is None or spacing is None:
        raise InputError(f"{path}: multi-frame DICOM gives frame positions but no usable orientation or pixel spacing")
    if any(orientation(ds, i) is None for i in range(len(pixels))):  # those stated are one (_one_orientation)
        raise InputError(f"{path}: some frames of the multi-frame DICOM state no usable orientation")
    order = np.argsort(positions_mm @ np.cross(iop[:3], iop[3:]), kind="stable")
    affine = volume_affine(iop, positions_mm[order], spacing, 1.0, where)  # thickness only counts for one slice
    return SpineImage.from_array(
        _rescaled(ds, pixels, path)[order],
        affine,
        modality=modality(ds),
        source=str(where),
        format="DICOM",
        series=series_info(ds),
        patient_id=text(ds, "PatientID"),
        source_files=(str(path),),
        frame_order=tuple(int(k) for k in order),
    )


def _cine(ds: pydicom.Dataset, pixels: np.ndarray, path: Path, where: Path) -> FrameSequence:
    """Frames as acquired, colour folded to grey, with their times."""
    grey = pixels @ LUMA if pixels.ndim == 4 else pixels
    return FrameSequence(
        _rescaled(ds, grey, path),
        frame_times_s(ds, len(grey), path),
        pixel_spacing_mm(ds),
        modality=modality(ds),
        source=str(where),
        format="DICOM",
        series=series_info(ds),
        patient_id=text(ds, "PatientID"),
    )
