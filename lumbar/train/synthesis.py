"""Training images synthesised from label maps, so that the network learns shapes, not one sequence's contrast.

The SynthSeg idea (Billot et al., Med Image Anal 2023): every label of a training slice's label map gets a
random intensity (a Gaussian per label, new for every sample), then the image is blurred, given a bias field,
a gamma curve, a lower resolution along one axis and noise. Discs may come out bright or dark, bone bright with a
dark core (CT-like) or dark, fat bright or dark: no contrast is special, so every sequence and CT look alike to
the network. As in SynthSeg, the label maps carry more labels than the network predicts:

* the background (everything the expert left unlabelled: fat, muscle, organs, the unlabelled sacrum) is split
  into clusters of the real slice's own intensities, so that synthetic images keep its anatomy;
* the vertebra is split into a cortical rim and a trabecular core (bright shell, darker core on CT);
* disc and canal are each split in two by intensity (nucleus and annulus; CSF and cord or roots).

The sampling itself is TorchIO's (``RandomLabelsToImage`` and its intensity and resolution transforms).
"""

from __future__ import annotations

import numpy as np
import torch
import torchio as tio
from scipy import ndimage
from scipy.cluster.vq import kmeans2

from lumbar.labels import Structure

BACKGROUND_CLUSTERS = 6
RIM_PX = 2  # cortical rim width at the model's pixel size (0.75 mm): 1.5 mm

# Extended labels, in this order; 0 stays "outside the image" (padding).
_BACKGROUND = list(range(1, BACKGROUND_CLUSTERS + 1))
DISC_A, DISC_B, RIM, CORE, CANAL_A, CANAL_B = range(BACKGROUND_CLUSTERS + 1, BACKGROUND_CLUSTERS + 7)
N_LABELS = CANAL_B + 1

# The class each extended label stands for.
TO_CLASS = np.zeros(N_LABELS, np.int64)
TO_CLASS[[DISC_A, DISC_B]] = Structure.DISC
TO_CLASS[[RIM, CORE]] = Structure.VERTEBRA
TO_CLASS[[CANAL_A, CANAL_B]] = Structure.CANAL


def _clusters(values: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster index (0 = darkest) of each value, by k-means on intensity."""
    if len(values) < k or np.ptp(values) == 0:
        return np.zeros(len(values), np.int64)
    centroids, assigned = kmeans2(values.astype(np.float64)[:, None], k, minit="++", seed=seed)
    rank = np.argsort(np.argsort(centroids[:, 0]))
    return rank[assigned]


def extended_labels(image: np.ndarray, mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """The label map to synthesise from: the expert's classes split into sub-labels (see the module doc)."""
    out = np.zeros(mask.shape, np.uint8)
    background = mask == Structure.BACKGROUND
    smooth = ndimage.median_filter(image, size=3)  # clusters as regions, not salt and pepper
    out[background] = 1 + _clusters(smooth[background], BACKGROUND_CLUSTERS, seed)
    for structure, (low, high) in ((Structure.DISC, (DISC_A, DISC_B)), (Structure.CANAL, (CANAL_A, CANAL_B))):
        inside = mask == structure
        out[inside] = np.where(_clusters(smooth[inside], 2, seed) == 0, low, high)
    bone = mask == Structure.VERTEBRA
    core = ndimage.binary_erosion(bone, iterations=RIM_PX)
    out[bone & ~core] = RIM
    out[core] = CORE
    return out


def synthesiser() -> tio.Transform:
    """One random image per call from ``Subject(label=LabelMap)``, intensities in [0, 1]."""
    return tio.Compose(
        [
            tio.RandomLabelsToImage(
                label_key="label", image_key="image", default_mean=(0.0, 1.0), default_std=(0, 0.1)
            ),
            tio.RandomBlur(std=(0.0, 1.0)),
            tio.RandomBiasField(coefficients=0.5, p=0.7),
            tio.RandomGamma(log_gamma=(-0.5, 0.5), p=0.7),
            tio.RandomAnisotropy(axes=(0, 1), downsampling=(1.5, 4.0), p=0.3),
            tio.RandomNoise(std=(0.0, 0.06), p=0.7),
            tio.RescaleIntensity(out_min_max=(0.0, 1.0), percentiles=(0.5, 99.5)),
        ]
    )


def synthesise(labels: torch.Tensor, transform: tio.Transform) -> torch.Tensor:
    """Images ``(B,1,H,W)`` synthesised from extended label maps ``labels (B,H,W)``."""
    images = []
    for label in labels.cpu():
        subject = tio.Subject(label=tio.LabelMap(tensor=label[None, :, :, None]))
        images.append(transform(subject)["image"].data[:, :, :, 0])
    return torch.stack(images).to(labels.device, torch.float32)
