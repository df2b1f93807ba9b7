"""Whether a sagittal MRI series is T1- or T2-weighted: from the DICOM header's timing where it says, else from the
image itself.

The header's rule is the textbook one: a long echo time (60 ms or more) weights a spin-echo image by T2; a short
echo (30 ms or less) with a short repetition time (1000 ms or less) by T1; anything else (proton density, an
inversion recovery such as STIR or FLAIR, missing timing) is left to the image.

Cerebrospinal fluid is brighter than vertebral marrow on a T2-weighted image and darker on a T1-weighted one: the
ratio of their median signals on the mid-sagittal slice (the canal and the vertebrae as segmented) tells the two
apart. It matters because grades are defined on one weighting: Pfirrmann's on T2. The bounds were set on SPIDER's
360 mid-sagittal pictures, where every T1 ratio lies below 0.7 and every T2 SPACE ratio above 1, and a few T2 ratios
fall between (``python bench/weighting.py``, which also reads a second centre's T2 slices). Between the two bounds
the weighting is left undetermined. A T2 series misread as T1 only withholds its Pfirrmann statements.
"""

from __future__ import annotations

import numpy as np

from lumbar.labels import CANAL_LABEL, is_vertebra

T2_FROM = 1.0  # fluid at least as bright as marrow: T2-weighted (or a fat-suppressed sequence, which reads as T2)
T1_BELOW = 0.7  # fluid well below marrow: T1-weighted
MIN_PIXELS = 50  # fewer pixels of canal or vertebrae than this give no reading
T2_ECHO_MS = 60.0
T1_ECHO_MS, T1_REPETITION_MS = 30.0, 1000.0


def csf_over_marrow(picture: np.ndarray, instances: np.ndarray) -> float | None:
    """Median signal of the canal over that of the vertebrae on one slice ``picture`` with its instance labels;
    None where either is too small to read or the vertebrae have no signal."""
    canal = picture[instances == CANAL_LABEL]
    bone = picture[is_vertebra(instances)]
    if canal.size < MIN_PIXELS or bone.size < MIN_PIXELS:
        return None
    marrow = float(np.median(bone))
    ratio = float(np.median(canal)) / marrow if marrow > 0 else float("nan")
    return ratio if np.isfinite(ratio) else None


def weighting(ratio: float | None) -> str | None:
    """``"T1"``, ``"T2"`` or None (undetermined) from :func:`csf_over_marrow`'s ratio."""
    if ratio is None:
        return None
    if ratio >= T2_FROM:
        return "T2"
    return "T1" if ratio < T1_BELOW else None


def weighting_from_header(echo_ms: float | None, repetition_ms: float | None, inversion_ms: float | None) -> str | None:
    """``"T1"``, ``"T2"`` or None from a series' EchoTime, RepetitionTime and InversionTime (ms; None: not given)."""
    if echo_ms is None or inversion_ms is not None:
        return None
    if echo_ms >= T2_ECHO_MS:
        return "T2"
    if echo_ms <= T1_ECHO_MS and repetition_ms is not None and repetition_ms <= T1_REPETITION_MS:
        return "T1"
    return None
