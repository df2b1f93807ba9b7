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
    from lumbar.evaluate import in_sample_warning
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


def test_the_patients_seen_are_read_from_every_shipped_records_split():
    """Each shipped record names its training and validation cases under its own keys: ``split_patients`` with
    train/val or training/validation, members' ``final_split``, the frontal networks' ``split_groups``, back_pain's
    cross-validation subjects (its final network trains on all); none of a record's test cases is among them."""
    import json
    from pathlib import Path

    from lumbar.models.registry import OnnxModel, spec_of

    weights = Path(__file__).resolve().parents[1] / "lumbar" / "models" / "weights"
    expected = {
        "segmentation": 24,
        "lumbosacral": 110,
        "grading": 179,
        "ultrasound": 23,
        "tracking": 124,
        "radiograph_lateral": 131,
        "radiograph": 233,
        "radiograph_corners": 233,
        "radiograph_levels": 233,
        "back_pain": 120,
        "fusion": 0,
    }
    for name, count in expected.items():
        meta = json.loads((weights / f"{name}.json").read_text())
        seen = OnnxModel(spec_of(name), meta, None, weights / f"{name}.onnx").patients_seen
        split = meta.get("split_patients") or meta.get("split_groups") or {}
        named = {str(p) for part, ids in split.items() if part != "test" for p in ids}
        assert named <= seen, name
        assert not seen & {str(p) for p in split.get("test", [])}, name
        assert len(seen) == count, (name, len(seen))
    top_level = {"final_split": {"train": [1], "validation": [2], "test": [3]}}
    assert OnnxModel(spec_of("grading"), top_level, None, weights).patients_seen == {"1", "2"}
