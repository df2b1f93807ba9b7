"""Known answers for the frontal radiograph maths: corner order, tilt, heights, Cobb angles, SMAPE, corner errors,
the letterbox and the network's targets decoded back. Every expected value is built by hand in the test."""

from __future__ import annotations

import numpy as np
import pytest

from lumbar.metrics import corner_errors, smape
from lumbar.preprocess import RADIOGRAPH_OFFSET_SCALE, RADIOGRAPH_SHAPE, Letterbox
from lumbar.tasks.cobb import cobb_angles, is_ordered, ordered_quad, pairwise_angles_deg, side_heights, tilt_deg
from lumbar.tasks.corners import decode, targets


def body(centre: tuple[float, float], tilt: float, width: float = 40.0, height: float = 24.0) -> np.ndarray:
    """A rectangular body turned by ``tilt`` degrees (positive: right end higher, image y down), corners
    left-superior, right-superior, right-inferior, left-inferior."""
    a = np.radians(tilt)
    along = np.array([np.cos(a), -np.sin(a)])  # left -> right
    down = np.array([np.sin(a), np.cos(a)])  # superior -> inferior
    c = np.asarray(centre, float)
    w, h = width / 2, height / 2
    return np.stack(
        [c - w * along - h * down, c + w * along - h * down, c + w * along + h * down, c - w * along + h * down]
    )


def spine(tilts: list[float], top: float = 40.0, step: float = 30.0, x: float = 100.0) -> np.ndarray:
    return np.stack([body((x, top + k * step), t) for k, t in enumerate(tilts)])


@pytest.mark.parametrize("tilt", [0.0, 12.0, -35.0, 50.0, -60.0])
def test_corners_in_any_order_come_back_left_superior_first_even_when_steeply_tilted(tilt):
    quad = body((50, 50), tilt)
    for permutation in ([0, 1, 2, 3], [2, 0, 3, 1], [3, 2, 1, 0], [1, 3, 0, 2]):
        np.testing.assert_allclose(ordered_quad(quad[permutation]), quad, atol=1e-9)
    assert is_ordered(quad) == (abs(tilt) < 45)  # steeper, the order is found again from the edges' lengths
    assert not is_ordered(quad[[0, 1, 3, 2]])  # the dataset's own order (bottom-left before bottom-right): twisted
    assert not is_ordered(quad[[3, 2, 1, 0]])  # upside down


def test_tilt_heights_and_pairwise_angles_of_bodies_built_with_known_values():
    bodies = spine([0.0, 10.0, -25.0])
    np.testing.assert_allclose(tilt_deg(bodies), [0.0, 10.0, -25.0], atol=1e-9)
    np.testing.assert_allclose(side_heights(bodies), np.full((3, 2), 24.0), atol=1e-9)
    np.testing.assert_allclose(pairwise_angles_deg(bodies)[0], [0.0, 10.0, 25.0], atol=1e-6)
    np.testing.assert_allclose(pairwise_angles_deg(bodies)[1, 2], 35.0, atol=1e-6)
    wedge = body((0, 0), 0.0)
    wedge[2, 1] += 6.0  # the right side 6 px taller
    np.testing.assert_allclose(side_heights(wedge[None])[0], [24.0, 30.0])


def test_cobb_angles_of_an_s_curve_in_the_upper_half_take_the_curves_on_either_side():
    tilts = [0.0, 10.0, 20.0, 10.0, 0.0, -15.0, -25.0, -10.0, 0.0]
    angles = cobb_angles(spine(tilts), image_height=1000.0)
    assert (angles.major.upper, angles.major.lower) == (2, 6)
    assert angles.major.angle_deg == pytest.approx(45.0)
    assert (angles.second.upper, angles.second.lower, angles.second.angle_deg) == (0, 2, pytest.approx(20.0))
    assert (angles.third.upper, angles.third.lower, angles.third.angle_deg) == (6, 8, pytest.approx(25.0))
    np.testing.assert_allclose(angles.as_array(), [45.0, 20.0, 25.0], atol=1e-6)


def test_cobb_angles_of_a_major_curve_in_the_lower_half_take_the_two_curves_above_it():
    tilts = [-5.0, 8.0, -12.0, 0.0, 10.0, 0.0, -30.0, -10.0, 0.0]
    # rows 40..280: the major curve (4 to 6, 40 degrees) lies below the middle of a 300-row image
    angles = cobb_angles(spine(tilts), image_height=300.0)
    assert (angles.major.upper, angles.major.lower, angles.major.angle_deg) == (4, 6, pytest.approx(40.0))
    assert (angles.second.upper, angles.second.lower, angles.second.angle_deg) == (2, 4, pytest.approx(22.0))
    assert (angles.third.upper, angles.third.lower, angles.third.angle_deg) == (1, 2, pytest.approx(20.0))


def test_cobb_angles_need_two_vertebrae():
    with pytest.raises(ValueError):
        cobb_angles(spine([5.0]), 100.0)


def test_smape_is_the_per_image_ratio_of_summed_differences_to_summed_angles_averaged():
    truth = np.array([[10.0, 5.0, 5.0], [30.0, 0.0, 10.0], [0.0, 0.0, 0.0]])
    predicted = np.array([[10.0, 5.0, 5.0], [20.0, 10.0, 10.0], [0.0, 0.0, 0.0]])
    # image 2: (10 + 10 + 0) / (50 + 10 + 20) = 0.25; images 1 and 3: 0
    assert smape(truth, predicted) == pytest.approx(100 * 0.25 / 3)


def test_corner_errors_match_nearest_bodies_and_count_the_missed():
    truth = spine([0.0, 0.0, 0.0])
    found = truth[[2, 0]] + np.array([3.0, 4.0])  # two found, shuffled, every corner 5 px off
    pixels, relative, missed = corner_errors(truth, found)
    np.testing.assert_allclose(pixels, np.full(8, 5.0))
    np.testing.assert_allclose(relative, np.full(8, 100 * 5.0 / 24.0))
    assert missed == 1
    far = truth[:1] + np.array([0.0, 13.0])  # beyond half the body's height (12): no match
    assert corner_errors(truth[:1], far)[2] == 1


def test_letterbox_centres_the_picture_and_maps_points_both_ways():
    box = Letterbox.fit((1024, 300))  # tall: fills the rows, 150 columns centred in 256
    assert box.size == (512, 150)
    assert box.scale == (0.5, 0.5)
    np.testing.assert_allclose(box.to_box([[0.0, 0.0], [299.0, 1023.0]]), [[52.75, -0.25], [202.25, 511.25]])
    points = np.array([[12.3, 45.6], [250.0, 900.0]])
    np.testing.assert_allclose(box.to_image(box.to_box(points)), points)
    picture = np.tile(np.linspace(0.0, 1.0, 300, dtype=np.float32), (1024, 1))  # dark left, bright right
    boxed = box.apply(picture)
    assert boxed.shape == RADIOGRAPH_SHAPE
    assert boxed[:, :53].max() == 0 and boxed[:, 203:].max() == 0  # the padding
    assert boxed[256, 56] < 0.05 and boxed[256, 200] > 0.95


def test_targets_decode_back_to_the_bodies_they_were_made_from():
    bodies = spine([0.0, 8.0, -6.0, 15.0], top=60.0, step=40.0, x=120.0)
    heat, offsets, weight = targets(bodies, RADIOGRAPH_SHAPE)
    assert heat.max() == 1.0 and int((heat == 1.0).sum()) == 4
    assert int(weight.sum()) == 4 * 25
    logits = np.concatenate([np.log(np.clip(heat, 1e-6, 1 - 1e-6) / np.clip(1 - heat, 1e-6, 1))[None], offsets])
    found = decode(logits, max_count=17)
    assert len(found) == 4
    np.testing.assert_allclose([v.corners for v in found], bodies, atol=1e-4)
    np.testing.assert_allclose([v.centre for v in found], np.round(bodies.mean(1)), atol=0.35)
    assert decode(logits, max_count=2)[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(decode(logits, max_count=2)) == 2
    centre = np.round(bodies[0].mean(0)).astype(int)
    np.testing.assert_allclose(
        offsets[:, centre[1], centre[0]] * RADIOGRAPH_OFFSET_SCALE, (bodies[0] - centre).ravel(), atol=1e-5
    )
