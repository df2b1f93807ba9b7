"""The SPIDER dataset's conventions (van der Graaf et al., Sci Data 2024): names, spacing, mask values.

File names are ``<patient>_<sequence>[_slice<k>].png``; pixel spacing lives in ``overview.csv`` per
series; masks store 29 disc, 76 vertebra, 150 canal.
"""

from __future__ import annotations

import ast
import csv
import re
from pathlib import Path

import numpy as np

from lumbar.labels import SPIDER_VALUES, Structure


def patient_id(name: str) -> str:
    """Patient id of a file name: everything before the first underscore."""
    return Path(name).name.split("_")[0]


def series_name(stem: str) -> str:
    """Series of a slice file stem: ``12_t2_SPACE_slice7`` -> ``12_t2_SPACE``."""
    return re.sub(r"_slice\d+$", "", stem)


def find_overview(data_dir: Path) -> Path | None:
    """SPIDER's ``overview.csv`` in ``data_dir``, its parent or grandparent, if there."""
    for candidate in (
        data_dir / "overview.csv",
        data_dir.parent / "overview.csv",
        data_dir.parent.parent / "overview.csv",
    ):
        if candidate.is_file():
            return candidate
    return None


def read_overview_spacing(csv_path: Path) -> dict[str, tuple[float, float]]:
    """Pixel spacing (row, col mm) per series name from ``overview.csv``."""
    spacing: dict[str, tuple[float, float]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                values = ast.literal_eval(row["PixelSpacing"])
                spacing[row["new_file_name"]] = (float(values[0]), float(values[1]))
            except (KeyError, ValueError, SyntaxError, TypeError, IndexError):
                continue
    return spacing


def read_overview_voxels(csv_path: Path) -> dict[str, tuple[float, float, float]]:
    """Voxel size (between slices, row, col mm) per series name from ``overview.csv``: ``SpacingBetweenSlices``,
    else ``SliceThickness``, beside the pixel spacing."""
    pixel = read_overview_spacing(csv_path)
    voxels: dict[str, tuple[float, float, float]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                between = float(row.get("SpacingBetweenSlices") or row["SliceThickness"])
                voxels[row["new_file_name"]] = (between, *pixel[row["new_file_name"]])
            except (KeyError, ValueError, TypeError):
                continue
    return voxels


def t2space_series(folder: Path) -> dict[str, list[Path]]:
    """The slice files of each T2 SPACE series in ``folder`` (``t2space/images`` or ``t2space/masks``), in slice
    order, series sorted by name."""
    series: dict[str, list[tuple[int, Path]]] = {}
    for path in folder.glob("*_slice*.png"):
        name, k = path.stem.rsplit("_slice", 1)
        series.setdefault(name, []).append((int(k), path))
    return {name: [p for _, p in sorted(v)] for name, v in sorted(series.items())}


def spider_to_classes(mask: np.ndarray) -> np.ndarray:
    """Map SPIDER mask values (0, 29, 76, 150) or class indices (0..3) to class indices."""
    mask = np.asarray(mask)
    if mask.max(initial=0) <= max(Structure):
        return mask.astype(np.uint8)
    out = np.zeros(mask.shape, np.uint8)
    for structure, value in SPIDER_VALUES.items():
        out[mask == value] = structure
    return out
