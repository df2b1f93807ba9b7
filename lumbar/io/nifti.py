"""NIfTI-1/2 files (``.nii``, ``.nii.gz``) through nibabel; the header's affine is the geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.image import SpineImage
from lumbar.io.arrays import check_volume, finite, guess_modality, picture_as_slice

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def read_nifti(path: Path) -> SpineImage:
    """A 3D NIfTI as a volume (modality guessed from the voxel values), a 2D one as a picture."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        array = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
    if array.ndim == 2:  # one slice: NIfTI's first axis runs across, the second up the picture
        zooms = img.header.get_zooms()[:2]
        picture = finite(np.asarray(array, np.float32).T[::-1], path)
        return picture_as_slice(picture, (float(zooms[1]), float(zooms[0])), path, "NIfTI")
    array = check_volume(array, path)
    affine = img.affine
    if affine is None or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(f"{path}: NIfTI header has no usable voxel-to-world affine")
    return SpineImage.from_array(
        array, affine, modality=guess_modality(array), modality_guessed=True, source=str(path), format="NIfTI"
    )
