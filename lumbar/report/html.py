"""Render findings and figures as a self-contained HTML report (images embedded) and the same page as PDF.

The report draws nothing and computes nothing clinical: it lays out what the pipeline put into the
findings and the figures, so that it can never disagree with ``findings.json``.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

from lumbar.figures import Evidence, Figures, png_bytes
from lumbar.findings import Findings
from lumbar.grades import called_below_even_odds, is_abnormal
from lumbar.io.write import atomic_path, write_text
from lumbar.labels import LUMBAR_DISCS, STRUCTURE_COLOURS, STRUCTURE_NAMES

TEMPLATES = Path(__file__).parent / "templates"
NARROW_DISC_FRACTION = 0.7  # middle height below this fraction of the other lumbar discs' median
SUMMARY_MIN_PROBABILITY = 0.7  # "likely": a grade the calibrated model gives at least this


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    """A number for the report: rounded, with its unit, or a dash when it could not be measured."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}{(' ' + unit) if unit and unit != '°' else unit}"


def grading_reliability(f: Findings) -> str:
    """The grading model's own figures (from the findings) and the rule the summary follows."""
    if not f.grading_reliability:
        return ""
    rule = f"The summary lists a grade only where its probability is at least {SUMMARY_MIN_PROBABILITY:.0%}."
    return f"{f.grading_reliability} {rule}"


def summary_sentences(f: Findings) -> list[str]:
    """One plain-language sentence per abnormal level, worst first within each kind."""
    unit = f.units
    sentences = []
    heights = {
        d.level: d.measurements.height_middle_mm
        for d in f.discs
        if d.measurements and d.measurements.height_middle_mm and d.level in LUMBAR_DISCS
    }
    for d in f.discs:
        parts = []
        if d.stenosis and d.stenosis.grade in ("mild", "moderate", "severe"):
            parts.append(f"{d.stenosis.grade} central canal stenosis ({d.stenosis.basis})")
        m = d.measurements
        if m and d.level in heights and len(heights) >= 3:
            others = [h for level, h in heights.items() if level != d.level]
            if m.height_middle_mm < NARROW_DISC_FRACTION * float(np.median(others)):
                parts.append(
                    f"disc narrowed to {fmt(m.height_middle_mm, unit)}, "
                    f"under {int(NARROW_DISC_FRACTION * 100)}% of the other lumbar discs"
                )
        if m and m.meyerding_grade:
            kind = "anterolisthesis" if (m.slip_mm or 0) > 0 else "retrolisthesis"
            upper, lower = d.level.split("/")
            parts.append(
                f"{kind} of {upper} on {lower} by {fmt(abs(m.slip_mm), unit)} "
                f"({abs(m.slip_percent):.0f}%, Meyerding grade {m.meyerding_grade})"
            )
        for name, grade in d.grades.items():
            # The table shows every decision; the summary only what the model calls likely.
            if is_abnormal(name, grade.value) and grade.probability >= SUMMARY_MIN_PROBABILITY:
                parts.append(f"{name.replace('_', ' ')} {grade.value} ({100 * grade.probability:.0f}% confidence)")
        if parts:
            sentences.append(f"{d.level}: " + "; ".join(parts) + ".")
    for v in f.vertebrae:
        m = v.measurements
        if m and m.genant_grade:
            severity = {1: "mild", 2: "moderate", 3: "severe"}[m.genant_grade]
            sentences.append(
                f"{v.level}: {severity} vertebral height loss (Genant grade {m.genant_grade}, "
                f"wedge ratio {fmt(m.wedge_ratio, '', 2)})."
            )
    return sentences


def caption(e: Evidence) -> str:
    """``L4/L5 herniation 1? (7%)``: the grade an evidence map explains, marked as the grade table marks it."""
    unsure = "?" if called_below_even_odds(e.grade, e.value, e.probability) else ""
    return f"{e.level} {e.grade.replace('_', ' ')} {e.value}{unsure} ({100 * e.probability:.0f}%)"


def render_html(f: Findings, figures: Figures) -> str:
    """The report page, with the overview and the evidence maps embedded as base64 PNG."""
    title = Path(f.input.source).name + (f" ({f.input.series_description})" if f.input.series_description else "")
    together = sorted({source for d in f.discs if len(d.graded_from) > 1 for source in d.graded_from})
    unsure = any(called_below_even_odds(name, g.value, g.probability) for d in f.discs for name, g in d.grades.items())
    citation = next((d.stenosis.thresholds for d in f.discs if d.stenosis), "")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("report.html.j2").render(
        f=f,
        title=title,
        unit=f.units,
        fmt=fmt,
        summary=summary_sentences(f),
        citation=citation,
        overlay=base64.b64encode(png_bytes(figures.overview)).decode(),
        colours={name: STRUCTURE_COLOURS[s] for s, name in STRUCTURE_NAMES.items()},
        grade_names=list(next((d.grades for d in f.discs if d.grades), {})),
        is_abnormal=is_abnormal,
        grading_reliability=grading_reliability(f),
        graded_together=together,
        any_unsure=unsure,
        unsure=called_below_even_odds,
        evidence=[
            {"caption": caption(e), "png": base64.b64encode(png_bytes(e.picture)).decode()} for e in figures.evidence
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
