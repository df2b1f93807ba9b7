"""The networks the project trains. Small on purpose: they must train and run on a 2-core CPU."""

from __future__ import annotations

from monai.networks.nets import UNet
from torch import nn

from lumbar.grades import n_grading_outputs
from lumbar.labels import Structure


def segmentation_net(channels: tuple[int, ...] = (16, 32, 64, 128, 256)) -> nn.Module:
    """2D residual U-Net (MONAI) mapping one grey channel to the ``Structure`` classes."""
    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=len(Structure),
        channels=channels,
        strides=(2,) * (len(channels) - 1),
        num_res_units=2,
        norm="instance",
    )


def grading_net(crop_shape: tuple[int, int], channels: tuple[int, ...] = (16, 32, 64, 128)) -> nn.Module:
    """Small residual CNN (MONAI ``Classifier``) with one logit per class and per binary grade."""
    from monai.networks.nets import Classifier

    return Classifier(in_shape=(1, *crop_shape), classes=n_grading_outputs(), channels=channels, strides=(2,) * len(channels),
                      num_res_units=1, dropout=0.2)
