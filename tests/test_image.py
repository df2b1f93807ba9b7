"""SpineImage keeps one canonical orientation and gives radiologists' sagittal view."""

import numpy as np
import pytest

from lumbar.image import SpineImage
from lumbar.labels import Structure


def test_any_voxel_order_is_brought_to_ras_and_back(rng):
    affine = np.array([[0, 0, -0.8, 10], [-0.5, 0, 0, 20], [0, 3.0, 0, -5], [0, 0, 0, 1]], float)  # axes: A<-, S, L
    array = rng.random((4, 5, 6))
    image = SpineImage.from_array(array, affine)
    assert image.describe()["orientation"] == "RAS"
    assert image.spacing_mm == pytest.approx((0.8, 0.5, 3.0))
    np.testing.assert_array_equal(image.source_array(), array)
    np.testing.assert_allclose(image.source_affine(), affine)
    # The same world point holds the same value before and after reorientation.
    voxel = np.array([1, 2, 3, 1])
    world = affine @ voxel
    canonical = np.rint(np.linalg.inv(image.affine) @ world).astype(int)[:3]
    assert image.array[tuple(canonical)] == array[1, 2, 3]


def test_sagittal_view_is_head_up_anterior_left(phantom, phantom_semantic):
    mid = phantom_semantic[phantom_semantic.shape[0] // 2]
    disc_rows, disc_cols = np.nonzero(mid == Structure.DISC)
    _canal_rows, canal_cols = np.nonzero(mid == Structure.CANAL)
    assert canal_cols.mean() > disc_cols.mean()  # canal is posterior = to the right
    s1 = phantom.image.with_array(phantom.instances).sagittal_slices()[3] == 26
    assert np.nonzero(s1)[0].mean() > disc_rows.mean()  # sacrum is inferior = lower rows


def test_sagittal_slices_round_trip(rng):
    stack = rng.random((3, 7, 5))
    image = SpineImage.from_sagittal_slices(stack, (4.0, 0.5, 0.6))
    np.testing.assert_array_equal(image.sagittal_slices(), stack)
    assert image.sagittal_spacing_mm() == pytest.approx((0.5, 0.6))
    assert image.spacing_mm == pytest.approx((4.0, 0.6, 0.5))


def test_rejects_arrays_that_are_not_3d():
    with pytest.raises(ValueError):
        SpineImage(np.zeros((3, 3)), np.eye(4))
