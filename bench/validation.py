"""What "validated" means for a finding, shared by the benches that ship ``lumbar/validation.json``.

A score (a measurement, or a model's probability) states a finding where it reaches an operating point: the
lowest threshold at which at most ``SELECT_FPR`` of the expert's negative disc images are called, a margin below
the promised ``MAX_FPR`` because a point chosen on one set of patients calls a little more on another. The point is
chosen on all patients, and also cross-fitted (chosen on half of the patients, measured on the other half) for
honest rates. A finding is validated when its AUC's 95% CI lies above 0.5 and, cross-fitted, its point keeps the
false-positive rate within ``MAX_FPR``, finds at least ``MIN_CROSS_FITTED_SENSITIVITY`` of the expert's positives,
and has a precision of at least ``MIN_CROSS_FITTED_PRECISION`` (what it states is more often right than wrong).
"""

from __future__ import annotations

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


def scored_finding(truth: np.ndarray, score: np.ndarray, groups: np.ndarray) -> dict:
    """AUC, the operating point at <= SELECT_FPR false positives and its rates, in-sample and cross-fitted."""
    keep = ~np.isnan(score)
    t, s, g = truth[keep], score[keep], groups[keep]
    threshold = operating_point(t, s, SELECT_FPR)
    auc_ci = bootstrap_metric_ci(roc_auc, [t, s], g)
    crossed = cross_fitted_rates(t, s, g, SELECT_FPR)
    validated = bool(
        auc_ci[0] > 0.5
        and crossed["false_positive_rate"] <= MAX_FPR
        and crossed["sensitivity"] >= MIN_CROSS_FITTED_SENSITIVITY
        and crossed["precision"] >= MIN_CROSS_FITTED_PRECISION
    )
    return {
        "measured_at": float(keep.mean()),
        "n_positive": int(t.sum()),
        "n_negative": int((t == 0).sum()),
        "auc": roc_auc(t, s),
        "auc_ci95": auc_ci,
        "threshold": threshold,
        "false_positive_rate": false_positive_rate(t, s, threshold),
        "false_positive_rate_ci95": bootstrap_metric_ci(lambda a, b: false_positive_rate(a, b, threshold), [t, s], g),
        "sensitivity": sensitivity(t, s, threshold),
        "sensitivity_ci95": bootstrap_metric_ci(lambda a, b: sensitivity(a, b, threshold), [t, s], g),
        "cross_fitted": crossed,
        "validated": validated,
    }


def why_not(r: dict) -> str:
    """Why a scored finding was not validated, in its own figures."""
    crossed = r["cross_fitted"]
    return (
        f"against the expert, AUC {r['auc']:.2f} [{r['auc_ci95'][0]:.2f}, {r['auc_ci95'][1]:.2f}]; at its point it "
        f"calls {crossed['false_positive_rate']:.1%} of the expert's negatives, finds {crossed['sensitivity']:.0%} of "
        f"the positives, and {crossed['precision']:.0%} of what it would state is what the expert graded"
    )
