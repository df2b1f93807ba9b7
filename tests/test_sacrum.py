"""The sacrum on CT, found by its joints with the ilia, anchors the level names: known answers on hand-built bone
and on the CT phantom with a pelvis, whose truth is drawn, never computed by the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from lumbar.labels import CANAL_LABEL, VERTEBRA_IDS, classes_of, disc_label
from lumbar.phantom import make_phantom
from lumbar.pipelines import ct
from lumbar.tasks.ct_bone import midline_index
from lumbar.tasks.levels import NO_SACRUM_IN_VIEW, Level, LevelLabelling, label_levels, renamed_up
from lumbar.tasks.sacrum import (
    ANCHORED,
    HEAD_DOWN,
    NO_ANCHOR,
    SACRUM_REACH_MM,
    Anchor,
    _closed,
    anchored,
    disc_spacing_mm,
    head_down_first,
    joined_above,
    pelvis_above,
    reach_mm,
    reach_profile,
    sacrum_below,
    vertebrae_between,
    wide_enough,
)


def below(hu, spacing, mid, disc, between):
    """The pipeline's search for the sacrum below ``disc``: one reach profile, read below the disc's centre."""
    return sacrum_below(reach_profile(hu, spacing, mid, disc, between), between)


def above(hu, spacing, mid, disc, between):
    """The same profile, read for the vertebra above the disc."""
    return joined_above(reach_profile(hu, spacing, mid, disc, between), between)


# --- hand-built bone: a column (±20 mm) with a plate reaching ±80 mm, 1 mm voxels

SPACING = (1.0, 1.0, 1.0)
DISC_ROW = 60  # the disc's centre, mm from the top; its axis points to the head (row 0)
DISC = Level("L5/S1", disc_label("L5"), "disc", (float(DISC_ROW), 50.0), 100, (-1.0, 0.0))


def column_with_plate(
    top: int, *, gap_mm: int = 0, sides: tuple[int, ...] = (-1, 1), lateral: int = 181, tall: int = 20
) -> np.ndarray:
    """400 HU bone: a column 40 mm wide through every row, and from row ``top`` down ``tall`` mm a plate out to
    80 mm from the midline on ``sides``, separated from the column by ``gap_mm``; soft tissue (40 HU) elsewhere."""
    hu = np.full((lateral, 200, 100), 40.0, np.float32)
    mid = lateral // 2
    hu[mid - 20 : mid + 21, :, 30:70] = 400.0
    for side in sides:
        near, far = 21 + gap_mm, 81
        span = slice(mid + near, mid + far) if side > 0 else slice(mid - far + 1, mid - near + 1)
        hu[span, top : top + tall, 40:60] = 400.0
    return hu


@pytest.mark.parametrize("top", [63, 70, 101, 130])
def test_the_sacrum_begins_where_bone_first_reaches_both_ilia(top):
    anchor = below(column_with_plate(top), SPACING, 90, DISC, 38.0)
    truth = top - DISC_ROW  # mm below the disc's centre, along its axis
    assert anchor is not None and anchor.depth_mm <= truth < anchor.depth_mm + 3.0


def tilted_column(
    spacing: tuple[float, float, float], tilt_deg: float, depth_mm: float, tall_mm: float = 20.0
) -> tuple[np.ndarray, Level]:
    """The same bone built in millimetres on any voxel grid, with the column (and the disc at (100, 100) mm) tilted
    ``tilt_deg`` from head-up: a column 40 mm wide and 40 mm deep, and from ``depth_mm`` below the disc's centre,
    ``tall_mm`` along the column, a plate out to 80 mm either side, 20 mm deep. 181 mm across, 200 x 200 mm."""
    lateral, rows, cols = (round(extent / size) for extent, size in zip((181.0, 200.0, 200.0), spacing))
    w = (np.arange(lateral) - lateral // 2)[:, None, None] * spacing[0]
    r = np.arange(rows)[None, :, None] * spacing[1] - 100.0
    c = np.arange(cols)[None, None, :] * spacing[2] - 100.0
    angle = np.radians(tilt_deg)
    axis = np.array([-np.cos(angle), np.sin(angle)])  # toward the head, (row, col)
    along, across = r * axis[0] + c * axis[1], r * axis[1] - c * axis[0]
    column = (np.abs(w) <= 20) & (np.abs(across) <= 20)
    plate = (np.abs(w) <= 80) & (np.abs(across) <= 10) & (-along >= depth_mm) & (-along < depth_mm + tall_mm)
    hu = np.where(column | plate, 400.0, 40.0).astype(np.float32)
    return hu, Level("L5/S1", disc_label("L5"), "disc", (100.0, 100.0), 100, (float(axis[0]), float(axis[1])))


@pytest.mark.parametrize(
    ("spacing", "tilt_deg"),
    [((1.0, 2.5, 0.8), 0.0), ((2.0, 0.8, 2.5), 25.0), ((1.5, 1.0, 1.0), -30.0)],
)
def test_the_sacrum_is_found_along_a_tilted_disc_axis_on_any_voxel_grid(spacing, tilt_deg):
    """Slabs are 1.5 of the largest in-plane voxel side (3 mm at least) thick, walked along the disc's axis."""
    hu, disc = tilted_column(spacing, tilt_deg, 40.0)
    mid = hu.shape[0] // 2
    step = max(3.0, 1.5 * max(spacing[1:]))
    anchor = below(hu, spacing, mid, disc, 38.0)
    assert anchor is not None and anchor.depth_mm <= 40.0 < anchor.depth_mm + step
    assert anchor.depth_mm / step == pytest.approx(round(anchor.depth_mm / step))
    assert not above(hu, spacing, mid, disc, 38.0)


def test_on_coarse_voxels_two_slabs_make_a_run():
    """5 mm pixels: 7.5 mm slabs, so the 12 mm run takes two of them, and a plate 15 mm long fills two."""
    hu, disc = tilted_column((3.0, 5.0, 5.0), 0.0, 30.0, tall_mm=15.0)
    anchor = below(hu, (3.0, 5.0, 5.0), hu.shape[0] // 2, disc, 38.0)
    assert anchor is not None and anchor.depth_mm == 30.0


@pytest.mark.parametrize(("size", "gap_px", "axis"), [(1.0, 4, 0), (0.5, 8, 1), (1.0, 4, 1), (3.0, 2, 0)])
def test_a_cleft_up_to_4_mm_is_closed_and_no_wider(size, gap_px, axis):
    """Closing bridges a gap of up to 4 mm (two pixels where pixels are coarser than 2 mm), in either direction."""
    for gap, joined in ((gap_px, True), (gap_px + 1, False)):
        plane = np.zeros((40, 40), bool)
        index = [slice(10, 30), slice(10, 30)]
        index[axis] = slice(0, 10)
        plane[tuple(index)] = True
        index[axis] = slice(10 + gap, 40)
        plane[tuple(index)] = True
        closed = _closed(plane, size, size)
        between = [slice(15, 25), slice(15, 25)]  # the gap's middle: closing rounds its corners
        between[axis] = slice(10, 10 + gap)
        assert bool(closed[tuple(between)].all()) is joined, (size, gap)


def test_reach_is_measured_from_the_column_core_on_the_side_it_reaches_less():
    spacing = (1.0, 1.0, 1.0)
    front_back = np.arange(-30, 31, dtype=float)  # mm from the disc's centre
    plane = np.zeros((121, 61), bool)  # lateral slices 0-120, the midline at 60
    assert reach_mm(plane, front_back, spacing, 60) == 0.0  # no bone
    plane[60:121, 30] = True  # bone from the midline out to 60 mm on one side only
    assert reach_mm(plane, front_back, spacing, 60) == 0.0
    plane[15:60, 30] = True  # and out to 45 mm on the other
    assert reach_mm(plane, front_back, spacing, 60) == 45.0
    for col, reach in ((55, 45.0), (56, 0.0)):  # a bar 25 mm behind the disc's centre is in the core; 26 mm is not
        bar = np.zeros((121, 61), bool)
        bar[15:106, col] = True
        assert reach_mm(bar, front_back, spacing, 60) == reach


def test_a_sacrum_right_below_the_disc_begins_at_depth_0_and_bone_of_exactly_150_hu_counts():
    assert below(column_with_plate(DISC_ROW), SPACING, 90, DISC, 38.0).depth_mm == 0.0
    hu = column_with_plate(70)
    hu[hu == 400.0] = 150.0
    assert below(hu, SPACING, 90, DISC, 38.0) is not None
    hu[hu == 150.0] = 149.0
    assert below(hu, SPACING, 90, DISC, 38.0) is None


@pytest.mark.parametrize(("col", "found"), [(25, True), (24, False)])
def test_bone_up_to_25_mm_in_front_of_the_disc_centre_is_projected(col, found):
    """A plate one column thick, 25 mm (column 25) or 26 mm in front of the disc's centre (column 50), joined to
    the column by a bar: projected at 25 mm, not beyond."""
    hu = column_with_plate(200)  # no plate
    mid = 90
    hu[mid - 80 : mid + 81, 70:90, col] = 400.0
    hu[mid - 20 : mid + 21, 70:90, col:30] = 400.0
    assert (below(hu, SPACING, mid, DISC, 38.0) is not None) is found


def test_a_sacroiliac_cleft_is_bridged_and_a_wider_gap_is_not():
    assert below(column_with_plate(70, gap_mm=3), SPACING, 90, DISC, 38.0) is not None
    assert below(column_with_plate(70, gap_mm=8), SPACING, 90, DISC, 38.0) is None


def test_bone_reaching_one_side_only_is_not_the_sacrum():
    assert below(column_with_plate(70, sides=(1,)), SPACING, 90, DISC, 38.0) is None


def test_a_plate_just_short_of_the_reach_is_not_the_sacrum():
    hu = column_with_plate(70)
    mid = 90
    hu[mid + int(SACRUM_REACH_MM) :] = 40.0  # the right side now reaches 69 mm
    assert below(hu, SPACING, mid, DISC, 38.0) is None
    hu = column_with_plate(70)
    hu[mid + int(SACRUM_REACH_MM) + 1 :] = 40.0  # 70 mm: enough
    assert below(hu, SPACING, mid, DISC, 38.0) is not None


def test_the_search_ends_two_and_a_half_disc_spacings_below_the_disc():
    # 95 mm here, in 3 mm slabs, four of which (12 mm) must reach both ilia
    assert below(column_with_plate(60 + 81), SPACING, 90, DISC, 38.0) is not None
    assert below(column_with_plate(60 + 87), SPACING, 90, DISC, 38.0) is None


@pytest.mark.parametrize("tall, found", [(8, False), (12, True)])
def test_bone_reaching_both_ilia_over_less_than_12_mm_is_not_the_sacrum(tall, found):
    """The alae meet the ilia over 40-60 mm; a thinner wide piece (a rib, a transverse process on a vessel) is not
    them. 12 mm from row 69 fills the slabs from 9 to 21 mm: four of them."""
    anchor = below(column_with_plate(69, tall=tall), SPACING, 90, DISC, 38.0)
    assert (anchor is not None) is found


@pytest.mark.parametrize(("top", "joined"), [(60 - 22, True), (60 - 40, False), (70, False), (55, False)])
def test_bone_above_the_lowest_disc_joined_to_the_pelvis_is_seen(top, joined):
    """Bone reaching both ilia within 0.6 disc spacings (22.8 mm) above the disc's centre: the vertebra above it
    is joined to the pelvis (ribs, a transitional L5, a sacral disc taken for L5/S1). Within 0.15 spacings (5.7 mm)
    of the centre it is the disc's own level, not the vertebra above (the plate at 55-64: 5 mm above to 4 below)."""
    hu = column_with_plate(top, tall=10)
    assert above(hu, SPACING, 90, DISC, 38.0) is joined
    if joined:  # reaching exactly 70 mm on one side is enough; 69 mm is not
        hu[90 + int(SACRUM_REACH_MM) + 1 :] = 40.0
        assert above(hu, SPACING, 90, DISC, 38.0)
        hu[90 + int(SACRUM_REACH_MM) :] = 40.0
        assert not above(hu, SPACING, 90, DISC, 38.0)


def test_the_profile_is_read_below_the_disc_for_the_sacrum_and_above_it_for_the_vertebra_there():
    """Profiles written out: (depth of each slab, reach). Two 7.5 mm slabs make a 12 mm run; nothing is read from
    an empty profile (a field too narrow); above, only slabs ending 0.15 spacings (6 mm of 40) above the centre."""
    assert sacrum_below([(-7.5, 0.0), (0.0, 80.0), (7.5, 80.0)], 38.0) == Anchor(0.0, 0)
    assert sacrum_below([(0.0, 80.0)], 38.0) is None and sacrum_below([], 38.0) is None
    assert not joined_above([], 40.0)
    assert joined_above([(-9.0, 80.0), (-6.0, 0.0), (-3.0, 0.0), (0.0, 0.0)], 40.0)  # [-9, -6) ends 6 mm above
    assert not joined_above([(-9.0, 0.0), (-6.0, 80.0), (-3.0, 0.0), (0.0, 0.0)], 40.0)  # [-6, -3) is the disc's


def test_a_pelvis_above_the_highest_disc_is_found_looking_up_its_axis():
    """The check for a head-to-feet axis flipped: the sacrum rule, run up the highest disc's axis, finds the plate
    joined to the column 10-30 mm above the disc, and nothing where the plate lies as far below it."""
    levels = LevelLabelling(np.zeros((1, 1, 1), np.int16), [DISC])
    assert pelvis_above(levels, column_with_plate(DISC_ROW - 30), SPACING, 90, 38.0)
    assert not pelvis_above(levels, column_with_plate(DISC_ROW + 10), SPACING, 90, 38.0)


def test_head_down_is_moved_first_and_the_other_reasons_keep_their_order():
    assert head_down_first(["metal", "gap", HEAD_DOWN, "no anchor"]) == [HEAD_DOWN, "metal", "gap", "no anchor"]
    assert head_down_first(["metal", "gap"]) == ["metal", "gap"] and head_down_first([]) == []


@pytest.mark.parametrize(
    ("pelvis_above_it", "flags"),
    [(True, [HEAD_DOWN, "a gap", NO_ANCHOR]), (False, ["a gap", NO_ANCHOR])],
    ids=["a pelvis above", "none"],
)
def test_without_a_sacrum_below_the_names_are_counted_from_the_lowest_disc_and_a_pelvis_above_says_head_down(
    monkeypatch, pelvis_above_it, flags
):
    """No sacrum below the lowest disc: NO_ANCHOR, the levels' own "no sacrum in view" dropped (NO_ANCHOR says it);
    a pelvis found above the highest disc as well: HEAD_DOWN first."""
    from lumbar.tasks import sacrum

    monkeypatch.setattr(sacrum, "reach_profile", lambda *args: [])
    monkeypatch.setattr(sacrum, "sacrum_below", lambda *args: None)
    monkeypatch.setattr(sacrum, "pelvis_above", lambda *args: pelvis_above_it)
    levels = LevelLabelling(
        np.zeros((3, 4, 4), np.int16),
        [Level("L5/S1", 124, "disc", (10.0, 0.0), 0), Level("L4/L5", 123, "disc", (40.0, 0.0), 0)],
        flags=[f"{NO_SACRUM_IN_VIEW}: the image ends just below the lowest disc", "a gap"],
    )
    assert sacrum.counted_from_sacrum(levels, np.zeros((3, 4, 4)), (1.0, 1.0, 1.0), 1).flags == flags


def test_bone_in_front_of_the_column_is_not_projected():
    """A plate 30 mm in front of the disc's centre (bowel contrast, a calcified vessel) joins nothing."""
    hu = column_with_plate(200)  # no plate
    mid = 90
    hu[mid - 80 : mid + 81, 70:90, 5:19] = 400.0  # 31-45 mm in front of the centre (col 50)
    hu[mid - 20 : mid + 21, 70:90, 19:30] = 400.0  # joined to the column
    assert below(hu, SPACING, mid, DISC, 38.0) is None


def test_a_field_of_view_too_narrow_to_show_the_pelvis_anchors_nothing():
    assert wide_enough(141, 70, 1.0) and not wide_enough(139, 69, 1.0)
    assert wide_enough(141, 70, 1.0) and not wide_enough(141, 69, 1.0)  # the midline off centre
    assert not wide_enough(141, 71, 1.0) and wide_enough(71, 35, 2.0)  # the other side short; coarse slices
    narrow = column_with_plate(70, lateral=139)  # the plate is cut at 69 mm
    assert below(narrow, SPACING, 69, DISC, 38.0) is None


@pytest.mark.parametrize(
    ("depth", "spacing", "between"),
    [(3.0, 38.0, 0), (24.0, 40.0, 0), (26.0, 40.0, 1), (45.0, 37.5, 1), (65.0, 40.0, 1), (66.0, 40.0, 2), (-5, 38, 0)],
)
def test_vertebrae_between_the_lowest_disc_and_the_sacrum(depth, spacing, between):
    # the sacrum begins 0.15 spacings below L5/S1's centre; each vertebra between adds one spacing: the boundary
    # between 0 and 1 lies at 0.65 spacings (26 mm of 40, which counts one), between 1 and 2 at 1.65 (66 mm)
    assert vertebrae_between(depth, spacing) == between


def test_disc_spacing_is_the_median_distance_between_the_lowest_discs():
    rows = [400, 360, 320, 285, 260, 235, 210]  # lumbar gaps 40, 40, 35; thoracic ones 25
    discs = [Level("a", 101, "disc", (float(row), 50.0), 1, (-1.0, 0.0)) for row in rows]
    assert disc_spacing_mm(discs) == 40.0
    discs[1] = Level("a", 101, "disc", (370.0, 10.0), 1, (-1.0, 0.0))  # 50 mm from the first, 64 from the next
    assert disc_spacing_mm(discs[:3]) == pytest.approx(np.median([50.0, np.hypot(50.0, 40.0)]))
    assert disc_spacing_mm(discs[:2]) == 50.0
    assert disc_spacing_mm(discs[:1]) == 38.0


# --- renaming up the spine


def test_renamed_up_moves_every_name_and_label():
    v, d = VERTEBRA_IDS, disc_label
    instances = np.array([[v["S1"], d("L5"), v["L5"], d("L4"), v["L4"], CANAL_LABEL, 0]], np.int16)
    levels = [
        Level("S1", v["S1"], "vertebra", (1.0, 1.0), 1),
        Level("L5/S1", d("L5"), "disc", (2.0, 2.0), 1, (-1.0, 0.0)),
        Level("L5", v["L5"], "vertebra", (3.0, 3.0), 1),
        Level("L4/L5", d("L4"), "disc", (4.0, 4.0), 1, (-1.0, 0.0)),
        Level("L4", v["L4"], "vertebra", (5.0, 5.0), 1),
    ]
    moved = renamed_up(LevelLabelling(instances, levels, ["a flag"]), 1)
    assert [lv.name for lv in moved.levels] == ["L5", "L4/L5", "L4", "L3/L4", "L3"]
    assert [lv.label for lv in moved.levels] == [v["L5"], d("L4"), v["L4"], d("L3"), v["L3"]]
    assert moved.instances.tolist() == [[v["L5"], d("L4"), v["L4"], d("L3"), v["L3"], CANAL_LABEL, 0]]
    assert [lv.centroid_mm for lv in moved.levels] == [lv.centroid_mm for lv in levels]
    assert [lv.axis for lv in moved.levels] == [lv.axis for lv in levels]
    assert [lv.voxels for lv in moved.levels] == [lv.voxels for lv in levels]
    assert moved.flags == ["a flag"]
    assert renamed_up(LevelLabelling(instances, levels), 0).instances is instances


def test_renamed_up_drops_names_past_the_top():
    t1_t2 = disc_label("T1")
    levels = [Level("T2", VERTEBRA_IDS["T2"], "vertebra", (0.0, 0.0), 1), Level("T1/T2", t1_t2, "disc", (0, 0), 1)]
    instances = np.array([[VERTEBRA_IDS["T2"], t1_t2, VERTEBRA_IDS["T1"]]], np.int16)
    levels.append(Level("T1", VERTEBRA_IDS["T1"], "vertebra", (0.0, 0.0), 1))
    moved = renamed_up(LevelLabelling(instances, levels), 1)
    assert [lv.name for lv in moved.levels] == ["T1"]
    assert moved.instances.tolist() == [[VERTEBRA_IDS["T1"], 0, 0]]


# --- the CT phantom with a pelvis (alae, 2 mm sacroiliac clefts, iliac crests beside L5 not joined to it)


@pytest.fixture(scope="module")
def pelvis_phantom():
    return make_phantom(contrast="CT", shape=(81, 320, 256), spacing_mm=(3.0, 1.0, 1.0), pelvis=True)


def _labelled_without(phantom, discs_erased: tuple[str, ...]) -> LevelLabelling:
    """The phantom's truth labelled as the level labelling would, with the discs below ``discs_erased`` drawn as
    bone (missed by the network, as on the TotalSegmentator example's L5/S1)."""
    truth = phantom.image.with_array(phantom.instances).sagittal_slices().copy()
    for upper in discs_erased:
        truth[truth == disc_label(upper)] = VERTEBRA_IDS[upper]
    return label_levels(classes_of(truth), phantom.image.display_spacing_mm())


@pytest.mark.parametrize(("erased", "lowest"), [((), "L5/S1"), (("L5",), "L4/L5"), (("L5", "L4"), "L3/L4")])
def test_the_phantom_sacrum_counts_the_discs_missed_above_it(pelvis_phantom, erased, lowest):
    hu = pelvis_phantom.image.sagittal_slices()
    spacing = pelvis_phantom.image.display_spacing_mm()
    named = _labelled_without(pelvis_phantom, erased)
    mid, between = midline_index(hu), disc_spacing_mm(named.discs)
    anchor = below(hu, spacing, mid, named.discs[0], between)
    assert anchor is not None and anchor.vertebrae_between == len(erased)
    assert not above(hu, spacing, mid, named.discs[0], between)  # L5's transverse processes stop short
    out = anchored(named, anchor, spacing)
    assert out.discs[0].name == lowest
    truth = pelvis_phantom.image.with_array(pelvis_phantom.instances).sagittal_slices()
    for level in ("S1", "L3", "L2", "L1", *(("L4",) if len(erased) < 2 else ())):
        covering = out.instances[truth == VERTEBRA_IDS[level]]
        assert np.bincount(covering[covering > 0]).argmax() == VERTEBRA_IDS[level], level
    if len(erased) == 2:  # L4 and L5 with no disc between them: not named, not measured as one vertebra
        for level in ("L4", "L5"):
            covering = out.instances[truth == VERTEBRA_IDS[level]]
            assert np.isin(covering, [0, VERTEBRA_IDS["S1"]]).mean() > 0.9, level
        assert "L4" not in [lv.name for lv in out.vertebrae] and "L5" not in [lv.name for lv in out.vertebrae]
    if erased:
        assert out.flags[-1] == (
            f"the lowest disc found is {lowest}: {len(erased)} disc{'s' if len(erased) > 1 else ''} between it and "
            "the sacrum not found (names counted from the sacrum)"
        )
    else:
        assert out is named


def test_names_move_up_and_say_so_when_no_bone_was_named_below_the_lowest_disc():
    """The labelling starts with a disc (no bone below it named): every name still moves up, and the review reason
    that a disc was missed is still given (it was lost once)."""
    instances = np.array([[disc_label("L5"), VERTEBRA_IDS["L5"]]], np.int16)[None]
    levels = [
        Level("L5/S1", disc_label("L5"), "disc", (2.0, 2.0), 1, (-1.0, 0.0)),
        Level("L5", VERTEBRA_IDS["L5"], "vertebra", (1.0, 1.0), 1),
    ]
    out = anchored(LevelLabelling(instances, levels, []), Anchor(40.0, 1), SPACING)
    assert [lv.name for lv in out.levels] == ["L4/L5", "L4"]
    assert out.instances.tolist() == [[[disc_label("L4"), VERTEBRA_IDS["L4"]]]]
    assert out.flags == [
        "the lowest disc found is L4/L5: 1 disc between it and the sacrum not found (names counted from the sacrum)"
    ]


def _below_one_disc() -> LevelLabelling:
    """One slice, 0.5 mm rows and 2 mm columns: what the network named S1 (rows 100-159, columns 10-29), the disc
    above it it named L5/S1 (rows 90-99, centre 47.25 mm down), L5 above that."""
    instances = np.zeros((1, 170, 40), np.int16)
    instances[0, 100:160, 10:30] = VERTEBRA_IDS["S1"]
    instances[0, 90:100, 10:30] = disc_label("L5")
    instances[0, 40:90, 10:30] = VERTEBRA_IDS["L5"]
    levels = [
        Level("S1", VERTEBRA_IDS["S1"], "vertebra", (64.75, 39.0), 1200),
        Level("L5/S1", disc_label("L5"), "disc", (47.25, 39.0), 200, (-1.0, 0.0)),
        Level("L5", VERTEBRA_IDS["L5"], "vertebra", (32.25, 39.0), 1000),
    ]
    return LevelLabelling(instances, levels, ["a flag"])


def test_one_missed_disc_cuts_the_bone_below_where_the_sacrum_begins():
    """The sacrum begins 15.25 mm below the disc's centre (row 125 is 62.5 mm down: exactly that far, so S1)."""
    out = anchored(_below_one_disc(), Anchor(15.25, 1), (4.0, 0.5, 2.0))
    assert [lv.name for lv in out.levels] == ["S1", "L5", "L4/L5", "L4"]
    s1, l5 = out.levels[:2]
    assert s1 == Level("S1", VERTEBRA_IDS["S1"], "vertebra", ((125 + 159) / 2 * 0.5, 19.5 * 2.0), 35 * 20)
    assert l5 == Level("L5", VERTEBRA_IDS["L5"], "vertebra", ((100 + 124) / 2 * 0.5, 19.5 * 2.0), 25 * 20)
    assert (out.instances[0, 125:160, 10:30] == VERTEBRA_IDS["S1"]).all()
    assert (out.instances[0, 100:125, 10:30] == VERTEBRA_IDS["L5"]).all()
    assert (out.instances[0, 40:90, 10:30] == VERTEBRA_IDS["L4"]).all()
    assert out.flags[0] == "a flag" and out.flags[1].startswith("the lowest disc found is L4/L5: 1 disc between")


def test_two_missed_discs_leave_the_bone_between_unnamed():
    out = anchored(_below_one_disc(), Anchor(15.25, 2), (4.0, 0.5, 2.0))
    assert [lv.name for lv in out.levels] == ["S1", "L3/L4", "L3"]
    assert (out.instances[0, 100:125, 10:30] == 0).all()
    assert (out.instances[0, 125:160, 10:30] == VERTEBRA_IDS["S1"]).all()
    assert out.flags[1].startswith("the lowest disc found is L3/L4: 2 discs between it and the sacrum")


def test_a_sacrum_beginning_below_every_voxel_names_no_s1():
    out = anchored(_below_one_disc(), Anchor(60.0, 1), (4.0, 0.5, 2.0))
    assert [lv.name for lv in out.levels] == ["L5", "L4/L5", "L4"]
    assert out.levels[0].voxels == 60 * 20 and not (out.instances == VERTEBRA_IDS["S1"]).any()


def test_flags_quoting_names_from_the_count_are_renamed_with_them():
    flags = [
        "two vertebral bodies between discs 1 and 2 counted from the bottom: a disc between them was not found, so L5 "
        "and every name above may be one level off",
        "unexpected gap of 60 mm above disc 2 from the bottom (the gaps beside it: 35 mm): a disc may be missing "
        "near L3",
        "only 3 discs found; a full lumbar spine shows 5 (L1/L2 to L5/S1)",  # names that are not the count's
        "unexpected gap of 60 mm above disc 17 from the bottom (the gaps beside it: 30 mm): a disc may be missing "
        "near T1",
    ]
    moved = renamed_up(LevelLabelling(np.zeros((1, 1, 1), np.int16), [], flags), 1).flags
    assert moved == [
        flags[0].replace("so L5", "so L4"),
        flags[1].replace("near L3", "near L2"),
        flags[2],
        flags[3].replace("near T1", "near ?"),  # past the top, as the count itself says
    ]


def test_a_lowest_disc_at_l5_s1_is_left_as_it_is():
    named = LevelLabelling(np.zeros((1, 2, 2), np.int16), [DISC], [])
    assert anchored(named, Anchor(3.0, 0), SPACING) is named


def test_the_ct_pipeline_names_the_phantom_from_its_sacrum(pelvis_phantom):
    result = ct.analyze(pelvis_phantom.image)
    assert NO_ANCHOR not in result.findings.needs_review and ANCHORED in result.findings.needs_review
    truth = pelvis_phantom.image.with_array(pelvis_phantom.instances).sagittal_slices()
    ours = result.segmentation.levels.instances
    for vertebra in pelvis_phantom.vertebrae:
        covering = ours[truth == vertebra.label]
        assert np.bincount(covering[covering > 0]).argmax() == vertebra.label, vertebra.level
    # one real CT is no validation: the screen says its level is not confirmed
    assert "not confirmed" in result.findings.bone_density_screening.text


def test_a_wide_field_without_a_pelvis_counts_from_the_lowest_disc_and_says_so():
    wide = make_phantom(contrast="CT", shape=(81, 320, 256), spacing_mm=(3.0, 1.0, 1.0))
    seg = ct.segment(wide.image)
    assert NO_ANCHOR in seg.review and ANCHORED not in seg.review
