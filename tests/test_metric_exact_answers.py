"""Exact answers for ``lumbar.metrics`` that the older tests left loose: each value is worked out by hand in the
docstring, on data built so that the answer does not depend on a random draw (a single patient, a scripted
random generator, or a metric that ignores the resample)."""

import math
import warnings

import numpy as np
import pytest

from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES
from lumbar.metrics import (
    balanced_accuracy,
    bootstrap_ci,
    bootstrap_metric_ci,
    cohen_kappa,
    confusion,
    cross_fitted_rates,
    dice,
    exact_rate_ci,
    expected_calibration_error,
    false_positive_rate,
    grade_metrics,
    operating_point,
    per_class_recall,
    roc_auc,
    sensitivity,
    surface_distances,
)

# Masks


def _line_and_outlier() -> tuple[np.ndarray, np.ndarray]:
    """Truth: a one-pixel-thick line of 10 pixels (row 4, columns 3..12). Prediction: the same line plus one stray
    pixel 10 columns past its end (column 22). A one-pixel line erodes to nothing, so every pixel is an edge."""
    truth = np.zeros((9, 30), bool)
    truth[4, 3:13] = True
    pred = truth.copy()
    pred[4, 22] = True
    return truth, pred


def test_hd95_and_assd_of_a_stray_pixel_by_hand():
    """Distances from the prediction's 11 edge pixels to the truth: ten 0s and one 10; from the truth's 10 pixels
    to the prediction: all 0. HD95 is the larger directed 95th percentile; with linear interpolation over the 11
    sorted values it lies at rank 0.95 * 10 = 9.5, halfway from 0 to 10: 5 (the maximum, HD100, would be 10). ASSD
    pools both directions: (10 + 0) / (11 + 10) = 10/21 (one direction alone would be 10/11 or 0)."""
    truth, pred = _line_and_outlier()
    hd95, assd = surface_distances(truth, pred)
    assert hd95 == pytest.approx(5.0)
    assert assd == pytest.approx(10 / 21)
    assert surface_distances(pred, truth) == pytest.approx((5.0, 10 / 21))  # symmetric in its arguments


def test_masks_stored_as_0_and_255_are_the_same_regions():
    """A mask read from an 8-bit PNG holds 0 and 255: it is the same region as its boolean form, so Dice against
    itself is 1 and the surface distances are those of the boolean masks (5 and 10/21 above)."""
    truth, pred = _line_and_outlier()
    truth8, pred8 = truth.astype(np.uint8) * 255, pred.astype(np.uint8) * 255
    assert dice(truth8, truth) == 1.0 and dice(truth, truth8) == 1.0
    assert dice(truth8, pred8) == pytest.approx(2 * 10 / 21)  # 10 shared pixels of 10 + 11
    assert surface_distances(truth8, pred) == pytest.approx((5.0, 10 / 21))
    assert surface_distances(truth, pred8) == pytest.approx((5.0, 10 / 21))


# Undefined figures


def test_undefined_figures_are_nan_without_a_numpy_warning():
    """Where a figure is undefined (no pixels, no positives, no negatives, a single class) the NaN is stated on
    purpose, not left to a 0/0 that floods the log with RuntimeWarnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(dice(np.zeros((3, 3), bool), np.zeros((3, 3), bool)))
        assert math.isnan(balanced_accuracy([], []))
        recall = per_class_recall([1, 1], [1, 1], [0, 1])
        assert math.isnan(recall[0]) and recall[1] == 1.0
        assert math.isnan(cohen_kappa([2, 2, 2], [2, 2, 2]))  # one class: no disagreement is possible
        assert math.isnan(roc_auc([1, 1], [0.2, 0.3])) and math.isnan(roc_auc([0, 0], [0.2, 0.3]))
        assert math.isnan(false_positive_rate([1, 1], [0.2, 0.3], 0.5))
        assert math.isnan(sensitivity([0, 0], [0.2, 0.3], 0.5))
        never = bootstrap_metric_ci(lambda a: float("nan"), [np.ones(3)], np.arange(3), 5)
        assert len(never) == 2 and all(math.isnan(v) for v in never)
        rates = cross_fitted_rates([0, 0], [0.5, 0.2], ["a", "b"], max_fpr=0.0)
        assert math.isnan(rates["sensitivity"])
        rates = cross_fitted_rates([1, 1], [0.5, 0.2], ["a", "b"])
        assert math.isnan(rates["false_positive_rate"]) and math.isnan(rates["precision"])


# Classification figures


def test_recall_of_a_class_that_every_disc_has():
    """Truth 1, 1 and prediction 1, 0: class 1 (every disc) has recall 1/2; class 0 (no disc) is undefined."""
    recall = per_class_recall([1, 1], [1, 0], [0, 1])
    assert recall[1] == 0.5 and math.isnan(recall[0])


def test_kappa_takes_its_classes_from_both_raters():
    """Truth 0, 1, 2 and prediction 0, 1, 1 (class 2 only in the truth): agreement 2/3 observed; margins
    (1, 1, 1) and (1, 2, 0) expect (1 + 2 + 0) / 9 = 1/3: κ = (2/3 - 1/3) / (1 - 1/3) = 1/2, either way round."""
    assert cohen_kappa([0, 1, 2], [0, 1, 1]) == pytest.approx(0.5)
    assert cohen_kappa([0, 1, 1], [0, 1, 2]) == pytest.approx(0.5)


def test_kappa_of_a_single_disagreeing_disc_is_zero():
    """One disc, truth 0 and prediction 1: observed agreement 0, and the margins (1, 0) and (0, 1) expect 0 by
    chance: κ = (0 - 0) / (1 - 0) = 0."""
    assert cohen_kappa([0], [1], classes=[0, 1]) == pytest.approx(0.0)
    assert cohen_kappa([0], [1], "linear", classes=[0, 1]) == pytest.approx(0.0)


def test_linear_kappa_with_an_interior_grade_absent():
    """Grades 1, 2, 4, 5 used and 3 declared but never seen: the distance from 2 to 4 is two steps. Truth
    1,1,2,2,4,4,5,5, prediction 1,2,2,2,4,5,5,5; W = |i-j|/4. Observed: two discs one step off, 2/4. Margins
    (2,2,0,2,2) and (1,3,0,1,3), summed distances per predicted class 8, 6, -, 6, 8: sum W·E = 2·(8 + 18 + 6 + 24)
    / (4·8) = 3.5; κ = 1 - 0.5/3.5 = 6/7. Without grade 3 (four steps of 1/3) it would be 0.8."""
    truth, pred = [1, 1, 2, 2, 4, 4, 5, 5], [1, 2, 2, 2, 4, 5, 5, 5]
    assert cohen_kappa(truth, pred, "linear", [1, 2, 3, 4, 5]) == pytest.approx(6 / 7)
    assert cohen_kappa(truth, pred, "linear") == pytest.approx(0.8)


def test_confusion_counts_are_integers():
    """Truth 1, 2 and prediction 1, 1: rows truth, columns prediction, whole counts (they go into JSON)."""
    matrix = confusion([1, 2], [1, 1], [1, 2])
    assert matrix == [[1, 0], [1, 0]]
    assert all(type(count) is int for row in matrix for count in row)


def test_calibration_error_with_one_prediction_per_bin():
    """Ten confidences at the bin centres 0.05, 0.15, ..., 0.95, right and wrong in turn (wrong first): each bin
    holds one prediction, so ECE is the mean of |confidence - correct| = (0.05 + 0.85 + 0.25 + 0.65 + 0.45 + 0.45 +
    0.65 + 0.25 + 0.85 + 0.05) / 10 = 0.45. Any two neighbours merged into one bin would lower it."""
    confidence = np.array([0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95])
    correct = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.45)


def test_calibration_error_uses_ten_bins_by_default():
    """0.81 (right) and 0.89 (wrong) share the bin [0.8, 0.9) of ten: |0.85 - 0.5| = 0.35. With eleven bins they
    would fall apart (edge 9/11 = 0.818) and give 0.5·0.19 + 0.5·0.89 = 0.54."""
    assert expected_calibration_error([0.81, 0.89], [1, 0]) == pytest.approx(0.35)
    assert expected_calibration_error([0.81, 0.89], [1, 0], bins=11) == pytest.approx(0.54)


# Operating points


def test_operating_point_default_bound_is_five_percent():
    """Twenty negatives scored 0..19: 5% of 20 allows one negative above the threshold, so it lies just above 18."""
    truth, score = np.zeros(20), np.arange(20.0)
    point = operating_point(truth, score)
    assert 18 < point == pytest.approx(18)


def test_operating_point_that_allows_every_negative_is_the_lowest_negative():
    """With max_fpr 1 every negative may reach the threshold: the threshold is the lowest negative, 1, itself."""
    assert operating_point([0, 0, 0, 1], [3.0, 1.0, 2.0, 0.5], max_fpr=1.0) == 1.0
    assert math.isnan(operating_point([1, 1], [0.3, 0.4]))  # no negatives: no bound to keep


# Cross-fitted rates: two patients, so the halves are one patient each whichever the seed picks.


def test_cross_fitted_rates_apply_each_patients_threshold_to_the_other():
    """max_fpr 0 puts the threshold just above a patient's negative. Patient a: negative 0.5, positive 0.6;
    patient b: negative 0.2, positive 0.3. a's threshold (0.5+) states nothing in b; b's (0.2+) states both of a's
    discs. So 1 of 2 negatives and 1 of 2 positives are stated, and 1 of the 2 stated is a positive."""
    rates = cross_fitted_rates([0, 1, 0, 1], [0.5, 0.6, 0.2, 0.3], ["a", "a", "b", "b"], max_fpr=0.0)
    assert rates == pytest.approx({"false_positive_rate": 0.5, "sensitivity": 0.5, "precision": 0.5})


def test_cross_fitted_rates_use_the_bound_they_are_given():
    """max_fpr 0.5 with two negatives per patient lets one reach the threshold: just above the lower negative.
    a: negatives 0.1, 0.4, positive 0.45 (threshold 0.1+); b: negatives 0.2, 0.3, positive 0.35 (threshold 0.2+).
    a's threshold states all of b (2 negatives, 1 positive); b's states a's 0.4 and 0.45. Negatives stated 3 of 4,
    positives 2 of 2, precision 2 of 5."""
    truth = [0, 0, 1, 0, 0, 1]
    score = [0.1, 0.4, 0.45, 0.2, 0.3, 0.35]
    rates = cross_fitted_rates(truth, score, ["a"] * 3 + ["b"] * 3, max_fpr=0.5)
    assert rates == pytest.approx({"false_positive_rate": 0.75, "sensitivity": 1.0, "precision": 0.4})


def test_a_score_equal_to_the_threshold_is_stated():
    """All four scores 0.3 and max_fpr 1: each patient's threshold is its lowest negative, 0.3, and a score equal to
    the threshold states the finding, so everything is stated: rates 1, 1 and precision 1/2."""
    rates = cross_fitted_rates([0, 1, 0, 1], [0.3] * 4, ["a", "a", "b", "b"], max_fpr=1.0)
    assert rates == pytest.approx({"false_positive_rate": 1.0, "sensitivity": 1.0, "precision": 0.5})


def test_cross_fitted_rates_without_positives_or_without_negatives():
    """Negatives only (a 0.5, b 0.2, max_fpr 0): b's threshold states a's negative: rate 1/2, and the one stated
    finding is wrong (precision 0); sensitivity undefined. Positives only: no negatives to set a threshold, so
    nothing is stated: sensitivity 0, the rest undefined. No discs at all: everything undefined."""
    rates = cross_fitted_rates([0, 0], [0.5, 0.2], ["a", "b"], max_fpr=0.0)
    assert rates["false_positive_rate"] == 0.5 and rates["precision"] == 0.0 and math.isnan(rates["sensitivity"])
    rates = cross_fitted_rates([1, 1], [0.5, 0.2], ["a", "b"])
    assert rates["sensitivity"] == 0.0
    assert math.isnan(rates["false_positive_rate"]) and math.isnan(rates["precision"])
    empty = cross_fitted_rates([], [], [])
    assert all(math.isnan(v) for v in empty.values())


def test_cross_fitted_rates_are_reproducible_with_the_stated_defaults():
    """Forty patients with uninformative scores, where the split matters: the default call is the seed-0, 5% call
    and gives the same figures every time (a report's figures can be rebuilt)."""
    groups = np.repeat(np.arange(40), 2)
    truth = np.tile([0, 1], 40)
    score = np.random.default_rng(1).random(80)
    default = cross_fitted_rates(truth, score, groups)
    assert default == cross_fitted_rates(truth, score, groups, max_fpr=0.05, seed=0)
    assert default == cross_fitted_rates(truth, score, groups)
    assert any(cross_fitted_rates(truth, score, groups, seed=s) != default for s in (1, 2, 3))  # the split matters


# Bootstrap intervals, with the random draws scripted


class _ScriptedRng:
    """Stands in for ``np.random.default_rng(seed)``: records the seed and hands out the resamples the test wrote."""

    def __init__(self, seed=None, rows=None):
        self.seed, self.rows, self.sizes = seed, rows, []

    def integers(self, low, high=None, size=None):
        if high is None:
            low, high = 0, low
        assert low == 0
        self.sizes.append((high, size))
        return np.asarray(self.rows) if self.rows is not None else np.zeros(size, int)

    def choice(self, options, size):
        self.sizes.append((len(options), size))
        return np.asarray(options)[:size]


@pytest.fixture
def scripted(monkeypatch):
    """Replace numpy's generator factory; ``scripted(rows)`` sets the draws; the generators made are returned."""
    made, rows = [], {"rows": None}

    def factory(seed=None):
        made.append(_ScriptedRng(seed, rows["rows"]))
        return made[-1]

    monkeypatch.setattr(np.random, "default_rng", factory)

    def script(draws=None):
        rows["rows"] = draws
        return made

    return script


def test_bootstrap_ci_percentiles_of_scripted_resamples(scripted):
    """Patients a (values 0, 0, 0) and b (value 1). Four scripted resamples of two patients: (a, a) mean 0/6 = 0,
    (a, b) 1/4, (b, b) 2/2 = 1, (b, a) 1/4: sorted 0, 1/4, 1/4, 1. Percentiles by linear interpolation over the 4:
    the 2.5th at rank 0.075 is 0.075·1/4 = 0.01875; the 97.5th at rank 2.925 is 1/4 + 0.925·3/4 = 0.94375. The mean
    is that of the values, 1/4."""
    made = scripted([[0, 0], [0, 1], [1, 1], [1, 0]])
    result = bootstrap_ci(np.array([0.0, 0.0, 0.0, 1.0]), np.array(["a", "a", "a", "b"]), n_boot=4, seed=7)
    assert result == pytest.approx((0.25, 0.01875, 0.94375))
    assert made[0].seed == 7 and made[0].sizes == [(2, (4, 2))]
    # A 50% interval from the same draws: ranks 0.75 and 2.25: 0.1875 and 1/4 + 0.25·3/4 = 0.4375.
    assert bootstrap_ci([0.0, 0.0, 0.0, 1.0], ["a", "a", "a", "b"], n_boot=4, alpha=0.5) == pytest.approx(
        (0.25, 0.1875, 0.4375)
    )


def test_bootstrap_defaults_are_seed_0_and_2000_or_1000_resamples(scripted):
    """The figures in a report are rebuilt from seed 0: 2000 resamples of the patients for a mean, 1000 for a
    metric."""
    made = scripted()
    bootstrap_ci(np.array([1.0, 2.0, 3.0]))
    assert made[-1].seed == 0 and made[-1].sizes == [(3, (2000, 3))]
    calls = []
    bootstrap_metric_ci(lambda a: calls.append(1) or 0.0, [np.arange(3)], np.arange(3))
    assert made[-1].seed == 0 and len(calls) == 1000
    bootstrap_metric_ci(lambda a: 0.0, [np.arange(3)], np.arange(3), n_boot=3, seed=5)
    assert made[-1].seed == 5


def test_bootstrap_ci_of_one_value_and_of_missing_values():
    """A single value is its own mean and interval; None (a JSON null) is dropped like NaN."""
    assert bootstrap_ci([3.0]) == pytest.approx((3.0, 3.0, 3.0))
    assert bootstrap_ci([2.0, None, 2.0]) == pytest.approx((2.0, 2.0, 2.0))


def test_a_99_percent_interval_of_two_patients_spans_both():
    """Patients worth 0 and 1: a resample is all-0 or all-1 a quarter of the time each, far more than the 0.5% in
    each tail of a 99% interval: the interval is [0, 1]."""
    assert bootstrap_ci([0.0, 1.0], alpha=0.01) == pytest.approx((0.5, 0.0, 1.0))


def test_bootstrap_metric_ci_is_the_2_5_and_97_5_percentiles_of_the_kept_values():
    """A metric that ignores the resample and returns 3, NaN, 1, 2 in turn: the NaN is dropped, the kept values
    sort to 1, 2, 3, and the percentiles by linear interpolation lie at ranks 0.05 and 1.95: 1.05 and 2.95."""
    answers = iter([3.0, float("nan"), 1.0, 2.0])
    ci = bootstrap_metric_ci(lambda a: next(answers), [np.arange(4)], np.arange(4), n_boot=4)
    assert ci == pytest.approx([1.05, 2.95])


def test_bootstrap_metric_ci_resamples_each_patients_own_discs():
    """Three patients with one disc each: any resample of three patients holds exactly three discs."""
    assert bootstrap_metric_ci(len, [np.arange(3)], np.array([7, 8, 9]), n_boot=50) == [3.0, 3.0]
    assert bootstrap_metric_ci(len, [np.arange(3)], np.array([7, 8, 9]), n_boot=50, seed=1) == [3.0, 3.0]
    empty = bootstrap_metric_ci(len, [np.arange(0)], np.array([]))
    assert len(empty) == 2 and all(math.isnan(v) for v in empty)


# The grading report of a single patient: every resample is the whole data set, so each interval is a point.


def _peaked(pred: np.ndarray, classes: tuple[int, ...], confidence: np.ndarray) -> np.ndarray:
    """Probabilities with ``confidence`` on the predicted class and the rest shared evenly by the others."""
    k = len(classes)
    probs = np.repeat(((1 - confidence) / (k - 1))[:, None], k, axis=1)
    probs[np.arange(len(pred)), np.searchsorted(classes, pred)] = confidence
    return probs


def test_exact_rate_ci_of_none_and_of_all_is_the_closed_form_bound():
    """0 of n: the upper bound solves (1 - p)^n = 0.025, so p = 1 - 0.025^(1/n) (9.03% for n = 39, the radiograph
    operating point's negatives); n of n mirrors it; the 99% interval is wider."""
    assert exact_rate_ci(0, 39) == (0.0, pytest.approx(1 - 0.025 ** (1 / 39), abs=1e-12))
    assert exact_rate_ci(0, 39)[1] == pytest.approx(0.0903, abs=1e-4)
    assert exact_rate_ci(24, 24) == (pytest.approx(0.025 ** (1 / 24), abs=1e-12), 1.0)
    assert exact_rate_ci(0, 39, alpha=0.01)[1] == pytest.approx(1 - 0.005 ** (1 / 39), abs=1e-12)


def test_exact_rate_ci_of_one_in_two_and_of_one_in_one_hundred():
    """1 of 2: the bounds solve p^2 = 0.025 (lower: P(X >= 1) = 1 - (1-p)^2 = 0.025) and (1-p)^2 = 0.025 mirrored;
    1 of 100 by the binomial sums: P(X >= 1 | p_low) = 0.025 and P(X <= 1 | p_high) = 0.025."""
    low, high = exact_rate_ci(1, 2)
    assert low == pytest.approx(1 - math.sqrt(0.975), abs=1e-12)
    assert high == pytest.approx(math.sqrt(0.975), abs=1e-12)
    low, high = exact_rate_ci(1, 100)
    assert 1 - (1 - low) ** 100 == pytest.approx(0.025, abs=1e-9)
    assert (1 - high) ** 100 + 100 * high * (1 - high) ** 99 == pytest.approx(0.025, abs=1e-9)


@pytest.mark.parametrize("events, trials", [(-1, 5), (6, 5), (0, 0)])
def test_exact_rate_ci_refuses_counts_that_are_no_rate(events, trials):
    with pytest.raises(ValueError, match="events <= trials"):
        exact_rate_ci(events, trials)


def test_grading_report_of_one_patient_by_hand():
    """Eight discs of one patient.

    Pfirrmann: truth 1,1,2,2,4,4,5,5, prediction 1,2,2,2,4,5,5,5 (grade 3 never seen): recalls 1/2, 1, -, 1/2, 1,
    balanced accuracy 3/4; all within one grade; linear κ 6/7 (see the interior-grade test); confidences 0.95,
    0.55, 0.85, 0.75, 0.65, 0.45, 0.35, 0.25 (one per bin), right except the 2nd and 6th: ECE = (0.05 + 0.55 + 0.15
    + 0.25 + 0.35 + 0.45 + 0.65 + 0.75) / 8 = 0.4.

    Binary: truth 1,0,0,1,0,1,0,1, prediction 1,0,0,0,1,1,0,0, probability 0.95, 0.15, 0.25, 0.35, 0.55, 0.45,
    0.65, 0.75. Recall of 0: 3/4, of 1: 2/4; confusion [[3, 1], [2, 2]]; κ: observed 5/8, expected (4·5 + 4·3)/64 =
    1/2, κ = 1/4. AUC: positives 0.95 and 0.75 beat all 4 negatives, 0.35 and 0.45 beat 2: 12/16. Confidence in
    the call (probability when called 1, else 1 - probability): 0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35, 0.25, one
    per bin, right for discs 1, 2, 3, 6, 7: ECE = (0.05 + 0.15 + 0.25 + 0.65 + 0.55 + 0.55 + 0.65 + 0.25) / 8 =
    0.3875."""
    p_truth = np.array([1, 1, 2, 2, 4, 4, 5, 5])
    p_pred = np.array([1, 2, 2, 2, 4, 5, 5, 5])
    p_conf = np.array([0.95, 0.55, 0.85, 0.75, 0.65, 0.45, 0.35, 0.25])
    modic = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    b_truth = np.array([1, 0, 0, 1, 0, 1, 0, 1])
    b_pred = np.array([1, 0, 0, 0, 1, 1, 0, 0])
    b_prob = np.array([0.95, 0.15, 0.25, 0.35, 0.55, 0.45, 0.65, 0.75])
    truth = {"pfirrmann": p_truth, "modic": modic, **dict.fromkeys(BINARY_GRADES, b_truth)}
    pred = {"pfirrmann": p_pred, "modic": modic, **dict.fromkeys(BINARY_GRADES, b_pred)}
    probs = {
        "pfirrmann": _peaked(p_pred, ORDINAL_GRADES["pfirrmann"], p_conf),
        "modic": _peaked(modic, ORDINAL_GRADES["modic"], np.full(8, 0.95)),
        **dict.fromkeys(BINARY_GRADES, b_prob),
    }
    report = grade_metrics(truth, pred, probs, np.zeros(8, int))

    p = report["pfirrmann"]
    assert p["balanced_accuracy"] == pytest.approx(0.75) and p["balanced_accuracy_ci95"] == pytest.approx([0.75] * 2)
    recall = p["per_class_recall"]
    assert set(recall) == {"1", "2", "3", "4", "5"} and math.isnan(recall["3"])
    assert [recall[k] for k in "1245"] == pytest.approx([0.5, 1.0, 0.5, 1.0])
    assert p["confusion"] == [[1, 1, 0, 0, 0], [0, 2, 0, 0, 0], [0] * 5, [0, 0, 0, 1, 1], [0, 0, 0, 0, 2]]
    assert p["kappa"] == pytest.approx(6 / 7) and p["kappa_ci95"] == pytest.approx([6 / 7] * 2)
    assert p["within_one"] == 1.0 and p["within_one_ci95"] == [1.0, 1.0]
    assert p["ece"] == pytest.approx(0.4)
    assert report["modic"]["ece"] == pytest.approx(0.05)  # all right at 0.95

    for name in BINARY_GRADES:
        b = report[name]
        assert b["n"] == 8 and b["positives"] == 4 and b["kappa_weights"] == "none"
        assert b["per_class_recall"] == pytest.approx({"0": 0.75, "1": 0.5})
        assert b["balanced_accuracy"] == pytest.approx(0.625) and b["balanced_accuracy_ci95"] == pytest.approx(
            [0.625] * 2
        )
        assert b["confusion"] == [[3, 1], [2, 2]]
        assert b["kappa"] == pytest.approx(0.25) and b["kappa_ci95"] == pytest.approx([0.25] * 2)
        assert b["auc"] == pytest.approx(0.75) and b["auc_ci95"] == pytest.approx([0.75] * 2)
        assert b["ece"] == pytest.approx(0.3875)


def test_similarity_fit_undoes_a_known_scale_rotation_and_shift():
    """Target = 1.5 x (source turned by 30 degrees) + (10, -4): the fit lands every point exactly."""
    from lumbar.metrics import similarity_fit

    source = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 3.0], [1.0, 7.0]])
    a = math.radians(30)
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    target = 1.5 * source @ turn.T + [10.0, -4.0]
    assert np.allclose(similarity_fit(source, target), target, atol=1e-9)


def test_similarity_fit_of_a_mirror_image_does_not_reflect():
    """A mirrored triangle cannot be reached by a similarity: the best fit keeps its handedness, so it misses
    (the centroids still coincide)."""
    from lumbar.metrics import similarity_fit

    source = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    target = source * [-1.0, 1.0]
    fitted = similarity_fit(source, target)
    assert np.allclose(fitted.mean(0), target.mean(0))
    assert not np.allclose(fitted, target, atol=1e-3)
    (ax, ay), (bx, by) = fitted[1] - fitted[0], fitted[2] - fitted[0]
    cross = ax * by - ay * bx
    assert cross > 0  # counter-clockwise like the source, while the mirrored target runs clockwise


def test_similarity_fit_of_noisy_points_is_the_least_squares_scale():
    """Points on a line at 0, 1, 2 mapped to 0, 2.2, 3.8: rotation none, scale = sum(s t) / sum(s s) over centred
    coordinates = (-1 x -2 + 1 x 1.8) / 2 = 1.9, shift onto the target's centroid 2."""
    from lumbar.metrics import similarity_fit

    source = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    target = np.array([[0.0, 0.0], [2.2, 0.0], [3.8, 0.0]])
    assert np.allclose(similarity_fit(source, target), [[0.1, 0.0], [2.0, 0.0], [3.9, 0.0]], atol=1e-9)


@pytest.mark.parametrize("shapes", [((3, 2), (4, 2)), ((1, 2), (1, 2)), ((3,), (3,))])
def test_similarity_fit_refuses_sets_it_cannot_pair(shapes):
    from lumbar.metrics import similarity_fit

    with pytest.raises(ValueError, match="two equal sets"):
        similarity_fit(np.zeros(shapes[0]), np.zeros(shapes[1]))


def test_similarity_fit_moves_other_points_by_the_same_transform():
    """Fitted on a shifted square (+3, +1, no scale or turn), any other point moves by (+3, +1) too."""
    from lumbar.metrics import similarity_fit

    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    moved = similarity_fit(square, square + np.array([3.0, 1.0]), np.array([[5.0, 5.0], [-2.0, 0.5]]))
    assert np.allclose(moved, [[8.0, 6.0], [1.0, 1.5]], atol=1e-9)
