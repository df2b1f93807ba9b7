"""Classification metrics and their bootstrap CIs against values worked out by hand."""

import math

import numpy as np
import pytest

from lumbar.metrics import (
    balanced_accuracy,
    bootstrap_ci,
    bootstrap_metric_ci,
    cohen_kappa,
    false_positive_rate,
    operating_point,
    per_class_recall,
    roc_auc,
    sensitivity,
)


def test_unweighted_kappa_by_hand():
    """Truth 0,0,1,1 and prediction 0,1,1,1: observed agreement 3/4; expected (2·1 + 2·3)/16 = 1/2; κ = 1/2."""
    assert cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(0.5)


def test_linear_kappa_by_hand():
    """Classes 1..3, truth 1,2,3 and prediction 1,3,3: W = |i-j|/2. Observed: one disc off by one (w 1/2), so
    sum W·O = 1/2. Expected = outer((1,1,1), (1,0,2)) / 3, sum W·E = (0·1 + 1/2·0 + 1·2 + 1/2·1 + 0 + 1/2·2 + 1·1 +
    1/2·0 + 0·2) / 3 = 4.5/3 = 1.5. κ = 1 - 0.5/1.5 = 2/3."""
    assert cohen_kappa([1, 2, 3], [1, 3, 3], "linear", [1, 2, 3]) == pytest.approx(2 / 3)
    # Unweighted: agreement 2/3 observed, (1·1 + 1·0 + 1·2)/9 = 1/3 expected: κ = (2/3 - 1/3) / (1 - 1/3) = 1/2.
    assert cohen_kappa([1, 2, 3], [1, 3, 3], None, [1, 2, 3]) == pytest.approx(0.5)


def test_kappa_counts_classes_named_but_absent():
    """Declaring class 4 (never seen) is accepted and changes nothing here: linear kappa does not depend on the weights'
    scale (1 - sum(W*O) / sum(W*E)), so a class beyond both ends only adds empty rows; a class missing in the middle
    of the range does matter (``test_metric_exact_answers.py``)."""
    assert cohen_kappa([1, 2, 3], [1, 3, 3], "linear", [1, 2, 3, 4]) == pytest.approx(1 - (1 / 3) / (3 / 3))


def test_auc_counts_ties_half_and_needs_both_classes():
    """Positives 0.8, 0.5; negatives 0.5, 0.2: pairs (0.8>0.5, 0.8>0.2, 0.5=0.5, 0.5>0.2) = 3.5 of 4."""
    assert roc_auc([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.2]) == pytest.approx(3.5 / 4)
    assert roc_auc([0, 0, 1], [0.9, 0.8, 0.1]) == pytest.approx(0.0)
    assert math.isnan(roc_auc([1, 1], [0.3, 0.4]))


def test_recalls_and_balanced_accuracy_ignore_absent_classes():
    recall = per_class_recall([0, 0, 0, 1], [0, 1, 1, 1], [0, 1, 2])
    assert recall[0] == pytest.approx(1 / 3) and recall[1] == 1.0 and math.isnan(recall[2])
    assert balanced_accuracy([0, 0, 0, 1], [0, 1, 1, 1]) == pytest.approx((1 / 3 + 1) / 2)
    assert math.isnan(balanced_accuracy([], []))


def test_operating_point_rates_by_hand():
    """Negatives score 0.1..1.0 (10), positives 0.55, 0.95: the lowest threshold that at most 10% of negatives
    reach lies just above 0.9 (only 1.0 reaches it), so it still calls the positive at 0.95; at 0.9 itself, 20% of
    the negatives and half the positives reach it."""
    negatives = np.linspace(0.1, 1.0, 10)
    truth = np.r_[np.zeros(10), [1, 1]]
    score = np.r_[negatives, [0.55, 0.95]]
    point = operating_point(truth, score, max_fpr=0.1)
    assert 0.9 < point < 0.95 and point == pytest.approx(0.9)
    assert false_positive_rate(truth, score, point) == pytest.approx(0.1)
    assert sensitivity(truth, score, point) == pytest.approx(0.5)
    assert false_positive_rate(truth, score, 0.9) == pytest.approx(0.2)
    assert sensitivity(truth, score, 0.9) == pytest.approx(0.5)
    assert sensitivity(truth, score, 0.55) == pytest.approx(1.0)  # the threshold itself counts
    assert math.isnan(false_positive_rate(np.ones(3), np.ones(3), 0.5))
    assert math.isnan(sensitivity(np.zeros(3), np.ones(3), 0.5))


def test_bootstrap_ci_of_constant_values_is_a_point_and_nan_is_dropped():
    assert bootstrap_ci(np.array([2.0, 2.0, np.nan, 2.0])) == pytest.approx((2.0, 2.0, 2.0))
    mean, lo, hi = bootstrap_ci(np.array([np.nan, np.nan]))
    assert math.isnan(mean) and math.isnan(lo) and math.isnan(hi)


def test_bootstrap_resamples_whole_groups():
    """Two patients, one with three values of 0, one with one value of 1: resampling patients gives means of
    0, 1/4 or 1 only (never the 1/2 that resampling single values would often give)."""
    values = np.array([0.0, 0.0, 0.0, 1.0])
    mean, lo, hi = bootstrap_ci(values, np.array(["a", "a", "a", "b"]), n_boot=500)
    assert mean == pytest.approx(0.25) and lo == pytest.approx(0.0) and hi == pytest.approx(1.0)
    ci = bootstrap_metric_ci(lambda v: float(np.mean(v)), [values], np.array([0, 0, 0, 1]), n_boot=300)
    assert ci == pytest.approx([0.0, 1.0])


def test_bootstrap_metric_ci_drops_nan_resamples():
    """AUC is undefined when a resample holds one class only: such draws are skipped, not counted as NaN."""
    truth, score = np.array([0, 1]), np.array([0.2, 0.9])
    lo, hi = bootstrap_metric_ci(roc_auc, [truth, score], np.array([0, 1]), n_boot=200)
    assert lo == hi == pytest.approx(1.0)
    assert all(math.isnan(v) for v in bootstrap_metric_ci(roc_auc, [truth[:0], score[:0]], np.array([]), n_boot=5))
