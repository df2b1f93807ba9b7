"""Lateral radiographs: synthetic films from a label map, films from a CT, the pipeline's reading, naming, findings
and routing, the training run. Known answers from the phantom's truth and from hand-placed network outputs."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lumbar.cli import app
from lumbar.image import Modality, SpineImage
from lumbar.phantom import make_phantom
from lumbar.pipelines import xr_lateral
from lumbar.preprocess import LATERAL_OUTPUTS, LATERAL_SHAPE, Letterbox
from lumbar.tasks import lateral
from lumbar.tasks.corners import targets
from lumbar.tasks.measurements import CUT_BY_EDGE
from lumbar.train.lateral_drr import (
    PIXEL_MM,
    Anatomy,
    anatomy_from_labels,
    ct_film,
    neural_arches,
    render,
    trabecular_texture,
)


def phantom_anatomy(seed: int = 3, series: str | None = None) -> tuple[Anatomy, object]:
    phantom = make_phantom(shape=(7, 320, 288), seed=seed, wedge={"L1": 0.25})
    mid = phantom.image.sagittal_slices().shape[0] // 2
    instances = phantom.image.with_array(phantom.instances).sagittal_slices()[mid]
    picture = phantom.image.sagittal_slices()[mid]
    names = {v.label: v.level for v in phantom.vertebrae if v.level != "S1"}  # MRI leaves the sacrum unlabelled
    anatomy = anatomy_from_labels(
        series or f"{seed}_t2", instances, picture, names, phantom.image.sagittal_spacing_mm()
    )
    return anatomy, phantom


@pytest.fixture(scope="module")
def anatomy():
    return phantom_anatomy()


def test_an_anatomy_from_a_label_map_has_its_bodies_named_and_cornered(anatomy):
    a, phantom = anatomy
    truth = {v.level: v for v in phantom.vertebrae}
    assert a.names == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    heights = lateral.heights(a.corners * PIXEL_MM)
    tilts = lateral.superior_tilt_deg(a.corners)
    for name, h, tilt in zip(a.names[:-1], heights, tilts):  # corners on the rounded outline: 1-3 mm short
        assert 0 < truth[name].height_anterior_mm - h[0] < 3.5, name
        assert 0 < truth[name].height_posterior_mm - h[2] < 3.5, name
        assert tilt == pytest.approx(truth[name].upper_endplate_deg, abs=3.0), name
    l1 = heights[a.names.index("L1")]
    assert l1[0] / l1[2] == pytest.approx(truth["L1"].height_anterior_mm / truth["L1"].height_posterior_mm, abs=0.05)
    # S1's superior endplate is the L5/S1 disc's lower surface: it lies just below L5's inferior corners
    gap = np.linalg.norm(a.corners[-1][[lateral.AS, lateral.PS]] - a.corners[-2][[lateral.AI, lateral.PI]], axis=1)
    assert (gap * PIXEL_MM < 20).all()  # a disc's height and the corners' rounding
    assert lateral.superior_tilt_deg(a.corners[-1])[0] > lateral.superior_tilt_deg(a.corners[-2])[0]


def test_an_anatomy_needs_l5_and_the_disc_below_it():
    phantom = make_phantom(shape=(7, 320, 288), seed=3)
    mid = 3
    instances = phantom.image.with_array(phantom.instances).sagittal_slices()[mid].copy()
    instances[instances == 124] = 0  # no L5/S1 disc
    names = {v.label: v.level for v in phantom.vertebrae if v.level != "S1"}
    assert anatomy_from_labels("x", instances, phantom.image.sagittal_slices()[mid], names, (1.0, 1.0)) is None


def test_anatomy_round_trips_through_its_file(anatomy, tmp_path):
    a, _ = anatomy
    a.save(tmp_path / "a.npz")
    back = Anatomy.load(tmp_path / "a.npz")
    assert back.names == a.names and back.patient == "3" and np.allclose(back.corners, a.corners)
    assert set(back.layers) == set(a.layers)


def test_a_rendered_film_shows_bone_brighter_than_disc_and_is_reproducible(anatomy):
    a, _ = anatomy
    films = [render(a, np.random.default_rng(seed)) for seed in range(4)]
    bodies = a.layers["trabecular"] > 0.5
    discs = (a.layers["disc"] > 0.5) & ~bodies
    for film in films:
        assert film.shape == a.layers["soft"].shape and np.isfinite(film).all()
        assert film[bodies].mean() > film[discs].mean()
    assert np.array_equal(render(a, np.random.default_rng(1)), films[1])
    assert not np.array_equal(films[0], films[1])


def test_a_film_from_a_ct_has_the_true_corners_of_its_bodies():
    """Boxes of bone (400 HU) in water, separated by discs, surrounded by air: the film's corners are the boxes'."""
    hu = np.full((60, 80, 100), -1000.0)  # RAS: x (left-right), y (posterior -> anterior), z (inferior -> superior)
    hu[5:55, 10:70, 5:95] = 0.0
    labels = np.zeros(hu.shape, int)
    names = {}
    for k, z0 in enumerate((10, 40, 70)):  # three bodies 20 mm tall, 10 mm apart, 36 mm deep
        hu[15:45, 30:66, z0 : z0 + 20] = 400.0
        labels[15:45, 30:66, z0 : z0 + 20] = 20 + k
        names[20 + k] = ("L3", "L2", "L1")[k]
    film, corners, found = ct_film(hu, labels, (1.0, 1.0, 1.0), names)
    assert found == ["L1", "L2", "L3"]  # top to bottom
    h = lateral.heights(corners * PIXEL_MM)
    assert h[:, 0] == pytest.approx([20, 20, 20], abs=1.5) and h[:, 2] == pytest.approx([20, 20, 20], abs=1.5)
    depth = np.linalg.norm(corners[:, lateral.AS] - corners[:, lateral.PS], axis=1) * PIXEL_MM
    assert depth == pytest.approx([36, 36, 36], abs=1.5)
    assert (corners[:, lateral.AS, 0] < corners[:, lateral.PS, 0]).all()  # anterior is left
    rows = corners[:, :, 1].mean(1)
    assert (
        film[int(rows[0]), int(corners[0, :, 0].mean())]
        > film[int((rows[0] + rows[1]) / 2), int(corners[0, :, 0].mean())]
    )


def test_a_ct_films_truth_is_each_body_not_a_larger_arch_and_not_a_vertebra_the_field_cuts():
    """On the mid-sagittal slice a spinous process and laminae can outsize the body (VerSe 012's L1 did): the truth
    is the front piece. A vertebra the field of view ends in has no true corners and is no truth, even where what is
    left of its body is a sliver beside a whole arch."""
    hu = np.full((60, 100, 100), -1000.0)
    hu[5:55, 5:95, :] = 0.0
    labels = np.zeros(hu.shape, int)
    names = {20: "L3", 21: "L2", 22: "L1"}
    parts = {  # (body's rows, arch's rows) head to feet, z up: L1's body runs out of the field at the top
        20: ((20, 40), (15, 40)),
        21: ((50, 70), (45, 70)),
        22: ((95, 100), (70, 98)),
    }
    for label, ((b0, b1), (a0, a1)) in parts.items():
        body = (slice(15, 45), slice(60, 90), slice(b0, b1))
        arch = (slice(25, 35), slice(10, 50), slice(a0, a1))  # posterior, larger on the middle slice
        for part in (body, arch):
            hu[part], labels[part] = 400.0, label
    _, corners, found = ct_film(hu, labels, (1.0, 1.0, 1.0), names)
    assert found == ["L2", "L3"]
    depth = np.linalg.norm(corners[:, lateral.AS] - corners[:, lateral.PS], axis=1) * PIXEL_MM
    assert depth == pytest.approx([30, 30], abs=1.5)  # the body's 30 mm, not the arch's 40
    assert (corners[:, :, 0] * PIXEL_MM < 45).all()  # in front: the body lies 10-40 mm from the film's front edge


def test_the_neural_arches_lie_behind_their_own_body(anatomy):
    a, _ = anatomy
    shape = a.layers["soft"].shape
    arch = neural_arches(shape, a.corners[:-1], 0.5, 2.0, np.random.default_rng(0))
    assert (arch >= 0).all() and arch.max() > 1.0
    rows, cols = np.nonzero(arch > 0.05)
    assert cols.min() > a.corners[:-1, :, 0].min()  # anterior is left: nothing of an arch in front of the bodies
    for c in a.corners[:-1]:  # at the pedicle's rows, its arch behind its posterior wall (the pedicle's root on it)
        top, bottom = c[lateral.PS, 1], c[lateral.PI, 1]
        level = (rows > top + 0.2 * (bottom - top)) & (rows < top + 0.4 * (bottom - top))
        wall, depth = max(c[lateral.PS, 0], c[lateral.PI, 0]), np.linalg.norm(c[lateral.PS] - c[lateral.AS])
        assert level.any() and (cols[level] > wall - 0.2 * depth).mean() > 0.95 and np.median(cols[level]) > wall


def test_the_trabecular_texture_keeps_the_bones_mean_and_varies():
    texture = trabecular_texture((300, 200), np.random.default_rng(1))
    assert texture.mean() == pytest.approx(1.0, abs=0.05) and 0.02 < texture.std() < 0.4


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class PlacedNetwork:
    """A stand-in for the lateral network: its outputs put bodies where ``corners`` (pixels of a film whose patient
    faces left) say, in the reading of the film as given (``faces_right`` False) or, for a film whose patient faces
    right, in the reading of its mirror, where the patient faces left again (True); the other reading finds nothing.
    S1's mark sits on body ``s1_index`` (None: no mark)."""

    def __init__(self, film_shape, corners, faces_right=False, s1_index=-1):
        self.box = Letterbox.fit(film_shape, LATERAL_SHAPE)
        self.corners, self.faces_right, self.s1_index = np.asarray(corners), faces_right, s1_index
        self.version, self.meta, self.sha256 = "placed@0steps", {}, ""

    def __call__(self, batch):
        out = np.full((len(batch), LATERAL_OUTPUTS, *LATERAL_SHAPE), -20.0, np.float32)
        in_box = self.box.to_box(self.corners)
        heat, offsets, _ = targets(in_box, LATERAL_SHAPE)
        k = 1 if self.faces_right else 0
        out[k, 0] = _logit(0.9 * heat)
        out[k, 1:9] = offsets
        if self.s1_index is not None:
            out[k, 9] = _logit(targets(in_box[[self.s1_index]], LATERAL_SHAPE)[0])
        return out


def _film_and_truth(anatomy):
    a, _ = anatomy
    return render(a, np.random.default_rng(0)), a.corners, a.names


def test_the_pipeline_reads_bodies_names_them_from_s1_and_measures_them(anatomy):
    film, corners, names = _film_and_truth(anatomy)
    network = PlacedNetwork(film.shape, corners)
    reading = xr_lateral.read_film(film, network)
    assert not reading.faces_right
    found, found_names, flags = xr_lateral.names_and_flags(reading)
    assert found_names == names and not flags
    got = np.array([v.corners for v in found])
    assert np.abs(got - corners).max() < 1.5  # decoding loses under a pixel at this letterbox scale
    image = SpineImage.from_sagittal_slices(film[None], (PIXEL_MM,) * 3, modality=Modality.RADIOGRAPH)
    seg, found, faces_right = xr_lateral.detect(image, model=network)
    findings = xr_lateral.build_findings(seg, found, faces_right)
    truth = lateral.alignment(names, corners * PIXEL_MM)
    assert findings.view == "lateral" and findings.units == "mm"
    assert findings.lordosis_deg == pytest.approx(truth.lordosis_deg, abs=2.0)
    assert [v.level for v in findings.vertebrae] == names
    assert [d.level for d in findings.discs] == ["T11/T12", "T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]
    l1 = next(v for v in findings.vertebrae if v.level == "L1").measurements
    assert l1.wedge_ratio == pytest.approx(0.75, abs=0.08)  # the phantom's L1 lost a quarter of its front
    assert findings.summary == () and "synthetic lateral films only" in findings.summary_withheld
    assert next(v for v in findings.vertebrae if v.level == "S1").measurements is None


def test_a_film_of_a_patient_facing_right_is_read_mirrored_with_corners_in_its_own_pixels(anatomy):
    film, corners, names = _film_and_truth(anatomy)
    mirrored = film[:, ::-1].copy()
    truth = lateral.facing_left(corners, film.shape[1])  # the same bodies, now facing right
    network = PlacedNetwork(mirrored.shape, corners, faces_right=True)
    reading = xr_lateral.read_film(mirrored, network)
    assert reading.faces_right
    found, found_names, _ = xr_lateral.names_and_flags(reading)
    got = np.array([v.corners for v in found])
    assert found_names == names and np.abs(got - truth).max() < 1.5
    assert (got[:, lateral.AS, 0] > got[:, lateral.PS, 0]).all()  # anterior now on the right
    image = SpineImage.from_sagittal_slices(mirrored[None], (PIXEL_MM,) * 3, modality=Modality.RADIOGRAPH)
    seg, found, faces_right = xr_lateral.detect(image, model=network)
    findings = xr_lateral.build_findings(seg, found, faces_right)
    assert findings.lordosis_deg == pytest.approx(lateral.alignment(names, corners * PIXEL_MM).lordosis_deg, abs=2.0)


def test_without_a_sacrum_names_count_from_the_lowest_body_as_l5_and_say_so(anatomy):
    film, corners, names = _film_and_truth(anatomy)
    reading = xr_lateral.read_film(film, PlacedNetwork(film.shape, corners[:-1], s1_index=None))
    found, found_names, flags = xr_lateral.names_and_flags(reading)
    assert found_names[-1] == "L5" and len(found) == len(names) - 1
    assert any(f.startswith("no sacrum found") for f in flags)


def test_bodies_below_s1_are_not_named(anatomy):
    film, corners, names = _film_and_truth(anatomy)
    below = corners[-1] + [0, 40]  # a sacral segment's outline found under S1
    network = PlacedNetwork(film.shape, np.concatenate([corners, below[None]]), s1_index=len(corners) - 1)
    found, found_names, _ = xr_lateral.names_and_flags(xr_lateral.read_film(film, network))
    assert found_names == names and len(found) == len(names)


def test_a_lateral_dicom_view_or_view_option_routes_to_the_lateral_pipeline(anatomy, monkeypatch):
    from lumbar.pipelines.router import route

    film, _, _ = _film_and_truth(anatomy)
    image = SpineImage.from_sagittal_slices(film[None], (PIXEL_MM,) * 3, modality=Modality.RADIOGRAPH, view="lateral")
    monkeypatch.setattr(xr_lateral.REGISTRY["radiograph_lateral"].__class__, "shipped", property(lambda self: True))
    assert route(image).pipeline is xr_lateral
    frontal = SpineImage.from_sagittal_slices(film[None], (PIXEL_MM,) * 3, modality=Modality.RADIOGRAPH, view="frontal")
    assert route(frontal).pipeline.NAME == "xr_frontal"
    assert xr_lateral.refusal(frontal) == "not a lateral radiograph"


def test_dicom_view_position_gives_the_view():
    import pydicom

    from lumbar.io.dicom import view_of

    ds = pydicom.Dataset()
    assert view_of(ds) is None
    for position, view in (("LL", "lateral"), ("lat", "lateral"), ("AP", "frontal"), ("PA", "frontal"), ("", None)):
        ds.ViewPosition = position
        assert view_of(ds) == view


def test_a_view_that_is_neither_is_refused_in_one_line(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "x.png")
    result = CliRunner().invoke(
        app, ["analyze", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--view", "oblique"]
    )
    assert result.exit_code == 2 and "frontal or lateral" in result.output and "Traceback" not in result.output


def test_training_runs_on_synthetic_films_and_exports_a_record(tmp_path):
    from lumbar.train.radiograph_lateral import LateralConfig, train_lateral

    out = tmp_path / "run"
    (out / "anatomies").mkdir(parents=True)
    for seed in range(6):  # six phantom "patients"
        a, _ = phantom_anatomy(seed=seed, series=f"{seed}_t2")
        a.save(out / "anatomies" / f"{seed}_t2.npz")
    cfg = LateralConfig(
        data=str(tmp_path / "no_spider"),
        out=str(out),
        epochs=2,
        steps_per_epoch=2,
        batch_size=2,
        val_films=1,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    path = train_lateral(cfg)
    record = json.loads(path.with_suffix(".json").read_text())
    split = record["split_patients"]
    assert len(split["test"]) == 1 and len(split["validation"]) == 1 and len(split["training"]) == 4
    assert not set(split["test"]) & set(split["training"]) and record["trained_epochs"] == 2
    assert len(record["history"]) == 2 and "capped_error_mm" in record["validation"]
    cfg.epochs = 3
    train_lateral(cfg)  # resumes after epoch 2
    assert len(json.loads(path.with_suffix(".json").read_text())["history"]) == 3


def test_a_lateral_film_is_analysed_end_to_end_into_findings_and_a_report(anatomy, tmp_path, monkeypatch):
    import jsonschema
    from PIL import Image

    from lumbar.api import analyze

    film, corners, names = _film_and_truth(anatomy)
    grey = np.clip((film - film.min()) / np.ptp(film) * 255, 0, 255).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "film.png")
    monkeypatch.setattr(xr_lateral.REGISTRY["radiograph_lateral"].__class__, "shipped", property(lambda self: True))
    monkeypatch.setattr(xr_lateral, "lateral_model", lambda: PlacedNetwork(film.shape, corners))
    result = analyze(tmp_path / "film.png", tmp_path / "out", modality="XR", view="lateral", spacing_mm=PIXEL_MM)
    folder = tmp_path / "out" / "film"
    data = json.loads((folder / "findings.json").read_text())
    schema = json.loads((Path(__file__).resolve().parents[1] / "lumbar" / "findings.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert data["view"] == "lateral" and [v["level"] for v in data["vertebrae"]] == names
    assert data["lordosis_deg"] == pytest.approx(lateral.alignment(names, corners * PIXEL_MM).lordosis_deg, abs=2.5)
    html = (folder / "report.html").read_text()
    assert "Spine radiograph analysis" in html and "Lumbar lordosis (L1–S1 superior endplates)" in html
    assert "ant-sup, post-sup, post-inf, ant-inf" in html and result.findings.summary == ()


def test_a_dicom_film_marked_lateral_is_never_read_as_frontal(tmp_path, monkeypatch):
    from test_readers import write_dicom

    from lumbar.io import read_image
    from lumbar.pipelines.router import UnsupportedImage, route

    pixels = np.random.default_rng(1).integers(0, 4000, (300, 240))
    image = read_image(
        write_dicom(tmp_path / "lat.dcm", pixels, "DX", ViewPosition="LL", ImagerPixelSpacing=[0.2, 0.2])
    )
    assert image.view == "lateral" and not image.view_guessed
    monkeypatch.setattr(xr_lateral.REGISTRY["radiograph_lateral"].__class__, "shipped", property(lambda self: False))
    with pytest.raises(UnsupportedImage, match="no lateral radiograph model ships"):
        route(image)
    monkeypatch.setattr(xr_lateral.REGISTRY["radiograph_lateral"].__class__, "shipped", property(lambda self: True))
    assert route(image).pipeline is xr_lateral


def test_a_tall_film_names_thoracic_bodies_but_reports_discs_from_t9_down():
    film = np.random.default_rng(0).normal(0, 1, (1000, 300)).astype(np.float32)
    box = np.array([[100.0, 20.0], [140.0, 20.0], [140.0, 60.0], [100.0, 60.0]])
    corners = np.stack([box + np.array([0.0, 95.0 * k]) for k in range(10)])
    image = SpineImage.from_sagittal_slices(film[None], (PIXEL_MM,) * 3, modality=Modality.RADIOGRAPH)
    network = PlacedNetwork(film.shape, corners, s1_index=None)
    seg, found, faces_right = xr_lateral.detect(image, model=network)
    findings = xr_lateral.build_findings(seg, found, faces_right)
    assert [v.level for v in findings.vertebrae] == ["T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    assert findings.discs[0].level == "T9/T10" and len(findings.discs) == 8
    assert any(reason.startswith("no sacrum found") for reason in findings.needs_review)
    assert findings.lordosis_deg is None  # no S1


def test_a_stated_view_makes_a_picture_of_unstated_modality_a_radiograph():
    from lumbar.api import with_view

    picture = SpineImage.from_sagittal_slices(
        np.zeros((1, 20, 20)), (1.0,) * 3, modality=Modality.MR, modality_guessed=True
    )
    stated = with_view(picture, "Lateral")
    assert stated.view == "lateral" and stated.modality is Modality.RADIOGRAPH and not stated.view_guessed
    mri = SpineImage.from_sagittal_slices(np.zeros((1, 20, 20)), (1.0,) * 3, modality=Modality.MR)
    assert with_view(mri, "frontal").modality is Modality.MR  # a file that states MR stays MR
    assert with_view(mri, None) is mri


def test_an_outline_off_the_column_is_left_out_before_the_bodies_are_named(anatomy):
    film, corners, names = _film_and_truth(anatomy)
    blob = corners[3] + [70, 0]  # an outline behind L1: a posterior element read as a body
    placed = np.concatenate([corners[:3], blob[None], corners[3:]])
    network = PlacedNetwork(film.shape, placed, s1_index=len(placed) - 1)
    found, found_names, flags = xr_lateral.names_and_flags(xr_lateral.read_film(film, network))
    assert found_names == names and len(found) == len(names)
    assert flags[0] == "1 outline(s) off the spinal column left out"


def test_a_film_in_which_neither_network_reads_a_spine_is_not_called_lateral(anatomy):
    film, corners, _ = _film_and_truth(anatomy)
    noise = np.random.default_rng(0).normal(0, 1, film.shape).astype(np.float32)
    nothing = PlacedNetwork(film.shape, corners[:0], s1_index=None)
    assert xr_lateral.radiograph_view(noise, nothing) == "frontal"
    assert xr_lateral.radiograph_view(film, PlacedNetwork(film.shape, corners)) == "lateral"


def test_a_space_between_bodies_as_tall_as_a_body_says_one_was_missed():
    """Bodies 25 px tall, discs 10 px: none flagged; one body left out leaves a 45 px space (1.8 times a body):
    flagged, by name; a space 1.2 times its bodies (below ``TALL_SPACE_FACTOR``, where network readings of whole
    spines still fall) is not. S1's height (its inferior pair is a definition) does not enter the ratio."""
    from lumbar.tasks.corners import FoundVertebra

    def body(top: float) -> FoundVertebra:
        corners = np.array([[100, top], [140, top], [140, top + 25], [100, top + 25]], float)
        return FoundVertebra(corners.mean(0), corners, 0.9)

    names = ["L2", "L3", "L4", "L5", "S1"]
    found = [body(35.0 * k) for k in range(5)]
    assert xr_lateral.tall_space_flags(found, names) == []
    missing = found[:2] + found[3:]
    flags = xr_lateral.tall_space_flags(missing, ["L3", "L4", "L5", "S1"])
    assert len(flags) == 1 and flags[0].startswith("space between L4 and L5 1.8 times their height")
    short = np.add(found[4].corners, [0, 8])  # L5/S1 18 px (0.7 of L5), S1 drawn 1 px tall: its height is no body's
    short[[lateral.PI, lateral.AI], 1] = short[lateral.PS, 1] + 1
    s1 = [*found[:4], FoundVertebra(short.mean(0), short, 0.9)]
    assert xr_lateral.tall_space_flags(s1, names) == []
    assert lateral.space_ratios([v.corners for v in s1], names)[-1] == pytest.approx(18 / 25)
    moved = np.add(found[1].corners, [0, 20])  # a 30 px space, 1.2 times its bodies: a disc read tall
    taller = [found[0], FoundVertebra(moved.mean(0), moved, 0.9)]
    assert lateral.space_ratios([v.corners for v in taller], names[:2]) == pytest.approx(
        [1.2]
    ) and not xr_lateral.tall_space_flags(taller, names[:2])


def test_a_body_whose_corners_cross_is_not_measured_nor_are_the_discs_beside_it():
    """The network's corners are used in the order it gives them; a body whose superior pair came out swapped (its
    outline crosses itself) read 7.5 mm in the middle against 11.7 at its walls: a Genant grade 2 for a whole body
    (found in review). It is measured not at all, nor the two discs beside it, and the review says why."""
    film = np.random.default_rng(0).normal(0, 1, (700, 300)).astype(np.float32)
    box = np.array([[100.0, 20.0], [140.0, 20.0], [140.0, 60.0], [100.0, 60.0]])
    corners = np.stack([box + np.array([0.0, 95.0 * k]) for k in range(7)])
    corners[3] = corners[3][[1, 0, 2, 3]]  # L3's anterior- and posterior-superior corners exchanged
    image = SpineImage.from_sagittal_slices(film[None], (PIXEL_MM,) * 3, modality=Modality.RADIOGRAPH)
    seg, found, faces_right = xr_lateral.detect(image, model=PlacedNetwork(film.shape, corners))
    findings = xr_lateral.build_findings(seg, found, faces_right)
    assert [v.level for v in findings.vertebrae] == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    l3 = next(v for v in findings.vertebrae if v.level == "L3")
    assert l3.measurements.genant_grade is None and l3.measurements.height_middle_mm is None
    assert l3.measurements.genant_not_graded == xr_lateral.CORNERS_OUT_OF_ORDER
    assert f"L3: {xr_lateral.CORNERS_OUT_OF_ORDER}" in findings.needs_review
    discs = {d.level: d.measurements for d in findings.discs}
    assert all(discs[level].height_middle_mm is None for level in ("L2/L3", "L3/L4"))
    assert discs["L2/L3"].slip_mm is None and discs["L3/L4"].angle_deg is None
    assert discs["L1/L2"].height_middle_mm is not None and discs["L4/L5"].meyerding_grade == 0
    l2 = next(v for v in findings.vertebrae if v.level == "L2").measurements
    assert l2.genant_grade == 0 and l2.genant_not_graded is None


def test_a_body_with_a_corner_beyond_the_film_is_cut_and_not_measured():
    """A corner placed beyond the film is where the film shows nothing: on held-out films most such bodies were cut
    by its edge (``lateral.beyond_film``). T12, whose superior corners lie 10 px above the film, measures nothing and
    says it is cut, nor does the disc below it; S1, whose inferior pair (a definition) lies below the film, keeps
    its superior endplate, and with it the lordosis."""
    film = np.random.default_rng(0).normal(0, 1, (405, 300)).astype(np.float32)
    box = np.array([[100.0, -10.0], [140.0, -10.0], [140.0, 30.0], [100.0, 30.0]])
    corners = np.stack([box + np.array([0.0, 65.0 * k]) for k in range(7)])  # S1 380-420: its inferior pair beyond
    image = SpineImage.from_sagittal_slices(film[None], (PIXEL_MM,) * 3, modality=Modality.RADIOGRAPH)
    seg, found, faces_right = xr_lateral.detect(image, model=PlacedNetwork(film.shape, corners))
    findings = xr_lateral.build_findings(seg, found, faces_right)
    assert [v.level for v in findings.vertebrae] == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert not any("space between" in reason for reason in findings.needs_review)
    t12, l1 = findings.vertebrae[0].measurements, findings.vertebrae[1].measurements
    assert t12.genant_not_graded == CUT_BY_EDGE and t12.height_middle_mm is None and t12.genant_grade is None
    assert l1.genant_not_graded is None and l1.height_middle_mm == pytest.approx(40 * PIXEL_MM, abs=1.5)
    discs = {d.level: d.measurements for d in findings.discs}
    assert discs["T12/L1"].height_middle_mm is None and discs["L1/L2"].height_middle_mm is not None
    assert findings.lordosis_deg == pytest.approx(0.0, abs=1.0)  # every endplate level: S1's superior one kept
