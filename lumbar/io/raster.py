"""PNG and JPEG pictures: one grey slice each, shown as read (head up, anterior left)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.image import SpineImage
from lumbar.io.arrays import picture_as_slice

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_raster_array(path: Path) -> np.ndarray:
    """Grey pixels of a PNG/JPEG as float32, 16-bit kept, colour and alpha folded to grey."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im, _truncation_refused():
            im.load()
            grey = im.convert("I;16") if im.mode in ("I", "I;16", "I;16B") else im.convert("L")
            array = np.asarray(grey, dtype=np.float32)
    except Image.DecompressionBombError:
        raise InputError(f"{path}: image is too large to be a slice (over {Image.MAX_IMAGE_PIXELS} pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None
    if array.ndim != 2 or min(array.shape) < 2:
        raise InputError(f"{path}: expected a 2D slice, got shape {array.shape}")
    return array


@contextmanager
def _truncation_refused() -> Iterator[None]:
    """Decode strictly: WeasyPrint (imported for reports) makes Pillow fill truncated pictures with grey, globally."""
    from PIL import ImageFile

    allowed = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = allowed


def read_raster(path: Path, spacing_mm: float | None) -> SpineImage:
    """One picture; its square pixel size is ``spacing_mm`` when given (PNG/JPEG store none), else assumed."""
    spacing = (float(spacing_mm), float(spacing_mm)) if spacing_mm is not None else None
    return picture_as_slice(read_raster_array(path), spacing, path, path.suffix[1:].upper())
