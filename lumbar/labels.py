"""Every label value, level name and colour in one table.

Three label spaces meet in this project:

* **Classes** (``Structure``): what the segmentation network predicts, as dense indices 0..3.
* **SPIDER semantic values**: how the SPIDER masks (and our PNG outputs) store the same classes
  (0 background, 29 disc, 76 vertebra, 150 canal; van der Graaf et al., Sci Data 2024).
* **Instance labels**: one value per named structure. Vertebrae use the VerSe ids
  (Sekuboyina et al., Med Image Anal 2021: 1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum),
  a disc is ``DISC_OFFSET`` + the VerSe id of the vertebra above it (L5/S1 = 124), the canal is 200.

Level names run in one order, ``SPINE_ORDER`` (head to sacrum); every other list of levels in the
project is a slice of it, so a name can never be spelled two ways.
"""

from __future__ import annotations

import itertools
from enum import IntEnum

import numpy as np


class Structure(IntEnum):
    """Classes predicted by the segmentation network."""

    BACKGROUND = 0
    DISC = 1
    VERTEBRA = 2
    CANAL = 3


SPIDER_VALUES: dict[Structure, int] = {
    Structure.BACKGROUND: 0,
    Structure.DISC: 29,
    Structure.VERTEBRA: 76,
    Structure.CANAL: 150,
}

STRUCTURE_NAMES: dict[Structure, str] = {
    Structure.DISC: "disc",
    Structure.VERTEBRA: "vertebra",
    Structure.CANAL: "canal",
}

# RGB colours for overlays and the label tables that 3D Slicer and ITK-SNAP read.
STRUCTURE_COLOURS: dict[Structure, tuple[int, int, int]] = {
    Structure.DISC: (64, 160, 255),
    Structure.VERTEBRA: (240, 200, 80),
    Structure.CANAL: (120, 220, 120),
}

# The vertebrae a lumbar study can show, head to sacrum, with their VerSe ids. L6 (a transitional
# vertebra) has a VerSe id but is never named by level counting: it is flagged for review instead.
SPINE_ORDER: tuple[str, ...] = tuple(f"T{i}" for i in range(1, 13)) + tuple(f"L{i}" for i in range(1, 6)) + ("S1",)
VERTEBRA_IDS: dict[str, int] = {
    **{f"T{i}": 7 + i for i in range(1, 13)},
    **{f"L{i}": 19 + i for i in range(1, 7)},
    "S1": 26,
}
VERTEBRA_NAMES: dict[int, str] = {v: k for k, v in VERTEBRA_IDS.items()}

DISC_OFFSET = 100
CANAL_LABEL = 200

# Order of the vertebrae from the sacrum upwards, as counted by level labelling.
CAUDAL_TO_CRANIAL: tuple[str, ...] = SPINE_ORDER[::-1]


# Colours of the level names written on overlays (light shades that read on the grey image).
NAME_COLOURS: dict[Structure, tuple[int, int, int]] = {
    Structure.DISC: (120, 200, 255),
    Structure.VERTEBRA: (255, 235, 150),
}


def disc_name(upper: str, lower: str) -> str:
    """Level name of the disc between two vertebrae, e.g. ``disc_name("L5", "S1") == "L5/S1"``."""
    return f"{upper}/{lower}"


def vertebrae_between(top: str, bottom: str) -> tuple[str, ...]:
    """The vertebrae from ``top`` down to ``bottom``, both included: ``("L4", "L5", "S1")``."""
    return SPINE_ORDER[SPINE_ORDER.index(top) : SPINE_ORDER.index(bottom) + 1]


def discs_between(top: str, bottom: str) -> tuple[str, ...]:
    """The discs below ``top`` down to the one above ``bottom``: ``discs_between("L4", "S1") == ("L4/L5", "L5/S1")``."""
    names = vertebrae_between(top, bottom)
    return tuple(disc_name(u, lo) for u, lo in itertools.pairwise(names))


# The bodies a full frontal spine radiograph is named by (the AASCE 2019 films label T1 to L5).
FRONTAL_LEVELS: tuple[str, ...] = vertebrae_between("T1", "L5")
# What the level network says a candidate body on a frontal film is (``lumbar.tasks.frontal_levels``).
FRONTAL_LEVEL_CLASSES: tuple[str, ...] = ("above", "T1", "between", "L5", "below", "none")

# Discs a lumbar study reports (findings.json's contract) and the lumbar discs proper.
REPORTED_DISCS: tuple[str, ...] = discs_between("T9", "S1")
LUMBAR_DISCS: tuple[str, ...] = discs_between("L1", "S1")


def disc_label(upper: str) -> int:
    """Instance label of the disc below vertebra ``upper``."""
    return DISC_OFFSET + VERTEBRA_IDS[upper]


def is_vertebra(instances: np.ndarray) -> np.ndarray:
    """Where an instance map holds a vertebra (any level)."""
    return (instances > 0) & (instances < DISC_OFFSET)


def is_disc(instances: np.ndarray) -> np.ndarray:
    """Where an instance map holds a disc (any level)."""
    return (instances > DISC_OFFSET) & (instances < CANAL_LABEL)


def classes_of(instances: np.ndarray) -> np.ndarray:
    """The semantic classes (``Structure``) of an instance map."""
    classes = np.zeros(instances.shape, np.uint8)
    classes[is_vertebra(instances)] = Structure.VERTEBRA
    classes[is_disc(instances)] = Structure.DISC
    classes[instances == CANAL_LABEL] = Structure.CANAL
    return classes


def instance_name(label: int) -> str:
    """Human name of an instance label (``"L4"``, ``"L4/L5"``, ``"canal"``)."""
    if label == CANAL_LABEL:
        return "canal"
    if label in VERTEBRA_NAMES:
        return VERTEBRA_NAMES[label]
    upper = VERTEBRA_NAMES.get(label - DISC_OFFSET)
    if upper is None or upper not in CAUDAL_TO_CRANIAL[1:]:
        raise ValueError(f"unknown instance label {label}")
    return disc_name(upper, CAUDAL_TO_CRANIAL[CAUDAL_TO_CRANIAL.index(upper) - 1])


def structure_of(name: str) -> Structure:
    """The class an instance name belongs to: ``"canal"``, a disc (``"L4/L5"``) or a vertebra (``"L4"``)."""
    return Structure.CANAL if name == "canal" else Structure.DISC if "/" in name else Structure.VERTEBRA


def instance_colours(names: dict[int, str]) -> dict[int, tuple[int, int, int]]:
    """Each instance in its structure's colour, alternating shades so that neighbouring levels stay apart."""
    colours = {}
    for value, name in names.items():
        r, g, b = STRUCTURE_COLOURS[structure_of(name)]
        shade = 0.75 if value % 2 else 1.0
        colours[value] = (int(r * shade), int(g * shade), int(b * shade))
    return colours
