"""lumbar: deep-learning analysis of lumbar spine images, fast on a CPU.

One-call API (imports are lazy so that ``import lumbar`` stays fast)::

    import lumbar
    image = lumbar.load("scan.nii.gz")              # SpineImage in RAS+ orientation
    result = lumbar.segment("scan.nii.gz", "out/")  # masks, named levels, review flags, written to out/
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from lumbar.image import SpineImage
    from lumbar.pipeline import SegmentationResult


def load(path, **options) -> "SpineImage":
    """Read a DICOM folder/.zip, NIfTI, MHA/MHD, NRRD or PNG/JPEG into a :class:`SpineImage`."""
    from lumbar.io.read import read_image

    return read_image(path, **options)


def segment(path, out_dir, **options) -> "SegmentationResult":
    """Segment a study, name its levels and write the masks and levels JSON into ``out_dir``."""
    from lumbar.pipeline import segment_study

    return segment_study(path, out_dir, **options)





def analyze(path, out_dir, **options):
    """Analyse a study: masks, named levels, measurements, stenosis, findings.json and the report in ``out_dir/<stem>/``."""
    from lumbar.analysis import analyze_study

    return analyze_study(path, out_dir, **options)
__all__ = ["__version__", "analyze", "load", "segment"]
