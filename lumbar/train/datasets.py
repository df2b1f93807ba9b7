"""Training data in the two layouts a user is likely to have, as lists of 2D sagittal slices.

* **SPIDER PNG layout**: ``DIR/images/<pid>_<series>_slice<k>.png`` with masks of the same name in
  ``DIR/masks`` (values 0, 29, 76, 150). Pixel spacing comes from an ``overview.csv`` (SPIDER's own,
  looked up beside ``DIR`` or given) when present, else from ``--spacing``.
* **NIfTI pairs**: ``DIR/imagesTr/<case>.nii.gz`` with ``DIR/labelsTr/<case>.nii.gz`` (nnU-Net style),
  labels as SPIDER values or as class indices 0-3. Every sagittal slice with a label becomes a sample.

The patient id is the part of the file name before the first underscore: splits are made by it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lumbar.errors import InputError
from lumbar.image import assumed_spacing_mm
from lumbar.io.read import read_raster_array
from lumbar.io.spider import find_overview, patient_id, read_overview_spacing, series_name, spider_to_classes
from lumbar.preprocess import model_shape, normalize_intensity, resize


@dataclass
class Slice:
    """One training sample at the model's pixel size: image in [0, 1], classes 0..3."""

    patient: str
    name: str
    image: np.ndarray
    mask: np.ndarray


def _to_model_grid(
    image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float], target_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    shape = model_shape(image.shape, spacing, target_mm)
    return resize(normalize_intensity(image), shape), resize(mask, shape, labels=True)


def load_png_layout(
    data_dir: Path, target_mm: float, spacing_mm: float | None = None, overview: Path | None = None
) -> list[Slice]:
    """Load a SPIDER-style folder of PNG images and masks, resampled to ``target_mm`` pixels."""
    images_dir, masks_dir = data_dir / "images", data_dir / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise InputError(f"{data_dir}: expected folders images/ and masks/ (SPIDER PNG layout)")
    overview = overview or find_overview(data_dir)
    spacing_by_series = read_overview_spacing(overview) if overview else {}
    samples = []
    for image_path in sorted(images_dir.glob("*.png")):
        mask_path = masks_dir / image_path.name
        if not mask_path.is_file():
            continue
        image = read_raster_array(image_path)  # as inference reads it: 16-bit kept
        mask = spider_to_classes(np.asarray(Image.open(mask_path).convert("L")))
        spacing = spacing_by_series.get(series_name(image_path.stem))
        if spacing is None:
            spacing = (spacing_mm, spacing_mm) if spacing_mm else (assumed_spacing_mm(image.shape),) * 2
        image, mask = _to_model_grid(image, mask, spacing, target_mm)
        samples.append(Slice(patient_id(image_path.name), image_path.stem, image, mask))
    if not samples:
        raise InputError(f"{data_dir}: no image/mask pairs found in images/ and masks/")
    return samples


def load_nifti_layout(data_dir: Path, target_mm: float) -> list[Slice]:
    """Load nnU-Net-style NIfTI pairs and cut them into sagittal slices that contain labels."""
    from lumbar.io.read import read_image

    images_dir, labels_dir = data_dir / "imagesTr", data_dir / "labelsTr"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise InputError(f"{data_dir}: expected folders imagesTr/ and labelsTr/ (NIfTI pairs)")
    samples = []
    for image_path in sorted(images_dir.glob("*.nii*")):
        case = image_path.name.split(".nii")[0].removesuffix("_0000")
        label_path = next(iter(sorted(labels_dir.glob(f"{case}.nii*"))), None)
        if label_path is None:
            continue
        image, label = read_image(image_path), read_image(label_path)
        views, masks = image.sagittal_slices(), label.sagittal_slices()
        if views.shape != masks.shape:
            raise InputError(f"{label_path}: label grid {masks.shape} differs from image grid {views.shape}")
        spacing = image.sagittal_spacing_mm()
        for k, (view, mask) in enumerate(zip(views, spider_to_classes(np.rint(masks)))):
            if mask.any():
                view, mask = _to_model_grid(view, mask, spacing, target_mm)
                samples.append(Slice(patient_id(case), f"{case}_slice{k}", view, mask))
    if not samples:
        raise InputError(f"{data_dir}: no labelled slices found")
    return samples


def load_dataset(data_dir: Path, target_mm: float, spacing_mm: float | None = None) -> list[Slice]:
    """Load whichever supported layout ``data_dir`` holds."""
    if (data_dir / "imagesTr").is_dir():
        return load_nifti_layout(data_dir, target_mm)
    return load_png_layout(data_dir, target_mm, spacing_mm)


def split_by_patient(samples: list[Slice], val_fraction: float, seed: int) -> tuple[list[Slice], list[Slice]]:
    """Split samples so that no patient is in both parts; the same seed gives the same split."""
    patients = sorted({s.patient for s in samples})
    random.Random(seed).shuffle(patients)
    n_val = max(1, round(len(patients) * val_fraction))
    val = set(patients[:n_val])
    return [s for s in samples if s.patient not in val], [s for s in samples if s.patient in val]
