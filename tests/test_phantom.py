"""The phantom is deterministic and its truth matches what it draws."""

import numpy as np
import pytest

from lumbar.labels import CANAL_LABEL, VERTEBRA_IDS, disc_label
from lumbar.phantom import DiscSpec, make_phantom


def test_same_seed_same_phantom():
    a = make_phantom(shape=(3, 160, 144), spacing_mm=(4, 2, 2), seed=5)
    b = make_phantom(shape=(3, 160, 144), spacing_mm=(4, 2, 2), seed=5)
    np.testing.assert_array_equal(a.image.array, b.image.array)
    c = make_phantom(shape=(3, 160, 144), spacing_mm=(4, 2, 2), seed=6)
    assert not np.array_equal(a.image.array, c.image.array)
    np.testing.assert_array_equal(a.instances, c.instances)


def test_every_level_and_the_canal_are_drawn(phantom):
    labels = set(np.unique(phantom.instances))
    for name in ("T12", "L1", "L2", "L3", "L4", "L5", "S1"):
        assert VERTEBRA_IDS[name] in labels
    for upper in ("T12", "L1", "L2", "L3", "L4", "L5"):
        assert disc_label(upper) in labels
    assert CANAL_LABEL in labels
    assert [d.level for d in phantom.discs][-5:] == ["L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]


def test_disc_truth_matches_the_drawn_height(phantom, phantom_instances):
    """Mid-sagittal pixel count through the centre of each disc along the spine axis ~ its true height."""
    mid = phantom_instances[phantom_instances.shape[0] // 2]
    for truth in phantom.discs:
        _rows, cols = np.nonzero(mid == truth.label)
        centre_col = int(np.median(cols))
        column = mid[:, centre_col] == truth.label
        # The vertical run overestimates the height along the tilted axis by 1/cos(tilt) at most ~1.1.
        assert column.sum() == pytest.approx(truth.height_middle_mm, abs=0.2 * truth.height_middle_mm + 2)


def test_degeneration_darkens_the_nucleus_on_t2():
    healthy = make_phantom(shape=(3, 320, 288), noise=0, bias=0)
    dark = make_phantom(shape=(3, 320, 288), noise=0, bias=0, discs={"L4": DiscSpec(darkening=1.0)})
    label = disc_label("L4")
    a = healthy.image.array[healthy.instances == label].mean()
    b = dark.image.array[dark.instances == label].mean()
    assert b < 0.6 * a


def test_herniation_narrows_the_canal(phantom):
    l4l5 = next(d for d in phantom.discs if d.level == "L4/L5")
    l3l4 = next(d for d in phantom.discs if d.level == "L3/L4")
    assert l4l5.canal_ap_mm < l3l4.canal_ap_mm - 3


def test_contrasts_differ_and_ct_is_in_hounsfield_units():
    t1 = make_phantom(shape=(3, 160, 144), spacing_mm=(4, 2, 2), contrast="T1", noise=0, bias=0)
    ct = make_phantom(shape=(3, 160, 144), spacing_mm=(4, 2, 2), contrast="CT", noise=0)
    csf = t1.instances == CANAL_LABEL
    bone = t1.instances == VERTEBRA_IDS["L3"]
    assert t1.image.array[csf].mean() < t1.image.array[bone].mean()  # CSF dark on T1
    assert ct.image.modality == "CT" and ct.image.array.min() < -900
