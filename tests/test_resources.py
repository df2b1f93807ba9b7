"""The memory an analysis needs is estimated before computing, and one that would not fit is refused with its
numbers: one line, exit 2, nothing written."""

import json

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from lumbar.cli import app
from lumbar.errors import InputError
from lumbar.resources import (
    AVAILABLE_SHARE,
    BASE_BYTES,
    BYTES_PER_FILE,
    BYTES_PER_VOXEL,
    DICOM_BYTES,
    ENV_LIMIT,
    analysis_bytes,
    available_bytes,
    budget_bytes,
    check_memory,
)


def test_estimate_is_the_base_plus_a_cost_per_voxel():
    assert analysis_bytes(0) == BASE_BYTES
    assert analysis_bytes(1000) == BASE_BYTES + 1000 * BYTES_PER_VOXEL
    # A 2 GB int16 volume (1024^3 voxels) needs far more than a laptop's memory: it must be refused there.
    assert analysis_bytes(1024**3) > 24 * 2**30
    # a DICOM input adds the DICOM SEG written over it and each file's header, held until a series is picked
    dicom = BASE_BYTES + 1000 * BYTES_PER_VOXEL + DICOM_BYTES
    assert analysis_bytes(1000, files=1) == dicom + BYTES_PER_FILE
    assert analysis_bytes(1000, files=5000) == dicom + 5000 * BYTES_PER_FILE


def test_available_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemFree:         1000 kB\nMemAvailable:    8000000 kB\n")
    assert available_bytes(meminfo) == 8000000 * 1024


def test_budget_comes_from_the_environment_first(monkeypatch):
    monkeypatch.setenv(ENV_LIMIT, "512")
    assert budget_bytes() == (512 * 2**20, ENV_LIMIT)
    monkeypatch.delenv(ENV_LIMIT)
    budget, basis = budget_bytes()
    available = available_bytes()
    assert budget is not None and available is not None
    assert budget == pytest.approx(AVAILABLE_SHARE * available, rel=0.05)  # memory moves between the two reads
    assert ENV_LIMIT in basis


@pytest.mark.parametrize("value", ["lots", "-5", "0"])
def test_a_bad_limit_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(ENV_LIMIT, value)
    with pytest.raises(InputError, match=ENV_LIMIT):
        budget_bytes()


def test_the_note_lumbar_info_gives_says_whether_an_analysis_would_fit(monkeypatch):
    from lumbar.resources import memory_note

    monkeypatch.setenv(ENV_LIMIT, "1000")
    assert memory_note([(13, 256, 320)]) == "about 826 MiB of the 1,000 MiB allowed: fits (LUMBAR_MAX_MEMORY_MB)"
    assert memory_note([(13, 256, 320)], files=13) == (
        "about 1,019 MiB of the 1,000 MiB allowed: would be refused (LUMBAR_MAX_MEMORY_MB)"
    )
    monkeypatch.setattr("lumbar.resources.available_bytes", lambda: None)
    monkeypatch.delenv(ENV_LIMIT)
    assert memory_note([(13, 256, 320)]) == "about 826 MiB (this system does not report its memory)"
    monkeypatch.setenv(ENV_LIMIT, "lots")  # a bad limit refuses an analysis, not a reading
    assert memory_note([(13, 256, 320)]) == f"about 826 MiB; {ENV_LIMIT}='lots' is not a number of megabytes"


def test_lumbar_info_counts_every_dicom_file_read_as_the_analysis_does(monkeypatch, tmp_path):
    """A folder's other series add their files' headers to the estimate: info states the analysis's own figure."""
    from lumbar.io.dicom_write import write_dicom_series
    from lumbar.phantom import make_phantom

    folder = tmp_path / "study"
    write_dicom_series(make_phantom().image, folder / "t2", series_description="SAG T2")
    decoy = make_phantom(shape=(200, 16, 16), spacing_mm=(1.0, 10.0, 10.0)).image
    write_dicom_series(decoy, folder / "localiser", series_description="SAG localiser")
    monkeypatch.setenv(ENV_LIMIT, "100000")
    result = CliRunner().invoke(app, ["info", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    need = analysis_bytes(13 * 256 * 320, files=13 + 200) / 2**20  # 3 MiB above the T2 series alone
    assert json.loads(result.output)["memory_to_analyse"].startswith(f"about {need:,.0f} MiB of the 100,000 MiB")


def test_refusal_names_the_source_the_need_and_the_bound(monkeypatch):
    monkeypatch.setenv(ENV_LIMIT, "1000")
    check_memory([(13, 256, 320)], "small.nii")  # about 0.8 GiB: fits
    with pytest.raises(InputError) as caught:
        check_memory([(512, 512, 400), (13, 256, 320)], "big.nii")  # several series count together
    message = str(caught.value)
    assert message.startswith("big.nii: analysing 105,922,560 voxels needs about 3.3 GiB")
    assert "1.0 GiB allowed" in message and ENV_LIMIT in message and "\n" not in message
    with pytest.raises(
        InputError, match=r"^dicom: analysing 1,000 voxels from 20,000 DICOM files needs about 1\.3 GiB"
    ):
        check_memory([(10, 10, 10)], "dicom", files=20_000)  # the headers alone outgrow the bound


def test_a_dicom_folder_too_large_is_refused_before_a_pixel_is_decoded(monkeypatch, tmp_path):
    """The series' size comes from its headers: an analysis is refused before any pixel data is read, naming the
    folder and its files. Reading alone (``lumbar info``) is no analysis and is not refused; within the bound the same
    folder is segmented."""
    from lumbar.io import dicom
    from lumbar.io.dicom_write import write_dicom_series
    from lumbar.phantom import make_phantom

    folder = tmp_path / "series"
    write_dicom_series(make_phantom().image, folder, series_description="SAG T2")
    decoded = []
    real_decode = dicom.decode
    monkeypatch.setattr(dicom, "decode", lambda path: decoded.append(path) or real_decode(path))
    monkeypatch.setenv(ENV_LIMIT, "650")
    out = tmp_path / "out"
    for command in ("analyze", "segment"):
        result = CliRunner().invoke(app, [command, str(folder), "-o", str(out)])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert f"{folder}: analysing 1,064,960 voxels from 13 DICOM files" in lines[0], result.output
    assert not decoded and not out.exists()
    result = CliRunner().invoke(app, ["info", str(folder), "--json"])
    assert result.exit_code == 0 and len(decoded) == 13, result.output
    # reading is not refused, and says what analysing would need against what is allowed
    assert json.loads(result.output)["memory_to_analyse"] == (
        "about 1,019 MiB of the 650 MiB allowed: would be refused (LUMBAR_MAX_MEMORY_MB)"
    )
    monkeypatch.delenv(ENV_LIMIT)
    result = CliRunner().invoke(app, ["segment", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(decoded) == 26  # the same folder within the bound is decoded and segmented


def test_cli_refuses_a_volume_over_the_bound_before_writing(monkeypatch, tmp_path):
    path = tmp_path / "volume.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((64, 256, 256), np.int16), np.eye(4)), path)
    out = tmp_path / "out"
    monkeypatch.setenv(ENV_LIMIT, "650")  # the volume needs about 904 MiB (4.2 M voxels x 26 B + 800 MiB)
    for command in ("analyze", "segment"):
        result = CliRunner().invoke(app, [command, str(path), "-o", str(out), "--modality", "MR"])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "volume.nii.gz" in lines[0] and "GiB of memory" in lines[0], result.output
        assert not any(out.rglob("*.json")) and not any(out.rglob("*.nii*"))


def test_a_volume_too_large_is_refused_from_its_header_before_decoding(monkeypatch, tmp_path):
    """The header's grid is enough: a file whose voxels were never all written (cut short) is refused for its size,
    which proves that no voxel was decoded first."""
    full = tmp_path / "full.nii"
    nib.save(nib.Nifti1Image(np.zeros((64, 256, 256), np.int16), np.eye(4)), full)
    cut = tmp_path / "cut.nii"
    cut.write_bytes(full.read_bytes()[:4096])
    monkeypatch.setenv(ENV_LIMIT, "650")
    result = CliRunner().invoke(app, ["analyze", str(cut), "-o", str(tmp_path / "out"), "--modality", "MR"])
    assert result.exit_code == 2 and "GiB of memory" in result.output, result.output
    monkeypatch.delenv(ENV_LIMIT)
    result = CliRunner().invoke(app, ["analyze", str(cut), "-o", str(tmp_path / "out"), "--modality", "MR"])
    assert result.exit_code == 2 and "GiB of memory" not in result.output  # within bounds, the cut is what's wrong


def test_series_of_one_patient_count_together_before_each_is_decoded(monkeypatch, tmp_path):
    """--same-patient holds every series at once: a second volume that would not fit beside the first is refused
    from its header (this one cut short, so a decoded file would fail otherwise), naming both; either alone fits."""
    first, full, cut = tmp_path / "t1.nii", tmp_path / "full.nii", tmp_path / "t2.nii"
    for path in (first, full):
        nib.save(nib.Nifti1Image(np.zeros((64, 256, 256), np.int16), np.eye(4)), path)
    cut.write_bytes(full.read_bytes()[:4096])
    monkeypatch.setenv(ENV_LIMIT, "950")  # one volume needs about 909 MiB, two 1,018 MiB
    check_memory([(64, 256, 256)], "one")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyze", str(first), str(cut), "--same-patient", "-o", str(out)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {first}, {cut}: analysing 8,388,608 voxels needs about 1.0 GiB"), result.output
    assert not out.exists()


def test_a_study_folder_is_refused_before_the_series_that_would_not_fit_is_decoded(monkeypatch, tmp_path):
    """A DICOM study folder's series are decoded one after another: the first (13 files) fits and is decoded, the
    second is refused from its headers beside it, before any of its pixels are read."""
    from lumbar.io import dicom
    from lumbar.io.dicom_write import write_dicom_series
    from lumbar.phantom import make_phantom

    folder = tmp_path / "study"
    image = make_phantom().image
    write_dicom_series(image, folder / "a", series_description="SAG T2")
    write_dicom_series(image, folder / "b", series_description="SAG T1")
    decoded = []
    real_decode = dicom.decode
    monkeypatch.setattr(dicom, "decode", lambda path: decoded.append(path) or real_decode(path))
    monkeypatch.setenv(ENV_LIMIT, "1035")  # one series with 26 files' headers about 1,019 MiB, two 1,046 MiB
    result = CliRunner().invoke(app, ["analyze", str(folder), "--same-patient", "-o", str(tmp_path / "out")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {folder}: analysing 2,129,920 voxels from 26 DICOM files"), result.output
    assert len(decoded) == 13 and len({p.parent for p in decoded}) == 1
