"""lumbar: deep-learning analysis of lumbar spine images, fast on a CPU.

One-call API (imports are lazy so that ``import lumbar`` stays fast)::

    import lumbar
    image = lumbar.load("scan.nii.gz")               # SpineImage in RAS+ orientation
    result = lumbar.analyze("scan.nii.gz")           # findings, label maps and figures; nothing written
    result = lumbar.analyze("scan.nii.gz", out="out")  # the same, written into out/scan/
    result.findings.discs[0].grades["pfirrmann"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lumbar.version import __version__

if TYPE_CHECKING:
    from lumbar.image import SpineImage
    from lumbar.pipelines import Result, Segmentation
    from lumbar.pipelines.fusion import FusionResult


def load(path, **options: Any) -> SpineImage:
    """Read a DICOM folder/.zip, NIfTI, MHA/MHD, NRRD or PNG/JPEG into a :class:`SpineImage`."""
    from lumbar.io.read import read_image

    return read_image(path, **options)


def analyze(source, out=None, **options: Any) -> Result:
    """Analyse a study: masks, named levels, measurements, stenosis, grades, findings and figures. Nothing is
    written unless ``out`` is given; then everything goes into ``out/<stem>/`` (see :func:`lumbar.api.analyze`)."""
    from lumbar.api import analyze as run

    return run(source, out, **options)


def analyze_patient(sources, out=None, **options: Any) -> list[Result]:
    """Several series of one patient graded together (see :func:`lumbar.api.analyze_patient`)."""
    from lumbar.api import analyze_patient as run

    return run(sources, out, **options)


def segment(source, out=None, **options: Any) -> Segmentation:
    """Segment a study and name its levels; with ``out``, write the masks and levels JSON there."""
    from lumbar.api import segment as run

    return run(source, out, **options)


def fuse(mr, ct, out=None, **options: Any) -> FusionResult:
    """Register an MR onto a CT and fuse them by wavelets; with ``out``, write the fused images, the registered MR,
    the transform, a picture and ``fusion.json`` there (see :func:`lumbar.api.fuse`)."""
    from lumbar.api import fuse as run

    return run(mr, ct, out, **options)


__all__ = ["__version__", "analyze", "analyze_patient", "fuse", "load", "segment"]
