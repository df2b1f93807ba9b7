"""`lumbar analyze`: findings that follow the shipped schema, and a self-contained report, for every input type."""

import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from markupsafe import escape
from PIL import Image
from typer.testing import CliRunner

from lumbar.api import analyze
from lumbar.cli import app
from lumbar.errors import InputError
from lumbar.findings import (
    Findings,
    Grade,
    InputDescription,
    findings_schema,
)
from lumbar.io.dicom_write import write_dicom_series
from lumbar.io.write import write_nifti
from lumbar.labels import LUMBAR_DISCS
from lumbar.tasks.stenosis import ABOVE_LUMBAR

SHIPPED_SCHEMA = Path(__file__).resolve().parents[1] / "lumbar" / "findings.schema.json"


def test_shipped_schema_is_the_models_schema():
    assert json.loads(SHIPPED_SCHEMA.read_text()) == json.loads(json.dumps(findings_schema()))


def test_not_measurable_is_null_whatever_float_type_the_nan_comes_in():
    """NaN (not measurable) becomes None and null in JSON: a numpy float32's was kept as NaN (it is no Python
    float), and findings.json would have held NaN, which JSON does not allow."""
    from lumbar.findings import DiscMeasurements, Findings

    nan = {"python": float("nan"), "float64": np.float64("nan"), "float32": np.float32("nan")}
    fields = dict.fromkeys(DiscMeasurements.model_fields, None)
    measured = DiscMeasurements(**{**fields, "height_anterior_mm": nan["python"], "height_middle_mm": nan["float32"]})
    assert measured.height_anterior_mm is None and measured.height_middle_mm is None
    assert DiscMeasurements(**{**fields, "canal_ap_mm": np.float32(3.5)}).canal_ap_mm == 3.5  # a number is kept
    for value in nan.values():  # the study-level measurements (lordosis, narrowest canal) take the same rule
        assert Findings._nan_to_none(value) is None


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
    findings = analyze(inputs / name, tmp_path, spacing_mm=1.0 if name.endswith(".png") else None).findings
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
    findings = analyze(inputs / "slice.png").findings
    assert findings.units == "pixels" and not findings.outputs
    assert any("spacing unknown" in reason for reason in findings.needs_review)
    assert all(d.stenosis is None or d.stenosis.grade == "unknown" for d in findings.discs)


def test_a_ct_not_in_hounsfield_units_is_refused_by_the_router_unless_forced(tmp_path, phantom):
    from lumbar.phantom import make_phantom
    from lumbar.pipelines import UnsupportedImage

    ct = make_phantom(shape=(3, 320, 288), contrast="CT")
    eight_bit = (np.clip((ct.image.array + 1000) / 8, 0, 255) + 256).astype(np.int16)  # 256..511: no air, no fat
    write_nifti(eight_bit, ct.image, tmp_path / "ct.nii.gz")
    with pytest.raises(UnsupportedImage, match="not in Hounsfield units"):
        analyze(tmp_path / "ct.nii.gz", tmp_path / "out", modality="CT")
    assert not (tmp_path / "out").exists()
    args = ["analyze", str(tmp_path / "ct.nii.gz"), "--modality", "CT", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and "--force" in result.output
    assert not (tmp_path / "out").exists()
    forced = analyze(tmp_path / "ct.nii.gz", force=True, modality="CT").findings
    assert any(reason.startswith("forced: CT values") for reason in forced.needs_review)


def test_an_axial_series_is_refused_with_the_fix(tmp_path, phantom):
    import nibabel as nib

    axial = np.zeros((64, 64, 8), np.float32)  # 0.8 mm in plane, 4 mm slices along the head-feet axis
    axial[20:40, 20:40] = 100
    nib.save(nib.Nifti1Image(axial, np.diag([0.8, 0.8, 4.0, 1.0])), tmp_path / "axial.nii.gz")
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "axial.nii.gz"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "axial slices" in result.output and "sagittal" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_analyze_command_on_a_folder_of_slices(tmp_path, inputs):
    folder = tmp_path / "slices"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes((inputs / "slice.png").read_bytes())
    result = CliRunner().invoke(
        app, ["analyze", str(folder), "-o", str(tmp_path / "out"), "--spacing", "1", "--no-report"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a" / "findings.json").is_file() and (tmp_path / "out" / "b" / "findings.json").is_file()


def _findings(discs, vertebrae=()):
    return Findings(
        lumbar_version="t",
        input=InputDescription(
            source="x",
            modality="MR",
            shape=[1, 2, 3],
            spacing_mm=[1, 1, 1],
            orientation="RAS",
            source_orientation="RAS",
        ),
        models={},
        units="mm",
        discs=list(discs),
        vertebrae=list(vertebrae),
    )


def test_shipped_grading_model_fills_the_contract(tmp_path, inputs):
    """Every disc gets all eight grades: values in range, the probability of the value given, per-class
    probabilities for Pfirrmann and Modic that sum to one and whose largest is the value."""
    from lumbar.models.registry import available_models

    if "grading" not in available_models():
        pytest.skip("no grading model shipped")
    findings = analyze(inputs / "scan.nii.gz", tmp_path).findings
    assert findings.models["grading"].startswith("grading@")
    for disc in findings.discs:
        assert set(disc.grades) == {
            "pfirrmann",
            "modic",
            "herniation",
            "bulging",
            "narrowing",
            "endplate_upper",
            "endplate_lower",
            "spondylolisthesis",
        }
        for name, grade in disc.grades.items():
            assert 0.0 <= grade.probability <= 1.0
            if name in ("pfirrmann", "modic"):
                probs = {int(k): v for k, v in grade.probabilities.items()}
                assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
                assert grade.value == max(probs, key=probs.get) and grade.probability == pytest.approx(
                    probs[grade.value]
                )
            else:
                assert grade.value in (0, 1)
                p1 = grade.probability if grade.value else 1 - grade.probability
                assert (p1 >= grade.threshold) == (grade.value == 1)
    html = (tmp_path / "scan" / "report.html").read_text()
    assert "Disc grades" in html and "cross-validation" in html and "Evidence for the grades" in html


def test_report_marks_a_finding_called_below_even_odds(tmp_path, inputs):
    """A binary grade called present at 7% (a rare finding's low threshold) reads "1?", not a red "1"."""
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    grades = {
        "herniation": Grade(value=1, probability=0.07),
        "bulging": Grade(value=1, probability=0.8),
        "narrowing": Grade(value=0, probability=0.9),
    }
    discs = [result.findings.discs[0].model_copy(update={"grades": grades}), *result.findings.discs[1:]]
    html = render_html(result.findings.model_copy(update={"discs": discs}), result.figures)
    assert re.search(r'class="unlikely">1\? <span class="p">\(7%\)', html)
    assert re.search(r'class="abnormal">1 <span class="p">\(80%\)', html)
    assert re.search(r'class="">0 <span class="p">\(90%\)', html)


def test_report_stars_a_call_that_holds_at_the_high_specificity_point(tmp_path, inputs):
    """Both operating points are in findings.json; the table stars a call made at the high-specificity one and its
    caption lists both thresholds, so a reader knows which one each value uses."""
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    high = {"threshold_high_specificity": 0.8, "specificity_high": 0.96}
    grades = {
        "bulging": Grade(value=1, probability=0.9, threshold=0.55, value_high_specificity=1, **high),
        "narrowing": Grade(value=1, probability=0.6, threshold=0.45, value_high_specificity=0, **high),
    }
    discs = [result.findings.discs[0].model_copy(update={"grades": grades}), *result.findings.discs[1:]]
    html = render_html(result.findings.model_copy(update={"discs": discs}), result.figures)
    assert re.search(r'class="abnormal">1✱ <span class="p">\(90%\)', html)
    graded = next(d.stenosis for d in result.findings.discs if d.stenosis and d.stenosis.grade != "unknown")
    assert f"Stenosis thresholds: {escape(graded.thresholds)}" in html
    above = [d.level for d in result.findings.discs if d.level not in LUMBAR_DISCS]  # the phantom reaches T11
    assert above and f"Stenosis not graded at {', '.join(above)}: {escape(ABOVE_LUMBAR)}." in html
    assert re.search(r'class="abnormal">1 <span class="p">\(60%\)', html)
    assert "bulging 55% / 80% (specificity 96%)" in html and "narrowing 45% / 80%" in html
    # how the names were counted and what the slip reads, under the disc table
    assert "five lumbar vertebrae assumed: a transitional vertebra shifts every name" in " ".join(html.split())
    # an evidence map's caption is marked as the table marks its grade
    from lumbar.figures import Evidence
    from lumbar.report.html import caption, fmt

    picture = np.zeros((4, 4, 3), np.uint8)
    level = discs[0].level
    assert caption(Evidence(level, "bulging", 1, 0.9, picture), grades["bulging"]) == f"{level} bulging 1✱ (90%)"
    assert caption(Evidence(level, "narrowing", 1, 0.6, picture), grades["narrowing"]) == f"{level} narrowing 1 (60%)"
    assert fmt(-0.04) == "0.0" and fmt(-0.4, "mm", 0) == "0 mm" and fmt(-0.06) == "-0.1"  # never "-0.0"
    assert "extended as lines, meet the disc's mid-plane (+ forward), in mm" in " ".join(html.split())


def test_same_patient_series_are_graded_together(tmp_path, inputs, monkeypatch):
    """Two series of one patient: every disc both show gets one set of grades, from both."""
    from lumbar.models.registry import available_models

    if "grading" not in available_models():
        pytest.skip("no grading model shipped")
    from lumbar.demo import demo_phantom
    from lumbar.pipelines import mr_sagittal

    # The lumbosacral check, learnt from real slices, misreads this drawn phantom's junction in one of the two
    # contrasts (its card says so), and the phantom's sacrum, a drawn block, is segmented as a whole body below
    # L5/S1 (real ones are not: bench/missed_lowest.py); this test is about fusion, so both checks are left out of it.
    monkeypatch.setattr(mr_sagittal, "lumbosacral_model", lambda: None)
    monkeypatch.setattr(mr_sagittal, "body_below_flags", lambda *args: [])

    # The demo's phantom as a volume, whose levels the model names right and unflagged (fusion joins discs by
    # name: a flagged naming is graded alone, see test_fusion_joins_discs_by_level_and_leaves_flagged_series_alone).
    # The second series is the first under a gamma of 0.9: a stronger change (1.1, 0.8) makes the network outline a
    # blob below L5/S1, flagged as a possible sacral remnant, and that series would be graded alone.
    image = demo_phantom().image
    write_nifti(image.array, image, tmp_path / "slice.nii.gz")
    write_nifti(image.array.max() * (image.array / image.array.max()) ** 0.9, image, tmp_path / "t1.nii.gz")
    result = CliRunner().invoke(
        app,
        [
            "analyze",
            str(tmp_path / "slice.nii.gz"),
            str(tmp_path / "t1.nii.gz"),
            "-o",
            str(tmp_path / "out"),
            "--same-patient",
        ],
    )
    assert result.exit_code == 0, result.output
    first, second = (json.loads((tmp_path / "out" / stem / "findings.json").read_text()) for stem in ("slice", "t1"))
    both = {d["level"] for d in first["discs"]} & {d["level"] for d in second["discs"]}
    assert len(both) >= 5
    for findings in (first, second):
        for disc in findings["discs"]:
            if disc["level"] in both:
                assert sorted(disc["graded_from"]) == ["slice.nii.gz", "t1.nii.gz"]  # named without their folders
    grades = [{d["level"]: d["grades"] for d in f["discs"] if d["level"] in both} for f in (first, second)]
    assert grades[0] == grades[1] and all(grades[0].values())
    assert "Graded together with the patient's other series" in (tmp_path / "out" / "t1" / "report.html").read_text()


def _rewrite(folder, **tags):
    import pydicom

    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(path)
        for tag, value in tags.items():
            setattr(ds, tag, value)
        ds.save_as(path)


def test_same_patient_takes_every_sagittal_series_of_a_dicom_study(tmp_path, phantom):
    """A study folder holding T1, T2 and an axial series: the two sagittal ones, named by series number;
    the axial one is left out by the router and named in the review reasons."""
    import pydicom

    from lumbar.io.study import read_study
    from lumbar.pipelines import refusal

    study = tmp_path / "study"
    for name, number in (("t2", 3), ("t1", 2), ("ax", 4)):
        write_dicom_series(phantom.image, study / name, series_description=f"{name.upper()} sag")
        _rewrite(study / name, SeriesNumber=number)
    for path in sorted((study / "ax").iterdir()):  # an axial series: slices stepping head to feet
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, -4.0 * int(ds.InstanceNumber)]
        ds.save_as(path)
    read = read_study([study], leave_out=refusal)
    assert [(image.series.description, name) for name, image in read.series] == [
        ("T1 sag", "study_s2"),
        ("T2 sag", "study_s3"),
    ]
    notes = read.notes
    assert len(notes) == 1 and "#4 AX sag" in notes[0] and "axial slices" in notes[0]

    axial_uid = pydicom.dcmread(next((study / "ax").iterdir())).SeriesInstanceUID
    assert axial_uid not in notes[0]  # no identifiers in review reasons
    assert {image.modality for image in read_study([study], modality="ct").images} == {"CT"}
    with pytest.raises(InputError, match="--modality"):
        read_study([study], modality="sonar")
    with pytest.raises(InputError, match="at least two series"):
        read_study([study / "t1"])
    _rewrite(study / "t1", PatientID="SOMEONE ELSE")
    with pytest.raises(InputError, match="different patients"):
        read_study([study])


def test_a_damaged_series_in_a_study_folder_is_left_out_not_the_study(tmp_path, phantom):
    """A series whose header is damaged (Rows without a value) is left out and named; the study's other series are
    read (a memory estimate over every series once read that header first and refused the whole folder)."""
    from lumbar.io.study import read_study

    study = tmp_path / "study"
    for name, number in (("t2", 3), ("t1", 2), ("bad", 5)):
        write_dicom_series(phantom.image, study / name, series_description=f"{name.upper()} sag")
        _rewrite(study / name, SeriesNumber=number)
    _rewrite(study / "bad", Rows=None)
    read = read_study([study])
    assert [name for name, _ in read.series] == ["study_s2", "study_s3"]
    assert len(read.notes) == 1 and "#5 BAD sag" in read.notes[0] and "damaged" in read.notes[0]


@pytest.mark.parametrize(
    "case, message",
    [
        ("broken series", "broken.png"),
        ("one series", "at least two"),
        ("same series twice", "twice"),
        ("--series", "--series"),
        ("folder of images", "not a folder of images"),
    ],
)
def test_same_patient_refuses_bad_input_before_writing_anything(tmp_path, inputs, case, message):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "slices").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "slices" / name).write_bytes((inputs / "slice.png").read_bytes())
    given = {
        "broken series": [inputs / "slice.png", tmp_path / "broken.png"],
        "one series": [inputs / "slice.png"],
        "same series twice": [inputs / "slice.png", inputs / "slice.png"],
        "--series": [inputs / "slice.png", inputs / "dicom"],
        "folder of images": [tmp_path / "slices"],
    }[case]
    extra = ["--series", "1"] if case == "--series" else []
    result = CliRunner().invoke(
        app, ["analyze", *map(str, given), "-o", str(tmp_path / "out"), "--spacing", "1", "--same-patient", *extra]
    )
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    assert len(result.output.strip().splitlines()) == 1 and message in result.output


def test_a_dicom_seg_that_cannot_be_written_is_a_review_reason(tmp_path, inputs, monkeypatch):
    import lumbar.io.dicom_write as dicom_write

    def refuse(*args, **kwargs):
        raise ValueError("no referenced instances")

    monkeypatch.setattr(dicom_write, "write_dicom_seg", refuse)
    findings = analyze(inputs / "dicom", tmp_path, report=False).findings
    assert any(reason.startswith("DICOM SEG not written") for reason in findings.needs_review)
    saved = json.loads((tmp_path / "dicom" / "findings.json").read_text())
    assert any(reason.startswith("DICOM SEG not written") for reason in saved["needs_review"])


def test_fusion_joins_discs_by_level_and_leaves_flagged_series_alone(monkeypatch):
    """Probabilities are averaged per level over the series that show it; a series whose level names are
    flagged is graded alone (joined by name, its discs could meet their neighbours), and says so."""
    from types import SimpleNamespace

    import lumbar.pipelines.mr_sagittal as mr_sagittal
    from lumbar.pipelines.mr_sagittal import SeriesGrading, fuse_patient_series, patient_gradings

    def study(source, **herniation):
        probs = {level: {"herniation": np.array(p)} for level, p in herniation.items()}
        return SeriesGrading(source, {}, probs, {level: [source] for level in probs})

    t1, t2 = study("t1", L4_L5=0.2, L5_S1=0.5), study("t2", L4_L5=0.6, L3_L4=0.3)
    fused = fuse_patient_series([t1, t2])
    assert np.isclose(fused[0].probabilities["L4_L5"]["herniation"], 0.4) and np.isclose(
        fused[1].probabilities["L4_L5"]["herniation"], 0.4
    )
    assert fused[0].probabilities["L5_S1"]["herniation"] == 0.5 and fused[1].probabilities["L3_L4"]["herniation"] == 0.3
    assert fused[0].graded_from == {"L4_L5": ["t1", "t2"], "L5_S1": ["t1"]}

    studies = {"a": study("a", L4_L5=0.2), "b": study("b", L4_L5=0.6), "c": study("c", L4_L5=0.9)}
    monkeypatch.setattr(mr_sagittal, "grade_series", lambda seg, model, source=None: studies[seg.name])
    results = [
        SimpleNamespace(name=n, levels=SimpleNamespace(flags=["small lowest disc"] if n == "c" else []), gate=())
        for n in "abc"
    ]
    graded, notes = patient_gradings(results, model=None)
    assert [np.round(g.probabilities["L4_L5"]["herniation"], 3) for g in graded] == [0.4, 0.4, 0.9]
    assert notes[:2] == [[], []] and "graded alone" in notes[2][0] and "review flag" in notes[2][0]
    graded, notes = patient_gradings(results[1:], model=None)  # one trusted series left: nothing to join it to
    assert [g.probabilities["L4_L5"]["herniation"] for g in graded] == [0.6, 0.9]
    assert "no other series" in notes[0][0] and "review flag" in notes[1][0]


def test_a_series_whose_summary_is_withheld_is_graded_alone_and_says_why(monkeypatch):
    """A series its quality gate withholds (an implausible body, say) stated nothing itself, but joined, its grades
    were averaged into its partner's and stated in that Summary (found in review: SPIDER 241's T1 Summary gained six
    statements from a T2 whose L1 was 0.5 times the others' size). It is graded alone; the other two join. Series
    whose Summaries are all withheld (a modality not stated, say) join each other."""
    from types import SimpleNamespace

    import lumbar.pipelines.mr_sagittal as mr_sagittal
    from lumbar.pipelines.mr_sagittal import SeriesGrading, patient_gradings

    def study(source, p):
        return SeriesGrading(source, {}, {"L4_L5": {"herniation": np.array(p)}}, {"L4_L5": [source]})

    studies = {"a": study("a", 0.2), "b": study("b", 0.6), "c": study("c", 0.9)}
    monkeypatch.setattr(mr_sagittal, "grade_series", lambda seg, model, source=None: studies[seg.name])
    gate = ("vertebra L1 is 0.5 times the size of the others: an implausible body",)
    segs = [SimpleNamespace(name=n, levels=SimpleNamespace(flags=[]), gate=gate if n == "c" else ()) for n in "abc"]
    graded, notes = patient_gradings(segs, model=None)
    assert [np.round(g.probabilities["L4_L5"]["herniation"], 3) for g in graded] == [0.4, 0.4, 0.9]
    assert graded[2].graded_from == {"L4_L5": ["c"]} and notes[:2] == [[], []]
    assert notes[2] == [
        f"graded alone, not together with the patient's other series: its own Summary is withheld ({gate[0]}), and "
        "the other series' Summaries take nothing from it"
    ]
    segs[0].gate = gate  # a and c both withheld: they join each other (their tables agree), b is graded alone
    graded, notes = patient_gradings(segs, model=None)
    assert [np.round(g.probabilities["L4_L5"]["herniation"], 3) for g in graded] == [0.55, 0.6, 0.55]
    alone = "graded alone, not together with the patient's other series: the Summaries of its other series are withheld"
    assert notes == [[], [alone], []]


def test_series_that_share_a_label_are_told_apart_where_they_are_graded_together():
    """Two series of one DICOM folder stating no number nor description share one label (the folder's): a T2 was
    taken for the T1 beside it (its Pfirrmann grades left out of the Summary) and the report said each series was
    graded alone. Where labels repeat, each takes its place among the patient's series too."""
    from lumbar.phantom import make_phantom
    from lumbar.pipelines.mr_sagittal import analyze_images, series_sources

    t2, t1 = make_phantom(seed=1).image, make_phantom(seed=2, contrast="T1").image
    t2.source = t1.source = "/data/dcm105"
    assert series_sources([t2, t1]) == ["dcm105 [1]", "dcm105 [2]"]  # named without their folders
    t1.source = "/data/other"
    assert series_sources([t2, t1]) == ["dcm105", "other"]
    t1.source = "/elsewhere/dcm105"  # one name in two folders: told apart too
    assert series_sources([t2, t1]) == ["dcm105 [1]", "dcm105 [2]"]
    t1.source = "/data/dcm105"
    results = analyze_images([t2, t1], same_patient=True)
    sources = {source for r in results for d in r.findings.discs for source in d.graded_from}
    assert sources == {"dcm105 [1]", "dcm105 [2]"}


def test_a_disc_cut_by_one_series_edge_is_graded_from_the_series_that_show_it_whole():
    """A disc whose outline reaches its slice's edge in one series (part of it, and of its crop, outside the image)
    takes its grades from the series that show it whole; where every view is cut, from all of them."""
    from types import SimpleNamespace

    from lumbar.pipelines.mr_sagittal import SeriesGrading, edge_cut_discs, fuse_patient_series
    from lumbar.tasks.levels import Level

    def study(source, cut=(), **herniation):
        probs = {level: {"herniation": np.array(p)} for level, p in herniation.items()}
        return SeriesGrading(source, {}, probs, {level: [source] for level in probs}, frozenset(cut))

    t1 = study("t1", cut=["T12_L1"], T12_L1=0.9, L1_L2=0.2, T11_T12=0.8)
    t2 = study("t2", T12_L1=0.1, L1_L2=0.4)
    t2_cut = study("t2", cut=["T11_T12"], T11_T12=0.4)
    fused = fuse_patient_series([t1, t2, t2_cut])
    assert [float(g.probabilities["T12_L1"]["herniation"]) for g in fused[:2]] == [0.1, 0.1]  # the whole view alone
    assert fused[0].graded_from["T12_L1"] == ["t2"] and fused[0].cut == frozenset({"T12_L1"})
    assert np.isclose(fused[0].probabilities["L1_L2"]["herniation"], 0.3)  # both whole: the mean
    assert fused[0].graded_from["T11_T12"] == ["t1"]  # whole in t1, cut in the other
    both_cut = fuse_patient_series([study("a", cut=["L1_L2"], L1_L2=0.2), study("b", cut=["L1_L2"], L1_L2=0.6)])
    assert np.isclose(both_cut[0].probabilities["L1_L2"]["herniation"], 0.4)  # nothing whole: every view counts
    assert both_cut[0].graded_from["L1_L2"] == both_cut[1].graded_from["L1_L2"] == ["a", "b"]
    # each series' own probabilities beside the mean, where the mean is of several
    assert both_cut[0].views["L1_L2"] == {"a": {"herniation": 0.2}, "b": {"herniation": 0.6}}
    assert "T11_T12" not in fused[0].views and set(fused[0].views["L1_L2"]) == {"t1", "t2"}

    instances = np.zeros((1, 20, 30), int)
    instances[0, 0:3, 10:20] = 101  # touches the top edge
    instances[0, 8:11, 10:20] = 102
    instances[0, 15:18, 22:30] = 103  # touches the right edge
    discs = [Level(name, label, "disc", (0.0, 0.0), 30) for name, label in (("a", 101), ("b", 102), ("c", 103))]
    seg = SimpleNamespace(mid_slice=0, levels=SimpleNamespace(instances=instances, discs=discs))
    assert edge_cut_discs(seg) == frozenset({"a", "c"})


def test_a_report_whose_cut_disc_was_graded_from_another_series_says_it_was_graded_together():
    """A disc cut in this series and graded from the patient's other series alone still makes the report say the
    grades come from the patient's series together, and name them."""
    from lumbar.phantom import make_phantom
    from lumbar.pipelines.mr_sagittal import analyze
    from lumbar.report.html import render_html

    result = analyze(make_phantom().image)
    own = result.findings.discs[0].graded_from
    assert own and all(d.graded_from == own for d in result.findings.discs if d.grades)
    assert "Graded together with the patient's other series" not in render_html(result.findings, result.figures)
    discs = [
        d.model_copy(update={"graded_from": ("other series",)}) if k == 0 else d
        for k, d in enumerate(result.findings.discs)
    ]
    findings = result.findings.model_copy(update={"discs": discs})
    html = render_html(findings, result.figures)
    assert "Graded together with the patient's other series" in html and "other series" in html
    assert result.figures.evidence and "has its maps in their reports" in " ".join(html.split())


def test_a_disc_graded_from_another_series_alone_gets_no_evidence_map_from_this_view():
    """Evidence maps explain what this view decided: a disc whose grades came from the patient's other series alone
    (its view here cut by the edge) has none here; the others keep theirs, and the report says where the rest are."""
    from dataclasses import replace

    from lumbar.phantom import make_phantom
    from lumbar.pipelines.mr_sagittal import (
        evidence_maps,
        grade_series,
        grading_model,
        segment,
        series_grades,
    )

    model = grading_model()
    grading = grade_series(segment(make_phantom().image), model)
    first, *rest = grading.crops
    elsewhere = replace(grading, graded_from={**grading.graded_from, first: ["t1 elsewhere"]}, cut=frozenset({first}))
    grades = series_grades(elsewhere, model)
    assert set(evidence_maps(elsewhere, grades, model)) == set(rest)
    assert set(evidence_maps(grading, grades, model)) == {first, *rest}


def test_fused_rows_and_grades_from_probabilities():
    from lumbar.grades import BINARY_GRADES
    from lumbar.tasks.grading import fuse_same_disc, grades_from

    rows = fuse_same_disc(
        {
            "herniation": np.array([0.2, 0.6, 0.9]),
            "pfirrmann": np.array([[0.1, 0.2, 0.5, 0.1, 0.1], [0.1, 0.6, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2]]),
        },
        ["1 L4/L5", "1 L4/L5", "2 L4/L5"],
    )
    assert np.allclose(rows["herniation"], [0.4, 0.4, 0.9]) and np.allclose(
        rows["pfirrmann"][1], [0.1, 0.4, 0.3, 0.1, 0.1]
    )
    probs = {
        "pfirrmann": rows["pfirrmann"][0],
        "herniation": rows["herniation"][0],
        "modic": np.array([0.7, 0.1, 0.1, 0.1]),
        **{g: np.array(0.1) for g in BINARY_GRADES if g != "herniation"},
    }
    grades = grades_from(probs, {"herniation": 0.35})
    assert grades["pfirrmann"]["value"] == 2 and np.isclose(grades["pfirrmann"]["probability"], 0.4)
    assert grades["herniation"]["value"] == 1 and np.isclose(grades["herniation"]["probability"], 0.4)
    assert grades["herniation"]["threshold"] == 0.35 and grades["bulging"] == {
        "value": 0,
        "probability": 0.9,
        "threshold": 0.5,
    }
    # With the high-specificity points of these weights: each binary grade is decided at both thresholds.
    both = grades_from(probs, {"herniation": 0.35}, {"herniation": (0.5, 0.96), "bulging": (0.05, 0.9)})
    assert both["herniation"]["value"] == 1 and both["herniation"]["value_high_specificity"] == 0
    assert both["herniation"]["threshold_high_specificity"] == 0.5 and both["herniation"]["specificity_high"] == 0.96
    assert both["bulging"]["value"] == 0 and both["bulging"]["value_high_specificity"] == 1
    assert "value_high_specificity" not in both["narrowing"]  # no point shipped for it: nothing invented
    assert "per_series" not in both["herniation"]  # graded from one series
    # Graded from two series (herniation 0.9 and 0.6: mean 0.75): called at the high-specificity point of 0.7 only
    # where both reach it; each series' own probabilities listed.
    views = {"t1": {**probs, "herniation": np.array(0.9)}, "t2": {**probs, "herniation": np.array(0.6)}}
    fused = grades_from({**probs, "herniation": np.array(0.75)}, {}, {"herniation": (0.7, 0.96)}, views)
    assert fused["herniation"]["value"] == 1 and fused["herniation"]["value_high_specificity"] == 0
    assert fused["herniation"]["per_series"]["t2"] == {"0": pytest.approx(0.4), "1": pytest.approx(0.6)}
    assert fused["pfirrmann"]["per_series"]["t1"] == {
        str(c): pytest.approx(v) for c, v in zip(range(1, 6), probs["pfirrmann"])
    }
    views["t2"]["herniation"] = np.array(0.7)
    fused = grades_from({**probs, "herniation": np.array(0.8)}, {}, {"herniation": (0.7, 0.96)}, views)
    assert fused["herniation"]["value_high_specificity"] == 1


@pytest.mark.parametrize("contrast", ["T2", "CT"])
def test_a_voxel_size_no_body_could_have_is_refused_even_when_forced(tmp_path, contrast):
    """A header whose voxels are 40 times too large: resampled to the network's 0.75 mm pixels each slice would need
    gigabytes. Refused with one line before any computing, --force or not, and nothing written."""
    import nibabel as nib

    from lumbar.phantom import make_phantom

    image = make_phantom(shape=(5, 160, 144), spacing_mm=(4.0, 2.0, 2.0), contrast=contrast).image
    path = tmp_path / "huge.nii.gz"
    nib.save(nib.Nifti1Image(image.source_array(), image.source_affine() @ np.diag([40, 40, 40, 1])), path)
    for force in ([], ["--force"]):
        result = CliRunner().invoke(app, ["analyze", str(path), "-o", str(tmp_path / "out"), *force])
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1 and "larger than a whole body" in result.output
        assert not (tmp_path / "out").exists()


def test_the_summary_section_holds_only_the_summary_and_measurements_carry_their_marks(tmp_path, inputs):
    """Lordosis and the narrowest canal are measurements no expert checked here: they sit under "Key measurements",
    marked †, never in the Summary section, whether or not the Summary is withheld; the footnote names the measured
    narrowing apart from the narrowing grade."""
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    for withheld in (None, "a review reason"):
        findings = result.findings.model_copy(update={"summary_withheld": withheld})
        html = render_html(findings, result.figures)
        summary = html.split("<h2>Summary</h2>")[1].split("<h2>")[0]
        assert "lordosis" not in summary.lower() and "narrowest" not in summary.lower()
        measured = html.split("<h2>Key measurements</h2>")[1].split("<h2>")[0]
        assert re.search(r'Lumbar lordosis \(L1–S1\)<sup class="nv">†</sup>', measured)
        assert re.search(r'Narrowest lumbar canal<sup class="nv">†</sup>', measured)
    assert "lordosis (SPIDER has no expert lordosis angle)" in html
    assert "disc narrowing from the measured height index" in html
    # every measured column of the tables is marked, as the disclaimer says: none is a validated finding
    for table in ("Discs", "Vertebrae"):
        header = html.split(f"<h2>{table}</h2>")[1].split("</thead>")[0]
        columns = re.findall(r"<th>(.*?)</th>", header)[1:]  # past the level
        assert columns and all('<sup class="nv">†</sup>' in column for column in columns), (table, columns)
    assert "disc measurements (disc heights, the canal&#39;s size" in html
    assert "what is not validated (never checked against an expert here, or checked and short of" in html


def test_the_reasons_that_withhold_the_summary_are_marked_in_the_review_list_not_repeated(tmp_path, inputs):
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    reasons = ["first reason", "second reason", "a noted reason"]
    findings = result.findings.model_copy(
        update={"needs_review": reasons, "summary_withheld": "first reason; second reason", "summary": []}
    )
    html = render_html(findings, result.figures)
    assert html.count("<b>Withholds the Summary:</b>") == 2
    assert '<div class="review">a noted reason</div>' in html
    assert "No Summary for this image:</b> 2 of the review reasons above" in html
    assert "first reason; second reason" not in html
    # a reason the list does not hold (a forced run's) is given in full
    html = render_html(findings.model_copy(update={"summary_withheld": "forced"}), result.figures)
    assert "<b>No Summary for this image.</b> forced." in html and "Withholds the Summary" not in html


def test_the_report_names_inputs_without_their_folders(tmp_path, inputs):
    """A report is read away from the machine that wrote it, and folder names are often a patient's: the series
    graded together and every review reason name files without their folders (spaces and all), as the title does;
    level names like L4/L5/S1 are left whole."""
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    folder = "/home/clinic/Smith^John 1970/exam 2"
    t1, t2 = f"{folder}/sag t1.png", f"{folder}/t2 (series 4 T2 SAG) [2]"
    discs = [d.model_copy(update={"graded_from": (t1, t2)}) for d in result.findings.discs]
    reasons = [f"DICOM SEG not written: {folder}/scan: cannot reference it", "L4/L5/S1 named from /tmp/x/y.png"]
    findings = result.findings.model_copy(
        update={
            "input": result.findings.input.model_copy(update={"source": t1}),
            "discs": discs,
            "needs_review": reasons,
            "summary_withheld": reasons[0],
        }
    )
    html = render_html(findings, result.figures)
    assert "Smith" not in html and "clinic" not in html and "/tmp/x" not in html
    assert "Graded together with the patient's other series: sag t1.png, t2 (series 4 T2 SAG) [2]." in html
    assert "DICOM SEG not written: scan: cannot reference it" in html and "L4/L5/S1 named from y.png" in html


def test_a_disc_without_a_stenosis_grade_says_why_whatever_the_reason(tmp_path, inputs):
    """A disc left unmeasured has no stenosis at all: the table shows "unknown" for it as for a grade that is, and
    the note below the table gave a reason for the second alone."""
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    discs = list(result.findings.discs)
    discs[-1] = discs[-1].model_copy(update={"stenosis": None, "measurements": None})
    html = render_html(result.findings.model_copy(update={"discs": discs}), result.figures)
    note = " ".join(html.split()).split("Stenosis not graded at ")[1].split("</p>")[0]
    assert f"{discs[-1].level}: the disc was not measured" in note


def test_a_pictures_header_gives_its_two_pixel_sides_not_a_made_up_third(tmp_path, inputs):
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=0.5)
    html = render_html(result.findings, result.figures)
    assert re.search(r"· \d+×\d+ pixels ·\s+0\.5 × 0\.5 mm\s+·", html) and "0.5 × 0.5 × 0.5 mm" not in html


def test_modic_graded_from_one_series_says_that_its_type_needs_t1_and_t2(tmp_path, inputs):
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    assert any("modic" in d.grades for d in result.findings.discs)
    html = render_html(result.findings, result.figures)
    assert "Modic types are defined on T1 and T2 together" in html and "--same-patient" in html


def test_a_measurement_taken_as_a_misread_withholds_the_summary(inputs, monkeypatch):
    """A reading the measurements take as a misread (a lordosis beyond 90°) says so once in the review list,
    withholds the Summary as the quality gate's reasons do, and Key measurements points to it."""
    from dataclasses import replace

    from lumbar.pipelines import mr_sagittal
    from lumbar.report.html import render_html
    from lumbar.tasks.measurements import lordosis_misread

    why = lordosis_misread(101.5)
    measure = mr_sagittal.measure
    monkeypatch.setattr(
        mr_sagittal, "measure", lambda seg, **kw: replace(measure(seg, **kw), lordosis_deg=None, review=(why,))
    )
    result = analyze(inputs / "slice.png", spacing_mm=1.0, modality="MR")
    findings = result.findings
    assert findings.needs_review.count(why) == 1
    assert findings.summary == () and why in findings.summary_withheld
    assert "(not reported: see Needs review)" in render_html(findings, result.figures)


def _anchor_pages(html: str) -> dict[str, int]:
    """The page of the PDF that WeasyPrint lays out from ``html`` on which each element with an id begins."""
    from weasyprint import HTML

    pages = HTML(string=html).render().pages
    return {anchor: number for number, page in enumerate(pages) for anchor in page.anchors}


def test_on_paper_a_long_summary_starts_beside_the_picture_and_the_maps_start_a_page(inputs):
    """A Summary of 16 statements is taller than what the review list leaves of page 1: it starts there beside the
    picture and flows on (laid out as one row, it moved whole to page 2 and left page 1 blank under its heading).
    The evidence maps start a page of their own rather than leave their heading at the foot of one."""
    from lumbar.findings import Statement
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0, modality="MR")
    statement = Statement(
        level="L4/L5",
        finding="bulging",
        text="L4/L5: disc bulging, grading model probability 85% (stated from 65%)",
        basis="validated against the SPIDER expert: " + "a long basis that takes two or three lines on paper " * 4,
    )
    findings = result.findings.model_copy(update={"summary": (statement,) * 16, "summary_withheld": None})
    pages = _anchor_pages(render_html(findings, result.figures))
    assert pages["statement-1"] == 0 and pages["statement-16"] >= 1  # begun beside the picture, flowing on
    assert pages["evidence-maps"] == pages["evidence-figures"] >= 1  # the heading on the maps' own page


def test_on_paper_a_tall_picture_starts_beside_its_summary_on_the_first_page(inputs):
    """A frontal film's overview is more than twice as tall as wide: at the picture's width it was taller than what
    the review list leaves of page 1, moved to page 2 with the Summary, and left the heading alone on page 1."""
    from dataclasses import replace

    from lumbar.findings import Statement
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0, modality="MR")
    statement = Statement(level="", finding="cobb_major_40", text="Scoliosis: a major curve of 40° or more.", basis="b")
    reasons = tuple(f"review reason {k}: " + "a reason long enough to take a line " * 3 for k in range(4))
    findings = result.findings.model_copy(
        update={"summary": (statement,), "summary_withheld": None, "needs_review": reasons}
    )
    tall = replace(result.figures, overview=np.full((1024, 447, 3), 128, np.uint8))
    assert _anchor_pages(render_html(findings, tall))["statement-1"] == 0


def test_each_summary_basis_is_listed_once_and_every_statement_points_to_its_own(tmp_path, inputs):
    """Three statements on two bases: two numbered bases below the Summary, each named by its finding, and each
    statement marked with its basis's number (a basis shared by many statements is not repeated under each)."""
    from lumbar.findings import Statement
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    statements = [
        Statement(level="L4/L5", finding="narrowing", text="L4/L5: disc narrowing.", basis="basis of narrowing"),
        Statement(level="L4/L5", finding="modic", text="L4/L5: Modic change.", basis="basis of Modic"),
        Statement(level="L3/L4", finding="narrowing", text="L3/L4: disc narrowing.", basis="basis of narrowing"),
    ]
    html = render_html(
        result.findings.model_copy(update={"summary": statements, "summary_withheld": None}), result.figures
    )
    summary = html.split("<h2>Summary</h2>")[1].split("<h2>")[0]
    assert summary.count("basis of narrowing") == 1 and summary.count("basis of Modic") == 1
    assert '<li id="basis-1"><b>Disc narrowing:</b> basis of narrowing</li>' in summary
    assert '<li id="basis-2"><b>Modic endplate change:</b> basis of Modic</li>' in summary
    refs = re.findall(r'">(L\d/L\d: [^<]+)<sup class="basis-ref">(\d)</sup>', summary)
    assert refs == [("L4/L5: disc narrowing.", "1"), ("L4/L5: Modic change.", "2"), ("L3/L4: disc narrowing.", "1")]


def test_a_missing_genant_grade_says_why_and_a_backward_slip_reads_retro(tmp_path, inputs):
    """A vertebra without a Genant grade has its dash lettered, the letter's reason listed once below the table
    (two vertebrae sharing one reason share its letter); Meyerding reads "retro" for a backward slip beyond the
    floor and a dash where no slip was measured."""
    from lumbar.report.html import meyerding, render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    reasons = ["cut by the image edge", "outline not convex (a fragment, or posterior elements joined to it)"]
    measured = [k for k, v in enumerate(result.findings.vertebrae) if v.measurements is not None and v.level != "S1"]
    vertebrae = list(result.findings.vertebrae)
    for n, k in enumerate(measured[:3]):  # the first in table order cut by the edge, the next two not convex
        update = {"genant_grade": None, "genant_not_graded": reasons[min(n, 1)]}
        vertebrae[k] = vertebrae[k].model_copy(
            update={"measurements": vertebrae[k].measurements.model_copy(update=update)}
        )
    html = render_html(result.findings.model_copy(update={"vertebrae": vertebrae}), result.figures)
    table = html.split("<h2>Vertebrae</h2>")[1]
    assert '–<sup class="why">a</sup>' in table and '–<sup class="why">b</sup>' in table
    assert (
        'No Genant grade: <sup class="why">a</sup> cut by the image edge; <sup class="why">b</sup> outline not '
        "convex (a fragment, or posterior elements joined to it)" in table  # then the phantom's own, lettered on
    )
    disc = result.findings.discs[0].measurements
    assert meyerding(disc.model_copy(update={"slip_mm": -4.0, "slip_percent": -11.0, "meyerding_grade": None})) == (
        "retro"
    )
    assert meyerding(disc.model_copy(update={"slip_mm": None, "slip_percent": None, "meyerding_grade": None})) == "–"
    assert meyerding(disc.model_copy(update={"slip_mm": 6.0, "slip_percent": 17.0, "meyerding_grade": 1})) == "1"


def test_the_narrowest_canal_carries_its_grade_and_what_the_grade_rests_on(tmp_path, inputs):
    """Key measurements give the narrowest canal's grade with its basis (a volume's grade may come from the area,
    not the diameter shown beside it), and nothing where that level is not graded."""
    from lumbar.findings import Stenosis
    from lumbar.report.html import render_html

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    level = result.findings.narrowest_canal_level
    assert level is not None
    severe = Stenosis(grade="severe", basis="dural sac area 45 mm²", thresholds="cited")
    discs = [d.model_copy(update={"stenosis": severe}) if d.level == level else d for d in result.findings.discs]
    html = render_html(result.findings.model_copy(update={"discs": discs}), result.figures)
    assert re.search(rf"at {re.escape(level)} \(severe by its dural sac area 45 mm²\)\.", html)
    unknown = Stenosis(grade="unknown", basis="canal not measurable", thresholds="cited")
    discs = [d.model_copy(update={"stenosis": unknown}) if d.level == level else d for d in result.findings.discs]
    html = render_html(result.findings.model_copy(update={"discs": discs}), result.figures)
    assert re.search(rf"at {re.escape(level)}\.</p>", html)


def test_graded_together_names_the_series_only_where_there_is_more_than_one():
    from lumbar.findings import graded_together

    assert graded_together([("a",), ("a",)]) == []  # graded alone
    assert graded_together([("a", "b"), ("a",)]) == ["a", "b"]
    assert graded_together([("b",), ("a", "b")]) == ["a", "b"]  # a disc cut here, graded from b alone
    assert graded_together([]) == []


def test_a_named_disc_missing_from_the_mid_slice_is_said_to_be_ungraded():
    """Grades are read on the mid-sagittal slice: a disc named on other slices alone had no crop there, and its
    row was left out of the grade table without a word."""
    from types import SimpleNamespace

    from lumbar.pipelines.mr_sagittal import SeriesGrading, ungraded_note

    discs = [SimpleNamespace(name=name) for name in ("T8/T9", "L3/L4", "L4/L5", "L5/S1")]
    seg = SimpleNamespace(levels=SimpleNamespace(discs=discs))
    graded = {"L3/L4": {}, "L4/L5": {}}
    note = ungraded_note(seg, SeriesGrading("t2", {}, graded, {}))
    assert note.startswith("not graded: L5/S1: named on other slices but not outlined on the mid-sagittal slice")
    assert "T8/T9" not in note  # above the reported discs: never graded, nothing to say
    assert ungraded_note(seg, SeriesGrading("t2", {}, {**graded, "L5/S1": {}}, {})) is None


def test_mri_heights_never_stand_beside_a_reason_they_are_wrong(inputs, monkeypatch):
    """As on CT: where every outline is rejected as "endplates not found" no vertebra shows heights or ratios (the
    reason stays); as analysed, every vertebra that shows heights is graded or rejected for a reason that leaves its
    endplates where they were read."""
    from lumbar.tasks import measurements
    from lumbar.tasks.measurements import heights_unreliable

    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    shown = [v.measurements for v in result.findings.vertebrae if v.measurements is not None]
    assert any(m.height_middle_mm is not None for m in shown)
    assert all(m.height_middle_mm is None or not heights_unreliable(m) for m in shown)
    misread = "anterior or middle height above the posterior one: endplates not found"
    monkeypatch.setattr(measurements, "outline_problem", lambda *args, **kwargs: misread)
    result = analyze(inputs / "slice.png", spacing_mm=1.0)
    shown = [v.measurements for v in result.findings.vertebrae if v.measurements is not None and v.level != "S1"]
    assert shown and all(m.genant_not_graded == misread for m in shown)
    assert all(m.height_middle_mm is None and m.wedge_ratio is None for m in shown)
