"""Lateral radiograph maths with known answers: corners of drawn bodies, heights, tilts, slips, lordosis."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lumbar.tasks import lateral


def quad(centre, depth, height, tilt_deg, anterior_height=None):
    """A body facing left: corners AS, PS, PI, AI of a depth x height box turned by ``tilt_deg`` (anterior end
    lower for positive tilt), the anterior wall ``anterior_height`` tall (a wedge) if given."""
    a = np.radians(tilt_deg)
    along = np.array([-np.cos(a), np.sin(a)])  # posterior -> anterior along the superior endplate
    up = np.array([-np.sin(a), -np.cos(a)])  # towards the head, perpendicular to it
    c = np.asarray(centre, float)
    h_front = anterior_height if anterior_height is not None else height
    ps = c - along * depth / 2 + up * height / 2
    pi = c - along * depth / 2 - up * height / 2
    ai = c + along * depth / 2 - up * height / 2
    as_ = ai + up * h_front
    return np.array([as_, ps, pi, ai])


def drawn(corners, shape=(200, 200)):
    canvas = Image.new("L", shape[::-1], 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in corners], fill=1)
    return np.asarray(canvas, bool)


@pytest.mark.parametrize("tilt", [0.0, 12.0, -20.0, 35.0])
def test_body_corners_of_a_drawn_box_are_its_corners(tilt):
    truth = quad((100, 100), 60, 40, tilt)
    a = np.radians(tilt)
    up = np.array([-np.sin(a), -np.cos(a)])
    found = lateral.body_corners(drawn(truth), up)
    assert np.abs(found - truth).max() < 2.5  # a rasterised corner lies within about a pixel and a half


def test_body_corners_ignore_which_way_up_is_given_across():
    truth = quad((100, 100), 60, 40, 0.0)
    found = lateral.body_corners(drawn(truth), np.array([0.0, -3.0]))  # not a unit vector
    assert np.abs(found - truth).max() < 2.5
    with pytest.raises(ValueError, match="four pixels"):
        lateral.body_corners(np.zeros((5, 5), bool), np.array([0.0, -1.0]))


def test_heights_and_tilts_of_a_known_wedge():
    c = quad((0, 0), 40, 30, 10.0, anterior_height=21)
    h = lateral.heights(c)[0]
    assert h[0] == pytest.approx(21) and h[2] == pytest.approx(30)
    assert h[1] == pytest.approx(25.5)  # the endplates' midpoints: halfway between 21 and 30 on a straight wedge
    assert lateral.inferior_tilt_deg(c)[0] == pytest.approx(10.0)
    # the superior endplate of a wedge tilts further: rise 9 over a 40 mm depth
    expected = 10.0 + np.degrees(np.arctan2(9, 40))
    assert lateral.superior_tilt_deg(c)[0] == pytest.approx(expected)


def test_disc_heights_between_two_bodies_one_a_wedge():
    upper = quad((100, 60), 40, 30, 0.0)  # its inferior endplate at y = 75
    assert lateral.disc_heights(upper, quad((100, 100), 40, 30, 0.0)) == pytest.approx((10, 10, 10))
    wedge = quad((100, 100), 40, 30, 0.0, anterior_height=21)  # its anterior superior corner 9 lower
    assert lateral.disc_heights(upper, wedge) == pytest.approx((19, 14.5, 10))


def test_space_ratios_over_the_bodies_beside_each_space_with_s1_left_out():
    """L4 30 tall, L5 40, spaces 5 and 25: 5 over their mean 35, 25 over L5's 40 alone (S1, drawn 6 tall, left out)."""
    l4, l5 = quad((100, 60), 40, 30, 0.0), quad((100, 100), 40, 40, 0.0)  # L4's bottom at 75, L5 from 80 to 120
    s1 = quad((100, 148), 40, 6, 0.0)  # its top at 145: 25 below L5's bottom
    assert lateral.space_ratios([l4, l5, s1], ["L4", "L5", "S1"]) == pytest.approx([5 / 35, 25 / 40])
    assert lateral.space_ratios([l4], ["L4"]) == []


@pytest.mark.parametrize("tilt", [0.0, 25.0])
def test_slip_forward_and_backward_along_the_lower_endplate(tilt):
    a = np.radians(tilt)
    along = np.array([-np.cos(a), np.sin(a)])
    lower = quad((100, 100), 40, 30, tilt)
    upper_centre = np.array([100, 100]) + np.array([-np.sin(a), -np.cos(a)]) * 40  # one body and a disc above
    forward = quad(upper_centre + along * 6, 40, 30, tilt)
    mm, percent = lateral.slip(forward, lower)
    assert mm == pytest.approx(6) and percent == pytest.approx(15)
    back = quad(upper_centre - along * 4, 40, 30, tilt)
    assert lateral.slip(back, lower)[0] == pytest.approx(-4)
    flat = lower.copy()
    flat[lateral.AS] = flat[lateral.PS]
    assert np.isnan(lateral.slip(forward, flat)[0])


def _placed(body, corner, at):
    """``body`` moved so that its corner ``corner`` lies at ``at``."""
    return body + (np.asarray(at, float) - body[corner])


@pytest.mark.parametrize("opening", [0.0, 16.0, 30.0])
def test_a_disc_opening_in_front_is_no_slip(opening):
    """Lordosis: the lower body's superior endplate tilts ``opening``/2 anterior end down, the upper body's inferior
    endplate as far anterior end up, the posterior corners one above the other 6 px apart across a level mid-plane:
    no slip (along the lower endplate alone it read -6 sin(opening/2): -0.84 and -1.55 px). The upper body is a
    wedge (anterior wall 24 of 30) and 30 px deep against the lower one's 40, so that only its inferior endplate,
    by direction alone, can give the mid-plane. The upper body moved 5 px forward along the mid-plane: 5 px, 12.5%
    of the 40 px endplate."""
    half = opening / 2
    lower = _placed(quad((0, 0), 40, 30, half), lateral.PS, (100, 106))
    upper = _placed(quad((0, 0), 30, 30, -half, anterior_height=24), lateral.PI, (100, 100))
    assert lateral.slip(upper, lower) == pytest.approx((0.0, 0.0), abs=1e-9)
    forward = upper + np.array([-5.0, 0.0])
    assert lateral.slip(forward, lower) == pytest.approx((5.0, 12.5))


def test_a_slip_needs_endplates_that_could_bound_one_disc():
    """Endplates 59° apart bound a disc (the slip is read on their bisector); 61° apart, or an upper body whose
    inferior corners are swapped (its endplate running backwards), or a corner that is not a number, do not: NaN.
    An upper endplate of no length leaves the lower endplate alone: 6 px forward along it is 6 px."""
    lower = _placed(quad((0, 0), 40, 30, 0.0), lateral.PS, (100, 106))
    for opening, bounded in ((59.0, True), (61.0, False)):
        upper = _placed(quad((0, 0), 40, 30, -opening), lateral.PI, (100, 100))
        assert np.isnan(lateral.slip(upper, lower)[0]) != bounded
    upper = _placed(quad((0, 0), 40, 30, -10.0), lateral.PI, (100, 100))
    swapped = upper[[lateral.AS, lateral.PS, lateral.AI, lateral.PI]]
    assert np.isnan(lateral.slip(swapped, lower)).all()
    broken = upper.copy()
    broken[lateral.AI] = np.nan
    assert np.isnan(lateral.slip(broken, lower)).all()
    flat = _placed(quad((0, 0), 40, 30, 0.0), lateral.PI, (94, 100))
    flat[lateral.AI] = flat[lateral.PI]
    assert lateral.slip(flat, lower) == pytest.approx((6.0, 15.0))


def test_lordosis_is_the_angle_from_l1_to_s1_and_disc_angles_open_in_front():
    names = ["L1", "L2", "L5", "S1"]
    corners = np.stack(
        [
            quad((0, 0), 40, 30, -5.0),
            quad((0, 40), 40, 30, 0.0),
            quad((0, 120), 40, 30, 20.0),
            quad((0, 160), 40, 30, 40.0),
        ]
    )
    align = lateral.alignment(names, corners)
    assert align.lordosis_deg == pytest.approx(45.0)
    assert align.disc_angles_deg == pytest.approx({"L1": 5.0, "L5": 20.0})  # L2/L3 and L3..L5 not both found
    assert lateral.alignment(["L2", "L3"], corners[:2]).lordosis_deg is None


def test_mirroring_twice_gives_the_points_back():
    c = quad((30, 50), 40, 30, 15.0)
    once = lateral.facing_left(c, 200)
    assert once[:, 0] == pytest.approx(199 - c[:, 0])
    assert lateral.facing_left(once, 200) == pytest.approx(c)


def test_angles_wrap_and_impossible_ones_are_not_measured():
    assert lateral.angle_between_deg(170.0, -175.0) == pytest.approx(-15.0)
    assert lateral.angle_between_deg(-170.0, 175.0) == pytest.approx(15.0)
    assert np.isnan(lateral.angle_between_deg(100.0, 0.0))  # no lordosis or disc is 100 degrees
    point = np.array([[10.0, 10.0]] * 4)
    assert np.isnan(lateral.superior_tilt_deg(point)[0]) and np.isnan(lateral.inferior_tilt_deg(point)[0])
    swapped = quad((0, 0), 40, 30, 0.0)[[1, 0, 2, 3]]  # anterior and posterior superior corners exchanged
    align = lateral.alignment(["L1", "S1"], np.stack([swapped, quad((0, 160), 40, 30, 40.0)]))
    assert align.lordosis_deg is not None and np.isnan(align.lordosis_deg)
    assert align.review == (  # said, as on MRI: L1's endplate reads 180°, S1's 40°
        "lumbar lordosis read as -140.0° (L1 to S1 upper endplates), beyond ±90°: taken as an endplate misread and "
        "not reported; check L1 and S1 on the images",
    )
    assert (
        lateral.alignment(["L1", "S1"], np.stack([quad((0, 0), 40, 30, 0.0), quad((0, 160), 40, 30, 40.0)])).review
        == ()
    )


def test_the_axis_may_be_given_pointing_down_and_several_bodies_are_measured_at_once():
    truth = quad((100, 100), 60, 40, 0.0)
    found = lateral.body_corners(drawn(truth), np.array([0.0, 1.0]))  # a film upside down: the head at the bottom
    assert np.abs(found - truth[[3, 2, 1, 0]]).max() < 2.5  # anterior still left, superior now towards the bottom
    two = np.stack([quad((0, 0), 40, 30, 10.0), quad((0, 50), 40, 20, -5.0)])
    assert lateral.heights(two)[:, 0] == pytest.approx([30, 20])
    assert lateral.superior_tilt_deg(two) == pytest.approx([10.0, -5.0])
    assert lateral.inferior_tilt_deg(two) == pytest.approx([10.0, -5.0])


def test_corners_of_a_rounded_body_lie_where_its_outline_meets_the_diagonals():
    """A superellipse |a/A|^4 + |u/U|^4 <= 1 (depth 2A = 80, height 2U = 30): each corner is where the outline is
    furthest along a diagonal of the box scaled to a square, at a/A = u/U = 2^(-1/4); so its sides are 2U 2^(-1/4)."""
    yy, xx = np.mgrid[0:200, 0:200]
    a_half, u_half = 40.0, 15.0
    mask = ((np.abs(xx - 100) / a_half) ** 4 + (np.abs(yy - 100) / u_half) ** 4) <= 1
    corners = lateral.body_corners(mask, np.array([0.0, -1.0]))
    heights = lateral.heights(corners)[0]
    expected = 2 * u_half * 2**-0.25
    assert heights[0] == pytest.approx(expected, abs=1.5) and heights[2] == pytest.approx(expected, abs=1.5)
    # the depth between them too, less exactly: the percentiles that scale the frame lie inside a rounded outline
    assert np.linalg.norm(corners[lateral.AS] - corners[lateral.PS]) == pytest.approx(2 * a_half * 2**-0.25, abs=3.5)


def test_corners_given_as_unsigned_integers_measure_as_floats():
    """uint8 corners, whose differences would wrap round below zero: a body with its superior endplate rising 4 px
    over 40 towards the front (tilt -atan(4/40)), 30 px tall, mirrored in a 300 px wide film (beyond 255)."""
    body = np.array([[20, 10], [60, 14], [60, 44], [20, 40]], np.uint8)
    assert lateral.superior_tilt_deg(body) == pytest.approx([-np.degrees(np.arctan2(4, 40))])
    assert lateral.inferior_tilt_deg(body) == pytest.approx([-np.degrees(np.arctan2(4, 40))])
    assert lateral.heights(body).tolist() == [[30.0, 30.0, 30.0]]
    mirrored = lateral.facing_left(body, 300)
    assert mirrored.dtype == np.float64 and mirrored[:, 0].tolist() == [279.0, 239.0, 239.0, 279.0]
    lower = np.array([[20, 50], [60, 50], [60, 80], [20, 80]], np.uint8)
    upper = np.array([[14, 10], [54, 10], [54, 40], [14, 40]], np.float64)  # 6 px further forward
    assert lateral.slip(upper, lower) == pytest.approx((6.0, 15.0))


def test_an_endplate_of_no_length_has_no_tilt_even_among_others():
    bodies = np.array([quad((0, 0), 40, 30, 10.0), [[5, 5], [5, 5], [45, 35], [5, 35]]], np.float64)
    tilts = lateral.superior_tilt_deg(bodies)
    assert tilts[0] == pytest.approx(10.0) and np.isnan(tilts[1])
    short = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.3], [0.0, 0.3]])  # in cm: a 0.5 long endplate is one
    assert lateral.superior_tilt_deg(short).tolist() == [0.0] and lateral.inferior_tilt_deg(short).tolist() == [0.0]


def test_an_angle_of_exactly_90_degrees_is_measured_and_lordosis_needs_both_l1_and_s1():
    assert lateral.angle_between_deg(90.0, 0.0) == 90.0 and lateral.angle_between_deg(0.0, 90.0) == -90.0
    corners = np.stack([quad((0, 0), 40, 30, -5.0), quad((0, 40), 40, 30, 0.0)])
    assert lateral.alignment(["L1", "L2"], corners).lordosis_deg is None
    assert lateral.alignment(["L5", "S1"], corners).lordosis_deg is None


def test_four_pixels_are_a_body_and_three_are_not():
    square = np.zeros((4, 4), bool)
    square[1:3, 1:3] = True
    assert lateral.body_corners(square, np.array([0.0, -1.0])).tolist() == [[1, 1], [2, 1], [2, 2], [1, 2]]
    square[2, 2] = False
    with pytest.raises(ValueError, match=r"^a body needs at least four pixels$"):
        lateral.body_corners(square, np.array([0.0, -1.0]))


def test_a_film_turned_a_quarter_with_the_head_to_the_right_faces_up():
    """The spine's axis pointing right (+x): anterior is up (-y), so the anterior-superior corner is the top right."""
    mask = np.zeros((60, 120), bool)
    mask[20:40, 50:90] = True
    corners = lateral.body_corners(mask, np.array([1.0, 0.0]))
    assert corners.tolist() == [[89, 20], [89, 39], [50, 39], [50, 20]]


def test_a_spur_off_the_back_of_a_body_moves_no_corner():
    """A 60 x 40 px box and a 1 px spur 30 px long off its posterior wall (1.2% of its pixels, beyond the 1st
    percentile that scales the frame): the corners are the box's."""
    mask = np.zeros((100, 150), bool)
    mask[30:70, 50:110] = True
    mask[49, 110:140] = True
    corners = lateral.body_corners(mask, np.array([0.0, -1.0]))
    assert corners.tolist() == [[50, 30], [109, 30], [109, 69], [50, 69]]


def test_corners_of_a_tilted_rounded_body_lie_on_its_own_diagonals():
    """The superellipse of the test above, turned by 35 degrees: its corners are at +-A 2^(-1/4) along its own
    anterior direction and +-U 2^(-1/4) along its axis, within a pixel and a half."""
    t = np.radians(35.0)
    up = np.array([-np.sin(t), -np.cos(t)])
    forward = np.array([-np.cos(t), np.sin(t)])
    yy, xx = np.mgrid[0:200, 0:200]
    offset = np.stack([xx - 100, yy - 100], axis=-1)
    mask = (np.abs(offset @ forward) / 40.0) ** 4 + (np.abs(offset @ up) / 15.0) ** 4 <= 1
    a, u = 40.0 * 2**-0.25, 15.0 * 2**-0.25
    expected = [
        np.array([100.0, 100.0]) + sa * a * forward + su * u * up for sa, su in [(1, 1), (-1, 1), (-1, -1), (1, -1)]
    ]
    assert np.linalg.norm(lateral.body_corners(mask, up) - np.array(expected), axis=1).max() < 2.5


def test_a_stray_pixel_in_front_of_a_rounded_body_moves_none_of_its_corners():
    """The superellipse above and one stray pixel 20 px in front of it, level with its middle: the 99th percentile
    that scales the frame ignores it, and it lies less far along either anterior diagonal than the corners."""
    yy, xx = np.mgrid[0:200, 0:200]
    mask = ((np.abs(xx - 100) / 40.0) ** 4 + (np.abs(yy - 100) / 15.0) ** 4) <= 1
    clean = lateral.body_corners(mask, np.array([0.0, -1.0]))
    mask[100, 40] = True
    assert lateral.body_corners(mask, np.array([0.0, -1.0])).tolist() == clean.tolist()


@pytest.mark.parametrize("tilt", [0.0, 30.0, -30.0])
def test_corners_in_order_go_round_a_convex_outline_and_crossed_or_collapsed_ones_do_not(tilt):
    box = quad((50, 50), 40, 30, tilt)
    wedge = quad((50, 50), 40, 30, tilt, anterior_height=6.0)  # a crushed front is still a body
    crossed = box[[1, 0, 2, 3]]  # the superior pair swapped: the outline crosses itself
    backwards = box[::-1]  # a body read facing the other way
    collapsed = box.copy()
    collapsed[lateral.PS] = collapsed[lateral.AS]  # a superior endplate of no length
    on_a_line = box.copy()
    on_a_line[lateral.AI] = (box[lateral.AS] + box[lateral.PI]) / 2  # three corners on one line, none inside
    on_a_line[lateral.PS] = box[lateral.AS] + (box[lateral.PI] - box[lateral.AS]) * 0.25
    unknown = box.copy()
    unknown[0, 0] = np.nan
    bodies = np.stack([box, wedge, crossed, backwards, collapsed, on_a_line, unknown])
    assert lateral.corners_in_order(bodies).tolist() == [True, True, False, False, False, False, False]


def test_a_disc_angle_beyond_the_widest_opening_a_disc_has_is_not_measured():
    """The slip already finds no disc between endplates more than 60 degrees apart; the disc's angle agrees."""
    upper = quad((0, 0), 40, 30, 0.0)
    for opening, expected in ((59.0, 59.0), (61.0, None), (85.0, None)):
        lower = quad((0, 45), 40, 30, opening)
        angle = lateral.alignment(["L4", "L5"], np.stack([upper, lower])).disc_angles_deg["L4"]
        assert angle == pytest.approx(expected) if expected is not None else np.isnan(angle)
        assert np.isnan(lateral.slip(upper, lower)[0]) == (expected is None)


def test_beyond_film_is_past_the_last_pixel_centre():
    """Known answers on a film of 10 rows and 20 columns: x from 0 to 19 and y from 0 to 9 lie on it (x is a column:
    x = 15 lies on it, y = 15 does not); per body, any corner beyond puts it beyond."""
    on = np.array([[[0.0, 0.0], [19.0, 9.0], [15.0, 2.0]]])
    assert lateral.beyond_film(on, (10, 20)).tolist() == [False]
    for corner in ([-0.01, 5.0], [19.01, 5.0], [5.0, -0.01], [5.0, 9.01], [2.0, 15.0]):
        assert lateral.beyond_film(np.array([[[5.0, 5.0], corner]]), (10, 20)).tolist() == [True]
    two = np.array([[[5.0, 5.0], [6.0, 6.0]], [[5.0, 5.0], [25.0, 6.0]]])
    assert lateral.beyond_film(two, (10, 20)).tolist() == [False, True]
