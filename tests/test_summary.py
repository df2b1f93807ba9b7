"""The Summary states only validated findings, beyond their operating points, and nothing for a gated image."""

from lumbar.findings import Disc, DiscMeasurements, Grade, Stenosis
from lumbar.tasks.measurements import meyerding_grade
from lumbar.validation import Validation


def _disc(level, index=0.45, canal=15.0, slip=0.0, grade="normal", grades=None):
    m = DiscMeasurements(
        height_anterior_mm=10.0,
        height_middle_mm=10.0,
        height_posterior_mm=10.0,
        height_index=index,
        canal_ap_mm=canal,
        slip_mm=slip,
        slip_percent=slip / 36 * 100,
        meyerding_grade=meyerding_grade(slip / 36 * 100),
        angle_deg=5.0,
    )
    return Disc(
        level=level,
        label=1,
        measurements=m,
        grades=grades or {},
        stenosis=Stenosis(grade=grade, basis=f"AP diameter {canal} mm", thresholds=""),
    )


def _record(name, threshold, sensitivity, positives, negatives, unit=""):
    return Validation(
        name,
        True,
        threshold,
        unit,
        sensitivity=sensitivity,
        false_positive_rate=0.05,
        precision=0.6,
        auc=0.7,
        n_positive=positives,
        n_negative=negatives,
        reference="the expert",
    )


RECORD = {
    "slip": _record("slip", 4.0, 0.4, 30, 900, "mm"),
    "disc_narrowing": _record("disc_narrowing", -0.30, 0.3, 200, 700),
    "herniation": _record("herniation", 0.6, 0.2, 50, 900),
    "vertebral_height_loss": Validation("vertebral_height_loss", False, why="no expert fracture grade"),
}


def test_summary_states_only_validated_findings_beyond_their_operating_point():
    from lumbar.tasks.summary import summarise

    discs = [
        _disc("L2/L3", slip=3.9),  # below the 4 mm point: not stated
        _disc("L3/L4", slip=6.0),
        _disc("L4/L5", index=0.25, canal=8.5, grade="moderate"),  # stenosis is not validated: tables only
        _disc("L5/S1", slip=-5.0, grades={"herniation": Grade(value=1, probability=0.55, threshold=0.05)}),
    ]
    statements, withheld, not_validated = summarise(discs, RECORD, "mm", gate=[])
    assert withheld is None
    assert [(s.level, s.finding) for s in statements] == [
        ("L3/L4", "slip"),
        ("L4/L5", "disc_narrowing"),
        ("L5/S1", "slip"),
    ]
    assert statements[0].text == "L3/L4: anterolisthesis of L3 on L4 by 6.0 mm (17%, Meyerding grade I)."
    assert statements[2].text == "L5/S1: retrolisthesis of L5 on S1 by 5.0 mm."  # no Meyerding grade
    basis = statements[0].basis
    assert "found 40% of the expert's 30 positive disc images" in basis and "5.0% of the 900" in basis
    assert set(not_validated) >= {"vertebral_height_loss", "central_stenosis"} and "herniation" not in not_validated


def test_a_grade_is_stated_only_from_its_validated_probability():
    from lumbar.tasks.summary import summarise

    likely = _disc("L4/L5", grades={"herniation": Grade(value=1, probability=0.8, threshold=0.05)})
    called_low = _disc("L5/S1", grades={"herniation": Grade(value=1, probability=0.3, threshold=0.05)})
    statements, _, _ = summarise([likely, called_low], RECORD, "mm", gate=[])
    assert [s.text for s in statements] == ["L4/L5: disc herniation, grading model probability 80% (stated from 60%)."]


def test_no_summary_for_an_image_that_failed_its_quality_gate_or_has_no_spacing():
    from lumbar.tasks.summary import summarise

    slipped = [_disc("L3/L4", slip=6.0)]
    statements, withheld, _ = summarise(slipped, RECORD, "mm", gate=["vertebra L3 is segmented in pieces"])
    assert statements == [] and withheld == "vertebra L3 is segmented in pieces"
    assert summarise(slipped, RECORD, "pixels", gate=[])[0] == []  # a 6-pixel slip is not a 6 mm one
    assert summarise(slipped, {}, "mm", gate=[])[0] == []  # nothing validated ships: nothing is stated
