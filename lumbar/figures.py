"""The pictures a result carries, as RGB arrays: computed by a pipeline, encoded by the report and the writer.

Kept apart from the drawing code so that the report renders findings and figures without importing a
model, a task or a pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Evidence:
    """Where in a disc's crop one grade's decision came from (occlusion sensitivity), drawn over the crop."""

    level: str
    grade: str
    value: int
    probability: float
    picture: np.ndarray  # RGB uint8: the crop in grey, the evidence in red to yellow

    @property
    def file_name(self) -> str:
        """``L4-L5_pfirrmann.png``."""
        return f"{self.level.replace('/', '-')}_{self.grade}.png"


@dataclass(frozen=True)
class Figures:
    """The mid-sagittal overview with every level named, and the evidence maps of the grades."""

    overview: np.ndarray  # RGB uint8
    evidence: tuple[Evidence, ...] = ()


def png_bytes(picture: np.ndarray) -> bytes:
    """An RGB (or grey) uint8 array as PNG bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(picture, np.uint8)).save(
        buffer, format="PNG", compress_level=4
    )  # "optimize" costs ~50 ms
    return buffer.getvalue()
