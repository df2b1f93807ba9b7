"""Which findings were checked against an expert on real images, and at which operating point.

``lumbar/validation.json`` is written by the benches that measure it (``python bench/measurements.py --ship``
for measured findings, ``python bench/grade_validation.py --ship`` for the grading model's, ``python
bench/radiograph.py --ship`` for the radiograph network's Cobb angles): per finding, whether it is validated,
the threshold at which it is stated, and the sensitivity and false-positive rate at that threshold on patients
the threshold was not chosen on. A finding reaches a report's Summary only where this record says it
is validated; everything else stays in the tables, marked "not validated".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

RECORD = Path(__file__).parent / "validation.json"


@dataclass(frozen=True)
class Validation:
    """One finding's record: stated where its score reaches ``threshold`` (when ``validated``)."""

    name: str
    validated: bool
    threshold: float | None = None
    unit: str = ""
    sensitivity: float | None = None
    false_positive_rate: float | None = None
    false_positive_rate_upper95: float | None = None  # exact one-sided 95% bound, each negative patient counted once
    negative_patients: int = 0  # how many patients the negatives came from, where that bound is given
    # The rate's 95% CI by patient bootstrap at the point chosen on all patients (in sample), where recorded
    false_positive_rate_ci95: tuple[float, float] | None = None
    precision: float | None = None
    auc: float | None = None
    n_positive: int = 0
    n_negative: int = 0
    reference: str = ""
    model_sha256: str = ""  # for a model's grades: the weights whose out-of-fold outputs the point was chosen on
    why: str = ""
    positives: str = "positive disc images"  # what a positive and a negative are, as the basis sentence says them
    negatives: str = "the expert graded normal"

    def basis(self) -> str:
        """How far the finding can be trusted, in one sentence for a reader."""
        if not self.validated:
            return f"not validated: {self.why}" if self.why else "not validated"
        text = (
            f"validated against {self.reference}: found {self.sensitivity:.0%} of the expert's "
            f"{self.n_positive} {self.positives}, called {self.false_positive_rate:.1%} of the {self.n_negative} "
            f"{self.negatives}"
        )
        if self.false_positive_rate_upper95 is not None:
            text += (
                f" (with 95% confidence at most {math.ceil(100 * self.false_positive_rate_upper95 - 1e-9)}%, counting "
                f"each of their {self.negative_patients} patients once)"
            )
        elif self.false_positive_rate_ci95 is not None:
            low, high = self.false_positive_rate_ci95
            text += (
                f" (at the point chosen on all patients, in sample, the rate's 95% CI by patient is {low:.1%} to "
                f"{high:.1%})"
            )
        return text + (f"; {self.precision:.0%} of such calls were the expert's too" if self.precision else "")


@cache
def level_guess_balanced_accuracy(model_sha256: str, path: str | None = None) -> dict[str, float]:
    """Per grade, the balanced accuracy of the trivial baseline (the grade most typical of the disc's level, out of
    fold) measured beside the grading model with these weights; empty for any other model."""
    record = Path(path) if path else RECORD
    grades = json.loads(record.read_text(encoding="utf-8")).get("grades", {}) if record.is_file() else {}
    if grades.get("model_sha256") != model_sha256:
        return {}
    return dict(grades.get("level_guess_balanced_accuracy", {}))


@cache
def high_specificity_points(model_sha256: str, path: str | None = None) -> dict[str, tuple[float, float]]:
    """Per binary grade, (threshold, specificity) of the operating point chosen on the out-of-fold outputs of the
    grading model with these weights to call at most ``max_false_positive_rate`` of the expert's normal discs, its
    specificity measured cross-fitted; empty for any other model. Every grade has one, validated or not."""
    record = Path(path) if path else RECORD
    grades = json.loads(record.read_text(encoding="utf-8")).get("grades", {}) if record.is_file() else {}
    if grades.get("model_sha256") != model_sha256:
        return {}
    return {
        name: (float(entry["threshold"]), 1.0 - float(entry["false_positive_rate"]))
        for name, entry in grades.get("findings", {}).items()
        if entry.get("threshold") is not None and entry.get("false_positive_rate") is not None
    }


def _rate_interval(entry: dict, where: str) -> tuple[float, float] | None:
    """The false-positive rate's in-sample CI of a record, if it gives one that can be stated (two finite rates,
    low first; a bootstrap without negatives gives NaN: nothing to state); anything else is a broken record."""
    interval = (entry.get("in_sample_ci95") or {}).get("false_positive_rate")
    if interval is None:
        return None
    try:
        low, high = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: in_sample_ci95.false_positive_rate must be two rates, not {interval!r}") from None
    if math.isnan(low) or math.isnan(high):
        return None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"{where}: in_sample_ci95.false_positive_rate {interval!r} is not an interval of rates")
    return low, high


@cache
def load_validation(path: str | None = None) -> dict[str, Validation]:
    """Every finding's record, by name (measured findings and model grades); empty when none ships."""
    record = Path(path) if path else RECORD
    if not record.is_file():
        return {}
    data = json.loads(record.read_text(encoding="utf-8"))
    out = {}
    for part in ("measurements", "grades", "radiographs"):
        section = data.get(part, {})
        for name, entry in section.get("findings", {}).items():
            shared = ("name", "reference", "model_sha256")
            fields = {k: entry[k] for k in Validation.__dataclass_fields__ if k in entry and k not in shared}
            if (interval := _rate_interval(entry, f"{record}: finding {name!r}")) is not None:
                fields["false_positive_rate_ci95"] = interval
            if name in out:
                raise ValueError(f"{record}: finding {name!r} is recorded twice; each finding needs its own name")
            out[name] = Validation(
                name=name,
                reference=section.get("short_reference", ""),
                model_sha256=section.get("model_sha256", ""),
                **fields,
            )
    return out
