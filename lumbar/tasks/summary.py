"""The Summary: the findings stated in plain language, each with the basis on which it may be trusted.

A finding is stated only where ``lumbar/validation.json`` records it as validated against an expert on real
images, and only at that record's operating point (at most 5% false positives on the expert's normal discs, on
patients the point was not chosen on); a disc graded from several series together, only where each series reaches
it (the points were measured on series graded alone). An image that failed its quality gate gets no Summary at all,
with the reason. Everything else stays in the tables, listed as not validated.
"""

from __future__ import annotations

from lumbar.findings import Disc, Statement
from lumbar.grades import BINARY_GRADES
from lumbar.validation import Validation

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V"}
DEGENERATED = "pfirrmann_4_5"  # Pfirrmann 4 or 5, a dark, collapsing disc: stated as one finding
GRADE_FINDINGS = {
    "herniation": "disc herniation",
    "bulging": "disc bulging",
    "narrowing": "disc narrowing",
    "endplate_upper": "defect of the endplate above the disc ({upper}'s inferior endplate)",
    "endplate_lower": "defect of the endplate below the disc ({lower}'s superior endplate)",
    "spondylolisthesis": "spondylolisthesis",
}
ON_T1 = (
    "Pfirrmann grades are defined on T2-weighted images: a disc graded only from series read as T1-weighted is not "
    "stated (give the patient's T2 series too, with --same-patient, which grades the series together where their "
    "level names allow)"
)
# Shown in the tables but never scored against an expert here: named so the report can mark them.
TABLE_FINDINGS = ("vertebral_height_loss", "central_stenosis", "slip", "disc_narrowing", "lordosis")


def _slip(disc: Disc, record: Validation, units: str) -> Statement | None:
    m = disc.measurements
    if units != "mm" or m is None or m.slip_mm is None or abs(m.slip_mm) < record.threshold:
        return None  # the threshold is in mm: a slip in pixels is never stated
    upper, lower = disc.level.split("/")
    if m.slip_mm > 0:
        grade = f", Meyerding grade {ROMAN[m.meyerding_grade]}" if m.meyerding_grade else ""
        text = (
            f"{disc.level}: anterolisthesis of {upper} on {lower} by {m.slip_mm:.1f} mm ({m.slip_percent:.0f}%{grade})."
        )
    else:
        text = f"{disc.level}: retrolisthesis of {upper} on {lower} by {abs(m.slip_mm):.1f} mm."
    return Statement(level=disc.level, finding="slip", text=text, basis=record.basis())


def _narrowing(disc: Disc, record: Validation) -> Statement | None:
    m = disc.measurements
    if m is None or m.height_index is None or -m.height_index < record.threshold:
        return None
    text = (
        f"{disc.level}: disc narrowed, height index {m.height_index:.2f} (the disc's height over its vertebral "
        f"bodies'; stated below {-record.threshold:.2f})."
    )
    return Statement(level=disc.level, finding="disc_narrowing", text=text, basis=record.basis())


def finding_probability(name: str, probabilities: dict[str, float]) -> float:
    """The probability of a grade finding from a grade's probabilities by value: Pfirrmann 4 or 5, Modic 1-3, a
    binary grade's 1."""
    if name == DEGENERATED:
        return probabilities.get("4", 0.0) + probabilities.get("5", 0.0)
    if name == "modic":
        return 1.0 - probabilities.get("0", 1.0)
    return probabilities.get("1", 0.0)


def _grade(disc: Disc, name: str, record: Validation) -> Statement | None:
    """A grade finding where its probability reaches the record's operating point; for a disc graded from several
    series together, where each series' own probability does (:class:`lumbar.findings.Grade`'s ``per_series``: the
    point's false-positive rate was measured on series graded alone, and their mean reaches it more often)."""
    grade = disc.grades.get("pfirrmann" if name == DEGENERATED else name)
    if grade is None or (name in (DEGENERATED, "modic") and grade.probabilities is None):
        return None
    if name in (DEGENERATED, "modic"):
        p = finding_probability(name, grade.probabilities or {})
        what = "degenerated disc (Pfirrmann 4–5)" if name == DEGENERATED else "Modic endplate change (type 1–3)"
    else:
        p = grade.probability if grade.value == 1 else 1 - grade.probability
        upper, _, lower = disc.level.partition("/")
        what = GRADE_FINDINGS.get(name, name.replace("_", " ")).format(upper=upper, lower=lower)
    each = {source: finding_probability(name, view) for source, view in (grade.per_series or {}).items()}
    if min([p, *each.values()]) < record.threshold:
        return None
    if each:
        series = ", ".join(f"{q:.0%}" for q in each.values())
        how = f"the mean of its {len(each)} series: {series}; stated where each series reaches {record.threshold:.0%}"
    else:
        how = f"stated from {record.threshold:.0%}"
    text = f"{disc.level}: {what}, grading model probability {p:.0%} ({how})."
    return Statement(level=disc.level, finding=name, text=text, basis=record.basis())


def _only_from(disc: Disc, series: frozenset[str]) -> bool:
    """Whether every series ``disc`` was graded from is one of ``series`` (False where none is named)."""
    return bool(disc.graded_from) and set(disc.graded_from) <= series


def summarise(
    discs: list[Disc],
    validation: dict[str, Validation],
    units: str,
    gate: list[str],
    grading_model: str = "",
    t1_series: frozenset[str] = frozenset(),
) -> tuple[list[Statement], str | None, dict[str, str]]:
    """(statements, why the Summary is withheld or None, the tables' findings that are not validated and why).
    A grade's record counts only for the grading model it was chosen on (``grading_model``: its weights' digest).
    A disc graded only from series read as T1-weighted (``t1_series``, as ``graded_from`` names them) gets no
    Pfirrmann statement: the grade is defined on T2-weighted images."""
    validation = {
        name: record
        if not record.model_sha256 or record.model_sha256 == grading_model
        else Validation(name, False, why="its operating point was chosen on another grading model's outputs")
        for name, record in validation.items()
    }
    not_validated = {
        name: validation[name].why if name in validation else "no validation record ships with this installation"
        for name in TABLE_FINDINGS
        if name not in validation or not validation[name].validated
    }
    graded = {name for d in discs for name in d.grades}
    for name in (*BINARY_GRADES, "modic", "pfirrmann"):
        record = validation.get(DEGENERATED if name == "pfirrmann" else name)
        if name in graded and (record is None or not record.validated):
            not_validated[name] = record.why if record else "no operating point validated against the expert"
    on_t1 = {d.level for d in discs if "pfirrmann" in d.grades and _only_from(d, t1_series)}
    if on_t1:
        not_validated.setdefault("pfirrmann", ON_T1)
    if gate:
        return [], "; ".join(gate), not_validated
    statements = []
    for disc in discs:
        for name, record in validation.items():
            if not record.validated or record.threshold is None:
                continue
            if name == "slip":
                statement = _slip(disc, record, units)
            elif name == "disc_narrowing":
                statement = _narrowing(disc, record)
            elif name == DEGENERATED and disc.level in on_t1:
                statement = None
            elif name in (*BINARY_GRADES, "modic", DEGENERATED):
                statement = _grade(disc, name, record)
            else:
                statement = None
            if statement is not None:
                statements.append(statement)
    return statements, None, not_validated
