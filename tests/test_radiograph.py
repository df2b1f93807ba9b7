"""The frontal radiograph path: the AASCE reader's repairs, the pipeline end to end with a network whose output is
known (built from chosen bodies), routing, and the shipped network on real radiographs (skipped without them)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import shared
from PIL import Image

from lumbar.datasets.xray_ap import (
    CORONAL,
    GROUPING,
    SAME_RADIOGRAPH_PAIRS,
    grouping_of,
    legacy_group,
    patient_group,
    read_part,
)
from lumbar.image import Modality
from lumbar.io import read_image
from lumbar.labels import STRUCTURE_COLOURS, VERTEBRA_IDS, Structure
from lumbar.pipelines import xr_frontal
from lumbar.pipelines.router import route
from lumbar.preprocess import RADIOGRAPH_SHAPE, Letterbox
from lumbar.tasks.corners import targets
from tests.test_radiograph_maths import spine

LEVELS = [f"T{k}" for k in range(1, 13)] + [f"L{k}" for k in range(1, 6)]


def write_aasce(root: Path, quads: list[np.ndarray], size: tuple[int, int] = (200, 600)) -> None:
    """A one-part AASCE folder: per image its quads as the dataset stores them (top-left, top-right, bottom-left,
    bottom-right; x then y, normalised)."""
    (root / "images" / "training").mkdir(parents=True)
    (root / "labels" / "training").mkdir(parents=True)
    names, rows = [], []
    for k, quad in enumerate(quads):
        name = f"sunhl-1th-01-Jan-2017-{100 + k // 2} {'AB'[k % 2]} AP.jpg"
        Image.new("L", size, 128).save(root / "images" / "training" / name)
        stored = quad[:, [0, 1, 3, 2]]  # the dataset's corner order
        rows.append(np.concatenate([stored[..., 0].ravel() / size[0], stored[..., 1].ravel() / size[1]]))
        names.append(name)
    labels = root / "labels" / "training"
    (labels / "filenames.csv").write_text("\n".join(names) + "\n")
    np.savetxt(labels / "landmarks.csv", np.array(rows), delimiter=",")
    np.savetxt(labels / "angles.csv", np.full((len(quads), 3), 10.0), delimiter=",")


def test_reader_sorts_the_quads_top_down_repairs_twisted_ones_and_names_faults(tmp_path):
    tilts = [3.0 * ((k % 5) - 2) for k in range(17)]
    quads = spine(tilts, top=20.0, step=33.0)
    t1_last = quads[[*range(1, 17), 0]].copy()  # T1 stored last, as in 21 AASCE images
    twisted = quads.copy()
    twisted[5] = twisted[5][[0, 1, 3, 2]]  # corners crossed
    overlapping = quads.copy()
    overlapping[16] = overlapping[15] + 2.0  # the 17th quad drawn over the 16th
    write_aasce(tmp_path, [t1_last, twisted, overlapping])
    radiographs = read_part(tmp_path, "training")
    np.testing.assert_allclose(radiographs[0].corners, quads, atol=1e-3)
    np.testing.assert_allclose(radiographs[1].corners, quads, atol=1e-3)
    assert radiographs[0].faults == () and radiographs[1].faults == ()
    assert radiographs[2].faults == ("quads overlap",)
    assert [r.group for r in radiographs] == ["100", "100", "101"]
    assert (radiographs[0].width, radiographs[0].height) == (200, 600)


def test_patient_groups_come_from_the_number_in_the_name():
    assert patient_group("sunhl-1th-02-Jan-2017-162 A AP.jpg") == "162"
    assert patient_group("sunhl-1th-02-Jan-2017-162 a ap.jpg") == "162"
    assert patient_group("sunhl-1th-10-Jan-2017-238 C AP.jpg") == "239"  # a duplicate of 239's radiographs
    # a second copy of a film joins its patient, whichever way the name says so
    assert patient_group("sunhl-1th-21-Nov-2016-138 D AP2.jpg") == "138"
    assert patient_group("sunhl-1th-22-Nov-2016-142 A AP (2).jpg") == "142"
    assert patient_group("sunhl-1th-30-Dec-2016-159 A AP2.jpg") == "159"
    # a coronal<k> that repeats a numbered film joins that film's patient; the others share one group
    assert patient_group("sunhl-1th-20-Jul-2016-coronal4.jpg") == "1"
    assert patient_group("sunhl-1th-20-Jul-2016-coronal6.jpg") == patient_group("sunhl-1th-20-Jul-2016-coronal17.jpg")
    assert patient_group("sunhl-1th-20-Jul-2016-coronal6.jpg") == CORONAL
    # one patient's films found under two numbers
    assert patient_group("sunhl-1th-26-Jul-2016-77 B AP.jpg") == patient_group("sunhl-1th-22-Nov-2016-141 C AP.jpg")
    assert patient_group("unnumbered.jpg") == "unnumbered.jpg"
    for a, b in SAME_RADIOGRAPH_PAIRS:
        assert patient_group(a) == patient_group(b), (a, b)


def test_records_split_before_the_corrected_grouping_are_read_with_the_grouping_they_were_split_with():
    assert grouping_of({"split_groups": {}}) is legacy_group
    assert grouping_of({"grouping": GROUPING}) is patient_group
    assert legacy_group("sunhl-1th-21-Nov-2016-138 D AP2.jpg") == "sunhl-1th-21-Nov-2016-138 D AP2.jpg"
    assert legacy_group("sunhl-1th-20-Jul-2016-coronal4.jpg") == "sunhl-1th-20-Jul-2016-coronal4.jpg"
    assert legacy_group("sunhl-1th-10-Jan-2017-238 C AP.jpg") == "239"
    assert legacy_group("sunhl-1th-26-Jul-2016-77 A AP.jpg") == "77"


def test_a_split_keeps_each_group_on_one_side(tmp_path):
    from types import SimpleNamespace

    from lumbar.train.radiograph import split_groups

    names = [f"sunhl-1th-01-Jan-2017-{n} {x} AP.jpg" for n in range(100, 130) for x in "AB"]
    names += [f"sunhl-1th-01-Jan-2017-{n} C AP2.jpg" for n in range(100, 130)]
    names += [f"sunhl-1th-20-Jul-2016-coronal{k}.jpg" for k in range(1, 18)]
    films = [SimpleNamespace(name=n) for n in names]
    for grouping in (patient_group, legacy_group):
        train, val = split_groups(films, 0.2, 0, grouping)
        assert len(train) + len(val) == len(films) and val
        assert not {grouping(r.name) for r in train} & {grouping(r.name) for r in val}
    train, val = split_groups(films, 0.2, 0)  # the corrected grouping: AP2 films and coronal files never straddle
    assert not {patient_group(r.name) for r in train} & {patient_group(r.name) for r in val}
    train, val = split_groups(films, 0.2, 0, legacy_group)  # the old one let them
    assert {patient_group(r.name) for r in train} & {patient_group(r.name) for r in val}


def test_the_real_film_names_group_as_known():
    root = shared("xray_ap")
    names = {part: (root / "labels" / part / "filenames.csv").read_text().split("\n") for part in ("training", "test")}
    names = {part: [n.strip() for n in lines if n.strip()] for part, lines in names.items()}
    groups = {part: {n: patient_group(n) for n in lines} for part, lines in names.items()}
    everything = {**groups["training"], **groups["test"]}
    assert len(names["training"]) == 481 and len(names["test"]) == 128
    # every name is grouped by a number or as a coronal file: none is left a group of its own
    assert all(g.isdigit() or g == CORONAL for g in everything.values())
    known = {
        "sunhl-1th-21-Nov-2016-138 D AP2.jpg": "138",
        "sunhl-1th-22-Nov-2016-142 A AP (2).jpg": "142",
        "sunhl-1th-30-Dec-2016-159 A AP2.jpg": "159",
        "sunhl-1th-22-Feb-2017-291 E AP2.jpg": "291",
        "sunhl-1th-20-Jul-2016-coronal4.jpg": "1",
        "sunhl-1th-20-Jul-2016-coronal15.jpg": "16",
        "sunhl-1th-20-Jul-2016-coronal3.jpg": CORONAL,
        "sunhl-1th-20-Jul-2016-coronal10.jpg": CORONAL,
        "sunhl-1th-26-Jul-2016-79 C AP.jpg": "157",
    }
    assert {n: everything[n] for n in known} == known
    # each second copy's patient has other films; 17 coronal files, 12 of them in the coronal group
    for name in list(known)[:4]:
        assert sum(g == known[name] for g in everything.values()) > 1, name
    coronal = [n for n in names["training"] if "coronal" in n]
    assert len(coronal) == 17 and sum(everything[n] == CORONAL for n in coronal) == 12
    training_names = set(names["training"])
    assert all(a in training_names and b in training_names for a, b in SAME_RADIOGRAPH_PAIRS)
    # the parts share patients only through the 15 test films listed as repeats of training radiographs
    shared_groups = set(groups["training"].values()) & set(groups["test"].values())
    assert shared_groups == {"239", "240", "241", "242", "243", "244"}
    assert len(set(groups["training"].values())) == 216 and len(set(groups["test"].values())) == 39


def test_the_shipped_frontal_records_split_is_found_again_with_the_grouping_it_was_made_with():
    from lumbar.train.radiograph import training_split

    root = shared("xray_ap")
    for name in ("radiograph", "radiograph_corners", "radiograph_levels"):
        record = json.loads((Path(xr_frontal.__file__).parents[1] / "models" / "weights" / f"{name}.json").read_text())
        config = record["config"]
        grouping = grouping_of(record)
        assert grouping is legacy_group  # trained before the corrected grouping: not retrained
        train, val = training_split(str(root), config["val_fraction"], config["seed"], grouping=grouping)
        assert sorted({grouping(r.name) for r in train}) == record["split_groups"]["training"]
        assert sorted({grouping(r.name) for r in val}) == record["split_groups"]["validation"]
        assert (len(train), len(val)) == (405, record["validation"]["n_images"]) == (405, 64)


@dataclass
class KnownOutput:
    """Stands in for the ONNX network: returns the targets of chosen bodies (in the network's pixels) as logits."""

    bodies: np.ndarray
    calls: list = field(default_factory=list)
    version: str = "known@0steps"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(batch.shape)
        heat, offsets, _ = targets(self.bodies, RADIOGRAPH_SHAPE)
        logits = np.log(np.clip(heat, 1e-6, 1 - 1e-6) / np.clip(1 - heat, 1e-6, 1))
        return np.concatenate([logits[None], offsets])[None]


def first_look_only(monkeypatch, model: KnownOutput) -> None:
    """The frontal network replaced by ``model``, and no second look: the bodies, names and corners it gives."""
    monkeypatch.setattr(xr_frontal, "radiograph_model", lambda: model)
    monkeypatch.setattr(xr_frontal, "corner_model", lambda: None)
    monkeypatch.setattr(xr_frontal, "level_model", lambda: None)  # names counted along the bodies


def radiograph_file(tmp_path: Path, shape=(1000, 420)) -> Path:
    path = tmp_path / "spine.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(path)
    return path


def image_bodies(count: int, shape=(1000, 420)) -> np.ndarray:
    """``count`` bodies down the middle of a picture of ``shape``, a 30-degree S curve, in the picture's pixels."""
    tilts = list(15.0 * np.sin(np.linspace(0, 2 * np.pi, count)))
    return spine(tilts, top=60.0, step=52.0, x=shape[1] / 2)


def test_pipeline_names_17_bodies_t1_to_l5_and_reports_their_corners_in_the_pictures_pixels(tmp_path, monkeypatch):
    image = read_image(radiograph_file(tmp_path), modality="XR")
    truth = image_bodies(17)
    box = Letterbox.fit(image.sagittal_slices()[0].shape)
    model = KnownOutput(box.to_box(truth))
    first_look_only(monkeypatch, model)
    result = xr_frontal.analyze(image)
    f = result.findings
    assert f.view == "frontal" and f.units == "pixels" and f.discs == ()
    assert [v.level for v in f.vertebrae] == LEVELS
    assert [v.label for v in f.vertebrae] == [VERTEBRA_IDS[n] for n in LEVELS]
    np.testing.assert_allclose([v.corners_px for v in f.vertebrae], truth, atol=0.05)
    np.testing.assert_allclose([v.frontal.height_left for v in f.vertebrae], 24.0, atol=0.1)
    expected = [15.0 * np.sin(a) for a in np.linspace(0, 2 * np.pi, 17)]
    np.testing.assert_allclose([v.frontal.tilt_deg for v in f.vertebrae], expected, atol=0.05)
    major = f.cobb_angles[0]
    assert major.curve == "major" and major.angle_deg == pytest.approx(max(expected) - min(expected), abs=0.1)
    assert (major.upper_vertebra, major.lower_vertebra) == (
        LEVELS[int(np.argmax(expected))],
        LEVELS[int(np.argmin(expected))],
    )
    assert not any("found" in r for r in f.needs_review)
    assert "pixel spacing unknown: heights are in pixels (give --spacing in mm)" in f.needs_review
    instances = result.segmentation.levels.instances[0]
    centre = np.round(truth[16].mean(0)).astype(int)
    assert instances[centre[1], centre[0]] == VERTEBRA_IDS["L5"]
    overview = result.figures.overview
    outline = np.all(overview == np.array(STRUCTURE_COLOURS[Structure.VERTEBRA], np.uint8), axis=-1)
    assert outline[:, 150:270].sum() > 17 * 100  # every body outlined down the middle of the film


def test_fewer_bodies_are_named_up_from_l5_and_the_summary_is_withheld(tmp_path, monkeypatch):
    image = read_image(radiograph_file(tmp_path), modality="XR")
    truth = image_bodies(14)
    model = KnownOutput(Letterbox.fit(image.sagittal_slices()[0].shape).to_box(truth))
    first_look_only(monkeypatch, model)
    f = xr_frontal.analyze(image).findings
    assert [v.level for v in f.vertebrae] == LEVELS[3:]
    assert f.summary == () and "found 14 of the 17 vertebrae" in f.summary_withheld


def test_a_missing_body_in_the_chain_is_flagged_at_its_place(tmp_path, monkeypatch):
    image = read_image(radiograph_file(tmp_path), modality="XR")
    truth = np.delete(image_bodies(17), 8, axis=0)
    model = KnownOutput(Letterbox.fit(image.sagittal_slices()[0].shape).to_box(truth))
    first_look_only(monkeypatch, model)
    f = xr_frontal.analyze(image).findings
    gaps = [r for r in f.needs_review if r.startswith("gap between")]
    assert f.vertebrae[0].level == "T2"  # 16 found: named up from L5, so those above the gap are one name too low
    assert gaps == [
        "gap between T9 and T10 2.0 times the usual step: a vertebra may be missing there and every name above it "
        "would be wrong"
    ]


def test_radiographs_route_to_the_frontal_pipeline_and_mri_to_the_sagittal_one(tmp_path):
    path = radiograph_file(tmp_path)
    assert route(read_image(path, modality="XR")).pipeline is xr_frontal
    assert route(read_image(path, modality="MR")).pipeline.NAME == "mr_sagittal"
    assert xr_frontal.refusal(read_image(path, modality="MR")).startswith("MR images")


def test_a_written_radiograph_study_has_its_report_and_findings(tmp_path, monkeypatch):
    from lumbar.outputs import write_result

    image = read_image(radiograph_file(tmp_path), modality="XR")
    truth = image_bodies(17)
    model = KnownOutput(Letterbox.fit(image.sagittal_slices()[0].shape).to_box(truth))
    first_look_only(monkeypatch, model)
    written = write_result(xr_frontal.analyze(image), tmp_path / "out")
    folder = Path(written.folder)
    document = json.loads((folder / "findings.json").read_text())
    assert document["view"] == "frontal" and len(document["vertebrae"]) == 17
    assert document["vertebrae"][0]["corners_px"][0] == pytest.approx(list(truth[0, 0]), abs=0.05)
    html = (folder / "report.html").read_text()
    assert "Spine radiograph analysis" in html and "Cobb angles" in html and "Discs" not in html
    labels = np.asarray(Image.open(folder / "instances" / "segmentation.png"))
    assert set(np.unique(labels)) == {0, *[VERTEBRA_IDS[n] for n in LEVELS]}


def test_shipped_network_finds_the_vertebrae_of_real_frontal_radiographs():
    root = shared("xray_ap")
    test = [r for r in read_part(root, "test") if not r.repeats_training][:6]
    from lumbar.metrics import corner_errors

    for r in test:
        image = read_image(r.path, modality="XR")
        assert image.modality is Modality.RADIOGRAPH
        found = xr_frontal.find_vertebrae(image.sagittal_slices()[0])
        corners = np.array([v.corners for v in found])
        _, relative, missed = corner_errors(r.corners, corners)
        assert len(found) == 17 and missed <= 4, r.name  # bench/radiograph.py: 183 of 1921 missed on the test films
        assert np.median(relative) < 40.0, r.name  # median 19.5% over the test films


def test_pictures_of_unstated_modality_are_told_apart_by_the_radiograph_network():
    radiographs = sorted(shared("xray_ap", "images", "test").glob("*.jpg"))[:10]
    mri = (
        sorted(shared("spider", "midsag").glob("*_t2.png"))[:6]
        + sorted(shared("spider", "midsag").glob("*_t1.png"))[:6]
    )
    recognised = [p for p in radiographs if xr_frontal.reads_as_radiograph(read_image(p))]
    assert len(recognised) >= 8  # bench/radiograph.py: 108 of the 113 test films
    image = read_image(recognised[0])
    assert image.modality_guessed
    assert route(image).pipeline is xr_frontal and route(image).image.modality is Modality.RADIOGRAPH
    for path in mri:
        assert not xr_frontal.reads_as_radiograph(read_image(path)), path.name  # none of SPIDER's 360


def test_a_dicom_radiograph_is_routed_by_its_modality_and_measured_in_mm(tmp_path, monkeypatch):
    from test_readers import write_dicom

    rng = np.random.default_rng(1)
    path = write_dicom(tmp_path / "xr.dcm", rng.integers(0, 4000, (1000, 420)), "DX", ImagerPixelSpacing=[0.2, 0.25])
    image = read_image(path)
    chosen = route(image)
    assert chosen.pipeline is xr_frontal and not image.modality_guessed
    truth = image_bodies(17)
    model = KnownOutput(Letterbox.fit(image.sagittal_slices()[0].shape).to_box(truth))
    first_look_only(monkeypatch, model)
    f = xr_frontal.analyze(chosen.image).findings
    assert f.units == "mm" and f.input.modality == "XR"
    level = f.vertebrae[0]  # T1: not tilted, so its sides run along the rows (0.2 mm each)
    assert level.frontal.height_right == pytest.approx(24.0 * 0.2, abs=0.02)
    steepest = max(f.vertebrae, key=lambda v: abs(v.frontal.tilt_deg))  # 15 degrees in pixels, less in mm
    k = f.vertebrae.index(steepest)
    tilt = np.radians(15.0 * np.sin(np.linspace(0, 2 * np.pi, 17))[k])
    expected = np.degrees(np.arctan2(np.sin(tilt) * 0.2, np.cos(tilt) * 0.25))
    assert steepest.frontal.tilt_deg == pytest.approx(expected, abs=0.05)
    np.testing.assert_allclose([v.corners_px for v in f.vertebrae], truth, atol=0.05)  # corners stay in pixels
    assert not any("spacing" in reason for reason in f.needs_review)


def test_two_bodies_found_too_close_are_flagged(tmp_path, monkeypatch):
    image = read_image(radiograph_file(tmp_path), modality="XR")
    bodies = image_bodies(17)
    bodies[6] = (bodies[5] + bodies[7]) / 2 - np.array([0.0, 30.0])  # T7 found just below T6: 0.4 steps apart
    model = KnownOutput(Letterbox.fit(image.sagittal_slices()[0].shape).to_box(bodies))
    first_look_only(monkeypatch, model)
    f = xr_frontal.analyze(image).findings
    assert [r for r in f.needs_review if "apart" in r] == [
        "T6 and T7 only 0.4 times the usual step apart: one of them may not be a vertebra, and every name above it "
        "would be wrong"
    ]
    assert f.summary == () and "T6 and T7 only" in f.summary_withheld


def test_a_monochrome1_film_is_read_inverted_so_bone_stays_bright(tmp_path):
    import pydicom
    from test_readers import write_dicom

    pixels = np.zeros((60, 40), np.uint16)
    pixels[20:30, 10:30] = 1000  # bone, stored dark-is-high
    normal = read_image(write_dicom(tmp_path / "m2.dcm", pixels, "DX", ImagerPixelSpacing=[0.2, 0.2]))
    path = write_dicom(tmp_path / "m1.dcm", 1000 - pixels, "DX", ImagerPixelSpacing=[0.2, 0.2])
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(path)
    inverted = read_image(path)
    np.testing.assert_array_equal(inverted.sagittal_slices()[0], normal.sagittal_slices()[0])


def test_a_study_mixing_mri_and_a_film_is_refused_with_same_patient(tmp_path):
    import nibabel as nib
    from test_readers import write_dicom

    from lumbar.api import analyze_patient
    from lumbar.errors import InputError
    from lumbar.phantom import make_phantom

    film = write_dicom(tmp_path / "xr.dcm", np.random.default_rng(0).integers(0, 4000, (200, 100)), "DX")
    mri = tmp_path / "t2.nii.gz"
    phantom = make_phantom(shape=(3, 160, 144), seed=1).image
    nib.save(nib.Nifti1Image(phantom.array.astype(np.float32), phantom.affine), mri)
    with pytest.raises(InputError, match="need different pipelines"):
        analyze_patient([str(mri), str(film)])


def records(**entries):
    from lumbar.validation import Validation

    return {name: Validation(name=name, **fields) for name, fields in entries.items()}


def test_a_basis_with_few_negative_patients_states_the_exact_bound_on_the_false_positive_rate():
    """The bound is what 0 calls among a few patients leave open: the reader sees it beside the measured 0.0%."""
    from lumbar.validation import Validation

    fields = {"sensitivity": 0.71, "false_positive_rate": 0.0, "n_positive": 24, "n_negative": 39, "reference": "x"}
    with_bound = Validation(
        "cobb_major_40", True, 45.5, false_positive_rate_upper95=0.1615, negative_patients=17, **fields
    )
    expected = "called 0.0% of the 39 the expert graded normal (with 95% confidence at most 17%, counting each of "
    assert expected + "their 17 patients once)" in with_bound.basis()  # 16.2% rounded up, never down
    assert "95% confidence" not in Validation("cobb_major_40", True, 45.5, **fields).basis()


def test_the_shipped_radiograph_record_states_its_bound_over_the_negative_patients():
    """``bench/radiograph.py --ship`` writes the exact one-sided 95% bound over patients: 0 calls in n patients
    bound the rate at 1 - 0.05^(1/n)."""
    from lumbar.validation import load_validation

    record = load_validation()["cobb_major_40"]
    assert record.negative_patients > 0 and record.false_positive_rate_upper95 > record.false_positive_rate
    if record.false_positive_rate == 0.0:
        bound = 1 - 0.05 ** (1 / record.negative_patients)
        assert record.false_positive_rate_upper95 == pytest.approx(bound, abs=1e-9)
    assert f"counting each of their {record.negative_patients} patients once" in record.basis()
    # the films it names are those the point was measured on (without review flags), not every test film
    films = int(re.search(r"\((\d+) test radiographs without review flags", record.reference).group(1))
    assert films == record.n_positive + record.n_negative


def test_the_summary_states_a_curve_of_40_degrees_only_from_a_validated_record_for_these_weights(monkeypatch):
    from lumbar.findings import CobbAngle

    curves = [CobbAngle(curve="major", angle_deg=47.0, upper_vertebra="T6", lower_vertebra="T12")]
    validated = {
        "validated": True,
        "threshold": 42.5,
        "sensitivity": 0.8,
        "false_positive_rate": 0.04,
        "n_positive": 20,
        "n_negative": 40,
        "model_sha256": "abc",
        "positives": "films at 40° or more",
        "negatives": "below 40°",
    }
    monkeypatch.setattr(xr_frontal, "load_validation", lambda: records(cobb_major_40=validated))
    summary, not_validated = xr_frontal.cobb_statements(curves, "abc")
    assert [s.text for s in summary] == [
        "Scoliosis: a major curve of 40° or more (stated where the angle read is 42.5° or more)."
    ]
    assert "47" not in summary[0].text  # the angle's value is not validated: the tables give it, marked
    assert "T6" not in summary[0].text and "found 80% of the expert's 20 films at 40° or more" in summary[0].basis
    assert set(not_validated) == {"level_names", "cobb_angle_values", "vertebra_measurements"}
    assert xr_frontal.cobb_statements(curves, "other weights")[0] == []
    below = [curves[0].model_copy(update={"angle_deg": 42.0})]
    assert xr_frontal.cobb_statements(below, "abc")[0] == []
    monkeypatch.setattr(
        xr_frontal, "load_validation", lambda: records(cobb_major_40={**validated, "validated": False, "why": "5.1%"})
    )
    summary, not_validated = xr_frontal.cobb_statements(curves, "abc")
    assert summary == [] and not_validated["cobb_angles"] == "not validated: 5.1%"


def test_augmentation_moves_the_corners_with_the_pixels_and_swaps_sides_when_mirrored():
    from lumbar.train.radiograph import random_geometry

    corners = spine([0.0, 20.0], top=200.0, step=60.0, x=128.0)
    image = np.zeros(RADIOGRAPH_SHAPE, np.float32)
    for quad in corners:
        for k, (x, y) in enumerate(quad):
            image[round(y) - 1 : round(y) + 2, round(x) - 1 : round(x) + 2] = 0.25 * (k + 1)  # each corner its own grey
    rng = np.random.default_rng(3)
    mirrored_seen = False
    for _ in range(8):
        warped, moved = random_geometry(image, corners, rng)
        for quad in moved:
            values = [warped[round(y), round(x)] for x, y in quad]
            assert all(v > 0.1 for v in values)  # every moved corner lands on its dot
            assert quad[0, 0] < quad[1, 0] and quad[3, 0] < quad[2, 0]  # left stays left, mirrored or not
            mirrored_seen |= values[0] > values[1] + 0.1  # the dot drawn as right-superior is now on the left
    assert mirrored_seen


def test_training_runs_and_resumes_on_the_real_films(tmp_path):
    from lumbar.train.radiograph import RadiographConfig, train_radiograph

    data = shared("xray_ap")
    cfg = RadiographConfig(data=str(data), out=str(tmp_path), epochs=1, batch_size=2, limit=4)
    train_radiograph(cfg)
    cfg.epochs = 2
    path = train_radiograph(cfg)
    log = (tmp_path / "train.log").read_text()
    assert "resumed after epoch 1" in log and path.is_file()
    assert json.loads((tmp_path / "radiograph.json").read_text())["trained_epochs"] == 2


def test_two_curves_ending_at_one_vertebra_both_show_their_line_there():
    """The major curve's line at an end vertebra it shares with a minor curve was drawn over by the minor's: a
    reader could not tell where the major curve began. The second line is dashed over the first."""
    from lumbar.tasks.overlays import CURVE_COLOURS, radiograph_overlay

    def body(top: float) -> np.ndarray:
        return np.array([[80, top], [120, top], [120, top + 20], [80, top + 20]], float)

    shared = body(100)
    drawn = radiograph_overlay(
        np.zeros((300, 200), np.uint8), [], [(30.0, body(20), shared), (20.0, shared, body(200))]
    )
    row = drawn[round(110 * 420 / 200)]  # the shared body's mid-line, at the overlay's scale
    colours = {tuple(int(v) for v in pixel) for pixel in row}
    assert CURVE_COLOURS[0] in colours and CURVE_COLOURS[1] in colours


def test_a_run_is_resumed_only_on_the_split_it_started_with(tmp_path):
    """The grouping of the radiographs was corrected (second copies and repeats joined to their patient): a run
    folder from before it, resumed, would go on training with some of its training films now among the validation
    ones. A run records its split and resumes only on the same one."""
    from lumbar.errors import InputError
    from lumbar.train.radiograph import keep_split

    groups = {"training": ["1", "2"], "validation": ["3"]}
    keep_split(tmp_path, groups)
    keep_split(tmp_path, groups)  # the same split: resumed
    with pytest.raises(InputError, match="split otherwise"):
        keep_split(tmp_path, {"training": ["1"], "validation": ["2", "3"]})
    old = tmp_path / "old"
    old.mkdir()
    (old / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(InputError, match="from before its split was recorded"):
        keep_split(old, groups)
