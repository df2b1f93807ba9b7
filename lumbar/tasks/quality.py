"""A quality gate per image, read from the segmentation itself: what makes its level-by-level findings untrustworthy.

Each check names the level it concerns. The pipeline withholds the Summary of an image that fails any of them (and
of one whose level names carry a flag, or that was forced through a pipeline not made for it): the measurements
stay in the tables, the reason goes to ``needs_review``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from lumbar.findings import VertebraMeasurements
from lumbar.tasks.levels import Level
from lumbar.tasks.measurements import cut_by_edge, in_front_of_canal, thecal_canal, vertebral_body

MIN_PIECE_FRACTION = 0.25  # a second piece of a body at least this share of the largest: the body is in pieces
BODY_AREA_RANGE = (0.5, 1.8)  # a body's area against the median body of the image (excluding cut or sacral ones)
MIN_BODY_PIXELS = 20
# Cortical bone is dark on MRI (no signal) and the brightest tissue on CT. The median intensity of a body's rim over
# that of its core: 0.70-0.90 (5th-95th percentile) on SPIDER's MRI, 1.02-1.05 on 8-bit CT sagittal stacks, above
# 3 on CT in HU (`python bench/unlike_mri.py`). Above this, the "MRI" is likely a CT.
MAX_MRI_RIM_RATIO = 1.0
# Adults' lumbar bodies are 22-30 mm tall in the middle; a small child's are 10-15 mm. Measured by lumbar on SPIDER's
# 331 mid-sagittal adult images whose listed pixel size fits them (turned head up), the per-image median runs from
# 14.2 mm (some PNGs were resized from the listed spacing) with a 1st percentile of 16.5 mm and a median of 24.6
# (`python bench/body_size.py`, bench/claims/body_size.json). Below this bound the spine is smaller than every adult
# one lumbar was validated on.
CHILD_BODY_HEIGHT_MM = 14.0
# A cervical spine (or the upper thoracic one) given as a lumbar one is named from its lowest disc up as if lumbar.
# Its bodies are small both ways: C3-C7 roughly 14-16 mm tall and 15-18 mm deep, against an adult's lumbar 22-30 mm
# tall and 30-35 mm deep (upper thoracic bodies, about 17-19 mm tall and 17-21 mm deep, only partly below the
# bounds). Depth alone cannot tell: on SPIDER's 331 adult images (as above) the per-image median depth runs from
# 16.3 mm (SPIDER 123's T2, 18.7 mm tall), 1st percentile 20.0; SPIDER 187's bodies read 30 mm tall and 19 mm deep,
# likely a listed pixel size that shrinks one axis. Bodies below both bounds are smaller both ways than any of those
# adults, by a thin margin (237's T2: 18.7 mm tall, 19.0 deep); the bounds were set after seeing that distribution
# (no cervical image is here).
CERVICAL_BODY_HEIGHT_MM = 18.0
CERVICAL_BODY_DEPTH_MM = 20.0
LUMBAR_BODIES = ("L1", "L2", "L3", "L4", "L5")


def bone_rim_ratio(
    picture: np.ndarray, instances: np.ndarray, levels: list[Level], spacing_mm: tuple[float, float]
) -> float | None:
    """Median over the vertebral bodies of a slice of (rim intensity / core intensity); None without a body big
    enough to have both."""
    canal = thecal_canal(instances, spacing_mm)
    ratios = []
    for level in levels:
        if level.kind != "vertebra":
            continue
        body = vertebral_body(instances == level.label, canal)
        core = ndimage.binary_erosion(body, iterations=4)
        rim = body & ~ndimage.binary_erosion(body, iterations=2)
        if core.sum() < MIN_BODY_PIXELS or not rim.any():
            continue
        centre = float(np.median(picture[core]))
        ratios.append(float(np.median(picture[rim])) / centre if centre > 0 else np.inf)  # MR magnitudes are >= 0
    return float(np.median(ratios)) if ratios else None


def unlike_mri(
    picture: np.ndarray, instances: np.ndarray, levels: list[Level], spacing_mm: tuple[float, float]
) -> str | None:
    """Why the mid-sagittal ``picture`` does not look like the MRI the models were trained on, or None."""
    ratio = bone_rim_ratio(picture, instances, levels, spacing_mm)
    if ratio is not None and ratio > MAX_MRI_RIM_RATIO:
        return f"vertebral bodies with a bright rim ({ratio:.2f} x their core), as bone looks on CT, not on MRI"
    return None


def body_pieces(instances: np.ndarray, level: Level, spacing_mm: tuple[float, float]) -> int:
    """How many sizeable pieces the vertebral body (the part in front of the canal) of ``level`` falls into."""
    return _pieces(in_front_of_canal(instances == level.label, thecal_canal(instances, spacing_mm)))


def _pieces(mask: np.ndarray) -> int:
    """Sizeable pieces of a mask: those at least ``MIN_PIECE_FRACTION`` of the largest."""
    labelled, n = ndimage.label(mask)
    if n <= 1:
        return n
    sizes = np.sort(np.bincount(labelled.ravel())[1:])[::-1]
    return int(np.sum(sizes >= MIN_PIECE_FRACTION * sizes[0]))


def quality_problems(
    instances: np.ndarray,
    levels: list[Level],
    spacing_mm: tuple[float, float],
    edge_spacing_mm: tuple[float, float] | None = None,
) -> list[str]:
    """What in the mid-sagittal segmentation ``instances`` makes level-by-level findings untrustworthy: a disc in
    pieces, or a body in pieces or of implausible size among the vertebrae that have a disc found above and below
    them. (A small disc is no problem: a narrowed disc is small.) ``spacing_mm``: the slice's (row, col) pixel size,
    1 mm where unknown, as the measurements take it; ``edge_spacing_mm``: the size a body cut by the image's edge is
    judged in, as the measurements judge it (the assumed one where the file gives none; default ``spacing_mm``)."""
    problems = [
        f"disc {lv.name} is segmented in pieces"
        for lv in levels
        if lv.kind == "disc" and _pieces(instances == lv.label) > 1
    ]
    canal = thecal_canal(instances, spacing_mm)
    bodies = {}
    discs = {lv.name for lv in levels if lv.kind == "disc"}
    for level in levels:
        if level.kind != "vertebra" or level.name == "S1":
            continue
        if not any(d.endswith(f"/{level.name}") for d in discs) or not any(
            d.startswith(f"{level.name}/") for d in discs
        ):
            continue  # the top of the field of view: a partial body there is expected and names nothing below
        mask = instances == level.label
        # the body, as the measurements judge it: a spinous process at the image's edge cuts no body
        if mask.sum() < MIN_BODY_PIXELS or cut_by_edge(vertebral_body(mask, canal), edge_spacing_mm or spacing_mm):
            continue
        if body_pieces(instances, level, spacing_mm) > 1:
            problems.append(f"vertebra {level.name} is segmented in pieces")
            continue  # its largest piece says nothing of its size
        area = int(vertebral_body(mask, canal).sum())
        if area == 0:
            problems.append(f"vertebra {level.name} has no body in front of the canal: an implausible body")
            continue
        bodies[level.name] = area
    if len(bodies) >= 3:
        median = float(np.median(list(bodies.values())))
        for name, area in bodies.items():
            if not BODY_AREA_RANGE[0] <= area / median <= BODY_AREA_RANGE[1]:
                problems.append(
                    f"vertebra {name} is {area / median:.1f} times the size of the others: an implausible body"
                )
    return problems


def _median_lumbar(vertebrae: dict[str, VertebraMeasurements], size: str) -> float:
    """Median of one size (a ``VertebraMeasurements`` field, in mm) over the measured lumbar bodies (L1-L5); NaN
    where none was measured."""
    values = [getattr(m, size) for name, m in vertebrae.items() if name in LUMBAR_BODIES]
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(values)) if values else float("nan")


def median_body_height_mm(vertebrae: dict[str, VertebraMeasurements]) -> float:
    """Median middle height of the measured lumbar bodies (L1-L5); NaN where none was measured."""
    return _median_lumbar(vertebrae, "height_middle_mm")


def median_body_depth_mm(vertebrae: dict[str, VertebraMeasurements]) -> float:
    """Median depth (front to back) of the measured lumbar bodies (L1-L5); NaN where none was measured."""
    return _median_lumbar(vertebrae, "depth_mm")


def smaller_than_adult(vertebrae: dict[str, VertebraMeasurements]) -> str | None:
    """Why a spine (measured in mm) is outside the adult population every model and threshold was validated on,
    or None: the bodies named lumbar are shorter than any adult's lumbar bodies measured on SPIDER (a child's spine,
    or a wrong pixel size in the file), or both shorter and shallower than them, as a cervical spine's are (one
    named from its lowest disc up as if lumbar)."""
    height, depth = median_body_height_mm(vertebrae), median_body_depth_mm(vertebrae)
    short = np.isfinite(height) and height < CHILD_BODY_HEIGHT_MM
    small = np.isfinite(height) and np.isfinite(depth)
    small = small and height < CERVICAL_BODY_HEIGHT_MM and depth < CERVICAL_BODY_DEPTH_MM
    if not (short or small):
        return None
    sizes = f"{height:.0f} mm tall" + (f" and {depth:.0f} mm deep" if np.isfinite(depth) else "")
    if small:
        return (
            f"vertebral bodies named lumbar {sizes} (medians), smaller both ways than any adult's lumbar was "
            f"validated on (below {CERVICAL_BODY_HEIGHT_MM:.0f} mm tall and {CERVICAL_BODY_DEPTH_MM:.0f} mm deep): "
            "a cervical spine (its levels then named from its lowest disc as if lumbar), a child's, or a wrong pixel "
            "size in the file; grades and thresholds are for adult lumbar spines"
        )
    return (
        f"vertebral bodies named lumbar {sizes} (medians), smaller than any adult's lumbar was validated on (below "
        f"{CHILD_BODY_HEIGHT_MM:.0f} mm tall): a child's spine, or a wrong pixel size in the file; grades and "
        "thresholds are for adult lumbar spines"
    )
