"""What leaves the pipeline: the findings of one study as pydantic models; the JSON Schema comes from them.

``findings.json`` holds the input description, model versions, one entry per disc (level, grades,
measurements, stenosis) and per vertebra, study-level alignment, and the reasons a reader should
review the result. Numbers carry their unit in their name; a value that could not be measured is null.
"""

from __future__ import annotations

import math
import numbers
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES
from lumbar.labels import REPORTED_DISCS, SPINE_ORDER

GRADE_CLASSES: dict[str, tuple[int, ...]] = {**ORDINAL_GRADES, **dict.fromkeys(BINARY_GRADES, (0, 1))}

SCHEMA_VERSION = "1.10"
DiscLevel = Literal[REPORTED_DISCS]  # type: ignore[valid-type]
VertebraLevel = Literal[SPINE_ORDER]  # type: ignore[valid-type]
StenosisLevel = Literal["normal", "mild", "moderate", "severe", "unknown"]

# How the review reason begins where a lordosis reading was taken as a misread (``tasks.measurements``): the report
# points to it where the angle would stand.
LORDOSIS_MISREAD = "lumbar lordosis read as"


def _is_nan(value) -> bool:
    """NaN as Python or numpy gives it (a numpy float32 is no Python float, and was kept as NaN)."""
    return isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and math.isnan(value)


class _Frozen(BaseModel):
    """Findings are built once: no field of a built model can be reassigned and its sequences are tuples (build a
    new one with ``model_copy``); unknown keys are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class _Measured(_Frozen):
    """Measurements: NaN (not measurable) becomes None in Python and null in JSON."""

    @field_validator("*", mode="before")
    @classmethod
    def _nan_to_none(cls, value):
        return None if _is_nan(value) else value


Probability = Annotated[float, Field(ge=0, le=1)]
Length = Annotated[float, Field(ge=0)]  # a height, depth or diameter: in mm, or pixels where ``units`` says so
Ratio = Annotated[float, Field(ge=0)]
Angle = Annotated[float, Field(ge=-180, le=180)]


class Grade(_Frozen):
    value: int = Field(ge=0, le=5, description="Pfirrmann 1-5, Modic 0-3, binary grades 0/1 (checked per grade).")
    probability: Probability = Field(description="Probability of the predicted value.")
    probabilities: dict[str, Probability] | None = Field(None, description="Per class, for Pfirrmann and Modic.")
    threshold: Probability | None = Field(
        None,
        description="Binary grades: the positive probability at or above which the value "
        "is 1, chosen for balanced accuracy (so a rare finding can be called below 50%).",
    )
    threshold_high_specificity: Probability | None = Field(
        None,
        description="Binary grades: the positive probability at or above which the grade is called at the "
        "high-specificity operating point, chosen on the model's out-of-fold outputs to call at most 5% of the "
        "expert's normal discs (the point the Summary states from); null where none ships for these weights.",
    )
    specificity_high: Probability | None = Field(
        None, description="Specificity at that point against the expert, measured on patients it was not chosen on."
    )
    value_high_specificity: int | None = Field(
        None,
        ge=0,
        le=1,
        description="Binary grades: 1 where the probability reaches the high-specificity threshold (in every series "
        "of ``per_series``, where the disc was graded from several).",
    )
    per_series: dict[str, dict[str, Probability]] | None = Field(
        None,
        description="Where the disc was graded from several series of the patient together (its grade is from the "
        "mean of their probabilities): each series' own probabilities by value (binary grades: of 0 and 1), by the "
        "series' name in ``graded_from``. The Summary states a finding only where every one of them reaches its "
        "operating point, the point's false-positive rate having been measured on series graded alone.",
    )


class DiscMeasurements(_Measured):
    height_anterior_mm: Length | None
    height_middle_mm: Length | None
    height_posterior_mm: Length | None
    height_index: Ratio | None = Field(description="Mean disc height / mean height of the adjacent vertebral bodies.")
    canal_ap_mm: Length | None = Field(description="Spinal canal anteroposterior diameter in the disc's mid-plane.")
    canal_area_mm2: Length | None = Field(None, description="Canal cross-section in the disc's plane (volumes only).")
    slip_mm: float | None = Field(
        description="Upper vertebra's posterior wall against the lower's, along the disc's mid-plane (the bisector "
        "of its endplates), agreed on the slices around the mid-sagittal one: + anterolisthesis, - retrolisthesis; "
        "null where not found on enough."
    )
    slip_percent: Annotated[float, Field(ge=-100, le=200)] | None
    meyerding_grade: int | None = Field(
        ge=0,
        le=5,
        description="Meyerding grade of an anterolisthesis; 0 for a slip within measurement error either way (under "
        "3 mm, or 5% of the lower body's depth; 10% without a pixel size); null for a retrolisthesis beyond that or "
        "where no slip was measured.",
    )
    angle_deg: Angle | None = Field(description="Angle between the endplates across the disc, + lordotic.")


class Stenosis(_Frozen):
    grade: StenosisLevel
    basis: str
    thresholds: str


class Disc(_Frozen):
    level: DiscLevel
    label: int = Field(description="Value of this disc in the instance label map.")
    grades: dict[str, Grade] = Field(
        default_factory=dict,
        description="pfirrmann, herniation, bulging, narrowing, "
        "endplate_upper, endplate_lower, spondylolisthesis, modic; empty without a grading model.",
    )
    graded_from: tuple[str, ...] = Field(
        default=(),
        description="Series whose crops of this disc the grades come from: "
        "this one, or with --same-patient every series of the patient that shows it and "
        "whose level names carry no review flag, leaving out a view cut by its slice's edge where another shows the "
        "disc whole (so a cut disc may be graded from the other series alone). Each named by its file or folder "
        "without the folders above it, its DICOM series number and description, and [k] where two share a name.",
    )
    measurements: DiscMeasurements | None = None
    stenosis: Stenosis | None = None

    @field_validator("grades")
    @classmethod
    def _known_grades_in_range(cls, grades: dict[str, Grade]) -> dict[str, Grade]:
        for name, grade in grades.items():
            classes = GRADE_CLASSES.get(name)
            if classes is None:
                raise ValueError(f"unknown grade {name!r}; grades are {', '.join(GRADE_CLASSES)}")
            if grade.value not in classes:
                raise ValueError(f"{name} {grade.value} is not a grade (one of {classes})")
        return grades


# A vertebra's heights and what is read from them: withheld together where the heights cannot be read.
HEIGHT_FIELDS = (
    "height_anterior_mm",
    "height_middle_mm",
    "height_posterior_mm",
    "wedge_ratio",
    "biconcave_ratio",
    "genant_grade",
)


class VertebraMeasurements(_Measured):
    height_anterior_mm: Length | None
    height_middle_mm: Length | None
    height_posterior_mm: Length | None
    depth_mm: Length | None
    wedge_ratio: Ratio | None
    biconcave_ratio: Ratio | None
    genant_grade: int | None = Field(
        ge=0,
        le=3,
        description="0 normal, 1 mild, 2 moderate, 3 severe height loss (Genant 1993); null where the outline does "
        "not show both endplates and both walls.",
    )
    genant_not_graded: str | None = Field(
        None,
        description="Why genant_grade is null (e.g. 'cut by the image edge', 'outline not convex (...)', on a "
        "lateral radiograph 'corners out of order (...)'); null where it is given. Where it puts the endplates in "
        "doubt (all but an outline joined to its arch or with no disc beside it, whose heights pass the endplate "
        "test), the heights and ratios are null too: they would look clinical beside the reason they are not.",
    )
    upper_endplate_deg: Angle | None
    bone_density_hu: float | None = Field(
        None,
        description="CT: mean trabecular attenuation (HU) of the body; the region is stated in the findings' "
        "bone_density_region, the contrast in input.contrast. Null on MRI, where the region is too small and where "
        "the field of view cuts the body.",
    )
    bone_density_hu_median: float | None = Field(None, description="CT: the median over the same region.")


class FrontalVertebraMeasurements(_Measured):
    """A vertebra on a frontal radiograph, from its four body corners."""

    height_left: Length | None = Field(description="Superior to inferior corner on the image's left side.")
    height_right: Length | None = Field(description="The same on the image's right side.")
    tilt_deg: Angle | None = Field(
        description="The body's mid-line (middle of its left side to middle of its right side) against the image's "
        "horizontal; positive when its right end is higher."
    )


Point = tuple[float, float]


class Vertebra(_Frozen):
    level: VertebraLevel
    label: int
    measurements: VertebraMeasurements | None = None
    corners_px: tuple[Point, Point, Point, Point] | None = Field(
        None,
        description="Radiographs: the body's four corners as [x, y] in the input image's pixels (x = column, y = row, "
        "origin top-left); frontal: left-superior, right-superior, right-inferior, left-inferior, left and right as "
        "in the image; lateral: anterior-superior, posterior-superior, posterior-inferior, anterior-inferior (S1: its "
        "inferior pair one body height down the sacrum, as the S1/S2 junction is seldom seen).",
    )
    detection_score: Probability | None = Field(
        None, description="Radiographs: the network's centre score for this body (0-1)."
    )
    frontal: FrontalVertebraMeasurements | None = None


class InputDescription(_Frozen):
    source: str
    format: str | None = None
    modality: str
    shape: tuple[int, ...]
    spacing_mm: tuple[float, ...] | None = Field(description="Null when the file does not say (PNG without --spacing).")
    orientation: str
    source_orientation: str
    series_description: str | None = None
    weighting: Literal["T1", "T2"] | None = Field(
        None,
        description="MRI only: 'T1' or 'T2', from the DICOM header's echo and repetition times where they decide, "
        "else read from the image (the canal's fluid against the vertebrae's marrow on the mid-sagittal slice: darker "
        "on T1, brighter on T2); null where neither decides. A Pfirrmann grade (defined on T2) is not stated in the "
        "Summary from series read as T1.",
    )
    weighting_read_from: Literal["DICOM header", "image"] | None = Field(
        None, description="Where the weighting was read: 'DICOM header' or 'image'; null with no weighting."
    )
    contrast: str | None = Field(
        None,
        description="CT only: whether the series was contrast-enhanced, as the file says (DICOM ContrastBolusAgent): "
        "contrast raises every attenuation read, each vertebra's bone density too; absent on other modalities.",
    )
    stored_head_down: bool | None = Field(
        None,
        description="True when a picture (PNG/JPEG) was stored head down and was turned upright before analysis "
        "(the segmentation network is more confident on it upright; the label maps written are in the file's own "
        "rows); absent otherwise.",
    )
    stored_mirrored: bool | None = Field(
        None,
        description="True when a picture (PNG/JPEG) was stored mirrored front to back (anterior on the right) and was "
        "mirrored back before analysis (the segmentation network, which learnt anterior on the left, is clearly more "
        "confident on it mirrored back; the label maps written are in the file's own columns); absent otherwise.",
    )
    stored_on_side: bool | None = Field(
        None,
        description="True when a picture (PNG/JPEG) was stored turned a quarter, the spine running across it, and was "
        "turned back before analysis (the segmentation network is clearly more confident on it turned; the label "
        "maps written are in the file's own rows and columns, and shape and spacing_mm along the file's axes; "
        "stored_head_down and "
        "stored_mirrored are then absent, and a review reason says where the head and the front lay); absent "
        "otherwise.",
    )


class CobbAngle(_Frozen):
    """One curve of a frontal spine: the angle between the mid-lines of its two end vertebrae."""

    curve: Literal["major", "minor"] = Field(description="major: the largest angle between any two vertebrae.")
    angle_deg: Annotated[float, Field(ge=0, le=180)]
    upper_vertebra: VertebraLevel
    lower_vertebra: VertebraLevel


class BoneDensityScreening(_Frozen):
    """CT: opportunistic osteoporosis screening from one vertebra's trabecular attenuation. A screen, not a
    diagnosis: published thresholds, not validated here against DXA."""

    level: VertebraLevel = Field(description="The vertebra screened: L1, as in the thresholds' source.")
    level_confirmed: bool = Field(
        description="False when the level names carry a review reason: the vertebra screened may not be L1."
    )
    mean_hu: float
    category: Literal["osteoporosis likely", "indeterminate", "osteoporosis unlikely"]
    text: str
    thresholds: str = Field(description="The published thresholds and their source.")
    region: str = Field(description="Where the attenuation was measured.")
    contrast: str = Field(description="Whether the series was contrast-enhanced (contrast raises attenuation).")


# Each Statement.finding in words: the report names what a basis validates where it lists the bases once.
FINDING_NAMES = {
    "slip": "Slip (measured)",
    "disc_narrowing": "Disc narrowing (measured height index)",
    "pfirrmann_4_5": "Degenerated disc (Pfirrmann 4–5)",
    "modic": "Modic endplate change",
    "herniation": "Disc herniation",
    "bulging": "Disc bulging",
    "narrowing": "Disc narrowing",
    "endplate_upper": "Defect of the endplate above the disc",
    "endplate_lower": "Defect of the endplate below the disc",
    "spondylolisthesis": "Spondylolisthesis",
    "cobb_major_40": "Major curve of 40° or more",
}


class Statement(_Frozen):
    """One line of the Summary: a finding stated at a validated operating point, with how far to trust it."""

    level: str | None = Field(description="The disc or vertebra it concerns; null for the whole study.")
    finding: str = Field(description="spondylolisthesis, disc_narrowing, or a grade's name.")
    text: str = Field(description="The finding in plain language, with its measurement or probability.")
    basis: str = Field(description="How it was validated: sensitivity and false-positive rate against an expert.")


class Findings(_Frozen):
    schema_version: str = SCHEMA_VERSION
    lumbar_version: str
    input: InputDescription
    models: dict[str, str] = Field(
        description="Each model used, by role: its name, training steps and the first 12 hex digits of its weights' "
        "SHA-256."
    )
    view: Literal["sagittal", "frontal", "lateral"] = Field(
        "sagittal",
        description="sagittal: an MRI slice or volume, or a CT volume read in sagittal slices; frontal: a frontal "
        "(AP/PA) radiograph; lateral: a lateral radiograph.",
    )
    units: Literal["mm", "pixels"] = Field(description="Unit of every distance: pixels when the spacing is unknown.")
    discs: tuple[Disc, ...]
    vertebrae: tuple[Vertebra, ...]
    lordosis_deg: Angle | None = Field(None, description="L1 upper endplate to S1 upper endplate.")
    cobb_angles: tuple[CobbAngle, ...] = Field(
        default=(),
        description="Frontal radiographs: the major curve, then the two further curves the AASCE 2019 challenge "
        "reports (next to it on either side, or the two above it when it lies in the image's lower half).",
    )
    bone_density_screening: BoneDensityScreening | None = Field(
        None, description="CT: the opportunistic osteoporosis screen (L1 trabecular attenuation); null elsewhere."
    )
    bone_density_region: str | None = Field(
        None, description="CT: where each vertebra's bone_density_hu (and its median) was read; null elsewhere."
    )
    bone_density_not_screened: str | None = Field(
        None,
        description="CT: why there is no bone density screen (L1 fractured, dense material in its region, its region "
        "not read); null where there is one, and elsewhere.",
    )
    narrowest_canal_ap_mm: Length | None = None
    narrowest_canal_level: DiscLevel | None = None
    needs_review: tuple[str, ...] = Field(default=(), description="Why a reader should check this result.")
    summary: tuple[Statement, ...] = Field(
        default=(),
        description="Findings stated at an operating point validated against an expert on real images (at most 5% "
        "false positives on the expert's normal discs); everything else stays in the tables.",
    )
    summary_withheld: str | None = Field(
        None, description="Why no Summary is stated for this image (e.g. unreliable level names, a forced run)."
    )
    not_validated: dict[str, str] = Field(
        default_factory=dict,
        description="Findings in the tables that were not validated against an expert, and why: never in the Summary.",
    )
    grading_reliability: str | None = Field(
        None,
        description="The grading model's own cross-validated figures, as the "
        "report quotes them: how far its grades can be trusted.",
    )
    outputs: dict[str, str] = Field(
        default_factory=dict,
        description="Files written with these findings, relative to "
        "findings.json's folder; empty when nothing was written.",
    )

    @field_validator("lordosis_deg", "narrowest_canal_ap_mm", mode="before")
    @classmethod
    def _nan_to_none(cls, value):
        return None if _is_nan(value) else value


def graded_together(graded_from: list[tuple[str, ...] | list[str]]) -> list[str]:
    """The series a study's discs were graded from, where that is more than one (``--same-patient`` joined them);
    empty where every disc was graded from one series. ``graded_from``: each disc's sources."""
    sources = sorted({source for disc in graded_from for source in disc})
    return sources if len(sources) > 1 else []


def findings_schema() -> dict:
    """The JSON Schema of findings.json."""
    schema = Findings.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lumbar findings"
    return schema
