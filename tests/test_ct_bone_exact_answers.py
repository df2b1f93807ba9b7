"""``lumbar.tasks.ct_bone`` on values and volumes built by hand, whose every answer is worked out in the test: the
screen at Pickhardt's thresholds, the calibration check at each of its limits, the bone window, the midline, the
marrow filled or not, vertebrae redrawn from bone, the trabecular region of a box-shaped body counted voxel by
voxel, and metal near the spine bounded left to right and front to back."""

import numpy as np
import pytest

from lumbar.labels import CANAL_LABEL, VERTEBRA_IDS, disc_label
from lumbar.tasks import ct_bone
from lumbar.tasks.levels import Level, LevelLabelling

L1, L2 = VERTEBRA_IDS["L1"], VERTEBRA_IDS["L2"]
CITATION = (
    "Pickhardt PJ et al. Opportunistic screening for osteoporosis using abdominal computed tomography scans obtained "
    "for other indications. Ann Intern Med 2013;158(8):588-595: L1 trabecular attenuation <= 110 HU more than 90% "
    "specific, <= 160 HU 90% sensitive for osteoporosis by DXA"
)
REGION = (
    "vertebral body within 10 mm of its own mid-sagittal plane (the middle of its voxels left to right), 4 mm (plus "
    "half the largest voxel side) inside its outline (no cortex or endplate), the posterior 25% of its depth left out "
    "(basivertebral vein), and any voxel above 400 HU (an endplate, cortex or a bone island) or as far below the "
    "region's median as that lies above it (noise cut evenly on both sides; a median above 400 HU, sclerotic bone, "
    "keeps the cap alone)"
)


# --- the screen: Pickhardt's L1 thresholds, 110 and 160 HU, each on both sides


@pytest.mark.parametrize(
    ("mean_hu", "category", "why"),
    [
        (-20.0, "osteoporosis likely", "at or below 110 HU (over 90% specific)"),
        (110.0, "osteoporosis likely", "at or below 110 HU (over 90% specific)"),
        # decided on the tenth shown (found in review: 110.3 HU read "110 HU, between 110 and 160 HU")
        (110.04, "osteoporosis likely", "at or below 110 HU (over 90% specific)"),
        (110.06, "indeterminate", "between 110 and 160 HU"),
        (160.0, "indeterminate", "between 110 and 160 HU"),
        (160.04, "indeterminate", "between 110 and 160 HU"),
        (160.06, "osteoporosis unlikely", "above 160 HU (90% sensitive)"),
        (412.0, "osteoporosis unlikely", "above 160 HU (90% sensitive)"),
    ],
)
def test_the_screen_at_and_either_side_of_110_and_160_hu(mean_hu, category, why):
    result = ct_bone.screen("L1", float(mean_hu), level_confirmed=True, contrast="none")
    assert result.category == category
    shown = f"{round(float(mean_hu), 1):.1f}"
    assert result.mean_hu == float(shown)
    assert result.text == (
        f"Opportunistic screening, not a diagnosis: L1 trabecular attenuation {shown} HU, {why}: {category}. "
        "DXA confirms."
    )


def test_a_screen_of_an_unconfirmed_level_says_the_vertebra_may_not_be_that_level_and_keeps_every_field():
    result = ct_bone.screen("L1", 123.456, level_confirmed=False, contrast="intravenous contrast")
    assert result.text == (
        "Opportunistic screening, not a diagnosis: the vertebra named L1 (its name is not confirmed: see the "
        "review) trabecular attenuation 123.5 HU, between 110 and 160 HU: indeterminate. DXA confirms."
    )
    assert result.level == "L1" and result.level_confirmed is False
    assert result.mean_hu == 123.5  # rounded to a tenth
    assert result.category == "indeterminate"
    assert result.thresholds == CITATION and result.region == REGION
    assert result.contrast == "intravenous contrast"
    confirmed = ct_bone.screen("L1", 99.94, level_confirmed=True, contrast="none")
    assert confirmed.level_confirmed is True and confirmed.mean_hu == 99.9 and confirmed.contrast == "none"


@pytest.mark.parametrize("mean_hu", [float("nan"), float("inf"), float("-inf")])
def test_no_screen_from_an_attenuation_that_is_not_a_number(mean_hu):
    with pytest.raises(ValueError) as refused:
        ct_bone.screen("L1", mean_hu, level_confirmed=True, contrast="none")
    assert str(refused.value) == f"no screen from an attenuation of {mean_hu}"


# --- the calibration check: one branch at a time, at its limits


def _ct(low: float, high: float, body: float = 40.0) -> np.ndarray:
    """1000 values: 10 at ``low``, 2 at ``high``, the rest ``body``. Their 0.5th percentile (rank 4.995 of 0..999)
    lies between two ``low`` values and their 99.9th (rank 998.001) between the two ``high`` ones: exactly ``low``
    and ``high``."""
    return np.concatenate([np.full(10, low), np.full(988, body), np.full(2, high)]).astype(np.float32)


def test_a_sound_ct_passes_the_calibration_check_at_every_limit():
    assert ct_bone.calibration_problem(_ct(-1000.0, 1500.0)) is None
    assert ct_bone.calibration_problem(_ct(-50.0, 1500.0)) is None  # fat at exactly -50 HU is still below "none"
    assert ct_bone.calibration_problem(_ct(-1000.0, 300.0)) is None  # bone at exactly 300 HU
    assert ct_bone.calibration_problem(_ct(-1000.0, 4000.0)) is None  # exactly 4000 HU
    assert ct_bone.calibration_problem(_ct(-1000.0, 1500.0).astype(np.int16)) is None  # integers are finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_ct_with_voxels_that_are_not_numbers_is_refused(bad):
    hu = _ct(-1000.0, 1500.0)
    hu[500] = bad
    assert ct_bone.calibration_problem(hu) == "values that are not finite numbers (NaN or infinite voxels)"


def test_a_ct_without_fat_or_air_is_not_in_hounsfield_units():
    assert ct_bone.calibration_problem(_ct(-49.0, 1500.0)) == (
        "values -49 to 1.5e+03: no fat or air (below -50), so not in Hounsfield units (an 8-bit or windowed export, "
        "or a DICOM without its RescaleSlope/RescaleIntercept)"
    )
    # 5 values at -1000 out of 1000: the 0.5th percentile (rank 4.995) lies 0.995 of the way from -1000 to 40
    fewer = np.concatenate([np.full(5, -1000.0), np.full(993, 40.0), np.full(2, 1500.0)])
    assert ct_bone.calibration_problem(fewer).startswith("values 34.8 to 1.5e+03: no fat or air")


def test_a_ct_without_bone_is_refused():
    assert ct_bone.calibration_problem(_ct(-1000.0, 299.0)) == (
        "values -1e+03 to 299: nothing as dense as bone (300 HU or more): no spine in view, or not a CT"
    )


def test_a_ct_above_4000_is_not_in_hounsfield_units():
    assert ct_bone.calibration_problem(_ct(-1000.0, 4000.5)) == (
        "values -1e+03 to 4e+03: above 4000, not Hounsfield units (a rescale missing or wrong)"
    )


def test_a_large_ct_is_checked_on_every_second_voxel_of_a_million():
    """A million voxels: every second one is sampled (500 000), here all the air; the bone between goes unseen."""
    hu = np.tile(np.array([-1000.0, 1000.0], np.float32), 500_000)
    assert ct_bone.calibration_problem(hu) == (
        "values -1e+03 to -1e+03: nothing as dense as bone (300 HU or more): no spine in view, or not a CT"
    )
    assert ct_bone.calibration_problem(hu[:999_998]) is None  # under a million: every voxel, bone included


# --- the bone window, the midline, the band of slices


def test_the_bone_window_clips_to_minus_250_and_1250_hu_as_float32():
    out = ct_bone.windowed(np.array([-1000, -250, 0, 1250, 3000], np.int16))
    assert out.dtype == np.float32
    assert out.tolist() == [-250.0, -250.0, 0.0, 1250.0, 1250.0]


def _slices_of_bone(counts: list[int], hu: float = 500.0) -> np.ndarray:
    """Sagittal slices (4 x 4 pixels each), slice k holding ``counts[k]`` pixels of ``hu``."""
    volume = np.zeros((len(counts), 4, 4))
    for k, count in enumerate(counts):
        volume[k].flat[:count] = hu
    return volume


@pytest.mark.parametrize(
    ("counts", "mid"),
    [
        ([0, 1, 0, 3, 0, 0, 4], 3),  # cumulative 0 1 1 4 4 4 8: half (4) first reached on slice 3
        ([2, 1, 1, 0, 6], 4),  # cumulative 2 3 4 4 10: half (5) first reached on the last slice
        ([0, 0, 5, 0, 0, 0, 0, 0, 0], 2),  # one slice of bone
    ],
)
def test_the_midline_is_the_slice_holding_the_median_of_the_bone(counts, mid):
    assert ct_bone.midline_index(_slices_of_bone(counts)) == mid


def test_bone_for_the_midline_starts_at_exactly_200_hu():
    hu = _slices_of_bone([3, 0, 0, 0, 3])
    hu[0] = np.where(hu[0] > 0, 200.0, 0.0)  # slice 0: 3 pixels of exactly 200 HU count; cumulative 3 3 3 3 6
    assert ct_bone.midline_index(hu) == 0
    hu[0] = np.where(hu[0] > 0, 199.0, 0.0)  # now only slice 4's: cumulative 0 0 0 0 3, half (1.5) on slice 4
    assert ct_bone.midline_index(hu) == 4


@pytest.mark.parametrize(("n", "mid"), [(9, 4), (10, 5), (1, 0)])
def test_without_bone_the_midline_is_the_middle_slice(n, mid):
    assert ct_bone.midline_index(np.full((n, 3, 3), 199.0)) == mid


@pytest.mark.parametrize(
    ("mid", "half_width_mm", "lateral_mm", "n", "expected"),
    [
        (10, 5.0, 1.0, 30, slice(5, 16)),
        (2, 5.0, 1.0, 30, slice(0, 8)),  # clipped at the first slice
        (27, 5.0, 1.0, 30, slice(22, 30)),  # and at the last
        (5, 5.0, 1.0, 30, slice(0, 11)),  # reaching exactly slice 0
        (10, 7.0, 2.0, 30, slice(6, 15)),  # 3.5 slices round to 4 (to even)
        (10, 5.0, 2.0, 30, slice(8, 13)),  # 2.5 slices round to 2 (to even)
        (10, 10.0, 3.0, 30, slice(7, 14)),  # 3.33 slices: 3
    ],
)
def test_the_band_of_slices_either_side_of_the_midline(mid, half_width_mm, lateral_mm, n, expected):
    assert ct_bone.band(mid, half_width_mm, lateral_mm, n) == expected


# --- marrow: holes enclosed by cortex, filled when small enough and clear of the canal


def _ring(image: np.ndarray, top: int, left: int, inner_rows: int, inner_cols: int) -> tuple[slice, slice]:
    """A one-pixel ring of bone around an ``inner_rows`` x ``inner_cols`` hole; the hole's slices."""
    image[top : top + inner_rows + 2, left : left + inner_cols + 2] = True
    hole = slice(top + 1, top + 1 + inner_rows), slice(left + 1, left + 1 + inner_cols)
    image[hole] = False
    return hole


def test_marrow_up_to_2500_mm2_is_filled_and_a_larger_hole_is_not():
    bone = np.zeros((60, 130), bool)
    hole = _ring(bone, 2, 2, 50, 50)  # 2500 pixels
    filled = ct_bone._fill_marrow(bone, 1.0, np.zeros_like(bone))
    assert filled[hole].all() and filled.sum() == bone.sum() + 2500
    assert np.array_equal(ct_bone._fill_marrow(bone, 1.0004, np.zeros_like(bone)), bone)  # 2501 mm²
    small = _ring(bone, 2, 60, 10, 10)  # 100 pixels of 25 mm²: 2500 mm², filled; 1.0004 mm² pixels: 40 mm²
    filled = ct_bone._fill_marrow(bone, 25.0, np.zeros_like(bone))
    assert filled[small].all() and not filled[hole].any()  # 2500 pixels of 25 mm² are the chest
    filled = ct_bone._fill_marrow(bone, 1.0004, np.zeros_like(bone))
    assert filled[small].all() and not filled[hole].any()


def test_marrow_holding_canal_is_not_filled_and_each_hole_is_judged_on_its_own():
    bone = np.zeros((20, 60), bool)
    first = _ring(bone, 1, 1, 5, 5)
    second = _ring(bone, 1, 10, 5, 5)
    third = _ring(bone, 1, 20, 5, 5)
    canal = np.zeros_like(bone)
    canal[4, 13] = True  # one pixel of canal in the second hole
    canal[1, 1] = True  # and one on the first ring's bone, outside any hole
    filled = ct_bone._fill_marrow(bone, 1.0, canal)
    assert filled[first].all() and filled[third].all()
    assert not filled[second].any()
    assert filled.sum() == bone.sum() + 50
    assert not filled[10:].any()  # the background is no hole


def test_bone_without_holes_comes_back_as_it_was():
    bone = np.zeros((6, 6), bool)
    bone[2:4, 1:5] = True
    assert np.array_equal(ct_bone._fill_marrow(bone, 1.0, np.zeros_like(bone)), bone)


def test_bone_mask_fills_marrow_on_sagittal_sections_and_on_axial_ones_with_their_own_pixel_areas():
    """Voxels 2 (lateral) x 3 (rows) x 5 (columns) mm: a sagittal pixel is 15 mm², an axial one (slices x columns)
    10 mm². Two tubes run through every slice, so their holes are enclosed only on sagittal sections: 150 pixels
    (2250 mm², marrow) and 170 pixels (2550 mm², not). Two more run through every row, so their holes are enclosed
    only on axial sections: 200 pixels (2000 mm², marrow) and 260 (2600 mm², not)."""
    hu = np.full((24, 30, 75), 40.0)
    bone = np.zeros(hu.shape, bool)
    for k in range(24):
        marrow = _ring(bone[k], 1, 1, 10, 15)
        chest = _ring(bone[k], 15, 1, 10, 17)
    for r in range(30):
        axial = _ring(bone[:, r, :], 1, 22, 10, 20)
        wide = _ring(bone[:, r, :], 1, 45, 10, 26)
    hu[bone] = 100.0  # bone starts at exactly 100 HU
    hu[5][bone[5]] = 250.0  # and each piece holds cortex (on slice 5, which all four cross)
    hu[:, 20, 22] = 99.0  # not bone: the axial ring's wall opened on row 20
    out = ct_bone.bone_mask(hu, (2.0, 3.0, 5.0), np.zeros(hu.shape, bool))
    expected = bone.copy()
    expected[:, 20, 22] = False
    expected[(slice(None), *marrow)] = True
    for r in range(30):
        if r != 20:  # the axial ring broken on row 20 encloses nothing there
            expected[(axial[0], r, axial[1])] = True
    assert np.array_equal(out, expected)
    assert not out[(slice(None), *chest)].any() and not out[wide[0], :, wide[1]].any()


def test_a_piece_without_cortex_is_no_bone():
    """Two blocks above 100 HU: one with a single voxel of exactly 250 HU (cortex), bone whole; the other at most
    249 HU throughout, as an organ enhanced by contrast, not bone."""
    hu = np.full((3, 10, 20), 40.0)
    hu[:, 2:8, 2:8] = 150.0
    hu[1, 4, 4] = 250.0
    hu[:, 2:8, 11:18] = 249.0
    out = ct_bone.bone_mask(hu, (1.0, 1.0, 1.0), np.zeros(hu.shape, bool))
    expected = np.zeros(hu.shape, bool)
    expected[:, 2:8, 2:8] = True
    assert np.array_equal(out, expected)
    hu[1, 4, 4] = 249.0  # neither holds cortex now: nothing is bone
    assert not ct_bone.bone_mask(hu, (1.0, 1.0, 1.0), np.zeros(hu.shape, bool)).any()


def test_bone_mask_leaves_out_the_canal_and_the_marrow_around_it():
    hu = np.full((5, 12, 12), 40.0)
    hu[:, 1:8, 1:8] = 500.0
    hu[:, 2:7, 2:7] = 40.0  # marrow, enclosed on every sagittal section
    canal = np.zeros(hu.shape, bool)
    canal[2, 4, 4] = True  # canal in the marrow of slice 2
    canal[:, 1, 1] = True  # and over the ring's corner (bone)
    out = ct_bone.bone_mask(hu, (1.0, 1.0, 1.0), canal)
    assert out[[0, 1, 3, 4], 2:7, 2:7].all()
    # slice 2's marrow holds canal: not filled on that sagittal section; but on each axial section (slices x
    # columns) its row lies between slices 1 and 3's marrow, now bone: filled, save on row 4, which holds the canal
    assert out[2, [2, 3, 5, 6], 2:7].all() and not out[2, 4, 2:7].any()
    assert not out[:, 1, 1].any()  # bone under the canal is not bone
    assert out.sum() == 5 * 24 - 5 + 4 * 25 + 4 * 5


# --- vertebrae redrawn from the CT's bone


def test_vertebrae_are_redrawn_from_connected_bone_near_the_network_within_45_mm_of_the_midline():
    """Voxels 10 (lateral) x 1 x 2 mm. 45 mm / 10 mm rounds to 4 slices: slices 1-9 about slice 5, not 0 and 10.
    A block of bone (rows 5-24, columns 5-14) holds the network's L1 (rows 6-11) and L2 (rows 18-23), both in
    columns 6-13, with a disc across it (rows 14-15); the network also drew L1 over soft tissue above the block
    (rows 3-4). A process leaves the block at rows 5-8 to column 25; a separate piece of bone (rows 18-20, column
    16) lies 6 mm from L2."""
    hu = np.full((11, 30, 30), 40.0)
    hu[:, 5:25, 5:15] = 300.0
    hu[:, 5:9, 15:26] = 300.0  # the process
    hu[:, 18:21, 16] = 300.0  # the separate piece
    instances = np.zeros(hu.shape, np.int16)
    instances[:, 6:12, 6:14] = L1
    instances[:, 3:5, 6:14] = L1  # over soft tissue: dropped
    instances[:, 18:24, 6:14] = L2
    instances[:, 14:16, 5:15] = disc_label("L1")
    out = ct_bone.vertebrae_from_bone(hu, instances, (10.0, 1.0, 2.0), mid=5)

    expected = np.zeros(hu.shape, np.int16)
    expected[:, 14:16, 5:15] = disc_label("L1")  # the disc as the network drew it
    band = slice(1, 10)
    expected[band, 5:14, 5:15] = L1  # the block above the disc: every voxel is L1's or beside it
    expected[band, 16:25, 5:15] = L2
    # the process: columns 15 and 16 lie 2 and 3 columns (4 and 6 mm) from L1's column 13 on its rows 6-8; on row 5
    # (a row above L1) column 15 lies sqrt(1 + 4^2) mm away, column 16 sqrt(1 + 6^2) > 6 mm
    expected[band, 6:9, 15:17] = L1
    expected[band, 5, 15] = L1
    assert np.array_equal(out, expected)


def test_the_band_of_slices_redrawn_reaches_the_last_slice_of_a_volume_with_few_rows():
    """9 slices of 5 rows: slices 2-8 lie within 45 mm (4 slices of 10 mm) of slice 6."""
    hu = np.full((9, 5, 12), 40.0)
    hu[:, 1:4, 2:10] = 300.0
    instances = np.zeros(hu.shape, np.int16)
    instances[:, 2, 4:8] = L1
    out = ct_bone.vertebrae_from_bone(hu, instances, (10.0, 1.0, 1.0), mid=6)
    expected = np.zeros(hu.shape, np.int16)
    expected[2:, 1:4, 2:10] = L1
    assert np.array_equal(out, expected)


def test_without_the_networks_vertebrae_near_the_midline_every_vertebra_is_dropped():
    hu = np.full((11, 10, 10), 300.0)
    instances = np.zeros(hu.shape, np.int16)
    instances[0, 2:5, 2:5] = L1  # only on slice 0, outside slices 1-9
    instances[:, 7, 2:5] = CANAL_LABEL
    out = ct_bone.vertebrae_from_bone(hu, instances, (10.0, 1.0, 1.0), mid=5)
    assert not (out == L1).any()
    assert np.array_equal(out == CANAL_LABEL, instances == CANAL_LABEL)


def _below_lowest_disc(seeded: bool = True, row_mm: float = 1.0):
    """Voxels 10 (lateral) x ``row_mm`` x 1 mm, 11 slices about slice 5. The lowest disc (L5/S1's label) fills rows
    10-13, columns 10-19 (its centre at row 11.5, column 14.5 mm, its edges at 10 and 19 mm), facing up. Bone (300
    HU) fills rows 14-100, columns 5-25 on every slice but slice 2, which cuts slice 1's bone off; the network's S1
    marks rows 15-17, columns 12-16 on slices 3-10, and its L5 rows 20-22, columns 19-20."""
    hu = np.full((11, 110, 30), 40.0)
    hu[:, 14:101, 5:26] = 300.0
    hu[2] = 40.0
    instances = np.zeros(hu.shape, np.int16)
    instances[:, 10:14, 10:20] = disc_label("L5")
    if seeded:
        instances[3:, 15:18, 12:17] = VERTEBRA_IDS["S1"]
    instances[:, 20:23, 19:21] = VERTEBRA_IDS["L5"]
    disc = Level("L5/S1", disc_label("L5"), "disc", (11.5 * row_mm, 14.5), 40, (-1.0, 0.0))
    return hu, instances, disc


@pytest.mark.parametrize(("row_mm", "last_row"), [(1.0, 41), (0.5, 70)])
def test_the_vertebra_below_the_lowest_disc_takes_the_bone_joined_to_it_down_to_the_next_discs_place(row_mm, last_row):
    """Its body: rows below the disc's centre by at most the 29.5 mm disc spacing (on 1 mm rows 12-41, on 0.5 mm rows
    12-70, measured in mm; the disc keeps rows 12-13) and columns within 3 mm of the disc's edges (7-22), joined to
    the network's S1 there, on the slices within 45 mm of slice 5 (1-9): slices 3-9, as slice 1's bone is not joined
    to it. The network's L5 keeps its voxels, and the S1 it marked on slice 10 (outside the slices grown) stays."""
    hu, instances, disc = _below_lowest_disc(row_mm=row_mm)
    out = ct_bone.grown_below_lowest_disc(hu, instances, disc, VERTEBRA_IDS["S1"], (10.0, row_mm, 1.0), 5, 29.5)
    expected = instances.copy()
    grown = expected[3:10, 14 : last_row + 1, 7:23]
    grown[grown == 0] = VERTEBRA_IDS["S1"]
    assert np.array_equal(out, expected)


def test_without_the_networks_voxels_below_the_lowest_disc_or_of_the_disc_nothing_is_grown():
    hu, instances, disc = _below_lowest_disc(seeded=False)
    out = ct_bone.grown_below_lowest_disc(hu, instances, disc, VERTEBRA_IDS["S1"], (10.0, 1.0, 1.0), 5, 29.5)
    assert np.array_equal(out, instances)
    hu, instances, disc = _below_lowest_disc()
    instances[instances == disc.label] = 0  # the disc dropped after naming: no edges to measure the body by
    out = ct_bone.grown_below_lowest_disc(hu, instances, disc, VERTEBRA_IDS["S1"], (10.0, 1.0, 1.0), 5, 29.5)
    assert np.array_equal(out, instances)


def test_the_box_looked_at_is_the_masks_bounding_box_grown_within_the_image():
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:12] = True
    assert ct_bone._padded_box(mask, 2, 3) == (slice(3, 11), slice(7, 15))
    assert ct_bone._padded_box(mask, 7, 12) == (slice(0, 16), slice(0, 24))  # not before the first row or column


# --- trabecular density of a box-shaped body


def _box_body(n: int = 41, rows: tuple[int, int] = (10, 40), cols: tuple[int, int] = (5, 45)):
    """A body in every one of ``n`` slices: rows and columns as given, a 2-voxel cortex of 800 HU, marrow of 150
    HU but 400 HU in rows 14-18, a 20 HU vein in the posterior columns
    35-42 at mid-height (rows 22-27), and the canal behind the body."""
    hu = np.full((n, 60, 60), 40.0)
    hu[:, rows[0] : rows[1], cols[0] : cols[1]] = 800.0
    hu[:, rows[0] + 2 : rows[1] - 2, cols[0] + 2 : cols[1] - 2] = 150.0
    hu[:, 14:19, cols[0] + 2 : cols[1] - 2] = 400.0
    hu[:, 22:28, 35 : cols[1] - 2] = 20.0
    instances = np.zeros(hu.shape, np.int16)
    instances[:, rows[0] : rows[1], cols[0] : cols[1]] = L1
    instances[:, 5:45, 48:58] = CANAL_LABEL
    return hu, instances


def test_the_trabecular_region_of_a_box_body_counted_by_hand():
    """Voxels 2 mm lateral, 1 mm in plane: the margin is 4 + 2/2 = 5 mm. The slab (10 + 5 mm = 7.5 slices, which
    rounds to 8) is slices 12-28; within 10 mm (5 slices) of slice 20, slices 15-25: 11 slices. 5 mm inside the
    outline (a voxel 5 mm from the first voxel outside): rows 14-35 (22 rows) and columns 9-40; the posterior
    quarter of the body's 5..44 depth begins after column 44 - 39/4 = 34.25: columns 9-34 (26). 11 x 22 x 26 voxels
    of 2 mm³: 12.584 mL. Rows 14-18 (5 of 22) hold 400 HU, the rest 150: mean 4550/22, median 150."""
    hu, instances = _box_body()
    density = ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20)
    assert density.slices == slice(12, 29)
    expected = np.zeros((17, 60, 60), bool)
    expected[3:14, 14:36, 9:35] = True
    assert np.array_equal(density.region, expected)
    assert density.ml == pytest.approx(11 * 22 * 26 * 2 / 1000)
    assert density.mean_hu == pytest.approx((5 * 400 + 17 * 150) / 22)
    assert density.median_hu == 150.0


def test_the_image_edge_counts_as_the_outline_where_the_body_meets_it():
    """The box body run up to the image's first row (rows 0-39): the margin is kept from the edge as from the
    cortex, so 5 mm inside are rows 4-35, as if the body went on beyond the field (the region is read in the body's
    own box: its edge must still be an outline)."""
    hu, instances = _box_body(rows=(0, 40))
    density = ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20)
    expected = np.zeros((17, 60, 60), bool)
    expected[3:14, 4:36, 9:35] = True
    assert np.array_equal(density.region, expected)


def test_voxels_above_400_hu_are_no_trabecular_bone():
    """The box body's 400 HU rows stay (400 is the limit); one of them at 401 HU, an endplate or a bone island the
    margin did not clear, leaves the region: 11 slices x 26 columns fewer voxels, the mean over the rest."""
    hu, instances = _box_body()
    hu[:, 14, 9:35] = 401.0
    density = ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20)
    expected = np.zeros((17, 60, 60), bool)
    expected[3:14, 15:36, 9:35] = True
    assert np.array_equal(density.region, expected)
    assert density.mean_hu == pytest.approx((4 * 400 + 17 * 150) / 21)


def test_noise_is_cut_evenly_either_side_of_the_median_so_its_mean_is_not_pulled_down():
    """Rows 19-20 of the box body's marrow at 450 HU and rows 21-22 at -150 (a noisy scan's two tails): the region's
    median is 150 (13 of its 22 rows), so the cap at 400 takes the 450s and the cut as far below, 150 - 250 = -100 HU,
    takes the -150s. Left: 13 rows of 150 and 5 of 400, mean 3950/18. The cap alone kept the low tail and read
    3650/20 (found in review: on VerSe 012, noise SD 160-240 HU, means read 10-35 HU low)."""
    hu, instances = _box_body()
    hu[:, 19:21, 7:43] = 450.0
    hu[:, 21:23, 7:43] = -150.0
    density = ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20)
    expected = np.zeros((17, 60, 60), bool)
    expected[3:14, 14:19, 9:35] = True
    expected[3:14, 23:36, 9:35] = True
    assert np.array_equal(density.region, expected)
    assert density.mean_hu == pytest.approx((13 * 150 + 5 * 400) / 18)
    assert density.median_hu == 150.0


def test_a_separate_piece_of_the_vertebra_off_the_midline_stays_out_of_the_region():
    """The network also called a piece below the body (rows 46-57) "L1", on slices 12-19 only: it does not reach
    slice 20, so the body's region is the one counted by hand above."""
    hu, instances = _box_body()
    instances[12:20, 46:58, 5:41] = L1
    density = ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20)
    expected = np.zeros((17, 60, 60), bool)
    expected[3:14, 14:36, 9:35] = True
    assert np.array_equal(density.region, expected)


def test_the_canal_marks_where_the_body_ends_on_every_row():
    """The network's L1 runs on behind the canal's anterior wall (column 48) to column 57: cut at column 48, the
    body keeps columns 5-47; so its depth, and the quarter left out, are those of columns 5-47."""
    hu, instances = _box_body()
    instances[:, 10:40, 45:48] = L1
    instances[:, 10:40, 58:60] = L1  # behind the canal
    density = ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20)
    # columns 9 .. 47 - 4 = 43 inside, posterior quarter after 47 - 42/4 = 36.5
    expected = np.zeros((17, 60, 60), bool)
    expected[3:14, 14:36, 9:37] = True
    assert np.array_equal(density.region, expected)
    assert density.median_hu == 150.0


def test_the_canal_marks_where_the_body_ends_from_its_most_anterior_wall_on_any_slice():
    """The body runs to column 47; the canal begins at column 46 on slices 12-20 and at 48 on the others. Every row
    takes the canal's wall from all the slab's slices (46): the body keeps columns 5-45 on every slice, so 5 mm inside
    are columns 9-41, short of the posterior quarter after 45 - 40/4 = 35."""
    hu, instances = _box_body()
    instances[:, 10:40, 45:48] = L1
    instances[12:21, 5:45, 46:48] = CANAL_LABEL
    density = ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20)
    expected = np.zeros((17, 60, 60), bool)
    expected[3:14, 14:36, 9:36] = True
    assert np.array_equal(density.region, expected)


def test_pedicles_and_posterior_elements_joined_to_the_body_are_cut_off_at_the_canal():
    """The canal on slices 15-25 only; on slices 12-14 and 26-28 (beside it) pedicles of L1 run back from the body
    to posterior elements behind the canal (columns 58-59, on every slice). Cut at the canal's wall (column 48, from
    the slices that hold it), the body is the box's, and so is its region."""
    hu, instances = _box_body()
    instances[instances == CANAL_LABEL] = 0
    instances[15:26, 5:45, 48:58] = CANAL_LABEL
    for pedicles in (slice(12, 15), slice(26, 29)):
        instances[pedicles, 20:30, 45:60] = L1
    instances[:, 10:40, 58:60] = L1
    density = ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20)
    expected = np.zeros((17, 60, 60), bool)
    expected[3:14, 14:36, 9:35] = True
    assert np.array_equal(density.region, expected)
    assert density.mean_hu == pytest.approx((5 * 400 + 17 * 150) / 22)


def test_a_thin_body_is_chosen_over_a_larger_piece_that_misses_the_midline():
    """The body on slices 18-22 only (6000 voxels in the slab); a piece below it on slices 12-19 (rows 42-59, columns
    0-47: 6912 voxels). 5 mm inside the body leaves slice 20 alone (3 slices of 2 mm from the background on either
    side): rows 14-35, columns 9-34, 572 voxels of 2 mm³."""
    hu, instances = _box_body()
    instances[instances == L1] = 0
    instances[18:23, 10:40, 5:45] = L1
    instances[12:20, 42:60, 0:48] = L1
    density = ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20)
    expected = np.zeros((17, 60, 60), bool)
    expected[8, 14:36, 9:35] = True
    assert np.array_equal(density.region, expected)
    assert density.ml == pytest.approx(572 * 2 / 1000)


def test_the_slab_and_the_region_reach_across_a_volume_of_more_slices_than_rows():
    """41 slices of 24 rows, 1 mm voxels, the body in every slice (rows 3-20, columns 3-22), the canal behind it. The
    slab is slices 6-34 (14.5 mm rounds to 14 slices), the region's slices 10-30; 4.5 mm inside: rows 7-16 and columns
    7-18, of which the posterior quarter (after 22 - 19/4 = 17.25) goes: 21 x 10 x 11 voxels."""
    hu = np.full((41, 24, 40), 40.0)
    hu[:, 3:21, 3:23] = 150.0
    instances = np.zeros(hu.shape, np.int16)
    instances[:, 3:21, 3:23] = L1
    instances[:, :, 26:32] = CANAL_LABEL
    density = ct_bone.trabecular_density(hu, instances, L1, (1.0, 1.0, 1.0), mid=20)
    assert density.slices == slice(6, 35)
    expected = np.zeros((29, 24, 40), bool)
    expected[4:25, 7:17, 7:18] = True
    assert np.array_equal(density.region, expected)
    assert density.ml == pytest.approx(21 * 10 * 11 / 1000) and density.mean_hu == 150.0


def test_a_region_of_exactly_0_3_ml_is_measured_and_one_just_under_is_not():
    """A body of 13 slices x 14 rows x 19 columns of 1 mm voxels: 4.5 mm inside leaves 5 slices, 6 rows and, short of
    the posterior quarter (after column 23 - 18/4 = 18.5), columns 9-18: 300 voxels, 0.3 mL. Columns of 0.999 mm
    keep the same voxels, of 0.2997 mL."""
    hu = np.full((21, 40, 40), 150.0)
    instances = np.zeros(hu.shape, np.int16)
    instances[4:17, 10:24, 5:24] = L1
    instances[:, 5:30, 28:34] = CANAL_LABEL
    density = ct_bone.trabecular_density(hu, instances, L1, (1.0, 1.0, 1.0), mid=10)
    assert density.region.sum() == 300 and density.ml == pytest.approx(0.3)
    assert density.region[(slice(None), slice(14, 20), slice(9, 19))].sum() == 300
    assert ct_bone.trabecular_density(hu, instances, L1, (1.0, 1.0, 0.999), mid=10) is None


def test_no_density_without_a_canal_in_the_slab():
    hu, instances = _box_body()
    instances[instances == CANAL_LABEL] = 0
    instances[:3, 5:45, 48:58] = CANAL_LABEL  # canal only on slices 0-2, outside the slab 12-28
    assert ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20) is None


# --- the helpers: the piece through the midline, the posterior fraction cut row by row


def test_the_piece_with_most_voxels_on_the_midline_is_the_body():
    mask = np.zeros((3, 10, 10), bool)
    mask[:, 0:3, 0:3] = True  # the largest piece, 27 voxels, labelled first; 9 on slice 1
    mask[1, 5:6, 5:9] = True  # 4 on slice 1
    mask[1, 8:10, 0:6] = True  # 12 on slice 1: the body
    body = ct_bone._piece_through(mask, 1)
    expected = np.zeros_like(mask)
    expected[1, 8:10, 0:6] = True
    assert np.array_equal(body, expected)


def test_without_a_piece_on_the_midline_the_largest_is_the_body():
    mask = np.zeros((5, 6, 6), bool)
    mask[0, 0:2, 0:2] = True  # 4 voxels
    mask[4, 2:5, 2:5] = True  # 9 voxels
    expected = np.zeros_like(mask)
    expected[4, 2:5, 2:5] = True
    assert np.array_equal(ct_bone._piece_through(mask, 2), expected)


def test_a_single_piece_or_none_is_the_mask_itself():
    one = np.zeros((3, 4, 4), bool)
    one[0, 1:3, 1:3] = True  # not on slice 1
    assert np.array_equal(ct_bone._piece_through(one, 1), one)
    none = np.zeros((3, 4, 4), bool)
    assert not ct_bone._piece_through(none, 1).any()


def test_the_posterior_fraction_is_cut_from_each_rows_own_depth():
    body = np.zeros((1, 3, 12), bool)
    body[0, 0, 2:10] = True  # depth 2..9: a quarter of 7 is 1.75, so columns up to 7.25 stay
    body[0, 1, 4:12] = True  # depth 4..11: columns up to 9.25
    body[0, 2, 0:5] = True  # depth 0..4: up to 3
    kept = ct_bone._not_posterior(body, 0.25)
    assert kept[0, 0].tolist() == [c <= 7 for c in range(12)]
    assert kept[0, 1].tolist() == [c <= 9 for c in range(12)]
    assert kept[0, 2].tolist() == [c <= 3 for c in range(12)]
    half = ct_bone._not_posterior(body, 0.5)
    assert half[0, 0].tolist() == [c <= 5 for c in range(12)]  # 9 - 3.5
    assert half[0, 1].tolist() == [c <= 7 for c in range(12)]  # 11 - 3.5
    assert half[0, 2].tolist() == [c <= 2 for c in range(12)]  # 4 - 2


def test_canal_pieces_off_the_tube_are_taken_out():
    """A canal tube (slices 9-11, columns 40-45, rows 0-59 of 1 mm voxels); below a gap, a piece in line with it
    (rows 66-79, 2 mm further back: a stretch the network lost) stays; a piece 30 mm in front of it beside the same rows
    (inside a body on a para-sagittal slice) and one in front of the tube's lower end (the pelvis) go; with one piece
    nothing changes."""
    from lumbar.labels import CANAL_LABEL
    from lumbar.tasks.ct_bone import canal_in_line

    instances = np.zeros((21, 100, 80), np.int32)
    instances[:, 20:30, 5:30] = 7  # a vertebra, untouched whatever happens to the canal
    instances[9:12, 0:60, 40:46] = CANAL_LABEL
    instances[9:12, 66:80, 42:48] = CANAL_LABEL  # in line below a gap
    instances[3:5, 10:30, 10:15] = CANAL_LABEL  # 30 mm in front, 6 mm aside: inside a body
    instances[9:12, 85:95, 5:10] = CANAL_LABEL  # far in front of the tube's end: the pelvis
    out = canal_in_line(instances, (1.0, 1.0, 1.0))
    assert (out[9:12, 0:60, 40:46] == CANAL_LABEL).all() and (out[9:12, 66:80, 42:48] == CANAL_LABEL).all()
    assert not (out[3:5, 10:30, 10:15] == CANAL_LABEL).any() and not (out[9:12, 85:95, 5:10] == CANAL_LABEL).any()
    assert (out == 7).sum() == (instances == 7).sum()
    alone = np.zeros_like(instances)
    alone[9:12, 0:60, 40:46] = CANAL_LABEL
    assert canal_in_line(alone, (1.0, 1.0, 1.0)) is alone  # one piece: nothing to take out, nothing copied


def test_a_body_denser_than_the_cap_keeps_the_cap_alone_and_is_still_read():
    """Marrow at 450 HU (sclerotic bone, median above the 400 HU cap) with rows 14-18 at 390: mirrored about the
    median the cut would take everything (it read no density and the screen said none: found in review); the cap
    alone keeps the 5 rows at 390, as before this version's even cut."""
    hu, instances = _box_body()
    hu[:, 12:38, 7:43] = 450.0
    hu[:, 14:19, 7:43] = 390.0
    density = ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20)
    expected = np.zeros((17, 60, 60), bool)
    expected[3:14, 14:19, 9:35] = True
    assert np.array_equal(density.region, expected) and density.mean_hu == pytest.approx(390.0)


def test_dense_material_inside_the_region_is_measured_before_the_cap():
    """Cement or metal in the body: the cap at 400 HU drops it and the mean is read from the blur around it, which
    looks like healthy bone. The region's voxels above 1000 HU are counted first: a 3 x 4 x 5 block of 1800 HU in
    the region (60 voxels of 2 mm³) is 0.12 mL; at exactly 1000 HU, or outside the region, it counts nothing."""
    hu, instances = _box_body()
    assert ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20).dense_ml == 0.0
    hu[19:22, 25:29, 15:20] = 1800.0
    assert ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20).dense_ml == pytest.approx(0.12)
    hu[19:22, 25:29, 15:20] = 1000.0
    assert ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20).dense_ml == 0.0
    hu, instances = _box_body()
    hu[19:22, 25:29, 38:43] = 1800.0  # the posterior quarter, left out of the region
    assert ct_bone.trabecular_density(hu, instances, L1, (2.0, 1.0, 1.0), mid=20).dense_ml == 0.0


@pytest.mark.parametrize(
    ("mid", "n", "lateral_mm", "cut"),
    [
        (20, 41, 2.0, False),
        (5, 41, 2.0, False),
        (4, 41, 2.0, True),
        (36, 41, 2.0, True),
        (1, 3, 3.0, True),
        (3, 7, 3.0, False),
    ],
)
def test_a_slab_thinner_than_the_region_either_side_of_the_midline_is_cut(mid, n, lateral_mm, cut):
    """The region reaches 10 mm either side of the midline: 5 slices of 2 mm (slices 15-25 around 20), 3 of 3 mm;
    a volume that ends nearer the midline on either side cuts it."""
    assert ct_bone.slab_cut(mid, lateral_mm, n) is cut


# --- metal near the spine: within 45 mm of the midline, and from 5 mm in front of the column backwards


def test_the_columns_front_is_its_frontmost_voxel_row_by_row_interpolated_between_and_held_beyond():
    instances = np.zeros((3, 8, 20), np.int16)
    instances[2, 2, 10:15] = L1  # row 2: the front at col 10, on a side slice
    instances[1, 2, 12:15] = L1
    instances[0, 5, 6:9] = disc_label("L1")  # row 5: a disc's front at col 6
    instances[1, 4, 2] = CANAL_LABEL  # the canal is not the column
    np.testing.assert_allclose(ct_bone.column_front(instances), [10, 10, 10, 10 - 4 / 3, 10 - 8 / 3, 6, 6, 6])
    assert ct_bone.column_front(np.where(instances == CANAL_LABEL, CANAL_LABEL, 0)) is None


def test_metal_counts_from_5_mm_in_front_of_the_column_backwards():
    """Columns of 0.5 mm: the column's front at col 30, so col 20 lies 5 mm in front of it (counted) and col 19
    5.5 mm (not); col 79, 15 mm behind its back, counts; 2500 HU itself is not metal. Without a vertebra or disc
    the band alone bounds the metal."""
    hu = np.zeros((5, 4, 80), np.float32)
    instances = np.zeros(hu.shape, np.int16)
    instances[2, :, 30:65] = L1
    hu[2, :, 19] = hu[2, :, 20] = hu[2, :, 79] = 2501.0
    hu[2, :, 40] = 2500.0
    metal = ct_bone.metal_near_spine(hu, instances, (2.0, 1.0, 0.5), 2)
    assert metal[2, :, 20].all() and metal[2, :, 79].all() and metal.sum() == 8
    assert ct_bone.metal_near_spine(hu, np.zeros_like(instances), (2.0, 1.0, 0.5), 2).sum() == 12


def _two_levels() -> LevelLabelling:
    """L1 (rows 0-19), the L1/L2 disc (rows 20-29) and L2 (rows 30-49), each from col 20 back to col 49."""
    instances = np.zeros((11, 60, 60), np.int16)
    instances[:, 0:20, 20:50] = L1
    instances[:, 20:30, 20:50] = disc_label("L1")
    instances[:, 30:50, 20:50] = L2
    named = [("L2", L2, "vertebra"), ("L1/L2", disc_label("L1"), "disc"), ("L1", L1, "vertebra")]
    return LevelLabelling(instances, [Level(name, label, kind, (0.0, 0.0), 0) for name, label, kind in named])


def test_metal_in_the_column_is_named_at_its_levels_and_as_much_in_front_of_it_is_not():
    """0.6 ml of metal (5 slices of 2 mm, 6 rows, 10 cols of 1 mm) in L1, more than 10 mm above the disc: named at
    L1 alone; reaching rows 10-15, within 10 mm of the disc, at L1 and L1/L2; moved 6-15 mm in front of the
    bodies' front (an aortic stent), not named at all."""
    levels, spacing = _two_levels(), (2.0, 1.0, 1.0)
    hu = np.zeros(levels.instances.shape, np.float32)
    screw = hu.copy()
    screw[3:8, 4:10, 25:35] = 3000.0
    said = "metal in view (0.6 ml above 2500 HU near the spine) at {}: screws, cement or an implant; level names, "
    assert ct_bone.metal_reason(screw, levels, spacing, 5) == said.format("L1") + (
        "outlines and heights near it may be wrong"
    )
    lower = hu.copy()
    lower[3:8, 10:16, 25:35] = 3000.0
    assert ct_bone.metal_reason(lower, levels, spacing, 5).startswith(said.format("L1, L1/L2"))
    stent = hu.copy()
    stent[3:8, 4:10, 5:15] = 3000.0
    assert ct_bone.metal_reason(stent, levels, spacing, 5) is None


def test_metal_more_than_10_mm_beyond_every_level_is_said_to_lie_away_from_them():
    """L1 alone, rows 0-19: metal from row 30, 11 mm below its last row, is at no level; from row 29, 10 mm, at L1."""
    instances = np.zeros((11, 60, 60), np.int16)
    instances[:, 0:20, 20:50] = L1
    levels = LevelLabelling(instances, [Level("L1", L1, "vertebra", (0.0, 0.0), 0)])
    below = np.zeros(instances.shape, np.float32)
    below[3:8, 30:36, 25:35] = 3000.0
    assert "near the spine) away from every level named:" in ct_bone.metal_reason(below, levels, (2.0, 1.0, 1.0), 5)
    nearer = np.zeros(instances.shape, np.float32)
    nearer[3:8, 29:35, 25:35] = 3000.0
    assert "near the spine) at L1:" in ct_bone.metal_reason(nearer, levels, (2.0, 1.0, 1.0), 5)


def test_a_vertebras_lateral_centre_is_the_median_slice_of_its_voxels():
    """Its trabecular region is centred there: a volume's one midline slice can lie a slice off a vertebra's own."""
    instances = np.zeros((12, 4, 4), np.uint8)
    instances[2:7, 1:3, 1:3] = 20  # slices 2-6, four voxels each
    instances[9, 0, 0] = 20  # a stray voxel far to one side hardly moves a median
    instances[:, 3, 3] = 21  # one voxel on each of the 12 slices: the lower of the two middle ones
    assert ct_bone.lateral_centres(instances, [20, 21, 22]) == {20: 4, 21: 5}  # 22: no such vertebra
