"""A corpus of broken and hostile inputs, built at test time: each is refused in one line naming the file, exit 2.

``lumbar info`` and ``lumbar analyze`` must never show a traceback, never hang and never leave a partial output
folder. Most cases run in-process; those that could allocate or loop forever (huge declared sizes, decompression
bombs, symlink loops) run in a real process killed after ``HARD_TIMEOUT_S`` seconds.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from typer.testing import CliRunner

from lumbar.cli import app
from lumbar.io.dicom_write import write_dicom_series
from lumbar.phantom import make_phantom

HARD_TIMEOUT_S = 60  # a hostile input is refused within this bound, or the test fails
EXTENSIONS = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".png", ".jpg", ".dcm", ".zip")
HTML = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"

Builder = Callable[[Path], Path]


def _write(tmp: Path, name: str, data: bytes) -> Path:
    (tmp / name).write_bytes(data)
    return tmp / name


def _random_bytes(n: int = 4096) -> bytes:
    return np.random.default_rng(7).integers(0, 256, n, dtype=np.uint8).tobytes()


def _nifti(tmp: Path, name: str, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), tmp / name)
    return tmp / name


def _volume(value: float = 1.0) -> np.ndarray:
    """A small volume with some structure, that the readers would otherwise accept."""
    array = np.random.default_rng(1).random((12, 40, 30)).astype(np.float32) * 100
    array[0, 0, 0] = value
    return array


def _nifti_with_zooms(tmp: Path, name: str, zooms: tuple[float, float, float]) -> Path:
    """A NIfTI whose header states ``zooms`` and no qform/sform, so the zooms are its only geometry."""
    image = nib.Nifti1Image(_volume(), None)
    image.header["pixdim"][1:4] = zooms
    image.header.set_qform(None, code=0)
    image.header.set_sform(None, code=0)
    nib.save(image, tmp / name)
    return tmp / name


def _nan_affine_nifti(tmp: Path) -> Path:
    """A NIfTI whose only geometry, the sform, is NaN (nibabel refuses to build one, so the header is edited)."""
    image = nib.Nifti1Image(_volume(), None)
    image.header.set_sform(np.eye(4), code=1)
    for row in ("srow_x", "srow_y", "srow_z"):
        image.header[row] = np.nan
    nib.save(image, tmp / "nanaff.nii.gz")
    return tmp / "nanaff.nii.gz"


def _huge_nifti(tmp: Path, name: str) -> Path:
    """A header declaring 4000^3 float32 voxels over a few bytes of data."""
    header = nib.Nifti1Header()
    header.set_data_shape((4000, 4000, 4000))
    header.set_data_dtype(np.float32)
    header["vox_offset"] = 352
    raw = header.binaryblock + b"\x00" * 4 + b"\x00" * 64
    return _write(tmp, name, gzip.compress(raw) if name.endswith(".gz") else raw)


def _huge_itk(tmp: Path, name: str) -> Path:
    if name.endswith(".nrrd"):
        text = "NRRD0004\ntype: float\ndimension: 3\nsizes: 4000 4000 4000\nencoding: raw\nendian: little\n\n"
    else:
        text = (
            "ObjectType = Image\nNDims = 3\nDimSize = 4000 4000 4000\nElementType = MET_FLOAT\n"
            "ElementDataFile = LOCAL\n"
        )
    return _write(tmp, name, text.encode() + b"\x00" * 64)


def _mha(tmp: Path, name: str, spacing: str, value: float = 1.0) -> Path:
    header = (
        f"ObjectType = Image\nNDims = 3\nDimSize = 30 40 12\nElementSpacing = {spacing}\n"
        "ElementType = MET_FLOAT\nElementDataFile = LOCAL\n"
    )
    return _write(tmp, name, header.encode() + _volume(value).tobytes())


def _mha_ndims(tmp: Path, name: str, ndims: str) -> Path:
    """A small valid MetaImage (a .mhd with its voxels in a .raw beside it) whose header declares ``ndims``."""
    data = "LOCAL" if name.endswith(".mha") else "voxels.raw"
    header = (
        f"ObjectType = Image\nNDims = {ndims}\nDimSize = 30 40 12\nElementType = MET_FLOAT\nElementDataFile = {data}\n"
    )
    if data != "LOCAL":
        _write(tmp, data, _volume().tobytes())
    return _write(tmp, name, header.encode() + (_volume().tobytes() if data == "LOCAL" else b""))


def _metaimage_header(tmp: Path, name: str, lines: str) -> Path:
    """A .mha/.mhd whose header (after ObjectType) is ``lines``; its voxels, if LOCAL, follow the header."""
    header = f"ObjectType = Image\n{lines}"
    return _write(tmp, name, header.encode() + (_volume().tobytes() if "= LOCAL" in lines else b""))


def _nhdr(tmp: Path, data_file: str) -> Path:
    """A detached NRRD header of a small volume whose voxels are in ``data_file``."""
    header = (
        "NRRD0004\ntype: float\ndimension: 3\nsizes: 12 40 30\nencoding: raw\nendian: little\n"
        f"data file: {data_file}\n\n"
    )
    return _write(tmp, "scan.nhdr", header.encode())


_META = "DimSize = 30 40 12\nElementType = MET_FLOAT\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(tmp: Path) -> Path:
    """A PNG whose header declares 60000 x 60000 pixels (3.6 Gpixel) over a few bytes of data."""
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 60001 * 16)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    return _write(tmp, "bomb.png", png)


def _series(tmp: Path, name: str, slices: int = 5, patient: str = "PHANTOM") -> list[Path]:
    """A small valid sagittal DICOM series in ``tmp/name``."""
    phantom = make_phantom(shape=(slices, 60, 50), spacing_mm=(4.0, 5.0, 5.0))
    files = write_dicom_series(phantom.image, tmp / name, series_description=f"SAG T2 {patient}")
    for f in files:
        ds = pydicom.dcmread(f)
        ds.PatientID = patient
        ds.save_as(f)
    return files


def _edit_dicom(files: list[Path], index: int, **tags: object) -> None:
    ds = pydicom.dcmread(files[index])
    for tag, value in tags.items():
        setattr(ds, tag, value)
    ds.save_as(files[index])


def _dicom_without_pixels(tmp: Path) -> Path:
    files = _series(tmp, "nopixels", slices=1)
    ds = pydicom.dcmread(files[0])
    del ds.PixelData
    ds.save_as(files[0])
    return files[0]


def _dicom_wrong_size(tmp: Path) -> Path:
    files = _series(tmp, "wrongsize", slices=1)
    _edit_dicom(files, 0, Rows=600, Columns=500)
    return files[0]


def _dicom_truncated(tmp: Path) -> Path:
    files = _series(tmp, "cut", slices=1)
    data = files[0].read_bytes()
    return _write(tmp, "cut.dcm", data[: len(data) // 2])


def _missing_slice(tmp: Path) -> Path:
    files = _series(tmp, "gap", slices=6)
    files[2].unlink()
    return tmp / "gap"


def _duplicate_slice(tmp: Path) -> Path:
    files = _series(tmp, "dup", slices=5)
    ds = pydicom.dcmread(files[1])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp / "dup" / "copy.dcm")
    return tmp / "dup"


def _two_patients(tmp: Path) -> Path:
    _series(tmp / "mixed", "a", patient="ALICE")
    _series(tmp / "mixed", "b", patient="BOB")
    return tmp / "mixed"


def _dicom_spacing(tmp: Path, name: str, spacing: list[float]) -> Path:
    files = _series(tmp, name, slices=3)
    for i in range(len(files)):
        _edit_dicom(files, i, PixelSpacing=spacing)
    return tmp / name


def _zip(tmp: Path, name: str, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(tmp / name, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        if symlink is not None:
            info = zipfile.ZipInfo("link.dcm")
            info.external_attr = (0o120777 << 16) | 0
            zf.writestr(info, symlink)
    return tmp / name


def _truncated_zip(tmp: Path) -> Path:
    files = _series(tmp, "tozip", slices=3)
    _zip(tmp, "full.zip", {f.name: f.read_bytes() for f in files})
    data = (tmp / "full.zip").read_bytes()
    return _write(tmp, "cut.zip", data[: len(data) // 2])


def _corrupt_zip_member(tmp: Path) -> Path:
    files = _series(tmp, "tozip", slices=3)
    data = bytearray(_zip(tmp, "crc.zip", {f.name: f.read_bytes() for f in files}).read_bytes())
    data[200:260] = b"\xff" * 60  # inside the first member's data: its CRC no longer matches
    return _write(tmp, "crc.zip", bytes(data))


def _truncated_gzip(tmp: Path) -> Path:
    data = _nifti(tmp, "whole.nii.gz", _volume()).read_bytes()
    return _write(tmp, "gzcut.nii.gz", data[: len(data) // 2])


def _truncated_nifti(tmp: Path) -> Path:
    data = _nifti(tmp, "whole.nii", _volume()).read_bytes()
    return _write(tmp, "cut.nii", data[: len(data) // 2])


def _truncated_picture(tmp: Path, name: str) -> Path:
    Image.fromarray((_volume()[0] * 2).astype(np.uint8)).save(tmp / f"whole_{name}")
    data = (tmp / f"whole_{name}").read_bytes()
    return _write(tmp, name, data[: len(data) // 3])


def _folder_of(tmp: Path, name: str, files: dict[str, bytes]) -> Path:
    (tmp / name).mkdir()
    for member, data in files.items():
        (tmp / name / member).write_bytes(data)
    return tmp / name


def _self_link(tmp: Path) -> Path:
    os.symlink("loop.nii.gz", tmp / "loop.nii.gz")
    return tmp / "loop.nii.gz"


def _folder_link_loop(tmp: Path) -> Path:
    folder = _folder_of(tmp, "looped", {"IM0001": _random_bytes()})
    os.symlink(folder, folder / "again")
    os.symlink(folder / "b", folder / "a")
    os.symlink(folder / "a", folder / "b")
    return folder


CASES: dict[str, tuple[Builder, str]] = {
    **{f"empty {ext}": (lambda tmp, ext=ext: _write(tmp, f"empty{ext}", b""), "empty") for ext in EXTENSIONS},
    "empty folder": (lambda tmp: _folder_of(tmp, "nothing", {}), "folder"),
    **{
        f"random bytes {ext}": (lambda tmp, ext=ext: _write(tmp, f"noise{ext}", _random_bytes()), "not a readable")
        for ext in EXTENSIONS
        if ext != ".dcm"
    },
    "random bytes .dcm": (lambda tmp: _write(tmp, "noise.dcm", _random_bytes()), "unknown format"),
    "folder of random bytes": (lambda tmp: _folder_of(tmp, "noisy", {"IM1": _random_bytes()}), "no DICOM"),
    "truncated NIfTI": (_truncated_nifti, "NIfTI"),
    "gzip with a truncated payload": (_truncated_gzip, "NIfTI"),
    "truncated DICOM": (_dicom_truncated, "DICOM"),
    "truncated PNG": (lambda tmp: _truncated_picture(tmp, "cut.png"), "not a readable image"),
    "truncated JPEG": (lambda tmp: _truncated_picture(tmp, "cut.jpg"), "not a readable image"),
    "truncated zip": (_truncated_zip, "zip"),
    "HTML saved as .nii.gz": (lambda tmp: _write(tmp, "page.nii.gz", HTML), "NIfTI"),
    "HTML saved as .png": (lambda tmp: _write(tmp, "page.png", HTML), "not a readable image"),
    "HTML saved as .mha": (lambda tmp: _write(tmp, "page.mha", HTML), "MHA"),
    "4D NIfTI": (lambda tmp: _nifti(tmp, "fmri.nii.gz", np.ones((6, 6, 6, 3), np.float32)), "dimensions"),
    "one-voxel NIfTI": (lambda tmp: _nifti(tmp, "dot.nii.gz", np.ones((1, 1, 1), np.float32)), "no voxels"),
    "all-NaN NIfTI": (lambda tmp: _nifti(tmp, "nan.nii.gz", np.full((8, 8, 8), np.nan, np.float32)), "finite"),
    "infinite voxels NIfTI": (lambda tmp: _nifti(tmp, "inf.nii.gz", _volume(np.inf)), "finite"),
    "all-inf 2D NIfTI": (lambda tmp: _nifti(tmp, "inf2d.nii.gz", np.full((30, 40), -np.inf, np.float32)), "finite"),
    "infinite voxels MHA": (lambda tmp: _mha(tmp, "inf.mha", "1 1 1", np.inf), "finite"),
    "zero spacing NIfTI": (lambda tmp: _nifti_with_zooms(tmp, "flat.nii.gz", (0.0, 1.0, 1.0)), "spacing"),
    "NaN spacing NIfTI": (lambda tmp: _nifti_with_zooms(tmp, "nanzoom.nii.gz", (np.nan, 1.0, 1.0)), "spacing"),
    "zero-spacing 2D NIfTI": (lambda tmp: _nifti_2d_zooms(tmp, (0.0, 0.0)), "spacing"),
    "NaN affine NIfTI": (_nan_affine_nifti, "affine"),
    "complex NIfTI": (lambda tmp: _nifti(tmp, "complex.nii.gz", np.ones((8, 8, 8), np.complex64)), "real-valued"),
    "zero spacing MHA": (lambda tmp: _mha(tmp, "flat.mha", "0 1 1"), "spacing"),
    "NaN spacing MHA": (lambda tmp: _mha(tmp, "nanzoom.mha", "nan 1 1"), "spacing"),
    "DICOM without pixel data": (_dicom_without_pixels, "pixel data"),
    "DICOM with mismatched rows and columns": (_dicom_wrong_size, "pixel data"),
    "DICOM series missing a slice": (_missing_slice, "missing"),
    "DICOM series with a duplicate slice": (_duplicate_slice, "duplicated"),
    "DICOM folder mixing patients": (_two_patients, "patients"),
    "DICOM with zero pixel spacing": (lambda tmp: _dicom_spacing(tmp, "zerospacing", [0.0, 0.0]), "spacing"),
    "DICOM with NaN pixel spacing": (lambda tmp: _dicom_spacing(tmp, "nanspacing", [float("nan"), 1.0]), "spacing"),
    "empty zip": (lambda tmp: _zip(tmp, "hollow.zip", {}), "empty"),
    "zip of text": (lambda tmp: _zip(tmp, "notes.zip", {"notes.txt": b"hello"}), "no DICOM"),
    "zip with a corrupt member": (_corrupt_zip_member, "zip"),
    "zip with a path traversal": (lambda tmp: _zip(tmp, "slip.zip", {"../../escape.dcm": b"x"}), "outside"),
    "zip with an absolute path": (lambda tmp: _zip(tmp, "abs.zip", {"/tmp/lumbar-abs.dcm": b"x"}), "outside"),
    "zip with a symlink": (lambda tmp: _zip(tmp, "link.zip", {}, symlink="/etc/passwd"), "outside"),
    "symlink to itself": (_self_link, "link"),
    "name with spaces": (lambda tmp: _write(tmp, "my scan 01.nii.gz", HTML), "NIfTI"),
    "unicode name": (lambda tmp: _write(tmp, "脊椎 Ölçüm ✓.nii.gz", _random_bytes()), "NIfTI"),
    "name with a leading dash": (lambda tmp: _write(tmp, "-scan.nii.gz", _random_bytes()), "NIfTI"),
    "MHD without its data file": (lambda tmp: _mhd_without_raw(tmp), "MHD"),
    "NRRD with a broken header": (lambda tmp: _write(tmp, "bad.nrrd", b"NRRD0004\nsizes: x y\n\n"), "NRRD"),
    "one-pixel PNG": (lambda tmp: _picture(tmp, "dot.png", np.zeros((1, 1), np.uint8)), "2D slice"),
    "unknown extension": (lambda tmp: _write(tmp, "scan.bin", _random_bytes()), "unknown format"),
}

HARD_CASES: dict[str, tuple[Builder, str]] = {
    "4000^3 header over a tiny .nii": (lambda tmp: _huge_nifti(tmp, "huge.nii"), "voxels"),
    "4000^3 header over a tiny .nii.gz": (lambda tmp: _huge_nifti(tmp, "huge.nii.gz"), "voxels"),
    "4000^3 header over a tiny .mha": (lambda tmp: _huge_itk(tmp, "huge.mha"), "voxels"),
    "4000^3 header over a tiny .nrrd": (lambda tmp: _huge_itk(tmp, "huge.nrrd"), "voxels"),
    "decompression-bomb PNG": (_bomb_png, "too large"),
    # ITK's own reader segfaults (-3) or aborts (100) on these: found by the fuzz test, refused before ITK now
    "MHA declaring -3 dimensions": (lambda tmp: _mha_ndims(tmp, "minus.mha", "-3"), "NDims"),
    "MHA declaring 100 dimensions": (lambda tmp: _mha_ndims(tmp, "hundred.mha", "100"), "NDims"),
    "MHD declaring -3 dimensions": (lambda tmp: _mha_ndims(tmp, "minus.mhd", "-3"), "NDims"),
    # Found by a header fuzz: ITK hangs on these (NDims after a colon, or declared twice, the last one -3) ...
    "MHA declaring 'NDims: -3'": (
        lambda tmp: _metaimage_header(tmp, "colon.mha", f"NDims: -3\n{_META}ElementDataFile = LOCAL\n"),
        "NDims",
    ),
    "MHA declaring NDims twice, then -3": (
        lambda tmp: _metaimage_header(tmp, "twice.mha", f"NDims = 3\nNDims = -3\n{_META}ElementDataFile = LOCAL\n"),
        "NDims",
    ),
    # ... and hands a data-file pattern to C's sprintf: '%n' or a huge width segfaults it (a format-string attack)
    "NHDR data file pattern with %n": (lambda tmp: _nhdr(tmp, "x%n 1 12 1"), "'%'"),
    "NHDR data file pattern 99999999 wide": (lambda tmp: _nhdr(tmp, "x%99999999d 1 12 1"), "'%'"),
    "MHD data file pattern with %n": (
        lambda tmp: _metaimage_header(tmp, "pattern.mhd", f"NDims = 3\n{_META}ElementDataFile = x%n.raw 1 12 1\n"),
        "'%'",
    ),
    # A detached header read whatever file it named: voxels outside the header's folder are refused
    "MHD whose voxels are /etc/passwd": (
        lambda tmp: _metaimage_header(tmp, "abs.mhd", f"NDims = 3\n{_META}ElementDataFile = /etc/passwd\n"),
        "outside its own folder",
    ),
    "MHD listing a file two folders up": (
        lambda tmp: _metaimage_header(tmp, "list.mhd", f"NDims = 3\n{_META}ElementDataFile = LIST\n../../secret.raw\n"),
        "outside its own folder",
    ),
    "NHDR whose voxels are ../../etc/passwd": (lambda tmp: _nhdr(tmp, "../../etc/passwd"), "outside its own folder"),
    "folder with symlink loops": (_folder_link_loop, "no DICOM"),
}


def _nifti_2d_zooms(tmp: Path, zooms: tuple[float, float]) -> Path:
    image = nib.Nifti1Image(_volume()[0], None)
    image.header["pixdim"][1:3] = zooms
    nib.save(image, tmp / "flat2d.nii.gz")
    return tmp / "flat2d.nii.gz"


def _mhd_without_raw(tmp: Path) -> Path:
    text = "ObjectType = Image\nNDims = 3\nDimSize = 30 40 12\nElementType = MET_FLOAT\nElementDataFile = gone.raw\n"
    return _write(tmp, "orphan.mhd", text.encode())


def _picture(tmp: Path, name: str, array: np.ndarray) -> Path:
    Image.fromarray(array).save(tmp / name)
    return tmp / name


def _args(command: str, path: Path, out: Path) -> list[str]:
    """The command line; a name starting with '-' comes after '--', as a shell user must give it."""
    options = ["-o", str(out)] if command == "analyze" else []
    return [command, *options, "--", str(path)]


def _check(path: Path, expected: str, exit_code: int, message: str, output: str, out: Path) -> None:
    assert exit_code == 2, (exit_code, message, output)
    assert "Traceback" not in message + output, message + output
    assert len(message.strip().splitlines()) == 1, message
    assert path.name in message and expected.lower() in message.lower(), message
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


def test_the_corpus_is_large_enough():
    assert len(CASES) + len(HARD_CASES) >= 60


@pytest.mark.timeout(HARD_TIMEOUT_S)
@pytest.mark.parametrize("command", ["info", "analyze"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_is_refused_in_one_line(tmp_path, case, command):
    make, expected = CASES[case]
    path = make(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, _args(command, path, out))
    _check(path, expected, result.exit_code, result.stderr, result.stdout, out)


def test_truncated_picture_is_refused_after_a_report_library_allowed_truncation(tmp_path, monkeypatch):
    from PIL import ImageFile

    from lumbar.errors import InputError
    from lumbar.io.read import read_image

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what importing WeasyPrint does
    with pytest.raises(InputError, match="not a readable image"):
        read_image(_truncated_picture(tmp_path, "cut.png"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the other library's choice is left as it was


@pytest.mark.parametrize("command", ["info", "analyze"])
@pytest.mark.parametrize("case", sorted(HARD_CASES))
def test_input_that_could_hang_is_refused_within_the_bound(tmp_path, case, command):
    make, expected = HARD_CASES[case]
    path = make(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "lumbar.cli", *_args(command, path, out)],
        capture_output=True,
        text=True,
        timeout=HARD_TIMEOUT_S,
        env={**os.environ, "COLUMNS": "1000"},
    )
    _check(path, expected, proc.returncode, proc.stderr, proc.stdout, out)


def test_readme_counts_the_corpus():
    """The README's figures for this corpus are its size, not a number copied once."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    total = len(CASES) + len(HARD_CASES)
    assert f"- {total} broken or hostile inputs" in readme
    assert f"{total} of {total} end" in readme
    assert f"the {len(HARD_CASES)} that could allocate, loop or crash" in readme
