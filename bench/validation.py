"""What "validated" means for a finding, shared by the benches that ship ``lumbar/validation.json``.

A score (a measurement, or a model's probability) states a finding where it reaches an operating point: the
lowest threshold at which at most ``SELECT_FPR`` of the expert's negative disc images are called, a margin below
the promised ``MAX_FPR`` because a point chosen on one set of patients calls a little more on another. The point is
chosen on all patients, and also cross-fitted (chosen on half of the patients, measured on the other half) for
honest rates. A finding is validated when its AUC's 95% CI lies above 0.5, its AUC beats a guess from the disc's
level alone (:func:`level_only_score`), and, cross-fitted, its point keeps the
false-positive rate within ``MAX_FPR``, finds at least ``MIN_CROSS_FITTED_SENSITIVITY`` of the expert's positives,
and has a precision of at least ``MIN_CROSS_FITTED_PRECISION`` (what it states is more often right than wrong).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lumbar.metrics import (
    bootstrap_metric_ci,
    cross_fitted_rates,
    false_positive_rate,
    operating_point,
    roc_auc,
    sensitivity,
)

MAX_FPR = 0.05
SELECT_FPR = 0.04
MIN_CROSS_FITTED_SENSITIVITY = 0.10
MIN_CROSS_FITTED_PRECISION = 0.5


def level_only_score(truth: np.ndarray, levels: np.ndarray, groups: np.ndarray, seed: int = 0) -> np.ndarray:
    """The trivial baseline: each disc scored by how common the finding is at its level among the other half of
    the patients (the same halves as :func:`lumbar.metrics.cross_fitted_rates`); no image at all."""
    patients = np.unique(groups)
    half = set(np.random.default_rng(seed).permutation(patients)[: len(patients) // 2])
    in_half = np.array([g in half for g in groups], bool)
    score = np.zeros(len(truth))
    for fit, apply in ((in_half, ~in_half), (~in_half, in_half)):
        overall = truth[fit].mean() if fit.any() else 0.0
        for level in np.unique(levels[apply]):
            seen = fit & (levels == level)
            score[apply & (levels == level)] = truth[seen].mean() if seen.any() else overall
    return score


def scored_finding(truth: np.ndarray, score: np.ndarray, groups: np.ndarray, levels: np.ndarray) -> dict:
    """AUC, the operating point at <= SELECT_FPR false positives and its rates, in-sample and cross-fitted, and
    the AUC of a guess from the disc's level alone beside them."""
    keep = ~np.isnan(score)
    t, s, g = truth[keep], score[keep], groups[keep]
    guess = level_only_score(t, levels[keep], g)
    threshold = operating_point(t, s, SELECT_FPR)
    auc_ci = bootstrap_metric_ci(roc_auc, [t, s], g)
    crossed = cross_fitted_rates(t, s, g, SELECT_FPR)
    auc = roc_auc(t, s)
    level_only = roc_auc(t, guess)
    validated = bool(
        auc_ci[0] > 0.5
        and auc > level_only  # the image must add something to where the disc is
        and crossed["false_positive_rate"] <= MAX_FPR
        and crossed["sensitivity"] >= MIN_CROSS_FITTED_SENSITIVITY
        and crossed["precision"] >= MIN_CROSS_FITTED_PRECISION
    )
    return {
        "measured_at": float(keep.mean()),
        "n_positive": int(t.sum()),
        "n_negative": int((t == 0).sum()),
        "auc": auc,
        "auc_ci95": auc_ci,
        "level_only_auc": level_only,
        "level_only_auc_ci95": bootstrap_metric_ci(roc_auc, [t, guess], g),
        "threshold": threshold,
        "false_positive_rate": false_positive_rate(t, s, threshold),
        "false_positive_rate_ci95": bootstrap_metric_ci(lambda a, b: false_positive_rate(a, b, threshold), [t, s], g),
        "sensitivity": sensitivity(t, s, threshold),
        "sensitivity_ci95": bootstrap_metric_ci(lambda a, b: sensitivity(a, b, threshold), [t, s], g),
        "cross_fitted": crossed,
        "validated": validated,
    }


SHIPPED = Path(__file__).resolve().parents[1] / "lumbar" / "validation.json"


def ship(section: str, record: dict) -> None:
    """Write ``record`` as ``section`` ("measurements" or "grades") of the shipped ``lumbar/validation.json``,
    keeping the other section: the Summary states only what this file records as validated."""
    from lumbar.io.write import write_text

    shipped = json.loads(SHIPPED.read_text()) if SHIPPED.is_file() else {}
    shipped[section] = record
    write_text(SHIPPED, json.dumps(shipped, indent=1, default=float) + "\n")
    print(f"wrote {SHIPPED}")


def why_not(r: dict) -> str:
    """Why a scored finding was not validated, in its own figures."""
    crossed = r["cross_fitted"]
    return (
        f"against the expert, AUC {r['auc']:.2f} [{r['auc_ci95'][0]:.2f}, {r['auc_ci95'][1]:.2f}] (the disc's level "
        f"alone: {r['level_only_auc']:.2f}); at its point it "
        f"calls {crossed['false_positive_rate']:.1%} of the expert's negatives, finds {crossed['sensitivity']:.0%} of "
        f"the positives, and {crossed['precision']:.0%} of what it would state is what the expert graded"
    )
