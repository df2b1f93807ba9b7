"""`lumbar analyze`: findings that follow the shipped schema, and a self-contained report, for every input type."""

import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lumbar.analysis import analyze_study
from lumbar.cli import app
from lumbar.findings import Disc, DiscMeasurements, Findings, InputDescription, Stenosis, Vertebra, VertebraMeasurements, findings_schema
from lumbar.io.dicom_write import write_dicom_series
from lumbar.io.write import write_nifti
from lumbar.report.html import summary_sentences

SHIPPED_SCHEMA = Path(__file__).resolve().parents[1] / "lumbar" / "findings.schema.json"


def test_shipped_schema_is_the_models_schema():
    assert json.loads(SHIPPED_SCHEMA.read_text()) == json.loads(json.dumps(findings_schema()))


def test_schema_command_prints_it():
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0 and json.loads(result.output)["title"] == "lumbar findings"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, phantom):
    root = tmp_path_factory.mktemp("inputs")
    write_nifti(phantom.image.array, phantom.image, root / "scan.nii.gz")
    write_dicom_series(phantom.image, root / "dicom")
    mid = phantom.image.sagittal_slices()[3]
    Image.fromarray(np.clip(mid / np.percentile(mid, 99.5) * 255, 0, 255).astype(np.uint8)).save(root / "slice.png")
    return root


@pytest.mark.parametrize("name", ["scan.nii.gz", "dicom", "slice.png"])
def test_analyze_writes_valid_findings_and_reports(tmp_path, inputs, name):
    findings = analyze_study(inputs / name, tmp_path, spacing_mm=1.0 if name.endswith(".png") else None)
    folder = tmp_path / name.split(".")[0]
    data = json.loads((folder / "findings.json").read_text())
    jsonschema.validate(data, json.loads(SHIPPED_SCHEMA.read_text()))
    assert data["discs"] and all(d["level"] for d in data["discs"])
    html = (folder / "report.html").read_text()
    assert "data:image/png;base64," in html and not re.search(r'src="(?!data:)', html)  # self-contained
    assert (folder / "report.pdf").read_bytes()[:4] == b"%PDF"
    assert findings.outputs["report_html"] == "report.html"
    if name == "dicom":
        assert (folder / "segmentation_seg.dcm").is_file()


def test_png_without_spacing_reports_pixels_and_asks_for_review(tmp_path, inputs):
    findings = analyze_study(inputs / "slice.png", tmp_path, report=False)
    assert findings.units == "pixels"
    assert any("spacing unknown" in reason for reason in findings.needs_review)
    assert all(d.stenosis is None or d.stenosis.grade == "unknown" for d in findings.discs)


def test_ct_input_is_flagged_as_unsupported_sequence(tmp_path, phantom):
    from lumbar.phantom import make_phantom

    ct = make_phantom(shape=(3, 320, 288), contrast="CT")
    write_nifti(ct.image.array, ct.image, tmp_path / "ct.nii.gz")
    findings = analyze_study(tmp_path / "ct.nii.gz", tmp_path / "out", report=False)
    assert any("sequence not supported" in reason for reason in findings.needs_review)


def test_analyze_command_on_a_folder_of_slices(tmp_path, inputs):
    folder = tmp_path / "slices"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes((inputs / "slice.png").read_bytes())
    result = CliRunner().invoke(app, ["analyze", str(folder), "-o", str(tmp_path / "out"), "--spacing", "1", "--no-report"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a" / "findings.json").is_file() and (tmp_path / "out" / "b" / "findings.json").is_file()


def _findings(discs, vertebrae=()):
    return Findings(lumbar_version="t", input=InputDescription(source="x", modality="MR", shape=[1, 2, 3], spacing_mm=[1, 1, 1],
                                                              orientation="RAS", source_orientation="RAS"),
                    models={}, units="mm", discs=list(discs), vertebrae=list(vertebrae))


def _disc(level, middle=10.0, canal=15.0, slip=0.0, grade="normal"):
    m = DiscMeasurements(height_anterior_mm=middle, height_middle_mm=middle, height_posterior_mm=middle, height_index=0.4,
                         canal_ap_mm=canal, slip_mm=slip, slip_percent=slip / 36 * 100,
                         meyerding_grade=0 if abs(slip) < 1.8 else 1, angle_deg=5.0)
    return Disc(level=level, label=1, measurements=m, stenosis=Stenosis(grade=grade, basis=f"AP diameter {canal} mm", thresholds=""))


def test_summary_names_each_abnormal_level_in_plain_language():
    discs = [_disc("L1/L2"), _disc("L2/L3"), _disc("L3/L4", slip=6.0), _disc("L4/L5", middle=5.0, canal=8.5, grade="moderate"), _disc("L5/S1")]
    wedge = VertebraMeasurements(height_anterior_mm=18, height_middle_mm=24, height_posterior_mm=27, depth_mm=36, wedge_ratio=0.67,
                                 biconcave_ratio=0.9, genant_grade=2, upper_endplate_deg=0)
    sentences = summary_sentences(_findings(discs, [Vertebra(level="L1", label=20, measurements=wedge)]))
    assert len(sentences) == 3
    assert sentences[0].startswith("L3/L4: anterolisthesis of L3 on L4 by 6.0 mm")
    assert "moderate central canal stenosis" in sentences[1] and "disc narrowed" in sentences[1]
    assert sentences[2].startswith("L1: moderate vertebral height loss (Genant grade 2")
    assert summary_sentences(_findings([_disc("L4/L5")])) == []


def test_summary_lists_a_grade_only_where_the_model_holds_it_likely():
    from lumbar.findings import Grade

    likely, unlikely = _disc("L4/L5"), _disc("L5/S1")
    likely.grades = {"herniation": Grade(value=1, probability=0.8)}
    unlikely.grades = {"spondylolisthesis": Grade(value=1, probability=0.55)}  # a coin flip, called by a low threshold
    sentences = summary_sentences(_findings([likely, unlikely]))
    assert sentences == ["L4/L5: herniation 1 (80% confidence)."]


def test_shipped_grading_model_fills_the_contract(tmp_path, inputs):
    """Every disc gets all eight grades: values in range, the probability of the value given, per-class
    probabilities for Pfirrmann and Modic that sum to one and whose largest is the value."""
    from lumbar.models.registry import available_models

    if "grading" not in available_models():
        pytest.skip("no grading model shipped")
    findings = analyze_study(inputs / "scan.nii.gz", tmp_path)
    assert findings.models["grading"].startswith("grading@")
    for disc in findings.discs:
        assert set(disc.grades) == {"pfirrmann", "modic", "herniation", "bulging", "narrowing", "endplate_upper", "endplate_lower",
                                    "spondylolisthesis"}
        for name, grade in disc.grades.items():
            assert 0.0 <= grade.probability <= 1.0
            if name in ("pfirrmann", "modic"):
                probs = {int(k): v for k, v in grade.probabilities.items()}
                assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
                assert grade.value == max(probs, key=probs.get) and grade.probability == pytest.approx(probs[grade.value])
            else:
                assert grade.value in (0, 1)
    html = (tmp_path / "scan" / "report.html").read_text()
    assert "Disc grades" in html and "cross-validation" in html and "Evidence for the grades" in html


def test_same_patient_series_are_graded_together(tmp_path, inputs, phantom):
    """Two series of one patient: every disc both show gets one set of grades, from both; a bad series
    stops the patient before anything is written."""
    other = phantom.image.sagittal_slices()[4]
    Image.fromarray(np.clip(other / np.percentile(other, 99.5) * 255, 0, 255).astype(np.uint8)).save(tmp_path / "t1.png")
    args = ["analyze", str(inputs / "slice.png"), str(tmp_path / "t1.png"), "-o", str(tmp_path / "out"), "--spacing", "1",
            "--no-report", "--same-patient"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    first, second = (json.loads((tmp_path / "out" / stem / "findings.json").read_text()) for stem in ("slice", "t1"))
    assert len(first["graded_from"]) == 2 and first["graded_from"] == second["graded_from"]
    shared_levels = {d["level"] for d in first["discs"]} & {d["level"] for d in second["discs"]}
    assert shared_levels
    grades = [{d["level"]: d["grades"] for d in f["discs"] if d["level"] in shared_levels} for f in (first, second)]
    assert grades[0] == grades[1] and all(g for g in grades[0].values())

    (tmp_path / "broken.png").write_bytes(b"not a png")
    result = CliRunner().invoke(app, args[:3] + [str(tmp_path / "broken.png"), "-o", str(tmp_path / "out2"), "--same-patient"])
    assert result.exit_code == 2 and not (tmp_path / "out2").exists()


def test_fused_probabilities_are_the_mean_over_series():
    from lumbar.evaluate.grading import fuse_same_disc
    from lumbar.tasks.grading import fuse_probabilities, grades_from

    t1 = {"pfirrmann": np.array([0.1, 0.2, 0.5, 0.1, 0.1]), "herniation": np.array(0.2)}
    t2 = {"pfirrmann": np.array([0.1, 0.6, 0.1, 0.1, 0.1]), "herniation": np.array(0.6)}
    fused = fuse_probabilities([t1, t2])
    assert np.allclose(fused["pfirrmann"], [0.1, 0.4, 0.3, 0.1, 0.1]) and np.isclose(fused["herniation"], 0.4)
    rows = fuse_same_disc({"herniation": np.array([0.2, 0.6, 0.9])}, ["1 L4/L5", "1 L4/L5", "2 L4/L5"])
    assert np.allclose(rows["herniation"], [0.4, 0.4, 0.9])
    from lumbar.grades import BINARY_GRADES

    probs = {**fused, "modic": np.array([0.7, 0.1, 0.1, 0.1]), **{g: np.array(0.1) for g in BINARY_GRADES if g != "herniation"}}
    grades = grades_from(probs, {"herniation": 0.35})
    assert grades["pfirrmann"]["value"] == 2 and np.isclose(grades["pfirrmann"]["probability"], 0.4)
    assert grades["herniation"] == {"value": 1, "probability": 0.4}
