"""MetaImage and NRRD files (``.mha``, ``.mhd``, ``.nrrd``, ``.nhdr``) through SimpleITK, in LPS world mm."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.image import LPS_TO_RAS, FileGrid, SpineImage
from lumbar.io.arrays import check_size, check_volume, finite, guess_modality, picture_as_slice
from lumbar.io.itk_header import NOT_THE_VOXELS, header_problem, inflate_voxels

ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")


def _voxel_bytes(reader) -> int:
    """How many bytes the image a SimpleITK reader has read the information of holds (from its pixel type's name,
    e.g. "vector of 16-bit signed integer"; a complex value counts twice)."""
    import SimpleITK as sitk

    name = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    bits = int(re.search(r"(\d+)-bit", name)[1]) * (2 if name.startswith("complex") else 1)
    return bits // 8 * reader.GetNumberOfComponents() * math.prod(reader.GetSize())


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
        # compressed voxels first, so that a damaged stream is refused before MetaIO prints and misreads it
        problem, inflated = inflate_voxels(path, _voxel_bytes(reader))
        if problem:
            raise InputError(f"{path}: not a readable {fmt} image ({problem})")
        img = reader.Execute()
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise InputError(f"{path}: not a readable {fmt} image ({first})") from None
    if inflated is not None and not inflated.holds(sitk.GetArrayViewFromImage(img)):
        raise InputError(f"{path}: not a readable {fmt} image ({NOT_THE_VOXELS})")
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
        lps = np.eye(4)  # its own grid, for the label maps: the plane's two axes, one voxel across it
        lps[:2, :2] = np.array(img.GetDirection()).reshape(2, 2) * np.array(spacing)[None, :]
        lps[:2, 3] = img.GetOrigin()
        grid = FileGrid(LPS_TO_RAS @ lps)
        return picture_as_slice(picture, (spacing[1], spacing[0]), path, fmt, file_grid=grid)
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
