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


def guess_modality(array: np.ndarray) -> Modality:
    """CT when the voxels reach well below zero (air and fat in Hounsfield units), else MR."""
    return Modality.CT if np.percentile(sample_values(array), 1) < CT_BELOW_HU else Modality.MR


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


def finite(array: np.ndarray, path: Path) -> np.ndarray:
    """Replace NaN voxels (some tools mark background so) by the lowest finite value; refuse infinite ones, which
    no scanner writes and which would wreck every intensity statistic."""
    if np.issubdtype(array.dtype, np.integer):
        return array
    if np.isinf(array).any():
        raise InputError(f"{path}: image holds infinite voxel values (non-finite intensities); the file is damaged")
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
