"""Stenosis grades at and around every threshold."""

import math

import pytest

from lumbar.tasks.stenosis import ABOVE_LUMBAR, grade_at_level, grade_central_stenosis


@pytest.mark.parametrize(
    "ap, grade",
    [
        (15.0, "normal"),
        (12.0, "normal"),
        (11.9, "mild"),
        (10.0, "mild"),
        (9.9, "moderate"),
        (7.0, "moderate"),
        (6.9, "severe"),
    ],
)
def test_grade_by_ap_diameter(ap, grade):
    assert grade_central_stenosis(ap).grade == grade


@pytest.mark.parametrize("area, grade", [(130, "normal"), (99, "mild"), (74, "moderate"), (40, "severe")])
def test_grade_by_dural_sac_area(area, grade):
    assert grade_central_stenosis(None, area).grade == grade


def test_the_worse_measurement_decides():
    result = grade_central_stenosis(13.0, 70.0)
    assert result.grade == "moderate" and "area" in result.basis
    assert grade_central_stenosis(8.0, 120.0).grade == "moderate"


def test_unmeasurable_is_unknown_not_normal():
    assert grade_central_stenosis(math.nan).grade == "unknown"
    assert grade_central_stenosis(None, None).grade == "unknown"


@pytest.mark.parametrize("area, grade", [(100.0, "normal"), (75.0, "mild"), (50.0, "moderate"), (49.4, "severe")])
def test_area_thresholds_are_strict(area, grade):
    assert grade_central_stenosis(None, area).grade == grade


def test_the_basis_names_the_deciding_measurement_with_its_value():
    assert grade_central_stenosis(8.04).basis == "AP diameter 8.0 mm"
    assert grade_central_stenosis(13.0, 70.4).basis == "dural sac area 70 mm²"
    tie = grade_central_stenosis(11.0, 90.0)  # both mild: the AP diameter is named
    assert (tie.grade, tie.basis) == ("mild", "AP diameter 11.0 mm")
    assert grade_central_stenosis(None, 90.0).basis == "dural sac area 90 mm²"
    assert grade_central_stenosis(11.0, math.nan).basis == "AP diameter 11.0 mm"
    from lumbar.tasks.stenosis import NOT_MEASURABLE

    assert grade_central_stenosis(None).basis == NOT_MEASURABLE


@pytest.mark.parametrize("level", ["L1/L2", "L5/S1"])
def test_lumbar_levels_are_graded_by_the_lumbar_thresholds(level):
    assert grade_at_level(level, 6.8).grade == "severe"
    assert grade_at_level(level, 11.0, 120.0).grade == "mild"
    # the dural sac area is passed on: where it is the worse of the two, it decides the grade
    graded = grade_at_level(level, 13.0, 45.0)
    assert (graded.grade, graded.basis) == ("severe", "dural sac area 45 mm²")


@pytest.mark.parametrize("level", ["T12/L1", "T10/T11", "T9/T10"])
def test_levels_above_l1l2_are_measured_but_never_graded(level):
    """A thoracic canal of 6.8 mm AP, where the cord runs, is no severe lumbar stenosis."""
    graded = grade_at_level(level, 6.8, 40.0)
    assert (graded.grade, graded.basis) == ("unknown", ABOVE_LUMBAR)


def test_a_level_is_graded_on_the_diameter_and_area_its_basis_shows():
    """11.96 mm reads '12.0 mm' and is graded as 12.0, normal; 9.96 as 10.0, mild; 99.6 mm² as 100, normal: the grade
    never contradicts the number beside it (found in review)."""
    assert grade_central_stenosis(11.96).grade == "normal"
    assert grade_central_stenosis(11.94).grade == "mild"
    assert (grade_central_stenosis(9.96).grade, grade_central_stenosis(9.96).basis) == ("mild", "AP diameter 10.0 mm")
    assert grade_central_stenosis(13.0, 99.6).grade == "normal"
    assert grade_central_stenosis(13.0, 99.4).basis == "dural sac area 99 mm²"
