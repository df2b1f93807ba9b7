"""What leaves the pipeline: the findings of one study as pydantic models; the JSON Schema comes from them.

``findings.json`` holds the input description, model versions, one entry per disc (level, grades,
measurements, stenosis) and per vertebra, study-level alignment, and the reasons a reader should
review the result. Numbers carry their unit in their name; a value that could not be measured is null.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lumbar.labels import REPORTED_DISCS

SCHEMA_VERSION = "1.2"
DiscLevel = Literal[REPORTED_DISCS]  # type: ignore[valid-type]
StenosisLevel = Literal["normal", "mild", "moderate", "severe", "unknown"]


class _Frozen(BaseModel):
    """Findings are built once: no field of a built model can be reassigned (build a new one with model_copy)."""

    model_config = ConfigDict(frozen=True)


class _Measured(_Frozen):
    """Measurements: NaN (not measurable) becomes None in Python and null in JSON."""

    @field_validator("*", mode="before")
    @classmethod
    def _nan_to_none(cls, value):
        return None if isinstance(value, float) and math.isnan(value) else value


class Grade(_Frozen):
    value: int
    probability: float = Field(ge=0, le=1, description="Probability of the predicted value.")
    probabilities: dict[str, float] | None = Field(None, description="Per class, for Pfirrmann and Modic.")
    threshold: float | None = Field(
        None,
        description="Binary grades: the positive probability at or above which the value "
        "is 1, chosen for balanced accuracy (so a rare finding can be called below 50%).",
    )


class DiscMeasurements(_Measured):
    height_anterior_mm: float | None
    height_middle_mm: float | None
    height_posterior_mm: float | None
    height_index: float | None = Field(description="Mean disc height / mean height of the adjacent vertebral bodies.")
    canal_ap_mm: float | None = Field(description="Spinal canal anteroposterior diameter in the disc's mid-plane.")
    canal_area_mm2: float | None = Field(None, description="Canal cross-section in the disc's plane (volumes only).")
    slip_mm: float | None = Field(description="Upper vertebra displacement: + anterolisthesis, - retrolisthesis.")
    slip_percent: float | None
    meyerding_grade: int | None
    angle_deg: float | None = Field(description="Angle between the endplates across the disc, + lordotic.")


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
    graded_from: list[str] = Field(
        default_factory=list,
        description="Series whose crops of this disc the grades come from: "
        "this one, or with --same-patient every series of the patient that shows it and "
        "whose level names carry no review flag.",
    )
    measurements: DiscMeasurements | None = None
    stenosis: Stenosis | None = None


class VertebraMeasurements(_Measured):
    height_anterior_mm: float | None
    height_middle_mm: float | None
    height_posterior_mm: float | None
    depth_mm: float | None
    wedge_ratio: float | None
    biconcave_ratio: float | None
    genant_grade: int | None = Field(description="0 normal, 1 mild, 2 moderate, 3 severe height loss (Genant 1993).")
    upper_endplate_deg: float | None


class Vertebra(_Frozen):
    level: str
    label: int
    measurements: VertebraMeasurements | None = None


class InputDescription(_Frozen):
    source: str
    format: str | None = None
    modality: str
    shape: list[int]
    spacing_mm: list[float] | None = Field(description="Null when the file does not say (PNG without --spacing).")
    orientation: str
    source_orientation: str
    series_description: str | None = None


class Findings(_Frozen):
    schema_version: str = SCHEMA_VERSION
    lumbar_version: str
    input: InputDescription
    models: dict[str, str]
    units: Literal["mm", "pixels"] = Field(description="Unit of every distance: pixels when the spacing is unknown.")
    discs: list[Disc]
    vertebrae: list[Vertebra]
    lordosis_deg: float | None = Field(None, description="L1 upper endplate to S1 upper endplate.")
    narrowest_canal_ap_mm: float | None = None
    narrowest_canal_level: str | None = None
    needs_review: list[str] = Field(default_factory=list, description="Why a reader should check this result.")
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
        return None if isinstance(value, float) and math.isnan(value) else value


def findings_schema() -> dict:
    """The JSON Schema of findings.json."""
    schema = Findings.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lumbar findings"
    return schema
