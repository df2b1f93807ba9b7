"""MetaImage and NRRD files (``.mha``, ``.mhd``, ``.nrrd``, ``.nhdr``) through SimpleITK, in LPS world mm."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.image import LPS_TO_RAS, SpineImage
from lumbar.io.arrays import check_size, check_volume, finite, guess_modality, picture_as_slice

ITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
METAIMAGE_SUFFIXES = (".mha", ".mhd")
MAX_DIMENSIONS = 5  # the most ITK reads; a MetaImage declaring a negative or larger NDims crashes or hangs it
HEADER_BYTES = 65536  # a text header, before its voxels
# A detached header's file-name pattern goes to C's sprintf in ITK's readers: "%n" or a huge width crashes them (a
# format-string attack). At most one slice-number conversion (%d, %03d: a width of at most 9) is let through.
SAFE_PATTERN = re.compile(r"[^%]*(%0?[1-9]?d[^%]*)?")


def _fields(path: Path) -> list[tuple[str, str, list[str]]]:
    """The header's ``(key, value, lines after it)`` as ITK's readers split them: MetaImage ``key = value`` or
    ``key: value`` lines up to ``ElementDataFile``; NRRD ``key: value`` lines after the magic, up to the blank line
    (``key:=value`` pairs and comments skipped)."""
    with open(path, "rb") as file:
        lines = file.read(HEADER_BYTES).decode("latin-1").split("\n")
    fields = []
    if path.suffix.lower() in METAIMAGE_SUFFIXES:
        for k, line in enumerate(lines):
            key, value = re.split(r"[=:]", line, maxsplit=1) if re.search(r"[=:]", line) else (line, "")
            fields.append((key.strip(), value.strip(), lines[k + 1 :]))
            if key.strip() == "ElementDataFile":
                break
        return fields
    for k, line in enumerate(lines[1:], start=1):
        line = line.rstrip("\r")
        if not line:
            break
        if line.startswith("#") or ":=" in line or ": " not in line:
            continue
        key, value = line.split(": ", 1)
        fields.append((key.strip().lower(), value.strip(), lines[k + 1 :]))
    return fields


def _data_files(fields: list[tuple[str, str, list[str]]], metaimage: bool) -> list[str]:
    """The files a header sends its reader to: one name, a ``LIST`` of names after it, or the folder of a
    numbered pattern (``slice%03d.raw 1 20 1``)."""
    key = "ElementDataFile" if metaimage else None
    for name, value, after in fields:
        if not (name == key if metaimage else name in ("data file", "datafile")):
            continue
        if value.upper() in ("LOCAL", ""):
            return []
        if value.split()[0].upper() == "LIST":
            return [line.strip().split()[0] for line in after if line.strip() and not line.startswith("#")]
        return [value.split()[0] if "%" in value else value]
    return []


def header_problem(path: Path) -> str | None:
    """Why ITK must not be handed this file, found in Python first: a MetaImage whose ``NDims`` (any of them, ``=`` or
    ``:``) is not a whole number from 1 to ``MAX_DIMENSIONS`` (ITK's reader segfaults, aborts or hangs on one), or a
    header whose voxels lie in a file outside its own folder (an absolute path or ``..``: reading it would read
    whatever that path holds). None for other files and sound headers."""
    suffix = path.suffix.lower()
    if suffix not in ITK_SUFFIXES:
        return None
    metaimage = suffix in METAIMAGE_SUFFIXES
    fields = _fields(path)
    if metaimage:
        for key, value, _ in fields:
            if key == "NDims" and (not value.isdigit() or not 1 <= int(value) <= MAX_DIMENSIONS):
                return f"its header declares NDims = {value[:20]!r}, not 1 to {MAX_DIMENSIONS} dimensions"
    folder = path.parent.resolve()
    for name in _data_files(fields, metaimage):
        if not SAFE_PATTERN.fullmatch(name):
            return f"its data file name {name[:60]!r} holds a '%' other than one slice number (%d, %03d); refused"
        if not (folder / name).resolve().is_relative_to(folder):
            return f"its header points to voxels outside its own folder ({name[:60]!r}); refused"
    return None


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
