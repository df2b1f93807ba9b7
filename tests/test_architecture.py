"""The layout the other modalities build on: one label table, typed images, a router, compute apart from writing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from lumbar.errors import InputError
from lumbar.image import Modality, SeriesInfo, SpineImage
from lumbar.io.write import write_nifti
from lumbar.labels import (
    CAUDAL_TO_CRANIAL,
    LUMBAR_DISCS,
    REPORTED_DISCS,
    SPINE_ORDER,
    STRUCTURE_COLOURS,
    STRUCTURE_NAMES,
    Structure,
    disc_label,
    discs_between,
    instance_name,
    structure_of,
    vertebrae_between,
)

# --- one table for level names, label values and colours


def test_every_level_list_is_a_slice_of_the_one_order():
    assert SPINE_ORDER[0] == "T1" and SPINE_ORDER[-3:] == ("L4", "L5", "S1") and SPINE_ORDER[::-1] == CAUDAL_TO_CRANIAL
    assert vertebrae_between("L4", "S1") == ("L4", "L5", "S1")
    assert discs_between("L3", "S1") == ("L3/L4", "L4/L5", "L5/S1")
    assert LUMBAR_DISCS == ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")
    assert REPORTED_DISCS[0] == "T9/T10" and REPORTED_DISCS[-1] == "L5/S1" and "L5/L6" not in REPORTED_DISCS


def test_every_disc_label_names_itself_back():
    for upper in SPINE_ORDER[:-1]:
        name = instance_name(disc_label(upper))
        assert name.startswith(f"{upper}/") and structure_of(name) == Structure.DISC
    assert instance_name(24) == "L5" and instance_name(124) == "L5/S1" and instance_name(200) == "canal"
    assert set(STRUCTURE_COLOURS) == set(STRUCTURE_NAMES)


def test_findings_accept_exactly_the_reported_levels():
    from lumbar.findings import Disc

    assert Disc(level="T9/T10", label=116).level == "T9/T10"
    with pytest.raises(ValidationError):
        Disc(level="L5/L6", label=125)  # no path names it: the old contract's unreachable level is gone


def test_findings_are_built_once(result):
    from lumbar.findings import Disc

    disc = Disc(level="L4/L5", label=123)
    with pytest.raises(ValidationError):
        disc.level = "L5/S1"
    with pytest.raises(AttributeError):
        result.findings.needs_review.append("patched later")  # sequences are tuples
    with pytest.raises(AttributeError):
        result.findings.discs.append(disc)
    with pytest.raises(ValidationError, match="Extra inputs"):
        Disc(level="L4/L5", label=123, colour="red")  # unknown keys are refused
    with pytest.raises(ValidationError, match="less than or equal to 5"):
        Disc(level="L4/L5", label=123, grades={"pfirrmann": {"value": 9, "probability": 0.5}})
    with pytest.raises(ValidationError, match="not a grade"):
        Disc(level="L4/L5", label=123, grades={"herniation": {"value": 2, "probability": 0.5}})
    with pytest.raises(ValidationError, match="unknown grade"):
        Disc(level="L4/L5", label=123, grades={"mood": {"value": 1, "probability": 0.5}})


# --- typed images


@pytest.mark.parametrize(
    "text, modality",
    [
        ("mr", Modality.MR),
        ("MRI", Modality.MR),
        ("ct", Modality.CT),
        ("DX", Modality.RADIOGRAPH),
        ("CR", Modality.RADIOGRAPH),
        ("XA", Modality.FLUOROSCOPY),
        ("rf", Modality.FLUOROSCOPY),
        ("us", Modality.ULTRASOUND),
    ],
)
def test_modality_from_what_users_type_and_dicom_codes(text, modality):
    assert Modality.parse(text) is modality
    assert Modality.from_dicom(text) is modality


def test_unknown_modality_codes():
    assert Modality.from_dicom("SC") is Modality.OTHER
    with pytest.raises(ValueError, match="unknown modality"):
        Modality.parse("sonar")


def _volume(spacing):
    return SpineImage.from_array(np.zeros((10, 12, 14), np.float32), np.diag([*spacing, 1.0]), modality="MR")


@pytest.mark.parametrize(
    "spacing, plane",
    [((4.0, 0.7, 0.7), "sagittal"), ((0.7, 4.0, 0.7), "coronal"), ((0.7, 0.7, 4.0), "axial"), ((1.0, 1.0, 1.1), None)],
)
def test_acquisition_plane_from_the_thickest_voxel_side(spacing, plane):
    assert _volume(spacing).plane == plane


def test_dicom_orientation_decides_the_plane_and_the_series_names_itself():
    image = _volume((1.0, 1.0, 1.0))
    image.series = SeriesInfo(uid="1.2.3", number="7", description="SAG T2", plane="axial")
    assert image.plane == "axial"
    assert image.series_label().endswith("(series 7 SAG T2)") and "1.2.3" not in image.series_label()
    assert "1.2.3" not in json.dumps(image.describe())


# --- the router


def _mr_image(spacing=(4.0, 0.75, 0.75), modality="MR"):
    from lumbar.phantom import make_phantom

    image = make_phantom(shape=(3, 160, 144), seed=1).image
    return SpineImage.from_array(image.array, np.diag([*spacing, 1.0]), modality=modality, source="t.nii.gz")


def test_router_takes_sagittal_and_isotropic_mr_and_refuses_the_rest():  # CT in HU: tests/test_ct.py
    from lumbar.pipelines import UnsupportedImage, mr_sagittal, route

    assert route(_mr_image()).pipeline is mr_sagittal
    assert route(_mr_image((1.0, 1.0, 1.0))).pipeline is mr_sagittal  # a 3D acquisition, resliced
    for image, why in (
        (_mr_image(modality="CT"), "not in Hounsfield units"),  # the CT pipeline's reason: MR values called CT
        (_mr_image((0.75, 0.75, 4.0)), "axial slices"),
        (_mr_image(modality="US"), "US images"),
    ):
        with pytest.raises(UnsupportedImage, match=why) as refused:
            route(image)
        assert isinstance(refused.value, InputError) and "--force" in str(refused.value)
        forced = route(image, force=True)
        assert forced.pipeline is mr_sagittal and forced.gate[0].startswith("forced: ")


# --- compute, then write


class Recorder:
    def __init__(self):
        self.stages = []

    def stage(self, name, total=None):
        self.stages.append(name)

    def advance(self, steps=1):
        pass


@pytest.fixture(scope="module")
def result(phantom):
    import lumbar

    return lumbar.analyze(
        SpineImage.from_array(phantom.image.array, phantom.image.affine, modality="MR", source="p.nii.gz")
    )


def test_analyze_without_an_output_folder_computes_everything_and_writes_nothing(phantom, tmp_path, monkeypatch):
    import lumbar
    import lumbar.outputs as outputs

    def never(*args, **kwargs):
        raise AssertionError("a file was written")

    for writer in ("write_result", "save_segmentation", "write_segmentation"):
        monkeypatch.setattr(outputs, writer, never)
    monkeypatch.chdir(tmp_path)
    image = SpineImage.from_array(phantom.image.array, phantom.image.affine, modality="MR", source="p.nii.gz")
    result = lumbar.analyze(image)
    assert result.findings.discs and result.figures.overview.ndim == 3 and result.figures.evidence
    assert result.folder is None and not result.outputs and not result.findings.outputs
    assert not list(tmp_path.iterdir())


def test_progress_names_every_stage(phantom, tmp_path):
    import lumbar

    recorder = Recorder()
    write_nifti(phantom.image.array, phantom.image, tmp_path / "scan.nii.gz")
    lumbar.analyze(tmp_path / "scan.nii.gz", tmp_path / "out", report=False, progress=recorder)
    for stage in (
        "reading",
        "segmenting slices",
        "naming levels",
        "grading discs",
        "measuring",
        "evidence maps",
        "writing masks",
    ):
        assert stage in recorder.stages, recorder.stages


def test_a_study_folder_never_replaces_what_lumbar_did_not_write(result, tmp_path):
    from lumbar.outputs import check_study_folder, write_result

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's own file")
    with pytest.raises(InputError, match=r"notes\.txt"):
        write_result(result, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "the user's own file"
    with pytest.raises(InputError, match="holds the input"):
        check_study_folder(tmp_path / "series", (str(tmp_path / "series" / "IM0001.dcm"),))
    with pytest.raises(InputError, match="holds the input"):
        check_study_folder(tmp_path, (str(tmp_path),))


def test_a_study_folder_appears_whole_or_not_at_all(result, tmp_path, monkeypatch):
    import lumbar.report.html as html
    from lumbar.outputs import write_result

    written = write_result(result, tmp_path / "study")
    files = {p.relative_to(tmp_path / "study").as_posix() for p in (tmp_path / "study").rglob("*") if p.is_file()}
    saved = json.loads((tmp_path / "study" / "findings.json").read_text())
    assert saved["outputs"] == written.outputs and written.findings.outputs == written.outputs
    assert all(path in files or path == "heatmaps" for path in written.outputs.values())
    levels = json.loads((tmp_path / "study" / written.outputs["levels"]).read_text())
    assert [lv["name"] for lv in levels["levels"] if lv["kind"] == "disc"] == [d.level for d in result.findings.discs]
    before = (tmp_path / "study" / "findings.json").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(html, "write_reports", crash)
    with pytest.raises(OSError, match="disk full"):
        write_result(result, tmp_path / "study")
    with pytest.raises(OSError):
        write_result(result, tmp_path / "fresh")
    assert (tmp_path / "study" / "findings.json").read_bytes() == before  # the old folder is untouched
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]  # no staging folder left behind


def test_a_batch_goes_on_past_a_bad_study_and_a_bug_stops_it(tmp_path):
    from lumbar.batch import plan, run_batch

    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(b"x")

    def work(study: Path, name: str) -> str:
        if study.name == "b.png":
            raise InputError(f"{study}: not a readable image\n(details)")
        return name.upper()

    shown = []
    outcome = run_batch(plan([tmp_path]), work, on_done=lambda p, n, r: shown.append((p.name, n, r)))
    assert shown == [("a.png", "a", "A"), ("c.png", "c", "C")]
    assert [(p.name, n) for p, n in outcome.done] == [("a.png", "a"), ("c.png", "c")]
    assert [(p.name, why) for p, why in outcome.failed] == [
        ("b.png", f"{tmp_path / 'b.png'}: not a readable image (details)")
    ]
    with pytest.raises(ZeroDivisionError):
        run_batch(plan([tmp_path]), lambda study, name: 1 / 0)


def test_a_batch_holds_no_result_after_it_is_shown(tmp_path):
    """A batch's memory must not grow with its studies: once ``on_done`` has shown a result, nothing keeps it."""
    import gc
    import weakref

    from lumbar.batch import plan, run_batch

    for k in range(5):
        (tmp_path / f"s{k}.png").write_bytes(b"x")

    class Heavy:
        pass

    alive = []
    outcome = run_batch(
        plan([tmp_path]), lambda study, name: Heavy(), on_done=lambda p, n, r: alive.append(weakref.ref(r))
    )
    gc.collect()
    assert outcome.total == 5 and len(alive) == 5
    assert all(ref() is None for ref in alive)


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch):
    import lumbar.pipelines.mr_sagittal as mr_sagittal
    from lumbar.outputs import ensure_writable

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    def never(*args, **kwargs):
        raise AssertionError("computed before checking the output folder")

    monkeypatch.setattr(mr_sagittal, "analyze", never)
    import lumbar

    with pytest.raises(InputError, match="cannot write outputs there"):
        lumbar.analyze(tmp_path / "missing.nii.gz", blocker / "out")
    ensure_writable(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # the check leaves nothing behind


def test_a_dicom_series_without_patient_tags_still_gets_its_dicom_seg(tmp_path, phantom):
    import pydicom

    import lumbar
    from lumbar.io.dicom_write import write_dicom_series

    write_dicom_series(phantom.image, tmp_path / "series")
    for path in (tmp_path / "series").iterdir():
        ds = pydicom.dcmread(path)
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime"):
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(path)
    result = lumbar.analyze(tmp_path / "series", tmp_path / "out", report=False)
    assert "dicom_seg" in result.outputs and not any("DICOM SEG" in r for r in result.findings.needs_review)
    seg = pydicom.dcmread(tmp_path / "out" / "series" / result.outputs["dicom_seg"])
    assert seg.PatientID == "" and seg.Modality == "SEG"


def test_coarse_sagittal_pixels_of_an_axial_acquisition_are_named_as_reformatted():
    """An axial CT of 0.7 mm pixels and 2.5 mm slices: its sagittal slices' pixels are 2.5 x 0.7 mm, and the reason
    said "in-plane pixels of 2.5 mm" of an image whose in-plane pixels are 0.7 mm."""
    from lumbar.pipelines.mr_sagittal import image_reasons

    (reason,) = image_reasons(_volume((0.7, 0.7, 2.5)))
    assert "pixels of 2.5 × 0.7 mm, reformatted from axial slices are coarse" in reason
    (reason,) = image_reasons(_volume((4.0, 2.5, 0.7)))
    assert "pixels of 0.7 × 2.5 mm are coarse" in reason  # rows head to feet, columns front to back
    (reason,) = image_reasons(_volume((3.0, 3.0, 3.0)))  # near-isotropic: no plane to be reformatted from
    assert "pixels of 3.0 × 3.0 mm are coarse" in reason and "None" not in reason
