"""The shipped segmentation model runs on every input type and its outputs mirror the input."""

import json

import numpy as np
import pytest
from conftest import shared
from PIL import Image

from lumbar import api
from lumbar.io import read_image
from lumbar.io.dicom_write import write_dicom_series
from lumbar.io.write import write_nifti
from lumbar.labels import Structure
from lumbar.metrics import dice
from lumbar.models.registry import load_model
from lumbar.tasks.segmentation import segment, segment_slices


def test_every_registered_model_ships_with_weights_card_and_a_matching_training_record():
    from lumbar.models.registry import REGISTRY

    for name, spec in REGISTRY.items():
        model = load_model(name)
        assert spec.weights.stat().st_size < 20e6 and spec.card.is_file()
        assert model.meta["name"] == name
        for key in ("spacing_mm", "grid_multiple", "crop_shape"):
            declared = getattr(spec.input, key)
            if declared is not None and key in model.meta:
                assert tuple(np.atleast_1d(model.meta[key])) == tuple(np.atleast_1d(declared)), (name, key)


def test_the_registry_finds_models_by_task_modality_and_plane():
    from lumbar.image import Modality
    from lumbar.models.registry import model_for

    assert model_for("segmentation", Modality.MR, "sagittal").name == "segmentation"
    assert model_for("segmentation", Modality.MR, None).name == "segmentation"  # a 3D volume, resliced
    assert model_for("grading", Modality.MR, "sagittal").name == "grading"
    assert model_for("segmentation", Modality.CT, "sagittal") is None
    assert model_for("segmentation", Modality.MR, "axial") is None


def test_segmentation_lies_on_the_input_grid(phantom, phantom_semantic_spider):
    result = segment(phantom.image)
    assert result.classes.shape == result.confidence.shape == phantom.image.sagittal_slices().shape
    assert set(np.unique(result.classes)) <= {0, 1, 2, 3}
    assert (result.confidence <= 1.0).all()
    # The chosen class's probability: near 1 where the network is right and lower where it is wrong. (That it is at
    # least 1/4 always holds for the largest of four probabilities; a constant or another class's would not do this.)
    right = result.classes == phantom_semantic_spider
    assert np.median(result.confidence[right]) > 0.99
    assert result.confidence[~right].mean() < result.confidence[right].mean() - 0.1


def test_phantom_structures_are_found(phantom, phantom_semantic_spider):
    """The phantom is not training data, so this checks transfer to an unseen, synthetic look."""
    mid = slice(2, 5)
    result = segment(phantom.image)
    for structure in (Structure.DISC, Structure.VERTEBRA, Structure.CANAL):
        assert dice(phantom_semantic_spider[mid] == structure, result.classes[mid] == structure) > 0.5


def test_unknown_spacing_is_assumed_from_the_field_of_view(phantom):
    slices = phantom.image.sagittal_slices()[3:4]
    a = segment_slices(slices, (1.0, 1.0)).classes
    b = segment_slices(slices, (300 / max(slices.shape[1:]),) * 2).classes
    assert dice(a == Structure.VERTEBRA, b == Structure.VERTEBRA) > 0.8


def test_segment_png_writes_spider_mask_of_same_size_and_name(tmp_path, phantom):
    mid = phantom.image.sagittal_slices()[3]
    Image.fromarray(np.clip(mid / np.percentile(mid, 99.5) * 255, 0, 255).astype(np.uint8)).save(
        tmp_path / "slice_7.png"
    )
    result = api.segment(tmp_path / "slice_7.png", tmp_path / "out")
    mask = np.asarray(Image.open(tmp_path / "out" / "slice_7.png"))
    assert mask.shape == mid.shape and set(np.unique(mask)) <= {0, 29, 76, 150}
    instances = np.asarray(Image.open(tmp_path / "out" / "instances" / "slice_7.png"))
    assert instances.shape == mid.shape
    levels = json.loads((tmp_path / "out" / "levels" / "slice_7.json").read_text())
    assert levels["levels"] and result.outputs["levels"].endswith("slice_7.json")


def test_segment_nifti_writes_label_maps_in_its_geometry(tmp_path, phantom):
    import nibabel as nib

    write_nifti(phantom.image.array, phantom.image, tmp_path / "scan.nii.gz")
    api.segment(tmp_path / "scan.nii.gz", tmp_path / "out")
    seg = nib.load(tmp_path / "out" / "scan_seg.nii.gz")
    np.testing.assert_allclose(seg.affine, nib.load(tmp_path / "scan.nii.gz").affine)
    assert seg.shape == phantom.image.shape and set(np.unique(seg.get_fdata())) <= {0, 29, 76, 150}
    assert (tmp_path / "out" / "scan_instances.nii.gz").is_file()
    assert (tmp_path / "out" / "scan_instances.ctbl").is_file() and (
        tmp_path / "out" / "scan_instances.label.txt"
    ).is_file()


def test_segment_dicom_also_writes_dicom_seg(tmp_path, phantom):
    import highdicom as hd

    write_dicom_series(phantom.image, tmp_path / "series", "rle")
    result = api.segment(tmp_path / "series", tmp_path / "out")
    seg = hd.seg.segread(result.outputs["dicom_seg"])
    assert {str(s.SegmentLabel) for s in seg.SegmentSequence} >= {lv.name for lv in result.levels.discs}


# Real SPIDER slices of patients the shipped model never saw in training.


def _held_out_patients():
    meta = load_model("segmentation").meta
    return meta.get("split_patients", {}).get("test", [])


def test_real_held_out_spider_slices_are_segmented_well():
    images = shared("spider", "t2space", "images")
    patients = _held_out_patients()
    if not patients:
        pytest.skip("the shipped model records no held-out patients")
    paths = sorted(p for p in images.glob("*.png") if p.name.split("_")[0] == patients[0])[::4][:4]
    scores = {s: [] for s in (Structure.DISC, Structure.VERTEBRA, Structure.CANAL)}
    for path in paths:
        image = read_image(path, spacing_mm=0.46875)
        truth = np.asarray(Image.open(images.parent / "masks" / path.name))
        classes = segment(image).classes[0]
        for structure, value in ((Structure.DISC, 29), (Structure.VERTEBRA, 76), (Structure.CANAL, 150)):
            scores[structure].append(dice(truth == value, classes == structure))
    for structure, values in scores.items():
        assert np.nanmean(values) > 0.75, (structure, values)
