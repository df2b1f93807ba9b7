"""Central canal stenosis per level from canal measurements: normal / mild / moderate / severe.

Thresholds (shown in the report beside every grade):

* Anteroposterior diameter of the canal at the disc level (Verbiest, J Bone Joint Surg Br 1954):
  relative stenosis below 12 mm, absolute below 10 mm. We call 10-12 mm *mild* and below 10 mm
  *moderate*; below 7 mm (about two thirds of the absolute threshold) is *severe*, this project's cut.
* Cross-sectional area of the dural sac, where a volume gives it: below 100 mm² is stenosis
  (Hamanishi et al., Spine 1994) and below 75 mm² is the critical size for the cauda equina
  (Schönström et al., Spine 1985). We call 75-100 mm² *mild* and below 75 mm² *moderate*; below
  50 mm² is *severe*, this project's cut.

With both, the worse grade wins. A level that cannot be measured is ``unknown``, never normal, and so is a level
above L1/L2: these thresholds are the lumbar canal's, around the cauda equina; higher up the canal holds the cord and
the conus, and its normal size differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lumbar.labels import LUMBAR_DISCS

GRADES = ("normal", "mild", "moderate", "severe")
AP_THRESHOLDS_MM = (12.0, 10.0, 7.0)  # below each: mild, moderate, severe
AREA_THRESHOLDS_MM2 = (100.0, 75.0, 50.0)
CITATION = (
    "mild below the relative, moderate below the absolute threshold: AP diameter < 12 mm, < 10 mm (Verbiest 1954); "
    "dural sac area < 100 mm² (Hamanishi 1994), < 75 mm² (Schönström 1985); severe below 7 mm or 50 mm², "
    "lumbar's own cuts."
)
NOT_MEASURABLE = "canal not measurable at this level: none outlined in the disc's plane, or its outline ends there"
ABOVE_LUMBAR = "above L1/L2: the lumbar canal's thresholds do not apply where the cord runs (measured, not graded)"


@dataclass
class StenosisGrade:
    grade: str  # one of GRADES, or "unknown"
    basis: str  # which measurement decided it


def _grade(value: float, thresholds: tuple[float, float, float]) -> int | None:
    if value is None or math.isnan(value):
        return None
    return sum(value < t for t in thresholds)


def grade_central_stenosis(ap_mm: float | None, area_mm2: float | None = None) -> StenosisGrade:
    """Grade one level from its canal AP diameter (mm) and, if known, its dural sac area (mm²), each as its basis
    shows it (a tenth of a mm, a whole mm²): 11.96 mm must not be 'mild' beside 'AP diameter 12.0 mm' (review)."""
    ap_mm = round(ap_mm, 1) if ap_mm is not None and math.isfinite(ap_mm) else ap_mm
    area_mm2 = float(round(area_mm2)) if area_mm2 is not None and math.isfinite(area_mm2) else area_mm2
    by_ap = _grade(ap_mm, AP_THRESHOLDS_MM) if ap_mm is not None else None
    by_area = _grade(area_mm2, AREA_THRESHOLDS_MM2) if area_mm2 is not None else None
    if by_ap is None and by_area is None:
        return StenosisGrade("unknown", NOT_MEASURABLE)
    if by_area is None or (by_ap is not None and by_ap >= by_area):
        return StenosisGrade(GRADES[by_ap], f"AP diameter {ap_mm:.1f} mm")
    return StenosisGrade(GRADES[by_area], f"dural sac area {area_mm2:.0f} mm²")


def grade_at_level(level: str, ap_mm: float | None, area_mm2: float | None = None) -> StenosisGrade:
    """:func:`grade_central_stenosis` at a lumbar disc level (L1/L2 to L5/S1); ``unknown`` above, where the
    thresholds do not apply."""
    if level not in LUMBAR_DISCS:
        return StenosisGrade("unknown", ABOVE_LUMBAR)
    return grade_central_stenosis(ap_mm, area_mm2)
