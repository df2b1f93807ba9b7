"""Resampling to the model grid and back: known answers on small arrays."""

import subprocess
import sys

import numpy as np

from lumbar.preprocess import model_shape, normalize_intensity, resize


def test_constant_image_stays_constant_and_shape_is_exact():
    out = resize(np.full((40, 30), 7.0, np.float32), (17, 23))
    assert out.shape == (17, 23)
    np.testing.assert_allclose(out, 7.0, atol=1e-5)


def test_downsampling_averages_a_fine_pattern_instead_of_aliasing():
    stripes = np.tile(np.array([0.0, 1.0], np.float32), (64, 32))  # one-pixel vertical stripes
    out = resize(stripes, (16, 16))
    np.testing.assert_allclose(out, 0.5, atol=0.05)


def test_labels_keep_their_values_and_stacks_keep_their_leading_axes():
    labels = np.zeros((2, 3, 20, 20), np.uint8)
    labels[:, :, 5:15, 5:15] = 3
    out = resize(labels, (40, 40), labels=True)
    assert out.shape == (2, 3, 40, 40) and out.dtype == np.uint8
    assert set(np.unique(out)) == {0, 3}
    assert out[0, 0, 20, 20] == 3 and out[0, 0, 2, 2] == 0


def test_model_shape_follows_physical_size():
    assert model_shape((400, 300), (0.5, 1.0), 0.75) == (267, 400)


def test_normalize_intensity_ignores_the_background():
    image = np.zeros((10, 10), np.float32)
    image[2:8, 2:8] = np.linspace(100, 200, 36).reshape(6, 6)
    out = normalize_intensity(image)
    assert out.min() == 0.0 and out.max() == 1.0


def test_start_up_imports_neither_torch_nor_monai_nor_scipy_stats():
    """Segmentation at run time needs only onnxruntime and NumPy: torch would cost seconds of every command's
    start-up, and scipy.stats 0.4-0.8 s of it (an analysis never needs it: the posterior wall's Theil-Sen line is
    numpy's, lumbar.tasks.measurements.theil_sen)."""
    code = (
        "import sys, lumbar.api, lumbar.cli, lumbar.outputs, lumbar.report.html; "
        "print([m for m in ('torch', 'monai', 'scipy.stats') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
