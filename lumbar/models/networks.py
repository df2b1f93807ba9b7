"""The networks the project trains. Small on purpose: they must train and run on a 2-core CPU."""

from __future__ import annotations

import torch
from monai.networks.nets import UNet
from torch import nn

from lumbar.errors import InputError
from lumbar.grades import ORDINAL_GRADES, grading_outputs, n_grading_outputs
from lumbar.io.kinematics import CHANNELS
from lumbar.labels import Structure
from lumbar.preprocess import LEVEL_WINDOW, RADIOGRAPH_OUTPUTS, ULTRASOUND_FRAME_SHAPE


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


def conv_stages(in_channels: int, channels: tuple[int, ...]) -> list[nn.Module]:
    """The small classifiers' trunk: per width, two 3x3 MONAI convolutions with batch norm and ReLU, then max pooling,
    and global average pooling after the last (one ``channels[-1]`` vector per image)."""
    from monai.networks.blocks import Convolution

    layers: list[nn.Module] = []
    previous = in_channels
    for k, width in enumerate(channels):
        layers += [
            Convolution(2, previous, width, kernel_size=3, norm="batch", act="relu", bias=False),
            Convolution(2, width, width, kernel_size=3, norm="batch", act="relu", bias=False),
            nn.MaxPool2d(2) if k < len(channels) - 1 else nn.AdaptiveAvgPool2d(1),
        ]
        previous = width
    return layers


class StudyGradingNet(nn.Module):
    """Grades each disc from its own crop *and* the study it belongs to.

    A small CNN (MONAI convolution blocks, global average pooling) embeds every disc crop; the head sees a
    disc's embedding beside the mean embedding of its study's discs. Expert gradings carry much of a
    patient's overall degeneration (neighbouring discs' grades predict a disc's about as well as its own
    appearance); in 5-fold cross-validation this context lifted Pfirrmann balanced accuracy from 0.31 to 0.37 with
    the gradings joined in reverse order, and made no measurable difference once they were joined right (model card).
    """

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 96), dropout: float = 0.3, study_context: bool = True):
        super().__init__()
        self.study_context = study_context  # False: each disc from its own crop alone (the ablation of the context)
        self.trunk = nn.Sequential(*conv_stages(1, channels), nn.Flatten())
        width = 2 * channels[-1] if study_context else channels[-1]
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_grading_outputs()))

    def forward(self, image: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Logits for the discs ``image (n, 1, h, w)`` of one study whose discs are ``context (m, 1, h, w)``."""
        own = self.trunk(image)
        if not self.study_context:
            return self.head(own) + 0 * context.mean()  # the context input stays in the exported graph
        study = self.trunk(context).mean(0, keepdim=True)
        return self.head(torch.cat([own, study.expand_as(own)], 1))

    def forward_studies(self, image: torch.Tensor, study: torch.Tensor) -> torch.Tensor:
        """Logits for discs of several studies at once (training): ``study (n,)`` numbers each disc's study 0..k-1."""
        own = self.trunk(image)
        if not self.study_context:
            return self.head(own)
        k = int(study.max()) + 1
        sums = own.new_zeros(k, own.shape[1]).index_add(0, study, own)
        counts = own.new_zeros(k).index_add(0, study, own.new_ones(len(study)))
        return self.head(torch.cat([own, (sums / counts[:, None])[study]], 1))


class GradingEnsemble(nn.Module):
    """Several grading networks read as one: the mean of their calibrated probabilities, given back as logits.

    Each member's logits are divided by its own temperatures (fitted on its validation patients), turned into
    probabilities, and averaged; the output is the log of the mean class probabilities (ordinal grades) and the
    log-odds of the mean positive probability (binary grades), so that a softmax or sigmoid at temperature 1 gives
    the ensemble's probabilities back and everything downstream reads it like one network.
    """

    EPS = 1e-7

    def __init__(self, members: list[nn.Module], temperatures: list[dict[str, float]]):
        super().__init__()
        self.members = nn.ModuleList(members)
        scale = torch.ones(len(members), n_grading_outputs())
        for k, temps in enumerate(temperatures):
            for name, where in grading_outputs().items():
                scale[k, where] = temps.get(name, 1.0)
        self.register_buffer("temperatures", scale)

    def forward(self, image: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([m(image, context) for m in self.members]) / self.temperatures[:, None, :]
        out = []
        for name, where in grading_outputs().items():  # in column order: slices that tile the output
            z = logits[..., where]
            if name in ORDINAL_GRADES:
                out.append(torch.log(torch.softmax(z, -1).mean(0).clamp_min(self.EPS)))
            else:
                p = torch.sigmoid(z).mean(0).clamp(self.EPS, 1 - self.EPS)
                out.append(torch.log(p) - torch.log1p(-p))
        return torch.cat(out, 1)


class LumbosacralNet(nn.Module):
    """One logit: is the disc in the middle of a 2-channel patch (grey, inside-the-image) L5/S1?

    Three MONAI convolution stages and global average pooling, about 70 k parameters: a shape question on a
    64-pixel patch needs no more, and a small network holds better on sequences it never saw.
    """

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64), dropout: float = 0.3):
        super().__init__()
        self.net = nn.Sequential(
            *conv_stages(2, channels), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels[-1], 1)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


def load_torch_segmentation(name: str = "segmentation") -> nn.Module:
    """The shipped half-precision PyTorch weights of the segmentation network, as float32 (benchmarks, fine-tuning)."""
    from lumbar.models.registry import load_model, spec_of

    path = spec_of(name).torch_weights
    if not path.is_file():
        raise InputError(f"no PyTorch weights for {name!r} at {path}")
    meta = load_model(name).meta
    net = segmentation_net(tuple(meta.get("channels", (16, 32, 64, 128, 256))))
    net.load_state_dict({k: v.float() for k, v in torch.load(path, map_location="cpu").items()})
    return net.eval()


def grey_unet(out_channels: int, channels: tuple[int, ...]) -> nn.Module:
    """The landmark networks' body: a 2D MONAI U-Net from one grey channel, stride 2 per level, one residual unit
    per level, batch normalisation."""
    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=out_channels,
        channels=channels,
        strides=(2,) * (len(channels) - 1),
        num_res_units=1,
        norm="batch",
    )


def radiograph_net(channels: tuple[int, ...] = (16, 32, 64, 128, 256), outputs: int = RADIOGRAPH_OUTPUTS) -> nn.Module:
    """:func:`grey_unet` from a grey radiograph to the vertebra-centre channel and eight corner offsets (and, for
    lateral films, a tenth channel: S1's centre). The centre channels start at a 1% prior (CenterNet's
    initialisation), so the first steps are not spent unlearning 0.5 on every background pixel."""
    net = grey_unet(outputs, channels)
    last = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]
    with torch.no_grad():
        last.bias[0] = -4.6
        last.bias[9:] = -4.6
    return net


class BoneDensityNet(nn.Module):
    """Bone density class from a whole letterboxed radiograph: four MONAI convolution stages, global average
    pooling, dropout and a linear layer (about 0.2 M parameters)."""

    def __init__(self, n_classes: int, channels: tuple[int, ...] = (16, 32, 64, 96), dropout: float = 0.3):
        super().__init__()
        self.net = nn.Sequential(
            *conv_stages(1, channels), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels[-1], n_classes)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


def corner_heatmap_net(channels: tuple[int, ...] = (16, 32, 64, 128), corners: int = 4) -> nn.Module:
    """:func:`grey_unet` from a window on one vertebral body to one heatmap per corner (logits; a softmax over the
    window's pixels places each corner)."""
    return grey_unet(corners, channels)


class FusionWeightNet(nn.Module):
    """Per-coefficient weight of the first source when two wavelet bands are fused (MR–CT fusion).

    Reads ``(n, 3, h, w)``: the two sources' band, each divided by the larger of their standard deviations, and a
    plane of 1 for a detail band (0 for the approximation); returns the first source's weight in [0, 1]. Fully
    convolutional and small (3x3 convolutions, about 1.4k weights), so it runs on every band of a 256³ volume.
    """

    def __init__(self, channels: int = 8, depth: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for _ in range(depth):
            layers += [nn.Conv2d(width, channels, 3, padding=1), nn.LeakyReLU(0.1)]
            width = channels
        layers.append(nn.Conv2d(width, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(image))


class BackPainNet(nn.Module):
    """One logit per window ``(n, channels, samples)``: three 1D MONAI convolutions (kernel 7, batch norm, ReLU;
    the first strided, as sway lies below 2 Hz) with max pooling between them, global average pooling, dropout and a
    linear layer (about 20 k parameters). Hu et al. used an LSTM; a convolution trains faster on a CPU."""

    def __init__(self, channels: int = len(CHANNELS), widths: tuple[int, ...] = (16, 32, 64), dropout: float = 0.3):
        super().__init__()
        from monai.networks.blocks import Convolution

        layers: list[nn.Module] = []
        previous = channels
        for k, width in enumerate(widths):
            layers += [
                Convolution(
                    1, previous, width, strides=2 if k == 0 else 1, kernel_size=7, norm="batch", act="relu", bias=False
                ),
                nn.MaxPool1d(2) if k < len(widths) - 1 else nn.AdaptiveAvgPool1d(1),
            ]
            previous = width
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Dropout(dropout), nn.Linear(previous, 1))

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        return self.net(signals)


class TrackingEmbedding(nn.Module):
    """φ: four convolutions, total stride 4, batch norm and ReLU between them, no activation at the end
    (about 75 k parameters)."""

    def __init__(self, channels: tuple[int, int, int, int] = (24, 48, 64, 64)):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.layers = nn.Sequential(
            nn.Conv2d(1, c1, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c2, c3, 3, padding=1, bias=False),
            nn.BatchNorm2d(c3),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GreyClassifier(nn.Module):
    """A small CNN that classifies one grey picture of ``shape``: blocks of 3x3 convolution, batch norm, ReLU and 2x2
    max pooling, the last map flattened (where things lie in the picture counts), dropout, ``hidden`` units, one
    logit per class."""

    def __init__(self, classes: int, shape: tuple[int, int], channels: tuple[int, ...], hidden: int):
        super().__init__()
        blocks, previous = [], 1
        for width in channels:
            blocks += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            previous = width
        self.features = nn.Sequential(*blocks)
        cells = (shape[0] >> len(channels)) * (shape[1] >> len(channels))
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(previous * cells, hidden), nn.ReLU(), nn.Linear(hidden, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def UltrasoundFrameNet(classes: int = 3) -> GreyClassifier:
    """One ultrasound frame (1 x 64 x 64): four blocks of 8, 16, 32 and 32 channels, 32 hidden units (about 32 k
    parameters; SLIDE's network was larger, the task is as small)."""
    return GreyClassifier(classes, ULTRASOUND_FRAME_SHAPE, (8, 16, 32, 32), 32)


def level_class_net(classes: int = 6) -> GreyClassifier:
    """A frontal radiograph's wide window around one body (1 x 96 x 96, ``LEVEL_WINDOW``): four blocks of 16, 32, 64
    and 64 channels, the 6 x 6 map flattened, 64 hidden units, one logit per level class (about 0.2 M parameters)."""
    return GreyClassifier(classes, (LEVEL_WINDOW.size,) * 2, (16, 32, 64, 64), 64)
