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


# Disc grading: every grade predicted from one straightened disc crop by a shared trunk.
ORDINAL_GRADES = {"pfirrmann": (1, 2, 3, 4, 5), "modic": (0, 1, 2, 3)}
BINARY_GRADES = ("herniation", "bulging", "narrowing", "endplate_upper", "endplate_lower", "spondylolisthesis")


def grading_outputs() -> dict[str, slice]:
    """Where each grade's logits sit in the network's output vector."""
    out, start = {}, 0
    for name, classes in ORDINAL_GRADES.items():
        out[name] = slice(start, start + len(classes))
        start += len(classes)
    for name in BINARY_GRADES:
        out[name] = slice(start, start + 1)
        start += 1
    return out


def grading_net(crop_shape: tuple[int, int], channels: tuple[int, ...] = (16, 32, 64, 128)) -> nn.Module:
    """Small residual CNN (MONAI ``Classifier``) with one logit per class and per binary grade."""
    from monai.networks.nets import Classifier

    n_outputs = sum(len(c) for c in ORDINAL_GRADES.values()) + len(BINARY_GRADES)
    return Classifier(in_shape=(1, *crop_shape), classes=n_outputs, channels=channels, strides=(2,) * len(channels),
                      num_res_units=1, dropout=0.2)
