"""Level labelling names every disc and vertebra from the sacrum up, and flags what does not fit."""

import numpy as np
import pytest

from lumbar.labels import VERTEBRA_IDS, Structure, disc_label
from lumbar.tasks.levels import find_discs, label_levels, renamed_up

SPACING = (4.0, 1.0, 1.0)
LUMBAR = ["L5/S1", "L4/L5", "L3/L4", "L2/L3", "L1/L2", "T12/L1", "T11/T12"]


def names(result):
    return [lv.name for lv in result.discs]


def test_exact_truth_gives_exact_names(phantom_semantic, phantom_instances):
    result = label_levels(phantom_semantic, SPACING)
    assert names(result) == LUMBAR
    assert [lv.name for lv in result.vertebrae] == ["S1", "L5", "L4", "L3", "L2", "L1", "T12", "T11"]
    assert result.flags == []
    labelled = phantom_instances > 0
    assert np.mean(result.instances[labelled] == phantom_instances[labelled]) > 0.99


def test_a_single_slice_is_enough(phantom_semantic):
    mid = phantom_semantic[phantom_semantic.shape[0] // 2][None]
    assert names(label_levels(mid, SPACING)) == LUMBAR


def test_a_blob_behind_the_canal_is_not_a_disc(phantom_semantic):
    classes = phantom_semantic.copy()
    classes[:, 150:165, 250:270] = Structure.DISC  # in the back muscles
    assert names(label_levels(classes, SPACING)) == LUMBAR


def test_a_canal_blob_in_front_of_a_disc_does_not_put_the_disc_behind_the_canal(phantom_semantic, phantom_instances):
    """SPIDER 143's T1: the network called a patch in the pelvis "canal", level with L5/S1 and in front of it, and
    L5/S1 was dropped as lying behind the canal: only the canal's own pieces may judge that."""
    classes = phantom_semantic.copy()
    rows, cols = np.nonzero(phantom_instances[3] == disc_label("L5"))
    level = slice(rows.min() - 8, None)  # the sac ends above L5/S1 here, as the network's did there
    classes[:, level][classes[:, level] == Structure.CANAL] = Structure.BACKGROUND
    classes[:, rows.min() : rows.max() + 1, max(0, cols.min() - 40) : cols.min() - 25] = Structure.CANAL
    assert names(label_levels(classes, SPACING)) == LUMBAR


def test_a_blob_far_from_the_spine_is_not_a_disc(phantom_semantic):
    classes = phantom_semantic.copy()
    classes[:, 150:160, 10:40] = Structure.DISC  # in the abdomen, anterior to the spine
    assert names(label_levels(classes, SPACING)) == LUMBAR


def test_a_disc_cut_in_two_is_still_one_disc(phantom_semantic, phantom_instances):
    classes = phantom_semantic.copy()
    cols = np.nonzero(phantom_instances[3] == disc_label("L3"))[1]
    classes[:, :, int(np.median(cols)) - 1 : int(np.median(cols)) + 1][
        classes[:, :, int(np.median(cols)) - 1 : int(np.median(cols)) + 1] == Structure.DISC
    ] = 0
    assert names(label_levels(classes, SPACING)) == LUMBAR


def test_a_missing_disc_is_flagged(phantom_semantic, phantom_instances):
    classes = phantom_semantic.copy()
    classes[phantom_instances == disc_label("L2")] = Structure.VERTEBRA
    result = label_levels(classes, SPACING)
    assert len(result.discs) == len(LUMBAR) - 1
    assert any("gap" in flag for flag in result.flags)


def test_lowest_disc_is_l5s1_even_without_a_labelled_sacrum(phantom_semantic, phantom_instances):
    """SPIDER-style masks leave the sacrum unlabelled; the lowest disc is still L5/S1."""
    classes = phantom_semantic.copy()
    classes[phantom_instances == 26] = 0
    assert names(label_levels(classes, SPACING)) == LUMBAR


def test_a_blob_below_the_lowest_disc_with_no_bone_above_is_not_a_disc(phantom_semantic, phantom_instances):
    classes = phantom_semantic.copy()
    classes[phantom_instances == 26] = 0  # unlabelled sacrum, as in SPIDER
    rows, cols = np.nonzero(phantom_instances[3] == disc_label("L5"))
    classes[:, rows.max() + 30 : rows.max() + 38, int(cols.mean()) - 10 : int(cols.mean()) + 10] = Structure.DISC
    assert names(label_levels(classes, SPACING)) == LUMBAR


def test_too_few_discs_and_no_discs_are_flagged(phantom_semantic, phantom_instances):
    classes = phantom_semantic.copy()
    for upper in ("T11", "T12", "L1", "L2"):
        classes[phantom_instances == disc_label(upper)] = Structure.VERTEBRA
    assert any("only 3 discs" in flag for flag in label_levels(classes, SPACING).flags)
    empty = label_levels(np.zeros((1, 50, 50), np.uint8), SPACING)
    assert empty.levels == [] and "no intervertebral disc" in empty.flags[0]


def test_a_remnant_disc_below_l5s1_is_not_counted_and_is_flagged(phantom_semantic, phantom_instances):
    """A thin disc inside the sacrum, one level below L5/S1 (the S1/S2 remnant), would name every level one too high."""
    classes = phantom_semantic.copy()
    l5s1, l4l5 = (np.argwhere(phantom_instances == disc_label(v)) for v in ("L5", "L4"))
    step = np.round(l5s1.mean(0) - l4l5.mean(0)).astype(int)  # one level down, along the column
    step[0] = 0
    middle = np.median(l5s1[:, 1])
    thin = l5s1[np.abs(l5s1[:, 1] - middle) <= 1] + step  # 3 rows of the disc's full length, one level lower
    inside = (thin[:, 1] < classes.shape[1]) & (thin[:, 2] < classes.shape[2])
    classes[tuple(thin[inside].T)] = Structure.DISC
    assert len(find_discs(classes, SPACING, 3)) == len(LUMBAR) + 1  # the remnant is found as a disc
    result = label_levels(classes, SPACING)
    assert names(result) == LUMBAR  # ... and not counted
    assert any(flag.startswith("small lowest disc, not counted") for flag in result.flags)
    assert not any("not counted" in flag for flag in label_levels(phantom_semantic, SPACING).flags)


def test_a_very_thin_lowest_disc_of_full_length_is_flagged_as_a_possible_sacral_remnant(
    phantom_semantic, phantom_instances
):
    classes = phantom_semantic.copy()
    lowest = phantom_instances == disc_label("L5")
    classes[lowest] = Structure.VERTEBRA
    for k in range(classes.shape[0]):
        r, c = np.nonzero(lowest[k])
        if not len(r):
            continue
        middle = r.min() + (r.max() - r.min()) // 2
        thin = np.abs(r - middle) <= 1  # 3 rows of a ~10-row disc, over its whole front-to-back length
        classes[k, r[thin], c[thin]] = Structure.DISC
    flags = label_levels(classes, SPACING).flags
    assert any("sacral remnant" in flag for flag in flags)
    untouched = label_levels(phantom_semantic, SPACING).flags
    assert not any("sacral remnant" in flag for flag in untouched)  # a normal lowest disc raises no flag


@pytest.mark.parametrize("tilt_shift", [-8.0, 8.0])
def test_names_hold_for_other_curvatures(tilt_shift):
    from lumbar.phantom import DEFAULT_TILT_DEG, make_phantom

    tilt = {k: v + tilt_shift for k, v in DEFAULT_TILT_DEG.items()}
    ph = make_phantom(shape=(3, 320, 288), tilt_deg=tilt)
    classes = ph.image.with_array(ph.semantic()).sagittal_slices()
    assert names(label_levels(classes, SPACING)) == LUMBAR


def _chain_disc(row: float, col: float):
    from lumbar.tasks.levels import _Disc

    return _Disc(np.zeros((1, 3), int), np.array([row, col], float), np.array([-1.0, 0.0]), 200.0)


def test_chain_keeps_the_ends_of_a_curved_column_and_drops_a_blob_between_discs():
    """A lordotic column whose top disc leans back: one curve through the other discs, extrapolated,
    misses it by ~32 mm (and on SPIDER T1/T2 such misses dropped L5/S1 or the top disc); the line
    through its two neighbours does not. A blob in front of the column between two discs still goes."""
    from lumbar.tasks.levels import MAX_OFF_CHAIN_MM, _off_chain_mm, _robust_chain

    rows = np.array([240.0, 205, 168, 134, 104, 44])
    cols = np.array([125.0, 112, 112, 120, 135, 156])
    discs = [_chain_disc(r, c) for r, c in zip(rows, cols)]
    others = np.arange(5)
    assert abs(np.polyval(np.polyfit(rows[others], cols[others], 2), rows[5]) - cols[5]) > MAX_OFF_CHAIN_MM
    assert _off_chain_mm(discs, 5) < MAX_OFF_CHAIN_MM and len(_robust_chain(discs)) == 6
    blob = _chain_disc(150.0, 70.0)
    kept = _robust_chain(sorted([*discs, blob], key=lambda d: -d.centroid[0]))
    assert len(kept) == 6 and all(d is not blob for d in kept)


def test_two_blobs_below_a_lordotic_l5s1_do_not_bend_the_column_away_from_it():
    """SPIDER 162's T2 picture: below a strongly lordotic L5/S1 the network finds two small blobs further back
    along the sacrum's curve. A curve fitted through them and the discs alike bent so that L5/S1 and L4/L5 lay
    farthest from it, and both real discs were dropped (every name two levels too high) before the blobs. Weighted
    by area, whole discs steer the curve and the blobs go."""
    from lumbar.tasks.levels import MAX_OFF_CHAIN_MM, _robust_chain

    rows = np.array([365.0, 326, 278, 227, 184, 146, 107, 72, 41, 11])  # L5/S1 up to T8/T9 (mm)
    cols = np.array([285.0, 264, 257, 258, 267, 272, 274, 280, 286, 293])
    discs = [_chain_disc(r, c) for r, c in zip(rows, cols, strict=True)]
    for disc in discs:
        disc.area_mm2 = 500.0
    blobs = [_chain_disc(416.0, 380.0), _chain_disc(392.0, 323.0)]
    for blob in blobs:
        blob.area_mm2 = 60.0
    blob_rows, blob_cols = np.array([416.0, 392.0]), np.array([380.0, 323.0])
    others_rows, others_cols = np.r_[blob_rows, rows[1:]], np.r_[blob_cols, cols[1:]]
    unweighted = np.polyval(np.polyfit(others_rows, others_cols, 2), rows[0]) - cols[0]
    assert abs(unweighted) > MAX_OFF_CHAIN_MM  # unweighted, L5/S1 looked off the column
    kept = _robust_chain([*blobs, *discs])
    assert all(a is b for a, b in zip(kept[-len(discs) :], discs, strict=True))
    assert all(d is not blobs[0] for d in kept)  # the far blob goes; a near one left is flagged as a remnant


def test_a_sharply_angled_l5s1_stays_in_the_chain_and_a_blob_further_off_does_not():
    """SPIDER 241's pictures: L5/S1 lies 26 mm behind the line through L4/L5 and L3/L4 (the lumbosacral angle),
    more than any other disc may be off the column; dropping it named every level one too high."""
    from lumbar.tasks.levels import MAX_OFF_CHAIN_LOWEST_MM, MAX_OFF_CHAIN_MM, _off_chain_mm, _robust_chain

    rows = [254.0, 229, 190, 151, 115, 99, 64, 38, 7]  # L5/S1 up to T9/T10 (mm)
    cols = [184.0, 155, 151, 157, 170, 184, 191, 197, 202]
    discs = [_chain_disc(r, c) for r, c in zip(rows, cols, strict=True)]
    assert MAX_OFF_CHAIN_MM < _off_chain_mm(discs, 0) < MAX_OFF_CHAIN_LOWEST_MM
    assert len(_robust_chain(discs)) == len(discs)
    further = [_chain_disc(254.0, 200.0), *discs[1:]]  # 42 mm behind the line: not a disc of this column
    assert len(_robust_chain(further)) == len(discs) - 1
    interior = [*discs[:4], _chain_disc(133.0, 190.0), *discs[4:]]  # the same offset between two discs still goes
    assert len(_robust_chain(interior)) == len(discs)


@pytest.mark.parametrize("blob_area", [100.0, 150.0])
def test_two_blobs_in_line_below_l5s1_do_not_vouch_for_each_other(blob_area):
    """Two small blobs continuing the column's line below L5/S1 (sacral remnants): the end of the chain is judged
    by the line through whole discs, and only a whole lowest disc gets the lumbosacral angle's wider margin, so the
    far blob never becomes the lowest disc (it named every level one too low when it did)."""
    from lumbar.tasks.levels import _robust_chain

    rows = [365.0, 326, 278, 227, 184, 146, 107, 72, 41, 11]
    cols = [285.0, 264, 257, 258, 267, 272, 274, 280, 286, 293]
    discs = [_chain_disc(r, c) for r, c in zip(rows, cols, strict=True)]
    for disc in discs:
        disc.area_mm2 = 500.0
    blobs = [_chain_disc(416.0, 380.0), _chain_disc(392.0, 323.0)]
    for blob in blobs:
        blob.area_mm2 = blob_area
    kept = _robust_chain([*blobs, *discs])
    assert all(any(d is k for k in kept) for d in discs)
    assert all(d is not blobs[0] for d in kept)


def _below_l5s1_behind_canal(phantom_semantic, phantom_instances):
    """Rows just below the L5/S1 disc and columns behind the canal, on every slice."""
    rows, _ = np.nonzero(phantom_instances[3] == disc_label("L5"))
    canal_cols = np.nonzero(phantom_semantic[3] == Structure.CANAL)[1]
    return slice(rows.max() + 4, rows.max() + 16), slice(canal_cols.max() + 4, canal_cols.max() + 14)


def test_bone_behind_and_below_the_lowest_disc_is_never_named_s1(phantom_semantic, phantom_instances):
    """SPIDER-like maps: no sacrum; a spinous process below the L5/S1 disc is L5's or unnamed, never S1."""
    classes = phantom_semantic.copy()
    classes[phantom_instances == 26] = 0
    rows, cols = _below_l5s1_behind_canal(phantom_semantic, phantom_instances)
    classes[:, rows, cols] = Structure.VERTEBRA
    result = label_levels(classes, SPACING)
    assert names(result) == LUMBAR
    assert "S1" not in [lv.name for lv in result.vertebrae]
    assert not np.any(result.instances[:, rows, cols] == 26)
    assert np.all(result.instances[:, rows, cols] == 0)  # detached: unnamed


def test_a_posterior_element_reaching_below_the_lowest_disc_stays_with_l5(phantom_semantic, phantom_instances):
    classes = phantom_semantic.copy()
    classes[phantom_instances == 26] = 0
    rows, cols = _below_l5s1_behind_canal(phantom_semantic, phantom_instances)
    classes[:, rows.start - 60 : rows.stop, cols] = Structure.VERTEBRA  # one process from above the disc plane down
    result = label_levels(classes, SPACING)
    assert np.all(result.instances[:, rows, cols] == 24)  # L5


def test_a_disc_the_network_missed_is_counted_so_the_names_above_it_hold(phantom_semantic, phantom_instances):
    """The phantom's L2/L3 disc missed (left as background): its gap is twice the gaps beside it, so it is counted,
    every vertebra keeps its name, and the review says the names above rest on that count."""
    classes = phantom_semantic.copy()
    classes[phantom_instances == disc_label("L2")] = 0
    whole, result = label_levels(phantom_semantic, SPACING), label_levels(classes, SPACING)
    assert [lv.name for lv in result.vertebrae] == [lv.name for lv in whole.vertebrae]
    assert "L2/L3" not in names(result) and len(result.discs) == len(whole.discs) - 1
    bone = np.isin(whole.instances, [lv.label for lv in whole.vertebrae])
    assert np.mean(result.instances[bone] == whole.instances[bone]) > 0.99
    assert any("counted as 1 missed disc, so L2 and every name above" in flag for flag in result.flags)
    assert not any("two vertebral bodies" in flag for flag in result.flags + whole.flags)


def test_a_small_piece_far_below_the_chain_is_not_a_disc(phantom_semantic, phantom_instances):
    classes = phantom_semantic.copy()
    classes[phantom_instances == 26] = 0
    rows, cols = np.nonzero(phantom_instances[3] == disc_label("L5"))
    low = rows.max() + 70  # two levels below L5/S1: not where the next disc would be
    classes[:, low : low + 4, int(cols.mean()) - 2 : int(cols.mean()) + 2] = Structure.DISC
    assert names(label_levels(classes, SPACING)) == LUMBAR


def test_a_disc_found_inside_a_vertebra_is_flagged(phantom_semantic, phantom_instances):
    """A band the network calls disc across the middle of L3 would give L3 two names: the spacing check says so."""
    classes = phantom_semantic.copy()
    body = phantom_instances[3] == 22  # L3
    middle = int(np.median(np.nonzero(body)[0]))
    band = np.zeros_like(body)
    band[middle - 3 : middle + 3] = body[middle - 3 : middle + 3]
    classes[:, band] = Structure.DISC
    result = label_levels(classes, SPACING)
    assert any("apart (median" in flag for flag in result.flags)
    assert not any("apart (median" in flag for flag in label_levels(phantom_semantic, SPACING).flags)


def _sacrum_flags(result):
    return [flag for flag in result.flags if flag.startswith("no sacrum in view")]


def test_a_sacrum_out_of_view_is_flagged(phantom_semantic, phantom_instances):
    assert _sacrum_flags(label_levels(phantom_semantic, SPACING)) == []
    rows = np.nonzero(phantom_instances[3] == disc_label("L5"))[0]
    below = int(rows.mean()) + 4  # the field of view ends just below the middle of L5/S1
    assert len(_sacrum_flags(label_levels(phantom_semantic[:, :below], SPACING))) == 1
    assert _sacrum_flags(label_levels(phantom_semantic[:, : below + 20], SPACING)) == []


def test_bone_far_out_to_the_side_and_not_joined_to_the_column_gets_no_name(phantom_semantic, phantom_instances):
    """A rib or an iliac wing the network calls vertebra lies between two disc planes but is no level's."""
    wide = np.zeros((21, *phantom_semantic.shape[1:]), phantom_semantic.dtype)
    wide[7:14] = phantom_semantic  # the phantom's 7 slices in the middle of a 21-slice, 84 mm wide volume
    rows, cols = np.nonzero(phantom_instances[3] == 22)  # beside L3
    wide[0:2, rows.min() : rows.max(), cols.min() : cols.max()] = Structure.VERTEBRA
    result = label_levels(wide, SPACING)
    assert names(result) == LUMBAR
    assert np.all(result.instances[0:2, rows.min() : rows.max(), cols.min() : cols.max()] == 0)
    assert np.mean(result.instances[7:14][phantom_instances > 0] == phantom_instances[phantom_instances > 0]) > 0.99


def _long_column(
    discs_found: int | None = None, missed: frozenset[int] = frozenset()
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A straight column on 1 mm pixels reaching from a sacrum into the upper thoracic spine: 16 levels whose
    bodies and discs shrink upward as thoracic ones do; only the lowest ``discs_found`` discs are outlined, and not
    those in ``missed`` (counted from 0, L5/S1): the rest are drawn as bone, as a network that misses a disc labels
    it. Returns the classes and each body's rows."""
    classes = np.zeros((3, 720, 160), np.uint8)
    bottom = 680
    classes[:, bottom - 30 : bottom, 40:80] = Structure.VERTEBRA  # the sacrum
    y, bodies = bottom - 30, []
    for k in range(16):
        disc, body, depth = 8 * (1 - 0.03 * k), 27 * (1 - 0.02 * k), int(36 * (1 - 0.015 * k))
        outlined = (discs_found is None or k < discs_found) and k not in missed
        classes[:, int(y - disc) : int(y), 40 : 40 + depth] = Structure.DISC if outlined else Structure.VERTEBRA
        y -= disc
        classes[:, int(y - body) : int(y), 40 : 40 + depth] = Structure.VERTEBRA
        bodies.append((int(y - body), int(y)))
        y -= body
    classes[:, 10:680, 85:100] = Structure.CANAL
    return classes, bodies


def _unnamed_above(result):
    return [flag for flag in result.flags if flag.startswith("bone goes on")]


def test_a_long_field_of_view_is_named_from_the_sacrum_into_the_thoracic_spine():
    classes, bodies = _long_column()
    result = label_levels(classes, SPACING)
    assert [lv.name for lv in result.vertebrae] == [
        "S1",
        "L5",
        "L4",
        "L3",
        "L2",
        "L1",
        *(f"T{k}" for k in range(12, 1, -1)),
    ]
    assert result.flags == []
    top_rows = np.nonzero(result.instances[1] == VERTEBRA_IDS["T2"])[0]
    assert (top_rows.min(), top_rows.max() + 1) == bodies[-1]  # the highest body keeps its own name


def test_every_other_thoracic_disc_missed_is_flagged_though_each_gap_matches_its_neighbours():
    """T11/T12, T9/T10, ... T3/T4 drawn as bone: each merged gap is as long as those beside it, so no gap rule
    fires, and every thoracic name would be counted too low; the thoracic gaps, longer than the lumbar ones, are
    flagged."""
    classes, _ = _long_column(missed=frozenset({6, 8, 10, 12, 14}))
    result = label_levels(classes, SPACING)
    assert not [flag for flag in result.flags if "gap of" in flag]
    (flag,) = [flag for flag in result.flags if "thoracic gap" in flag]
    assert flag.startswith("5 thoracic gaps between discs") and "so T12 and every name above" in flag
    (moved,) = [flag for flag in renamed_up(result, 1).flags if "thoracic gap" in flag]
    assert "so T11 and every name above" in moved  # the name moves with the levels


@pytest.mark.parametrize(("found", "top"), [(5, "L1"), (8, "T10")])
def test_bone_above_the_vertebra_over_the_highest_disc_found_is_unnamed_and_flagged(found, top):
    """A network that stops finding discs part way up a long field of view must not give every vertebra above the
    highest disc one name: that vertebra ends where the next disc would be, and the rest is left unnamed."""
    classes, bodies = _long_column(discs_found=found)
    result = label_levels(classes, SPACING)
    assert result.vertebrae[-1].name == top
    rows = np.nonzero(result.instances[1] == VERTEBRA_IDS[top])[0]
    own_top, own_bottom = bodies[found - 1]
    # its body, and at most the lower half of the missed disc above it (drawn as bone): not the bone beyond
    assert rows.max() + 1 == own_bottom and 0 <= own_top - rows.min() <= 5
    beyond = classes[1, : own_top - 5] == Structure.VERTEBRA
    assert beyond.sum() > 1000 and np.all(result.instances[1, : own_top - 5][beyond] == 0)
    (flag,) = _unnamed_above(result)
    assert f"above {top}," in flag
    more = int(flag.split("at least ")[1].split()[0])
    assert 16 - found - 3 <= more <= 16 - found  # a lower bound: thoracic levels are shorter than those below


def test_the_lower_part_of_the_next_vertebra_at_the_top_edge_is_unnamed_without_a_review():
    """A lumbar field of view often ends a little above the vertebra over the highest disc found, showing the lower
    part of the next one, whose disc lies outside or at the edge: unnamed, but no reason to withhold the Summary."""
    classes, bodies = _long_column(discs_found=5)
    l1_top = bodies[4][0]
    for margin, flagged in ((10, False), (30, True)):  # reach beyond the next disc's place: 10 mm or 30 mm
        top_edge = l1_top - 4 - margin  # the missed T12/L1 disc is 7 mm thick here: its middle lies 4 mm up
        result = label_levels(classes[:, top_edge:], SPACING)
        assert result.vertebrae[-1].name == "L1"
        assert bool(_unnamed_above(result)) is flagged
        above = classes[1, top_edge : l1_top - 8] == Structure.VERTEBRA
        assert above.any() and np.all(result.instances[1, : l1_top - 8 - top_edge][above] == 0)


def test_the_names_the_new_flag_quotes_move_with_the_levels():
    from lumbar.tasks.levels import renamed_up

    result = label_levels(_long_column(discs_found=5)[0], SPACING)
    (flag,) = _unnamed_above(result)
    assert "above L1," in flag
    (moved,) = _unnamed_above(renamed_up(result, 1))  # the CT pipeline's count from the sacrum: one level up
    assert "above T12," in moved and moved.replace("above T12,", "above L1,") == flag


def test_a_fleck_of_bone_far_above_asks_for_no_review():
    """Nine pixels the network calls bone two levels above the top vertebra are not a vertebra whose disc was
    missed: unnamed, but no reason to withhold the Summary (a body's worth of bone there is)."""
    classes, bodies = _long_column()
    t12_top = bodies[5][0]
    field = classes[:, t12_top - 60 :].copy()  # the field reaches 60 mm above T12's body
    field[:, :59][field[:, :59] != Structure.CANAL] = Structure.BACKGROUND  # nothing above T12 but the canal
    fleck, body = field.copy(), field.copy()
    fleck[:, 0:3, 45:48] = Structure.VERTEBRA
    body[:, 0:20, 42:72] = Structure.VERTEBRA  # the lower part of a body, 20 mm of it, in the same place
    assert _unnamed_above(label_levels(field, SPACING)) == []
    fleck_result = label_levels(fleck, SPACING)
    assert _unnamed_above(fleck_result) == [] and np.all(fleck_result.instances[:, 0:3, 45:48] == 0)
    assert len(_unnamed_above(label_levels(body, SPACING))) == 1


def test_the_tip_of_the_top_vertebra_past_the_next_disc_place_keeps_its_name():
    """A piece of bone mostly below the plane where the next disc would lie (the top vertebra with a tall
    articular process) is not cut at that plane."""
    classes, bodies = _long_column(discs_found=5)
    top = bodies[4][0]  # L1's body; above it the missed T12/L1 disc and T12 are drawn as bone
    classes[:, : top - 1] = Structure.BACKGROUND  # the field ends just above L1: no bone a level beyond
    classes[:, top - 20 : top, 70:74] = Structure.VERTEBRA  # a 20 mm process rising from L1's back
    result = label_levels(classes, SPACING)
    process = np.zeros(classes.shape[1:], bool)
    process[top - 20 : top, 70:74] = True
    assert np.all(result.instances[1][process] == VERTEBRA_IDS["L1"]) and _unnamed_above(result) == []


def test_bone_far_below_the_lowest_disc_is_not_named_s1(phantom_semantic_spider):
    """SPIDER leaves the sacrum unlabelled, and a blob the network calls bone in the pelvis, 35-121 mm below L5/S1
    on some pictures, was named S1 with no flag (nothing checks S1). Only bone reaching the lowest disc may be S1."""
    classes = phantom_semantic_spider.copy()
    labelled = label_levels(classes, SPACING)
    lowest = next(lv for lv in labelled.discs if lv.name == "L5/S1")
    row, col = (np.asarray(lowest.centroid_mm) / np.asarray(SPACING[1:])).round().astype(int)
    blob = (slice(None), slice(row + 50, row + 60), slice(col - 45, col - 35))  # 50 mm below, 40 mm in front
    assert (classes[blob] == 0).all()
    classes[blob] = Structure.VERTEBRA
    result = label_levels(classes, SPACING)
    assert names(result) == LUMBAR
    s1 = VERTEBRA_IDS["S1"]
    assert not (result.instances[blob] == s1).any()
    assert not any(lv.name == "S1" and lv.centroid_mm[0] > lowest.centroid_mm[0] + 40 for lv in result.vertebrae)
