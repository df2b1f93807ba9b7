"""Semantic segmentation of sagittal slices (disc, vertebra, canal) with the shipped ONNX network.

Each slice is normalised, resampled to the model's pixel size, padded to the network's grid, run in
batches, and the class probabilities are resampled back to the slice's own pixels before the argmax,
so the label map lies exactly on the input grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lumbar.image import SpineImage
from lumbar.models.registry import OnnxModel, load_model
from lumbar.preprocess import model_shape, normalize_intensity, pad_to_multiple, resize


@dataclass
class SemanticSegmentation:
    """Classes and the probability of the chosen class, as display slices ``(n, rows, cols)``."""

    classes: np.ndarray
    confidence: np.ndarray
    spacing_mm: tuple[float, float]
    model_version: str

    def mean_confidence(self) -> float | None:
        """Mean probability of the chosen class over the pixels segmented as a structure; None when none are."""
        structure = self.classes > 0
        return float(self.confidence[structure].mean()) if structure.any() else None


def softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def segment_slices(
    slices: np.ndarray,
    spacing_mm: tuple[float, float],
    model: OnnxModel | None = None,
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
) -> SemanticSegmentation:
    """Segment display slices ``(n, rows, cols)`` whose pixels measure ``spacing_mm`` (row, col)."""
    model = model or load_model("segmentation")
    target = float(model.spec.input.spacing_mm)
    n, rows, cols = slices.shape
    grid = model_shape((rows, cols), spacing_mm, target)
    classes = np.zeros((n, rows, cols), np.uint8)
    confidence = np.zeros((n, rows, cols), np.float32)
    for start in range(0, n, batch_size):
        chunk = slices[start : start + batch_size]
        batch = np.stack([resize(normalize_intensity(s), grid) for s in chunk])[:, None]
        padded, (h, w) = pad_to_multiple(batch, int(model.spec.input.grid_multiple))
        probs = softmax(model(padded)[:, :, :h, :w])
        probs = resize(probs, (rows, cols))
        classes[start : start + len(chunk)] = probs.argmax(1)
        confidence[start : start + len(chunk)] = probs.max(1)
        if progress:
            progress(len(chunk))
    return SemanticSegmentation(classes, confidence, spacing_mm, model.version)


def segment(
    image: SpineImage, model: OnnxModel | None = None, progress: Callable[[int], None] | None = None
) -> SemanticSegmentation:
    """Segment every sagittal slice of ``image``."""
    return segment_slices(image.sagittal_slices(), image.sagittal_spacing_mm(), model, progress=progress)
