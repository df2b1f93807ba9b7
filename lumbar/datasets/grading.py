"""Disc crops joined to expert gradings, with an honest count of what could be matched.

SPIDER's ``radiological_gradings.csv`` grades each disc of a patient by ``IVD label``: 1 is the lowest
disc (L5/S1 in a normal spine), counting upwards. Every image is segmented as ``lumbar analyze`` segments it (a
picture stored head down, as nearly all of SPIDER's mid-sagittal PNGs are, is turned upright first), its discs
named from the bottom, and disc ``k`` from the bottom is joined to ``IVD label`` ``k``. Coverage says how many graded
discs were found and matched, per sequence — no grading is dropped silently.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lumbar.io.read import read_image
from lumbar.io.spider import patient_id, read_overview_spacing
from lumbar.labels import CAUDAL_TO_CRANIAL, disc_name
from lumbar.pipelines import Segmentation, mr_sagittal

# Our grade names and the SPIDER columns they come from.
GRADE_COLUMNS = {
    "pfirrmann": "Pfirrman grade",
    "herniation": "Disc herniation",
    "bulging": "Disc bulging",
    "narrowing": "Disc narrowing",
    "endplate_upper": "UP endplate",
    "endplate_lower": "LOW endplate",
    "spondylolisthesis": "Spondylolisthesis",
    "modic": "Modic",
}


def level_of_ivd(ivd_label: int) -> str:
    """SPIDER ``IVD label`` (1 = lowest) to a level name in a normal spine: 1 -> L5/S1, 2 -> L4/L5, ..."""
    return disc_name(CAUDAL_TO_CRANIAL[ivd_label], CAUDAL_TO_CRANIAL[ivd_label - 1])


def read_gradings(csv_path: Path) -> dict[tuple[str, str], dict[str, int]]:
    """Gradings keyed by (patient, level name)."""
    gradings = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            level = level_of_ivd(int(row["IVD label"]))
            gradings[(row["Patient"].strip(), level)] = {
                name: int(float(row[col])) for name, col in GRADE_COLUMNS.items()
            }
    return gradings


@dataclass
class GradingSample:
    patient: str
    series: str
    level: str
    crop: np.ndarray
    grades: dict[str, int]


@dataclass
class Coverage:
    """Graded discs per sequence: how many were found on the image and joined to their grading."""

    graded: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    matched: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unmatched: list[str] = field(default_factory=list)

    def fraction(self, sequence: str | None = None) -> float:
        keys = [sequence] if sequence else list(self.graded)
        graded = sum(self.graded[k] for k in keys)
        return sum(self.matched[k] for k in keys) / graded if graded else float("nan")


@dataclass(frozen=True)
class GradedSeries:
    """One image segmented as ``lumbar analyze`` segments it, and the expert's grades of its patient's discs."""

    patient: str
    series: str
    sequence: str
    segmentation: Segmentation
    grades: dict[str, dict[str, int]]  # by level name, every disc the expert graded for this patient


def read_graded_series(
    images: list[Path],
    gradings: dict[tuple[str, str], dict[str, int]],
    spacing_by_series: dict,
    progress: Callable[[], None] | None = None,
) -> list[GradedSeries]:
    """Read and segment every image (``<patient>_<sequence>.png``) beside its patient's gradings."""
    by_patient: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for (patient, level), grades in gradings.items():
        by_patient[patient][level] = grades
    out = []
    for path in images:
        series = path.stem
        spacing = spacing_by_series.get(series)
        image = read_image(path, spacing_mm=spacing[0] if spacing else None)
        out.append(
            GradedSeries(
                patient_id(series),
                series,
                series.split("_", 1)[1] if "_" in series else "unknown",
                mr_sagittal.segment(image),
                dict(sorted(by_patient.get(patient_id(series), {}).items())),
            )
        )
        if progress:
            progress()
    return out


def join(series: list[GradedSeries], found: list[dict[str, np.ndarray]]) -> tuple[list[tuple[int, str]], Coverage]:
    """Which graded discs were found (``found[i]``: what was located on series ``i``, by level), as
    (series index, level) pairs, and the coverage: every graded disc is counted, none dropped silently."""
    pairs, coverage = [], Coverage()
    for i, (s, located) in enumerate(zip(series, found)):
        for level in s.grades:
            coverage.graded[s.sequence] += 1
            if level in located:
                coverage.matched[s.sequence] += 1
                pairs.append((i, level))
            else:
                coverage.unmatched.append(f"{s.series} {level}")
    return pairs, coverage


def build_samples(
    images: list[Path],
    gradings: dict[tuple[str, str], dict[str, int]],
    spacing_by_series: dict,
    progress: Callable[[], None] | None = None,
) -> tuple[list[GradingSample], Coverage]:
    """Segment each mid-sagittal image, crop every named disc and join the crops to the gradings."""
    series = read_graded_series(images, gradings, spacing_by_series, progress)
    crops = [mr_sagittal.disc_crops(s.segmentation, levels=None) for s in series]
    pairs, coverage = join(series, crops)
    samples = [
        GradingSample(series[i].patient, series[i].series, level, crops[i][level], series[i].grades[level])
        for i, level in pairs
    ]
    return samples, coverage


def build_from_spider(
    spider_dir: Path, progress: Callable[[], None] | None = None
) -> tuple[list[GradingSample], Coverage]:
    """All mid-sagittal T1, T2 and T2 SPACE images of a SPIDER folder joined to its gradings."""
    gradings = read_gradings(spider_dir / "radiological_gradings.csv")
    spacing = read_overview_spacing(spider_dir / "overview.csv")
    images = sorted((spider_dir / "midsag").glob("*.png"))
    return build_samples(images, gradings, spacing, progress)
