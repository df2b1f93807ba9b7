"""Every label value, level name and colour in one table.

Three label spaces meet in this project:

* **Classes** (``Structure``): what the segmentation network predicts, as dense indices 0..3.
* **SPIDER semantic values**: how the SPIDER masks (and our PNG outputs) store the same classes
  (0 background, 29 disc, 76 vertebra, 150 canal; van der Graaf et al., Sci Data 2024).
* **Instance labels**: one value per named structure. Vertebrae use the VerSe ids
  (Sekuboyina et al., Med Image Anal 2021: 1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum),
  a disc is ``DISC_OFFSET`` + the VerSe id of the vertebra above it (L5/S1 = 124), the canal is 200.
"""

from __future__ import annotations

from enum import IntEnum


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

# VerSe ids of the vertebrae that appear on a lumbar sagittal MRI.
VERTEBRA_IDS: dict[str, int] = {
    **{f"T{i}": 7 + i for i in range(1, 13)},
    **{f"L{i}": 19 + i for i in range(1, 7)},
    "S1": 26,
}
VERTEBRA_NAMES: dict[int, str] = {v: k for k, v in VERTEBRA_IDS.items()}

DISC_OFFSET = 100
CANAL_LABEL = 200

# Order of the vertebrae from the sacrum upwards, as counted by level labelling.
CAUDAL_TO_CRANIAL: tuple[str, ...] = ("S1", "L5", "L4", "L3", "L2", "L1") + tuple(f"T{i}" for i in range(12, 0, -1))


def disc_name(upper: str, lower: str) -> str:
    """Level name of the disc between two vertebrae, e.g. ``disc_name("L5", "S1") == "L5/S1"``."""
    return f"{upper}/{lower}"


def disc_label(upper: str) -> int:
    """Instance label of the disc below vertebra ``upper``."""
    return DISC_OFFSET + VERTEBRA_IDS[upper]


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


# RGB colours for overlays and the label tables that 3D Slicer and ITK-SNAP read.
STRUCTURE_COLOURS: dict[Structure, tuple[int, int, int]] = {
    Structure.DISC: (64, 160, 255),
    Structure.VERTEBRA: (240, 200, 80),
    Structure.CANAL: (120, 220, 120),
}
