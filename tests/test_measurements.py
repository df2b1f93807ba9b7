"""Measurements against shapes with known answers and against the phantom's exact geometry."""

import numpy as np
import pytest

from lumbar.phantom import DiscSpec, make_phantom
from lumbar.tasks.levels import label_levels
from lumbar.tasks.measurements import (
    Frame,
    canal_area_mm2,
    depth_mm,
    endplate_angle_deg,
    extent_across_mm,
    frame_of,
    genant_grade,
    heights_mm,
    measure_spine,
    meyerding_grade,
    points_mm,
    slip_mm,
)

UP = np.array([-1.0, 0.0])  # toward superior in (row, col)


def rectangle(rows=100, cols=100, top=20, left=30, height=25, width=40):
    mask = np.zeros((rows, cols), bool)
    mask[top : top + height, left : left + width] = True
    return mask


def test_rectangle_heights_and_depth_with_anisotropic_pixels():
    mask = rectangle(height=25, width=40)
    spacing = (0.5, 0.8)
    frame = Frame(points_mm(mask, spacing).mean(0), UP)
    assert heights_mm(mask, spacing, frame) == pytest.approx((12.5, 12.5, 12.5))
    assert depth_mm(mask, spacing, frame) == pytest.approx(32.0)


def test_wedge_heights_follow_the_slope():
    """A trapezoid 20 px tall posteriorly, 10 px anteriorly: heights at 15%, 50%, 85% of the depth."""
    mask = np.zeros((60, 80), bool)
    for c in range(10, 50):  # anterior (left) to posterior (right)
        height = 10 + (c - 10) * 10 / 39
        mask[round(40 - height) : 40, c] = True
    frame = Frame(points_mm(mask, (1, 1)).mean(0), UP)
    ha, hm, hp = heights_mm(mask, (1, 1), frame)
    assert (
        ha == pytest.approx(11.5, abs=0.6) and hm == pytest.approx(15.0, abs=0.6) and hp == pytest.approx(18.5, abs=0.6)
    )
    assert endplate_angle_deg(mask, (1, 1), frame) == pytest.approx(np.degrees(np.arctan(10 / 39)), abs=2)


def test_frame_of_a_tilted_box_finds_its_axis():
    from scipy.ndimage import rotate

    mask = rotate(rectangle(200, 200, 80, 60, 30, 80).astype(float), 20, reshape=False, order=0) > 0.5
    frame = frame_of(points_mm(mask, (1, 1)))
    tilt = np.degrees(np.arctan2(-frame.axis[1], -frame.axis[0]))
    assert abs(abs(tilt) - 20) < 1.5
    assert heights_mm(mask, (1, 1), frame)[1] == pytest.approx(30, abs=1.5)


def test_canal_extent_and_area():
    canal = rectangle(height=60, width=15, left=50)
    frame = Frame(np.array([50.0, 48.0]), UP)  # a disc centre just in front of the canal
    assert extent_across_mm(canal, (1, 1), frame) == pytest.approx(15)
    volume = np.stack([canal] * 10)  # 10 slices of 2 mm: canal 15 mm AP x 20 mm wide
    assert canal_area_mm2(volume, (2.0, 1.0, 1.0), frame) == pytest.approx(300, rel=0.1)


@pytest.mark.parametrize(
    "heights, grade", [((27, 27, 27), 0), ((21, 27, 27), 1), ((19, 27, 27), 2), ((15, 27, 27), 3), ((27, 21, 27), 1)]
)
def test_genant_grades(heights, grade):
    assert genant_grade(heights)[0] == grade


@pytest.mark.parametrize(
    "percent, grade",
    [(2, 0), (-3, 0), (-5, None), (10, 1), (24.9, 1), (25, 2), (30, 2), (60, 3), (80, 4), (120, 5), (-30, None)],
)
def test_meyerding_grades(percent, grade):
    assert meyerding_grade(percent) == grade


def test_a_slip_under_3_mm_gets_no_meyerding_grade_whatever_its_percent():
    assert meyerding_grade(8.0, slip_mm=2.9) == 0  # 2.9 mm of a 36 mm endplate: noise, not grade I
    assert meyerding_grade(8.0, slip_mm=3.0) == 1
    assert meyerding_grade(-8.0, slip_mm=-2.9) == 0  # backwards too: within error, no slip
    assert meyerding_grade(-8.0, slip_mm=-3.0) is None  # a retrolisthesis: no Meyerding grade


def test_a_slip_on_a_grade_boundary_read_along_a_tilted_disc_keeps_its_grade():
    """The same 25% slip read along a disc turned 20 degrees comes out 24.99999999999996% (and 3 mm as
    2.999999999999999): the grade is that of the boundary, as on a level disc (found in review)."""
    assert meyerding_grade(24.99999999999996) == meyerding_grade(25.0) == 2
    assert meyerding_grade(49.99999999999996) == 3
    assert meyerding_grade(8.0, slip_mm=2.999999999999999) == 1
    assert meyerding_grade(4.999999999999999) == 1  # 5% is graded, not noise


def test_without_a_pixel_size_a_slip_under_10_percent_gets_no_meyerding_grade():
    """No pixel size, so no mm: 3 mm of a lumbar body 30-35 mm deep, 10%, is the floor (a 2-pixel slip on a small
    picture read 9% and grade I). From 10% the grade is Meyerding's; a retrolisthesis still has none."""
    assert meyerding_grade(9.9, in_pixels=True) == 0
    assert meyerding_grade(10.0, in_pixels=True) == 1
    assert meyerding_grade(30.0, in_pixels=True) == 2
    assert meyerding_grade(-12.0, in_pixels=True) is None
    assert meyerding_grade(-9.9, in_pixels=True) == 0
    assert meyerding_grade(9.9) == 1  # in mm the floor is 5% (and 3 mm where the size is given)


@pytest.fixture
def measured():
    """Built afresh for every test (not once per module): mutmut 3 runs, for a mutant, only the tests that call the
    mutated function themselves, and a cached measurement would hide every test after the first."""
    ph = make_phantom(
        shape=(5, 320, 288), discs={"L4": DiscSpec(height_loss=0.35, herniation_mm=5)}, wedge={"L1": 0.3}, seed=2
    )
    classes = ph.image.with_array(ph.semantic()).sagittal_slices()
    levels = label_levels(classes, (4.0, 1.0, 1.0))
    return ph, measure_spine(levels.instances[2], levels.levels, (1.0, 1.0))


def test_disc_heights_match_the_phantom(measured):
    ph, m = measured
    truth = {d.level: d for d in ph.discs}
    for level, disc in m.discs.items():
        t = truth[level]
        assert disc.height_anterior_mm == pytest.approx(t.height_anterior_mm, abs=1.2)
        assert disc.height_middle_mm == pytest.approx(t.height_middle_mm, abs=1.0)
        assert disc.height_posterior_mm == pytest.approx(t.height_posterior_mm, abs=1.2)


def test_vertebral_heights_wedge_and_genant_match_the_phantom(measured):
    ph, m = measured
    truth = {v.level: v for v in ph.vertebrae}
    for level, v in m.vertebrae.items():
        t = truth[level]
        if level == "S1":  # the sacrum gets no heights and no fracture grade, and says so
            assert v.height_middle_mm is None and v.genant_grade is None
            assert v.genant_not_graded == "the sacrum has no fracture grade"
            continue
        assert v.height_anterior_mm == pytest.approx(t.height_anterior_mm, abs=1.0)
        assert v.height_posterior_mm == pytest.approx(t.height_posterior_mm, abs=1.0)
    l1 = m.vertebrae["L1"]
    assert l1.wedge_ratio == pytest.approx(truth["L1"].height_anterior_mm / truth["L1"].height_posterior_mm, abs=0.04)
    assert l1.genant_grade >= 1
    assert all(v.genant_grade == 0 for level, v in m.vertebrae.items() if level not in ("L1", "S1", "T11"))
    assert m.vertebrae["T11"].genant_grade is None  # the phantom has no disc above T11: one endplate is unseen


def test_disc_height_index_matches_the_phantom(measured):
    """Mean disc height over the mean height of the bodies above and below it, from the phantom's own geometry
    (S1 has no measured height, so L5/S1 is over L5 alone): the 35% narrowed L4/L5 disc stands out."""
    ph, m = measured
    bodies = {v.level: np.mean([v.height_anterior_mm, v.height_middle_mm, v.height_posterior_mm]) for v in ph.vertebrae}
    for truth in ph.discs:
        disc_height = np.mean([truth.height_anterior_mm, truth.height_middle_mm, truth.height_posterior_mm])
        adjacent = [bodies[name] for name in truth.level.split("/") if name != "S1"]
        assert m.discs[truth.level].height_index == pytest.approx(disc_height / np.mean(adjacent), abs=0.025)
    assert m.discs["L4/L5"].height_index < 0.75 * m.discs["L3/L4"].height_index


def test_canal_narrowing_at_the_herniation(measured):
    ph, m = measured
    truth = {d.level: d for d in ph.discs}
    for level, disc in m.discs.items():
        assert disc.canal_ap_mm == pytest.approx(truth[level].canal_ap_mm, abs=1.5)
    assert m.narrowest_canal_level == "L4/L5"


def test_lordosis_and_segmental_angles(measured):
    ph, m = measured
    assert m.lordosis_deg == pytest.approx(ph.lordosis_deg, abs=2.5)
    l5s1 = m.discs["L5/S1"]
    assert l5s1.angle_deg == pytest.approx(30 - 16, abs=2)


def _l4l5(ph):
    classes = ph.image.with_array(ph.semantic()).sagittal_slices()
    levels = label_levels(classes, (4.0, 1.0, 1.0))
    return measure_spine(levels.instances[1], levels.levels, (1.0, 1.0), slab=levels.instances).discs["L4/L5"]


def test_anterolisthesis_is_measured_along_the_endplate_and_graded_from_the_truth():
    base = make_phantom(shape=(3, 320, 288), seed=4)
    slipped = make_phantom(shape=(3, 320, 288), seed=4, slip_mm={"L4": 14.0})
    a, b = _l4l5(base), _l4l5(slipped)
    assert abs(a.slip_mm) <= 2.0 and a.meyerding_grade in (0, None)  # no slip: within a pixel or two
    assert b.slip_mm - a.slip_mm == pytest.approx(14.0, abs=1.5)
    l5 = next(v for v in slipped.vertebrae if v.level == "L5")
    true_percent = 100 * 14.0 / l5.depth_mm  # the phantom's own geometry, not the measurement
    assert 25 <= true_percent < 50 and b.meyerding_grade == 2
    assert b.slip_percent - a.slip_percent == pytest.approx(true_percent, abs=3.0)  # 14 of L5's 36 mm: 39%


def test_retrolisthesis_is_reported_in_mm_without_a_meyerding_grade():
    a, b = (
        _l4l5(make_phantom(shape=(3, 320, 288), seed=4)),
        _l4l5(make_phantom(shape=(3, 320, 288), seed=4, slip_mm={"L4": -7.0})),
    )
    assert b.slip_mm - a.slip_mm == pytest.approx(-7.0, abs=1.5)
    assert b.slip_percent < -5 and b.meyerding_grade is None


def test_a_slip_seen_on_one_slice_only_is_not_reported():
    from lumbar.tasks.measurements import consensus_slip

    assert consensus_slip([(4.0, 36.0), (4.5, 36.0), (3.8, 35.0)], available=3) == pytest.approx((4.0, 400 / 36))
    assert np.isnan(consensus_slip([(9.0, 36.0), (float("nan"), 0.0), (float("nan"), 0.0)], available=3)[0])
    assert consensus_slip([(4.0, 36.0), (5.0, 36.0), (float("nan"), 0.0)], available=3)[0] == 4.5  # two of three
    assert np.isnan(consensus_slip([(4.0, 36.0), (5.0, 36.0)] + [(float("nan"), 0.0)] * 5, available=7)[0])
    assert np.isnan(consensus_slip([(9.0, 36.0), (1.0, 36.0), (2.0, 36.0)], available=3)[0])  # they disagree
    assert consensus_slip([(5.0, 40.0)], available=1) == pytest.approx((5.0, 12.5))  # one picture: its one slice


def test_real_spider_mask_matches_a_hand_count_of_pixels():
    """On a real mask, near-horizontal L3/L4: heights and canal AP against pixel counts along a column / row."""
    from conftest import shared
    from PIL import Image

    from lumbar.io.spider import spider_to_classes

    mask = np.asarray(Image.open(shared("spider", "t2space", "masks", "110_t2_SPACE_slice60.png")))
    pixel = 0.46875  # overview.csv, series 110_t2_SPACE
    classes = spider_to_classes(mask)[None]
    levels = label_levels(classes, (1.0, pixel, pixel))
    m = measure_spine(levels.instances[0], levels.levels, (pixel, pixel))
    disc = next(lv for lv in levels.discs if lv.name == "L3/L4")
    assert abs(disc.axis[1]) < 0.2  # nearly horizontal, so a pixel column is close to the disc's axis
    row, col = (np.array(disc.centroid_mm) / pixel).round().astype(int)
    by_hand_height = (levels.instances[0][:, col] == disc.label).sum() * pixel
    measured = m.discs["L3/L4"]
    assert measured.height_middle_mm == pytest.approx(by_hand_height, abs=1.0)
    canal_row = levels.instances[0][row] == 200
    by_hand_ap = canal_row[col:].sum() * pixel  # canal pixels behind the disc centre on its row
    assert measured.canal_ap_mm == pytest.approx(by_hand_ap, abs=1.5)
    body = next(lv for lv in levels.vertebrae if lv.name == "L3")
    column = levels.instances[0][:, col] == body.label  # the disc's centre column runs through the L3 body above it
    by_hand_body = column.sum() * pixel
    assert m.vertebrae["L3"].height_middle_mm == pytest.approx(by_hand_body, rel=0.1)


def test_a_vertebra_cut_by_the_image_edge_gets_no_heights():
    """T11 cut by the top of the field of view would otherwise read as a crush fracture."""
    ph = make_phantom(shape=(3, 320, 288), cranial_shift_mm=14.0)
    semantic = ph.image.with_array(ph.semantic()).sagittal_slices()
    levels = label_levels(semantic, (4.0, 1.0, 1.0))
    mid = semantic.shape[0] // 2
    m = measure_spine(levels.instances[mid], levels.levels, (1.0, 1.0))
    top = m.vertebrae["T11"]
    assert top.height_middle_mm is None and top.genant_grade is None
    assert all(v.height_middle_mm is not None for level, v in m.vertebrae.items() if level not in ("T11", "S1"))


def test_slip_ignores_a_stray_pixel_at_the_corner():
    """One posterior pixel at the upper body's lower corner (a pedicle fragment) must not read as a slip."""
    upper, lower = np.zeros((80, 60), bool), np.zeros((80, 60), bool)
    upper[5:30, 10:40] = True
    lower[40:65, 10:40] = True
    frame = frame_of(points_mm(lower, (1.0, 1.0)), axis=np.array([-1.0, 0.0]))
    assert slip_mm(upper, lower, (1.0, 1.0), frame) == pytest.approx(0.0, abs=0.01)
    upper[29, 40:48] = True
    assert slip_mm(upper, lower, (1.0, 1.0), frame) == pytest.approx(0.0, abs=0.01)
    shifted = np.roll(upper, -6, axis=1)  # the whole upper body 6 mm forward: anterolisthesis
    assert slip_mm(shifted, lower, (1.0, 1.0), frame) == pytest.approx(6.0, abs=0.01)


def test_a_fracture_grade_needs_an_outline_with_both_endplates_and_both_walls():
    from lumbar.tasks.measurements import outline_problem, solidity

    body = np.zeros((80, 80), bool)
    body[20:50, 10:46] = True  # 30 mm tall, 36 mm deep
    assert solidity(body) == pytest.approx(1.0) and outline_problem(body, (30, 30, 30), 36, [35, 37]) is None
    joined = body.copy()
    joined[45:70, 46:52] = True  # a pedicle and lamina hanging off the posterior wall
    assert "not convex" in outline_problem(joined, (30, 30, 30), 36, [])
    assert "endplates not found" in outline_problem(body, (39, 30, 30), 36, [])  # anterior 30% above posterior
    assert "endplates not found" in outline_problem(body, (30, 36, 30), 36, [])  # middle 20% above posterior
    assert "depth unlike" in outline_problem(body, (30, 30, 30), 36, [20, 22])
    assert "area" in outline_problem(body, (18, 24, 30), 36, [])  # a wedge read on a rectangle
    edge = np.zeros((80, 80), bool)
    edge[0:30, 10:46] = True
    assert "image edge" in outline_problem(edge, (30, 30, 30), 36, [])


def test_the_reports_meyerding_caption_states_the_floors_the_grade_uses():
    """The report cannot import the measurements (import contracts), so its caption repeats their floors: a change
    to either must reach the other."""
    from lumbar.report.html import MEYERDING_NOTE
    from lumbar.tasks.measurements import MIN_LISTHESIS_MM, MIN_LISTHESIS_PERCENT_IN_PIXELS

    assert f"under {MIN_LISTHESIS_MM:g} mm, or 5% of the depth" in MEYERDING_NOTE
    assert f"{MIN_LISTHESIS_PERCENT_IN_PIXELS:g}% where the pixel size is unknown" in MEYERDING_NOTE
    assert meyerding_grade(4.99) == 0 and meyerding_grade(5.0) == 1  # the 5% the caption states
