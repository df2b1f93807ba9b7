"""Segmentation and classification metrics with known-answer tests.

Surface distances come from MONAI (Hausdorff 95th percentile, average symmetric surface distance),
in mm when the pixel spacing is given. Confidence intervals are percentile bootstraps that resample
patients (clusters) rather than slices where patient ids are known, since slices of one patient are
not independent.
"""

from __future__ import annotations

import warnings

import numpy as np

from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES


def dice(truth: np.ndarray, pred: np.ndarray) -> float:
    """Sørensen-Dice overlap 2|A∩B| / (|A|+|B|); NaN when both are empty."""
    truth, pred = np.asarray(truth, bool), np.asarray(pred, bool)
    denom = truth.sum() + pred.sum()
    return float(2.0 * np.logical_and(truth, pred).sum() / denom) if denom else float("nan")


def surface_distances(
    truth: np.ndarray, pred: np.ndarray, spacing: tuple[float, ...] | None = None
) -> tuple[float, float]:
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


def bootstrap_ci(
    values: np.ndarray, groups: np.ndarray | None = None, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
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


def exact_rate_ci(events: int, trials: int, alpha: float = 0.05) -> tuple[float, float]:
    """Clopper-Pearson (1-alpha) interval of a rate seen as ``events`` of ``trials`` independent cases (its upper
    end at ``alpha = 0.10`` is the one-sided 95% upper bound). Where a bootstrap of 0 of 39 gives the point [0, 0],
    this says the true rate may still be 9%."""
    if not 0 <= events <= trials or trials == 0:
        raise ValueError(f"a rate needs 0 <= events <= trials and trials > 0, not {events} of {trials}")
    from scipy.stats import beta

    low = float(beta.ppf(alpha / 2, events, trials - events + 1)) if events > 0 else 0.0
    high = float(beta.ppf(1 - alpha / 2, events + 1, trials - events)) if events < trials else 1.0
    return low, high


def bootstrap_metric_ci(
    metric, arrays: list[np.ndarray], groups: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> list[float]:
    """95% CI of any ``metric(*arrays)`` (AUC, kappa, ...), resampling whole patients (``groups``)."""
    rng = np.random.default_rng(seed)
    unique = np.unique(groups)
    if not unique.size:
        return [float("nan")] * 2
    index = {g: np.nonzero(groups == g)[0] for g in unique}
    values = []
    for _ in range(n_boot):
        pick = np.concatenate([index[g] for g in rng.choice(unique, len(unique))])
        value = metric(*(a[pick] for a in arrays))
        if not np.isnan(value):
            values.append(value)
    return [float(v) for v in np.percentile(values, [2.5, 97.5])] if values else [float("nan")] * 2


# Classification (disc grades). Plain NumPy: they run thousands of times inside the bootstrap.


def balanced_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``truth`` (robust to a rare positive class)."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    classes = np.unique(truth)
    return float(np.mean([np.mean(pred[truth == c] == c) for c in classes])) if classes.size else float("nan")


def per_class_recall(truth: np.ndarray, pred: np.ndarray, classes: list[int]) -> dict[int, float]:
    """Recall of every class (NaN for a class absent from ``truth``)."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    return {c: float(np.mean(pred[truth == c] == c)) if np.any(truth == c) else float("nan") for c in classes}


def confusion(truth: np.ndarray, pred: np.ndarray, classes: list[int]) -> list[list[int]]:
    """Confusion matrix, rows = truth, columns = prediction, in the order of ``classes``."""
    return _confusion(np.asarray(truth), np.asarray(pred), classes).astype(int).tolist()


def _confusion(truth: np.ndarray, pred: np.ndarray, classes) -> np.ndarray:
    k = len(classes)
    ti, pi = np.searchsorted(classes, truth), np.searchsorted(classes, pred)
    return np.bincount(ti * k + pi, minlength=k * k).reshape(k, k).astype(float)


def cohen_kappa(
    truth: np.ndarray, pred: np.ndarray, weights: str | None = None, classes: list[int] | None = None
) -> float:
    """Cohen's kappa, 1 - sum(W·O) / sum(W·E) (Cohen 1960; linear weights |i-j|/(k-1) for ordinal grades)."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    classes = sorted(set(classes or []) | set(truth.tolist()) | set(pred.tolist()))
    observed = _confusion(truth, pred, classes)
    expected = np.outer(observed.sum(1), observed.sum(0)) / max(observed.sum(), 1)
    k = len(classes)
    i, j = np.indices((k, k))
    w = np.abs(i - j) / max(k - 1, 1) if weights == "linear" else (i != j).astype(float)
    denominator = (w * expected).sum()
    return float(1 - (w * observed).sum() / denominator) if denominator else float("nan")


def within_one(truth: np.ndarray, pred: np.ndarray) -> float:
    """Share of predictions at most one grade away from the truth."""
    return float(np.mean(np.abs(np.asarray(truth) - np.asarray(pred)) <= 1))


def roc_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U / n1·n0, ties counted half); NaN with one class only."""
    from scipy.stats import rankdata

    truth, score = np.asarray(truth), np.asarray(score, float)
    n1 = int(truth.sum())
    n0 = truth.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[truth == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def expected_calibration_error(probability: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins
    (Guo et al., ICML 2017)."""
    probability, correct = np.asarray(probability, float), np.asarray(correct, float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(probability[sel].mean() - correct[sel].mean())
    return float(total)


def grade_metrics(
    truth: dict[str, np.ndarray], pred: dict[str, np.ndarray], probs: dict[str, np.ndarray], groups: np.ndarray
) -> dict:
    """Per grade: balanced accuracy, per-class recall, confusion, kappa (linear for ordinal grades),
    within-one (Pfirrmann), AUC (binary), calibration error; CIs by patient bootstrap."""
    report = {}
    for name in (*ORDINAL_GRADES, *BINARY_GRADES):
        t, p, q = np.asarray(truth[name]), np.asarray(pred[name]), np.asarray(probs[name])
        classes = list(ORDINAL_GRADES.get(name, (0, 1)))
        weights = "linear" if name in ORDINAL_GRADES else None
        entry = {
            "n": len(t),
            "balanced_accuracy": balanced_accuracy(t, p),
            "balanced_accuracy_ci95": bootstrap_metric_ci(balanced_accuracy, [t, p], groups),
            "per_class_recall": {str(k): v for k, v in per_class_recall(t, p, classes).items()},
            "confusion": confusion(t, p, classes),
            "kappa": cohen_kappa(t, p, weights, classes),
            "kappa_ci95": bootstrap_metric_ci(
                lambda a, b, weights=weights, classes=classes: cohen_kappa(a, b, weights, classes), [t, p], groups
            ),
            "kappa_weights": weights or "none",
        }
        if name in ORDINAL_GRADES:
            confidence = q.max(1)
            entry["ece"] = expected_calibration_error(confidence, q.argmax(1) == np.searchsorted(classes, t))
            if name == "pfirrmann":
                entry["within_one"] = within_one(t, p)
                entry["within_one_ci95"] = bootstrap_metric_ci(within_one, [t, p], groups)
        else:
            entry["auc"] = roc_auc(t, q)
            entry["auc_ci95"] = bootstrap_metric_ci(roc_auc, [t, q], groups)
            entry["positives"] = int(t.sum())
            entry["ece"] = expected_calibration_error(np.where(p == 1, q, 1 - q), p == t)
        report[name] = entry
    return report


# Operating points: where a score becomes a stated finding.


def false_positive_rate(truth: np.ndarray, score: np.ndarray, threshold: float) -> float:
    """Share of the expert's negatives (``truth == 0``) whose score reaches ``threshold``; NaN without negatives."""
    truth, score = np.asarray(truth), np.asarray(score, float)
    negatives = score[truth == 0]
    return float(np.mean(negatives >= threshold)) if negatives.size else float("nan")


def sensitivity(truth: np.ndarray, score: np.ndarray, threshold: float) -> float:
    """Share of the expert's positives whose score reaches ``threshold``; NaN without positives."""
    truth, score = np.asarray(truth), np.asarray(score, float)
    positives = score[truth == 1]
    return float(np.mean(positives >= threshold)) if positives.size else float("nan")


def operating_point(truth: np.ndarray, score: np.ndarray, max_fpr: float = 0.05) -> float:
    """The lowest threshold at which at most ``max_fpr`` of the negatives reach the score (``score >= threshold``
    states the finding): the most sensitive point that keeps false positives within the bound. Infinite when
    no threshold does (then nothing is ever stated)."""
    truth, score = np.asarray(truth), np.asarray(score, float)
    negatives = np.sort(score[truth == 0])
    if not negatives.size:
        return float("nan")
    allowed = int(np.floor(max_fpr * negatives.size))  # negatives that may reach the threshold
    if allowed >= negatives.size:
        return float(negatives[0])
    # Just above the (allowed + 1)-th largest negative, so that exactly ``allowed`` or fewer reach it.
    return float(np.nextafter(negatives[negatives.size - allowed - 1], np.inf))


def cross_fitted_rates(
    truth: np.ndarray, score: np.ndarray, groups: np.ndarray, max_fpr: float = 0.05, seed: int = 0
) -> dict[str, float]:
    """Sensitivity and false-positive rate of :func:`operating_point` on patients it was not chosen on: the
    patients are split in two halves, the point is chosen on each half and applied to the other, and the
    held-out decisions are pooled. An honest figure for a threshold chosen on the same data set. ``precision`` is
    the share of stated findings the expert also graded positive (it depends on how common the finding is)."""
    truth, score, groups = np.asarray(truth), np.asarray(score, float), np.asarray(groups)
    patients = np.unique(groups)
    rng = np.random.default_rng(seed)
    half = set(rng.permutation(patients)[: len(patients) // 2])
    in_half = np.array([g in half for g in groups], bool)
    stated = np.zeros(truth.size, bool)
    for fit, apply in ((in_half, ~in_half), (~in_half, in_half)):
        threshold = operating_point(truth[fit], score[fit], max_fpr)
        stated[apply] = score[apply] >= threshold
    return {
        "false_positive_rate": float(np.mean(stated[truth == 0])) if (truth == 0).any() else float("nan"),
        "sensitivity": float(np.mean(stated[truth == 1])) if (truth == 1).any() else float("nan"),
        "precision": float(np.mean(truth[stated] == 1)) if stated.any() else float("nan"),
    }


def smape(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Symmetric mean absolute percentage error of angle sets ``(n_images, k)`` as the AASCE 2019 challenge
    scores Cobb angles: per image, the sum of absolute differences over the sum of both sets' angles; the mean
    over images, in percent (an image whose angles are all 0 in both counts as 0)."""
    truth, predicted = np.atleast_2d(np.asarray(truth, float)), np.atleast_2d(np.asarray(predicted, float))
    difference = np.abs(truth - predicted).sum(1)
    total = (truth + predicted).sum(1)
    return float(100 * np.mean(np.where(total > 0, difference / np.where(total > 0, total, 1), 0.0)))


def corner_errors(truth: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Distances between the true and the found corners of matched vertebrae (``(n, 4, 2)`` each, [x, y]), in
    pixels and in percent of the true body's height (the mean of its two side heights), and how many true
    vertebrae found none. A true vertebra matches the nearest found centre within half its height, each found
    vertebra at most once, nearest pairs first."""
    truth, predicted = np.asarray(truth, float).reshape(-1, 4, 2), np.asarray(predicted, float).reshape(-1, 4, 2)
    heights = (
        np.linalg.norm(truth[:, 3] - truth[:, 0], axis=1) + np.linalg.norm(truth[:, 2] - truth[:, 1], axis=1)
    ) / 2
    distance = np.linalg.norm(truth.mean(1)[:, None] - predicted.mean(1)[None], axis=2)
    pixels, relative, taken, matched = [], [], set(), set()
    for flat in np.argsort(distance, axis=None, kind="stable"):
        t, p = divmod(int(flat), distance.shape[1]) if distance.size else (0, 0)
        if t in matched or p in taken or distance[t, p] > heights[t] / 2:
            continue
        matched.add(t)
        taken.add(p)
        error = np.linalg.norm(truth[t] - predicted[p], axis=1)
        pixels += list(error)
        relative += list(100 * error / heights[t])
    return np.array(pixels), np.array(relative), len(truth) - len(matched)


def similarity_fit(source: np.ndarray, target: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
    """``points`` (default: ``source``; ``(m, 2)``) moved by the least-squares similarity (scale, rotation, shift; no
    reflection; Umeyama 1991) that takes ``source`` ``(n, 2)`` onto ``target``: how two annotations of one
    radiograph, cropped and scaled differently, compare once the crop is taken out."""
    source, target = np.asarray(source, float), np.asarray(target, float)
    if source.shape != target.shape or source.ndim != 2 or len(source) < 2:
        raise ValueError(
            f"a similarity needs two equal sets of at least 2 points, not {source.shape} and {target.shape}"
        )
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(t.T @ s / len(source))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    variance = (s**2).sum() / len(source)
    scale = float((sigma * np.diag(sign)).sum() / variance) if variance > 0 else 1.0
    moved = source if points is None else np.asarray(points, float)
    return scale * (moved - mu_s) @ rotation.T + mu_t
