"""Pick the pipeline for an image, or refuse it with one line that says why and what to do.

Each pipeline says which images it reads (its models' registry entries decide); today that is sagittal
MRI, frontal and lateral radiographs and CT volumes. A radiograph whose file does not state its view is read by
both radiograph networks and goes to the one it reads as (:func:`xr_lateral.radiograph_view`). Fluoroscopy and
ultrasound get pipelines of their own here; until they do, such an image is refused rather than run through models
that never saw its kind. ``force`` runs the sagittal MRI pipeline anyway, and the run carries a reason that
withholds its Summary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from lumbar.errors import InputError
from lumbar.image import Modality, SpineImage
from lumbar.pipelines import ct, mr_sagittal, xr_frontal, xr_lateral
from lumbar.pipelines.result import Result, Segmentation
from lumbar.preprocess import field_problem
from lumbar.progress import Progress


class Pipeline(Protocol):
    """What a pipeline module provides (``mr_sagittal`` is one): a name, what it reads, why it would refuse an
    image, and the image-to-result steps, none of which writes anything."""

    NAME: str
    DESCRIPTION: str
    MODALITIES: tuple[Modality, ...]

    def refusal(self, image: SpineImage) -> str | None: ...

    def segment(self, image: SpineImage, progress: Progress = ..., gate: tuple[str, ...] = ...) -> Segmentation: ...

    def analyze(self, image: SpineImage, *, gate: tuple[str, ...] = ..., progress: Progress = ...) -> Result: ...

    def analyze_images(
        self,
        images: list[SpineImage],
        *,
        same_patient: bool = ...,
        gates: list[tuple[str, ...]] | None = ...,
        progress: Progress = ...,
    ) -> list[Result]: ...


PIPELINES: tuple[Pipeline, ...] = (mr_sagittal, xr_frontal, xr_lateral, ct)  # type: ignore[assignment]


class UnsupportedImage(InputError):
    """No pipeline reads this kind of image; ``reason`` says why in a few words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Route:
    """The pipeline chosen for an image, the image as that pipeline reads it (a picture of unstated modality found
    to be a radiograph is read as one), and the reasons a forced run withholds its Summary."""

    pipeline: Pipeline
    image: SpineImage
    gate: tuple[str, ...] = ()


def refusal(image: SpineImage) -> str | None:
    """Why no pipeline reads ``image``, or None when one does: a field of view no body has, else the reason of the
    pipeline made for its modality (a CT's refusal by the CT pipeline says more than the MRI pipeline's), else of
    the first."""
    too_large = _field_problem(image)
    if too_large:
        return too_large
    reasons = [pipeline.refusal(image) for pipeline in PIPELINES]
    if any(r is None for r in reasons):
        return None
    return _most_specific(image, reasons)  # type: ignore[arg-type]


def _field_problem(image: SpineImage) -> str | None:
    return field_problem(image.sagittal_slices().shape[1:], image.sagittal_spacing_mm())


def _most_specific(image: SpineImage, reasons: list[str]) -> str:
    """The refusal of the pipeline made for the image's modality (and, for a radiograph, its view)."""
    own = [
        why
        for pipeline, why in zip(PIPELINES, reasons)
        if image.modality in pipeline.MODALITIES and image.view in (None, getattr(pipeline, "VIEW", image.view))
    ]
    return own[0] if own else reasons[0]


def route(image: SpineImage, force: bool = False) -> Route:
    """The pipeline that reads ``image``; with ``force``, the sagittal MRI pipeline for any image, flagged. A
    picture whose file does not state its modality (read as MR) is read as a radiograph where a radiograph
    network finds a spine in it (:func:`xr_frontal.reads_as_radiograph`, :func:`xr_lateral.reads_as_lateral`); its
    modality stays marked as guessed, as does a radiograph's view that its file does not state.
    A field of view larger than a body (a wrong voxel size) is refused even with ``force``: resampled to the
    networks' pixel size it would ask for gigabytes."""
    too_large = _field_problem(image)
    if too_large:
        raise UnsupportedImage(f"{image.source}: not supported: {too_large}", too_large)
    if (
        image.modality_guessed
        and image.modality is Modality.MR
        and (xr_frontal.reads_as_radiograph(image) or xr_lateral.reads_as_lateral(image))
    ):
        image = replace(image, modality=Modality.RADIOGRAPH)
    if image.modality is Modality.RADIOGRAPH and image.view is None and image.is_2d:
        image = replace(image, view=xr_lateral.radiograph_view(image.sagittal_slices()[0]), view_guessed=True)
    refusals = []
    for pipeline in PIPELINES:
        why = pipeline.refusal(image)
        if why is None:
            return Route(pipeline, image)
        refusals.append(why)
    why = _most_specific(image, refusals)
    if force:
        return Route(mr_sagittal, image, (f"forced: {why}; results may be meaningless",))  # type: ignore[arg-type]
    readable = "; ".join(p.DESCRIPTION for p in PIPELINES)
    raise UnsupportedImage(
        f"{image.source}: not supported: {why}. lumbar reads {readable}; --force runs it anyway, flagged", why
    )
