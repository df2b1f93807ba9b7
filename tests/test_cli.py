"""The command line as a user meets it."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lumbar import __version__
from lumbar.cli import app
from lumbar.io.write import classes_to_spider, write_nifti

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_info_describes_a_volume(tmp_path, phantom):
    write_nifti(phantom.image.array, phantom.image, tmp_path / "scan.nii.gz")
    result = runner.invoke(app, ["info", str(tmp_path / "scan.nii.gz"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["shape"] == list(phantom.image.shape) and info["orientation"] == "RAS" and info["modality"] == "MR"


def _png_folder(tmp_path, phantom):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    slices = phantom.image.sagittal_slices()
    truth = classes_to_spider(phantom.image.with_array(phantom.semantic()).sagittal_slices())
    for k in (2, 3, 4):
        Image.fromarray(np.clip(slices[k] / np.percentile(slices[k], 99.5) * 255, 0, 255).astype(np.uint8)).save(
            images / f"9_t2_slice{k}.png"
        )
        Image.fromarray(truth[k]).save(masks / f"9_t2_slice{k}.png")
    return images, masks


def test_segment_a_folder_of_png_slices(tmp_path, phantom):
    images, _ = _png_folder(tmp_path, phantom)
    result = runner.invoke(app, ["segment", str(images), "-o", str(tmp_path / "out"), "--spacing", "1.0"])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert written == sorted(p.name for p in images.glob("*.png"))


def test_evaluate_segmentation_writes_json(tmp_path, phantom):
    images, masks = _png_folder(tmp_path, phantom)
    result = runner.invoke(
        app,
        [
            "evaluate",
            "segmentation",
            "--images",
            str(images),
            "--masks",
            str(masks),
            "--spacing",
            "1.0",
            "--json",
            str(tmp_path / "eval.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["summary"]["n_images"] == 3 and report["summary"]["units"] == "mm"
    assert report["summary"]["patients_seen_in_training"] == [] and "in-sample" not in result.output  # phantoms
    assert set(report["summary"]["disc"]) == {"dice", "hd95", "assd", "precision", "recall"}
    rows = [r["disc"] for r in report["images"]]
    overlap = sum(r["overlap_px"] for r in rows)
    assert report["summary"]["disc"]["precision"] == overlap / sum(r["predicted_px"] for r in rows)
    assert report["summary"]["disc"]["recall"] == overlap / sum(r["truth_px"] for r in rows)
    assert report["summary"]["discs"]["truth"] >= 3 * 5
    assert report["summary"]["slices_lowest_disc_misnamed_unflagged"] == 0  # the phantom's names are right


def test_only_misnamed_slices_without_a_flag_count_as_silent():
    from lumbar.evaluate.segmentation import misnamed_unflagged

    rows = [
        {"lowest_disc_named_l5s1": False, "flags": []},  # silent: counted
        {"lowest_disc_named_l5s1": False, "flags": ["the lowest disc found does not look like L5/S1"]},
        {"lowest_disc_named_l5s1": True, "flags": []},
        {"lowest_disc_named_l5s1": None, "flags": []},  # no reference disc on the slice
        {"lowest_disc_named_l5s1": False, "flags": []},
    ]
    assert misnamed_unflagged(rows) == 2 and misnamed_unflagged([]) == 0


def test_demo_writes_a_study_and_results(tmp_path):
    result = runner.invoke(app, ["demo", "-o", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo" / "study" / "dicom").is_dir()
    results = tmp_path / "demo" / "results" / "dicom"
    findings = json.loads((results / "findings.json").read_text())
    # The demo's phantom spans T11 (cut by the top edge) to the sacrum: seven discs, named from L5/S1 up.
    assert [d["level"] for d in findings["discs"]] == ["L5/S1", "L4/L5", "L3/L4", "L2/L3", "L1/L2", "T12/L1", "T11/T12"]
    assert "discs named right" in result.output and "7/7" in result.output
    assert (results / "segmentation_seg.dcm").is_file()
    assert (results / "report.html").is_file() and (results / "report.pdf").is_file()
    assert findings["summary"] == [] and findings["summary_withheld"].startswith("a synthetic phantom")


def test_one_call_python_api(tmp_path, phantom):
    import lumbar

    write_nifti(phantom.image.array, phantom.image, tmp_path / "scan.nii.gz")
    image = lumbar.load(tmp_path / "scan.nii.gz")
    assert image.shape == phantom.image.shape
    result = lumbar.segment(tmp_path / "scan.nii.gz", tmp_path / "out")
    assert result.levels.discs and (tmp_path / "out" / "scan_levels.json").is_file()


def test_a_batch_goes_on_past_a_bad_study_and_keeps_names_apart(tmp_path, phantom):
    import SimpleITK as sitk

    folder = tmp_path / "batch"
    folder.mkdir()
    write_nifti(phantom.image.array, phantom.image, folder / "scan.nii.gz")
    sitk.WriteImage(sitk.ReadImage(str(folder / "scan.nii.gz")), str(folder / "scan.mha"))
    (folder / "broken.nii.gz").write_bytes(b"not an image")
    result = runner.invoke(app, ["segment", str(folder), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "broken.nii.gz" in result.stderr and "1 of 3 studies failed" in result.stderr
    assert (tmp_path / "out" / "scan_seg.nii.gz").is_file() and (tmp_path / "out" / "scan_nii_gz_seg.nii.gz").is_file()


def test_info_describes_a_cine_as_frames_over_time(tmp_path):
    frames = []
    for k in range(5):
        frame = np.zeros((40, 48), np.uint8)
        frame[10:20, 5 + 6 * k : 15 + 6 * k] = 255
        frames.append(Image.fromarray(frame))
    frames[0].save(tmp_path / "run.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = CliRunner().invoke(app, ["info", str(tmp_path / "run.gif"), "--json", "--modality", "RF"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert described["frames"] == 5 and described["frame_shape"] == [40, 48] and described["modality"] == "RF"
    assert described["frame_rate_hz"] == pytest.approx(10.0) and described["duration_s"] == pytest.approx(0.4)


@pytest.mark.parametrize("channels", ["16,32,64", "16,32,x,128,256", "0,32,64,128,256", ""])
def test_train_segmentation_refuses_bad_channels_in_one_line(tmp_path, phantom, channels):
    images, _ = _png_folder(tmp_path, phantom)
    result = runner.invoke(
        app,
        ["train", "segmentation", "--data", str(images.parent), "-o", str(tmp_path / "run"), "--channels", channels],
    )
    assert result.exit_code == 2, result.output
    assert "--channels" in result.output and "five positive integers" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


@pytest.mark.parametrize("channels", ["16,32,64,128,256", "16,32,x,128", "16,0,64,128"])
def test_train_radiograph_corners_refuses_bad_channels_before_reading_anything(tmp_path, channels):
    """The corner network's U-Net has four levels: its widths are checked before the data folder is."""
    result = runner.invoke(
        app,
        [
            "train",
            "radiograph-corners",
            "--data",
            str(tmp_path / "none"),
            "-o",
            str(tmp_path / "run"),
            "--channels",
            channels,
        ],
    )
    assert result.exit_code == 2, result.output
    assert "--channels" in result.output and "four positive integers" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()
