"""One pipeline per kind of image (``mr_sagittal`` today), each turning an image into a result, writing nothing."""

from lumbar.pipelines.result import Result, Segmentation
from lumbar.pipelines.router import Pipeline, Route, UnsupportedImage, refusal, route

__all__ = ["Pipeline", "Result", "Route", "Segmentation", "UnsupportedImage", "refusal", "route"]
