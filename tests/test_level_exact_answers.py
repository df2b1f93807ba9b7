"""Level labelling's pieces on hand-built discs whose answers follow from their geometry: where a disc is and which
way it faces, how long it is, when the lowest disc is taken for a sacral remnant, when disc spacing and an image
that ends below the lowest disc are flagged, with every boundary tried on both sides and every message read whole."""

from __future__ import annotations

import numpy as np
import pytest

from lumbar.labels import CAUDAL_TO_CRANIAL, VERTEBRA_IDS, Structure, is_vertebra
from lumbar.tasks.levels import (
    ARCH_DROP_FRACTION,
    _arch_starts_mm,
    _count_flags,
    _disc_from_voxels,
    _disc_length_mm,
    _neighbour_gaps_mm,
    _posterior_below_lowest_disc,
    _regions,
    _sacrum_flags,
    _unnamed_above_flags,
    small_lowest_disc_flags,
    thoracic_spacing_flags,
)


def _rectangle(rows: range, cols: range, slice_: int = 0) -> np.ndarray:
    """Voxel indices (slice, row, col) of a rectangle on one display slice."""
    r, c = np.meshgrid(np.array(rows), np.array(cols), indexing="ij")
    return np.column_stack([np.full(r.size, slice_), r.ravel(), c.ravel()])


# --- one disc: centroid, facing, area, length


def test_a_flat_disc_sits_at_its_centre_faces_up_and_measures_its_largest_slice():
    spacing = (4.0, 0.5, 2.0)  # lateral, row, col: every axis different, so a swapped one shows
    voxels = np.concatenate([_rectangle(range(10, 14), range(20, 40)), _rectangle(range(10, 12), range(20, 40), 1)])
    disc = _disc_from_voxels(voxels, spacing)
    rows, cols = voxels[:, 1] * 0.5, voxels[:, 2] * 2.0
    assert disc.centroid == pytest.approx([rows.mean(), cols.mean()])
    assert disc.axis == pytest.approx([-1.0, 0.0], abs=1e-9)  # toward the head: smaller rows
    assert disc.area_mm2 == pytest.approx(80 * 0.5 * 2.0)  # the larger slice: 4 x 20 voxels of 1 mm²


@pytest.mark.parametrize("tilt_deg", [-35.0, -10.0, 10.0, 35.0])
def test_a_tilted_disc_faces_along_its_normal_toward_the_head(tilt_deg):
    angle = np.radians(tilt_deg)
    along, normal = np.array([np.sin(angle), np.cos(angle)]), np.array([-np.cos(angle), np.sin(angle)])
    points = [60 + u * along * 1.0 + v * normal for u in np.arange(-20, 21) for v in np.arange(-3, 3.5, 0.5)]
    voxels = np.unique(np.rint(points).astype(int), axis=0)
    disc = _disc_from_voxels(np.column_stack([np.zeros(len(voxels), int), voxels]), (1.0, 1.0, 1.0))
    assert disc.axis[0] < 0  # head-ward, whatever sign the eigenvector came with
    assert abs(float(disc.axis @ normal)) == pytest.approx(1.0, abs=0.01)


def test_three_voxels_have_a_facing_of_their_own_and_fewer_the_default():
    diagonal = np.array([[0, 10, 10], [0, 11, 11], [0, 12, 12]])
    axis = _disc_from_voxels(diagonal, (1.0, 1.0, 1.0)).axis
    assert axis == pytest.approx([-np.sqrt(0.5), np.sqrt(0.5)])  # across the diagonal, toward the head
    assert list(_disc_from_voxels(diagonal[:2], (1.0, 1.0, 1.0)).axis) == [-1.0, 0.0]


def test_a_discs_length_runs_front_to_back_between_its_end_voxels():
    disc = _disc_from_voxels(_rectangle(range(10, 14), range(20, 40)), (4.0, 0.5, 2.0))
    assert _disc_length_mm(disc, (4.0, 0.5, 2.0)) == pytest.approx(19 * 2.0)


# --- the lowest disc taken for a sacral remnant

SMALL_LOWEST = (
    "small lowest disc, not counted: taken as a sacral remnant or the rudimentary disc below a transitional "
    "vertebra, so names start at the disc above it; if it is a partly outlined L5/S1, every level name is one "
    "level too low (check the lumbosacral junction)"
)


def _chain(lowest: tuple[int, int], others: list[tuple[int, int]]) -> list:
    """Discs of (height rows, length cols) at 1 mm, lowest first, 40 mm apart."""
    return [
        _disc_from_voxels(_rectangle(range(400 - 40 * k, 400 - 40 * k + h), range(50, 50 + w)), (1.0, 1.0, 1.0))
        for k, (h, w) in enumerate([lowest, *others])
    ]


OTHERS = [(10, 41)] * 4  # 10 mm tall, 40 mm long (41 voxels), 410 mm² each: thickness 410 / 40 = 10.25 mm


@pytest.mark.parametrize(
    "lowest, flagged",
    [
        ((11, 20), True),  # 19 mm long (below 70% of 40) and 220 mm² (below 60% of 410): short and small
        ((7, 29), False),  # 203 mm², but 28 mm long: exactly 70% of the others' length, not below it
        ((20, 20), False),  # short but as large as the others: a collapsed disc keeps its area
        ((5, 41), False),  # full length, 5 mm thick: 49% of the others' thickness
        ((3, 41), True),  # 3 mm thick: 30%, below the 40% floor
    ],
)
def test_the_lowest_disc_is_a_remnant_when_short_and_small_or_thin(lowest, flagged):
    flags = small_lowest_disc_flags(_chain(lowest, OTHERS), (1.0, 1.0, 1.0))
    assert flags == ([SMALL_LOWEST] if flagged else [])


def test_a_short_lowest_disc_of_exactly_60_percent_of_the_others_area_is_not_small():
    """23 mm long and 246 mm² (a 10 x 24 rectangle and 6 voxels more): exactly 60% of 410, not below it."""
    voxels = np.concatenate([_rectangle(range(400, 410), range(50, 74)), _rectangle(range(410, 411), range(59, 65))])
    lowest = _disc_from_voxels(voxels, (1.0, 1.0, 1.0))
    assert lowest.area_mm2 == 246.0
    assert small_lowest_disc_flags([lowest, *_chain((10, 41), OTHERS)[1:]], (1.0, 1.0, 1.0)) == []
    voxels = voxels[:-1]  # 245 mm²
    flagged = small_lowest_disc_flags(
        [_disc_from_voxels(voxels, (1.0, 1.0, 1.0)), *_chain((10, 41), OTHERS)[1:]], (1.0, 1.0, 1.0)
    )
    assert flagged == [SMALL_LOWEST]


def test_thinness_is_area_over_length():
    """A lowest disc 4 mm tall and 60 mm long: 244 / 60 mm is 39.7% of the others' thickness, below the 40% floor;
    area times length would give 89% and miss it."""
    assert small_lowest_disc_flags(_chain((4, 61), OTHERS), (1.0, 1.0, 1.0)) == [SMALL_LOWEST]


def test_the_others_median_is_over_every_other_disc():
    """Others 40, 40 and 60 mm long (median 40, not the 50 of the last two): a lowest disc 28 mm long is not short.
    Others 10.25, 10.25 and 4.1 mm thick (median 10.25, not 7.2): a lowest disc 3.1 mm thick is thin."""
    assert small_lowest_disc_flags(_chain((7, 29), [(10, 41), (10, 41), (10, 61)]), (1.0, 1.0, 1.0)) == []
    thin_others = [(10, 41), (10, 41), (4, 41)]
    assert small_lowest_disc_flags(_chain((3, 41), thin_others), (1.0, 1.0, 1.0)) == [SMALL_LOWEST]


def test_four_discs_are_enough_to_judge_the_lowest_and_three_are_not():
    assert small_lowest_disc_flags(_chain((11, 20), OTHERS[:3]), (1.0, 1.0, 1.0)) == [SMALL_LOWEST]
    assert small_lowest_disc_flags(_chain((11, 20), OTHERS[:2]), (1.0, 1.0, 1.0)) == []


# --- disc spacing


def _at_rows(rows: list[float]) -> list:
    """Discs (3 x 5 voxels at 1 mm) centred on ``rows``, given caudal first (decreasing row)."""
    return [_disc_from_voxels(_rectangle(range(int(r) - 1, int(r) + 2), range(48, 53)), (1.0, 1.0, 1.0)) for r in rows]


def _rows_from_gaps(gaps: list[float], start: float = 2000.0) -> list[float]:
    return list(start - np.concatenate([[0.0], np.cumsum(gaps)]))


def _gap_flags(flags: list[str]) -> list[str]:
    return [f for f in flags if not f.startswith("only ")]


def test_a_gap_of_exactly_1_5_times_the_gaps_beside_it_is_not_flagged_and_a_longer_one_is():
    assert _gap_flags(_count_flags(_at_rows(_rows_from_gaps([30, 30, 45, 30, 30])))) == []
    assert _gap_flags(_count_flags(_at_rows(_rows_from_gaps([30, 30, 46, 30, 30])))) == [
        "unexpected gap of 46 mm above disc 3 from the bottom (the gaps beside it: 30 mm): a disc may be missing "
        "near L2"
    ]


LUMBAR_GAPS = [40, 38, 37, 36, 34]  # L5/S1 to T12/L1: the column's spacing shrinks going up
THORACIC_GAPS = [28, 27, 26, 26, 25, 25]


def test_a_missed_thoracic_disc_is_judged_against_the_thoracic_gaps_beside_it():
    """T8/T9 missed: a 52 mm gap is twice the 26 mm of the thoracic gaps beside it, though under 1.7 times the whole
    chain's median (35 mm), the rule that missed it before."""
    gaps = LUMBAR_GAPS + THORACIC_GAPS[:3] + [52] + THORACIC_GAPS[5:]
    assert _gap_flags(_count_flags(_at_rows(_rows_from_gaps(gaps)))) == [
        "unexpected gap of 52 mm above disc 9 from the bottom (the gaps beside it: 26 mm): a disc may be missing "
        "near T8"
    ]


def test_a_column_whose_discs_lie_closer_going_up_is_not_flagged():
    """Twelve thoracic gaps of 24 mm below five lumbar ones of 42: against the whole chain's median (24 mm) every
    lumbar gap would look like a missed disc; against the gaps beside it none does, even at the abrupt change."""
    assert _gap_flags(_count_flags(_at_rows(_rows_from_gaps([42] * 5 + [24] * 12)))) == []
    assert _gap_flags(_count_flags(_at_rows(_rows_from_gaps(LUMBAR_GAPS + THORACIC_GAPS)))) == []


def test_a_regular_run_of_missed_thoracic_discs_is_flagged_against_the_lumbar_gaps():
    """Every other thoracic disc missed: four gaps of 50-52 mm above five lumbar ones (median of the lowest three:
    38 mm). Each is as long as the gaps beside it, so the neighbour rule is silent; but thoracic bodies are smaller
    than lumbar ones, and 52 mm is more than 1.25 times 38."""
    gaps = [*LUMBAR_GAPS, 52, 52, 50, 50]
    assert _gap_flags(_count_flags(_at_rows(_rows_from_gaps(gaps)))) == []
    assert thoracic_spacing_flags(_at_rows(_rows_from_gaps(gaps))) == [
        "4 thoracic gaps between discs, the lowest 52 mm: more than 1.25 times the lumbar gaps (38 mm), while thoracic "
        "vertebrae are smaller: a disc may be missed there, so T12 and every name above may be named lower than it is"
    ]
    assert thoracic_spacing_flags(_at_rows(_rows_from_gaps(LUMBAR_GAPS + THORACIC_GAPS))) == []


def test_thoracic_gaps_of_exactly_1_25_lumbar_ones_pass_and_only_gaps_above_l1_count():
    """Lumbar gaps of 40 mm: a T11 gap of 50 mm (1.25 times) passes, 51 is flagged and named; the L1 gap (the fifth)
    is lumbar and never judged, however long; five gaps hold no thoracic one."""
    assert thoracic_spacing_flags(_at_rows(_rows_from_gaps([40, 40, 40, 40, 40, 40, 50]))) == []
    assert thoracic_spacing_flags(_at_rows(_rows_from_gaps([40, 40, 40, 40, 40, 40, 51]))) == [
        "1 thoracic gap between discs, the lowest 51 mm: more than 1.25 times the lumbar gaps (40 mm), while thoracic "
        "vertebrae are smaller: a disc may be missed there, so T11 and every name above may be named lower than it is"
    ]
    assert thoracic_spacing_flags(_at_rows(_rows_from_gaps([40, 40, 40, 40, 90]))) == []
    assert thoracic_spacing_flags(_at_rows(_rows_from_gaps([40, 40, 40, 40, 90, 40]))) == []
    assert thoracic_spacing_flags(_at_rows(_rows_from_gaps([20, 41, 60, 40, 40, 51]))) == []  # the median, 41: 51.25


def test_the_gaps_beside_a_gap_are_at_most_two_each_side_and_never_itself():
    """Beside the fourth gap of [10, 20, 30, 40, 50, 60]: 10 is three away and 40 is itself, so 20, 30, 50 and 60
    (median 40); beside the fifth, 30, 40 and 60 (median 40), as nothing lies beyond the last."""
    assert list(_neighbour_gaps_mm(np.array([10.0, 20, 30, 40, 50, 60]))) == [25.0, 30.0, 30.0, 40.0, 40.0, 45.0]
    assert list(_neighbour_gaps_mm(np.array([10.0, 60]))) == [60.0, 10.0]


def test_discs_exactly_0_55_medians_apart_are_not_flagged_and_closer_ones_are():
    assert _gap_flags(_count_flags(_at_rows(_rows_from_gaps([40, 40, 22, 40, 40])))) == []
    assert _gap_flags(_count_flags(_at_rows(_rows_from_gaps([40, 40, 21, 40, 40])))) == [
        "discs 3 and 4 from the bottom only 21 mm apart (median 40 mm): one may not be a disc, and the vertebra it "
        "cuts would carry two names"
    ]


def test_three_discs_are_enough_to_judge_their_spacing():
    assert _count_flags(_at_rows(_rows_from_gaps([10, 60]))) == [
        "discs 1 and 2 from the bottom only 10 mm apart (median 35 mm): one may not be a disc, and the vertebra it "
        "cuts would carry two names",
        "unexpected gap of 60 mm above disc 2 from the bottom (the gaps beside it: 10 mm): a disc may be missing "
        "near L3",
        "only 3 discs found; a full lumbar spine shows 5 (L1/L2 to L5/S1)",
    ]


def test_a_gap_above_the_highest_nameable_disc_names_no_vertebra():
    """18 names from S1 to T1: a gap above the 16th disc points at T1, one above the 17th at none."""
    gaps = [30.0] * 19
    gaps[15] = 60.0
    assert _gap_flags(_count_flags(_at_rows(_rows_from_gaps(gaps)))) == [
        f"unexpected gap of 60 mm above disc 16 from the bottom (the gaps beside it: 30 mm): a disc may be missing "
        f"near {CAUDAL_TO_CRANIAL[17]}"
    ]
    gaps[15], gaps[16] = 30.0, 60.0
    assert _gap_flags(_count_flags(_at_rows(_rows_from_gaps(gaps)))) == [
        "unexpected gap of 60 mm above disc 17 from the bottom (the gaps beside it: 30 mm): a disc may be missing "
        "near ?"
    ]


@pytest.mark.parametrize(
    "gaps, counted",
    [
        ([30, 30, 45, 30, 30], [0, 0, 0, 0, 0]),  # 1.5 times the gaps beside it: not a missed disc
        ([30, 30, 46, 30, 30], [0, 0, 1, 0, 0]),  # just over: one disc
        ([30, 30, 75, 30, 30], [0, 0, 1, 0, 0]),  # 2.5 rounds to 2 (to even): one disc
        ([30, 30, 76, 30, 30], [0, 0, 2, 0, 0]),  # 2.53: two
        ([30, 30, 102, 30, 30], [0, 0, 2, 0, 0]),  # 3.4: two
        ([30, 30, 106, 30, 30], [0, 0, 0, 0, 0]),  # 3.53 would be three: the column is lost, not counted
        ([30, 60, 30, 30, 106, 30], [0, 0, 0, 0, 0, 0]),  # nor anything else on that chain
        ([30, 60, 30, 60, 30], [0, 1, 0, 1, 0]),  # two misses, each judged against its own neighbours
        ([16, 30, 60, 30, 30], [0, 0, 0, 0, 0]),  # discs 16 mm apart (under 0.55 of the median 30): no count at all
        ([17, 30, 60, 30, 30], [0, 0, 1, 0, 0]),  # 17 mm: the chain is regular enough
        ([22, 40, 80, 40, 40], [0, 0, 1, 0, 0]),  # 22 mm is exactly 0.55 of the median 40: not closer, counted
        ([30, 60], [0, 1]),  # three discs are enough
        ([60], [0]),  # two are not
    ],
)
def test_missed_discs_are_counted_from_the_gaps_beside_them(gaps, counted):
    from lumbar.tasks.levels import missed_discs

    assert missed_discs(_at_rows(_rows_from_gaps(gaps))) == counted
    assert missed_discs([]) == []


def test_missed_discs_are_put_back_evenly_along_their_gap_facing_between_their_neighbours():
    """Two discs 90 mm apart holding two missed ones, the upper disc tilted: the missed discs sit 30 and 60 mm up,
    their axes a third and two thirds of the way between the two (normalised), their voxels the lower disc's moved
    30 and 60 rows (at 1 mm) and 10 and 20 columns (at 2 mm), their areas in between."""
    from lumbar.tasks.levels import _Disc, with_missed

    tilt = np.array([-0.8, 0.6])
    below = _Disc(np.array([[0, 100, 10], [0, 101, 12]]), np.array([100.0, 20.0]), np.array([-1.0, 0.0]), 300.0)
    above = _Disc(np.array([[0, 10, 40]]), np.array([10.0, 80.0]), tilt, 150.0)
    chain = with_missed([below, above], [2], (3.0, 1.0, 2.0))
    assert [d.found for d in chain] == [True, False, False, True]
    assert chain[0] is below and chain[3] is above
    for d, t, shift in ((chain[1], 1 / 3, [0, -30, 10]), (chain[2], 2 / 3, [0, -60, 20])):
        assert d.centroid == pytest.approx([100 - 90 * t, 20 + 60 * t])
        axis = (1 - t) * below.axis + t * tilt
        assert d.axis == pytest.approx(axis / np.linalg.norm(axis))
        assert np.array_equal(d.voxels, below.voxels + shift)
        assert d.area_mm2 == pytest.approx(300 - 150 * t)
    assert with_missed([below, above], [0], (3.0, 1.0, 2.0)) == [below, above]
    assert with_missed([], [], (3.0, 1.0, 2.0)) == []


def _blob_in_a_body(front_mm: int, back_mm: int) -> tuple:
    """A flat blob 20 mm deep and 3 mm tall (columns 40-59, rows 49-51, 1 mm pixels) with bone ``front_mm`` in front
    of it (columns before 40) and ``back_mm`` behind it (from column 60), over rows 44-56."""
    from lumbar.tasks.levels import _disc_from_voxels

    bone = np.zeros((100, 120), bool)
    bone[44:57, 40 - front_mm : 40] = True
    bone[44:57, 60 : 60 + back_mm] = True
    return _disc_from_voxels(_rectangle(range(49, 52), range(40, 60)), ONE_MM), bone


@pytest.mark.parametrize(
    "front_mm, back_mm, inside",
    [
        (6, 6, True),  # bone all round: a blob inside a body
        (3, 6, True),  # 3 of the 6 mm in front (3 of 6 points at each height): exactly half is enough
        (2, 6, False),  # 2 of 6: soft tissue in front, as in front of a disc
        (6, 2, False),  # the canal behind
        (0, 0, False),
    ],
)
def test_a_disc_candidate_with_bone_in_front_and_behind_lies_inside_a_body(front_mm, back_mm, inside):
    from lumbar.tasks.levels import _inside_a_body

    disc, bone = _blob_in_a_body(front_mm, back_mm)
    assert _inside_a_body(disc, bone, ONE_MM) is inside


def test_bone_only_above_or_below_the_disc_plane_does_not_put_it_inside_a_body():
    """Bone in front and behind, but 2 mm or more above the blob's plane (the points looked at lie within 1 mm of
    it): the blob is not inside a body."""
    from lumbar.tasks.levels import _inside_a_body

    disc, bone = _blob_in_a_body(6, 6)
    bone[47:] = False  # bone only on rows 44-46: from 3 mm above the plane (row 50)
    assert not _inside_a_body(disc, bone, ONE_MM)
    disc, bone = _blob_in_a_body(6, 6)
    bone[:, :] = False
    bone[49:52, 34:40] = bone[49:52, 60:66] = True  # within 1 mm of it: inside
    assert _inside_a_body(disc, bone, ONE_MM)


def test_a_blob_at_the_image_edge_is_judged_on_the_points_inside_the_image():
    """The blob's front edge at column 0: nothing in front is in the image, so it is not inside a body."""
    from lumbar.tasks.levels import _disc_from_voxels, _inside_a_body

    disc = _disc_from_voxels(_rectangle(range(49, 52), range(0, 20)), ONE_MM)
    bone = np.ones((100, 120), bool)
    bone[49:52, 0:20] = False
    assert not _inside_a_body(disc, bone, ONE_MM)


@pytest.mark.parametrize("grid", [((1, 1), (4.0, 1.0, 1.0)), ((2, 2), (4.0, 0.5, 2.0))])
def test_a_blob_the_network_marks_inside_a_body_is_not_a_disc(grid):
    """Seven bodies 40 mm deep; a blob 6 mm tall and 24 mm deep, marked disc, in the middle of L3's body (144 mm²,
    too large to be dropped as a fragment: 0.3 of the 320 mm² discs is 96): it is left out of the chain, and the
    names and flags are the whole column's."""
    from lumbar.tasks.levels import label_levels

    (rows, cols), spacing = grid
    classes = _column(7)
    middle = classes.shape[1] - 10 - 3 * 28 - 10
    classes[0, middle - 3 : middle + 3, 38:62] = Structure.DISC
    whole = label_levels(_regrid(_column(7), rows, cols), spacing)
    blob = label_levels(_regrid(classes, rows, cols), spacing)
    assert [lv.name for lv in blob.levels] == [lv.name for lv in whole.levels]
    assert blob.flags == whole.flags


# --- arches: behind the canal a disc's plane lies lower

ONE_MM = (1.0, 1.0, 1.0)


def _level_disc(row: int):
    """A flat disc three rows tall over columns 30-70 at 1 mm: centre at column 50, back edge 20 mm behind it."""
    return _disc_from_voxels(_rectangle(range(row - 1, row + 2), range(30, 71)), ONE_MM)


def _canal(front_col: float, row: float = 100.0) -> np.ndarray:
    return np.array([[row, front_col], [row, front_col + 10]])


def test_the_arches_begin_at_the_canals_front_never_within_the_discs_back_edge():
    disc = _level_disc(100)  # back edge 20 mm behind its centre
    assert _arch_starts_mm(disc, ONE_MM, _canal(76)) == pytest.approx(26.0)  # the canal's front
    assert _arch_starts_mm(disc, ONE_MM, _canal(72)) == pytest.approx(23.0)  # never within 3 mm of the back edge
    assert _arch_starts_mm(disc, ONE_MM, _canal(76, row=105.9)) == pytest.approx(26.0)


def test_without_canal_beside_the_disc_nobody_says_where_the_arches_begin():
    disc = _level_disc(100)
    assert _arch_starts_mm(disc, ONE_MM, np.empty((0, 2))) is None
    assert _arch_starts_mm(disc, ONE_MM, _canal(76, row=106)) is None  # 6 mm off the plane: another level's canal
    assert _arch_starts_mm(disc, ONE_MM, np.array([[100.0, 40.0]])) is None  # canal drawn in front is no front
    assert _arch_starts_mm(disc, ONE_MM, np.array([[100.0, 50.0]])) is None  # nor canal level with its centre


def test_canal_level_with_the_discs_centre_does_not_bring_the_arches_forward():
    disc = _level_disc(100)  # centre at column 50
    assert _arch_starts_mm(disc, ONE_MM, np.array([[100.0, 50.0], [100.0, 76.0]])) == pytest.approx(26.0)


def test_canal_just_behind_the_discs_centre_is_behind_it():
    """Canal drawn half a millimetre behind the disc's centre (column 50.5) is behind it, however little: the
    arches then begin 3 mm past the back edge, 23 mm (a canal's front 0.5 mm behind cannot bring them nearer)."""
    disc = _level_disc(100)
    assert _arch_starts_mm(disc, ONE_MM, np.array([[100.0, 50.5]])) == pytest.approx(23.0)


def test_behind_the_canal_a_disc_plane_lies_a_fraction_of_the_disc_spacing_lower():
    """Discs 40 mm apart, the canal's front 26 mm behind their centres: behind it the middle disc's plane lies
    0.3 x 40 = 12 mm lower, in front of it (and in line with the canal's front) it does not."""
    assert ARCH_DROP_FRACTION == 0.3
    discs = [_level_disc(140), _level_disc(100), _level_disc(60)]  # caudal first
    canal = np.array([[r, c] for r in range(50, 151) for c in (76.0, 86.0)])
    points = np.array([[111.9, 80.0], [112.1, 80.0], [101.0, 60.0], [101.0, 76.0], [99.0, 60.0], [95.0, 80.0]])
    assert list(_regions(points, discs, ONE_MM, canal, ARCH_DROP_FRACTION)) == [2, 1, 1, 1, 2, 2]
    assert list(_regions(points, discs, ONE_MM, canal, 0.0)) == [1, 1, 1, 1, 2, 2]  # straight back
    one = _regions(points, discs[1:2], ONE_MM, canal, ARCH_DROP_FRACTION)
    assert list(one) == [0, 0, 0, 0, 1, 1]  # one disc: no spacing, so no drop
    no_canal = _regions(points, discs, ONE_MM, np.empty((0, 2)), ARCH_DROP_FRACTION)
    assert list(no_canal) == [1, 1, 1, 1, 2, 2]  # no canal: no arch start, no drop
    on_plane = np.array([[100.0, 60.0], [112.0, 80.0]])  # on the middle plane, and on it where it lies 12 mm lower
    assert list(_regions(on_plane, discs, ONE_MM, canal, ARCH_DROP_FRACTION)) == [1, 1]  # a plane's points lie below it


def test_bone_behind_and_below_the_lowest_disc_is_l5s_only_if_joined_to_bone_above_it():
    """Behind the lowest disc (30 mm behind its centre, its back edge 20 mm) and 5 mm below its plane, bone the
    lowered plane gave to the vertebra above (region 1) stays there only if its piece reaches above the disc; bone
    below the plane left below it (region 0) joins the vertebra above on the same terms; bone above the plane keeps
    its region whatever its piece."""
    points = np.array([[105.0, 80.0], [105.0, 80.0], [105.0, 80.0], [95.0, 80.0], [95.0, 80.0]])
    region = np.array([1, 1, 0, 1, 1], np.int16)
    pieces = np.array([7, 8, 8, 8, 9])  # piece 8 reaches above the disc, 7 does not, 9 lies wholly above it
    out = _posterior_below_lowest_disc(points, region, pieces, _level_disc(100), ONE_MM)
    assert list(out) == [-1, 1, 1, 1, 1]


def test_behind_below_and_reaching_up_at_their_exact_bounds():
    """The lowest disc at row 100 (centre column 50, back edge 20 mm behind it): behind means more than 23 mm
    behind the centre, so column 73 is not behind (its region 0 stays); on the plane (row 100) is below it, and a
    piece whose highest point lies on the plane does not reach above it (-1); a piece reaching half a millimetre
    above does (1). Bone already left unnamed (-1) stays unnamed, even joined to bone above."""
    points = np.array([[105.0, 73.0], [100.0, 80.0], [99.5, 80.0], [105.0, 80.0], [105.0, 80.0], [90.0, 80.0]])
    region = np.array([0, 1, 1, 1, -1, 1], np.int16)
    pieces = np.array([1, 2, 4, 4, 5, 5])
    out = _posterior_below_lowest_disc(points, region, pieces, _level_disc(100), ONE_MM)
    assert list(out) == [0, -1, 1, 1, -1, 1]


# --- an image that ends below the lowest disc

NO_SACRUM = (
    "no sacrum in view: the image ends just below the lowest disc, which is taken as L5/S1 without the sacrum "
    "to confirm it, so every level name may be off; count from the sacrum on an image that shows it"
)


@pytest.mark.parametrize("spacing", [(3.0, 1.0, 1.0), (3.0, 0.5, 2.0)])
def test_the_sacrum_is_flagged_missing_when_less_than_half_of_15_mm_below_the_disc_is_in_the_image(spacing):
    """A flat disc whose lowest row is ``bottom``: the 15 depths sampled 1..15 mm below it fall on the rows below;
    8 of them inside the image is half or more (no flag), 7 is less."""
    row_mm = spacing[1]
    bottom = 100
    disc = _disc_from_voxels(_rectangle(range(bottom - 7, bottom + 1), range(20, 60)), spacing)
    rows_for = {depth: int(np.rint((bottom * row_mm + depth) / row_mm)) for depth in range(1, 16)}
    enough = max(rows_for[d] for d in range(1, 9)) + 1  # rows 0..that: depths 1-8 inside, 9-15 outside
    assert _sacrum_flags(disc, spacing, (enough, 200)) == []
    assert _sacrum_flags(disc, spacing, (max(rows_for[d] for d in range(1, 8)) + 1, 200)) == [NO_SACRUM]


def test_the_sacrum_check_samples_the_middle_half_of_the_disc_across():
    """The columns checked lie across the middle half of the disc's length: an image whose right edge cuts the
    disc's posterior quarter still holds them all."""
    disc = _disc_from_voxels(_rectangle(range(93, 101), range(20, 60)), (3.0, 1.0, 1.0))
    assert _sacrum_flags(disc, (3.0, 1.0, 1.0), (300, 51)) == []  # columns 29.75-49.25 in view
    assert _sacrum_flags(disc, (3.0, 1.0, 1.0), (300, 40)) == [NO_SACRUM]  # only 2 of 7 columns in view


# --- bone above a disc


def _flat_disc(top: int = 100, cols: range = range(40, 80), spacing=(3.0, 1.0, 1.0)):
    """A flat disc 8 rows tall under row ``top``; for the default one the check samples rows top-1 .. top-7 at
    columns 50, 55, 60, 64 and 69 (five points across the middle half of its 40 mm, centroid column 59.5)."""
    return _disc_from_voxels(_rectangle(range(top, top + 8), cols), spacing)


def _bone(cells: dict[int, list[int]], shape=(200, 120)) -> np.ndarray:
    bone = np.zeros(shape, bool)
    for row, cols in cells.items():
        bone[row, cols] = True
    return bone


SAMPLED = [50, 55, 60, 64, 69]


@pytest.mark.parametrize(
    "cells, above",
    [
        ({99: SAMPLED, 97: SAMPLED[:4]}, True),  # 9 of the 35 points: a quarter or more
        ({98: SAMPLED, 96: SAMPLED[:4]}, True),
        ({98: SAMPLED, 96: SAMPLED[:3]}, False),  # 8 of 35
        ({row: [50, 55] for row in range(93, 100)}, True),  # two columns all the way up: 14
        ({row: [50] for row in range(93, 100)}, False),  # one column: 7
        ({92: SAMPLED, 91: SAMPLED}, False),  # bone, but more than 7 mm above
        ({}, False),
    ],
)
def test_bone_above_a_disc_is_a_quarter_of_the_points_sampled_up_to_7_mm_over_its_middle_half(cells, above):
    from lumbar.tasks.levels import _bone_above

    assert _bone_above(_flat_disc(), _bone(cells), (3.0, 1.0, 1.0), (200, 120)) is above


def test_a_narrow_disc_samples_at_least_2_mm_either_side():
    """8 mm wide: a quarter of it would be 1.75 mm; 2 mm puts two of the five points on column 58."""
    from lumbar.tasks.levels import _bone_above

    disc = _flat_disc(cols=range(56, 64))
    assert _bone_above(disc, _bone({row: [58] for row in range(93, 100)}), (3.0, 1.0, 1.0), (200, 120))


def test_points_sampled_outside_the_image_do_not_count_and_too_few_inside_count_as_bone():
    from lumbar.tasks.levels import _bone_above

    near_top = _flat_disc(top=4)  # rows 3..0 inside (20 points), -1..-3 outside
    assert _bone_above(near_top, _bone({3: SAMPLED}), (3.0, 1.0, 1.0), (200, 120))  # 5 of 20
    assert not _bone_above(near_top, _bone({3: SAMPLED[:4]}), (3.0, 1.0, 1.0), (200, 120))  # 4 of 20
    at_top = _flat_disc(top=2)  # rows 1 and 0 inside: 10 points, enough to judge
    assert not _bone_above(at_top, _bone({}), (3.0, 1.0, 1.0), (200, 120))
    assert _bone_above(_flat_disc(top=1), _bone({}), (3.0, 1.0, 1.0), (200, 120))  # 5 points: the image's edge
    assert not _bone_above(_flat_disc(), _bone({}, (200, 90)), (3.0, 1.0, 1.0), (200, 90))  # rows, not columns


def test_bone_above_is_found_in_millimetres_on_anisotropic_pixels():
    """Rows of 0.5 mm: the 7 mm above the disc are 14 rows; columns of 2 mm: the disc's 80 mm span 40 columns."""
    from lumbar.tasks.levels import _bone_above

    disc = _disc_from_voxels(_rectangle(range(100, 116), range(20, 60)), (3.0, 0.5, 2.0))
    cells = {row: list(range(20, 60)) for row in range(86, 100)}
    assert _bone_above(disc, _bone(cells), (3.0, 0.5, 2.0), (200, 120))
    assert not _bone_above(
        disc, _bone({row: list(range(20, 60)) for row in range(70, 85)}), (3.0, 0.5, 2.0), (200, 120)
    )


def test_bone_above_a_tilted_disc_is_sought_along_its_own_axis():
    from lumbar.tasks.levels import _bone_above

    angle = np.radians(30.0)
    along, up = np.array([np.sin(angle), np.cos(angle)]), np.array([-np.cos(angle), np.sin(angle)])
    centre = np.array([100.0, 60.0])
    disc_points = [centre + u * along + v * up for u in np.arange(-20, 20.5, 0.5) for v in np.arange(-4, 4.5, 0.5)]
    voxels = np.unique(np.rint(disc_points).astype(int), axis=0)
    disc = _disc_from_voxels(np.column_stack([np.zeros(len(voxels), int), voxels]), (1.0, 1.0, 1.0))
    band = [centre + u * along + v * up for u in np.arange(-12, 12.5, 0.5) for v in np.arange(5, 12.5, 0.5)]
    bone = np.zeros((200, 120), bool)
    bone[tuple(np.unique(np.rint(band).astype(int), axis=0).T)] = True  # a body right above, parallel to the disc
    assert _bone_above(disc, bone, (1.0, 1.0, 1.0), (200, 120))
    assert not _bone_above(disc, np.roll(bone, 14, axis=0), (1.0, 1.0, 1.0), (200, 120))  # the same body shifted down


# --- the same spine on another pixel grid


def _regrid(classes: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Nearest-neighbour resampling of display slices: rows repeated ``rows`` times, every ``cols``-th column kept."""
    return np.repeat(classes, rows, axis=1)[:, :, ::cols]


def test_levels_in_millimetres_do_not_depend_on_the_pixel_grid(phantom_semantic_spider):
    """The phantom's class map (1 mm pixels) on 0.5 mm rows and 2 mm columns: the same names and flags, each level's
    centre within a pixel of where it was, its size the same in voxels of the new grid."""
    from lumbar.tasks.levels import label_levels

    square = label_levels(phantom_semantic_spider, (4.0, 1.0, 1.0))
    regridded = label_levels(_regrid(phantom_semantic_spider, 2, 2), (4.0, 0.5, 2.0))
    assert [lv.name for lv in regridded.levels] == [lv.name for lv in square.levels]
    assert regridded.flags == square.flags
    for before, after in zip(square.levels, regridded.levels):
        assert after.centroid_mm == pytest.approx(before.centroid_mm, abs=2.0), before.name
        assert after.axis == pytest.approx(before.axis, abs=0.05), before.name
        assert after.voxels == pytest.approx(before.voxels, rel=0.1), before.name
    for label in np.unique(square.instances):  # every voxel keeps its name
        moved = _regrid(square.instances == label, 2, 2)
        assert np.mean(regridded.instances[moved] == label) > 0.97, label


# --- a straight column drawn block by block


def _column(vertebrae: int, skip_vertebra: int | None = None) -> np.ndarray:
    """One display slice (1 mm pixels) of a straight column, head at the top: ``vertebrae`` bodies 20 mm tall with
    8 mm discs between them, a canal behind; ``skip_vertebra`` (counted from the bottom, 0 = the lowest) is left out."""
    height = 20 + vertebrae * 28
    classes = np.zeros((1, height, 120), np.uint8)
    for k in range(vertebrae):
        bottom = height - 10 - k * 28
        if k != skip_vertebra:
            classes[0, bottom - 20 : bottom, 30:70] = Structure.VERTEBRA
        if k < vertebrae - 1:
            classes[0, bottom - 28 : bottom - 20, 30:70] = Structure.DISC
    classes[0, 5 : height - 5, 75:90] = Structure.CANAL
    return classes


def test_more_discs_than_names_leave_the_highest_unnamed():
    from lumbar.tasks.levels import label_levels

    result = label_levels(_column(20), (4.0, 1.0, 1.0))  # 19 discs: S1 to T1 names 17 of them
    assert result.flags[0] == "19 discs found, more than can be named from the sacrum; the highest are left unnamed"
    assert [lv.name for lv in result.vertebrae] == list(CAUDAL_TO_CRANIAL)
    assert len(result.discs) == 17 and result.discs[-1].name == "T1/T2"
    assert not any(f.startswith("bone goes on") for f in result.flags)  # said once, by the count, not again
    assert all(isinstance(lv.voxels, int) and lv.voxels > 0 for lv in result.levels)
    top = result.vertebrae[-1]
    rows = np.nonzero(result.instances[0] == top.label)[0]
    assert top.centroid_mm[0] == pytest.approx(rows.mean())  # in mm: 1 mm rows
    assert label_levels(_column(18), (4.0, 1.0, 1.0)).flags[:1] != [
        "17 discs found, more than can be named from the sacrum; the highest are left unnamed"
    ]


@pytest.mark.parametrize("fused, flagged", [(0, False), (1, True), (3, True), (6, False)])
def test_a_level_left_without_bone_of_its_own_is_flagged_but_not_below_the_lowest_disc_or_above_the_top(fused, flagged):
    """Seven bodies, six discs; body ``fused`` (from the bottom) is only 3 mm tall and joined by a bridge of bone
    to the body above it (0 and 6: to the one below), so that the joined piece, more than 80% the other body's,
    goes whole to that body's level. Between two discs that leaves a level without a vertebra: flagged. Below the
    lowest disc (the sacrum is not outlined either) or above the top one (the image may end), it is not."""
    from lumbar.tasks.levels import label_levels

    classes = _column(7)
    height = classes.shape[1]
    bottom = height - 10 - fused * 28
    classes[0, bottom - 20 : bottom - 3, 30:70] = 0  # 3 mm of it left, on its lower endplate
    partner = 1 if fused < 6 else -1  # the body it is joined to
    gap = slice(bottom - 28, bottom - 3) if partner == 1 else slice(bottom - 17, bottom + 8)
    classes[0, gap, 30:33] = Structure.VERTEBRA  # the bridge through the disc
    if fused == 6:  # the top body keeps its upper 3 mm instead, the bridge runs down from it
        classes[0, bottom - 20 : bottom - 17, 30:70] = Structure.VERTEBRA
        classes[0, bottom - 3 : bottom, 30:70] = 0
    result = label_levels(classes, (4.0, 1.0, 1.0))
    expected = (
        f"no vertebra found between discs {fused} and {fused + 1} counted from the bottom: a level may be missing"
    )
    assert (expected in result.flags) is flagged
    assert not any(f.startswith("no vertebra found between") and f != expected for f in result.flags)


def test_no_disc_names_nothing_and_says_so():
    from lumbar.tasks.levels import label_levels

    classes = _column(3)
    classes[classes == Structure.DISC] = Structure.VERTEBRA
    result = label_levels(classes, (4.0, 1.0, 1.0))
    assert result.levels == [] and result.flags == ["no intervertebral disc found: levels cannot be named"]
    assert result.instances.shape == classes.shape and result.instances.dtype == np.int16
    assert set(np.unique(result.instances)) == {0, 200}


# --- the chain: discs off the column, pieces of one disc, fragments between discs


def _square(row: float, col: float, side: int = 5):
    """A square disc of ``side`` x ``side`` 1 mm voxels centred at (row, col), facing up."""
    half = side // 2
    return _disc_from_voxels(
        _rectangle(range(int(row) - half, int(row) - half + side), range(int(col) - half, int(col) - half + side)),
        (1.0, 1.0, 1.0),
    )


def test_off_chain_interior_discs_are_measured_from_a_parabola_through_five_or_more_others():
    from lumbar.tasks.levels import _off_chain_mm

    rows = [300, 260, 220, 180, 140, 100]
    on_parabola = [_square(r, 50 + ((r - 200) / 20) ** 2) for r in rows]  # col = 50 + ((row - 200) / 20)²
    assert _off_chain_mm(on_parabola, 2) == pytest.approx(0.0, abs=0.6)  # five others: a parabola through them
    on_cubic = [_square(r, 50 + ((r - 200) / 20) ** 3 / 10) for r in rows]
    assert _off_chain_mm(on_cubic, 2) > 1.0  # a parabola does not pass through a cubic


def test_off_chain_interior_discs_are_measured_from_a_line_through_four_or_fewer_others():
    from lumbar.tasks.levels import _off_chain_mm

    rows = [300, 250, 200, 150, 100]
    on_parabola = [_square(r, 50 + ((r - 200) / 20) ** 2) for r in rows]
    # the line through the other four (cols 75, 56.25, 56.25, 75 at rows 300, 250, 150, 100) is col 65.6 at row 200
    assert _off_chain_mm(on_parabola, 2) == pytest.approx(15.6, abs=0.7)


def test_off_chain_end_discs_may_follow_the_line_through_their_two_nearest_neighbours():
    """The lowest disc lies on the line through the two discs above it but 30 mm off the straight column through all
    the others: an end disc is measured from whichever is nearer."""
    from lumbar.tasks.levels import _off_chain_mm

    chain = [_square(300, 110), _square(260, 90), _square(220, 70), _square(180, 70), _square(140, 70)]
    assert _off_chain_mm(chain, 0) == pytest.approx(0.0, abs=0.6)


def test_off_chain_an_end_discs_neighbours_closer_than_a_millimetre_still_give_a_line():
    """The lowest disc 10 mm to the side of the line through its two nearest discs, which lie 0.5 mm apart (one
    beside the other, rows 260 and 260.5): the perpendicular distance is 10 mm, however short the line between
    them (dividing by a millimetre instead of their 0.5 would halve it); the straight column through all three
    others (column 60) is 10 mm off too."""
    from lumbar.tasks.levels import _Disc, _off_chain_mm

    def disc(row, col):
        return _Disc(np.zeros((0, 3), int), np.array([row, col]), np.array([-1.0, 0.0]), 400.0)

    near = [disc(300.0, 70.0), disc(260.0, 60.0), disc(260.5, 60.0), disc(100.0, 60.0)]
    assert _off_chain_mm(near, 0) == pytest.approx(10.0)


def test_a_disc_far_off_the_column_is_dropped_even_from_four():
    from lumbar.tasks.levels import _robust_chain

    chain = [_square(300, 90), _square(260, 50), _square(220, 50), _square(180, 50)]
    assert [round(float(d.centroid[1])) for d in _robust_chain(chain)] == [50, 50, 50]
    assert len(_robust_chain(chain[:3])) == 3  # three are too few to judge


def test_a_disc_is_behind_the_canal_when_behind_its_median_at_the_discs_height():
    from lumbar.tasks.levels import _behind_canal

    disc = _square(100, 50)
    canal = np.array(
        [[98.0, 60.0], [100.0, 60.0], [102.0, 60.0], [106.0, 30.0], [106.0, 30.0], [106.0, 30.0], [106.0, 30.0]]
    )
    assert not _behind_canal(disc, canal)  # points 6 mm above or below do not count: the canal here is behind it
    assert _behind_canal(disc, np.array([[100.0, 40.0]]))  # one point is enough
    assert not _behind_canal(disc, np.array([[100.0, 50.0]]))  # level with it is not behind
    assert not _behind_canal(disc, np.zeros((0, 2)))


def test_fragments_between_discs_are_dropped_below_30_percent_of_the_median_but_not_at_the_ends():
    from lumbar.tasks.levels import _drop_interior_fragments

    big = [_square(r, 50, side=10) for r in (300, 260, 220, 180)]  # 100 mm² each
    small = _square(240, 50, side=5)  # 25 mm²: below 30 mm²
    kept = _drop_interior_fragments([big[0], big[1], small, big[2], big[3]])
    assert [d.area_mm2 for d in kept] == [100.0] * 4
    assert len(_drop_interior_fragments([big[0], small, big[1], big[2]])) == 3  # four are enough to judge
    assert len(_drop_interior_fragments([big[0], small, big[1]])) == 3  # three are not
    exact = _disc_from_voxels(_rectangle(range(238, 244), range(45, 50)), (1.0, 1.0, 1.0))  # 30 mm²: 30% of 100
    assert len(_drop_interior_fragments([big[0], big[1], exact, big[2], big[3]])) == 5
    ends = [_square(320, 50, side=5), *big, _square(140, 50, side=5)]  # small ends: the image may cut them
    assert len(_drop_interior_fragments(ends)) == 6


def test_pieces_of_one_disc_merge_along_the_larger_pieces_axis_when_less_than_4_mm_apart():
    from lumbar.tasks.levels import _merge_split

    flat = _disc_from_voxels(_rectangle(range(100, 104), range(30, 70)), (1.0, 1.0, 1.0))  # 160 mm², facing up
    below = _disc_from_voxels(_rectangle(range(140, 144), range(30, 70)), (1.0, 1.0, 1.0))
    near = _disc_from_voxels(_rectangle(range(104, 108), range(72, 76)), (1.0, 1.0, 1.0))  # 4 mm lower, 16 mm²
    close = _disc_from_voxels(_rectangle(range(103, 107), range(72, 76)), (1.0, 1.0, 1.0))  # 3 mm lower
    assert len(_merge_split([below, flat, near], (1.0, 1.0, 1.0))) == 3  # exactly 4 mm: two discs
    merged = _merge_split([below, flat, close], (1.0, 1.0, 1.0))
    assert len(merged) == 2 and merged[1].area_mm2 == 176.0


def test_merging_measures_along_the_larger_pieces_axis():
    """A tilted small piece whose own axis would put the big one 6 mm away, the big one's axis 2 mm: merged."""
    from lumbar.tasks.levels import _merge_split

    flat = _disc_from_voxels(_rectangle(range(100, 104), range(30, 70)), (1.0, 1.0, 1.0))
    angle = np.radians(35.0)
    along, up = np.array([np.sin(angle), np.cos(angle)]), np.array([-np.cos(angle), np.sin(angle)])
    points = [np.array([104.5, 75.0]) + u * along + v * up for u in np.arange(-5, 5.5, 0.5) for v in (-1, 0, 1)]
    voxels = np.unique(np.rint(points).astype(int), axis=0)
    tilted = _disc_from_voxels(np.column_stack([np.zeros(len(voxels), int), voxels]), (1.0, 1.0, 1.0))
    along_flat = abs(float((tilted.centroid - flat.centroid) @ flat.axis))
    along_tilted = abs(float((tilted.centroid - flat.centroid) @ tilted.axis))
    assert along_flat < 4.0 <= along_tilted  # the case this test is about
    assert len(_merge_split([flat, tilted], (1.0, 1.0, 1.0))) == 1  # the larger first
    assert len(_merge_split([tilted, flat], (1.0, 1.0, 1.0))) == 1  # the larger second


def test_the_mid_sagittal_slice_has_most_canal_else_most_disc_else_the_middle():
    from lumbar.tasks.levels import mid_sagittal_index

    classes = np.zeros((9, 20, 30), np.uint8)
    assert mid_sagittal_index(classes) == 4
    classes[6, 5, 5:9] = Structure.DISC
    assert mid_sagittal_index(classes) == 6
    classes[7, 10, 10] = Structure.CANAL  # one canal voxel outweighs any disc
    assert mid_sagittal_index(classes) == 7


def test_components_near_reach_15_mm_either_side_of_the_mid_slice():
    from lumbar.tasks.levels import _components_near

    components = np.zeros((12, 4, 4), np.int32)
    for k in range(12):
        components[k, 0, 0] = k + 1  # component k + 1 lies on slice k only
    assert list(_components_near(components, 2, (4.0, 1.0, 1.0))) == [0, 1, 2, 3, 4, 5, 6]  # slices 0..5
    assert list(_components_near(components, 7, (4.0, 1.0, 1.0))) == [0, 5, 6, 7, 8, 9, 10, 11]  # slices 4..10


def _column_slab(only_on: int) -> np.ndarray:
    """Eleven slices of 4 mm; the column on slices 2..8 (mid 5), its fourth disc only on slice ``only_on``."""
    column = _column(7)[0]
    classes = np.zeros((11, *column.shape), np.uint8)
    without = column.copy()
    height = column.shape[0]
    without[height - 10 - 3 * 28 - 8 : height - 10 - 3 * 28, 30:70] = 0
    for k in range(2, 9):
        classes[k] = without
    classes[5, 5 : height - 5, 75:90] = Structure.CANAL  # most canal on the mid slice
    classes[5, 6, 76] = Structure.CANAL
    classes[only_on] = column if only_on in range(2, 9) else np.where(column == Structure.DISC, column, 0)
    return classes


@pytest.mark.parametrize("only_on, found", [(8, True), (9, False)])
def test_discs_are_found_on_the_slices_within_12_mm_of_the_mid_slice(only_on, found):
    from lumbar.tasks.levels import find_discs

    classes = _column_slab(only_on)
    assert len(find_discs(classes, (4.0, 1.0, 1.0), 5)) == (6 if found else 5)


# --- two bodies between two discs


def _without_disc(classes: np.ndarray, k: int) -> np.ndarray:
    """``_column``'s classes with its disc ``k`` (from the bottom) left out: two bodies meet across a gap."""
    out = classes.copy()
    height = out.shape[1]
    bottom = height - 10 - k * 28
    out[0, bottom - 28 : bottom - 20, 30:70] = 0
    return out


TWO_BODIES = (
    "two vertebral bodies between discs 1 and 2 counted from the bottom: a disc between them was not found, so L5 and "
    "every name above may be one level off"
)


def test_two_bodies_between_two_discs_are_flagged_on_any_pixel_grid():
    """Three discs, the middle one missed: two discs left give no spacing to count it from, so the two bodies between
    them are what says a disc is missing."""
    from lumbar.tasks.levels import label_levels

    classes = _without_disc(_column(4), 1)
    assert TWO_BODIES in label_levels(classes, (4.0, 1.0, 1.0)).flags
    assert TWO_BODIES in label_levels(_regrid(classes, 2, 2), (4.0, 0.5, 2.0)).flags


COUNTED = (
    "unexpected gap of 56 mm above disc 3 from the bottom (the gaps beside it: 28 mm): counted as 1 missed disc, so "
    "L2 and every name above rest on that count; check it on the image"
)


def _joined(classes: np.ndarray, k: int) -> np.ndarray:
    """``_column``'s classes with its disc ``k`` (from the bottom) read as bone: one tall body in its place."""
    out = classes.copy()
    bottom = out.shape[1] - 10 - k * 28
    out[0, bottom - 28 : bottom - 20, 30:70] = Structure.VERTEBRA
    return out


@pytest.mark.parametrize("missing", [_without_disc, _joined])
@pytest.mark.parametrize("grid", [((1, 1), (4.0, 1.0, 1.0)), ((2, 2), (4.0, 0.5, 2.0))])
def test_a_disc_missed_inside_a_regular_chain_is_counted_and_every_vertebra_keeps_its_name(missing, grid):
    """Seven bodies 28 mm apart, the network missing L2/L3 (as background between two bodies, or as bone joining
    them): the 56 mm gap is twice the gaps beside it, so one disc is counted there. Every vertebra voxel keeps the
    name the whole column gives it, the discs found keep theirs, and the review says the names rest on the count."""
    from lumbar.tasks.levels import label_levels

    (rows, cols), spacing = grid
    whole = label_levels(_regrid(_column(7), rows, cols), spacing)
    missed = label_levels(_regrid(missing(_column(7), 3), rows, cols), spacing)
    assert [lv.name for lv in missed.vertebrae] == [lv.name for lv in whole.vertebrae]
    assert [lv.name for lv in missed.discs] == [lv.name for lv in whole.discs if lv.name != "L2/L3"]
    bone = is_vertebra(whole.instances)
    assert np.array_equal(missed.instances[bone], whole.instances[bone])
    assert COUNTED in missed.flags
    assert not any(f.startswith("two vertebral bodies") for f in missed.flags)


def test_a_level_without_bone_does_not_stop_the_two_bodies_check_above_it_when_no_disc_is_counted(monkeypatch):
    """L5 left without bone of its own (3 mm of it, joined to L4) and a disc missing higher up, with the count of
    missed discs turned off: both are flagged."""
    from lumbar.tasks import levels

    monkeypatch.setattr(levels, "missed_discs", lambda discs: [0] * (len(discs) - 1))
    classes = _without_disc(_column(7), 4)
    bottom = classes.shape[1] - 10 - 28
    classes[0, bottom - 20 : bottom - 3, 30:70] = 0
    classes[0, bottom - 28 : bottom - 3, 30:33] = Structure.VERTEBRA
    flags = levels.label_levels(classes, (4.0, 1.0, 1.0)).flags
    assert "no vertebra found between discs 1 and 2 counted from the bottom: a level may be missing" in flags
    assert any(f.startswith("two vertebral bodies between discs 4 and 5") for f in flags), flags


def test_a_chip_of_bone_beside_a_body_is_not_a_second_body():
    """A 3 x 3 mm chip in front of L4's body, apart from it: 9 mm² against the body's 800, below 35% of a typical
    body."""
    from lumbar.tasks.levels import label_levels

    classes = _column(7)
    bottom = classes.shape[1] - 10 - 2 * 28
    classes[0, bottom - 12 : bottom - 9, 25:28] = Structure.VERTEBRA
    assert not any(f.startswith("two vertebral bodies") for f in label_levels(classes, (4.0, 1.0, 1.0)).flags)


# --- a highest disc cut by the image's top edge


@pytest.mark.parametrize("rows_in_view, counted", [(3, False), (4, True), (8, True)])
def test_a_highest_disc_mostly_outside_the_image_is_not_counted(rows_in_view, counted):
    """Six bodies, five discs 8 mm tall; the image starts inside the highest disc, leaving ``rows_in_view`` of its
    8 rows: fewer than half (3 of 8: 120 of the median 320 mm²) and the disc is not counted, its sliver left unnamed
    with the bone beyond it; half (4 of 8) or more and it is counted as before."""
    from lumbar.tasks.levels import label_levels

    classes = _column(6)[:, 46 - rows_in_view :]  # the highest disc spans rows 38-45: 8 leaves it whole, at the edge
    result = label_levels(classes, (4.0, 1.0, 1.0))
    names = [lv.name for lv in result.discs]
    assert names == ["L5/S1", "L4/L5", "L3/L4", "L2/L3", *(["L1/L2"] if counted else [])]
    sliver = classes[0, :rows_in_view] == Structure.DISC
    assert bool((result.instances[0, :rows_in_view][sliver] > 0).all()) is counted
    assert [lv.name for lv in result.vertebrae] == ["S1", "L5", "L4", "L3", "L2"]  # the body below it, named
    below = result.instances[0, rows_in_view + 10, 40]
    assert below == VERTEBRA_IDS["L2"]


def test_a_small_highest_disc_inside_the_image_is_counted():
    """The same sliver 3 mm tall but with a body above it, inside the image: a narrow disc, counted."""
    from lumbar.tasks.levels import label_levels

    classes = _column(6)
    classes[0, 41:46, 30:70] = Structure.VERTEBRA  # the highest disc keeps 3 of its 8 rows (38-40)
    result = label_levels(classes, (4.0, 1.0, 1.0))
    assert [lv.name for lv in result.discs][-1] == "L1/L2"


@pytest.mark.parametrize("spacing", [(4.0, 1.0, 1.0), (4.0, 0.5, 2.0)])
@pytest.mark.parametrize("rows_in_view, named", [(3, 0), (4, VERTEBRA_IDS["L1"])])
def test_bone_beyond_a_disc_mostly_outside_the_image_is_unnamed(rows_in_view, named, spacing):
    """A corner of the body above the highest disc shows beside it, in its first row: unnamed beyond a sliver of a
    disc (as bone outside the image would be), the body above (L1) where the disc is counted."""
    from lumbar.tasks.levels import label_levels

    classes = _column(6)[:, 46 - rows_in_view :].copy()
    classes[0, 0, 24:30] = Structure.VERTEBRA
    classes[0, 0:3, 28:30] = Structure.VERTEBRA  # joined to nothing else
    result = label_levels(classes, spacing)
    assert result.instances[0, 0, 25] == named


def test_the_cut_disc_rule_holds_from_three_discs_and_only_at_the_edge():
    """Four bodies, three discs: the highest is a 3-row sliver at the top edge (not counted); moved one row down
    from the edge (a row of background above it) the same sliver is a narrow disc inside the image (counted)."""
    from lumbar.tasks.levels import label_levels

    at_edge = _column(4)[:, 43:]  # the highest disc spans rows 38-45 of this column: 3 rows left
    assert [lv.name for lv in label_levels(at_edge, (4.0, 1.0, 1.0)).discs] == ["L5/S1", "L4/L5"]
    inside = np.concatenate([np.zeros((1, 1, at_edge.shape[2]), np.uint8), at_edge], axis=1)
    assert [lv.name for lv in label_levels(inside, (4.0, 1.0, 1.0)).discs] == ["L5/S1", "L4/L5", "L3/L4"]


def test_a_point_on_the_images_first_column_is_looked_at():
    """A blob whose front edge is column 6: the points 1-6 mm in front are columns 5 to 0, and bone on columns 0-2
    is half of them (column 0 counted), so with bone behind it the blob lies inside a body."""
    from lumbar.tasks.levels import _disc_from_voxels, _inside_a_body

    disc = _disc_from_voxels(_rectangle(range(49, 52), range(6, 26)), ONE_MM)
    bone = np.zeros((100, 120), bool)
    bone[44:57, 0:3] = True
    bone[44:57, 26:40] = True
    assert _inside_a_body(disc, bone, ONE_MM)


# --- bone above the highest disc found: how far it goes, and whether it asks for a review

UNNAMED_SPACING = (3.0, 0.5, 2.0)  # anisotropic pixels: half a millimetre down a row, two across


def _chain_40_mm_apart() -> list:
    """Four flat discs 40 mm apart (rows 640, 560, 480, 400 at 0.5 mm: 320 ... 200 mm), the top one at 200 mm."""
    return [
        _disc_from_voxels(_rectangle(range(r - 4, r + 5), range(20, 40), slice_=1), UNNAMED_SPACING)
        for r in (640, 560, 480, 400)
    ]


def _bone_above(from_mm: float, to_mm: float, cols: range = range(20, 30), slice_: int = 1) -> np.ndarray:
    """Voxels (slice, row, col) of bone from ``from_mm`` to ``to_mm`` above the top disc's centre (200 mm)."""
    rows = range(round((200 - to_mm) / 0.5), round((200 - from_mm) / 0.5) + 1)
    return _rectangle(rows, cols, slice_)


def _unnamed(voxels: np.ndarray, region: np.ndarray | None = None, mid: int = 1) -> list[str]:
    region = np.zeros(len(voxels), int) if region is None else region
    return _unnamed_above_flags(voxels, region, mid, _chain_40_mm_apart(), UNNAMED_SPACING, "T12")


@pytest.mark.parametrize(
    ("to_mm", "reach", "what"),
    [
        (79.0, 39, "most of another vertebra"),  # 70-79 mm above the disc: past the next level's 40 mm by 39
        (100.0, 60, "at least 1 more vertebra"),
        (125.0, 85, "at least 2 more vertebrae"),
    ],
)
def test_bone_above_the_top_vertebra_is_flagged_with_how_far_it_reaches(to_mm, reach, what):
    """The top vertebra ends a level (40 mm) above the highest disc; bone from 70 mm up (30 mm past it: three
    quarters of a level) to ``to_mm`` is a body's worth (10 columns of 2 mm by 9+ mm: at least 0.1 of a level
    squared, 160 mm²), so it asks for a review that says how far it reaches past the top vertebra."""
    (flag,) = _unnamed(_bone_above(70.0, to_mm))
    assert flag == (
        f"bone goes on {reach} mm above T12, {what}, whose discs were not found: left unnamed (names below are "
        "counted from the sacrum; count the levels above on the image)"
    )


def test_bone_above_the_top_vertebra_counts_in_square_millimetres():
    """From 70 to 78 mm up: 17 rows x 10 columns of 1 mm² = 170 mm², above the 160 needed; from 70 to 77.5 mm
    exactly 160 (both bounds hold: three quarters of a level and 0.1 of its square); 7 columns (119 mm²) are below
    it, and so is the same bone short of three quarters of a level (up to 69 mm)."""
    assert len(_unnamed(_bone_above(70.0, 78.0))) == 1
    assert len(_unnamed(_bone_above(70.0, 77.5))) == 1  # 16 rows from exactly three quarters up: exactly 160 mm²
    assert _unnamed(_bone_above(70.0, 78.0, cols=range(20, 27))) == []
    assert _unnamed(_bone_above(61.0, 69.0, cols=range(20, 40))) == []


def test_only_bone_of_the_column_on_the_mid_sagittal_slice_counts_above_the_top_vertebra():
    """Bone on another slice, or already left out of the column (region -1), asks for nothing; bone of the
    region below the lowest disc (0) is the column's, wherever its name came from."""
    voxels = _bone_above(70.0, 100.0)
    assert _unnamed(voxels, mid=2) == []
    assert _unnamed(voxels, region=np.full(len(voxels), -1)) == []
    assert len(_unnamed(voxels, region=np.zeros(len(voxels), int))) == 1


def test_a_small_blob_steers_the_column_less_than_a_whole_disc():
    """Five whole discs (7 x 7 mm) on column 50 and a 1 mm blob at column 80: fitted with each disc weighted by the
    root of its area, the column stays near 50 at the middle disc (0.26 mm off); counted like the others, the blob
    would pull it 8.2 mm away."""
    from lumbar.tasks.levels import _off_chain_mm

    chain = [_square(r, 50, 7) for r in (300, 260, 220, 180)] + [_square(140, 80, 1), _square(100, 50, 7)]
    assert _off_chain_mm(chain, 2) == pytest.approx(0.256, abs=0.01)


def test_an_end_disc_with_fewer_than_two_whole_discs_beside_it_takes_the_line_through_any_two():
    """Above the lowest disc (column 60) lie one whole disc and a blob, both on column 50: no two whole discs to
    draw the line through, so the line runs through the two there are, 10 mm from the disc."""
    from lumbar.tasks.levels import _off_chain_mm

    chain = [_square(300, 60, 7), _square(260, 50, 7), _square(220, 50, 1)]
    assert _off_chain_mm(chain, 0) == pytest.approx(10.0)


def test_an_end_discs_line_runs_through_two_whole_discs_past_a_nearer_blob():
    """A blob off the column lies nearest the lowest disc; the two whole discs above it are in line with the disc,
    so the disc is on the column (the line through the blob and one whole disc would put it 27 mm off)."""
    from lumbar.tasks.levels import _off_chain_mm

    chain = [_square(300, 50, 7), _square(280, 70, 1), _square(240, 50, 7), _square(200, 50, 7)]
    assert _off_chain_mm(chain, 0) == pytest.approx(0.0, abs=1e-9)


def test_a_disc_of_exactly_half_the_others_median_area_is_whole():
    from lumbar.tasks.levels import _is_whole

    chain = [_square(300, 50, 5), _square(260, 50, 5), _square(220, 50, 5)]
    chain[0].area_mm2 = 12.5  # half of 25
    assert _is_whole(chain, 0)
    chain[0].area_mm2 = 12.4
    assert not _is_whole(chain, 0)


def test_a_tilted_discs_length_is_measured_across_its_own_axis_on_anisotropic_pixels():
    """21 voxels on a diagonal (rows 10-30, columns 10-30) of 1 x 2 mm pixels: a line 20 x sqrt(1 + 2²) mm long,
    whose axis is perpendicular to it."""
    voxels = np.array([[0, 10 + k, 10 + k] for k in range(21)])
    disc = _disc_from_voxels(voxels, (3.0, 1.0, 2.0))
    assert _disc_length_mm(disc, (3.0, 1.0, 2.0)) == pytest.approx(20 * np.sqrt(5))


def test_disc_voxels_go_to_the_nearest_plane_within_12_mm_of_it_and_45_mm_along_it():
    """Two level discs (axis up) at rows 50 and 20, centre column 40, 1 mm pixels. A voxel 5 mm above the lower
    plane and 44 mm along it is the lower disc's (its distance along the plane is 44, not the 45.1 that adding the
    offset back would make); exactly 12 mm from the nearest plane, or exactly 45 mm along it, is no disc's. With no
    disc voxel at all: no voxels, no labels (an empty integer array)."""
    from lumbar.tasks.levels import _assign_discs, _Disc

    up = np.array([-1.0, 0.0])
    discs = [
        _Disc(np.zeros((0, 3), int), np.array([50.0, 40.0]), up, 300.0),
        _Disc(np.zeros((0, 3), int), np.array([20.0, 40.0]), up, 300.0),
    ]
    classes = np.zeros((1, 80, 100), np.int32)
    for row, col in ((45, 84), (38, 40), (62, 40), (50, 85), (50, 84), (21, 41)):
        classes[0, row, col] = Structure.DISC
    idx, which = _assign_discs(classes, (3.0, 1.0, 1.0), discs)
    assigned = {(int(r), int(c)): int(k) for (_, r, c), k in zip(idx, which, strict=True)}
    assert assigned == {(45, 84): 0, (50, 84): 0, (21, 41): 1}  # (38, 40) and (62, 40) 12 mm off; (50, 85) 45 along
    empty_idx, empty_which = _assign_discs(np.zeros((1, 80, 100), np.int32), (3.0, 1.0, 1.0), discs)
    assert empty_idx.shape == (0, 3) and empty_which.shape == (0,) and empty_which.dtype.kind == "i"


def test_bone_beyond_the_top_vertebra_lies_over_one_spacing_above_the_highest_disc():
    """Discs at rows 100, 70 and 40 (axis up, 30 mm apart; 1 mm pixels): the top vertebra ends one spacing above the
    highest disc, at row 10. A point exactly there (30 mm) is not beyond, 31 mm is. A piece with exactly a fifth of
    its points beyond stays whole; with more than a fifth, its points beyond are cut off. Two discs are enough to
    know the spacing; one is not."""
    from lumbar.tasks.levels import _beyond_top_vertebra, _Disc

    up = np.array([-1.0, 0.0])
    discs = [_Disc(np.zeros((0, 3), int), np.array([row, 40.0]), up, 300.0) for row in (100.0, 70.0, 40.0)]
    points = np.array([[10.0, 40.0], [9.0, 40.0], [9.0, 60.0], [20.0, 60.0], [21.0, 60.0], [22.0, 60.0], [23.0, 60.0]])
    pieces = np.array([0, 1, 2, 2, 2, 2, 2])  # piece 2: one of its five points beyond (a fifth)
    assert _beyond_top_vertebra(points, discs, pieces).tolist() == [False, True, False, False, False, False, False]
    four = np.array([0, 1, 2, 2, 2, 2, 3])  # piece 2 now one of four beyond: cut
    assert _beyond_top_vertebra(points, discs, four).tolist() == [False, True, True, False, False, False, False]
    assert _beyond_top_vertebra(points, discs[1:], pieces)[1]  # two discs: the spacing is known
    assert not _beyond_top_vertebra(points, discs[2:], pieces).any()  # one disc: nothing is beyond


def test_a_second_body_counts_up_to_3_mm_behind_the_discs_back_edges():
    """Discs at rows 100, 70 and 40 over columns 30-70 (1 mm pixels: centre column 50, back edge 20 mm behind it).
    Between the lowest two, L5's body in columns 48-49 (42 mm²) and a second piece in column 73 (21 mm², half of
    it: more than the 35% of a typical body that makes a body): 23 mm behind the lower disc's centre, exactly 3 mm
    past both back edges, it is in line with the discs and the review says two bodies lie there. In column 74 it
    is an arch, not a body. Which disc is below is read from the chain: moving the top disc 30 mm back changes
    nothing."""
    from lumbar.tasks.levels import _two_bodies_flags

    def chain(top_cols: range = range(30, 71)) -> list:
        rows = ((99, 102, range(30, 71)), (69, 72, range(30, 71)), (39, 42, top_cols))
        return [_disc_from_voxels(_rectangle(range(a, b), cols), ONE_MM) for a, b, cols in rows]

    mid = np.zeros((120, 120), np.int32)
    mid[75:96, 48:50] = VERTEBRA_IDS["L5"]
    second = mid.copy()
    second[75:96, 73] = VERTEBRA_IDS["L5"]
    flag = (
        "two vertebral bodies between discs 1 and 2 counted from the bottom: a disc between them was not found, so "
        "L5 and every name above may be one level off"
    )
    assert _two_bodies_flags(mid, chain(), ONE_MM) == []
    assert _two_bodies_flags(second, chain(), ONE_MM) == [flag]
    arch = mid.copy()
    arch[75:96, 74] = VERTEBRA_IDS["L5"]
    assert _two_bodies_flags(arch, chain(), ONE_MM) == []
    arch_far = mid.copy()
    arch_far[75:96, 80] = VERTEBRA_IDS["L5"]
    assert _two_bodies_flags(arch_far, chain(range(60, 101)), ONE_MM) == []
    # exactly 35% of the typical body is a body: 14 mm² beside 40
    exact = np.zeros((120, 120), np.int32)
    exact[75:95, 48:50] = VERTEBRA_IDS["L5"]
    exact[75:89, 73] = VERTEBRA_IDS["L5"]
    assert _two_bodies_flags(exact, chain(), ONE_MM) == [flag]
    exact[88, 73] = 0  # 13 mm²
    assert _two_bodies_flags(exact, chain(), ONE_MM) == []


def test_the_thecal_sac_keeps_every_piece_at_least_a_quarter_of_the_largest():
    """Three pieces of canal, 40, 9 and 10 pixels (top to bottom): the largest, and the last at exactly a quarter of
    it, are the sac; the 9-pixel blob between them is not. One piece alone is the sac as it is."""
    from lumbar.tasks.levels import _thecal_sac

    canal = np.zeros((40, 10), bool)
    canal[0:20, 2:4] = True  # 40
    canal[25:34, 2] = True  # 9
    canal[36:40, 2:4] = True  # 8 ...
    canal[35, 2:4] = True  # ... and 2 more: 10
    kept = _thecal_sac(canal)
    assert kept[0:20, 2:4].all() and kept[35:40, 2:4].all() and not kept[25:34].any()
    assert int(kept.sum()) == 50
    assert np.array_equal(_thecal_sac(canal[0:20]), canal[0:20])


def test_a_small_lowest_disc_and_bone_above_the_top_vertebra_are_both_said():
    """Nine bodies 28 mm apart; the lowest disc outlined over half its depth (a sacral remnant, not counted) and the
    two highest discs missed (bone joins the bodies there): the review gives both reasons, neither replaces the
    other."""
    from lumbar.tasks.levels import label_levels

    classes = _column(9)
    bottom = classes.shape[1] - 10
    classes[0, bottom - 28 : bottom - 20, 50:70] = 0
    for k in (6, 7):
        classes[0, bottom - k * 28 - 28 : bottom - k * 28 - 20, 30:70] = Structure.VERTEBRA
    flags = label_levels(classes, (4.0, 1.0, 1.0)).flags
    assert len(flags) == 2
    assert flags[0].startswith("small lowest disc, not counted")
    assert flags[1].startswith("bone goes on 52 mm above L1, at least 1 more vertebra, whose discs were not found")


def test_a_piece_of_bone_four_fifths_on_one_side_of_a_plane_takes_that_sides_name_whole():
    """A strip of bone in front of the column, ten rows tall across the plane of the disc above L4 (its centre row
    is a half row above the strip's ninth): eight rows above the plane, two below: exactly 80% on one side, so the
    whole strip is L3's. Nine above and one below: L3's too; six and four: cut at the plane."""
    from lumbar.tasks.levels import label_levels

    classes = _column(7)
    bottom = classes.shape[1] - 10 - 2 * 28  # L4 sits in rows bottom-20 .. bottom-1; its upper disc 8 rows above
    plane = bottom - 24.5  # the disc L3/L4's centre row
    for above, below in ((8, 2), (9, 1), (6, 4)):
        strip = classes.copy()
        top = int(plane + 0.5) - above
        strip[0, top : top + above + below, 24] = Structure.VERTEBRA
        instances = label_levels(strip, (4.0, 1.0, 1.0)).instances[0]
        names = {int(v) for v in instances[top : top + above + below, 24]}
        if above >= 8:
            assert names == {VERTEBRA_IDS["L3"]}
        else:
            assert names == {VERTEBRA_IDS["L3"], VERTEBRA_IDS["L4"]}
