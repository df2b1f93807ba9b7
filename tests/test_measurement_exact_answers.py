"""``lumbar.tasks.measurements`` on shapes drawn pixel by pixel, whose every measurement is known exactly: a spine
of rectangles (bodies 30 mm tall and 36 mm deep, discs 10 mm tall, a 15 mm canal behind them) and small masks for
each of the pure functions."""

import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from lumbar.tasks.measurements import Frame, measure_spine


@dataclass(frozen=True)
class _Level:
    """The fields of a level that ``measure_spine`` reads (name, label, kind, axis)."""

    name: str
    label: int
    kind: str
    axis: tuple[float, float] = (0.0, 0.0)


UP = (-1.0, 0.0)
CANAL = 200
L3_TO_L5 = (  # the named levels of the rectangle spines below, with the labels their images carry
    _Level("L3", 3, "vertebra"),
    _Level("L3/L4", 34, "disc", UP),
    _Level("L4", 4, "vertebra"),
    _Level("L4/L5", 45, "disc", UP),
    _Level("L5", 5, "vertebra"),
)


def _spine(shift_l3: int = 0, narrow_l4_l5: bool = True) -> tuple[np.ndarray, list[_Level]]:
    """L3 rows 20-49, disc L3/L4 rows 50-59, L4 rows 60-89, disc L4/L5 rows 90-99, L5 rows 100-129, all in columns
    30-65 (36 px); the canal in columns 70-84 (15 px), 10 px (70-79) from row 85 to 105 where it passes L4/L5.
    ``shift_l3`` moves L3 that many columns forward (toward anterior, lower columns): an anterolisthesis."""
    image = np.zeros((170, 120), np.int32)
    image[20:50, 30 - shift_l3 : 66 - shift_l3] = 3
    image[50:60, 30:66] = 34
    image[60:90, 30:66] = 4
    image[90:100, 30:66] = 45
    image[100:130, 30:66] = 5
    image[10:150, 70:85] = CANAL
    if narrow_l4_l5:
        image[85:106, 80:85] = 0
    levels = list(L3_TO_L5)
    return image, levels


def test_a_spine_of_rectangles():
    """Pixel centres 29 rows apart plus one pixel: bodies 30 mm, discs 10 mm at all three points; depth 36 mm;
    wedge and biconcave ratios 1; height index 10/30. Canal AP behind each disc centre: 15 mm at L3/L4, 10 mm at
    L4/L5 (the narrowest). No slip and no angle between parallel endplates. Only L4 has a disc above and below, so
    only it gets a Genant grade (0). No L1 and no S1: no lordosis. No canal volume: no canal area."""
    image, levels = _spine()
    m = measure_spine(image, levels, (1.0, 1.0))
    assert set(m.vertebrae) == {"L3", "L4", "L5"} and set(m.discs) == {"L3/L4", "L4/L5"}
    for v in m.vertebrae.values():
        assert (v.height_anterior_mm, v.height_middle_mm, v.height_posterior_mm) == pytest.approx((30, 30, 30))
        assert v.depth_mm == pytest.approx(36) and v.wedge_ratio == v.biconcave_ratio == pytest.approx(1.0)
        assert v.upper_endplate_deg == pytest.approx(0.0, abs=1e-9)
    assert m.vertebrae["L4"].genant_grade == 0
    assert m.vertebrae["L3"].genant_grade is None and m.vertebrae["L5"].genant_grade is None
    for d in m.discs.values():
        assert (d.height_anterior_mm, d.height_middle_mm, d.height_posterior_mm) == pytest.approx((10, 10, 10))
        assert d.height_index == pytest.approx(1 / 3)
        assert d.slip_mm == pytest.approx(0.0, abs=1e-9) and d.angle_deg == pytest.approx(0.0, abs=1e-9)
        assert d.canal_area_mm2 is None
    assert all(d.meyerding_grade == 0 for d in m.discs.values())  # aligned bodies: no slip, not a retrolisthesis
    assert m.discs["L3/L4"].canal_ap_mm == pytest.approx(15.0)
    assert m.discs["L4/L5"].canal_ap_mm == pytest.approx(10.0)
    assert m.narrowest_canal_level == "L4/L5" and m.narrowest_canal_ap_mm == pytest.approx(10.0)
    assert m.lordosis_deg is None


def test_why_a_vertebra_has_no_fracture_grade_is_recorded():
    """L4 between two discs is graded and states no reason; L3 and L5 each lack a disc on one side and say so. With
    L3 moved up to stop one pixel short of the image's top edge (an outline that runs into the edge seldom reaches
    it), L3 is cut by the edge: no heights, no grade, and that reason."""
    image, levels = _spine()
    m = measure_spine(image, levels, (1.0, 1.0))
    assert m.vertebrae["L4"].genant_grade == 0 and m.vertebrae["L4"].genant_not_graded is None
    for name in ("L3", "L5"):
        assert m.vertebrae[name].genant_not_graded == "no disc found above or below it: its endplates are not both seen"
    raised = image.copy()
    raised[raised == 3] = 0
    raised[1:50, 30:66] = 3  # rows 1-49: one pixel of background above it
    cut = measure_spine(raised, levels, (1.0, 1.0)).vertebrae["L3"]
    assert cut.genant_not_graded == "cut by the image edge" and cut.genant_grade is None
    assert cut.height_anterior_mm is None or np.isnan(cut.height_anterior_mm)
    # Three pixels short of the edge, on a picture measured in pixels: 2 "mm" of 1-pixel placeholders would miss it;
    # judged in the 0.5 mm pixels the reader assumed for the picture (edge_spacing_mm), 2 mm is 4 of them.
    lower = image.copy()
    lower[lower == 3] = 0
    lower[3:50, 30:66] = 3
    placeholder = measure_spine(lower, levels, (1.0, 1.0), in_mm=False)
    assert placeholder.vertebrae["L3"].genant_not_graded != "cut by the image edge"
    assert placeholder.vertebrae["L3"].height_middle_mm == pytest.approx(47.0)
    assert placeholder.discs["L3/L4"].slip_mm == pytest.approx(0.0, abs=1e-9)
    judged = measure_spine(lower, levels, (1.0, 1.0), in_mm=False, edge_spacing_mm=(0.5, 0.5))
    assert judged.vertebrae["L3"].genant_not_graded == "cut by the image edge"
    assert judged.vertebrae["L3"].height_middle_mm is None  # no heights for a cut body, in either reading
    assert judged.discs["L3/L4"].slip_mm is None  # nor a slip on it
    assert judged.discs["L4/L5"].slip_mm == pytest.approx(0.0, abs=1e-9)  # the bodies below are whole


def test_a_disc_or_a_body_the_image_cuts_has_no_heights_and_no_depth():
    """The image's top edge run through L3/L4 (rows 54 on: 6 of its 10 rows in view, L3 gone): its outline's top is
    the edge, not an endplate, so it has no heights and no height index (it read 6 mm and an index of 0.2, a
    narrowing: found in review); L4/L5 below keeps its 10 mm. The front edge run through the bodies (columns 40 on):
    their depths read the edge, so none is given, and no heights either (found in review: 26 of 36 mm)."""
    image, levels = _spine()
    top = measure_spine(image[54:], [lv for lv in levels if lv.name != "L3"], (1.0, 1.0))
    assert top.discs["L3/L4"].height_middle_mm is None and top.discs["L3/L4"].height_index is None
    assert top.discs["L4/L5"].height_middle_mm == pytest.approx(10.0)
    front = measure_spine(image[:, 40:], levels, (1.0, 1.0))
    for name in ("L3", "L4", "L5"):
        assert front.vertebrae[name].depth_mm is None and front.vertebrae[name].height_middle_mm is None
        assert front.vertebrae[name].genant_not_graded == "cut by the image edge"
    assert all(d.height_middle_mm is None for d in front.discs.values())


def test_s1_read_without_its_disc_is_read_from_its_body_cut_at_the_canal():
    """No L5/S1 disc found: S1's upper endplate comes from its body, which the network joined to bone behind the
    canal whose top rises 8 rows toward the back. Cut at the canal (as every body is) the endplate is flat; read
    from the outline uncut it tilted (7.4 degrees in review's case) and replaced the table's value."""
    image = np.zeros((170, 140), np.int32)
    image[60:90, 30:66] = 5  # L5
    image[100:130, 30:70] = 26  # S1's body
    image[100:130, 85:130] = 26  # bone behind the canal, joined to the body below it ...
    image[130:134, 30:130] = 26
    image[92:100, 110:130] = 26  # ... rising toward the back
    image[10:130, 70:85] = CANAL
    levels = [_Level("L5", 5, "vertebra"), _Level("S1", 26, "vertebra")]
    m = measure_spine(image, levels, (1.0, 1.0))
    assert m.vertebrae["S1"].upper_endplate_deg == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("shift", "percent", "grade"), [(6, 100 * 6 / 36, 1), (-4, -100 * 4 / 36, None)])
def test_a_slip_of_the_upper_body_by_whole_pixels(shift, percent, grade):
    """L3 moved 6 px forward: anterolisthesis of 6 mm, 6/36 of L4's endplate = 16.7%, Meyerding I. Moved 4 px
    back: retrolisthesis of -4 mm (-11.1%), which has no Meyerding grade. L4/L5 below is untouched."""
    image, levels = _spine(shift_l3=shift)
    m = measure_spine(image, levels, (1.0, 1.0))
    d = m.discs["L3/L4"]
    assert d.slip_mm == pytest.approx(shift) and d.slip_percent == pytest.approx(percent)
    assert d.meyerding_grade == grade
    assert m.discs["L4/L5"].slip_mm == pytest.approx(0.0, abs=1e-9)


def test_the_floor_of_a_meyerding_grade_is_3_mm_or_without_mm_10_percent():
    """A 2 px forward slip is 2/36 = 5.6%: grade I by percent, but under the 3 mm floor when a pixel is a mm; with
    placeholder spacing (``in_mm=False``) there is no mm to compare with, and 5.6% is under the 10% that 3 mm is of
    a lumbar body's depth: no grade either. A 4 px slip (11%) is grade I both ways."""
    image, levels = _spine(shift_l3=2)
    assert measure_spine(image, levels, (1.0, 1.0)).discs["L3/L4"].meyerding_grade == 0
    assert measure_spine(image, levels, (1.0, 1.0), in_mm=False).discs["L3/L4"].meyerding_grade == 0
    image, levels = _spine(shift_l3=4)
    assert measure_spine(image, levels, (1.0, 1.0)).discs["L3/L4"].meyerding_grade == 1
    assert measure_spine(image, levels, (1.0, 1.0), in_mm=False).discs["L3/L4"].meyerding_grade == 1


def test_specks_of_canal_neither_cut_a_body_nor_narrow_the_canal():
    """Two specks of canal, 2 x 2 px (4 mm²): one at L4's anterior upper corner (rows 66-67, columns 30-31), whose
    rows would otherwise cut L4 in front of it and leave its lower 22 rows as the body (no slip readable at L3/L4);
    one between the L4/L5 disc and the canal (columns 66-67), from which the diameter would read 2 mm. Left out, the
    spine measures as without them."""
    image, levels = _spine()
    image[66:68, 30:32] = CANAL
    image[94:96, 66:68] = CANAL
    m = measure_spine(image, levels, (1.0, 1.0))
    v = m.vertebrae["L4"]
    # the 4 px the corner speck takes from L4 tilt its fitted frame, and the discs' beside it, by a hair
    assert (v.height_anterior_mm, v.height_middle_mm, v.height_posterior_mm) == pytest.approx((30, 30, 30), abs=0.05)
    assert m.discs["L3/L4"].slip_mm == pytest.approx(0.0, abs=0.05)
    assert m.discs["L4/L5"].canal_ap_mm == pytest.approx(10.0, abs=0.05)
    assert m.discs["L3/L4"].canal_ap_mm == pytest.approx(15.0, abs=0.05)


def test_a_canal_outline_ending_at_a_disc_gives_that_disc_no_diameter():
    """The canal cut off at row 97, 2.5 rows below the L4/L5 disc's centre (row 94.5): its tip is not read there,
    neither its diameter nor, in a volume, its area (a tip's area would be graded as the canal's), so L3/L4's 15 mm,
    read where the canal goes on, is the narrowest. A canal volume with no canal in a disc's plane gives no area
    (not 0 mm²)."""
    image, levels = _spine()
    image[97:, 70:85] = 0
    volume = np.repeat((image == CANAL)[None], 3, axis=0)
    m = measure_spine(image, levels, (1.0, 1.0), canal_volume=volume, lateral_mm=2.0)
    assert m.discs["L4/L5"].canal_ap_mm is None and m.discs["L4/L5"].canal_area_mm2 is None
    assert m.discs["L3/L4"].canal_area_mm2 == pytest.approx(90.0)
    assert m.narrowest_canal_level == "L3/L4" and m.narrowest_canal_ap_mm == pytest.approx(15.0)
    from lumbar.tasks.measurements import canal_area_mm2

    empty_plane = Frame(np.array([160.0, 40.0]), np.array(UP))
    assert np.isnan(canal_area_mm2(volume, (2.0, 1.0, 1.0), empty_plane))


def test_canal_area_in_each_discs_plane():
    """The canal volume: three 2 mm slices of the canal mask. In the L3/L4 disc's plane (centre row 54.5) a 2 mm
    slab holds rows 54 and 55: 2 rows x 15 columns x 3 slices = 90 voxels of 2 mm³, over 2 mm: 90 mm² (6 mm wide by
    15 mm deep). At L4/L5 the canal is 10 columns: 60 mm²."""
    image, levels = _spine()
    volume = np.repeat((image == CANAL)[None], 3, axis=0)
    m = measure_spine(image, levels, (1.0, 1.0), canal_volume=volume, lateral_mm=2.0)
    assert m.discs["L3/L4"].canal_area_mm2 == pytest.approx(90.0)
    assert m.discs["L4/L5"].canal_area_mm2 == pytest.approx(60.0)


# The pure functions, one known shape each


def test_frame_across_points_posterior_and_is_perpendicular():
    """Axis (-0.6, 0.8) (up and posterior): across is (0.8, 0.6), the perpendicular with a posterior (+col) part;
    for axis (-0.6, -0.8) it is (-0.8, 0.6). A vertical axis gives straight posterior, (0, 1)."""
    from lumbar.tasks.measurements import Frame

    origin = np.zeros(2)
    assert Frame(origin, np.array([-0.6, 0.8])).across == pytest.approx([0.8, 0.6])
    assert Frame(origin, np.array([-0.6, -0.8])).across == pytest.approx([-0.8, 0.6])
    assert Frame(origin, np.array([-1.0, 0.0])).across == pytest.approx([0.0, 1.0])


def test_points_local_coordinates_and_pixel_width():
    """Pixel (2, 3) at spacing (0.5, 2) is at (1, 6) mm; relative to origin (0, 4) with axis up, it is 1 mm below
    (s = -1) and 2 mm posterior (t = 2). A pixel seen along (0.6, 0.8) at spacing (0.5, 2) is 0.3 + 1.6 = 1.9 mm."""
    from lumbar.tasks.measurements import Frame, _pixel_along, local, points_mm

    mask = np.zeros((4, 5), bool)
    mask[2, 3] = True
    pts = points_mm(mask, (0.5, 2.0))
    assert pts.tolist() == [[1.0, 6.0]]
    s, t = local(pts, Frame(np.array([0.0, 4.0]), np.array([-1.0, 0.0])))
    assert s.tolist() == [-1.0] and t.tolist() == [2.0]
    assert _pixel_along(np.array([0.6, 0.8]), (0.5, 2.0)) == pytest.approx(1.9)
    assert _pixel_along(np.array([-0.6, -0.8]), (0.5, 2.0)) == pytest.approx(1.9)


def test_frame_of_uses_the_fallback_axis_only_for_a_round_shape():
    """A 20 x 20 square has no direction of least spread: the fallback axis is taken (normalised, and turned to
    point up). A 10 x 40 bar is flat: its own axis, vertical, wins over the fallback. Without a fallback the
    square still gets a unit axis pointing up (row component <= 0). The origin is the centroid."""
    from lumbar.tasks.measurements import frame_of, points_mm

    square = np.zeros((60, 60), bool)
    square[20:40, 20:40] = True
    pts = points_mm(square, (1.0, 1.0))
    frame = frame_of(pts, fallback_axis=np.array([3.0, -4.0]))  # points down: turned to (-0.6, 0.8)
    assert frame.axis == pytest.approx([-0.6, 0.8]) and frame.origin == pytest.approx([29.5, 29.5])
    own = frame_of(pts)
    assert np.linalg.norm(own.axis) == pytest.approx(1.0) and own.axis[0] <= 0
    bar = np.zeros((60, 60), bool)
    bar[25:35, 10:50] = True
    assert frame_of(points_mm(bar, (1.0, 1.0)), fallback_axis=np.array([-0.6, 0.8])).axis == pytest.approx([-1, 0])
    assert frame_of(pts, axis=np.array([0.0, 2.0])).axis == pytest.approx([0.0, 1.0])  # given: normalised only


def test_heights_of_too_few_pixels_and_within_a_given_span():
    """Two pixels are no structure: NaN heights. A 10-row rectangle in columns 10-49 measured within the span
    t = -10..10 around its centre (column 29.5): heights at t = -7, 0 and 7 all 10 mm; a span reaching past the
    rectangle's posterior end (t = 0..38) puts the posterior point (t = 32.3) outside it: NaN there (the middle one,
    t = 19, lies half a pixel inside the posterior end, column 49: a line on the outline's very side, t = 20, would
    read a pixel short, as the outline is half in and half out all along it)."""
    from lumbar.tasks.measurements import Frame, heights_mm

    two = np.zeros((20, 20), bool)
    two[5, 5:7] = True
    frame = Frame(np.array([5.0, 5.5]), np.array([-1.0, 0.0]))
    assert all(np.isnan(h) for h in heights_mm(two, (1.0, 1.0), frame))
    rect = np.zeros((40, 60), bool)
    rect[15:25, 10:50] = True
    frame = Frame(np.array([19.5, 29.5]), np.array([-1.0, 0.0]))
    assert heights_mm(rect, (1.0, 1.0), frame, span=(-10.0, 10.0)) == pytest.approx((10, 10, 10))
    a, m, p = heights_mm(rect, (1.0, 1.0), frame, span=(0.0, 38.0))
    assert (a, m) == pytest.approx((10, 10)) and np.isnan(p)


def _tilted_rectangle(height, width, tilt_deg, spacing, centre):
    """A rectangle ``height`` mm along an axis tilted ``tilt_deg`` from the rows and ``width`` mm across it, drawn by
    pixel centres on a 120 mm square; and its frame."""
    tilt = np.radians(tilt_deg)
    axis = np.array([-np.cos(tilt), np.sin(tilt)])
    frame = Frame(np.asarray(centre, float), axis)
    rows, cols = np.mgrid[: round(120 / spacing[0]), : round(120 / spacing[1])]
    d = np.stack([rows * spacing[0], cols * spacing[1]], -1) - np.asarray(centre, float)
    return (np.abs(d @ axis) <= height / 2) & (np.abs(d @ frame.across) <= width / 2), frame


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.6, 0.6), (1.0, 0.5)])
@pytest.mark.parametrize("tilt", [0.0, 15.0, 30.0, 45.0])
def test_extents_of_tilted_outlines_are_not_read_long(tilt, spacing):
    """A 10 x 36 mm body and a 12 mm wide canal, tilted 0-45 degrees and drawn at 40 random sub-pixel offsets, read
    on average within 0.15 mm of their true height, depth and diameter. Reading between the outermost pixel centres
    and adding a pixel projected on the tilted line read them 0.4-1.0 mm long at 15-45 degrees (a square's corners
    stick out along a tilted line): stenosis graded too mildly, heights and depths too large."""
    from lumbar.tasks.measurements import Frame, canal_ap_mm, depth_mm, heights_mm

    errors = []
    for k in range(40):
        centre = np.array([60.0, 55.0]) + np.random.default_rng(k).uniform(0, 2, 2)
        body, frame = _tilted_rectangle(10.0, 36.0, tilt, spacing, centre)
        canal, _ = _tilted_rectangle(60.0, 12.0, tilt, spacing, centre)
        disc_centre = Frame(centre - 9 * frame.across, frame.axis)  # the canal 3 to 15 mm behind it
        errors.append(
            (
                np.mean(heights_mm(body, spacing, frame)) - 10,
                depth_mm(body, spacing, frame) - 36,
                canal_ap_mm(canal, spacing, disc_centre) - 12,
            )
        )
    assert np.abs(np.mean(errors, axis=0)) == pytest.approx(np.zeros(3), abs=0.15)


def test_walls_ignore_a_spur_and_fall_back_to_the_extremes():
    """A 30-row body in columns 10-45 with a 3-row spur out to column 52 at its middle: the walls are the median
    column extremes over the bands, 10 and 45, not 52. Points all at one height (no bands between the 20th and
    80th percentile) give the plain extremes."""
    from lumbar.tasks.measurements import walls

    body = np.zeros((60, 70), bool)
    body[10:40, 10:46] = True
    body[24:27, 46:53] = True
    rows, cols = np.nonzero(body)
    assert walls(-rows.astype(float), cols.astype(float), 1.0) == pytest.approx((10.0, 45.0))
    assert walls(np.zeros(4), np.array([3.0, -1.0, 7.0, 2.0]), 1.0) == (-1.0, 7.0)


def test_depth_across_the_middle_of_a_wedge():
    """A body 36 columns deep at its middle rows but only 20 at its top rows: depth is read across the middle
    (median height), so 36 mm; at spacing (1, 0.5) the same pixels are 18 mm deep."""
    from lumbar.tasks.measurements import Frame, depth_mm

    body = np.zeros((60, 70), bool)
    body[10:40, 10:46] = True
    body[10:14, 30:46] = False  # the top rows are shallower
    frame = Frame(np.array([25.0, 28.0]), np.array([-1.0, 0.0]))
    assert depth_mm(body, (1.0, 1.0), frame) == pytest.approx(36.0)
    frame_half = Frame(np.array([25.0, 14.0]), np.array([-1.0, 0.0]))
    assert depth_mm(body, (1.0, 0.5), frame_half) == pytest.approx(18.0)


def test_canal_extent_needs_canal_behind_the_disc_within_the_band():
    """Canal columns 50-64 on rows 20-79. From a disc centre at row 50, column 40: 15 mm. Canal pieces in front of
    the centre (columns 30-34) are not counted. No canal at all, none within 1.5 mm of the disc's plane, or only
    canal in front of it: NaN. A wider band (5 mm) reaches canal rows that a 1.5 mm one does not."""
    from lumbar.tasks.measurements import Frame, extent_across_mm

    up = np.array([-1.0, 0.0])
    canal = np.zeros((100, 80), bool)
    canal[20:80, 50:65] = True
    canal[45:55, 30:35] = True
    assert extent_across_mm(canal, (1.0, 1.0), Frame(np.array([50.0, 40.0]), up)) == pytest.approx(15.0)
    assert np.isnan(extent_across_mm(np.zeros_like(canal), (1.0, 1.0), Frame(np.array([50.0, 40.0]), up)))
    assert np.isnan(extent_across_mm(canal, (1.0, 1.0), Frame(np.array([90.0, 40.0]), up)))
    assert np.isnan(extent_across_mm(canal, (1.0, 1.0), Frame(np.array([50.0, 70.0]), up)))
    assert extent_across_mm(canal, (1.0, 1.0), Frame(np.array([83.0, 40.0]), up), half_band_mm=5.0) == 15.0
    assert np.isnan(extent_across_mm(canal, (1.0, 1.0), Frame(np.array([83.0, 40.0]), up)))
    # the default band is 1.5 mm: the canal's last row (79) reaches a plane 1.5 mm below it, not one 2 mm below
    assert extent_across_mm(canal, (1.0, 1.0), Frame(np.array([80.5, 40.0]), up)) == pytest.approx(15.0)
    assert np.isnan(extent_across_mm(canal, (1.0, 1.0), Frame(np.array([81.0, 40.0]), up)))
    # a piece behind the canal one empty column away (65) is the same tube: 50-72, 23 mm; two (65-66) end it
    for first, expected in ((66, 23.0), (67, 15.0)):
        behind = canal.copy()
        behind[20:80, first:73] = True
        assert extent_across_mm(behind, (1.0, 1.0), Frame(np.array([50.0, 40.0]), up)) == pytest.approx(expected)
    # one row in the band (half a millimetre): columns 50-64 once each, the canal's last column counts: 15 mm
    assert extent_across_mm(canal, (1.0, 1.0), Frame(np.array([50.0, 40.0]), up), half_band_mm=0.4) == pytest.approx(
        15.0
    )


def test_canal_without_specks_keeps_pieces_of_five_square_millimetres():
    """At 0.5 mm pixels a piece of 20 pixels is 5 mm² (kept), one of 19 is 4.75 mm² (dropped); pieces touching
    at a corner are one piece (8-connected). The canal itself is untouched."""
    from lumbar.tasks.measurements import canal_without_specks

    canal = np.zeros((60, 60), bool)
    canal[5:55, 40:50] = True
    canal[10:14, 10:15] = True  # 20 pixels
    canal[30:34, 10:15] = True
    canal[33, 14] = False  # 19 pixels
    canal[20:23, 20:23] = True  # 9 pixels ...
    canal[23:26, 23:27] = True  # ... and 12 touching it at a corner: 21
    kept = canal_without_specks(canal, (0.5, 0.5))
    assert kept[5:55, 40:50].all()
    assert kept[10:14, 10:15].all() and kept[20:26, 20:27].sum() == 21
    assert not kept[30:34, 10:15].any()
    assert kept.sum() == 500 + 20 + 21
    assert not canal_without_specks(np.zeros((5, 5), bool), (1.0, 1.0)).any()


def test_canal_diameter_is_read_only_where_the_canal_goes_on_past_the_disc():
    """Canal columns 50-64 on rows 20-79, disc centre at row 50, column 40: 15 mm. Ending 5 mm below the disc's
    plane (rows 20-55) it is still read; ending 4 mm below (rows 20-54), or 4 mm above (rows 46-79), it is a tip:
    NaN. Canal further back (columns 75-79, beyond 5 mm behind the tube) does not count as going on; within 5 mm
    (columns 68-70) it does, and so does canal bending forward (columns 46-52, 4-10 mm behind the disc's centre), but
    not canal in front of the disc's centre (columns 20-24). Reaching exactly 5 mm above (rows 45-79) is enough. A
    canal broken at the disc itself (rows 20-47 and 53-79, with a 2-row piece across the
    plane) is read: that is what stenosis looks like."""
    from lumbar.tasks.measurements import CANAL_REACH_MM, canal_ap_mm

    assert CANAL_REACH_MM == 5.0
    up, spacing = np.array([-1.0, 0.0]), (1.0, 1.0)
    at_disc = Frame(np.array([50.0, 40.0]), up)

    def canal(rows: slice, cols: slice = slice(50, 65)) -> np.ndarray:
        mask = np.zeros((100, 90), bool)
        mask[rows, cols] = True
        return mask

    assert canal_ap_mm(canal(slice(20, 80)), spacing, at_disc) == pytest.approx(15.0)
    assert canal_ap_mm(canal(slice(20, 56)), spacing, at_disc) == pytest.approx(15.0)
    assert np.isnan(canal_ap_mm(canal(slice(20, 55)), spacing, at_disc))
    assert np.isnan(canal_ap_mm(canal(slice(46, 80)), spacing, at_disc))
    far_back = canal(slice(20, 55)) | canal(slice(56, 80), slice(75, 80))
    assert np.isnan(canal_ap_mm(far_back, spacing, at_disc))
    near = canal(slice(20, 55)) | canal(slice(56, 80), slice(68, 71))
    assert canal_ap_mm(near, spacing, at_disc) == pytest.approx(15.0)
    bent_forward = canal(slice(20, 55)) | canal(slice(55, 80), slice(46, 53))  # still the tube: 4-10 mm behind
    assert canal_ap_mm(bent_forward, spacing, at_disc) == pytest.approx(15.0)
    in_front = canal(slice(20, 55)) | canal(slice(40, 80), slice(20, 25))  # in front of the disc's centre
    assert np.isnan(canal_ap_mm(in_front, spacing, at_disc))
    assert canal_ap_mm(canal(slice(45, 80)), spacing, at_disc) == pytest.approx(15.0)  # exactly 5 mm above
    pinched = canal(slice(20, 48)) | canal(slice(53, 80)) | canal(slice(49, 51), slice(52, 56))
    assert canal_ap_mm(pinched, spacing, at_disc) == pytest.approx(4.0)
    assert np.isnan(canal_ap_mm(np.zeros((100, 90), bool), spacing, at_disc))


def _parallelogram(sign: int = 1) -> np.ndarray:
    """Columns 10-49, each 20 rows tall, its top at row 60 - c (sign 1: rising toward posterior by one row per
    column, 45°) or 20 + c (sign -1: falling, -45°)."""
    mask = np.zeros((120, 70), bool)
    for c in range(10, 50):
        top = 60 - c if sign > 0 else 20 + c
        mask[top : top + 20, c] = True
    return mask


def test_endplate_angles_of_a_parallelogram():
    """Both endplates of the parallelogram rise one row per column toward posterior: 45°, upper and lower; the
    mirrored one falls: -45°. A rectangle's are 0. A single column has no surface to fit: NaN."""
    from lumbar.tasks.measurements import Frame, endplate_angle_deg

    frame = Frame(np.array([40.0, 30.0]), np.array([-1.0, 0.0]))
    for sign, angle in ((1, 45.0), (-1, -45.0)):
        mask = _parallelogram(sign)
        assert endplate_angle_deg(mask, (1.0, 1.0), frame, upper=True) == pytest.approx(angle)
        assert endplate_angle_deg(mask, (1.0, 1.0), frame, upper=False) == pytest.approx(angle)
    rect = np.zeros((60, 60), bool)
    rect[20:40, 10:50] = True
    assert endplate_angle_deg(rect, (1.0, 1.0), frame) == pytest.approx(0.0, abs=1e-9)
    column = np.zeros((60, 60), bool)
    column[10:40, 30] = True
    assert np.isnan(endplate_angle_deg(column, (1.0, 1.0), frame))


def _roof(flat_top: bool = False) -> np.ndarray:
    """Columns 10-49 of a body whose upper endplate rises 45° toward posterior (top at row 60 - c) over a flat lower
    endplate (row 79); ``flat_top``: the same turned over, a flat upper endplate (row 20) over a lower one rising
    45° toward posterior (bottom at row 79 - c)."""
    body = np.zeros((120, 70), bool)
    for c in range(10, 50):
        if flat_top:
            body[20 : 80 - c, c] = True
        else:
            body[60 - c : 80, c] = True
    return body


def test_the_disc_plane_frame_bisects_the_endplates_either_side():
    """The frame runs along the bisector of the upper body's lower endplate and the lower body's upper endplate,
    at the lower body's origin: a body rising 45° toward posterior at its lower endplate above a rectangle, 22.5°:
    axis (-cos 22.5°, -sin 22.5°), across (-sin 22.5°, cos 22.5°). Bodies whose two endplates differ tell which
    endplate is read: above, a body flat below and rising 45° on top reads 0° (its lower endplate); below, a body
    rising 45° on top and flat below reads 22.5° (its upper endplate). With one endplate unfitted (a single column)
    the other alone; with neither, the lower body's own frame as it is."""
    from lumbar.tasks.measurements import Frame, disc_plane_frame

    frame = Frame(np.array([40.0, 30.0]), np.array([-1.0, 0.0]))
    rect = np.zeros((120, 70), bool)
    rect[60:80, 10:50] = True
    column = np.zeros((60, 60), bool)
    column[10:40, 30] = True
    half = np.radians(22.5)
    mid = disc_plane_frame(_roof(flat_top=True), frame, rect, frame, (1.0, 1.0))
    assert mid.axis == pytest.approx([-np.cos(half), -np.sin(half)])
    assert mid.across == pytest.approx([-np.sin(half), np.cos(half)]) and mid.origin == pytest.approx([40.0, 30.0])
    assert disc_plane_frame(_roof(), frame, rect, frame, (1.0, 1.0)).axis == pytest.approx([-1.0, 0.0])
    below = disc_plane_frame(rect, frame, _roof(), frame, (1.0, 1.0))
    assert below.axis == pytest.approx([-np.cos(half), -np.sin(half)])
    r = np.sqrt(0.5)
    assert disc_plane_frame(column, frame, _roof(), frame, (1.0, 1.0)).axis == pytest.approx([-r, -r])
    assert disc_plane_frame(rect, frame, column, frame, (1.0, 1.0)).axis == pytest.approx([-1.0, 0.0])
    assert disc_plane_frame(column, frame, column, frame, (1.0, 1.0)) is frame


def _lordotic_segment(tilt_deg: float, shift_mm: float = 0.0, mm: float = 0.25) -> np.ndarray:
    """Two bodies 35 mm deep and 25 mm tall about a disc 6 mm tall at the back, each turned ``tilt_deg`` / 2 away
    from a level mid-plane (a lordotic segment: the disc opens toward the front), their posterior corners one above
    the other; the upper body moved ``shift_mm`` forward along the mid-plane. Labels 3 (upper), 34 (disc), 4
    (lower), canal 200 behind them; pixels of ``mm``."""
    rows, cols = np.mgrid[0:320, 0:240] * mm
    half = np.radians(tilt_deg / 2)
    top, bottom = np.array([34.0, 45.0 - shift_mm]), np.array([40.0, 45.0])  # posterior-inferior, -superior corners
    along = np.array([-np.sin(half), -np.cos(half)])  # the upper body's lower endplate, posterior to anterior
    up = np.array([-np.cos(half), np.sin(half)])
    q = np.stack([rows - top[0], cols - top[1]], -1)
    upper = (q @ along >= 0) & (q @ along <= 35) & (q @ up >= 0) & (q @ up <= 25)
    along_low, down = np.array([np.sin(half), -np.cos(half)]), np.array([np.cos(half), np.sin(half)])
    q = np.stack([rows - bottom[0], cols - bottom[1]], -1)
    lower = (q @ along_low >= 0) & (q @ along_low <= 35) & (q @ down >= 0) & (q @ down <= 25)
    image = np.zeros(rows.shape, np.int32)
    image[upper], image[lower] = 3, 4
    between = (cols >= 45.0 - 35 * np.cos(half)) & (cols <= 45.0) & (rows > 20) & (rows < 50) & ~upper & ~lower
    above_lower = np.stack([rows - bottom[0], cols - bottom[1]], -1) @ down < 0
    below_upper = np.stack([rows - top[0], cols - top[1]], -1) @ up < 0
    image[between & above_lower & below_upper] = 34
    image[(cols > 52.0) & (cols < 62.0)] = 200  # behind the walls, which lean back to column 50 at 24°
    return image


@pytest.mark.parametrize("tilt_deg", [0.0, 16.0, 24.0])
def test_two_bodies_turned_against_each_other_are_not_displaced(tilt_deg):
    """A lordotic segment with the posterior corners aligned across the disc: no slip, whatever the tilt (within
    0.3 mm, a pixel and its rounding); read along the lower body's endplate alone, the 6 mm disc's back and the upper
    body's tilt made -2.5 and -4.0 mm of it at 16° and 24°. The upper body 5 mm forward: 5 mm of anterolisthesis
    (then read as 2.4 and 0.8). The lower body's depth, a slip's percentage is taken of, is read along its own
    endplates: 35 mm at every tilt (along the mid-plane, half the tilt off them, it read 35 mm over the cosine of that
    half: 2% too long at 24°, each percentage 2% too small)."""
    from lumbar.tasks.measurements import slip_on_slice

    slip, depth = slip_on_slice(_lordotic_segment(tilt_deg), 3, 4, 34, 200, (0.25, 0.25))
    assert slip == pytest.approx(0.0, abs=0.3)
    assert depth == pytest.approx(35.0, abs=0.3)
    moved, _ = slip_on_slice(_lordotic_segment(tilt_deg, shift_mm=5.0), 3, 4, 34, 200, (0.25, 0.25))
    assert moved == pytest.approx(5.0, abs=0.3)


def test_posterior_wall_is_a_line_through_the_band_maxima():
    """Bands of 1 from s = 0 to 4: their most posterior points (0.2, 1.4), (1.1, 9) (a stray), (2.3, 5.6) and
    (3.6, 8.2); the other three lie on t = 2s + 1, which Theil-Sen keeps (pairwise slopes 8.44, 2, 2, -2.83, -0.32,
    2: median 2; intercepts t - 2s: 1, 6.8, 1, 1: median 1), and least squares over the three within 1.5 bands of it
    too: at s = 5, 11. Fewer than three bands: NaN. Points (0, 0), (1, 4), (2, 0), (3, 4): Theil-Sen gives slope 2/3
    and intercept 1 (the median of 0, 3.33, -1.33, 2), 1 and 2.33 from each point; in bands of 1 the two within 1.5
    make the line (0, 0)-(3, 4), 0 at s = 0; in bands of 0.5 none is within 0.75: the Theil-Sen line, 1."""
    from lumbar.tasks.measurements import _posterior_wall_at

    s = np.array([0.2, 0.5, 1.1, 1.5, 2.3, 2.7, 3.6])
    t = np.array([1.4, 0.0, 9.0, 3.0, 5.6, 1.0, 8.2])
    assert _posterior_wall_at(s, t, 0.0, 3.9, 5.0, 1.0) == pytest.approx(11.0)
    assert _posterior_wall_at(s, t, 0.0, 3.9, 0.0, 1.0) == pytest.approx(1.0)
    assert np.isnan(_posterior_wall_at(s, t, 0.0, 1.9, 5.0, 1.0))  # two bands
    zigzag_s, zigzag_t = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 4.0, 0.0, 4.0])
    assert _posterior_wall_at(zigzag_s, zigzag_t, 0.0, 3.9, 0.0, 1.0) == pytest.approx(0.0, abs=1e-9)
    assert _posterior_wall_at(zigzag_s, zigzag_t, 0.0, 3.4, 0.0, 0.5) == pytest.approx(1.0)
    # Five points: Theil-Sen slope -0.25, intercept 5.5, residuals 4.5, 0.75, 0, 0.25 and 1.5: the last, exactly
    # 1.5 bands off, is kept: least squares over (1, 6), (2, 5), (3, 5), (4, 3) gives 7 - 0.9 s (without it: 6.33).
    five_s = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    assert _posterior_wall_at(five_s, np.array([1.0, 6.0, 5.0, 5.0, 3.0]), 0.0, 4.9, 0.0, 1.0) == pytest.approx(7.0)
    # Theil-Sen -s + 8 leaves one point within 1.5 (residuals 5, 2, 2, 5, 0): no line through one point, so 8.
    assert _posterior_wall_at(five_s, np.array([3.0, 9.0, 8.0, 0.0, 4.0]), 0.0, 4.9, 0.0, 1.0) == pytest.approx(8.0)
    assert np.isnan(_posterior_wall_at(s, t, 10.0, 12.0, 5.0, 1.0))


def test_posterior_wall_bands_are_half_open_and_reach_past_hi():
    """Bands [0, 1), [1, 2), [2, 3) from lo 0 and hi 2.9 (the last band reaches past hi). Points (0.5, 1), (1.0, 2),
    (1.5, 1.5), (2.95, 5.9): a point on an edge (s = 1) belongs to the band above it, so the maxima are (0.5, 1),
    (1.0, 2) and (2.95, 5.9), all on t = 2s: 20 at s = 10. Were the edge point in the band below, the maxima would
    be (1.0, 2), (1.5, 1.5) and (2.95, 5.9), and the line another (slope 2.69)."""
    from lumbar.tasks.measurements import _posterior_wall_at

    s, t = np.array([0.5, 1.0, 1.5, 2.95]), np.array([1.0, 2.0, 1.5, 5.9])
    assert _posterior_wall_at(s, t, 0.0, 2.9, 10.0, 1.0) == pytest.approx(20.0)
    assert np.isnan(_posterior_wall_at(s, t, 0.0, 1.9, 10.0, 1.0))  # hi 1.9: bands [0, 1) and [1, 2) only


def test_canal_area_counts_the_slab_around_the_plane():
    """Canal voxels at rows 48-52 in 4 slices of 1.5 mm, 10 columns of 1 mm: a 2 mm slab around row 50 (the plane)
    holds rows 49.x-50.x, s in [-1, 1): rows 50 and 51 at s = 0 and -1, not row 49 (s = 1): 2 rows x 10 x 4 =
    80 voxels of 1.5 mm³ over 2 mm: 60 mm². No canal: NaN. A 4 mm slab takes rows 48-51 (s = 2..-1), not 52."""
    from lumbar.tasks.measurements import Frame, canal_area_mm2

    canal = np.zeros((4, 100, 40), bool)
    canal[:, 48:53, 20:30] = True
    frame = Frame(np.array([50.0, 10.0]), np.array([-1.0, 0.0]))
    assert canal_area_mm2(canal, (1.5, 1.0, 1.0), frame) == pytest.approx(60.0)
    assert canal_area_mm2(canal, (1.5, 1.0, 1.0), frame, slab_mm=4.0) == pytest.approx(4 * 10 * 4 * 1.5 / 4)
    assert np.isnan(canal_area_mm2(np.zeros_like(canal), (1.5, 1.0, 1.0), frame))


def test_the_body_is_cut_at_the_canal_and_the_largest_piece_kept():
    """A vertebra in columns 10-59 with the canal from column 40 on rows 10-19 and from column 44 on rows 30-39:
    rows in between take the wall by linear interpolation (40 + 4 (r - 19) / 11). The body keeps what lies in
    front; a pedicle piece cut off behind it, and a small piece apart from it, are dropped."""
    from lumbar.tasks.measurements import in_front_of_canal, vertebral_body

    vertebra = np.zeros((50, 70), bool)
    vertebra[10:40, 10:60] = True
    canal = np.zeros_like(vertebra)
    canal[10:20, 40:65] = True
    canal[30:40, 44:65] = True
    front = in_front_of_canal(vertebra, canal)
    assert front[10:20].sum(1).tolist() == [30] * 10 and front[30:40].sum(1).tolist() == [34] * 10
    expected_middle = [int(40 + 4 * (r - 19) / 11) - 10 for r in range(20, 30)]
    assert front[20:30].sum(1).tolist() == expected_middle
    assert in_front_of_canal(vertebra.astype(np.uint8), None).dtype == bool
    assert (in_front_of_canal(vertebra, np.zeros_like(vertebra)) == vertebra).all()
    pieces = vertebra.copy()
    pieces[10:40, 30] = False  # split into columns 10-29 (600 px) and 31-59 (870 px)
    assert vertebral_body(pieces).sum() == 870 and vertebral_body(pieces)[10:40, 31:60].all()
    assert (vertebral_body(vertebra) == vertebra).all()


def test_solidity_of_squares_and_an_l():
    """Pixels are unit squares: a rectangle fills its hull (1). Three pixels in an L: their squares' hull is the
    2 x 2 square less a corner triangle, 3.5: 3/3.5. Two pixels: NaN."""
    from lumbar.tasks.measurements import solidity

    rect = np.zeros((10, 10), bool)
    rect[2:5, 3:8] = True
    assert solidity(rect) == pytest.approx(1.0)
    ell = np.zeros((5, 5), bool)
    ell[1, 1] = ell[1, 2] = ell[2, 1] = True
    assert solidity(ell) == pytest.approx(3 / 3.5)
    two = np.zeros((5, 5), bool)
    two[1, 1:3] = True
    assert np.isnan(solidity(two))


def test_outline_problem_limits_are_inclusive():
    """A 30 x 36 body: anterior height exactly 1.25 x the posterior, or middle exactly 1.15 x, is still an outline;
    depth exactly 0.75 or 1/0.75 of the neighbours' median passes; the area 1080 over depth x mean height exactly
    0.85 or 1.2 passes, and just beyond fails. Pixel area scales the body's area."""
    from lumbar.tasks.measurements import outline_problem

    body = np.zeros((80, 80), bool)
    body[20:50, 10:46] = True  # 1080 px
    assert outline_problem(body, (37.5, 30, 30), 36, []) is None  # 1080 / (36 * 32.5) = 0.92: area agrees
    assert "endplates not found" in outline_problem(body, (37.6, 30, 30), 36, [])
    assert outline_problem(body, (30, 34.5, 30), 36, []) is None  # 1080 / (36 * 31.5) = 0.952
    assert "endplates not found" in outline_problem(body, (30, 34.6, 30), 36, [])
    assert outline_problem(body, (30, 30, 30), 36, [48.0]) is None  # 36/48 = 0.75
    assert outline_problem(body, (30, 30, 30), 36, [27.0]) is None  # 36/27 = 1/0.75
    assert "depth unlike" in outline_problem(body, (30, 30, 30), 36, [48.1])
    assert "depth unlike" in outline_problem(body, (30, 30, 30), 36, [20.0, 26.9, 100.0])  # median 26.9
    assert outline_problem(body, (30, 30, 30), 1080 / (30 * 0.85), []) is None  # area ratio 0.85
    assert outline_problem(body, (30, 30, 30), 1080 / (30 * 1.2), []) is None  # area ratio 1.2
    assert "area" in outline_problem(body, (30, 30, 30), 1080 / (30 * 0.84), [])
    assert "area" in outline_problem(body, (30, 30, 30), 1080 / (30 * 1.21), [])
    assert outline_problem(body, (15, 15, 15), 18, [], spacing_mm=(0.5, 0.5)) is None  # 1080 x 0.25 over 18 x 15
    assert "height could not" in outline_problem(body, (30, float("nan"), 30), 36, [])
    assert "height could not" in outline_problem(body, (30, 30, 30), float("nan"), [])


def test_consensus_slip_limits_are_inclusive():
    """Readings 4, 7 and 5 mm spread exactly 3 mm: agreed, median 5 of 36 mm. A reading with no depth does not
    count, so two of three remain, enough for three slices (two thirds). 11 mm of 10 is 110%, the most an
    anterolisthesis may be; 11.1 mm is not a spine. -3.5 mm of 10 is -35%, the most a retrolisthesis may be.
    Of four slices three must agree; of none, nothing can."""
    from lumbar.tasks.measurements import consensus_slip

    assert consensus_slip([(4.0, 36.0), (7.0, 36.0), (5.0, 36.0)], 3) == pytest.approx((5.0, 500 / 36))
    assert consensus_slip([(4.0, 36.0), (4.0, 0.0), (4.0, 36.0)], 3) == pytest.approx((4.0, 400 / 36))
    assert consensus_slip([(11.0, 10.0)], 1) == pytest.approx((11.0, 110.0))
    assert np.isnan(consensus_slip([(11.1, 10.0)], 1)).all()
    assert consensus_slip([(-3.5, 10.0)], 1) == pytest.approx((-3.5, -35.0))
    assert np.isnan(consensus_slip([(-3.6, 10.0)], 1)).all()
    assert np.isnan(consensus_slip([(4.0, 36.0), (4.0, 36.0), (float("nan"), 0.0), (float("nan"), 0.0)], 4)).all()
    assert consensus_slip([(4.0, 36.0), (6.0, 36.0), (5.0, 36.0), (float("nan"), 0.0)], 4)[0] == 5.0
    assert np.isnan(consensus_slip([], 0)).all()


def test_small_helpers():
    """Ratios need a non-zero, defined denominator; neighbours come from the spine's order (T1 has none above, even
    though S1 is last in the list); a vertebra lies between discs only with one above and one below."""
    from lumbar.tasks.measurements import _adjacent, _between_discs, _ratio

    assert _ratio(3.0, 2.0) == 1.5
    assert np.isnan(_ratio(3.0, 0.0)) and np.isnan(_ratio(float("nan"), 2.0)) and np.isnan(_ratio(3.0, float("nan")))
    assert _adjacent("L1", {"T12": 1, "L2": 1, "L3": 1}) == ["T12", "L2"]
    assert _adjacent("T1", {"T2": 1, "S1": 1}) == ["T2"]
    assert _adjacent("S1", {"L5": 1, "T1": 1}) == ["L5"]
    assert _adjacent("L3", {"L1": 1}) == [] and _adjacent("C7", {"T1": 1}) == []
    assert _adjacent("T2", {"T1": 1}) == ["T1"]  # the first of the order is a neighbour too
    both = [_Level("L3/L4", 1, "disc"), _Level("L4/L5", 2, "disc"), _Level("L4", 3, "vertebra")]
    assert _between_discs("L4", both) and not _between_discs("L4", both[:1]) and not _between_discs("L4", both[1:])
    assert not _between_discs("L4", [_Level("L3/L4", 1, "vertebra"), _Level("L4/L5", 2, "vertebra")])


def test_a_body_within_two_mm_of_any_edge_is_cut_by_it():
    """A mask cut by the image reaches within 2 mm of that edge, on any of the four sides: at 1 mm pixels its two
    outermost rows or columns, at 0.625 mm its four (3.2 pixels, rounded up; the T12 of a SPIDER picture whose
    outline stopped 2 pixels short of the edge); at 3 mm its one; and never the pixel beyond the margin."""
    from lumbar.tasks.measurements import cut_by_edge

    inner = np.zeros((20, 30), bool)
    inner[10, 15] = True
    assert not cut_by_edge(inner) and not cut_by_edge(inner, (0.625, 0.625)) and not cut_by_edge(inner, (3.0, 3.0))
    for spacing, outermost in (((1.0, 1.0), 2), ((0.625, 0.625), 4), ((3.0, 3.0), 1), ((1.0, 0.5), 2)):
        for r, c in ((outermost - 1, 15), (20 - outermost, 15), (10, outermost - 1), (10, 30 - outermost)):
            near = inner.copy()
            near[r, c] = True
            # on (1.0, 0.5) mm pixels the columns' margin is 4 pixels: a pixel 2 columns in is inside it too
            assert cut_by_edge(near, spacing), (spacing, r, c)
        for r, c in ((outermost, 15), (19 - outermost, 15)):
            beyond = inner.copy()
            beyond[r, c] = True
            assert not cut_by_edge(beyond, spacing), (spacing, r, c)
    wide = np.zeros((20, 30), bool)
    wide[10, 3] = True  # 3 columns in: beyond 2 mm at 1 mm pixels, within 2 mm at 0.5 mm ones
    assert not cut_by_edge(wide, (1.0, 1.0)) and cut_by_edge(wide, (1.0, 0.5))


def test_body_frame_keeps_its_own_axis_unless_it_strays_from_the_discs():
    """A flat 30 x 36 body's own axis is vertical. Discs tilted 10° from it: within 15°, the body keeps its own;
    tilted 20° (the length of the discs' summed axis does not matter): the discs' axis is used. Discs that state no
    axis (0, 0) give no direction."""
    from lumbar.tasks.measurements import _body_frame, points_mm

    body = np.zeros((80, 80), bool)
    body[20:50, 20:56] = True
    pts = points_mm(body, (1.0, 1.0))

    def tilted(deg):
        return np.array([-np.cos(np.radians(deg)), np.sin(np.radians(deg))])

    assert _body_frame(pts, tilted(10)).axis == pytest.approx([-1.0, 0.0])
    assert _body_frame(pts, 2 * tilted(20)).axis == pytest.approx(tilted(20))
    assert _body_frame(pts, np.zeros(2)).axis == pytest.approx([-1.0, 0.0])
    assert _body_frame(pts, None).axis == pytest.approx([-1.0, 0.0])


def test_slip_on_one_slice_and_when_it_cannot_be_read():
    """On the rectangle spine with L3 6 px forward: 6 mm over L4's 36 mm endplate. No reading where a body is
    missing, touches the image edge, is not solid (an L), or is much shallower than the other (26 of 36 mm)."""
    from lumbar.tasks.measurements import slip_on_slice

    image, _ = _spine(shift_l3=6)
    assert slip_on_slice(image, 3, 4, 34, CANAL, (1.0, 1.0)) == pytest.approx((6.0, 36.0))
    missing = np.where(image == 3, 0, image)
    assert np.isnan(slip_on_slice(missing, 3, 4, 34, CANAL, (1.0, 1.0))).all()
    no_disc = np.where(image == 34, 0, image)
    assert np.isnan(slip_on_slice(no_disc, 3, 4, 34, CANAL, (1.0, 1.0))).all()
    at_edge = image.copy()
    at_edge[0:20, 30:40] = 3
    assert np.isnan(slip_on_slice(at_edge, 3, 4, 34, CANAL, (1.0, 1.0))).all()
    ell = image.copy()
    ell[20:35, 40:60] = 0  # L3 loses a quarter-size corner block: solidity 1 - 300/1080 < 0.85
    assert np.isnan(slip_on_slice(ell, 3, 4, 34, CANAL, (1.0, 1.0))).all()
    holed = image.copy()
    holed[30:39, 40:58] = 0  # a hole of 162 px inside L3: solidity 918/1080, exactly 0.85: still solid enough
    assert slip_on_slice(holed, 3, 4, 34, CANAL, (1.0, 1.0)) == pytest.approx((6.0, 36.0))
    holed[30, 39] = 0  # one pixel more: under 0.85
    assert np.isnan(slip_on_slice(holed, 3, 4, 34, CANAL, (1.0, 1.0))).all()
    shallow = image.copy()
    shallow[60:90, 56:66] = 0  # L4 26 mm deep against L3's 36: 0.72
    assert np.isnan(slip_on_slice(shallow, 3, 4, 34, CANAL, (1.0, 1.0))).all()


def test_lordosis_from_the_l5_s1_disc_and_the_l1_body():
    """L1 is a flat rectangle (upper endplate 0°). The L5/S1 disc is the 45° parallelogram shape, its lower surface
    rising 45° toward posterior: S1's endplate reads 45° from it, so lordosis is 45°, and S1's own upper endplate is
    reported as the same 45° (its body is flat). Without the disc, S1's flat body gives 0°; without either, no
    lordosis. S1 gets no heights."""
    image = np.zeros((200, 150), np.int32)
    image[20:50, 30:66] = 1  # L1
    for c in range(40, 80):
        image[150 - c : 160 - c, c] = 56  # L5/S1: 10 rows, top at row 150 - c
    image[130:160, 30:66] = 26  # S1
    image[60:70, 30:66] = 45  # a flat L4/L5 disc, listed first: not the one S1's endplate is read from
    levels = [
        _Level("L4/L5", 45, "disc", UP),
        _Level("L1", 1, "vertebra"),
        _Level("L5/S1", 56, "disc", UP),
        _Level("S1", 26, "vertebra"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # L5/S1 has no measured body beside it: no index, and no empty-mean warning
        m = measure_spine(image, levels, (1.0, 1.0))
    assert m.lordosis_deg == pytest.approx(45.0)
    assert m.vertebrae["S1"].upper_endplate_deg == pytest.approx(45.0)
    assert m.vertebrae["S1"].height_middle_mm is None and m.vertebrae["S1"].genant_grade is None
    assert m.vertebrae["L1"].height_middle_mm == pytest.approx(30.0)
    assert m.discs["L5/S1"].height_index is None  # S1 has no heights and L5 is not there: nothing to divide by
    without_disc = [levels[1], levels[3]]
    assert measure_spine(np.where(image == 56, 0, image), without_disc, (1.0, 1.0)).lordosis_deg == pytest.approx(
        0.0, abs=1e-9
    )
    assert measure_spine(np.where(image == 26, 0, image), levels[1:2], (1.0, 1.0)).lordosis_deg is None
    # The sacrum left unlabelled (as SPIDER-trained models do): S1's endplate still comes from the disc.
    no_s1 = measure_spine(np.where(image == 26, 0, image), levels[:3], (1.0, 1.0))
    assert no_s1.lordosis_deg == pytest.approx(45.0) and "S1" not in no_s1.vertebrae
    # A disc of two pixels is no disc: S1's body is read (0°). One of three pixels is the disc, though too small
    # to fit an endplate to: no lordosis.
    for pixels, lordosis in ((2, 0.0), (3, None)):
        small = np.where(image == 56, 0, image)
        small[100, 100 : 100 + pixels] = 56
        got = measure_spine(small, levels, (1.0, 1.0)).lordosis_deg
        assert got == (None if lordosis is None else pytest.approx(lordosis, abs=1e-9))


def test_genant_grade_is_a_ratio_in_any_unit_and_needs_every_height():
    """0.8 of 1.0 is a 20% loss (mild) in cm as in mm; an unmeasured height stored as None is no grade."""
    from lumbar.tasks.measurements import genant_grade

    assert genant_grade((0.8, 1.0, 1.0)) == (1, pytest.approx(0.2))
    assert genant_grade((0.5, 0.5, 0.5)) == (0, 0.0)
    grade, reduction = genant_grade((None, 20.0, 20.0))
    assert grade is None and np.isnan(reduction)


def test_canal_area_of_a_uniform_canal_is_its_cross_section_wherever_the_plane_falls():
    """A canal 10 columns deep in 4 slices of 1.5 mm (6 mm wide) running the whole height: 60 mm² in any plane.
    With 1 mm rows a 2 mm slab holds exactly two rows wherever the plane lies (row 50.0, 50.3 or 50.8: the slab
    [s - 1, s + 1) ); with 0.5 mm rows and 1 mm columns, four rows of 0.5 mm of 10 columns of 1 mm: 60 mm² again."""
    from lumbar.tasks.measurements import Frame, canal_area_mm2

    up = np.array([-1.0, 0.0])
    canal = np.zeros((4, 100, 40), bool)
    canal[:, :, 20:30] = True
    for row in (50.0, 50.3, 50.8):
        assert canal_area_mm2(canal, (1.5, 1.0, 1.0), Frame(np.array([row, 10.0]), up)) == pytest.approx(60.0)
    assert canal_area_mm2(canal, (1.5, 0.5, 1.0), Frame(np.array([25.0, 10.0]), up)) == pytest.approx(60.0)


def test_canal_area_of_a_thin_canal_uses_a_2_mm_slab():
    """A canal only two 1 mm rows thick (rows 50-51), 10 columns, 4 slices of 1.5 mm: the default 2 mm slab around
    row 50 holds both rows: 80 voxels of 1.5 mm³ over 2 mm = 60 mm²; a 3 mm slab would hold the same voxels over
    3 mm (40 mm²)."""
    from lumbar.tasks.measurements import Frame, canal_area_mm2

    canal = np.zeros((4, 100, 40), bool)
    canal[:, 50:52, 20:30] = True
    frame = Frame(np.array([50.0, 10.0]), np.array([-1.0, 0.0]))
    assert canal_area_mm2(canal, (1.5, 1.0, 1.0), frame) == pytest.approx(60.0)
    assert canal_area_mm2(canal, (1.5, 1.0, 1.0), frame, slab_mm=3.0) == pytest.approx(40.0)


def _stack(upper_cols: int = 36, lower_cols: int = 36, wedge: bool = False):
    """Upper body, disc and lower body, columns from 30. With ``wedge`` the upper body's lower endplate, the disc
    (both surfaces) and the lower body's upper endplate fall one row per three columns toward posterior, while
    the upper body's upper endplate and the lower body's lower endplate stay flat."""
    upper, disc, lower = (np.zeros((120, 120), bool) for _ in range(3))
    for c in range(30, 30 + max(upper_cols, lower_cols)):
        drop = (c - 30) // 3 if wedge else 0
        if c < 30 + upper_cols:
            upper[20 : 50 + drop, c] = True
        disc[50 + drop : 60 + drop, c] = True
        if c < 30 + lower_cols:
            lower[60 + drop : 100, c] = True
    return upper, disc, lower


def _fits(upper, disc, lower) -> bool:
    from lumbar.tasks.measurements import Frame, _bodies_fit_disc, points_mm

    def frame(mask):
        return Frame(points_mm(mask, (1.0, 1.0)).mean(0), np.array([-1.0, 0.0]))

    return _bodies_fit_disc(disc, frame(disc), upper, frame(upper), lower, frame(lower), (1.0, 1.0))


def test_bodies_fit_their_disc_up_to_a_quarter_difference_in_depth():
    """Bodies 36 and 27 mm deep: 27/36 = 0.75 and 36/27 = 1/0.75, both still within the limit; 26 of 36 is not."""
    assert _fits(*_stack(36, 27)) and _fits(*_stack(27, 36))
    assert not _fits(*_stack(36, 26)) and not _fits(*_stack(26, 36))


def test_bodies_fit_their_disc_by_the_endplates_that_face_it():
    """In the wedge stack the endplates facing the disc are tilted like the disc's surfaces (about -18°) while the
    far endplates are flat: the bodies fit. Compared by their far endplates instead, they would misfit by 18°."""
    assert _fits(*_stack(wedge=True))
    upper, disc, lower = _stack(wedge=True)
    flat_disc = np.zeros_like(disc)
    flat_disc[55:65, 30:66] = True  # a flat disc between the same bodies does not fit them
    assert not _fits(upper, flat_disc, lower)


def test_posterior_elements_joined_across_a_gap_in_the_canal_are_cut_off():
    """The canal mask misses rows 30-34, and there L3's mask runs on behind it (columns 66-99) into posterior
    elements (rows 25-44, columns 85-99). The cut at the canal's wall, carried across the gap, still leaves the
    body, so the 6 mm slip over 36 mm is read; without the cut the joined outline is no body at all."""
    from lumbar.tasks.measurements import slip_on_slice

    image, _ = _spine(shift_l3=6)
    image[30:35, 70:85] = 0  # the canal's gap
    image[30:35, 60:100] = 3  # the pedicle through it
    image[25:45, 85:100] = 3  # the posterior elements
    assert slip_on_slice(image, 3, 4, 34, CANAL, (1.0, 1.0)) == pytest.approx((6.0, 36.0))


def test_consensus_slip_drops_readings_without_a_slip_or_a_depth():
    """A reading with no slip (NaN) or no endplate depth (0) is no reading: 4 mm on two of three slices is agreed
    (4 of 36 mm); 4 mm on one of two, beside a reading with no depth, is not. Any positive depth counts: 0.1 over
    0.8 is 12.5%."""
    from lumbar.tasks.measurements import consensus_slip

    assert consensus_slip([(4.0, 36.0), (4.0, 36.0), (float("nan"), 36.0)], 3) == pytest.approx((4.0, 400 / 36))
    assert np.isnan(consensus_slip([(4.0, 36.0), (4.0, 0.0)], 2)).all()
    assert consensus_slip([(0.1, 0.8)], 1) == pytest.approx((0.1, 12.5))


def test_a_spine_of_rectangles_with_anisotropic_pixels():
    """The rectangle spine at 0.5 mm rows and 0.8 mm columns: bodies 30 x 0.5 = 15 mm tall and 36 x 0.8 = 28.8 mm
    deep, discs 5 mm, height index still 1/3, canal 15 x 0.8 = 12 mm and 10 x 0.8 = 8 mm. L4's area, 1080 pixels
    of 0.4 mm², matches its depth times its height (28.8 x 15 = 432 mm²), so it is graded (0). L3 6 px forward:
    4.8 mm, still 16.7% of the 28.8 mm endplate."""
    image, levels = _spine(shift_l3=6)
    m = measure_spine(image, levels, (0.5, 0.8))
    l4 = m.vertebrae["L4"]
    assert (l4.height_anterior_mm, l4.height_middle_mm, l4.height_posterior_mm) == pytest.approx((15, 15, 15))
    assert l4.depth_mm == pytest.approx(28.8) and l4.genant_grade == 0
    d = m.discs["L3/L4"]
    assert (d.height_anterior_mm, d.height_middle_mm, d.height_posterior_mm) == pytest.approx((5, 5, 5))
    assert d.height_index == pytest.approx(1 / 3)
    assert d.canal_ap_mm == pytest.approx(12.0) and m.discs["L4/L5"].canal_ap_mm == pytest.approx(8.0)
    assert d.slip_mm == pytest.approx(4.8) and d.slip_percent == pytest.approx(100 * 6 / 36)
    assert m.narrowest_canal_level == "L4/L5" and m.narrowest_canal_ap_mm == pytest.approx(8.0)


def test_the_narrowest_canal_is_sought_among_the_lumbar_discs_only():
    """The same rectangles named T12, T12/L1, L1, L1/L2, L2, the canal narrowed to 10 mm at the upper disc
    (T12/L1, thoracolumbar) only: the narrowest lumbar canal is L1/L2's 15 mm, while T12/L1 keeps its 10 mm."""
    image, _ = _spine(narrow_l4_l5=False)
    image[45:66, 80:85] = 0
    levels = [
        _Level("T12", 3, "vertebra"),
        _Level("T12/L1", 34, "disc", UP),
        _Level("L1", 4, "vertebra"),
        _Level("L1/L2", 45, "disc", UP),
        _Level("L2", 5, "vertebra"),
    ]
    m = measure_spine(image, levels, (1.0, 1.0))
    assert m.discs["T12/L1"].canal_ap_mm == pytest.approx(10.0)
    assert m.narrowest_canal_level == "L1/L2" and m.narrowest_canal_ap_mm == pytest.approx(15.0)


def test_structures_too_small_or_cut_by_the_edge():
    """A vertebra or disc of two pixels is not measured at all. L3 drawn from the top row (cut by the image edge)
    has no heights, no endplate angle and no grade, and is left out of L4's neighbours; L4/L5's height index then
    rests on L4 and L5 alone, and L3/L4's on L4 (30 mm): 1/3 both."""
    image, levels = _spine()
    image[0:20, 30:66] = 3  # L3 now runs from row 0
    tiny = image.copy()
    tiny[150:152, 10] = 7
    tiny[152, 10] = 0
    extra = [_Level("L9", 7, "vertebra"), _Level("L9/L10", 8, "disc", UP), *levels]  # listed first: skipped, no more
    m = measure_spine(tiny, extra, (1.0, 1.0))
    assert "L9" not in m.vertebrae and "L9/L10" not in m.discs
    l3 = m.vertebrae["L3"]
    assert l3.height_middle_mm is None and l3.upper_endplate_deg is None and l3.genant_grade is None
    assert m.vertebrae["L4"].genant_grade == 0
    assert m.discs["L3/L4"].height_index == pytest.approx(1 / 3)
    assert m.discs["L4/L5"].height_index == pytest.approx(1 / 3)


def test_slip_walls_are_lines_carried_to_the_disc_mid_plane():
    """Frame at the origin, axis up: s = -row, t = column; the mid-plane lies halfway between the upper body's lowest
    row (49) and the lower body's highest (60), at s = -54.5. Two bodies whose posterior walls lie on one line
    leaning 45° against the mid-plane (row r ends at column 120 - r, rows 20-49 and 60-89) are not displaced: 0 mm,
    where the walls' medians over the facing thirds (columns 80..71 and 60..51) read -20 mm. The upper body four
    columns forward: +4 mm. A rectangle (wall at column 59, rows 20-49) above a body whose wall slants back one
    column per row (row r ends at column r - 10, rows 60-89): the lower wall carried to the mid-plane reaches
    column 44.5, -14.5 mm; a slanted upper body (row r ends at column r + 30) above the rectangle reaches 84.5 there:
    59 - 84.5 = -25.5 mm."""
    from lumbar.tasks.measurements import Frame, slip_mm

    frame = Frame(np.zeros(2), np.array([-1.0, 0.0]))
    leaning_upper, leaning_lower = np.zeros((120, 130), bool), np.zeros((120, 130), bool)
    for r in range(20, 50):
        leaning_upper[r, 90 - r : 121 - r] = True
    for r in range(60, 90):
        leaning_lower[r, 90 - r : 121 - r] = True
    assert slip_mm(leaning_upper, leaning_lower, (1.0, 1.0), frame) == pytest.approx(0.0)
    forward = np.roll(leaning_upper, -4, axis=1)
    assert slip_mm(forward, leaning_lower, (1.0, 1.0), frame) == pytest.approx(4.0)
    rect_upper, rect_lower = np.zeros((120, 100), bool), np.zeros((120, 100), bool)
    rect_upper[20:50, 30:60] = True
    rect_lower[60:90, 30:60] = True
    slanted_upper, slanted_lower = np.zeros((120, 100), bool), np.zeros((120, 100), bool)
    for r in range(20, 50):
        slanted_upper[r, 30 : r + 31] = True
    for r in range(60, 90):
        slanted_lower[r, 30 : r - 9] = True
    assert slip_mm(rect_upper, slanted_lower, (1.0, 1.0), frame) == pytest.approx(-14.5)
    assert slip_mm(slanted_upper, rect_lower, (1.0, 1.0), frame) == pytest.approx(-25.5)


def test_a_body_about_as_tall_as_deep_takes_its_discs_axis():
    """Bodies 34 rows tall and 30 columns deep: their spread differs by less than the 1.3 that gives a shape a
    direction of its own, so the discs' axis (vertical) is used: heights 34 mm, depth 30 mm (the body's own
    least-spread direction would be horizontal and swap the two)."""
    image = np.zeros((200, 120), np.int32)
    image[20:54, 30:60] = 3
    image[54:64, 30:60] = 34
    image[64:98, 30:60] = 4
    image[98:108, 30:60] = 45
    image[108:142, 30:60] = 5
    levels = list(L3_TO_L5)
    m = measure_spine(image, levels, (1.0, 1.0))
    for v in m.vertebrae.values():
        assert v.height_middle_mm == pytest.approx(34.0) and v.depth_mm == pytest.approx(30.0)
    assert m.vertebrae["L4"].genant_grade == 0
    assert m.discs["L3/L4"].height_middle_mm == pytest.approx(10.0)


def _long_spine(l3_cols: int = 36, l4_cols: int = 36, s1_cols: int = 36, l3_cut: bool = False):
    """The rectangle spine from L3 down to S1 (rows 20-189), with the bodies' depths (columns from 30) as given."""
    image = np.zeros((230, 120), np.int32)
    image[0 if l3_cut else 20 : 50, 30 : 30 + l3_cols] = 3
    image[50:60, 30:66] = 34
    image[60:90, 30 : 30 + l4_cols] = 4
    image[90:100, 30:66] = 45
    image[100:130, 30:66] = 5
    image[130:140, 30:66] = 56
    image[140:170, 30 : 30 + s1_cols] = 26
    levels = [*L3_TO_L5, _Level("L5/S1", 56, "disc", UP), _Level("S1", 26, "vertebra")]
    return image, levels


def test_a_body_unlike_its_neighbours_in_depth_is_not_graded():
    """L4 26 mm deep between bodies 36 mm deep: 26/36 = 0.72, under 0.75: no fracture grade; L5, whose only graded
    neighbour is then L4 (S1 never counts), is 36/26 = 1.38 times as deep: not graded either."""
    image, levels = _long_spine(l4_cols=26)
    m = measure_spine(image, levels, (1.0, 1.0))
    assert m.vertebrae["L4"].genant_grade is None and m.vertebrae["L5"].genant_grade is None
    assert m.vertebrae["L4"].height_middle_mm == pytest.approx(30.0)  # measured, just not graded


def test_the_sacrum_and_a_cut_body_are_not_depth_neighbours():
    """A partly outlined S1 (12 mm deep) and a cut, shallow L3 (20 mm deep, from the top row) would make L5 and L4
    look unlike their neighbours; neither counts, so L4 and L5 (36 mm, like each other) are graded 0."""
    image, levels = _long_spine(l3_cols=20, s1_cols=12, l3_cut=True)
    m = measure_spine(image, levels, (1.0, 1.0))
    assert m.vertebrae["L4"].genant_grade == 0 and m.vertebrae["L5"].genant_grade == 0


def test_a_slip_on_the_mid_slice_alone_is_not_reported():
    """The slab: the mid slice with L3 6 px forward and two neighbours without the slip. Readings 6, 0, 0 mm
    disagree by more than 3 mm: no slip. Given the mid slice alone, 6 mm."""
    slipped, levels = _spine(shift_l3=6)
    straight, _ = _spine()
    slab = np.stack([straight, slipped, straight])
    assert measure_spine(slipped, levels, (1.0, 1.0), slab=slab).discs["L3/L4"].slip_mm is None
    assert measure_spine(slipped, levels, (1.0, 1.0)).discs["L3/L4"].slip_mm == pytest.approx(6.0)


def test_a_body_joined_to_its_posterior_elements_is_cut_at_the_canal():
    """L3 runs on through a gap in the canal mask (rows 22-26) into posterior elements (columns 85-99): measured
    after the cut at the canal's wall (column 70, carried across the gap), it is the 30 x 36 mm rectangle again,
    bar the 4-column pedicle stub left in front of the wall, which tilts its axis a little (within 0.5 mm). Uncut,
    the body would reach column 99: some 70 mm deep."""
    image, levels = _spine()
    image[22:27, 66:100] = 3
    image[20:45, 85:100] = 3
    m = measure_spine(image, levels, (1.0, 1.0))
    assert m.vertebrae["L3"].depth_mm == pytest.approx(36.0, abs=0.5)
    assert m.vertebrae["L3"].height_middle_mm == pytest.approx(30.0, abs=0.5)
    assert m.discs["L3/L4"].slip_mm == pytest.approx(0.0, abs=0.5)  # read on the cut body too


def test_a_vertebra_of_three_pixels_is_measured():
    """Three pixels are the least a structure needs to be measured (two are not, see above)."""
    image, levels = _spine()
    image[150, 10:13] = 7
    image[160, 10:13] = 8
    m = measure_spine(image, [*levels, _Level("L9", 7, "vertebra"), _Level("L9/L10", 8, "disc", UP)], (1.0, 1.0))
    assert "L9" in m.vertebrae and "L9/L10" in m.discs


def test_a_biconcave_body():
    """L4 with a notch 6 rows deep in the middle of its upper endplate (columns 44-51): heights 30, 24 and 30 mm at
    columns 35-36, 47-48 and 59-60; biconcave ratio 24/30 = 0.8, wedge ratio 1; a 20% loss: Genant 1 (its area,
    1032 px, agrees with 36 x 28 = 1008 mm² within limits)."""
    image, levels = _spine()
    image[60:66, 44:52] = 0
    l4 = measure_spine(image, levels, (1.0, 1.0)).vertebrae["L4"]
    assert (l4.height_anterior_mm, l4.height_middle_mm, l4.height_posterior_mm) == pytest.approx((30, 24, 30))
    assert l4.biconcave_ratio == pytest.approx(0.8) and l4.wedge_ratio == pytest.approx(1.0)
    assert l4.genant_grade == 1


def test_a_disc_shallower_than_its_bodies_is_measured_within_itself():
    """L3/L4 only 26 columns deep (30-55) between bodies 36 deep: its heights are read at 15% in from its own
    walls (columns 33-34, 42-43, 51-52), all 10 mm. A disc with no body beside it is measured on its own: 10 mm."""
    image, levels = _spine()
    image[50:60, 56:66] = 0
    d = measure_spine(image, levels, (1.0, 1.0)).discs["L3/L4"]
    assert (d.height_anterior_mm, d.height_middle_mm, d.height_posterior_mm) == pytest.approx((10, 10, 10))
    alone = measure_spine(image, [levels[1]], (1.0, 1.0)).discs["L3/L4"]
    assert (alone.height_anterior_mm, alone.height_middle_mm, alone.height_posterior_mm) == pytest.approx((10, 10, 10))
    assert alone.height_index is None and alone.slip_mm is None and alone.angle_deg is None


def test_the_segmental_angle_across_a_disc_between_wedged_bodies():
    """The wedge stack as L3, L3/L4, L4: the endplates facing the disc are parallel (both fall one row per three
    columns) while the far ones are flat; the angle across the disc is read between the facing endplates: 0°."""
    upper, disc, lower = _stack(wedge=True)
    image = np.zeros(upper.shape, np.int32)
    image[upper], image[disc], image[lower] = 3, 34, 4
    levels = [_Level("L3", 3, "vertebra"), _Level("L3/L4", 34, "disc", UP), _Level("L4", 4, "vertebra")]
    assert measure_spine(image, levels, (1.0, 1.0)).discs["L3/L4"].angle_deg == pytest.approx(0.0, abs=1.0)


def test_no_canal_area_without_both_the_volume_and_its_slice_spacing():
    """The canal area needs the canal volume and the lateral slice spacing; with either missing there is none."""
    image, levels = _spine()
    volume = np.repeat((image == CANAL)[None], 3, axis=0)
    assert measure_spine(image, levels, (1.0, 1.0), lateral_mm=2.0).discs["L3/L4"].canal_area_mm2 is None
    assert measure_spine(image, levels, (1.0, 1.0), canal_volume=volume).discs["L3/L4"].canal_area_mm2 is None


def test_no_slip_is_meyerding_0_not_a_retrolisthesis():
    """A slip of 0%, 0.5% or -0.5% is grade 0 (under 5% either way), as is rounding noise (aligned bodies measure
    -1e-14 %); only a slip backwards beyond the floor (a retrolisthesis, -5%) has no grade."""
    from lumbar.tasks.measurements import meyerding_grade

    assert meyerding_grade(0.0) == 0 and meyerding_grade(0.5) == 0 and meyerding_grade(-0.5) == 0
    assert meyerding_grade(-1e-14) == 0 and meyerding_grade(-4.99) == 0 and meyerding_grade(-5.0) is None


def test_outline_problems_are_stated_in_full():
    """The reasons an outline gets no fracture grade, word for word (they reach a reader)."""
    from lumbar.tasks.measurements import outline_problem

    body = np.zeros((80, 80), bool)
    body[20:50, 10:46] = True
    edge = np.zeros((80, 80), bool)
    edge[0:30, 10:46] = True
    joined = body.copy()
    joined[45:70, 46:52] = True
    assert outline_problem(edge, (30, 30, 30), 36, []) == "cut by the image edge"
    assert outline_problem(body, (30, float("nan"), 30), 36, []) == "a height could not be measured"
    assert outline_problem(joined, (30, 30, 30), 36, []) == (
        "outline not convex (a fragment, or posterior elements joined to it)"
    )
    assert outline_problem(body, (39, 30, 30), 36, []) == (
        "anterior or middle height above the posterior one: endplates not found"
    )
    assert outline_problem(body, (30, 30, 30), 36, [20, 22]) == "depth unlike its neighbours'"
    assert outline_problem(body, (18, 24, 30), 36, []) == (
        "heights disagree with the body's area: endplates not found where they were read"
    )


# --- a body's ends to a fraction of a pixel where its intensities are given (CT)


def _body_profile(edge_value: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A body of 200 on rows 10-29 (1 mm pixels) among 80, columns 2-17; with ``edge_value``, row 9 holds that much
    (a pixel the body fills in part) and the mask takes it in, as a threshold at 100 would."""
    image = np.full((40, 20), 80.0)
    image[10:30, 2:18] = 200.0
    mask = image > 100
    if edge_value is not None:
        image[9, 2:18] = edge_value
        mask[9, 2:18] = True
    return image, mask


FROM_ROW_20 = Frame(np.array([20.0, 10.0]), np.array([-1.0, 0.0]))  # s toward the head (smaller rows)


def test_a_sharp_edge_is_found_on_the_pixel_boundary_as_the_mask_gives_it():
    from lumbar.tasks.measurements import edge_mm

    image, _ = _body_profile()
    # the mask's top pixel is row 10 (s = 10), its outer side s = 10.5; the bottom pixel row 29 (s = -9), -9.5
    assert edge_mm(image, (1.0, 1.0), FROM_ROW_20, 0.0, 10.5, 1.0) == pytest.approx(10.5)
    assert edge_mm(image, (1.0, 1.0), FROM_ROW_20, 0.0, -9.5, -1.0) == pytest.approx(-9.5)


def test_a_partly_filled_end_pixel_puts_the_edge_inside_it():
    """Row 9 is 40% body (0.4 x 200 + 0.6 x 80 = 128): the mask reaches its outer side (s = 11.5), the profile
    crosses half-way (140) between the body (200) and beyond (80) at 60 / 72 of the way from row 10 to row 9:
    s = 10 + 0.8333 (the body's true end: s = 10.5 + 0.4 = 10.9)."""
    from lumbar.tasks.measurements import edge_mm

    image, _ = _body_profile(edge_value=128.0)
    assert edge_mm(image, (1.0, 1.0), FROM_ROW_20, 0.0, 11.5, 1.0) == pytest.approx(10 + 60 / 72)


def test_no_edge_where_nothing_darker_lies_beyond_or_the_profile_leaves_the_slice():
    from lumbar.tasks.measurements import edge_mm

    assert edge_mm(np.full((40, 20), 200.0), (1.0, 1.0), FROM_ROW_20, 0.0, 10.5, 1.0) is None
    image, _ = _body_profile()
    assert edge_mm(image, (1.0, 1.0), FROM_ROW_20, 0.0, 18.0, 1.0) is None  # 3 mm beyond s = 18 is row -1


def test_a_profile_that_ends_on_the_first_row_s_centre_is_read():
    """The profile's last sample exactly on row 0's centre lies inside the slice: the body of rows 5 on ends
    half-way between rows 5 and 4 (s = 15.5), read; past it (row -0.5) it would leave the slice."""
    from lumbar.tasks.measurements import edge_mm

    image = np.full((40, 20), 80.0)
    image[5:] = 200.0
    assert edge_mm(image, (1.0, 1.0), FROM_ROW_20, 0.0, 17.0, 1.0) == pytest.approx(15.5)
    assert edge_mm(image, (1.0, 1.0), FROM_ROW_20, 0.0, 17.5, 1.0) is None


def test_a_mask_filling_the_whole_search_window_ends_half_a_pixel_past_where_it_was_looked_for():
    """No fall through one half anywhere in the window: the mask's end is taken as ``near`` plus half the pixel
    projected on the line (here 0.5 mm), never read past the window's last sample."""
    from lumbar.tasks.measurements import mask_edge_mm

    mask = np.ones((50, 50), bool)
    assert mask_edge_mm(mask, (1.0, 1.0), np.array([25.0, 25.0]), np.array([1.0, 0.0]), 0.0) == 0.5
    assert mask_edge_mm(mask, (2.0, 1.0), np.array([50.0, 25.0]), np.array([1.0, 0.0]), 3.0) == 4.0


def test_heights_read_to_the_edges_where_intensities_are_given_and_to_the_pixels_otherwise():
    """The body of rows 9-29 with row 9 40% full (truly 20.4 mm): 21 mm from its pixels; 19.5 + 60/72 mm to its
    edges (the top one inside row 9, at s = 10 + 60/72, the bottom one on the boundary below row 29, s = -9.5)."""
    from lumbar.tasks.measurements import heights_mm

    image, mask = _body_profile(edge_value=128.0)
    frame = Frame(np.array([20.0, 10.0]), np.array([-1.0, 0.0]))
    assert heights_mm(mask, (1.0, 1.0), frame) == pytest.approx((21.0, 21.0, 21.0))
    assert heights_mm(mask, (1.0, 1.0), frame, intensities=image) == pytest.approx((19.5 + 60 / 72,) * 3)


def test_an_end_whose_profile_leaves_the_slice_keeps_the_outlines_pixel():
    """A body from the slice's first rows (1-29, the image's top edge 1.5 mm above it) with row 30 40% full: the top
    end's profile would leave the slice, so it stays on the outline's pixel (s = 19.5); the bottom one is read to its
    edge, 60/72 of the way from row 29 to row 30 (s = -9 - 60/72): 28.5 + 60/72 mm, against 30 from the pixels."""
    from lumbar.tasks.measurements import heights_mm

    image = np.full((40, 20), 80.0)
    image[1:30, 2:18] = 200.0
    image[30, 2:18] = 128.0
    mask = image > 100
    assert heights_mm(mask, (1.0, 1.0), FROM_ROW_20) == pytest.approx((30.0,) * 3)
    assert heights_mm(mask, (1.0, 1.0), FROM_ROW_20, intensities=image) == pytest.approx((28.5 + 60 / 72,) * 3)


def test_vertebral_heights_are_read_to_the_edges_when_the_spine_is_given_its_intensities():
    """The rectangle spine in HU: 200 in the bodies, 80 elsewhere, L3's top row 128 (40% body). L3's top is read
    inside that row, 60/72 of the way from row 21 to row 20 (row 20 + 1/6), not at its outer side (row 19.5): L3
    measures 30 - 2/3 mm; L4 and L5, whose ends are sharp, 30 as from their pixels."""
    image, levels = _spine()
    hu = np.where(np.isin(image, (3, 4, 5)), 200.0, 80.0)
    hu[20, 30:66] = 128.0
    m = measure_spine(image, levels, (1.0, 1.0), intensities=hu)
    for part in ("anterior", "middle", "posterior"):
        assert getattr(m.vertebrae["L3"], f"height_{part}_mm") == pytest.approx(30 - 2 / 3)
        assert getattr(m.vertebrae["L4"], f"height_{part}_mm") == pytest.approx(30.0)
        assert getattr(m.vertebrae["L5"], f"height_{part}_mm") == pytest.approx(30.0)


def test_a_lordosis_is_a_misread_only_above_90_degrees():
    from lumbar.tasks.measurements import lordosis_misread

    assert lordosis_misread(90.0) is None and lordosis_misread(-40.0) is None and lordosis_misread(-90.0) is None
    assert lordosis_misread(-90.4).startswith("lumbar lordosis read as -90.4° (L1 to S1 upper endplates), beyond ±90°")
    assert lordosis_misread(float("nan")) is None  # not measured: nothing misread
    assert lordosis_misread(90.4) == (
        "lumbar lordosis read as 90.4° (L1 to S1 upper endplates), beyond ±90°: taken as an endplate misread and not "
        "reported; check L1 and S1 on the images"
    )


@pytest.mark.parametrize(("tilt_deg", "reported"), [(40.0, True), (50.0, False)])
def test_a_lordosis_above_90_degrees_is_taken_as_a_misread(tilt_deg, reported):
    """S1's endplate reads 45° from the L5/S1 disc (as above); L1, a 36 x 30 mm body turned ``tilt_deg`` with its
    posterior end down, reads -``tilt_deg``. At 40° the lordosis is 85°, under the 90° bound, and reported; at 50°,
    95° is taken as a misread: no lordosis, and the review reason gives the reading."""
    from lumbar.tasks.measurements import MAX_LORDOSIS_DEG

    rows, cols = np.mgrid[0:220, 0:150]
    turn = np.radians(tilt_deg)
    along, up = np.array([np.sin(turn), np.cos(turn)]), np.array([-np.cos(turn), np.sin(turn)])
    q = np.stack([rows - 60.0, cols - 40.0], -1)  # L1's anterior-inferior corner
    image = np.where((q @ along >= 0) & (q @ along <= 36) & (q @ up >= 0) & (q @ up <= 30), 1, 0)
    for c in range(40, 80):
        image[210 - c : 220 - c, c] = 56  # L5/S1, as above but 60 rows lower
    image[190:220, 30:66] = 26  # S1
    levels = [_Level("L1", 1, "vertebra"), _Level("L5/S1", 56, "disc", UP), _Level("S1", 26, "vertebra")]
    m = measure_spine(image, levels, (1.0, 1.0))
    assert MAX_LORDOSIS_DEG == 90.0
    if reported:
        assert m.lordosis_deg == pytest.approx(85.0, abs=1.0) and m.review == ()
    else:
        assert m.lordosis_deg is None
        assert m.review == (
            "lumbar lordosis read as 95.3° (L1 to S1 upper endplates), beyond ±90°: taken as an endplate misread and "
            "not reported; check L1 and S1 on the images",
        )


def test_a_rounded_corner_next_to_the_disc_does_not_tilt_the_wall():
    """Rectangles in rows 20-49 and 60-89, walls at column 59 (frame at the origin, axis up). The upper body's
    posterior-inferior corner rounded (its last three rows end at columns 58, 57, 56), or the lower body's
    posterior-superior one (its first three rows at 56, 57, 58): those rows lie within the fifth of the half next to
    the disc that is left out (2.9 of 14.5 mm), so the walls stay at column 59 and the slip is 0. Read with them, the
    one within 1.5 pixels of the wall tilts the line."""
    from lumbar.tasks.measurements import Frame, slip_mm

    frame = Frame(np.zeros(2), np.array([-1.0, 0.0]))
    upper, lower = np.zeros((120, 100), bool), np.zeros((120, 100), bool)
    upper[20:50, 30:60] = True
    lower[60:90, 30:60] = True
    rounded_upper, rounded_lower = upper.copy(), lower.copy()
    for row, last in ((47, 58), (48, 57), (49, 56)):
        rounded_upper[row, last + 1 :] = False
    for row, last in ((60, 56), (61, 57), (62, 58)):
        rounded_lower[row, last + 1 :] = False
    assert slip_mm(rounded_upper, lower, (1.0, 1.0), frame) == pytest.approx(0.0, abs=1e-9)
    assert slip_mm(upper, rounded_lower, (1.0, 1.0), frame) == pytest.approx(0.0, abs=1e-9)


def test_theil_sen_is_scipys_joint_theil_sen_line():
    """The posterior wall's robust line, computed in numpy so that an analysis need not import scipy.stats (0.8 s):
    the same slope and intercept as scipy.stats.theilslopes(method="joint"), ties in x included; one stray point
    does not move it."""
    from scipy.stats import theilslopes

    from lumbar.tasks.measurements import theil_sen

    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(3, 30))
        x = np.round(rng.uniform(0, 20, n))  # whole millimetres: many ties, as bands of pixels give
        y = rng.normal(0, 3, n) + rng.uniform(-1, 1) * x
        if np.ptp(x) > 0:
            assert theil_sen(x, y) == tuple(theilslopes(y, x, method="joint")[:2])
    x = np.arange(10.0)
    y = 2 * x + 1
    y[3] = 40  # a stray
    assert theil_sen(x, y) == (2.0, 1.0)
    assert np.isnan(theil_sen(np.ones(4), np.arange(4.0))).all()  # no two points apart: no line


def test_a_discs_heights_are_read_along_its_neighbours_axis_not_its_own_shape():
    """Upright bodies L3 (rows 20-49) and L4 (rows 80-109) around a disc drawn 10 mm thick but tilted 35 degrees:
    its heights run along the bodies' axis (the spine's), through its middle 10 / cos 35 = 12.2 mm (one line's
    pixel steps move it by up to a pixel); along the disc's own least-spread direction they read its 10 mm."""
    image = np.zeros((130, 100), np.int32)
    tilt = np.radians(35.0)
    rows, cols = np.mgrid[:130, :100]
    axis = np.array([-np.cos(tilt), np.sin(tilt)])  # the disc's own thin direction
    d = np.stack([rows - 64.5, cols - 47.5], -1)
    image[(np.abs(d @ axis) <= 5.0) & (np.abs(d @ np.array([axis[1], -axis[0]])) <= 18.0)] = 34
    image[20:50, 30:66] = 3
    image[80:110, 30:66] = 4
    levels = [_Level("L3", 3, "vertebra"), _Level("L3/L4", 34, "disc", UP), _Level("L4", 4, "vertebra")]
    m = measure_spine(image, levels, (1.0, 1.0))
    assert m.discs["L3/L4"].height_middle_mm == pytest.approx(10 / np.cos(tilt), abs=0.8)
