"""Metrics against answers worked out by hand."""

import numpy as np
import pytest

from lumbar.metrics import bootstrap_ci, dice, surface_distances


def square(shape=(40, 40), top=10, left=10, size=10):
    mask = np.zeros(shape, bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_dice_known_answers():
    a = square()
    assert dice(a, a) == 1.0
    assert dice(a, ~a) == 0.0
    b = square(left=15)  # half overlaps: 2*50 / (100+100)
    assert dice(a, b) == pytest.approx(0.5)
    assert np.isnan(dice(np.zeros((3, 3)), np.zeros((3, 3))))


def test_dice_of_masks_of_different_sizes():
    """A 10x10 square against its top half (50 pixels) and against a 4x5 patch inside it (20 pixels):
    2*50 / (100+50) and 2*20 / (100+20), whichever mask is the truth."""
    big = square()
    half = np.zeros_like(big)
    half[10:15, 10:20] = True
    patch = np.zeros_like(big)
    patch[12:16, 12:17] = True
    assert dice(big, half) == pytest.approx(2 / 3) and dice(half, big) == pytest.approx(2 / 3)
    assert dice(big, patch) == pytest.approx(1 / 3) and dice(patch, big) == pytest.approx(1 / 3)
    apart = square(top=25, left=25, size=5)  # 25 pixels, no overlap
    assert dice(big, apart) == 0.0
    assert dice(big, big | apart) == pytest.approx(2 * 100 / 225)  # the prediction spills outside the truth


def test_surface_distances_of_a_shifted_square():
    a, b = square(), square(left=12)
    hd95, assd = surface_distances(a, b)
    assert hd95 == pytest.approx(2.0)
    assert 0 < assd < 2.0
    hd95_mm, assd_mm = surface_distances(a, b, spacing=(0.5, 0.5))
    assert hd95_mm == pytest.approx(1.0) and assd_mm == pytest.approx(assd / 2)
    assert surface_distances(a, a) == (0.0, 0.0)


def test_surface_distance_is_undefined_for_an_empty_mask():
    assert all(np.isnan(v) for v in surface_distances(square(), np.zeros((40, 40), bool)))


def test_bootstrap_of_a_constant_has_no_width():
    assert bootstrap_ci(np.full(10, 0.8)) == pytest.approx((0.8, 0.8, 0.8))


def test_bootstrap_resamples_patients_not_slices():
    mean, lo, hi = bootstrap_ci(np.array([1.0, 1.0, 1.0, 0.0]), groups=np.array(["a", "a", "a", "b"]))
    assert mean == pytest.approx(0.75)
    assert lo == pytest.approx(0.0) and hi == pytest.approx(1.0)  # two patients: all-a, all-b, or mixed


def test_bootstrap_ignores_nan():
    mean, lo, hi = bootstrap_ci(np.array([0.5, np.nan, 0.5]))
    assert (mean, lo, hi) == pytest.approx((0.5, 0.5, 0.5))


from lumbar.metrics import (  # noqa: E402
    balanced_accuracy,
    cohen_kappa,
    confusion,
    expected_calibration_error,
    per_class_recall,
    roc_auc,
    within_one,
)


def test_balanced_accuracy_is_not_fooled_by_a_rare_class():
    truth = np.array([0] * 95 + [1] * 5)
    always_negative = np.zeros(100, int)
    assert np.mean(truth == always_negative) == 0.95
    assert balanced_accuracy(truth, always_negative) == pytest.approx(0.5)
    assert per_class_recall(truth, always_negative, [0, 1]) == {0: 1.0, 1: 0.0}


def test_confusion_and_within_one():
    truth, pred = np.array([1, 2, 3, 4, 5]), np.array([1, 3, 3, 2, 5])
    assert confusion(truth, pred, [1, 2, 3, 4, 5])[1] == [0, 0, 1, 0, 0]
    assert within_one(truth, pred) == pytest.approx(0.8)


def test_linear_kappa_known_answer():
    assert cohen_kappa([1, 2, 3], [1, 2, 3], "linear") == pytest.approx(1.0)
    # Observed agreement 2/4, and the margins (half 1, half 2 on both sides) expect 2/4 by chance: kappa 0.
    truth, pred = np.array([1, 1, 2, 2]), np.array([1, 2, 2, 1])
    assert cohen_kappa(truth, pred) == pytest.approx(0.0)


def test_auc_and_calibration_error():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert np.isnan(roc_auc([0, 0], [0.1, 0.2]))
    assert expected_calibration_error(np.array([0.9] * 10), np.array([1] * 9 + [0])) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0.9] * 10), np.array([1] * 5 + [0] * 5)) == pytest.approx(0.4)


def test_calibration_error_weights_each_bin_by_its_share_of_samples():
    """Guo et al. 2017: ECE = sum over bins of (n_bin / n) * |confidence - accuracy|. Eight predictions at 0.85
    with six right (gap 0.10) and two at 0.35 with none right (gap 0.35): 0.8 * 0.10 + 0.2 * 0.35 = 0.15 (unweighted,
    the gaps would sum to 0.45; averaged over the two bins, 0.225)."""
    confidence = np.array([0.85] * 8 + [0.35] * 2)
    correct = np.array([1] * 6 + [0] * 2 + [0] * 2)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.15)
    # Three bins, 5 + 3 + 2 of 10: 0.5 * |0.95 - 0.8| + 0.3 * |0.65 - 1| + 0.2 * |0.15 - 0.5| = 0.25
    confidence = np.array([0.95] * 5 + [0.65] * 3 + [0.15] * 2)
    correct = np.array([1, 1, 1, 1, 0, 1, 1, 1, 1, 0])  # 4 of 5, 3 of 3, 1 of 2 right
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.25)
    assert expected_calibration_error(confidence, correct, bins=1) == pytest.approx(abs(0.7 - 0.8))  # one bin: means


def test_weighted_kappa_and_auc_hand_computed():
    # Confusion rows (truth 1,2,3): [1,0,0] [0,1,0] [0,1,1]; weights |i-j|/2. Observed: one count at
    # weight 0.5 -> 0.5. Expected from the margins (1,1,2) x (1,2,1) / 4, weighted -> 1.75.
    truth, pred = np.array([1, 2, 3, 3]), np.array([1, 2, 3, 2])
    assert cohen_kappa(truth, pred, "linear", [1, 2, 3]) == pytest.approx(1 - 0.5 / 1.75)
    assert roc_auc([0, 1, 0, 1], [0.3, 0.3, 0.1, 0.9]) == pytest.approx(0.875)  # one tie counted half


def test_operating_point_keeps_false_positives_within_the_bound():
    from lumbar.metrics import false_positive_rate, operating_point, sensitivity

    truth = np.array([0] * 20 + [1] * 4)
    score = np.array([*list(range(20)), 18.5, 19.5, 25, 30], float)  # negatives 0..19
    threshold = operating_point(truth, score, max_fpr=0.05)  # one negative of 20 may reach it: 19
    assert 18 < threshold <= 19
    assert false_positive_rate(truth, score, threshold) == 0.05 and sensitivity(truth, score, threshold) == 1.0
    assert sensitivity(truth, score, 19.2) == 0.75 and false_positive_rate(truth, score, 19.2) == 0.0
    assert operating_point(truth, score, max_fpr=0.0) > 19  # none may: just above the largest negative
    assert false_positive_rate(truth, score, operating_point(truth, score, 0.0)) == 0.0
    assert operating_point(truth, score, max_fpr=0.10) == pytest.approx(17, abs=1e-9)  # two of 20: 18 and 19


def test_cross_fitted_rates_are_measured_on_the_other_half():
    from lumbar.metrics import cross_fitted_rates

    groups = np.repeat(np.arange(40), 2)
    truth = np.tile([0, 1], 40)
    separable = np.where(truth == 1, 10.0, 0.0) + np.linspace(0, 1, 80)
    rates = cross_fitted_rates(truth, separable, groups)
    assert rates["sensitivity"] == 1.0 and rates["false_positive_rate"] <= 0.1
    assert rates["precision"] == pytest.approx(40 / (40 + 40 * rates["false_positive_rate"]))
    noise = np.random.default_rng(1).random(80)
    rates = cross_fitted_rates(truth, noise, groups)
    assert rates["false_positive_rate"] <= 0.15 and rates["sensitivity"] <= 0.3  # no signal: little is found


def test_bootstrap_of_nothing_is_undefined_not_an_error():
    from lumbar.metrics import bootstrap_metric_ci, roc_auc

    empty = np.array([])
    assert np.isnan(bootstrap_metric_ci(roc_auc, [empty, empty], empty)).all()
