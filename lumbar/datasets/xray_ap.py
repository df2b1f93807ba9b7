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
image. There are no patient ids: images under one number (``...-162 A``, ``...-162 B``, ``...-138 D AP2``,
``...-142 A AP (2)``) are taken as one patient, and radiographs found under two names join one group
(:func:`patient_group`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumbar.tasks.cobb import is_ordered, ordered_quad

PARTS = ("training", "test")


def _film(stem: str) -> str:
    """A training image's file name from its date, number and letter (``20-Jul-2016-1 A``) or coronal stem."""
    return f"sunhl-1th-{stem}{' AP' if ' ' in stem else ''}.jpg"


# Training images that are the same radiograph under two names (stored twice, landmarks placed twice): the README's
# ...-238 A-D = ...-239 A-D, and the others found here (pairs under different numbers whose small thumbnails correlate
# closely and whose expert corners agree after a similarity fit, each then checked by eye; a search, not a proof that
# no other pair exists). The README says that ``coronal<k>`` images repeat training images under other names without
# saying which. The test part's repeats of training radiographs are listed in ``test_overlaps_training.csv``.
SAME_RADIOGRAPH_PAIRS = tuple(
    (_film(a), _film(b))
    for a, b in (
        *((f"10-Jan-2017-238 {x}", f"10-Jan-2017-239 {x}") for x in "ABCD"),
        ("20-Jul-2016-coronal4", "20-Jul-2016-1 A"),
        ("20-Jul-2016-coronal8", "20-Jul-2016-5 A"),
        ("20-Jul-2016-coronal9", "24-Jul-2016-35 D"),
        ("20-Jul-2016-coronal12", "25-Jul-2016-48 A"),
        ("20-Jul-2016-coronal15", "20-Jul-2016-16 C"),
        ("26-Jul-2016-77 A", "22-Nov-2016-141 A"),
        ("26-Jul-2016-77 C", "22-Nov-2016-141 B"),
        ("26-Jul-2016-77 D", "22-Nov-2016-141 D"),
        ("26-Jul-2016-78 A", "22-Nov-2016-153 A"),
        ("26-Jul-2016-78 B", "22-Nov-2016-153 B"),
        ("26-Jul-2016-79 C", "29-Dec-2016-157 A"),
        ("26-Jul-2016-85 A", "20-Jul-2016-12 A"),
        ("20-Jul-2016-coronal3", "20-Jul-2016-coronal10"),
    )
)
# So one patient's films are found under two numbers (first -> the group's number) ...
SAME_RADIOGRAPHS = {"238": "239", "77": "141", "78": "153", "79": "157", "85": "12"}
# ... and coronal<k> is the same radiograph as a film under a number.
CORONAL_REPEATS = {"4": "1", "8": "5", "9": "35", "12": "48", "15": "16"}
CORONAL = "coronal"  # the group of every other coronal<k> (coronal3 = coronal10 and more may repeat each other)
GROUPING = 2  # the grouping's version, written to the frontal networks' records as "grouping"
_NUMBER = re.compile(r"-(\d+)\s*(?:[a-z]\s*)?(?:ap\s*(?:\d+|\(\d+\))?)?\.jpg$", re.IGNORECASE)
_CORONAL = re.compile(r"-coronal(\d+)\.jpg$", re.IGNORECASE)


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
    """The patient group of an image's name: the number it carries (``sunhl-1th-02-Jan-2017-162 A AP.jpg``,
    ``...-138 D AP2.jpg`` and ``...-142 A AP (2).jpg`` -> ``162``, ``138``, ``142``), one number for the numbers that
    hold the same radiographs (:data:`SAME_RADIOGRAPHS`); ``coronal<k>`` the number of the radiograph it repeats
    (:data:`CORONAL_REPEATS`), else :data:`CORONAL`, one group for the rest. Other names are their own group."""
    coronal = _CORONAL.search(name)
    if coronal:
        number = CORONAL_REPEATS.get(coronal.group(1))
        return CORONAL if number is None else SAME_RADIOGRAPHS.get(number, number)
    match = _NUMBER.search(name)
    number = match.group(1) if match else name
    return SAME_RADIOGRAPHS.get(number, number)


def legacy_group(name: str) -> str:
    """The grouping before :data:`GROUPING` 2, which the shipped frontal networks' records (no ``grouping`` key) were
    split with: ``AP2`` / ``AP (2)`` names and each ``coronal<k>`` their own group, 238 joined to 239 and nothing
    else joined. Kept only to find the films those records name."""
    match = re.search(r"-(\d+)\s*[A-Za-z]?\s*(AP|ap)?\.jpg$", name)
    number = match.group(1) if match else name
    return {"238": "239"}.get(number, number)


def grouping_of(record: dict) -> Callable[[str], str]:
    """The grouping (image name -> group) a frontal network's record's ``split_groups`` were made with."""
    return patient_group if record.get("grouping") == GROUPING else legacy_group


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
