"""``lumbar.tasks.cobb`` on bodies whose corners are written out by hand, so that every corner order, tilt, height
and Cobb angle is known exactly (image y down: a right end higher has the smaller y). The spine below is of
parallelograms 40 px wide and 24 px tall whose right side is raised by ``rise`` px: a mid-line from (80, y + 12)
to (120, y - rise + 12), tilted by atan(rise / 40)."""

import math

import numpy as np
import pytest

from lumbar.tasks import cobb

SELF = pytest.approx(0.0, abs=1e-5)  # a vertebra's angle with itself (arccos of a dot product rounded below 1)


def sheared(y: int, rise: int) -> list[list[int]]:
    """Corners left-superior, right-superior, right-inferior, left-inferior of a body in columns 80-120 whose
    left-superior corner lies on row ``y`` and whose right side is ``rise`` px higher than its left."""
    return [[80, y], [120, y - rise], [120, y - rise + 24], [80, y + 24]]


def tilt(rise: int) -> float:
    return math.degrees(math.atan2(rise, 40))


def curve(angles: cobb.CobbAngles, which: str) -> tuple[int, int, float]:
    c = getattr(angles, which)
    return c.upper, c.lower, c.angle_deg


def test_a_level_rectangle_has_no_tilt_and_its_side_heights():
    rectangle = np.array([[[10.0, 20.0], [50.0, 20.0], [50.0, 44.0], [10.0, 44.0]]])
    assert cobb.tilt_deg(rectangle).tolist() == [0.0]
    assert cobb.side_heights(rectangle).tolist() == [[24.0, 24.0]]


# --- corner order


@pytest.mark.parametrize(
    "quad",
    [
        # a trapezoid 34 px wide on top, 24 below, 24 tall: its inferior endplate (24) is shorter than a side (24.5)
        [[33, 38], [67, 38], [62, 62], [38, 62]],
        # 8 px wide on top, 20 below, 12 tall: its superior endplate (8) is shorter than a side (13.4)
        [[46, 44], [54, 44], [60, 56], [40, 56]],
        # a square: endplates and sides of one length; the pair from the left-superior corner are the endplates
        [[40, 40], [60, 40], [60, 60], [40, 60]],
        # a flat body tilted right end down: its left side's middle (row 47) lies above its superior endplate's (47.5)
        [[32, 44], [69, 51], [65, 55], [34, 50]],
    ],
)
def test_corners_of_irregular_bodies_in_any_order_come_back_as_drawn(quad):
    quad = np.array(quad, np.float64)
    for order in ([0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1], [3, 2, 1, 0], [0, 2, 1, 3]):
        assert cobb.ordered_quad(quad[order]).tolist() == quad.tolist()
    assert cobb.is_ordered(quad)


def test_corners_given_as_integers_come_back_as_floats():
    quad = np.array([[20, 10], [80, 10], [80, 30], [20, 30]], np.uint8)
    ordered = cobb.ordered_quad(quad[[2, 0, 3, 1]])
    assert ordered.dtype == np.float64 and ordered.tolist() == quad.tolist()
    assert cobb.is_ordered(quad)


@pytest.mark.parametrize(
    ("quad", "ordered"),
    [
        ([[30, 38], [70, 38], [70, 62], [30, 62]], True),
        ([[0.1, 0.1], [0.3, 0.1], [0.3, 0.2], [0.1, 0.2]], True),  # a body in coordinates scaled to the image
        ([[70, 62], [30, 62], [30, 38], [70, 38]], False),  # turned half round: "superior" below "inferior"
        ([[38, 70], [38, 30], [62, 30], [62, 70]], False),  # turned a quarter: no endplate above the other
        ([[0, 0], [20, 0], [20, 10], [10, 4]], False),  # left-inferior corner pushed inside: not convex
        ([[0, 0], [20, 0], [20, 10], [10, 5]], False),  # left-inferior corner on the diagonal: a triangle
        ([[30, 38], [70, 38], [30, 62], [70, 62]], False),  # inferior corners swapped: twisted
        ([[70, 38], [30, 38], [30, 62], [70, 62]], False),  # left and right swapped: anticlockwise
    ],
)
def test_which_quads_are_ordered(quad, ordered):
    assert cobb.is_ordered(np.array(quad)) is ordered


@pytest.mark.parametrize(
    "quad",
    [
        [[70, 62], [30, 62], [30, 38], [70, 38]],
        [[30, 38], [70, 38], [30, 62], [70, 62]],
        [[70, 38], [30, 38], [30, 62], [70, 62]],
    ],
)
def test_quads_given_as_unsigned_integers_are_judged_as_floats(quad):
    """Unsigned edges never turn the wrong way: the corners are taken as floats first."""
    assert cobb.is_ordered(np.array(quad, np.uint8)) is False


# --- tilt, heights, angles between mid-lines


def test_tilts_and_heights_of_bodies_given_as_unsigned_integers_are_those_of_floats():
    """Corners beyond 127 as uint8 (sums and differences would wrap round): tilts atan(20/40), atan(-8/40) and
    atan(-20/40) (the last body's right side summed beyond 255, its left side not); heights of a body leaning 10 px
    left at the bottom sqrt(10^2 + 24^2) = 26 on both sides."""
    spine = np.array([sheared(150, 20), sheared(200, -8), sheared(110, -20)], np.uint8)
    assert cobb.tilt_deg(spine) == pytest.approx([tilt(20), tilt(-8), tilt(-20)])
    leaning = np.array([[[110, 20], [150, 20], [140, 44], [100, 44]]], np.uint8)
    assert cobb.side_heights(leaning).tolist() == [[26.0, 26.0]]
    assert cobb.side_heights(np.array([sheared(150, 20)], np.uint8)).tolist() == [[24.0, 24.0]]


def test_angles_between_mid_lines_are_at_most_90_degrees():
    """A body whose left and right corners were swapped has its mid-line reversed: 180 degrees from the level body's,
    measured as 90."""
    level = sheared(20, 0)
    swapped = [level[1], level[0], level[3], level[2]]
    assert cobb.pairwise_angles_deg(np.array([level, swapped], np.float64)).tolist() == [[0.0, 90.0], [90.0, 0.0]]


def test_angles_do_not_depend_on_the_units_of_the_corners():
    """The same spine in pixels and divided by 1000 (mid-lines 0.04 long): the same angles."""
    spine = np.array([sheared(20, 0), sheared(60, 20), sheared(100, -10)], np.float64)
    expected = [[0, tilt(20), -tilt(-10)], [tilt(20), 0, tilt(20) - tilt(-10)], [-tilt(-10), tilt(20) - tilt(-10), 0]]
    np.testing.assert_allclose(cobb.pairwise_angles_deg(spine), expected, atol=1e-6)
    np.testing.assert_allclose(cobb.pairwise_angles_deg(spine / 1000), expected, atol=1e-6)


# --- the three Cobb angles


def test_two_vertebrae_make_one_curve_and_one_is_refused():
    angles = cobb.cobb_angles(np.array([sheared(20, 8), sheared(60, -8)]), image_height=1000)
    assert curve(angles, "major") == (0, 1, pytest.approx(2 * tilt(8)))
    assert curve(angles, "second") == (0, 0, SELF)
    assert curve(angles, "third") == (1, 1, SELF)
    with pytest.raises(ValueError, match=r"^a Cobb angle needs at least two vertebrae$"):
        cobb.cobb_angles(np.array([sheared(20, 8)]), image_height=1000)


def test_a_major_curve_from_the_first_vertebra_has_no_curve_above_it():
    """Rises 12, -12, -4: the major curve is vertebrae 0-1; above it only vertebra 0 itself (0 degrees); below
    (upper half), vertebra 1 to 2."""
    angles = cobb.cobb_angles(np.array([sheared(20, 12), sheared(60, -12), sheared(100, -4)]), image_height=1000)
    assert curve(angles, "major") == (0, 1, pytest.approx(2 * tilt(12)))
    assert curve(angles, "second") == (0, 0, SELF)
    assert curve(angles, "third") == (1, 2, pytest.approx(tilt(12) - tilt(4)))


def test_of_two_end_vertebrae_at_the_same_angle_the_nearer_one_ends_the_curve():
    """Rises 0, 0, 12, -20, 0: major 2-3; vertebrae 0 and 1 make the same angle with 2, and 1 is the nearer."""
    spine = np.array([sheared(20 + 40 * k, rise) for k, rise in enumerate([0, 0, 12, -20, 0])])
    angles = cobb.cobb_angles(spine, image_height=1000)
    assert curve(angles, "major") == (2, 3, pytest.approx(tilt(12) + tilt(20)))
    assert curve(angles, "second") == (1, 2, pytest.approx(tilt(12)))
    assert curve(angles, "third") == (3, 4, pytest.approx(tilt(20)))


def test_in_the_lower_half_the_third_curve_ends_at_the_top_of_the_second():
    """Rises 0, 8, -4, -20, 16 (tilts 0, 11.3, -5.7, -26.6, 21.8 degrees) on rows 100-244 of a 250-row image: the
    major curve, 3-4, lies in the lower half. The second runs from 3 up to 1 (37.9 degrees; 0 makes 26.6, 2 makes
    20.9), the third from 1 up to 0 (11.3; vertebra 2, below 1, would make 17.0 but is not above it). Given as
    uint8, whose sums of rows above 127 would wrap round, the answer is the same."""
    rises = [0, 8, -4, -20, 16]
    spine = np.array([sheared(100 + 30 * k, rise) for k, rise in enumerate(rises)])
    for corners in (spine.astype(np.float64), spine.astype(np.uint8)):
        angles = cobb.cobb_angles(corners, image_height=250)
        assert curve(angles, "major") == (3, 4, pytest.approx(tilt(16) + tilt(20)))
        assert curve(angles, "second") == (1, 3, pytest.approx(tilt(8) + tilt(20)))
        assert curve(angles, "third") == (0, 1, pytest.approx(tilt(8)))


def test_a_major_curve_whose_middle_is_exactly_half_way_down_counts_as_in_the_lower_half():
    """Rises 0, 20, -20, 0 on rows 20, 60, 100, 140: the major curve's end vertebrae have superior endplates
    centred on rows 60 - 10 = 50 and 100 + 10 = 110; their sum, 160, is the image's height at the boundary."""
    spine = np.array([sheared(20, 0), sheared(60, 20), sheared(100, -20), sheared(140, 0)])
    at_the_middle = cobb.cobb_angles(spine, image_height=160)
    assert curve(at_the_middle, "major") == (1, 2, pytest.approx(2 * tilt(20)))
    assert curve(at_the_middle, "second") == (0, 1, pytest.approx(tilt(20)))
    assert curve(at_the_middle, "third") == (0, 0, SELF)  # the curve above the second's top, vertebra 0
    just_below = cobb.cobb_angles(spine, image_height=161)
    assert curve(just_below, "third") == (2, 3, pytest.approx(tilt(20)))  # upper half: the curve below


def test_a_body_taller_than_wide_given_in_order_is_kept_not_turned_a_quarter():
    """10 of the expert's training bodies are taller than wide (one 39 px wide, 41-44 tall): the edge-length rule
    took their sides for endplates, tilted them near 90 degrees, and a film of 8.7 degrees read a 90 degree curve
    and stated it (found in review). Given in order, such a body is kept; its tilt and the angles stay small."""
    tall = np.array([[40.0, 40.0], [79.0, 41.0], [79.0, 85.0], [40.0, 83.0]])  # 39 wide, 42-44 tall
    assert cobb.is_ordered(tall) and cobb.ordered_quad(tall).tolist() == tall.tolist()
    flat = np.array([[40.0, 0.0], [90.0, 0.0], [90.0, 30.0], [40.0, 30.0]])
    bodies = np.stack([flat, cobb.ordered_quad(tall), flat + np.array([0.0, 100.0])])
    assert np.abs(cobb.tilt_deg(bodies)).max() < 3.0  # its mid-line: side middles at rows 61.5 and 63
    assert cobb.cobb_angles(bodies, image_height=200.0).major.angle_deg < 3.0


def test_a_quad_started_one_place_round_is_not_taken_as_ordered():
    """Corners given left-inferior first (a side taken for the superior endplate) turn clockwise and put that "side"
    above the other for a body tilted right end down: the mid-line, near vertical, tells them apart (found in
    review: read as ordered, its tilt came out 80 degrees, not -10)."""
    a = np.radians(-10.0)
    along, down = np.array([np.cos(a), -np.sin(a)]), np.array([np.sin(a), np.cos(a)])
    ls = np.array([50.0, 50.0])
    quad = np.array([ls, ls + 40 * along, ls + 40 * along + 25 * down, ls + 25 * down])
    assert cobb.is_ordered(quad) and cobb.tilt_deg(quad[None])[0] == pytest.approx(-10.0)
    rotated = quad[[3, 0, 1, 2]]
    assert not cobb.is_ordered(rotated)
    assert cobb.ordered_quad(rotated) == pytest.approx(quad)


def test_a_quad_with_a_corner_not_a_number_is_not_ordered():
    """A corner the network could not place (NaN) outlines nothing: never kept as given."""
    quad = np.array([[30.0, 38.0], [70.0, 38.0], [70.0, 62.0], [30.0, 62.0]])
    quad[2, 0] = np.nan
    assert cobb.is_ordered(quad) is False
