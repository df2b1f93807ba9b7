"""Segmentation and classification metrics with known-answer tests.

Surface distances come from MONAI (Hausdorff 95th percentile, average symmetric surface distance),
in mm when the pixel spacing is given. Confidence intervals are percentile bootstraps that resample
patients (clusters) rather than slices where patient ids are known, since slices of one patient are
not independent.
"""

from __future__ import annotations

import warnings

import numpy as np


def dice(truth: np.ndarray, pred: np.ndarray) -> float:
    """Sørensen-Dice overlap 2|A∩B| / (|A|+|B|); NaN when both are empty."""
    truth, pred = np.asarray(truth, bool), np.asarray(pred, bool)
    denom = truth.sum() + pred.sum()
    return float(2.0 * np.logical_and(truth, pred).sum() / denom) if denom else float("nan")


def surface_distances(truth: np.ndarray, pred: np.ndarray, spacing: tuple[float, ...] | None = None) -> tuple[float, float]:
    """(HD95, ASSD) between two binary masks, in the units of ``spacing`` (pixels if None).

    NaN when either mask is empty (the distance is undefined; Dice already scores the miss).
    """
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    truth, pred = np.asarray(truth, bool), np.asarray(pred, bool)
    if not truth.any() or not pred.any():
        return float("nan"), float("nan")
    t = torch.from_numpy(truth)[None, None].float()
    p = torch.from_numpy(pred)[None, None].float()
    spacing = list(spacing) if spacing is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hd95 = compute_hausdorff_distance(p, t, include_background=True, percentile=95, spacing=spacing)
        assd = compute_average_surface_distance(p, t, include_background=True, symmetric=True, spacing=spacing)
    return float(hd95.item()), float(assd.item())


def bootstrap_ci(values: np.ndarray, groups: np.ndarray | None = None, n_boot: int = 2000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap (1-alpha) CI, resampling whole groups (patients) when given."""
    values = np.asarray(values, float)
    keep = ~np.isnan(values)
    values = values[keep]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    groups = np.arange(values.size) if groups is None else np.asarray(groups)[keep]
    unique, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=len(unique))
    counts = np.bincount(inverse, minlength=len(unique))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(unique), size=(n_boot, len(unique)))
    means = sums[picks].sum(1) / counts[picks].sum(1)
    lo, hi = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(values.mean()), float(lo), float(hi)
