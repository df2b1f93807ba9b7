"""Render findings and figures as a self-contained HTML report (images embedded) and the same page as PDF.

The report draws nothing and computes nothing clinical: it lays out what the pipeline put into the
findings and the figures, so that it can never disagree with ``findings.json``.
"""

from __future__ import annotations

import base64
import math
import os
import re
import string
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from lumbar.figures import Evidence, Figures, png_bytes
from lumbar.findings import FINDING_NAMES, LORDOSIS_MISREAD, DiscMeasurements, Findings, Grade, graded_together
from lumbar.grades import called_below_even_odds, is_abnormal
from lumbar.image import PICTURE_FORMATS
from lumbar.io.write import atomic_path, write_text
from lumbar.labels import STRUCTURE_COLOURS, STRUCTURE_NAMES

TEMPLATES = Path(__file__).parent / "templates"


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    """A number for the report: rounded, with its unit, or a dash when it could not be measured."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]  # a value that rounds to zero is not negative ("-0.0")
    return f"{text}{(' ' + unit) if unit and unit != '°' else unit}"


# A folder path (an absolute one, not a level name like L4/L5/S1) and the name at its end.
LOCAL_PATH = re.compile(r"(?<![\w.~-])/(?:[^/\s]+/)*([^/\s,;:()\[\]]+)")


def without_folders(text: str, paths: tuple[str, ...] = ()) -> str:
    """``text`` without the folders of ``paths`` (the study's inputs, whose names may hold spaces), and with every
    other absolute path shortened to its last name, as the title shows the input: a report is read away from the
    machine that wrote it, and folder names there are often a patient's."""
    folders = {str(folder) for path in paths for folder in Path(path).parents if folder.name}
    for folder in sorted(folders, key=len, reverse=True):
        text = text.replace(folder + os.sep, "")
    return LOCAL_PATH.sub(lambda match: match.group(1), text)


def series_path(label: str) -> str:
    """The file or folder a series label names (``graded_from``: "PATH", "PATH (series 3 T2)", "PATH [2]")."""
    return re.sub(r" \[\d+\]$", "", label).split(" (series ")[0]


def grading_reliability(f: Findings) -> str:
    """The grading model's own figures (from the findings) and the rule the Summary follows."""
    if not f.grading_reliability:
        return ""
    return (
        f"{f.grading_reliability} A grade reaches the Summary only at an operating point validated against the expert."
    )


def high_specificity_note(f: Findings) -> str:
    """Which operating points the grade table shows: every binary value at its balanced-accuracy threshold, and a
    star where the call also holds at the high-specificity one (the grade's threshold and specificity listed)."""
    points = {}
    for d in f.discs:
        for name, g in d.grades.items():
            if g.threshold_high_specificity is not None and g.specificity_high is not None:
                points.setdefault(name, (g.threshold, g.threshold_high_specificity, g.specificity_high))
    if not points:
        return ""
    listed = "; ".join(
        f"{name.replace('_', ' ')} {100 * low:.0f}% / {100 * high:.0f}% (specificity {100 * spec:.0f}%)"
        for name, (low, high, spec) in points.items()
    )
    return (
        "Binary grades are called at the threshold chosen for balanced accuracy; ✱ marks a call that also holds at the "
        "high-specificity threshold (chosen on cross-validated outputs to call at most 5% of the expert's normal "
        "discs; specificity measured on other patients): the point the Summary states a validated grade from (a grade "
        f"marked † is never stated, whatever its mark). Thresholds, balanced / high-specificity: {listed}."
    )


def caption(e: Evidence, grade: Grade | None = None) -> str:
    """``L4/L5 herniation 1? (7%)``: the grade an evidence map explains, marked as the grade table marks it (``grade``:
    the disc's grade in the findings, whose high-specificity call the table stars)."""
    unsure = "?" if called_below_even_odds(e.grade, e.value, e.probability) else ""
    star = "✱" if grade is not None and grade.value_high_specificity else ""
    return f"{e.level} {e.grade.replace('_', ' ')} {e.value}{unsure}{star} ({100 * e.probability:.0f}%)"


# Findings whose key alone would not say what was (not) validated: a measured narrowing beside the graded one.
NOT_VALIDATED_NAMES = {
    "disc_narrowing": "disc narrowing from the measured height index",
    "narrowing": "the narrowing grade",
    "slip": "the measured slip and its Meyerding grade",
    "central_stenosis": "central stenosis grades",
    "vertebral_height_loss": "vertebral height loss (Genant grade)",
}


def not_validated_groups(f: Findings) -> list[tuple[str, str]]:
    """The findings not validated, those sharing one reason named together: ("level names, canal", why)."""
    groups: dict[str, list[str]] = {}
    for name, why in f.not_validated.items():
        groups.setdefault(why, []).append(NOT_VALIDATED_NAMES.get(name, name.replace("_", " ")))
    return [(", ".join(names), why) for why, names in groups.items()]


NO_STENOSIS = "the disc was not measured (no canal diameter to grade)"


def not_graded(f: Findings) -> str:
    """Why the levels without a stenosis grade have none, levels sharing a reason named together:
    "T10/T11, T11/T12: above L1/L2: ...; L5/S1: canal not measurable at this level" ("" where every level is graded)."""
    groups: dict[str, list[str]] = {}
    for d in f.discs:
        if d.stenosis is None:  # shown "unknown" like a grade that is: the reason said alike
            groups.setdefault(NO_STENOSIS, []).append(d.level)
        elif d.stenosis.grade == "unknown":
            groups.setdefault(d.stenosis.basis, []).append(d.level)
    return "; ".join(f"{', '.join(levels)}: {basis}" for basis, levels in groups.items())


MEYERDING_NOTE = (
    "the grade of a forward slip; 0 within measurement error either way (under 3 mm, or 5% of the depth; 10% where "
    'the pixel size is unknown); "retro" a backward slip beyond that, which Meyerding does not grade.'
)


def meyerding(m: DiscMeasurements) -> str:
    """A disc's Meyerding cell: the grade of a forward slip, "retro" for a backward one (which Meyerding does not
    grade), a dash where no slip was measured."""
    if m.meyerding_grade is not None:
        return str(m.meyerding_grade)
    return "retro" if m.slip_mm is not None and m.slip_mm < 0 else "–"


def genant_reasons(f: Findings) -> dict[str, str]:
    """Each distinct reason a vertebra has no Genant grade, lettered a, b, ... in table order: the table marks the
    dash with its letter and lists the reasons once below."""
    reasons: dict[str, str] = {}
    for v in f.vertebrae:
        why = v.measurements.genant_not_graded if v.measurements else None
        if why and why not in reasons:
            reasons[why] = string.ascii_lowercase[len(reasons)]  # a handful of distinct reasons exist
    return reasons


def summary_bases(f: Findings) -> dict[str, str]:
    """Each distinct basis of the Summary's statements, in order, with the finding it validates: a statement carries
    its basis's number and the bases are listed once below the Summary (many statements share one)."""
    bases: dict[str, str] = {}
    for s in f.summary:
        bases.setdefault(s.basis, FINDING_NAMES.get(s.finding, s.finding.replace("_", " ").capitalize()))
    return bases


def render_html(f: Findings, figures: Figures) -> str:
    """The report page, with the overview and the evidence maps embedded as base64 PNG."""
    title = Path(f.input.source).name + (f" ({f.input.series_description})" if f.input.series_description else "")
    together = graded_together([d.graded_from for d in f.discs])
    unsure = any(called_below_even_odds(name, g.value, g.probability) for d in f.discs for name, g in d.grades.items())
    graded = [d.stenosis for d in f.discs if d.stenosis and d.stenosis.grade != "unknown"]
    citation = graded[0].thresholds if graded else ""  # a citation for grades no disc was given would mislead
    ungraded = not_graded(f)
    withholding = [reason for reason in f.needs_review if f.summary_withheld and reason in f.summary_withheld]
    grades = {d.level: d.grades for d in f.discs}
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    inputs = (f.input.source, *(series_path(label) for d in f.discs for label in d.graded_from or ()))
    env.filters["without_folders"] = lambda text: without_folders(text, inputs)
    return env.get_template("report.html.j2").render(
        f=f,
        frontal=f.view == "frontal",
        lateral=f.view == "lateral",
        ct=f.input.modality == "CT" and f.view == "sagittal",
        title=title,
        unit=f.units,
        fmt=fmt,
        nv=lambda name: Markup('<sup class="nv">†</sup>') if name in f.not_validated else "",
        not_validated=not_validated_groups(f),
        citation=citation,
        ungraded=ungraded,
        picture=f.input.format in PICTURE_FORMATS and f.input.shape[0] == 1,
        withholding=withholding,
        withheld_as_listed=bool(withholding) and "; ".join(withholding) == f.summary_withheld,
        overlay=base64.b64encode(png_bytes(figures.overview)).decode(),
        colours={name: STRUCTURE_COLOURS[s] for s, name in STRUCTURE_NAMES.items()},
        grade_names=list(next((d.grades for d in f.discs if d.grades), {})),
        lordosis_misread=any(reason.startswith(LORDOSIS_MISREAD) for reason in f.needs_review),
        is_abnormal=is_abnormal,
        grading_reliability=grading_reliability(f),
        high_specificity=high_specificity_note(f),
        genant_reasons=genant_reasons(f),
        meyerding=meyerding,
        meyerding_note=MEYERDING_NOTE,
        bases=summary_bases(f),
        l5s1_unmeasured=f.input.modality == "MR"
        and any(d.level == "L5/S1" and d.measurements and d.measurements.slip_mm is None for d in f.discs),
        graded_together=together,
        any_unsure=unsure,
        unsure=called_below_even_odds,
        evidence=[
            {
                "caption": caption(e, grades.get(e.level, {}).get(e.grade)),
                "png": base64.b64encode(png_bytes(e.picture)).decode(),
            }
            for e in figures.evidence
        ],
    )


def write_reports(f: Findings, figures: Figures, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.pdf`` (WeasyPrint) into ``out_dir``."""
    import logging

    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    html = render_html(f, figures)
    html_path = write_text(out_dir / "report.html", html)
    pdf_path = out_dir / "report.pdf"
    with atomic_path(pdf_path) as tmp:
        HTML(string=html).write_pdf(tmp)
    return html_path, pdf_path
