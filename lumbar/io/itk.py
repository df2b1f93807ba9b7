"""MetaImage and NRRD files (``.mha``, ``.mhd``, ``.nrrd``, ``.nhdr``) through SimpleITK, in LPS world mm."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.image import LPS_TO_RAS, SpineImage
from lumbar.io.arrays import check_size, check_volume, finite, guess_modality, picture_as_slice
from lumbar.io.itk_header import compressed_voxels_problem, header_problem

ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")


def read_itk(path: Path) -> SpineImage:
    """A grey 3D image as a volume (modality guessed from the voxel values), a 2D one as a picture."""
    import SimpleITK as sitk

    fmt = path.suffix[1:].upper()
    problem = header_problem(path)
    if problem:
        raise InputError(f"{path}: not a readable {fmt} image ({problem})")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        check_size(reader.GetSize(), path)
        img = reader.Execute()
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise InputError(f"{path}: not a readable {fmt} image ({first})") from None
    damaged = compressed_voxels_problem(path, sitk.GetArrayViewFromImage(img))
    if damaged:  # ITK reads a damaged zlib stream anyway, its voxels whatever memory held
        raise InputError(f"{path}: not a readable {fmt} image ({damaged})")
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{path}: expected a grey-scale image, got {img.GetNumberOfComponentsPerPixel()} components per voxel"
        )
    dim = img.GetDimension()
    if dim not in (2, 3):
        raise InputError(f"{path}: expected a 2D or 3D image, got {dim} dimensions")
    if dim == 2:  # a picture: rows down, columns across, like a PNG slice
        spacing = img.GetSpacing()
        picture = finite(sitk.GetArrayFromImage(img).astype(np.float32), path)
        return picture_as_slice(picture, (spacing[1], spacing[0]), path, fmt)
    array = sitk.GetArrayFromImage(img).T  # ITK's (z, y, x) -> (x, y, z) voxel order
    lps = np.eye(4)
    lps[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())[None, :]
    lps[:3, 3] = img.GetOrigin()
    return SpineImage.from_array(
        check_volume(array, path),
        LPS_TO_RAS @ lps,
        modality=guess_modality(array),
        modality_guessed=True,
        source=str(path),
        format=fmt,
    )
