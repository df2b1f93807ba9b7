"""NIfTI-1/2 files (``.nii``, ``.nii.gz``) through nibabel; the header's affine is the geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.image import FileGrid, SpineImage
from lumbar.io.arrays import check_size, check_volume, finite, guess_modality, picture_as_slice

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def read_nifti(path: Path) -> SpineImage:
    """A 3D NIfTI as a volume (modality guessed from the voxel values); a 2D one as a volume of one slice where its
    header places it as a sagittal slice (:func:`_placed_sagittal`), else as a picture."""
    import nibabel as nib
    from nibabel.orientations import io_orientation

    try:
        img = nib.load(str(path))
        check_size(img.shape, path)
        _check_zooms(path, type(img.header), img.shape)
        array = np.asanyarray(img.dataobj)
    except InputError:
        raise
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
    if array.ndim == 2 and _placed_sagittal(img):  # its affine places a sagittal slice: one slice of a volume
        array = array[:, :, None]
    elif array.ndim == 2:  # one slice, not so placed: NIfTI's first axis runs across, the second up the picture
        zooms = img.header.get_zooms()[:2]
        picture = finite(np.asarray(array, np.float32).T[::-1], path)
        affine = img.affine if img.affine is not None and np.isfinite(img.affine).all() else None
        grid = FileGrid(img.header.get_base_affine() if affine is None else affine, rows_up=True)
        spacing = (float(zooms[1]), float(zooms[0]))
        return picture_as_slice(picture, spacing, path, "NIfTI", file_grid=grid, nifti_codes=_codes(img))
    array = check_volume(array, path)
    affine = img.affine
    if affine is None or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(f"{path}: NIfTI header has no usable voxel-to-world affine")
    if np.isnan(io_orientation(affine)).any():  # found by fuzzing: axes 1e30 apart in size passed the determinant
        raise InputError(f"{path}: NIfTI header's affine gives some voxel axis no direction (sizes far apart)")
    return SpineImage.from_array(
        array,
        affine,
        modality=guess_modality(array),
        modality_guessed=True,
        source=str(path),
        format="NIfTI",
        nifti_codes=_codes(img),
    )


def _codes(img) -> tuple[int, int]:
    """The file's (qform, sform) codes, which its label maps carry: a template or aligned space (codes 2-4) stays
    one, and a file that states none (code 0) keeps stating none, so every tool reads both files alike."""
    return int(img.header["qform_code"]), int(img.header["sform_code"])


def _placed_sagittal(img) -> bool:
    """Whether a 2D NIfTI's header places it as a sagittal slice (an sform or qform code above 0, and the slice's
    normal mostly left-right): it is then read where it lies (one stored with the head along its first axis was
    shown on its side). A slice placed otherwise, or with the identity most tools write for a 2D array, keeps the
    picture rule."""
    header = img.header
    if max(int(header["sform_code"]), int(header["qform_code"])) == 0:
        return False
    affine = img.affine
    if affine is None or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        return False  # no usable affine (a zero third column, say): the picture rule, as before
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    length = float(np.linalg.norm(normal))
    return length > 0 and abs(normal[0]) / length > 0.7


def _check_zooms(path: Path, header_class: type, shape: tuple[int, ...]) -> None:
    """Refuse a zero or non-finite voxel size as the file states it: nibabel silently repairs a zero to 1 mm.

    An axis of one voxel (a single slice) is exempt: its thickness measures nothing.
    """
    from nibabel.openers import ImageOpener

    with ImageOpener(path) as f:
        stated = header_class.from_fileobj(f, check=False).get_zooms()[: min(len(shape), 3)]
    if not all(np.isfinite(z) and z != 0 for z, n in zip(stated, shape) if n > 1):
        sizes = " x ".join(f"{float(z):g}" for z in stated)
        raise InputError(
            f"{path}: NIfTI header states a voxel spacing of {sizes} mm; a spacing must be finite and non-zero"
        )
