"""Disc height index, slip percent and Meyerding grade against answers worked out by hand.

Every expectation here is computed from the geometry drawn in the test or from the grade's definition, never by
calling the code under test.
"""

import numpy as np
import pytest

from lumbar.labels import VERTEBRA_IDS, disc_label
from lumbar.tasks.levels import Level
from lumbar.tasks.measurements import consensus_slip, measure_spine, meyerding_grade

LEFT, RIGHT = 30, 70  # every structure spans columns 30..69: 40 mm deep at 1 mm pixels


def _spine() -> tuple[np.ndarray, list[Level]]:
    """A hand-drawn slice, 1 mm pixels, no canal: the L3/L4 disc (8 rows, no L3 body above it), L4 (30 rows),
    the L4/L5 disc (10 rows, its posterior part 6 rows) and L5 (20 rows)."""
    instances = np.zeros((130, 110), np.int32)
    instances[32:40, LEFT:RIGHT] = disc_label("L3")
    instances[40:70, LEFT:RIGHT] = VERTEBRA_IDS["L4"]
    instances[70:80, LEFT:RIGHT] = disc_label("L4")
    instances[70:72, 57:RIGHT] = 0  # the posterior third of L4/L5 is 6 rows tall (rows 72..77)
    instances[78:80, 57:RIGHT] = 0
    instances[80:100, LEFT:RIGHT] = VERTEBRA_IDS["L5"]
    up = (-1.0, 0.0)
    levels = [
        Level("L5", VERTEBRA_IDS["L5"], "vertebra", (89.5, 49.5), 800),
        Level("L4/L5", disc_label("L4"), "disc", (75.0, 49.5), 400, up),
        Level("L4", VERTEBRA_IDS["L4"], "vertebra", (54.5, 49.5), 1200),
        Level("L3/L4", disc_label("L3"), "disc", (35.5, 49.5), 320, up),
    ]
    return instances, levels


def test_disc_height_index_is_the_disc_mean_height_over_the_adjacent_bodies_mean_height():
    """Heights are read 15% of the depth in from each wall and at the middle: columns 36, 49-50 and 63 here.
    L4/L5: 10, 10 and 6 mm (mean 26/3) between L4 (30 mm) and L5 (20 mm), so 26/3 / 25. L3/L4: 8 mm over L4's 30
    (no L3 body). Dividing by the taller body (30), by the disc's largest height, or inverting the ratio all fail."""
    instances, levels = _spine()
    m = measure_spine(instances, levels, (1.0, 1.0))
    l4l5 = m.discs["L4/L5"]
    assert (l4l5.height_anterior_mm, l4l5.height_middle_mm, l4l5.height_posterior_mm) == pytest.approx((10, 10, 6))
    assert m.vertebrae["L4"].height_middle_mm == pytest.approx(30) and m.vertebrae[
        "L5"
    ].height_middle_mm == pytest.approx(20)
    assert l4l5.height_index == pytest.approx((26 / 3) / 25)
    assert m.discs["L3/L4"].height_index == pytest.approx(8 / 30)


@pytest.mark.parametrize(
    "percent, grade",
    [
        (4.99, 0),
        (5.0, 1),
        (24.99, 1),
        (25.0, 2),
        (49.99, 2),
        (50.0, 3),
        (74.99, 3),
        (75.0, 4),
        (99.99, 4),
        (100.0, 5),
        (180.0, 5),
    ],
)
def test_meyerding_grade_boundaries(percent, grade):
    """Meyerding 1932: I below 25%, II 25 to under 50, III to under 75, IV to under 100, V from 100 (a slip at a
    boundary belongs to the higher grade); under 5% is within measurement error."""
    assert meyerding_grade(percent) == grade
    assert meyerding_grade(percent, slip_mm=9.0) == grade  # a slip well over 3 mm keeps its grade


def test_slip_percent_is_the_slip_over_the_lower_endplate_depth():
    """Three slices agree on 7.0-7.4 mm over a 36 mm endplate: median 7.2 mm, 20% (Meyerding I); 9 mm over 36 mm is
    25% (Meyerding II)."""
    slip, percent = consensus_slip([(7.0, 36.0), (7.2, 36.0), (7.4, 36.0)], available=3)
    assert slip == pytest.approx(7.2) and percent == pytest.approx(20.0)
    assert consensus_slip([(9.0, 36.0)] * 3, available=3)[1] == pytest.approx(25.0)
    assert consensus_slip([(-4.5, 30.0)] * 3, available=3) == pytest.approx((-4.5, -15.0))  # a retrolisthesis


@pytest.mark.parametrize(
    "heights, grade, reduction",
    [
        ((20.0, 20.0, 20.0), 0, 0.0),
        ((16.2, 20.0, 20.0), 0, 0.19),  # 19%: normal
        ((16.0, 20.0, 20.0), 1, 0.20),  # 20% exactly: mild
        ((15.2, 20.0, 20.0), 1, 0.24),
        ((15.0, 20.0, 20.0), 2, 0.25),  # 25% exactly: moderate
        ((20.0, 20.0, 12.0), 2, 0.40),  # 40% exactly: still moderate (severe is over 40%)
        ((20.0, 11.8, 20.0), 3, 0.41),
        ((10.0, 25.0, 20.0), 3, 0.60),  # the largest reduction within the body: min over max
    ],
)
def test_genant_boundaries_and_reduction(heights, grade, reduction):
    from lumbar.tasks.measurements import genant_grade

    got_grade, got_reduction = genant_grade(heights)
    assert got_grade == grade and got_reduction == pytest.approx(reduction)


@pytest.mark.parametrize("heights", [(float("nan"), 20.0, 20.0), (0.0, 0.0, 0.0)])
def test_genant_is_not_graded_without_every_height(heights):
    from lumbar.tasks.measurements import genant_grade

    grade, reduction = genant_grade(heights)
    assert grade is None and np.isnan(reduction)


def test_a_height_index_leaves_out_a_body_whose_outline_is_wrong():
    """L4 with a hole of 10 x 20 mm (solidity 1000/1200, under 0.85: a fragment or joined arch, its heights not a
    body's) is no measure of the disc's neighbours: L4/L5's index is its mean height (26/3) over L5's 20 mm alone,
    and L3/L4, whose only neighbour is L4, has none."""
    instances, levels = _spine()
    instances[50:60, 40:60] = 0
    m = measure_spine(instances, levels, (1.0, 1.0))
    assert m.vertebrae["L4"].genant_not_graded.startswith("outline not convex")
    assert m.discs["L4/L5"].height_index == pytest.approx((26 / 3) / 20)
    assert m.discs["L3/L4"].height_index is None
