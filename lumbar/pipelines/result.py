"""What a pipeline returns for one image: computed, nothing written.

:class:`Segmentation` is the semantic classes and named levels (what ``lumbar segment`` writes);
:class:`Result` adds the findings and the figures (what ``lumbar analyze`` writes). Both are frozen:
findings are built once, and the writer only reads them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from lumbar.figures import Figures
from lumbar.findings import Findings, InputDescription
from lumbar.image import SpineImage
from lumbar.labels import CANAL_LABEL, instance_name
from lumbar.tasks.levels import LevelLabelling
from lumbar.tasks.segmentation import SemanticSegmentation


def input_description(image: SpineImage) -> InputDescription:
    """What findings.json says of the input: the image's description, as the findings schema holds it."""
    described = image.describe()
    return InputDescription(**{k: described.get(k) for k in InputDescription.model_fields})


@dataclass(frozen=True)
class Segmentation:
    """Semantic classes and named instances of one image (display slices), and why a reader should check them."""

    image: SpineImage
    semantic: SemanticSegmentation
    levels: LevelLabelling
    review: tuple[str, ...] = ()
    gate: tuple[str, ...] = ()  # the review reasons that withhold the Summary (a subset of ``review``)
    outputs: dict[str, str] = field(default_factory=dict)  # where each file went, once saved

    @property
    def mid_slice(self) -> int:
        """The slice levels are named and measured on (see :func:`lumbar.tasks.levels.mid_sagittal_index`)."""
        from lumbar.tasks.levels import mid_sagittal_index

        return mid_sagittal_index(self.semantic.classes)

    def label_names(self) -> dict[int, str]:
        """Name of every label present in the instance map."""
        names = {lv.label: lv.name for lv in self.levels.levels}
        if np.any(self.levels.instances == CANAL_LABEL):
            names[CANAL_LABEL] = instance_name(CANAL_LABEL)
        return names

    def summary(self, outputs: dict[str, str] | None = None) -> dict:
        """The levels JSON that ``lumbar segment`` writes."""
        levels = [asdict(lv) for lv in self.levels.levels]
        # the label maps are written in the file's rows and columns: so are the positions (turns undone in order)
        if self.image.stored_head_down:
            rows_mm = (self.semantic.classes.shape[1] - 1) * self.image.sagittal_spacing_mm()[0]
            for lv in levels:
                lv["centroid_mm"] = (rows_mm - lv["centroid_mm"][0], lv["centroid_mm"][1])
                lv["axis"] = (-lv["axis"][0], lv["axis"][1])
        if self.image.stored_mirrored:
            cols_mm = (self.semantic.classes.shape[2] - 1) * self.image.sagittal_spacing_mm()[1]
            for lv in levels:
                lv["centroid_mm"] = (lv["centroid_mm"][0], cols_mm - lv["centroid_mm"][1])
                lv["axis"] = (lv["axis"][0], -lv["axis"][1])
        if self.image.stored_on_side:
            for lv in levels:
                lv["centroid_mm"] = lv["centroid_mm"][::-1]
                lv["axis"] = lv["axis"][::-1]
        return {
            "input": self.image.describe(),
            "model": self.semantic.model_version,
            "levels": levels,
            "needs_review": list(self.review),
            "outputs": outputs or {},
        }


@dataclass(frozen=True)
class Result:
    """Everything ``lumbar analyze`` computed for one image: findings, label maps and figures; ``folder`` is where
    it was written, if it was."""

    segmentation: Segmentation
    findings: Findings
    figures: Figures
    folder: str | None = None

    @property
    def image(self) -> SpineImage:
        return self.segmentation.image

    def with_review(self, reasons: tuple[str, ...]) -> Result:
        """The same result with further review reasons (series of the study that were left out, say)."""
        if not reasons:
            return self
        findings = self.findings.model_copy(update={"needs_review": (*self.findings.needs_review, *reasons)})
        return replace(self, findings=findings)

    @property
    def outputs(self) -> dict[str, str]:
        """The files written, relative to ``folder`` (as ``findings.json`` lists them); empty when not written."""
        return dict(self.findings.outputs)
