"""The Summary states only validated findings, beyond their operating points, and nothing for a gated image."""

import pytest

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


def _graded(level, **grades):
    return _disc(level, grades=grades)


PFIRRMANN_45 = _record("pfirrmann_4_5", 0.6, 0.2, 100, 900)
MODIC = _record("modic", 0.5, 0.2, 100, 900)
BULGING = _record("bulging", 0.7, 0.2, 100, 900)


def test_degeneration_is_stated_from_the_probability_of_pfirrmann_4_or_5():
    """P(4) + P(5) = 0.35 + 0.30 = 0.65 reaches 0.6 although the most likely grade is 3."""
    probs = {"1": 0.0, "2": 0.05, "3": 0.30, "4": 0.35, "5": 0.30}
    disc = _graded("L4/L5", pfirrmann=Grade(value=4, probability=0.35, probabilities=probs))
    statements, _, _ = summarise_with({"pfirrmann_4_5": PFIRRMANN_45}, [disc])
    assert [s.text for s in statements] == [
        "L4/L5: degenerated disc (Pfirrmann 4–5), grading model probability 65% (stated from 60%)."
    ]
    low = {"1": 0.0, "2": 0.10, "3": 0.35, "4": 0.30, "5": 0.25}  # 0.55: below the point
    disc = _graded("L4/L5", pfirrmann=Grade(value=3, probability=0.35, probabilities=low))
    assert summarise_with({"pfirrmann_4_5": PFIRRMANN_45}, [disc])[0] == []
    no_classes = _graded("L4/L5", pfirrmann=Grade(value=5, probability=0.9))
    assert summarise_with({"pfirrmann_4_5": PFIRRMANN_45}, [no_classes])[0] == []


def test_degeneration_is_not_stated_from_series_read_as_t1_weighted_only():
    """Pfirrmann is defined on T2: a disc graded only from T1 series states no degeneration and says why; graded
    from a T2 series too (``--same-patient``), it does; a disc whose sources are unnamed is not judged by them."""
    from lumbar.tasks.summary import ON_T1, summarise

    probs = {"1": 0.0, "2": 0.0, "3": 0.1, "4": 0.5, "5": 0.4}
    grade = Grade(value=4, probability=0.5, probabilities=probs)
    on_t1 = _graded("L4/L5", pfirrmann=grade).model_copy(update={"graded_from": ("a.png",)})
    both = on_t1.model_copy(update={"graded_from": ("a.png", "b.png")})
    record = {"pfirrmann_4_5": PFIRRMANN_45}
    statements, _, not_validated = summarise([on_t1], record, "mm", [], t1_series=frozenset({"a.png"}))
    assert statements == [] and not_validated["pfirrmann"] == ON_T1
    statements, _, not_validated = summarise([both], record, "mm", [], t1_series=frozenset({"a.png"}))
    assert [s.finding for s in statements] == ["pfirrmann_4_5"] and "pfirrmann" not in not_validated
    assert len(summarise([on_t1], record, "mm", [])[0]) == 1  # no series read as T1
    _, withheld, not_validated = summarise([on_t1], record, "mm", ["a disc in pieces"], t1_series=frozenset({"a.png"}))
    assert withheld == "a disc in pieces" and not_validated["pfirrmann"] == ON_T1  # said even with no Summary
    unnamed = _graded("L4/L5", pfirrmann=grade)
    assert len(summarise([unnamed], record, "mm", [], t1_series=frozenset({"a.png"}))[0]) == 1


def test_modic_is_stated_from_one_minus_the_probability_of_type_0():
    probs = {"0": 0.45, "1": 0.40, "2": 0.10, "3": 0.05}
    disc = _graded("L5/S1", modic=Grade(value=0, probability=0.45, probabilities=probs))
    statements, _, _ = summarise_with({"modic": MODIC}, [disc])
    assert [s.text for s in statements] == [
        "L5/S1: Modic endplate change (type 1–3), grading model probability 55% (stated from 50%)."
    ]
    assert statements[0].finding == "modic" and statements[0].basis == MODIC.basis()


def test_a_binary_grade_called_negative_is_stated_from_its_positive_probability():
    """Value 0 with probability 0.2 means P(positive) = 0.8: at or above the 0.7 point, so stated; 0.35 is not."""
    stated = _graded("L3/L4", bulging=Grade(value=0, probability=0.2, threshold=0.9))
    quiet = _graded("L4/L5", bulging=Grade(value=0, probability=0.65, threshold=0.5))
    statements, _, _ = summarise_with({"bulging": BULGING}, [stated, quiet])
    assert [s.text for s in statements] == ["L3/L4: disc bulging, grading model probability 80% (stated from 70%)."]
    exactly = _graded("L3/L4", bulging=Grade(value=1, probability=0.7, threshold=0.5))
    assert len(summarise_with({"bulging": BULGING}, [exactly])[0]) == 1  # the point itself states


def test_a_disc_graded_from_several_series_is_stated_only_where_each_series_reaches_the_point():
    """The points were measured on series graded alone; a mean of T1 and T2 reaches one that a series alone does
    not (0.9 and 0.55 average 0.725 >= 0.7), at a false-positive rate nobody measured. Stated only where every
    series reaches it, which calls no more discs than any one series would."""
    both_high = {"t1": {"0": 0.1, "1": 0.9}, "t2": {"0": 0.25, "1": 0.75}}
    disc = _graded("L3/L4", bulging=Grade(value=1, probability=0.825, threshold=0.5, per_series=both_high))
    statements, _, _ = summarise_with({"bulging": BULGING}, [disc])
    assert [s.text for s in statements] == [
        "L3/L4: disc bulging, grading model probability 82% (the mean of its 2 series: 90%, 75%; stated where each "
        "series reaches 70%)."
    ]
    one_low = {"t1": {"0": 0.1, "1": 0.9}, "t2": {"0": 0.45, "1": 0.55}}
    disc = _graded("L3/L4", bulging=Grade(value=1, probability=0.725, threshold=0.5, per_series=one_low))
    assert summarise_with({"bulging": BULGING}, [disc])[0] == []
    at_point = {"t1": {"0": 0.3, "1": 0.7}, "t2": {"0": 0.2, "1": 0.8}}  # the point itself, in one series
    disc = _graded("L3/L4", bulging=Grade(value=1, probability=0.75, threshold=0.5, per_series=at_point))
    assert len(summarise_with({"bulging": BULGING}, [disc])[0]) == 1
    views = {  # Pfirrmann 4-5: 0.8 and 0.5 (mean 0.65 >= 0.6); Modic 1-3: 0.6 and 0.45 (mean 0.525 >= 0.5)
        "t1": ({"1": 0.0, "2": 0.0, "3": 0.2, "4": 0.5, "5": 0.3}, {"0": 0.4, "1": 0.3, "2": 0.2, "3": 0.1}),
        "t2": ({"1": 0.0, "2": 0.1, "3": 0.4, "4": 0.3, "5": 0.2}, {"0": 0.55, "1": 0.3, "2": 0.1, "3": 0.05}),
    }
    mean_pf = {c: (views["t1"][0][c] + views["t2"][0][c]) / 2 for c in views["t1"][0]}
    mean_mo = {c: (views["t1"][1][c] + views["t2"][1][c]) / 2 for c in views["t1"][1]}
    disc = _graded(
        "L4/L5",
        pfirrmann=Grade(
            value=4, probability=0.4, probabilities=mean_pf, per_series={k: v[0] for k, v in views.items()}
        ),
        modic=Grade(value=0, probability=0.475, probabilities=mean_mo, per_series={k: v[1] for k, v in views.items()}),
    )
    assert summarise_with({"pfirrmann_4_5": PFIRRMANN_45, "modic": MODIC}, [disc])[0] == []
    alone = _graded(  # the same means graded from one series: stated
        "L4/L5",
        pfirrmann=Grade(value=4, probability=0.4, probabilities=mean_pf),
        modic=Grade(value=0, probability=0.475, probabilities=mean_mo),
    )
    assert [s.finding for s in summarise_with({"pfirrmann_4_5": PFIRRMANN_45, "modic": MODIC}, [alone])[0]] == [
        "pfirrmann_4_5",
        "modic",
    ]


def test_slip_and_narrowing_are_stated_at_their_points_inclusive():
    record = {
        "slip": _record("slip", 4.0, 0.4, 30, 900, "mm"),
        "disc_narrowing": _record("disc_narrowing", -0.30, 0.3, 1, 1),
    }
    at_points = [_disc("L3/L4", slip=4.0), _disc("L4/L5", index=0.30)]
    assert [s.finding for s in summarise_with(record, at_points)[0]] == ["slip", "disc_narrowing"]
    beyond = [_disc("L3/L4", slip=-3.99), _disc("L4/L5", index=0.31)]
    assert summarise_with(record, beyond)[0] == []
    narrowed = summarise_with(record, [_disc("L4/L5", index=0.25)])[0][0]
    assert narrowed.text == (
        "L4/L5: disc narrowed, height index 0.25 (the disc's height over its vertebral bodies'; stated below 0.30)."
    )


def test_a_grade_point_chosen_on_another_model_is_not_used():
    record = _record("bulging", 0.7, 0.2, 100, 900)
    record = Validation(**{**record.__dict__, "model_sha256": "abc"})
    disc = _graded("L3/L4", bulging=Grade(value=1, probability=0.9, threshold=0.5))
    from lumbar.tasks.summary import summarise

    statements, _, not_validated = summarise([disc], {"bulging": record}, "mm", gate=[], grading_model="def")
    assert statements == []
    assert not_validated["bulging"] == "its operating point was chosen on another grading model's outputs"
    statements, _, not_validated = summarise([disc], {"bulging": record}, "mm", gate=[], grading_model="abc")
    assert len(statements) == 1 and "bulging" not in not_validated


def test_what_is_not_validated_says_why():
    disc = _graded("L3/L4", herniation=Grade(value=0, probability=0.9, threshold=0.5))
    unvalidated = Validation("slip", False, why="the level alone does better")
    _, _, not_validated = summarise_with({"slip": unvalidated}, [disc])
    assert not_validated["slip"] == "the level alone does better"
    assert not_validated["central_stenosis"] == "no validation record ships with this installation"
    assert not_validated["herniation"] == "no operating point validated against the expert"
    no_point = Validation("bulging", True, None)  # validated but no threshold: never stated
    stated = _graded("L3/L4", bulging=Grade(value=1, probability=0.99, threshold=0.5))
    assert summarise_with({"bulging": no_point}, [stated])[0] == []


def summarise_with(validation, discs):
    from lumbar.tasks.summary import summarise

    return summarise(discs, validation, "mm", gate=[])


def test_the_grading_figures_come_with_the_level_guess_of_the_same_model(tmp_path):
    """The trivial baseline is read only for the weights it was measured beside, and shown next to the model's."""
    import json

    from lumbar.models.registry import load_model
    from lumbar.pipelines.mr_sagittal import grading_reliability
    from lumbar.validation import level_guess_balanced_accuracy

    record = tmp_path / "validation.json"
    record.write_text(json.dumps({"grades": {"model_sha256": "abc", "level_guess_balanced_accuracy": {"modic": 0.3}}}))
    assert level_guess_balanced_accuracy("abc", str(record)) == {"modic": 0.3}
    assert level_guess_balanced_accuracy("other weights", str(record)) == {}
    model = load_model("grading")
    guess = level_guess_balanced_accuracy(model.sha256)
    assert guess, "the shipped validation record was measured beside other grading weights"
    text = grading_reliability(model)
    assert f"(a guess from the disc's level alone: {guess['pfirrmann']:.2f})" in text
    binary = [v for name, v in guess.items() if name not in ("pfirrmann", "modic")]
    assert f"(the level alone: {min(binary):.2f}–{max(binary):.2f})" in text


# Exact statements for the cases the tests above leave open, each text written out by hand.


def _measured(level, slip=None, percent=None, meyerding=None, index=None):
    """A disc whose measurements carry only what a test sets (None elsewhere)."""
    m = DiscMeasurements(
        height_anterior_mm=None,
        height_middle_mm=None,
        height_posterior_mm=None,
        height_index=index,
        canal_ap_mm=None,
        slip_mm=slip,
        slip_percent=percent,
        meyerding_grade=meyerding,
        angle_deg=None,
    )
    return Disc(level=level, label=1, measurements=m)


def test_a_disc_without_the_measurement_is_not_stated():
    """A slip or height index that could not be measured (None), or a disc with no measurements at all, is
    silently left out of the Summary: nothing to compare with the point."""
    discs = [_measured("L3/L4"), Disc(level="L4/L5", label=2)]
    assert summarise_with(RECORD, discs)[0] == []


def test_a_small_anterolisthesis_is_still_anterior_and_an_ungraded_one_has_no_grade():
    """With the point at 0.5 mm, a slip of +0.8 mm is stated as an anterolisthesis (the sign, not its size, gives
    the direction). Meyerding 0 (under 5%) or unknown adds no grade to the text."""
    record = {"slip": _record("slip", 0.5, 0.4, 30, 900, "mm")}
    small = _measured("L4/L5", slip=0.8, percent=2.0, meyerding=0)
    unknown = _measured("L5/S1", slip=5.0, percent=12.0, meyerding=None)
    assert [s.text for s in summarise_with(record, [small, unknown])[0]] == [
        "L4/L5: anterolisthesis of L4 on L5 by 0.8 mm (2%).",
        "L5/S1: anterolisthesis of L5 on S1 by 5.0 mm (12%).",
    ]


def test_degeneration_with_a_grade_missing_from_the_probabilities():
    """A class absent from the probabilities counts as 0: P(4) alone 0.65, or P(5) alone 0.7, reaches 0.6."""
    only_4 = {"1": 0.05, "2": 0.1, "3": 0.2, "4": 0.65}
    only_5 = {"1": 0.05, "2": 0.1, "3": 0.15, "5": 0.7}
    discs = [
        _graded("L3/L4", pfirrmann=Grade(value=4, probability=0.65, probabilities=only_4)),
        _graded("L4/L5", pfirrmann=Grade(value=5, probability=0.7, probabilities=only_5)),
    ]
    statements = summarise_with({"pfirrmann_4_5": PFIRRMANN_45}, discs)[0]
    assert [(s.level, s.finding, s.text) for s in statements] == [
        (
            "L3/L4",
            "pfirrmann_4_5",
            "L3/L4: degenerated disc (Pfirrmann 4–5), grading model probability 65% (stated from 60%).",
        ),
        (
            "L4/L5",
            "pfirrmann_4_5",
            "L4/L5: degenerated disc (Pfirrmann 4–5), grading model probability 70% (stated from 60%).",
        ),
    ]


def test_discs_without_a_validated_grade_are_skipped_quietly():
    """Records for Pfirrmann 4-5 and Modic, but a disc graded for neither, and a Modic grade whose probabilities
    leave out type 0 (read as P(type 0) = 1, so P(change) = 0): nothing is stated."""
    no_grades = _graded("L3/L4")
    no_type_0 = _graded("L4/L5", modic=Grade(value=1, probability=0.5, probabilities={"1": 0.5, "2": 0.3, "3": 0.2}))
    assert summarise_with({"pfirrmann_4_5": PFIRRMANN_45, "modic": MODIC}, [no_grades, no_type_0])[0] == []


def test_every_binary_grade_is_named_in_plain_words():
    """Each binary grade called with probability 0.9 (point 0.7) is stated at its disc under its plain name."""
    names = {
        "herniation": "disc herniation",
        "bulging": "disc bulging",
        "narrowing": "disc narrowing",
        "endplate_upper": "defect of the endplate above the disc (L2's inferior endplate)",
        "endplate_lower": "defect of the endplate below the disc (L3's superior endplate)",
        "spondylolisthesis": "spondylolisthesis",
    }
    for name, words in names.items():
        disc = _graded("L2/L3", **{name: Grade(value=1, probability=0.9, threshold=0.5)})
        statements = summarise_with({name: _record(name, 0.7, 0.2, 100, 900)}, [disc])[0]
        assert [(s.level, s.finding, s.text) for s in statements] == [
            ("L2/L3", name, f"L2/L3: {words}, grading model probability 90% (stated from 70%).")
        ]


def test_graded_but_unvalidated_modic_and_pfirrmann_are_listed():
    """Modic and Pfirrmann grades with no validated record are listed as not validated; Pfirrmann's record is the
    one named pfirrmann_4_5 (the finding stated from it), so a validated one keeps it off the list and an
    unvalidated one gives its reason."""
    probs = {"1": 0.1, "2": 0.2, "3": 0.3, "4": 0.2, "5": 0.2}
    disc = _graded(
        "L4/L5",
        modic=Grade(value=0, probability=0.9, probabilities={"0": 0.9, "1": 0.1, "2": 0.0, "3": 0.0}),
        pfirrmann=Grade(value=3, probability=0.3, probabilities=probs),
    )
    not_validated = summarise_with({}, [disc])[2]
    assert not_validated["modic"] == not_validated["pfirrmann"] == "no operating point validated against the expert"
    assert "pfirrmann" not in summarise_with({"pfirrmann_4_5": PFIRRMANN_45}, [disc])[2]
    unvalidated = Validation("pfirrmann_4_5", False, why="no better than the level alone")
    assert summarise_with({"pfirrmann_4_5": unvalidated}, [disc])[2]["pfirrmann"] == "no better than the level alone"


def test_every_gate_reason_is_given():
    """Two failed checks: the Summary is withheld with both reasons, joined by '; '."""
    _, withheld, _ = summarise_with_gate(["vertebra L3 is in pieces", "no sacrum in view"])
    assert withheld == "vertebra L3 is in pieces; no sacrum in view"


def summarise_with_gate(gate):
    from lumbar.tasks.summary import summarise

    return summarise([_disc("L3/L4", slip=6.0)], RECORD, "mm", gate=gate)


def test_a_record_without_a_statement_rule_states_nothing_and_stops_nothing():
    """A validated record for a finding the Summary has no rule for (central stenosis) states nothing, and an
    unvalidated record listed first does not keep the slip after it from being stated."""
    validation = {
        "vertebral_height_loss": Validation("vertebral_height_loss", False, why="no expert fracture grade"),
        "central_stenosis": _record("central_stenosis", 10.0, 0.5, 10, 10, "mm"),
        "slip": _record("slip", 4.0, 0.4, 30, 900, "mm"),
    }
    statements = summarise_with(validation, [_disc("L3/L4", slip=6.0)])[0]
    assert [(s.level, s.finding) for s in statements] == [("L3/L4", "slip")]


def test_a_grade_statement_gives_its_false_positive_rate_with_the_patient_ci_from_the_record(tmp_path):
    """``in_sample_ci95`` of a record (patient bootstrap at the point chosen on all patients) reaches the basis
    sentence, so that a reader sees how far the measured rate could be off; a record without it says nothing more."""
    import json

    from lumbar.validation import load_validation

    entry = {
        "validated": True,
        "threshold": 0.8,
        "sensitivity": 0.19,
        "false_positive_rate": 0.049,
        "precision": 0.71,
        "n_positive": 963,
        "n_negative": 1509,
        "in_sample_ci95": {"false_positive_rate": [0.022, 0.0596]},
    }
    path = tmp_path / "validation.json"
    path.write_text(json.dumps({"grades": {"short_reference": "x", "findings": {"endplate_upper": entry}}}))
    record = load_validation(str(path))["endplate_upper"]
    assert record.false_positive_rate_ci95 == (0.022, 0.0596)
    assert (
        "called 4.9% of the 1509 the expert graded normal (at the point chosen on all patients, in sample, the rate's "
        "95% CI by patient is 2.2% to 6.0%)" in record.basis()
    )
    del entry["in_sample_ci95"]
    bare = tmp_path / "bare.json"  # records are read once per path
    bare.write_text(json.dumps({"grades": {"short_reference": "x", "findings": {"endplate_upper": entry}}}))
    assert "CI" not in load_validation(str(bare))["endplate_upper"].basis()


def test_every_validated_grade_in_the_shipped_record_states_its_patient_ci():
    from lumbar.validation import load_validation

    grades = [r for r in load_validation().values() if r.validated and r.false_positive_rate_upper95 is None]
    assert grades
    for record in grades:
        low, high = record.false_positive_rate_ci95
        assert 0 <= low < high <= 1 and "the rate's 95% CI by patient" in record.basis()
    assert all(r.false_positive_rate_ci95[1] > 0.05 for r in grades)  # as the README says: a rate, not a bound


@pytest.mark.parametrize(
    ("interval", "problem"),
    [
        (None, None),
        ([float("nan"), float("nan")], None),
        ([0.02], "two rates"),
        (["a", "b"], "two rates"),
        ([0.06, 0.02], "not an interval"),
        ([-0.1, 0.2], "not an interval"),
    ],
)
def test_a_record_without_a_statable_ci_states_none_and_a_broken_one_is_refused(tmp_path, interval, problem):
    """No CI (or a bootstrap without negatives: NaN) adds nothing to the sentence; a malformed one is a broken
    record, named, never printed as 'nan%' or read as a different interval."""
    import json

    from lumbar.validation import load_validation

    entry = {
        "validated": True,
        "threshold": 0.8,
        "sensitivity": 0.2,
        "false_positive_rate": 0.04,
        "n_positive": 10,
        "n_negative": 100,
        "in_sample_ci95": {"false_positive_rate": interval},
    }
    path = tmp_path / f"validation_{problem}.json"
    path.write_text(json.dumps({"grades": {"short_reference": "x", "findings": {"bulging": entry}}}))
    if problem:
        with pytest.raises(ValueError, match=f"'bulging'.*{problem}"):
            load_validation(str(path))
    else:
        record = load_validation(str(path))["bulging"]
        assert record.false_positive_rate_ci95 is None and "CI" not in record.basis() and "nan" not in record.basis()
