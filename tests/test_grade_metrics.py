"""The grading report's figures against answers worked out by hand (``lumbar.metrics.grade_metrics``)."""

import numpy as np
import pytest

from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES
from lumbar.metrics import grade_metrics

PFIRRMANN_TRUTH = np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
PFIRRMANN_PRED = np.array([1, 2, 2, 2, 3, 5, 4, 4, 5, 5])  # one grade-1 disc called 2, one grade-3 disc called 5
BINARY_TRUTH = np.array([0, 0, 0, 1, 1, 0, 0, 1, 0, 1])
BINARY_PRED = np.array([0, 1, 0, 1, 0, 0, 0, 1, 0, 1])
BINARY_PROB = np.array([0.1, 0.6, 0.2, 0.9, 0.4, 0.05, 0.3, 0.8, 0.15, 0.7])
GROUPS = np.arange(10)


def _one_hot(values: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    return (values[:, None] == np.array(classes)[None, :]).astype(float)


def _report(pfirrmann_pred: np.ndarray = PFIRRMANN_PRED) -> dict:
    modic = np.array([0, 0, 1, 1, 2, 2, 3, 3, 0, 0])
    truth = {"pfirrmann": PFIRRMANN_TRUTH, "modic": modic, **dict.fromkeys(BINARY_GRADES, BINARY_TRUTH)}
    pred = {"pfirrmann": pfirrmann_pred, "modic": modic, **dict.fromkeys(BINARY_GRADES, BINARY_PRED)}
    probs = {
        "pfirrmann": _one_hot(pfirrmann_pred, ORDINAL_GRADES["pfirrmann"]),
        "modic": _one_hot(modic, ORDINAL_GRADES["modic"]),
        **dict.fromkeys(BINARY_GRADES, BINARY_PROB),
    }
    return grade_metrics(truth, pred, probs, GROUPS)


@pytest.fixture
def report() -> dict:
    """Built afresh for every test (not once per module): mutmut 3 runs, for a mutant, only the tests that call the
    mutated function themselves, and a cached report would hide every test after the first."""
    return _report()


def test_every_grade_is_reported_with_its_count_and_kind_of_kappa(report):
    assert set(report) == {*ORDINAL_GRADES, *BINARY_GRADES}
    assert all(entry["n"] == 10 for entry in report.values())
    assert report["pfirrmann"]["kappa_weights"] == report["modic"]["kappa_weights"] == "linear"
    assert report["herniation"]["kappa_weights"] == "none"


def test_pfirrmann_figures_by_hand(report):
    """Recall per grade 1/2, 1, 1/2, 1, 1: balanced accuracy 0.8; 9 of 10 within one grade (3 called 5 is not)."""
    p = report["pfirrmann"]
    assert p["per_class_recall"] == pytest.approx({"1": 0.5, "2": 1.0, "3": 0.5, "4": 1.0, "5": 1.0})
    assert p["balanced_accuracy"] == pytest.approx(0.8)
    assert p["within_one"] == pytest.approx(0.9)
    confusion = np.asarray(p["confusion"])
    assert confusion[0, 1] == 1 and confusion[2, 4] == 1 and np.trace(confusion) == 8 and confusion.sum() == 10
    assert 0 < p["kappa"] < 1
    lo, hi = p["balanced_accuracy_ci95"]
    assert lo <= 0.8 <= hi and lo < hi
    assert p["ece"] == pytest.approx(0.2)  # every call made with certainty 1; 2 of 10 wrong


def test_perfect_grades_score_one_and_are_perfectly_calibrated(report):
    p = _report(PFIRRMANN_TRUTH)["pfirrmann"]
    assert p["balanced_accuracy"] == p["kappa"] == p["within_one"] == pytest.approx(1.0)
    assert p["ece"] == pytest.approx(0.0)
    m = report["modic"]
    assert m["balanced_accuracy"] == m["kappa"] == pytest.approx(1.0)


def test_binary_figures_by_hand(report):
    """Negatives 6, of which 5 called negative; positives 4, of which 3 called: balanced accuracy (5/6 + 3/4) / 2.
    AUC: of the 24 positive-negative pairs, the positive scores higher in all but (0.4 vs 0.6): 23/24."""
    b = report["herniation"]
    assert b["per_class_recall"] == pytest.approx({"0": 5 / 6, "1": 3 / 4})
    assert b["balanced_accuracy"] == pytest.approx((5 / 6 + 3 / 4) / 2)
    assert b["auc"] == pytest.approx(23 / 24)
    assert b["positives"] == 4
    assert np.asarray(b["confusion"]).tolist() == [[5, 1], [1, 3]]
    lo, hi = b["auc_ci95"]
    assert lo <= 23 / 24 <= hi


def test_high_specificity_points_belong_to_the_weights_they_were_chosen_for(tmp_path):
    import json

    from lumbar.validation import high_specificity_points

    record = tmp_path / "validation.json"
    record.write_text(
        json.dumps(
            {
                "grades": {
                    "model_sha256": "abc",
                    "findings": {
                        "bulging": {"threshold": 0.8, "false_positive_rate": 0.04, "validated": True},
                        "herniation": {"threshold": 0.35, "false_positive_rate": 0.05, "validated": False},
                        "modic": {"validated": False},
                    },
                }
            }
        )
    )
    points = high_specificity_points("abc", str(record))
    assert points == {"bulging": (0.8, 0.96), "herniation": (0.35, 0.95)}
    assert high_specificity_points("other weights", str(record)) == {}
