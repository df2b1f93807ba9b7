"""The AASCE 2019 frontal spine radiographs (``xray_ap``: Wu et al., MICCAI 2017) with their corners and Cobb angles.

Layout: ``images/{training,test}/<name>.jpg``; ``labels/{training,test}/filenames.csv``, ``landmarks.csv`` (68 x
then 68 y, normalised by the image's width and height: 17 vertebrae T1-L5 x corners top-left, top-right,
bottom-left, bottom-right) and ``angles.csv`` (three Cobb angles); ``test_overlaps_training.csv`` lists the test
images that repeat a training radiograph.

The landmarks are read as the data's README says they must be: the 17 quads sorted top to bottom (21 images store
T1 last), a quad whose corners are out of order (twisted, upside down, or its mid-line tilted 45 degrees or more:
:func:`lumbar.tasks.cobb.is_ordered`; none of the expert's is so tilted) put in order
(:func:`lumbar.tasks.cobb.ordered_quad`), and what still looks wrong
named in ``faults``: quads overlapping their neighbour, a stored angle above 90 degrees, a landmark outside the
image. There are no patient ids: images under one number (``...-162 A``, ``...-162 B``) are taken as one patient.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumbar.tasks.cobb import is_ordered, ordered_quad

PARTS = ("training", "test")
SAME_RADIOGRAPHS = {"238": "239"}  # the README: training ...-238 A-D duplicate ...-239 A-D


@dataclass(frozen=True)
class Radiograph:
    """One labelled radiograph: corners ``(17, 4, 2)`` [x, y] pixels, T1 first, each quad left-superior,
    right-superior, right-inferior, left-inferior; the dataset's three Cobb angles; what looks wrong in it."""

    name: str
    path: Path
    part: str
    width: int
    height: int
    corners: np.ndarray
    angles: np.ndarray
    group: str
    faults: tuple[str, ...]
    repeats_training: bool = False


def patient_group(name: str) -> str:
    """The number an image's name carries (``sunhl-1th-02-Jan-2017-162 A AP.jpg`` -> ``162``): one patient's
    radiographs share it. Names without one are their own group."""
    match = re.search(r"-(\d+)\s*[A-Za-z]?\s*(AP|ap)?\.jpg$", name)
    number = match.group(1) if match else name
    return SAME_RADIOGRAPHS.get(number, number)


def _faults(corners: np.ndarray, angles: np.ndarray, width: int, height: int) -> tuple[str, ...]:
    faults = []
    centres = corners.mean(1)
    gaps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    heights = np.linalg.norm(corners[:, 3] - corners[:, 0], axis=1)
    if np.any(gaps < 0.5 * np.median(heights)):
        faults.append("quads overlap")
    if np.any(angles > 90):
        faults.append("angle above 90 degrees")
    outside = (corners[..., 0] < 0) | (corners[..., 0] > width) | (corners[..., 1] < 0) | (corners[..., 1] > height)
    if outside.any():
        faults.append("landmark outside the image")
    return tuple(faults)


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_part(root: Path, part: str) -> list[Radiograph]:
    """The labelled radiographs of ``part`` ("training" or "test")."""
    from PIL import Image

    labels = root / "labels" / part
    names = _lines(labels / "filenames.csv")
    landmarks = np.loadtxt(labels / "landmarks.csv", delimiter=",", ndmin=2)
    angles = np.loadtxt(labels / "angles.csv", delimiter=",", ndmin=2)
    if not len(names) == len(landmarks) == len(angles):
        raise ValueError(f"{labels}: {len(names)} names, {len(landmarks)} landmark rows, {len(angles)} angle rows")
    repeats: set[str] = set()
    overlaps = root / "test_overlaps_training.csv"
    if part == "test" and overlaps.is_file():
        with open(overlaps, newline="") as f:
            repeats = {row["test_image"] for row in csv.DictReader(f)}
    out = []
    for name, row, angle in zip(names, landmarks, angles):
        path = root / "images" / part / name
        with Image.open(path) as image:
            width, height = image.size
        points = np.stack([row[:68] * width, row[68:] * height], 1).reshape(17, 4, 2)[:, [0, 1, 3, 2]]
        quads = np.stack([q if is_ordered(q) else ordered_quad(q) for q in points])
        quads = quads[np.argsort(quads.mean(1)[:, 1], kind="stable")]
        out.append(
            Radiograph(
                name,
                path,
                part,
                width,
                height,
                quads,
                angle,
                patient_group(name),
                _faults(quads, angle, width, height),
                name in repeats,
            )
        )
    return out


def read_image(radiograph: Radiograph) -> np.ndarray:
    """The radiograph's grey pixels (rows, columns), float32."""
    from PIL import Image

    with Image.open(radiograph.path) as image:
        return np.asarray(image.convert("L"), np.float32)
