"""Pixel counts behind precision and recall, pooled over images: known answers on hand-built masks."""

import math

import numpy as np

from lumbar.evaluate.segmentation import overlap_pixels, pooled_precision_recall


def test_an_outline_drawn_inside_the_truth_has_full_precision_and_partial_recall():
    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True  # 100 pixels
    inside = np.zeros_like(truth)
    inside[6:14, 6:14] = True  # 64 pixels, one pixel short all round
    counts = overlap_pixels(truth, inside)
    assert counts == {"truth_px": 100, "predicted_px": 64, "overlap_px": 64}
    assert pooled_precision_recall([counts]) == {"precision": 1.0, "recall": 0.64}


def test_counts_are_pooled_over_images_not_averaged():
    small = {"truth_px": 10, "predicted_px": 10, "overlap_px": 0}  # a miss on a small structure
    large = {"truth_px": 90, "predicted_px": 90, "overlap_px": 90}
    assert pooled_precision_recall([small, large]) == {"precision": 0.9, "recall": 0.9}  # averaged would be 0.5


def test_nothing_predicted_or_nothing_true_is_not_measurable():
    result = pooled_precision_recall([{"truth_px": 0, "predicted_px": 0, "overlap_px": 0}])
    assert math.isnan(result["precision"]) and math.isnan(result["recall"])


def test_the_patients_a_shipped_model_learnt_from_are_its_training_and_validation_ones():
    """Figures on these patients are in-sample (``lumbar evaluate`` says so); the segmentation's held-out test
    patients are not among them, and every member of the grading ensemble counts."""
    from lumbar.evaluate.grading import in_sample_warning
    from lumbar.models.registry import load_model

    segmentation = load_model("segmentation")
    split = segmentation.meta["split_patients"]
    assert segmentation.patients_seen == frozenset(split["train"]) | frozenset(split["val"])
    assert not segmentation.patients_seen & set(split["test"]) and split["test"]
    grading = load_model("grading")
    members = grading.meta["members"]
    assert len(grading.patients_seen) == 179 and all(
        set(m["final_split"]["train"]) | set(m["final_split"]["val"]) <= grading.patients_seen for m in members
    )
    assert in_sample_warning({"n_patients": 5, "patients_seen_in_training": ["1", "2"]}).startswith(
        "in-sample: 2 of these 5 patients"
    )
    assert in_sample_warning({"n_patients": 5, "patients_seen_in_training": []}) is None
