"""Write label maps as NIfTI (volumes) or PNG (slices) in the input's own geometry, atomically.

Every writer goes through :func:`atomic_path`: the file is written under a temporary name in the
target folder and renamed into place, so a crash never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lumbar.image import SpineImage
from lumbar.labels import SPIDER_VALUES, STRUCTURE_COLOURS, STRUCTURE_NAMES

COMPRESSED = (".gz", ".bz2", ".xz", ".zst")  # an ending of two: ".nii.gz"
MAX_ENDING = 16
MAX_TEMP_PIECE = 64


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds. The temporary name
    keeps the file's ending (writers choose a format by it) and a short piece of its name: the whole name twice went
    past the file system's 255 characters for names of about 130 (DICOM UIDs make such names)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ending = "".join(path.suffixes[-2:]) if path.suffix.lower() in COMPRESSED else path.suffix
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name[:MAX_TEMP_PIECE]}.",
        suffix=ending if 0 < len(ending) <= MAX_ENDING else ".tmp",
        dir=path.parent,
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        _sync(tmp)  # on disk before the rename: after a power cut the name holds the old file or the new, whole
        os.replace(tmp, path)
        sync_folder(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _sync(path: str | Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(folder: str | Path) -> None:
    """Flush a folder's entries (names made, renamed or removed in it) to disk, where the file system allows (some
    refuse a folder's flush, and a folder one may write in but not read cannot be opened for it)."""
    try:
        _sync(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise


def sync_tree(folder: str | Path) -> None:
    """Flush every file and folder under ``folder``, and itself, to disk: before a folder written in full is
    renamed into place (writers other than :func:`atomic_path` do not flush)."""
    for root, _, files in os.walk(folder):
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                _sync(os.path.join(root, name))
        sync_folder(root)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()  # read once, at import, so that no thread ever sees the process umask at 0


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_nifti(labels: np.ndarray, reference: SpineImage, path: str | Path) -> Path:
    """Save a label map (on ``reference``'s RAS grid) as NIfTI in the voxel order of the input file."""
    import nibabel as nib

    dtype = np.uint8 if labels.max(initial=0) < 256 else np.int16
    img = nib.Nifti1Image(reference.source_array(labels).astype(dtype), reference.source_affine())
    _set_codes(img, reference)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


def _set_codes(img, reference: SpineImage) -> None:
    """The input's own (qform, sform) codes (:attr:`SpineImage.nifti_codes`) on the affine written."""
    qform, sform = reference.nifti_codes
    img.set_qform(reference.source_affine(), code=qform)
    img.set_sform(reference.source_affine(), code=sform)


def write_intensities(values: np.ndarray, reference: SpineImage, path: str | Path, *, unit_range: bool = False) -> Path:
    """Save an image (on ``reference``'s RAS grid) as NIfTI in the voxel order of the input file: float32, or with
    ``unit_range`` values in [0, 1] stored as 8 bits with a scale of 1/255 (readers see [0, 1])."""
    import nibabel as nib

    data = reference.source_array(values)
    if unit_range:
        data = np.round(np.clip(data, 0.0, 1.0) * 255).astype(np.uint8)
    img = nib.Nifti1Image(np.ascontiguousarray(data, None if unit_range else np.float32), reference.source_affine())
    _set_codes(img, reference)
    if unit_range:
        img.header.set_slope_inter(1.0 / 255, 0.0)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


def write_png(display_slice: np.ndarray, path: str | Path) -> Path:
    """Save one display-oriented 2D array (uint8) as PNG."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(display_slice, np.uint8)).save(tmp, format="PNG")
    return Path(path)


def classes_to_spider(classes: np.ndarray) -> np.ndarray:
    """Class indices to SPIDER mask values (0, 29, 76, 150)."""
    lut = np.zeros(max(SPIDER_VALUES) + 1, np.uint8)
    for structure, value in SPIDER_VALUES.items():
        lut[structure] = value
    return lut[classes]


def write_colour_tables(
    names: dict[int, str], colours: dict[int, tuple[int, int, int]], stem: str | Path
) -> list[Path]:
    """Label tables beside a label map: ``<stem>.ctbl`` for 3D Slicer and ``<stem>.label.txt`` for ITK-SNAP."""
    slicer = ["# lumbar label table (3D Slicer colour table)"]
    itksnap = ["# ITK-SnAP Label Description File", '    0     0    0    0        0  0  0    "Clear Label"']
    for value in sorted(names):
        r, g, b = colours.get(value, (200, 200, 200))
        slicer.append(f"{value} {names[value]} {r} {g} {b} 255")
        itksnap.append(f'{value:5d} {r:5d} {g:4d} {b:4d}        1  1  1    "{names[value]}"')
    return [
        write_text(f"{stem}.ctbl", "\n".join(slicer) + "\n"),
        write_text(f"{stem}.label.txt", "\n".join(itksnap) + "\n"),
    ]


def semantic_colour_table() -> tuple[dict[int, str], dict[int, tuple[int, int, int]]]:
    """Names and colours of the SPIDER semantic values."""
    names = {SPIDER_VALUES[s]: n for s, n in STRUCTURE_NAMES.items()}
    colours = {SPIDER_VALUES[s]: c for s, c in STRUCTURE_COLOURS.items()}
    return names, colours
