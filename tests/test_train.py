"""Training runs on the user's data layouts, resumes from its checkpoint and exports ONNX."""

import json

import numpy as np
import pytest
from PIL import Image

from lumbar.io.write import classes_to_spider, write_nifti
from lumbar.phantom import make_phantom
from lumbar.train.datasets import load_dataset, split_by_patient
from lumbar.train.segmentation import SegmentationConfig, train_segmentation


@pytest.fixture(scope="module")
def png_layout(tmp_path_factory):
    """Five 'patients' of two phantom slices each, in the SPIDER PNG layout."""
    root = tmp_path_factory.mktemp("spider")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for patient in range(1, 6):
        ph = make_phantom(shape=(3, 160, 144), spacing_mm=(4.0, 2.0, 2.0), seed=patient)
        images = ph.image.sagittal_slices()
        masks = classes_to_spider(ph.image.with_array(ph.semantic()).sagittal_slices())
        for k in (0, 1):
            name = f"{patient}_t2_slice{k}.png"
            Image.fromarray(np.clip(images[k] / images[k].max() * 255, 0, 255).astype(np.uint8)).save(
                root / "images" / name
            )
            Image.fromarray(masks[k]).save(root / "masks" / name)
    return root


def tiny_config(data, out, steps, **changes):
    settings = {
        "batch_size": 2,
        "patch": (64, 64),
        "val_every": 2,
        "channels": (4, 8, 16),
        "spacing_mm": 2.0,
        "target_mm": 4.0,
        "synthetic_fraction": 0.5,  # the label-map synthesis path too, resumed with its random state
    }
    return SegmentationConfig(data=str(data), out=str(out), steps=steps, **{**settings, **changes})


def test_png_layout_loads_by_patient_and_splits_without_overlap(png_layout):
    samples = load_dataset(png_layout, target_mm=4.0, spacing_mm=2.0)
    assert len(samples) == 10 and {s.patient for s in samples} == {"1", "2", "3", "4", "5"}
    assert samples[0].image.shape == (80, 72)  # 160x144 pixels of 2 mm at 4 mm
    assert set(np.unique(samples[0].mask)) <= {0, 1, 2, 3}
    train, val = split_by_patient(samples, 0.2, seed=0)
    assert not {s.patient for s in train} & {s.patient for s in val}
    assert split_by_patient(samples, 0.2, seed=0)[1][0].patient == val[0].patient  # same seed, same split


def test_nifti_layout_yields_labelled_sagittal_slices(tmp_path):
    ph = make_phantom(shape=(3, 160, 144), spacing_mm=(4.0, 2.0, 2.0))
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    write_nifti(ph.image.array, ph.image, tmp_path / "imagesTr" / "p1_case_0000.nii.gz")
    write_nifti(ph.semantic(), ph.image, tmp_path / "labelsTr" / "p1_case.nii.gz")
    samples = load_dataset(tmp_path, target_mm=4.0)
    assert len(samples) == 3 and samples[0].patient == "p1"
    assert samples[0].mask.max() == 3


def test_training_resumes_and_exports_onnx(png_layout, tmp_path):
    out = tmp_path / "run"
    train_segmentation(tiny_config(png_layout, out, steps=2))
    first = json.loads(json.dumps(__import__("torch").load(out / "checkpoint.pt", weights_only=False)["state"]["step"]))
    assert first == 2 and (out / "segmentation.onnx").is_file()
    onnx_path = train_segmentation(tiny_config(png_layout, out, steps=4))
    log = (out / "train.log").read_text()
    assert "resumed at step 2" in log
    meta = json.loads((out / "segmentation.json").read_text())
    assert meta["trained_steps"] == 4
    split = json.loads((out / "split.json").read_text())
    assert not set(split["train"]) & set(split["test"]) and not set(split["val"]) & set(split["test"])
    from lumbar.models.registry import load_model

    model = load_model("tiny", str(onnx_path))
    assert model(np.zeros((1, 1, 64, 96), np.float32)).shape == (1, 4, 64, 96)


def test_fine_tuning_starts_from_the_given_weights(png_layout, tmp_path):
    import torch

    first = tmp_path / "first"
    train_segmentation(tiny_config(png_layout, first, steps=1))
    tuned = tmp_path / "tuned"
    init = str(first / "segmentation.pt")
    train_segmentation(tiny_config(png_layout, tuned, steps=2, init=init, lr=0.0))
    log = (tuned / "train.log").read_text()
    assert "starting from" in log
    start = {k: v.float() for k, v in torch.load(first / "segmentation.pt").items()}
    end = {k: v.float() for k, v in torch.load(tuned / "segmentation.pt").items()}
    assert start.keys() == end.keys() and all(torch.equal(start[k], end[k]) for k in start)  # lr 0: unchanged


def test_resuming_with_other_channels_is_refused_in_one_line(png_layout, tmp_path):
    from lumbar.errors import InputError

    out = tmp_path / "run"
    train_segmentation(tiny_config(png_layout, out, steps=2))
    with pytest.raises(InputError, match="trained with --channels 4,8,16"):
        train_segmentation(tiny_config(png_layout, out, steps=3, channels=(8, 16, 32)))


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device (a GPU run resumes)")
def test_training_resumes_on_a_cuda_device(png_layout, tmp_path):
    """On a GPU the checkpoint's tensors are loaded onto the device, random-generator states included."""
    out = tmp_path / "run"
    train_segmentation(tiny_config(png_layout, out, steps=2))
    train_segmentation(tiny_config(png_layout, out, steps=3))
    assert "resumed at step 2" in (out / "train.log").read_text()
