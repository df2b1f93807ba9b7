"""Label-map synthesis: the extended labels stand for exactly the expert's classes, and images vary in contrast."""

import numpy as np
import torch

from lumbar.labels import Structure
from lumbar.phantom import make_phantom
from lumbar.train.synthesis import CORE, N_LABELS, RIM, TO_CLASS, extended_labels, synthesise, synthesiser


def _slice():
    phantom = make_phantom(shape=(3, 160, 144), seed=1)
    image = phantom.image.sagittal_slices()[1]
    mask = phantom.image.with_array(phantom.semantic()).sagittal_slices()[1].astype(np.int64)
    return (image - image.min()) / np.ptp(image), mask


def test_extended_labels_map_back_to_the_classes_and_split_bone_into_rim_and_core():
    image, mask = _slice()
    labels = extended_labels(image, mask)
    assert labels.max() < N_LABELS
    np.testing.assert_array_equal(TO_CLASS[labels], mask)
    bone = mask == Structure.VERTEBRA
    assert np.isin(labels[bone], [RIM, CORE]).all() and (labels[bone] == RIM).any() and (labels[bone] == CORE).any()
    assert len(np.unique(labels[mask == Structure.BACKGROUND])) > 2  # background split into intensity clusters


def test_synthesised_images_are_in_range_and_differ_in_contrast():
    image, mask = _slice()
    labels = torch.from_numpy(extended_labels(image, mask)).repeat(6, 1, 1)
    torch.manual_seed(0)
    images = synthesise(labels, synthesiser())
    assert images.shape == (6, 1, *mask.shape)
    assert images.min() >= 0 and images.max() <= 1
    disc_minus_bone = [
        float(im[0][torch.from_numpy(mask == Structure.DISC)].mean() - im[0][torch.from_numpy(mask == 2)].mean())
        for im in images
    ]
    assert min(disc_minus_bone) < 0 < max(disc_minus_bone)  # discs brighter than bone in some, darker in others
