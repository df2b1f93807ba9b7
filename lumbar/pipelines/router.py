"""Pick the pipeline for an image, or refuse it with one line that says why and what to do.

Each pipeline says which images it reads (its models' registry entries decide); today that is sagittal
MRI. CT, radiographs, fluoroscopy and ultrasound get pipelines of their own here; until they do, such an
image is refused rather than run through models that never saw its kind. ``force`` runs the nearest
pipeline anyway and says so in the review reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from lumbar.errors import InputError
from lumbar.image import SpineImage
from lumbar.pipelines import mr_sagittal

PIPELINES: tuple[ModuleType, ...] = (mr_sagittal,)


class UnsupportedImage(InputError):
    """No pipeline reads this kind of image."""


@dataclass(frozen=True)
class Route:
    """The pipeline chosen for an image, and the review note a forced run carries."""

    pipeline: ModuleType
    notes: tuple[str, ...] = ()


def route(image: SpineImage, force: bool = False) -> Route:
    """The pipeline that reads ``image``; with ``force``, the sagittal MRI pipeline for any image, flagged."""
    refusals = []
    for pipeline in PIPELINES:
        why = pipeline.refusal(image)
        if why is None:
            return Route(pipeline)
        refusals.append(why)
    if force:
        return Route(mr_sagittal, (f"forced: {refusals[0]}; results may be meaningless",))
    readable = "; ".join(p.DESCRIPTION for p in PIPELINES)
    raise UnsupportedImage(
        f"{image.source}: not supported: {refusals[0]}. lumbar reads {readable}; --force runs it anyway, flagged"
    )
