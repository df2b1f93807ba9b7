"""The networks the project trains. Small on purpose: they must train and run on a 2-core CPU."""

from __future__ import annotations

from monai.networks.nets import UNet
from torch import nn

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
