"""The CT pipeline: routing and refusals, bone outlines, trabecular density and the screen, on hand-built volumes and
the CT phantom whose answers are known, and on the real labelled CT where ../shared/data is present."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from conftest import shared
from markupsafe import escape
from test_readers import write_dicom
from typer.testing import CliRunner

from lumbar.cli import app
from lumbar.findings import HEIGHT_FIELDS, Vertebra
from lumbar.image import Modality, SeriesInfo, SpineImage
from lumbar.io import arrays, read_image
from lumbar.io.write import write_nifti
from lumbar.labels import CANAL_LABEL, VERTEBRA_IDS, VERTEBRA_NAMES, disc_label, is_vertebra
from lumbar.phantom import TISSUE, make_phantom
from lumbar.pipelines import UnsupportedImage, ct, route
from lumbar.tasks import ct_bone, sacrum
from lumbar.tasks.ct_bone import (
    bone_mask,
    calibration_problem,
    midline_index,
    screen,
    trabecular_density,
    vertebrae_from_bone,
)
from lumbar.tasks.levels import NO_SACRUM_IN_VIEW
from lumbar.tasks.measurements import heights_unreliable, rejected_heights_withheld
from lumbar.tasks.sacrum import ANCHORED, HEAD_DOWN

MARROW_HU = TISSUE["marrow"][2]  # the phantom's trabecular bone, 200 HU


@pytest.fixture(scope="module")
def ct_phantom():
    return make_phantom(contrast="CT", shape=(31, 320, 256), spacing_mm=(2.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def ct_result(ct_phantom):
    return ct.analyze(ct_phantom.image)


# --- routing and refusals


def test_a_ct_in_hounsfield_units_takes_the_ct_pipeline(ct_phantom):
    assert route(ct_phantom.image).pipeline is ct


def test_calibration_is_checked_from_the_values():
    rng = np.random.default_rng(0)
    hu = np.concatenate([np.full(1000, -1000.0), rng.normal(40, 20, 5000), np.full(300, 700.0)])
    assert calibration_problem(hu) is None
    assert "not in Hounsfield units" in calibration_problem(np.clip((hu + 1000) / 8, 0, 255))  # an 8-bit export
    assert "nothing as dense as bone" in calibration_problem(np.clip(hu, None, 150))
    assert "not Hounsfield units" in calibration_problem(hu * 10)  # a rescale applied twice


def test_the_calibration_check_and_the_offset_rule_read_one_set_of_bounds():
    """Bone from 300 HU and Hounsfield units up to 4000 are said once, in io, whose offset rule runs before any
    pipeline: the calibration check reads the same numbers, not copies that could drift apart."""
    assert ct_bone.MIN_BONE_HU is arrays.MIN_BONE_HU and ct_bone.MAX_HU is arrays.MAX_HU


def _ct(shape, spacing, values=None, **series):
    array = np.full(shape, -1000.0, np.float32) if values is None else values
    info = SeriesInfo(**series) if series else None
    return SpineImage.from_array(array, np.diag([*spacing, 1.0]), modality=Modality.CT, source="t", series=info)


def test_the_ct_pipeline_refuses_what_it_cannot_read(ct_phantom):
    body = ct_phantom.image
    assert "MR images" in ct.refusal(make_phantom(shape=(3, 160, 144)).image)
    assert "scout" in ct.refusal(
        _ct(body.shape, body.spacing_mm, body.array, image_type="ORIGINAL\\PRIMARY\\LOCALIZER")
    )
    assert "single CT slice" in ct.refusal(_ct((1, 256, 256), (1.0, 1.0, 1.0)))
    values = np.broadcast_to(np.where(np.arange(256) > 100, 500.0, -1000.0)[:, None, None], (256, 256, 2)).copy()
    two_slices = _ct((256, 256, 2), (0.8, 0.8, 5.0), values)
    assert "covers 10 mm head to feet" in ct.refusal(two_slices)
    assert "not in Hounsfield units" in ct.refusal(_ct(body.shape, body.spacing_mm, (body.array + 1000) / 8))
    assert ct.refusal(body) is None


def test_a_ct_not_in_hounsfield_units_is_refused_with_one_line_and_nothing_written(tmp_path, ct_phantom):
    image = ct_phantom.image
    eight_bit = np.clip((image.array + 1000) / 8, 0, 255)
    path = tmp_path / "ct8.nii.gz"
    write_nifti(eight_bit.astype(np.int16) + 256, image, path)  # int16 on disk, values 256..511
    result = CliRunner().invoke(
        app, ["analyze", str(path), "--modality", "CT", "-o", str(tmp_path / "out")], catch_exceptions=False
    )
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "not in Hounsfield units" in result.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(UnsupportedImage, match="Hounsfield"):
        route(read_image(path, modality="CT"))


def test_a_ct_nifti_stored_without_its_offset_is_refused_naming_the_offset(tmp_path, ct_phantom):
    """A CT NIfTI stored as HU + 1024 (air near 0) has nothing below zero: it was read as MRI and ran the MRI
    pipeline, withheld only as "modality not stated". Its values (a narrow soft-tissue peak near 1024, a tail as
    dense as bone) say what it is: one line names the likely cause and the fix, exit 2, nothing written; stated as
    CT it is refused the same way."""
    image = ct_phantom.image
    path = tmp_path / "ct_plus_1024.nii.gz"
    write_nifti(np.clip(image.array + 1024, 0, None).astype(np.uint16), image, path)
    result = CliRunner().invoke(app, ["analyze", str(path), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    said = " ".join(result.output.split())
    assert "looks like CT stored without its HU offset" in said and "subtract 1024" in said
    assert "--modality MR if it is an MRI" in said
    assert not (tmp_path / "out").exists()
    with pytest.raises(UnsupportedImage, match="stored without its HU offset"):
        route(read_image(path, modality="CT"))


def test_a_shifted_ct_padded_below_zero_is_still_refused(ct_phantom):
    """Stored as HU + 1024 but padded outside the field with -976 (GE's -2000 stored, shifted): the padding reached
    below zero, so the volume read as CT in HU, every voxel 1024 HU too dense, and nothing was said. The padding (one
    value, the lowest) is left out of the judgement; a CT in HU padded alike is still taken as it is."""
    from lumbar.io.arrays import guess_modality, offset_ct
    from lumbar.tasks.ct_bone import calibration_problem

    shifted = np.clip(ct_phantom.image.array + 1024, 0, None)
    shifted[:, :, :5] = -976.0
    assert guess_modality(shifted) == Modality.CT and offset_ct(shifted)
    assert "stored without its HU offset" in calibration_problem(shifted)
    in_hu = ct_phantom.image.array.copy()
    in_hu[:, :, :5] = -2000.0
    assert not offset_ct(in_hu) and calibration_problem(in_hu) is None


def test_the_offset_rule_tells_shifted_real_cts_from_real_mri():
    """The rule on real data: the four real CTs shifted by +1024 (below-air clipped to 0, as unsigned storage does)
    are caught and, in HU, are not; SPIDER's T2 SPACE stacks (8-bit), also scaled to 10-12 bits or so that their
    body's median lies at 1024, stay MRI."""
    from PIL import Image

    from lumbar.io.arrays import guess_modality, offset_ct

    folder = shared("ct")
    cts = [
        folder / "verse19_sub-verse012" / "sub-verse012_ct.nii.gz",
        folder / "tptbox_crops" / "sub-ct_label-22_ct.nii.gz",
        folder / "totalsegmentator_example" / "example_ct.nii.gz",
        shared("dicom", "ct_series_totalsegmentator"),
    ]
    for path in cts:
        hu = read_image(path).array.astype(np.float32)
        assert not offset_ct(hu) and offset_ct(np.clip(hu + 1024, 0, None)), path
    spider = shared("spider", "t2space", "images")
    for pid in ("5", "41", "110", "141"):
        slices = sorted(spider.glob(f"{pid}_t2_SPACE_slice*.png"), key=lambda p: int(p.stem.rsplit("slice", 1)[1]))
        volume = np.stack([np.asarray(Image.open(p).convert("L"), np.float32)[:620, :512] for p in slices])
        body = np.median(volume[volume > 0.05 * volume.max()])
        for scaled in (volume, volume * 4, volume * 16, volume * 1024 / body):
            assert guess_modality(scaled) is Modality.MR, pid


def test_a_dicom_ct_scout_is_refused(tmp_path):
    pixels = np.full((64, 64), 1000, np.uint16)
    path = write_dicom(
        tmp_path / "scout.dcm", pixels, "CT", ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"], RescaleIntercept=-1024
    )
    image = read_image(path)
    assert image.series.image_type.endswith("LOCALIZER")
    assert "scout" in ct.refusal(image)


def test_contrast_is_read_from_the_dicom_and_said():
    assert "not stated" in ct.contrast_note(_ct((2, 2, 2), (1, 1, 1)))
    assert "contrast-enhanced (ContrastBolusAgent: IOPAMIDOL)" in ct.contrast_note(
        _ct((2, 2, 2), (1, 1, 1), contrast_agent="IOPAMIDOL")
    )
    assert "no contrast agent stated" in ct.contrast_note(_ct((2, 2, 2), (1, 1, 1), contrast_agent=""))
    for written in ("NONE", "None", "no contrast", "No."):  # what scanners write for none: no agent, not enhanced
        assert ct.contrast_note(_ct((2, 2, 2), (1, 1, 1), contrast_agent=written)) == (
            f"no contrast agent (ContrastBolusAgent: {written})"
        )


@pytest.mark.parametrize(
    "written",
    [
        "NON-CONTRAST",
        "Non contrast",
        "NONCONTRAST",
        "No IV contrast",
        "NO CONTRAST AGENT",
        "N/A",
        "NA",
        "0",
        "-",
        "PLAIN",
        "UNENHANCED",
        "non-enhanced",
        "Without",
    ],
)
def test_a_series_written_as_without_contrast_is_not_called_enhanced(written):
    """ContrastBolusAgent was matched against a short list: "NON-CONTRAST" and a dozen ways of writing none were
    reported as contrast-enhanced (found in review)."""
    assert ct.contrast_note(_ct((2, 2, 2), (1, 1, 1), contrast_agent=written)).startswith("no contrast agent")


def test_an_agent_is_still_an_agent_and_an_oral_one_alone_is_said_not_to_reach_the_bone():
    for agent in ("IOPAMIDOL", "OMNIPAQUE 350", "NON IONIC", "Non-ionic contrast", "IV + ORAL", "Oral and IV"):
        assert ct.contrast_note(_ct((2, 2, 2), (1, 1, 1), contrast_agent=agent)).startswith("contrast-enhanced")
    for agent in ("ORAL", "Oral contrast only", "PO CONTRAST"):
        note = ct.contrast_note(_ct((2, 2, 2), (1, 1, 1), contrast_agent=agent))
        assert note.startswith("oral contrast only") and "does not raise bone attenuation" in note


def test_a_dicom_ct_without_its_rescale_is_refused(tmp_path):
    """The CT Image module requires RescaleIntercept: without it the stored values are not known to be HU, and
    padding outside the reconstruction circle (-2000) passed the check for air (found in review)."""
    from lumbar.io.dicom_header import series_info

    pixels = np.full((64, 64), 1000, np.uint16)
    with_rescale = read_image(write_dicom(tmp_path / "a.dcm", pixels, "CT", RescaleIntercept=-1024))
    assert with_rescale.series.rescale_stated
    without = write_dicom(tmp_path / "b.dcm", pixels, "CT")
    assert not series_info(pydicom.dcmread(without)).rescale_stated
    body = make_phantom(contrast="CT", shape=(31, 160, 144)).image
    assert "without RescaleIntercept" in ct.refusal(_ct(body.shape, body.spacing_mm, body.array, rescale_stated=False))


def test_l1_is_not_screened_where_it_is_fractured_or_holds_dense_material():
    """Pickhardt's thresholds read an intact L1's marrow: a Genant grade of 1 or more (a fracture, itself to be
    looked at) or dense material in the region (cement, metal, a bone island: the cap keeps the blur around it)
    gives no screen and says why; an intact L1 under the limit is screened."""
    from lumbar.findings import VertebraMeasurements
    from lumbar.tasks.ct_bone import Density

    def l1(genant: int | None) -> Vertebra:
        m = VertebraMeasurements(**{**dict.fromkeys(VertebraMeasurements.model_fields), "genant_grade": genant})
        return Vertebra(level="L1", label=20, measurements=m)

    density = Density(150.0, 150.0, 5.0, slice(0, 1), np.zeros(1, bool), dense_ml=0.05)
    assert ct.not_screened(l1(0), density) is None and ct.not_screened(l1(None), density) is None
    assert ct.not_screened(l1(2), density).startswith("L1 has lost height (Genant grade 2)")
    dense = Density(150.0, 150.0, 5.0, slice(0, 1), np.zeros(1, bool), dense_ml=0.2)
    assert "L1 holds 0.20 ml above 1000 HU" in ct.not_screened(l1(0), dense)


def test_the_batch_row_keeps_what_qualifies_a_screen():
    from lumbar.batch_jobs import screen_cell

    screening = {"category": "indeterminate", "level": "L1", "level_confirmed": True, "contrast": "no contrast agent"}
    assert screen_cell(screening) == "indeterminate" and screen_cell({}) == ""
    unsure = {**screening, "level_confirmed": False, "contrast": "contrast-enhanced (ContrastBolusAgent: X): ..."}
    assert screen_cell(unsure) == (
        "indeterminate (the vertebra named L1: its name not confirmed; contrast-enhanced: reads higher)"
    )


def test_contrast_agent_and_image_type_come_from_the_dicom_header(tmp_path):
    from lumbar.io.dicom_header import series_info

    path = write_dicom(tmp_path / "c.dcm", np.zeros((8, 8)), "CT", ContrastBolusAgent="IOPAMIDOL", ImageType=["A", "B"])
    import pydicom

    info = series_info(pydicom.dcmread(path))
    assert info.contrast_agent == "IOPAMIDOL" and info.image_type == "A\\B"
    plain = write_dicom(tmp_path / "p.dcm", np.zeros((8, 8)), "CT")
    assert series_info(pydicom.dcmread(plain)).contrast_agent is None


# --- the bone maths, on hand-built volumes


def test_the_midline_is_the_lateral_centre_of_the_bone():
    hu = np.full((41, 10, 10), 0.0)
    hu[14:17] = 500  # a column of bone at slices 14-16
    hu[[4, 26]] = 500  # two "ribs" symmetric about slice 15
    assert midline_index(hu) == 15
    assert midline_index(np.zeros((9, 4, 4))) == 4  # no bone: the middle


def test_bone_mask_fills_marrow_but_not_the_chest_or_the_canal():
    hu = np.full((3, 120, 120), 40.0)
    hu[:, 10:30, 10:30] = 600  # a body: cortex ring around 60 HU marrow
    hu[:, 12:28, 12:28] = 60
    hu[:, 40:110, 40:110] = 600  # a ring around a 66 x 66 mm hole: larger than any body
    hu[:, 42:108, 42:108] = 40
    hu[:, 10:30, 35:55] = 600  # a ring around the canal
    hu[:, 12:28, 37:53] = 20
    canal = np.zeros(hu.shape, bool)
    canal[:, 12:28, 37:53] = True
    bone = bone_mask(hu, (1.0, 1.0, 1.0), canal)
    assert bone[1, 20, 20]  # marrow filled
    assert not bone[1, 75, 75]  # the chest is not bone
    assert not bone[1, 20, 45]  # nor the canal


def test_vertebrae_are_redrawn_from_the_bone_near_the_networks_voxels():
    hu = np.full((9, 60, 40), 40.0)
    hu[:, 10:30, 5:25] = 300  # the true body
    hu[:, 45:50, 5:25] = 300  # bone 15 mm away: another structure
    instances = np.zeros(hu.shape, np.int16)
    l1 = VERTEBRA_IDS["L1"]
    instances[2:7, 14:26, 9:21] = l1  # the network's body: 4 mm inside the truth on every side
    instances[:, 32:36, 5:25] = disc_label("L1")  # a disc, kept as the network drew it
    out = vertebrae_from_bone(hu, instances, (1.0, 1.0, 1.0), mid=4)
    assert np.array_equal(out == l1, np.pad(np.ones((9, 20, 20), bool), ((0, 0), (10, 30), (5, 15))))
    assert np.array_equal(out == disc_label("L1"), instances == disc_label("L1"))


def _body(marrow_hu: float = 150.0):
    """A 40 x 30 x 40 mm body (1 mm voxels): a 2 mm cortex of 800 HU, marrow, a 20 HU vein in its posterior 5 mm
    at mid-height, and the canal behind it."""
    hu = np.full((41, 60, 60), 40.0)
    hu[:, 10:40, 5:45] = 800
    hu[:, 12:38, 7:43] = marrow_hu
    hu[:, 22:28, 38:43] = 20  # the basivertebral vein
    instances = np.zeros(hu.shape, np.int16)
    instances[:, 10:40, 5:45] = VERTEBRA_IDS["L1"]
    instances[:, 5:45, 48:58] = CANAL_LABEL
    return hu, instances


def test_trabecular_density_leaves_out_cortex_and_vein():
    hu, instances = _body(150.0)
    density = trabecular_density(hu, instances, VERTEBRA_IDS["L1"], (1.0, 1.0, 1.0), mid=20)
    assert density.mean_hu == pytest.approx(150.0) and density.median_hu == pytest.approx(150.0)
    # 4.5 mm inside (4 mm and half a 1 mm voxel): rows 14..35 and columns 9..40, of which the posterior quarter of
    # the 40-column depth (columns beyond 34.25) goes; slices within 10 mm of the midline: 21 x 22 x 26 voxels
    assert density.ml == pytest.approx(21 * 22 * 26 / 1000)
    region = np.zeros(hu.shape, bool)
    region[density.slices] = density.region
    assert region[:, 12:38, 38:43].sum() == 0  # nothing from the vein's depth
    assert not region[:9].any() and not region[32:].any()


def test_a_canal_speck_in_front_of_the_body_does_not_cut_its_density_region():
    """The canal's front wall, row by row, is read without specks (under MIN_CANAL_PIECE_MM2): one at the body's
    front, on a single slice of the slab, cut the body there and left the rows above and below it as two pieces."""
    hu, instances = _body(150.0)
    clean = trabecular_density(hu, instances, VERTEBRA_IDS["L1"], (1.0, 1.0, 1.0), mid=20)
    instances[20, 24:26, 5:7] = CANAL_LABEL  # 4 mm^2 of "canal" in the front cortex, on the midline slice
    speck = trabecular_density(hu, instances, VERTEBRA_IDS["L1"], (1.0, 1.0, 1.0), mid=20)
    # the speck's 4 voxels leave the body, and the region keeps its distance from them: 62 of 12,012 voxels go
    assert speck.ml == pytest.approx(clean.ml - 0.062) and speck.mean_hu == pytest.approx(150.0)
    specks_only = np.where(instances == CANAL_LABEL, 0, instances)
    specks_only[20, 24:26, 5:7] = CANAL_LABEL
    assert trabecular_density(hu, specks_only, VERTEBRA_IDS["L1"], (1.0, 1.0, 1.0), mid=20) is None  # marks nothing


def test_the_vein_is_cut_from_each_rows_own_depth_in_a_tilted_body():
    hu = np.full((21, 60, 90), 40.0)
    instances = np.zeros(hu.shape, np.int16)
    for row in range(10, 40):  # a body leaning forward: each row 1 column further forward than the one below
        start = 30 - (row - 10)
        hu[:, row, start : start + 36] = 150
        instances[:, row, start : start + 36] = VERTEBRA_IDS["L1"]
        instances[:, row, start + 40 : start + 50] = CANAL_LABEL
    density = trabecular_density(hu, instances, VERTEBRA_IDS["L1"], (1.0, 1.0, 1.0), mid=10)
    region = density.region[10]
    for row in range(10, 40):
        start = 30 - (row - 10)
        assert not region[row, start + 27 :].any()  # the posterior quarter of this row's 36 columns


def test_thick_slices_keep_the_endplates_out():
    """5 mm rows: a voxel 4 mm from the outline holds endplate through partial volume; half a voxel more keeps
    it out."""
    hu = np.full((31, 20, 60), 40.0)
    hu[:, 2:18, 5:45] = 800  # 80 mm tall body in 5 mm rows, cortex 800 HU
    hu[:, 3:17, 7:43] = 150
    instances = np.zeros(hu.shape, np.int16)
    instances[:, 2:18, 5:45] = VERTEBRA_IDS["L1"]
    instances[:, :, 48:56] = CANAL_LABEL
    density = trabecular_density(hu, instances, VERTEBRA_IDS["L1"], (1.0, 5.0, 1.0), mid=15)
    assert density.median_hu == 150 and density.mean_hu == pytest.approx(150.0)


def test_not_a_number_is_never_screened():
    hu = np.concatenate([np.full(100, -1000.0), np.full(100, 700.0), [np.nan]])
    assert "not finite" in calibration_problem(hu)
    with pytest.raises(ValueError):
        screen("L1", float("nan"), level_confirmed=True, contrast="none")


def test_no_density_without_a_canal_or_room_inside():
    hu, instances = _body()
    no_canal = np.where(instances == CANAL_LABEL, 0, instances)
    assert trabecular_density(hu, no_canal, VERTEBRA_IDS["L1"], (1.0, 1.0, 1.0), mid=20) is None
    thin = np.where(instances == VERTEBRA_IDS["L1"], 0, instances)
    thin[:, 20:26, 5:45] = VERTEBRA_IDS["L1"]  # 6 mm tall: no voxel 4 mm inside
    assert trabecular_density(hu, thin, VERTEBRA_IDS["L1"], (1.0, 1.0, 1.0), mid=20) is None


@pytest.mark.parametrize(
    "hu, category",
    [
        (80.0, "osteoporosis likely"),
        (110.0, "osteoporosis likely"),
        (110.5, "indeterminate"),
        (160.0, "indeterminate"),
        (160.5, "osteoporosis unlikely"),
    ],
)
def test_screening_follows_pickhardts_l1_thresholds(hu, category):
    assert ct_bone.SCREEN_SPECIFIC_HU == 110 and ct_bone.SCREEN_SENSITIVE_HU == 160  # the paper's numbers
    result = screen("L1", hu, level_confirmed=True, contrast="none")
    assert result.category == category and "not a diagnosis" in result.text
    assert "not confirmed" in screen("L1", hu, level_confirmed=False, contrast="none").text


# --- the pipeline on the CT phantom: known answers


def test_ct_phantom_levels_are_named_and_flagged_for_want_of_a_sacrum_anchor(ct_result, ct_phantom):
    truth = ct_phantom.image.with_array(ct_phantom.instances).sagittal_slices()
    ours = ct_result.segmentation.levels.instances
    for vertebra in ct_phantom.vertebrae:  # the instance of ours covering most of each drawn vertebra bears its name
        covering = ours[truth == vertebra.label]
        assert np.bincount(covering[covering > 0]).argmax() == vertebra.label, vertebra.level
    assert sacrum.NO_ANCHOR in ct_result.findings.needs_review
    assert ct_result.findings.summary == () and sacrum.NO_ANCHOR in ct_result.findings.summary_withheld


def test_ct_phantom_heights_are_its_drawn_heights(ct_result, ct_phantom):
    truth = {v.level: v for v in ct_phantom.vertebrae}
    measured = [(v, truth[v.level]) for v in ct_result.findings.vertebrae if v.measurements and v.level != "S1"]
    assert len(measured) >= 5
    for vertebra, true in measured:
        m = vertebra.measurements
        for part in ("anterior", "middle", "posterior"):
            height = getattr(m, f"height_{part}_mm")
            if height is not None:
                assert height == pytest.approx(getattr(true, f"height_{part}_mm"), abs=1.5), (vertebra.level, part)


def test_ct_phantom_bone_density_is_its_marrow(ct_result):
    densities = [v.measurements.bone_density_hu for v in ct_result.findings.vertebrae if v.measurements]
    assert len([d for d in densities if d is not None]) >= 6
    assert all(abs(d - MARROW_HU) < 10 for d in densities if d is not None)
    screening = ct_result.findings.bone_density_screening
    assert screening.level == "L1" and screening.category == "osteoporosis unlikely"
    assert not screening.level_confirmed and "not confirmed" in screening.text
    assert "Pickhardt" in screening.thresholds and "4 mm (plus half the largest voxel side) inside" in screening.region
    # where and under what contrast every density was read, screen or not
    assert ct_result.findings.bone_density_region == screening.region
    assert ct_result.findings.input.contrast == screening.contrast and "not stated" in screening.contrast


def test_a_sacrum_the_field_of_view_cuts_gets_no_density(ct_phantom):
    """The phantom's field begun halfway down S1: its region's lower edge would be the field's, not its cortex's, so
    it is read no more than any cut body (found in review: S1's reason, 'the sacrum has no fracture grade', hid the
    cut, and the cut sacrum of a cropped VerSe 012 read 109 HU)."""
    from lumbar.labels import VERTEBRA_IDS

    image = ct_phantom.image
    rows = np.nonzero((ct_phantom.instances == VERTEBRA_IDS["S1"]).any(axis=(0, 1)))[0]
    start = (rows.min() + rows.max()) // 2
    affine = image.affine.copy()
    affine[2, 3] += start * affine[2, 2]
    cut = SpineImage(image.array[:, :, start:].copy(), affine, modality="CT", source="S1 cut")
    vertebrae = {v.level: v.measurements for v in ct.analyze(cut).findings.vertebrae}
    assert vertebrae["S1"].genant_not_graded == "cut by the image edge" and vertebrae["S1"].bone_density_hu is None
    assert vertebrae["L5"].bone_density_hu == pytest.approx(MARROW_HU, abs=10)


def test_ct_findings_state_nothing_and_mark_every_table(ct_result):
    f = ct_result.findings
    assert f.summary == ()
    for key in ("level_names", "vertebra_measurements", "bone_density", "canal", "slip", "central_stenosis"):
        assert key in f.not_validated
    assert f.models == {"segmentation": ct_result.segmentation.semantic.model_version}
    assert all(not d.grades for d in f.discs)  # MRI grades are never given to a CT


def test_ct_report_shows_reformats_density_and_screen(ct_result):
    from lumbar.report.html import render_html

    html = render_html(ct_result.findings, ct_result.figures)
    assert "Spine CT analysis" in html and "trabecular HU mean / median" in html
    assert "Bone density screen" in html and "Pickhardt" in html and "coronal reformat" in html
    assert '<img class="wide"' in html  # two panels at a readable width (at 330 px their names were ~5 px tall)
    # under the vertebrae, whatever the screen: where the density was read, and the contrast
    unscreened = render_html(ct_result.findings.model_copy(update={"bone_density_screening": None}), ct_result.figures)
    for page in (html, unscreened):
        assert f"Trabecular HU: {escape(ct_result.findings.bone_density_region)}" in " ".join(page.split())
        assert f"Contrast: {escape(ct_result.findings.input.contrast)}" in " ".join(page.split())
    # the tables' findings share one reason, said once; the screen has its own
    assert html.count("bench/ct.py measures segmentation") == 2
    # the canal is not graded on CT: its reason is given, not the citation of grades no disc has
    levels = ", ".join(d.level for d in ct_result.findings.discs)
    assert f"Stenosis not graded at {levels}: {escape(ct.UNGRADED_CANAL)}." in html
    assert "Stenosis thresholds" not in html
    overview = ct_result.figures.overview
    assert overview.ndim == 3 and overview.shape[1] > 520  # the sagittal slice and the coronal reformat side by side
    r, g, b = (overview[..., k].astype(int) for k in range(3))
    magenta = (r > 180) & (b > 180) & (g < 100)
    assert magenta.sum() > 200  # the density regions are drawn


def test_analyze_cli_on_a_ct_nifti_writes_the_ct_findings(tmp_path, ct_phantom):
    import json

    path = tmp_path / "ct.nii.gz"
    write_nifti(ct_phantom.image.array, ct_phantom.image, path)
    result = CliRunner().invoke(app, ["analyze", str(path), "-o", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    findings = json.loads(next((tmp_path / "out").rglob("findings.json")).read_text())
    assert findings["input"]["modality"] == "CT" and findings["bone_density_screening"]["level"] == "L1"
    assert any("read as CT from its Hounsfield units" in r for r in findings["needs_review"])


# --- real CT (skipped without ../shared/data)


def test_verse012_vertebrae_are_outlined_and_their_names_flagged():
    """VerSe'19 012 (T10-L3): the outline holds (vertebra Dice 0.73 measured by bench/ct.py), the names do not
    (no sacrum in view: counted from the lowest disc, every name is two levels low) and say so."""
    folder = shared("ct", "verse19_sub-verse012")
    from lumbar.metrics import dice

    image = read_image(folder / "sub-verse012_ct.nii.gz")
    truth = read_image(folder / "sub-verse012_seg-vert_msk.nii.gz").sagittal_slices() > 0
    seg = ct.segment(image)
    ours = ct_bone.is_vertebra(seg.levels.instances)
    box = tuple(slice(max(0, int(i.min()) - 10), int(i.max()) + 11) for i in np.nonzero(truth))
    assert dice(truth[box], ours[box]) > 0.72
    assert sacrum.NO_ANCHOR in seg.gate


def test_totalsegmentator_example_is_named_from_its_sacrum():
    """TotalSegmentator's example CT (T11-S1 in its labels, a peer's): the network's L5/S1 lies further behind the
    line through the discs above it than other discs may (the lumbosacral angle) and is kept; the sacrum, joined to
    the ilia right below it, confirms the count, so no disc is said to be missing. Every vertebra from T12 to S1 then
    carries the peer's name (it was one level low without the sacrum, and S1 went unnamed while L5/S1 was dropped as
    off the column)."""
    folder = shared("ct", "totalsegmentator_example")
    seg = ct.segment(read_image(folder / "example_ct.nii.gz"))
    peer = read_image(folder / "example_ct_vertebrae_totalsegmentator.nii.gz").sagittal_slices()
    peer_names = {26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1", 32: "T12"}
    ours = seg.levels.instances
    for label, name in peer_names.items():
        covering = ours[(peer == label) & ct_bone.is_vertebra(ours)]
        assert VERTEBRA_NAMES[np.bincount(covering).argmax()] == name
    assert seg.levels.discs[0].name == "L5/S1"
    assert sacrum.NO_ANCHOR not in seg.review and ANCHORED in seg.review and HEAD_DOWN not in seg.review
    assert not any("between it and the sacrum not found" in reason for reason in seg.review)


def test_a_pelvis_below_rules_out_head_down_whatever_lies_above(monkeypatch):
    """The look upward can take ribs, reaching as far to the sides as the ilia, for a pelvis above the highest disc of
    a thoracolumbar field; a sacrum joined to the ilia below the lowest disc rules a flipped axis out, so the names
    stay anchored on it and nothing says head down."""
    monkeypatch.setattr(sacrum, "pelvis_above", lambda *args: True)
    phantom = make_phantom(contrast="CT", shape=(81, 320, 256), spacing_mm=(3.0, 1.0, 1.0), pelvis=True)
    seg = ct.segment(phantom.image)
    assert ANCHORED in seg.review and HEAD_DOWN not in seg.review


@pytest.mark.parametrize("flipped", [False, True])
def test_a_ct_whose_header_flips_head_and_feet_is_flagged_head_down(flipped):
    """A header whose head-to-feet axis is flipped shows the patient head down; the network still finds a chain of
    discs, and every name was counted from the wrong end with nothing said but the sacrum's absence below. The
    pelvis found above the highest disc now says so first; the same CT the right way up is anchored as before."""
    phantom = make_phantom(contrast="CT", shape=(81, 320, 256), spacing_mm=(3.0, 1.0, 1.0), pelvis=True)
    image = phantom.image
    if flipped:
        affine = image.affine.copy()
        affine[:, 2] *= -1  # RAS: the third axis runs to the head
        image = SpineImage.from_array(image.array, affine, modality=Modality.CT, source="flipped")
    seg = ct.segment(image)
    assert (seg.gate[0] == HEAD_DOWN) is flipped and (HEAD_DOWN in seg.review) is flipped
    assert (ANCHORED in seg.review) is not flipped


def test_a_ct_read_head_down_says_so_before_a_gate_metal_or_a_solid_vertebra():
    """The phantom with a pelvis, head down, with a gate from the caller, a screw of 3000 HU in L4's body and L3
    solid bone (700 HU): each of these came before the head-down reason. It now comes first among the review
    reasons, the segmentation's and the findings', and in the withheld Summary's: every name below it is counted
    from the wrong end."""
    phantom = make_phantom(contrast="CT", shape=(81, 320, 256), spacing_mm=(3.0, 1.0, 1.0), pelvis=True)
    image = phantom.image
    hu = image.sagittal_slices().copy()
    labels = SpineImage(phantom.instances.astype(np.int16), image.affine, modality="CT").sagittal_slices()
    mid = hu.shape[0] // 2
    hu[labels == VERTEBRA_IDS["L3"]] = 700.0
    l4 = labels[mid] == VERTEBRA_IDS["L4"]
    row = int(np.median(np.flatnonzero(l4.any(axis=1))))
    front = int(np.flatnonzero(l4[row])[0])
    hu[mid - 1 : mid + 2, row - 5 : row + 5, front + 6 : front + 16] = 3000.0  # 0.9 ml
    head_down = SpineImage.from_sagittal_slices(hu[:, ::-1], image.display_spacing_mm(), modality="CT", source="t")
    result = ct.analyze_images([head_down], gates=[("a gate",)])[0]
    assert result.segmentation.review[0] == HEAD_DOWN and result.segmentation.gate[0] == HEAD_DOWN  # `lumbar segment`
    findings = result.findings
    assert findings.needs_review[0] == HEAD_DOWN and findings.summary_withheld.startswith(HEAD_DOWN)
    assert "a gate" in findings.needs_review
    assert any(reason.startswith("metal in view") for reason in findings.needs_review)
    assert any("solid bone" in reason for reason in findings.needs_review)


def test_the_real_ct_dicom_series_is_read_and_analysed():
    """20 slices of 2 mm: the one vertebral body in view fills the field from its top to its bottom, so it is named
    (flagged) but neither its heights nor its density are measured: the field's edges would pass for endplates."""
    series = shared("dicom", "ct_series_totalsegmentator")
    result = ct.analyze(read_image(series))
    assert len(result.findings.vertebrae) >= 1 and sacrum.NO_ANCHOR in result.findings.needs_review
    # the levels' own "no sacrum in view" would say again what NO_ANCHOR says
    assert not any(reason.startswith(NO_SACRUM_IN_VIEW) for reason in result.findings.needs_review)
    for vertebra in result.findings.vertebrae:
        m = vertebra.measurements
        assert m is None or (m.height_middle_mm is None and m.bone_density_hu is None)
    # no screen here, yet the series' contrast is said (it raises every attenuation read)
    assert result.findings.bone_density_screening is None
    assert result.findings.input.contrast.startswith("contrast-enhanced (ContrastBolusAgent:")
    # contrast-enhanced liver (100-160 HU) lies beside the column here: no vertebra takes it in, and no canal runs
    # out to a piece of "canal" far behind the column
    labels = result.segmentation.levels.instances
    vertebra = is_vertebra(labels)
    assert np.median(result.image.sagittal_slices()[vertebra]) > 150
    for disc in result.findings.discs:
        assert disc.measurements is None or not disc.measurements.canal_ap_mm or disc.measurements.canal_ap_mm < 30


def test_eight_bit_ct_stacks_are_refused():
    path = shared("ct_small", "11_ct.nii.gz")
    with pytest.raises(UnsupportedImage, match="not in Hounsfield units"):
        route(read_image(path, modality="CT"))


def test_a_ct_without_a_spine_names_nothing_and_says_so():
    """Soft tissue only: whatever the network sees there has no bone, so nothing is named and no number given."""
    rng = np.random.default_rng(0)
    array = np.full((160, 160, 100), -1000.0, np.float32)
    rows, cols = np.mgrid[:160, :160]
    inside = ((rows - 80) ** 2 / 70**2 + (cols - 80) ** 2 / 50**2) < 1
    array[inside] = rng.normal(40, 15, (inside.sum(), 100))
    array[75:85, 75:85, 40:45] = 400  # a calcification: the calibration check sees bone-dense voxels
    image = SpineImage.from_array(array, np.diag([1.5, 1.5, 2.0, 1.0]), modality=Modality.CT, source="no spine")
    findings = ct.analyze(image).findings
    assert findings.vertebrae == () and findings.discs == () and findings.bone_density_screening is None
    assert findings.needs_review[0] == ct.NO_SPINE and findings.summary_withheld == ct.NO_SPINE


def test_a_long_bone_taken_for_vertebrae_is_flagged_as_solid():
    """A femur-like rod of 700 HU beside soft tissue: the network cuts it into "vertebrae"; their marrow would be
    solid bone, which no vertebral body has, so the result says to check it and states nothing."""
    rng = np.random.default_rng(0)
    array = np.full((160, 160, 100), -1000.0, np.float32)
    rows, cols = np.mgrid[:160, :160]
    inside = ((rows - 80) ** 2 / 70**2 + (cols - 80) ** 2 / 50**2) < 1
    array[inside] = rng.normal(40, 15, (inside.sum(), 100))
    array[(rows - 30) ** 2 + (cols - 80) ** 2 < 10**2] = 700
    image = SpineImage.from_array(array, np.diag([1.5, 1.5, 2.0, 1.0]), modality=Modality.CT, source="a rod")
    findings = ct.analyze(image).findings
    assert findings.vertebrae and findings.summary == ()
    assert "solid bone (median above 500 HU" in findings.needs_review[0]
    assert "solid bone (median above 500 HU" in findings.summary_withheld


def test_metal_across_a_disc_is_named_as_the_likely_cause(ct_phantom, ct_result):
    """A cage of 3000 HU in L4/L5 (8 ml, the middle 22 mm of the disc) breaks the network's chain of discs: the
    review said only "unexpected gap" and "discs only 13 mm apart". Its first reason now names the metal, how much,
    and the levels at it, and withholds as the others do; the phantom without metal says nothing of metal."""
    image = ct_phantom.image
    hu = image.sagittal_slices().copy()
    labels = SpineImage(ct_phantom.instances.astype(np.int16), image.affine, modality="CT").sagittal_slices()
    mid = hu.shape[0] // 2
    cage = labels == disc_label("L4")
    cage[: mid - 5], cage[mid + 6 :] = False, False
    hu[cage] = 3000.0
    seg = ct.segment(SpineImage.from_sagittal_slices(hu, image.display_spacing_mm(), modality="CT", source="cage"))
    metal = seg.review[0]
    assert metal.startswith("metal in view (7.8 ml above 2500 HU near the spine) at ") and metal in seg.gate
    assert "L4/L5" in metal and metal.endswith("level names, outlines and heights near it may be wrong")
    assert not any(reason.startswith("metal in view") for reason in ct_result.findings.needs_review)


def test_metal_far_from_the_spine_is_not_the_spines():
    """A hip prosthesis lies 80 mm or more from the midline: only metal within 45 mm of it counts."""
    hu = np.zeros((60, 20, 20), np.float32)
    hu[35, 5:10, 5:10] = hu[56, 5:10, 5:10] = 3000.0  # 10 and 52 mm from the midline slice 30 (2 mm slices)
    column = np.zeros(hu.shape, np.int16)
    column[30] = VERTEBRA_IDS["L3"]  # its front at col 0: nothing lies in front of it
    metal = ct_bone.metal_near_spine(hu, column, (2.0, 1.0, 1.0), 30)
    assert metal[35].sum() == 25 and not metal[56].any()


@pytest.mark.parametrize(
    ("where", "named"),
    [("in L3's body", True), ("behind L3's body, through its pedicle", True), ("15-25 mm in front of L3", False)],
)
def test_metal_in_or_behind_a_body_is_named_and_an_aortic_stent_in_front_of_it_is_not(ct_phantom, where, named):
    """1 ml of 3000 HU at L3's mid-height, within 45 mm of the midline wherever it lies: a screw in the body or its
    pedicle is named at L3; the same metal 15-25 mm in front of the body's anterior wall, where an aortic stent, a
    caval filter or dense bowel contrast lies, was called metal near the spine too, and is now not the spine's."""
    image = ct_phantom.image
    hu = image.sagittal_slices().copy()
    labels = SpineImage(ct_phantom.instances.astype(np.int16), image.affine, modality="CT").sagittal_slices()
    mid = hu.shape[0] // 2
    l3 = labels[mid] == VERTEBRA_IDS["L3"]
    row = int(np.median(np.flatnonzero(l3.any(axis=1))))
    front = int(np.flatnonzero(l3[row])[0])  # the body's anterior wall at mid-height; its back lies 36 mm behind
    slices, cols = {
        "in L3's body": (slice(mid - 2, mid + 3), slice(front + 6, front + 16)),  # 10 mm across, 10 deep
        "behind L3's body, through its pedicle": (slice(mid + 6, mid + 9), slice(front + 31, front + 51)),  # 12-16 mm
        "15-25 mm in front of L3": (slice(mid - 2, mid + 3), slice(front - 25, front - 15)),
    }[where]
    hu[slices, row - 5 : row + 5, cols] = 3000.0
    seg = ct.segment(SpineImage.from_sagittal_slices(hu, image.display_spacing_mm(), modality="CT", source=where))
    metal = [reason for reason in seg.review if reason.startswith("metal in view")]
    levels_at = [reason.split(" at ", 1)[1].split(":", 1)[0].split(", ") for reason in metal]
    assert ["L3" in names for names in levels_at] == ([True] if named else [])


def test_a_batch_lists_every_ct_vertebra_with_its_density_and_the_studys_screen(tmp_path, ct_result):
    import csv

    from lumbar.batch_jobs import VERTEBRAE, StudyOutcome, write_vertebrae

    (tmp_path / "ct1").mkdir()
    (tmp_path / "ct1" / "findings.json").write_text(ct_result.findings.model_dump_json())
    write_vertebrae([StudyOutcome("ct1.nii.gz", "ct1", "done")], tmp_path)
    with open(tmp_path / VERTEBRAE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["level"] for r in rows] == [v.level for v in ct_result.findings.vertebrae]
    for row, vertebra in zip(rows, ct_result.findings.vertebrae):
        density = vertebra.measurements.bone_density_hu if vertebra.measurements else None
        assert row["bone_density_hu"] == ("" if density is None else str(density))
        # the category, and that the vertebra screened is only named L1 (the phantom's names carry a review reason)
        assert row["modality"] == "CT" and row["bone_density_screen"] == (
            "osteoporosis unlikely (the vertebra named L1: its name not confirmed)"
        )
    assert not ct_result.findings.bone_density_screening.level_confirmed


@pytest.mark.parametrize("along_mm, reviewed", [(1.0, False), (1.5, False), (1.6, True), (3.0, True)])
def test_slices_thicker_than_1_5_mm_head_to_feet_ask_for_review_of_the_heights(along_mm, reviewed):
    """Only the spacing head to feet counts: 3 mm lateral slices (a sagittal acquisition) measure heights along
    their 1 mm rows."""
    image = SpineImage.from_sagittal_slices(np.zeros((4, 8, 8), np.float32), (3.0, along_mm, 0.7), modality="CT")
    reason = ct.thick_slice_reason(image)
    assert (reason is not None) is reviewed
    if reviewed:
        assert reason.startswith(f"slices {along_mm:.3g} mm apart head to feet: partial volume at the endplates")


@pytest.mark.parametrize("along_mm, withheld", [(1.0, False), (3.0, False), (3.1, True), (5.0, True)])
def test_no_heights_from_slices_over_3_mm_head_to_feet(ct_result, along_mm, withheld):
    """Heights, ratios and Genant grades go where the slices are more than 3 mm apart head to feet, with the reason;
    depth and the other vertebrae (none measured, or cut) stay as they were."""
    vertebrae = ct_result.findings.vertebrae
    measured = [v for v in vertebrae if v.measurements is not None and v.measurements.height_middle_mm is not None]
    assert len(measured) >= 5
    image = SpineImage.from_sagittal_slices(np.zeros((4, 8, 8), np.float32), (1.0, along_mm, 1.0), modality="CT")
    out = ct.thick_heights_withheld(vertebrae, image)
    assert len(out) == len(vertebrae)
    for before, after in zip(vertebrae, out):
        if before not in measured or not withheld:
            assert after == before
            continue
        m = after.measurements
        assert [getattr(m, f) for f in HEIGHT_FIELDS] == [None] * 6
        assert m.genant_not_graded == f"slices {along_mm:.3g} mm apart head to feet: heights not read (at most 3 mm)"
        assert m.depth_mm == before.measurements.depth_mm


def test_a_ct_of_4_mm_slices_reports_no_height(ct_phantom):
    """End to end: the CT phantom averaged over 4 mm head to feet has no vertebra with a height or Genant grade, each
    saying why (or cut by the edge, or the sacrum); its trabecular density is still read."""
    array = ct_phantom.image.array
    rows = array.shape[2] // 4 * 4
    thick = array[:, :, :rows].reshape(*array.shape[:2], rows // 4, 4).mean(-1).astype(np.float32)
    affine = np.diag([*ct_phantom.image.spacing_mm[:2], 4.0, 1.0])
    vertebrae = ct.analyze(SpineImage(thick, affine, modality="CT", source="4 mm")).findings.vertebrae
    measured = [v.measurements for v in vertebrae if v.measurements is not None]
    assert measured and all(m.height_middle_mm is None and m.genant_grade is None for m in measured)
    assert any(m.bone_density_hu is not None for m in measured)
    reasons = {m.genant_not_graded for m in measured}
    assert "slices 4 mm apart head to feet: heights not read (at most 3 mm)" in reasons
    assert reasons <= {
        "slices 4 mm apart head to feet: heights not read (at most 3 mm)",
        "cut by the image edge",
        "the sacrum has no fracture grade",
    }


def _measured(level: str, why: str | None, grade: int | None) -> Vertebra:
    from lumbar.findings import VertebraMeasurements

    heights = {"height_anterior_mm": 33.0, "height_middle_mm": 66.0, "height_posterior_mm": 27.0}
    ratios = {"wedge_ratio": 1.22, "biconcave_ratio": 2.44, "depth_mm": 35.0, "upper_endplate_deg": 4.0}
    m = VertebraMeasurements(**heights, **ratios, genant_grade=grade, genant_not_graded=why)
    return Vertebra(level=level, label=VERTEBRA_IDS[level], measurements=m)


def test_heights_are_withheld_where_the_outline_was_rejected():
    """A biconcave ratio of 2.44 beside "endplates not found" (found in review) is a number that looks clinical
    beside the reason it is not: where the outline was rejected for a Genant grade, its heights and ratios go and the
    reason stays; a graded vertebra keeps them, and depth stays either way."""
    rejected = _measured("L2", "anterior or middle height above the posterior one: endplates not found", None)
    graded = _measured("L3", None, 0)
    out = rejected_heights_withheld([rejected, graded])
    m = out[0].measurements
    assert [getattr(m, f) for f in HEIGHT_FIELDS] == [None] * 6
    assert m.genant_not_graded == rejected.measurements.genant_not_graded and m.depth_mm == 35.0
    assert out[1] == graded


def _heights(level: str, why: str, anterior: float, middle: float, posterior: float) -> Vertebra:
    from lumbar.findings import VertebraMeasurements

    m = VertebraMeasurements(
        height_anterior_mm=anterior,
        height_middle_mm=middle,
        height_posterior_mm=posterior,
        wedge_ratio=anterior / posterior,
        biconcave_ratio=middle / posterior,
        depth_mm=35.0,
        upper_endplate_deg=4.0,
        genant_grade=None,
        genant_not_graded=why,
    )
    return Vertebra(level=level, label=VERTEBRA_IDS[level], measurements=m)


def test_heights_of_an_outline_joined_to_its_arch_stay_unless_they_fail_the_endplate_test():
    """Not convex (posterior elements joined to the body) or no disc beside it: the grade goes, but the heights were
    read between endplates where they are, so they stay; unless the front or middle height exceeds the back one by
    more than a body allows (1.25 and 1.15 times), exactly at which they still stay. Cut by the edge: withheld."""
    from lumbar.tasks.measurements import CUT_BY_EDGE, NO_DISC_BESIDE, NOT_CONVEX

    def kept(vertebra: Vertebra) -> bool:
        return rejected_heights_withheld([vertebra])[0] == vertebra

    assert kept(_heights("L2", NOT_CONVEX, 25.0, 23.0, 20.0))  # 1.25 and 1.15 times: the limits themselves
    assert kept(_heights("L2", NO_DISC_BESIDE, 28.0, 26.0, 29.0))
    assert not kept(_heights("L2", NOT_CONVEX, 25.1, 23.0, 20.0))
    assert not kept(_heights("L2", NOT_CONVEX, 25.0, 23.1, 20.0))
    assert not kept(_heights("L2", NO_DISC_BESIDE, 28.0, 40.0, 29.0))
    assert not kept(_heights("L2", CUT_BY_EDGE, 28.0, 26.0, 29.0))


def test_no_real_ct_vertebra_shows_heights_beside_a_reason_they_are_wrong():
    """TotalSegmentator's example: every vertebra carries heights only where it is graded or where the reason it is
    not leaves its endplates where they were read; the report's table shows dashes beside the reason elsewhere."""
    image = read_image(shared("ct", "totalsegmentator_example", "example_ct.nii.gz"))
    result = ct.analyze(image)
    measured = [v.measurements for v in result.findings.vertebrae if v.measurements is not None]
    assert any(m.genant_grade is not None for m in measured)
    for m in measured:
        assert (m.height_middle_mm is None) == (m.biconcave_ratio is None)
        if m.height_middle_mm is not None:
            assert m.genant_grade is not None or not heights_unreliable(m)
    from lumbar.report.html import render_html

    rows = render_html(result.findings, result.figures).split("<h2>Vertebrae</h2>")[1].split("</table>")[0]
    for v in result.findings.vertebrae:
        if v.measurements is None or v.measurements.genant_not_graded is None:
            continue
        row = next(row for row in rows.split("<tr>") if row.startswith(f"<td>{v.level}</td>"))
        dashes = "<td>– / – / –</td>" in row
        assert dashes == (v.measurements.height_middle_mm is None), row
        assert '<sup class="why">' in row  # the reason's letter beside the grade's dash


def test_marrow_below_the_bone_threshold_says_why_l1_is_not_screened(ct_phantom):
    """Marrow at 60 HU (osteoporotic): the bodies come back as cortex alone and no density is read. The report said
    only that no L1 had a measurable region, which read as a technical gap exactly where the screen matters most."""
    array = ct_phantom.image.array.copy()
    marrow = np.abs(array - TISSUE["marrow"][2]) < 60
    array[marrow] -= 140
    findings = ct.analyze(ct_phantom.image.with_array(array)).findings
    assert findings.bone_density_screening is None
    assert findings.bone_density_not_screened.startswith("L1's body gave no trabecular region")
    assert "very low density, is one cause" in findings.bone_density_not_screened
