"""Read DICOM series (folder or .zip), NIfTI, MHA/MHD, NRRD and PNG/JPEG slices into a ``SpineImage``.

Every failure a user can cause (missing, empty, corrupt, non-image, wrong dimensionality, unknown
format) raises ``InputError`` with the file and the problem in one line.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.image import LPS_TO_RAS, Modality, SpineImage

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_ZIP_BYTES = 4 * 1024**3


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def guess_modality(array: np.ndarray) -> Modality:
    """CT when the voxels reach well below zero (air and fat in Hounsfield units), else MR.

    MR magnitude images are non-negative; a CT crop without air still holds fat near -100 HU.
    """
    sample = np.asarray(array).ravel()[:: max(1, array.size // 200_000)].astype(np.float32)
    return Modality.CT if np.percentile(sample, 1) < -50 else Modality.MR


def read_image(path: str | Path, *, spacing_mm: float | None = None, modality: str | None = None,
               series: str | None = None) -> SpineImage:
    """Read one study from a file or a folder.

    Parameters
    ----------
    path : a DICOM folder or .zip, a single DICOM file, .nii/.nii.gz, .mha/.mhd, .nrrd/.nhdr, .png/.jpg.
    spacing_mm : in-plane pixel size for PNG/JPEG slices, which do not store one.
    modality : "MR", "CT", "XR"; overrides what the file says or what is guessed.
    series : SeriesInstanceUID or SeriesNumber to pick in a DICOM folder with several series.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir() or suffix_of(path) == ".zip":
        from lumbar.io.dicom import read_dicom_folder, read_dicom_zip

        image = read_dicom_zip(path, series) if path.is_file() else read_dicom_folder(path, series)
    else:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: file is empty")
        suffix = suffix_of(path)
        if suffix in NIFTI_SUFFIXES:
            image = _read_nifti(path)
        elif suffix in ITK_SUFFIXES:
            image = _read_itk(path)
        elif suffix in RASTER_SUFFIXES:
            image = _read_raster(path, spacing_mm)
        else:
            from lumbar.io.dicom import is_dicom_file, read_dicom_files

            if not is_dicom_file(path):
                raise InputError(f"{path}: unknown format (expected DICOM, NIfTI, MHA/MHD, NRRD, PNG or JPEG)")
            image = read_dicom_files([path], path)
    return override_modality(image, modality)


def override_modality(image: SpineImage, modality: str | None) -> SpineImage:
    """Set the modality a user gave (``--modality``) on ``image``; none given leaves it as read."""
    if modality:
        try:
            image.modality = Modality.parse(modality)
        except ValueError as exc:
            raise InputError(f"--modality: {exc}") from None
    return image


def _check_array(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise InputError(f"{path}: expected a 2D or 3D image, got {array.ndim} dimensions {array.shape}")
    if min(array.shape) < 1 or array.size < 4:
        raise InputError(f"{path}: image has no voxels to analyse (shape {array.shape})")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(f"{path}: voxel type {array.dtype} is not a real-valued image")
    return finite(array, path)


def finite(array: np.ndarray, path: Path) -> np.ndarray:
    """Replace NaN/inf voxels (some tools mark background so) by the lowest finite value."""
    if np.issubdtype(array.dtype, np.integer):
        return array
    bad = ~np.isfinite(array)
    if not bad.any():
        return array
    if bad.all():
        raise InputError(f"{path}: image holds no finite voxel values")
    array = np.array(array, dtype=np.float32)
    array[bad] = array[~bad].min()
    return array


def _read_nifti(path: Path) -> SpineImage:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        array = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
    if array.ndim == 2:  # one slice: NIfTI's first axis runs across, the second up the picture
        zooms = img.header.get_zooms()[:2]
        return _one_slice(finite(np.asarray(array, np.float32).T[::-1], path), (float(zooms[1]), float(zooms[0])), path, "NIfTI")
    array = _check_array(array, path)
    affine = img.affine
    if affine is None or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(f"{path}: NIfTI header has no usable voxel-to-world affine")
    return SpineImage.from_array(array, affine, modality=guess_modality(array), source=str(path),
                                 format="NIfTI")


def _read_itk(path: Path) -> SpineImage:
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise InputError(f"{path}: not a readable {suffix_of(path)[1:].upper()} image ({first})") from None
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: expected a grey-scale image, got {img.GetNumberOfComponentsPerPixel()} components per voxel")
    if img.GetDimension() not in (2, 3):
        raise InputError(f"{path}: expected a 2D or 3D image, got {img.GetDimension()} dimensions")
    if img.GetDimension() == 2:  # a picture: rows down, columns across, like a PNG slice
        spacing = img.GetSpacing()
        return _one_slice(finite(sitk.GetArrayFromImage(img).astype(np.float32), path), (spacing[1], spacing[0]), path,
                          suffix_of(path)[1:].upper())
    array = sitk.GetArrayFromImage(img).T  # ITK's (z, y, x) -> (x, y, z) voxel order
    dim = img.GetDimension()
    direction = np.array(img.GetDirection()).reshape(dim, dim)
    lps = np.eye(4)
    lps[:dim, :dim] = direction * np.array(img.GetSpacing())[None, :]
    lps[:dim, 3] = img.GetOrigin()
    affine = LPS_TO_RAS @ lps
    return SpineImage.from_array(_check_array(array, path), affine, modality=guess_modality(array), source=str(path),
                                 format=suffix_of(path)[1:].upper())


def read_raster_array(path: Path) -> np.ndarray:
    """Grey pixels of a PNG/JPEG as float32, 16-bit kept, colour and alpha folded to grey."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            grey = im.convert("I;16") if im.mode in ("I", "I;16", "I;16B") else im.convert("L")
            array = np.asarray(grey, dtype=np.float32)
    except Image.DecompressionBombError:
        raise InputError(f"{path}: image is too large to be a slice (over {Image.MAX_IMAGE_PIXELS} pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None
    if array.ndim != 2 or min(array.shape) < 2:
        raise InputError(f"{path}: expected a 2D slice, got shape {array.shape}")
    return array


def _one_slice(array: np.ndarray, spacing_mm: tuple[float, float] | None, path: Path, fmt: str) -> SpineImage:
    """A 2D picture is one sagittal slice shown as read: head up, anterior left."""
    from lumbar.preprocess import assumed_spacing_mm

    known = spacing_mm is not None
    row, col = spacing_mm if known else (assumed_spacing_mm(array.shape),) * 2
    return SpineImage.from_sagittal_slices(array[None], (row, row, col), modality=Modality.MR, source=str(path),
                                           spacing_known=known, format=fmt)


def _read_raster(path: Path, spacing_mm: float | None) -> SpineImage:
    spacing = (float(spacing_mm), float(spacing_mm)) if spacing_mm is not None else None
    return _one_slice(read_raster_array(path), spacing, path, path.suffix[1:].upper())


def discover_studies(paths: list[str | Path]) -> list[Path]:
    """Expand inputs into studies.

    A file is one study. A folder holding image files (PNG, NIfTI, ...) gives one study per file, plus
    one per subfolder holding DICOM; a folder holding only DICOM (at any depth) is one study.
    """
    from lumbar.io.dicom import folder_has_dicom

    image_suffixes = (*NIFTI_SUFFIXES, *ITK_SUFFIXES, *RASTER_SUFFIXES, ".zip")
    studies: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_file():
            studies.append(path)
            continue
        files = sorted(p for p in path.iterdir() if p.is_file() and suffix_of(p) in image_suffixes)
        if files:
            studies.extend(files)
            studies.extend(sorted(p for p in path.iterdir() if p.is_dir() and folder_has_dicom(p)))
        elif folder_has_dicom(path):
            studies.append(path)
        else:
            raise InputError(f"{path}: folder holds no DICOM series and no image files")
    return studies


def safe_extract_zip(path: Path, dest: Path) -> None:
    """Extract a zip, refusing absolute paths, '..' escapes, links and archives that inflate past 4 GiB."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise InputError(f"{path}: archive expands to more than {MAX_ZIP_BYTES // 1024**3} GiB")
            root = dest.resolve()
            for member in members:
                target = (dest / member.filename).resolve()
                if not target.is_relative_to(root) or (member.external_attr >> 16) & 0o170000 == 0o120000:
                    raise InputError(f"{path}: archive member {member.filename!r} points outside the archive")
            zf.extractall(dest)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, EOFError) as exc:
        raise InputError(f"{path}: not a readable zip archive ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot extract the archive ({exc.strerror or exc})") from None
