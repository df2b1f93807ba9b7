"""Every input a user can get wrong gives one clear line naming the file, and a non-zero exit."""

import gzip
import subprocess
import sys
import zipfile

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from typer.testing import CliRunner

from lumbar.cli import app
from lumbar.io.dicom_write import write_dicom_series


def _missing(tmp):
    return tmp / "nope.nii.gz"


def _empty_file(tmp):
    (tmp / "empty.nii.gz").write_bytes(b"")
    return tmp / "empty.nii.gz"


def _corrupt_nifti(tmp):
    (tmp / "corrupt.nii.gz").write_bytes(gzip.compress(b"not a nifti header at all" * 20))
    return tmp / "corrupt.nii.gz"


def _truncated_nifti(tmp):
    nib.save(nib.Nifti1Image(np.ones((40, 40, 40), np.float32), np.eye(4)), tmp / "full.nii")
    data = (tmp / "full.nii").read_bytes()
    (tmp / "truncated.nii").write_bytes(data[: len(data) // 3])
    return tmp / "truncated.nii"


def _empty_folder(tmp):
    (tmp / "empty_dir").mkdir()
    return tmp / "empty_dir"


def _folder_without_images(tmp):
    (tmp / "notes").mkdir()
    (tmp / "notes" / "readme.txt").write_text("hello")
    return tmp / "notes"


def _unknown_format(tmp):
    (tmp / "scan.xyz").write_text("just text")
    return tmp / "scan.xyz"


def _four_d_nifti(tmp):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)), tmp / "fmri.nii.gz")
    return tmp / "fmri.nii.gz"


def _one_d_nifti(tmp):
    nib.save(nib.Nifti1Image(np.zeros((1, 1, 1), np.float32), np.eye(4)), tmp / "dot.nii.gz")
    return tmp / "dot.nii.gz"


def _non_image_dicom(tmp):
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    (tmp / "sr").mkdir()
    ds.save_as(tmp / "sr" / "report.dcm", enforce_file_format=True)
    return tmp / "sr"


def _corrupt_dicom_pixels(tmp):
    from lumbar.phantom import make_phantom

    ph = make_phantom(shape=(2, 60, 50), spacing_mm=(4.0, 5.0, 5.0))
    files = write_dicom_series(ph.image, tmp / "bad_pixels", "jpeg2000")
    ds = pydicom.dcmread(files[0])
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00garbage-not-j2k" * 4])
    ds.save_as(files[0])
    return tmp / "bad_pixels"


def _truncated_png(tmp):
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp / "slice.png")
    data = (tmp / "slice.png").read_bytes()
    (tmp / "cut.png").write_bytes(data[:40])
    return tmp / "cut.png"


def _fake_zip(tmp):
    (tmp / "study.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    return tmp / "study.zip"


def _zip_slip(tmp):
    with zipfile.ZipFile(tmp / "evil.zip", "w") as zf:
        zf.writestr("../outside.dcm", b"x")
    return tmp / "evil.zip"


def _corrupt_mha(tmp):
    (tmp / "bad.mha").write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\nElementType = MET_FLOAT\nElementDataFile = LOCAL\n"
    )
    return tmp / "bad.mha"


def _colour_dicom_free_text(tmp):
    (tmp / "dicomish").mkdir()
    (tmp / "dicomish" / "IM0001").write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    return tmp / "dicomish"


BROKEN = {
    "missing file": (_missing, "no such file"),
    "empty file": (_empty_file, "empty"),
    "corrupt NIfTI": (_corrupt_nifti, "NIfTI"),
    "truncated NIfTI": (_truncated_nifti, "NIfTI"),
    "empty folder": (_empty_folder, "empty"),
    "folder without images": (_folder_without_images, "no DICOM"),
    "unknown format": (_unknown_format, "unknown format"),
    "4D NIfTI": (_four_d_nifti, "dimensions"),
    "single-voxel NIfTI": (_one_d_nifti, "no voxels"),
    "non-image DICOM": (_non_image_dicom, "no image series"),
    "corrupt DICOM pixel data": (_corrupt_dicom_pixels, "pixel data"),
    "truncated PNG": (_truncated_png, "not a readable image"),
    "not a zip": (_fake_zip, "zip"),
    "zip escaping its folder": (_zip_slip, "outside the archive"),
    "corrupt MHA": (_corrupt_mha, "MHA"),
    "damaged DICOM file": (_colour_dicom_free_text, "DICOM"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("command", ["info", "segment", "analyze"])
def test_broken_input_gives_one_line_and_exit_code_2(tmp_path, case, command):
    make, expected = BROKEN[case]
    path = make(tmp_path)
    args = [command, str(path)] + (["-o", str(tmp_path / "out")] if command != "info" else [])
    result = CliRunner().invoke(app, args)
    message = result.stderr.strip()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and "Traceback" not in message
    assert len(message.splitlines()) == 1, message
    assert path.name in message and expected.lower() in message.lower(), message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.*"))


def test_real_process_exits_non_zero_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lumbar.cli", "info", str(tmp_path / "missing.dcm")], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr


def test_debug_flag_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(app, ["--debug", "info", str(tmp_path / "missing.nii.gz")])
    assert result.exit_code != 0 and result.exception is not None
