"""Odd but valid images get a clear refusal or review reasons, never a clean Summary.

Built here: noise, a constant image, a gradient, a photo-like colour picture (each given as an MRI slice), and the
phantom volume with a saturated blob in the column, as a metal implant's artefact would show. A real abdominal CT
given as MRI is covered by the real-data check in ``bench/unlike_mri.py`` and ``tests/test_quality.py``.
"""

import numpy as np
import pytest
from PIL import Image

import lumbar
from lumbar.errors import InputError
from lumbar.io.write import write_nifti


def _png(path, array, mode=None):
    Image.fromarray(array, mode).save(path)
    return path


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory, phantom):
    root = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(0)
    volume = phantom.image.array.astype(np.float32).copy()
    mid = volume.shape[0] // 2
    volume[mid - 1 : mid + 2, 140:160, 100:125] = volume.max() * 20  # a saturated blob, as around metal
    write_nifti(volume, phantom.image, root / "metal.nii.gz")
    colour = np.kron(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), np.ones((32, 32, 1), np.uint8))
    return {
        "noise": _png(root / "noise.png", rng.integers(0, 255, (256, 256), dtype=np.uint8)),
        "constant": _png(root / "constant.png", np.full((256, 256), 120, np.uint8)),
        "gradient": _png(root / "gradient.png", np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))),
        "photo": _png(root / "photo.png", colour, "RGB"),
        "metal": root / "metal.nii.gz",
    }


@pytest.mark.parametrize("name", ["noise", "constant", "gradient", "photo", "metal"])
def test_an_odd_image_is_refused_or_reviewed_never_summarised(odd_images, name):
    path = odd_images[name]
    try:
        result = lumbar.analyze(path, modality="MR", spacing_mm=1.0 if path.suffix == ".png" else None, report=False)
    except InputError as refusal:
        assert str(refusal)
        return
    findings = result.findings
    assert findings.needs_review, f"{name}: no review reason"
    assert findings.summary == () and findings.summary_withheld
