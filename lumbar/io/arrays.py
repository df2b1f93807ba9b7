"""Checks every reader applies to the voxels it decoded, and the one way a 2D picture becomes an image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lumbar.errors import InputError
from lumbar.image import Modality, SpineImage, assumed_spacing_mm

MAX_VOXELS = 2**30  # 4 GiB of float32: far above any spine scan; a header declaring more is damaged or hostile


CT_BELOW_HU = -50.0  # MR magnitude images are non-negative; a CT crop without air still holds fat near -100 HU


def sample_values(array: np.ndarray, n: int = 200_000) -> np.ndarray:
    """About ``n`` of the array's values, evenly spaced, as float32 (without copying the whole array)."""
    array = np.asarray(array)
    return np.asarray(array.flat[:: max(1, array.size // n)], np.float32)


# A CT stored without its -1024 offset (Hounsfield units + 1024, as scanners store unsigned 12-bit values): nothing
# below zero, the voxels above air (below -824 HU, and the padding outside the field) mostly in the narrow peak of fat
# and soft tissue (-150 to +150 HU) near 1024, and a tail as dense as bone (300 HU or more). tests/test_ct.py checks
# the rule on the four real CTs in ../shared/data, shifted so and not, and on SPIDER T2 SPACE stacks scaled to 10-12
# bits or centred on 1024. MIN_BONE_HU and MAX_HU are the calibration check's too (tasks/ct_bone.py), said once here.
HU_OFFSET = 1024.0
OFFSET_AIR_BELOW = HU_OFFSET - 824.0
SOFT_TISSUE_HU = (-150.0, 150.0)
MIN_SOFT_TISSUE_FRACTION = 0.5
MIN_BONE_HU = 300.0  # bone reads above this (cortex 400-1500 HU): a CT of the spine holds some
MIN_BONE_FRACTION = 0.001
MAX_HU = 4000.0  # dense metal saturates near 3071 on 12-bit scanners; beyond 4000 the data are not HU
MIN_PADDING_FRACTION = 0.01  # of the voxels at the lowest value: the padding outside the scanned field


def without_padding(values: np.ndarray) -> np.ndarray:
    """``values`` without the padding outside the scanned field: the lowest value, where it holds at least
    ``MIN_PADDING_FRACTION`` of them (a scanner pads with one value, -2000 or -3024 stored, far below air)."""
    lowest = values.min(initial=0.0)
    padding = values == lowest
    return values[~padding] if padding.mean() >= MIN_PADDING_FRACTION else values


def offset_ct(array: np.ndarray) -> bool:
    """Whether the voxels look like a CT stored without its -1024 offset (see ``HU_OFFSET``): such a volume has no
    value below zero but its padding, so it would be read as MRI, or as CT 1024 HU too dense."""
    values = without_padding(sample_values(array, 500_000))
    if not values.size or np.percentile(values, 1) < CT_BELOW_HU or np.percentile(values, 99.9) > HU_OFFSET + MAX_HU:
        return False
    body = values[values > OFFSET_AIR_BELOW]
    if body.size == 0:
        return False
    low, high = (HU_OFFSET + hu for hu in SOFT_TISSUE_HU)
    soft = float(((body >= low) & (body <= high)).mean())
    bone = float((values > HU_OFFSET + MIN_BONE_HU).mean())
    return soft >= MIN_SOFT_TISSUE_FRACTION and bone >= MIN_BONE_FRACTION


def guess_modality(array: np.ndarray) -> Modality:
    """CT when the voxels reach well below zero (air and fat in Hounsfield units), or look like a CT stored without
    its offset (:func:`offset_ct`: the CT pipeline refuses it, saying so), else MR."""
    if np.percentile(sample_values(array), 1) < CT_BELOW_HU or offset_ct(array):
        return Modality.CT
    return Modality.MR


def check_volume(array: np.ndarray, path: Path) -> np.ndarray:
    """A real-valued 3D array with voxels to analyse (a trailing axis of one is dropped), checked by :func:`finite`."""
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise InputError(f"{path}: expected a 2D or 3D image, got {array.ndim} dimensions {array.shape}")
    if min(array.shape) < 1 or array.size < 4:
        raise InputError(f"{path}: image has no voxels to analyse (shape {array.shape})")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(f"{path}: voxel type {array.dtype} is not a real-valued image")
    return finite(array, path)


def check_size(shape: tuple[int, ...], path: Path) -> None:
    """Refuse a header declaring more than ``MAX_VOXELS`` voxels before anything is allocated or decoded."""
    voxels = int(np.prod(shape, dtype=object))
    if voxels > MAX_VOXELS:
        raise InputError(
            f"{path}: header declares {voxels:,} voxels {tuple(shape)}, more than a scan holds (at most "
            f"{MAX_VOXELS:,}); the file is damaged"
        )


def refuse_infinite(array: np.ndarray, path: Path) -> None:
    """Refuse ``array`` read from ``path`` where it holds an infinite value, which no scanner writes."""
    if np.isinf(array).any():
        raise InputError(f"{path}: image holds infinite voxel values (non-finite intensities); the file is damaged")


def finite(array: np.ndarray, path: Path) -> np.ndarray:
    """Replace NaN voxels (some tools mark background so) by the lowest finite value; refuse infinite ones, which
    no scanner writes and which would wreck every intensity statistic."""
    if np.issubdtype(array.dtype, np.integer):
        return array
    refuse_infinite(array, path)
    bad = np.isnan(array)
    if not bad.any():
        return array
    if bad.all():
        raise InputError(f"{path}: image holds no finite voxel values")
    array = np.array(array, dtype=np.float32)
    array[bad] = array[~bad].min()
    return array


def picture_as_slice(
    array: np.ndarray, spacing_mm: tuple[float, float] | None, path: Path, fmt: str, **kwargs: Any
) -> SpineImage:
    """A 2D picture is one sagittal slice shown as read: head up, anterior left.

    Without a (row, col) spacing the pixel size is assumed (see :func:`lumbar.image.assumed_spacing_mm`)
    and the image says ``spacing_known=False``. ``kwargs`` go to the image (a file's own grid, its NIfTI codes).
    """
    known = spacing_mm is not None
    row, col = spacing_mm if spacing_mm is not None else (assumed_spacing_mm(array.shape),) * 2
    return SpineImage.from_sagittal_slices(
        array[None],
        (row, row, col),
        modality=Modality.MR,
        modality_guessed=True,
        source=str(path),
        spacing_known=known,
        format=fmt,
        **kwargs,
    )
