"""Train the frontal radiograph network: vertebral body centres and their four corners, T1 to L5.

Data: the AASCE 2019 frontal radiographs (``xray_ap``, :mod:`lumbar.datasets.xray_ap`). Its training part is split
by patient (the number in the name, second copies and films repeated under other names joined to it:
:func:`lumbar.datasets.xray_ap.patient_group`) into training and validation; its test part is never seen here (``bench/
radiograph.py`` measures on it). Images whose landmarks overlap or whose stored angle is above 90 degrees are left
out of training. Each image is letterboxed into ``RADIOGRAPH_SHAPE`` once; every step draws a fresh rotation, scale,
shift and mirror (numpy/scipy, the corners moved with the pixels) and a TorchIO intensity change (gamma, bias field,
blur, noise).

Loss: the penalty-reduced focal loss on the centre channel (CenterNet, Zhou et al. 2019) and L1 on the corner
offsets near each centre, weighted as CenterNet weighs its box sizes (a first run with a quarter of that weight
learnt the centres but hardly the corners). The epoch with the lowest
validation Cobb SMAPE is kept; training stops after ``patience`` epochs without one. A run writes
``checkpoint.pt`` (resume), ``train.log`` and ``radiograph.onnx`` + ``radiograph.json`` (split, figures, command).
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from lumbar.datasets.xray_ap import GROUPING, Radiograph, patient_group, read_image, read_part
from lumbar.errors import InputError
from lumbar.io.write import write_text
from lumbar.labels import FRONTAL_LEVELS
from lumbar.metrics import corner_errors, smape
from lumbar.models.networks import radiograph_net
from lumbar.preprocess import RADIOGRAPH_SHAPE, Letterbox
from lumbar.progress import SILENT, Progress
from lumbar.tasks.cobb import cobb_angles
from lumbar.tasks.corners import decode_in_image, targets
from lumbar.train import EpochLoop, export_image_network, log, log_to

MIRROR = [1, 0, 3, 2]  # a mirrored body's corners: left and right swap


@dataclass
class RadiographConfig:
    data: str  # the xray_ap folder
    out: str
    epochs: int = 60
    batch_size: int = 8
    lr: float = 2e-3
    val_fraction: float = 0.12
    patience: int = 15
    limit: int | None = None  # use only this many training images (smoke tests)
    seed: int = 0
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


@dataclass
class Example:
    """A radiograph letterboxed for the network, its corners in the network's pixels."""

    radiograph: Radiograph
    letterbox: Letterbox
    image: np.ndarray
    corners: np.ndarray


def prepare(radiograph: Radiograph) -> Example:
    box = Letterbox.fit((radiograph.height, radiograph.width))
    return Example(radiograph, box, box.apply(read_image(radiograph)), box.to_box(radiograph.corners))


def split_groups(
    radiographs: list[Radiograph], fraction: float, seed: int, grouping: Callable[[str], str] = patient_group
) -> tuple[list[Radiograph], ...]:
    """Training and validation radiographs, split by patient group (``grouping`` of the image's name: the corrected
    :func:`~lumbar.datasets.xray_ap.patient_group` unless a bench asks for the one an older record was split with)."""
    group = {r.name: grouping(r.name) for r in radiographs}
    groups = sorted(set(group.values()))
    np.random.default_rng(seed).shuffle(groups)
    held = set(groups[: max(1, round(fraction * len(groups)))])
    return [r for r in radiographs if group[r.name] not in held], [r for r in radiographs if group[r.name] in held]


def random_geometry(
    image: np.ndarray, corners: np.ndarray, rng: np.random.Generator, mirror_chance: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate (+-10 deg), scale (0.85-1.15, slightly anisotropic), shift and mirror (``mirror_chance``) about the box
    centre; the corners follow, and a mirrored body's corners swap sides."""
    h, w = image.shape
    angle = np.radians(rng.uniform(-10, 10))
    scale = np.exp(rng.uniform(-0.15, 0.15)) * np.exp(rng.uniform(-0.08, 0.08) * np.array([1.0, -1.0]))
    mirror = rng.random() < mirror_chance
    # forward map (x, y) -> (x', y') = R S F (p - c) + c + t
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    forward = rotation @ np.diag(scale) @ np.diag([-1.0 if mirror else 1.0, 1.0])
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    shift = rng.uniform(-1, 1, 2) * [0.06 * w, 0.04 * h]
    moved = (corners - centre) @ forward.T + centre + shift
    if mirror:
        moved = moved[:, MIRROR]
    inverse = np.linalg.inv(forward)
    # scipy works in (row, col): input = M @ output + offset
    swap = np.array([[0, 1], [1, 0]])
    matrix = swap @ inverse @ swap
    offset = swap @ (centre - inverse @ (centre + shift))
    warped = ndimage.affine_transform(image, matrix, offset, order=1, mode="constant", cval=0.0)
    return warped.astype(np.float32), moved


def intensity_transform():
    import torchio as tio

    return tio.Compose(
        [
            tio.RandomGamma(log_gamma=(-0.4, 0.4), p=0.7),
            tio.RandomBiasField(coefficients=0.4, order=3, p=0.4),
            tio.RandomBlur(std=(0, 1.2, 0, 1.2, 0, 0), p=0.3),
            tio.RandomNoise(std=(0, 0.04), p=0.5),
        ]
    )


def draw_batch(examples: list[Example], n: int, rng: np.random.Generator, intensity) -> tuple[torch.Tensor, ...]:
    """``n`` augmented images with their centre, offset and offset-weight targets."""
    images, heats, offsets, weights = [], [], [], []
    for k in rng.integers(len(examples), size=n):
        example = examples[k]
        image, corners = random_geometry(example.image, example.corners, rng)
        inside = image > 0
        image = intensity(torch.from_numpy(image)[None, :, :, None])[0, :, :, 0].numpy()
        image = np.where(inside, np.clip(image, 0.0, 1.0), 0.0)
        heat, offset, weight = targets(corners, RADIOGRAPH_SHAPE)
        images.append(image)
        heats.append(heat)
        offsets.append(offset)
        weights.append(weight)
    return tuple(torch.from_numpy(np.stack(a)).float() for a in (images, heats, offsets, weights))


OFFSET_WEIGHT = 4.0  # the offsets' L1 (in units of 32 px) against the focal loss: 0.125 per pixel, as CenterNet's 0.1


def focal_loss(logit: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss of a centre channel ``(b, h, w)`` (positives where the target is 1)."""
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    positive = heat.eq(1).float()
    return -(
        positive * (1 - p) ** 2 * torch.log(p) + (1 - positive) * (1 - heat) ** 4 * p**2 * torch.log(1 - p)
    ).sum() / positive.sum().clamp(min=1)


def loss_fn(logits: torch.Tensor, heat: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Focal loss on the centre channel plus L1 on the corner offsets (channels 1-8)."""
    l1 = (F.l1_loss(logits[:, 1:9], offset, reduction="none") * weight[:, None]).sum() / (8 * weight.sum()).clamp(min=1)
    return focal_loss(logits[:, 0], heat) + OFFSET_WEIGHT * l1


def predict(net: torch.nn.Module, examples: list[Example]) -> list[np.ndarray]:
    """Each example's corners found by ``net``, in its radiograph's pixels, top to bottom."""
    net.eval()
    found = []
    with torch.no_grad():
        for example in examples:
            logits = net(torch.from_numpy(example.image)[None, None]).numpy()[0]
            vertebrae = decode_in_image(logits, example.letterbox, max_count=len(FRONTAL_LEVELS))
            found.append(np.array([v.corners for v in vertebrae]).reshape(-1, 4, 2))
    net.train()
    return found


def figures(examples: list[Example], found: list[np.ndarray]) -> dict:
    """Median corner error (pixels, % of the body's height), vertebrae missed, and Cobb SMAPE against the
    dataset's angles."""
    errors, relative, missed, predicted, truth = [], [], 0, [], []
    for example, corners in zip(examples, found):
        r = example.radiograph
        px, pct, lost = corner_errors(r.corners, corners)
        errors += list(px)
        relative += list(pct)
        missed += lost
        predicted.append(cobb_angles(corners, r.height).as_array() if len(corners) >= 2 else np.zeros(3))
        truth.append(r.angles)
    return {
        "n_images": len(examples),
        "corner_error_px_median": float(np.median(errors)) if errors else None,
        "corner_error_pct_height_median": float(np.median(relative)) if relative else None,
        "vertebrae_missed": int(missed),
        "cobb_smape_pct": smape(np.array(truth), np.array(predicted)),
    }


def training_split(
    data: str,
    val_fraction: float,
    seed: int,
    limit: int | None = None,
    grouping: Callable[[str], str] = patient_group,
) -> tuple[list[Radiograph], list[Radiograph]]:
    """The training part's radiographs without doubtful landmarks (overlapping quads, angles above 90 degrees),
    split by patient into training and validation; ``limit`` keeps only that many training films (smoke tests).
    Every frontal network trained on these films shares this split. ``grouping``: see :func:`split_groups` (the
    shipped frontal networks were split with ``xray_ap.legacy_group``: ``xray_ap.grouping_of`` their record)."""
    radiographs = [
        r for r in read_part(Path(data), "training") if not r.faults or r.faults == ("landmark outside the image",)
    ]
    train_set, val_set = split_groups(radiographs, val_fraction, seed, grouping)
    if limit:
        train_set, val_set = train_set[:limit], val_set[: max(2, limit // 4)]
    return train_set, val_set


T = TypeVar("T")


def start_run(
    cfg, load: Callable[[Radiograph], T], progress: Progress
) -> tuple[Path, list[T], list[T], dict[str, list[str]]]:
    """The common start of the frontal networks' training: the run folder ``cfg.out`` (created, logged to), the
    training and validation films of :func:`training_split`, each read by ``load``, and the split's patient groups
    (for the model's record)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_to(out)
    train_set, val_set = training_split(cfg.data, cfg.val_fraction, cfg.seed, cfg.limit)
    progress.stage("reading the radiographs", total=len(train_set) + len(val_set))
    read = []
    for r in train_set + val_set:
        read.append(load(r))
        progress.advance()
    groups = {
        "training": sorted({r.group for r in train_set}),
        "validation": sorted({r.group for r in val_set}),
    }
    keep_split(out, groups)
    return out, read[: len(train_set)], read[len(train_set) :], groups


def keep_split(out: Path, groups: dict[str, list[str]]) -> None:
    """Record the run's split (``split.json``) and refuse to resume a run whose split it would change: a run folder
    from before the grouping of the radiographs was corrected (its checkpoint, and no record of its split), or one
    split otherwise, would go on training with some of its training films among the validation ones."""
    record, split = out / "split.json", {"grouping": GROUPING, **groups}
    if record.is_file() and json.loads(record.read_text()) != split:
        raise InputError(f"{out}: this run was split otherwise than the data now split (split.json); use a new folder")
    if not record.is_file() and (out / "checkpoint.pt").is_file():
        raise InputError(
            f"{out}: a run from before its split was recorded (an earlier grouping of the radiographs): resuming it "
            "would change its split under it; use a new folder"
        )
    write_text(record, json.dumps(split, indent=1))


def train_radiograph(cfg: RadiographConfig, progress: Progress = SILENT) -> Path:
    """Train with validation-SMAPE model selection and early stopping; export ONNX and the record."""
    out, train_examples, val_examples, groups = start_run(cfg, prepare, progress)
    log.info("radiographs: %d training, %d validation", len(train_examples), len(val_examples))
    torch.manual_seed(cfg.seed)
    net = radiograph_net()
    steps_per_epoch = max(1, len(train_examples) // cfg.batch_size)
    intensity = intensity_transform()

    def loss_of(rng: np.random.Generator) -> torch.Tensor:
        image, heat, offset, weight = draw_batch(train_examples, cfg.batch_size, rng, intensity)
        return loss_fn(net(image[:, None]), heat, offset, weight)

    loop = EpochLoop(out, cfg.epochs, steps_per_epoch, cfg.patience, cfg.seed, cfg.lr, key="cobb_smape_pct")
    state = loop.run(
        net, loss_of, lambda: figures(val_examples, predict(net, val_examples)), "radiograph network", progress
    )
    meta = {
        "name": "radiograph",
        "task": "frontal radiograph: vertebral body centres and corners, T1-L5",
        "input_shape": list(RADIOGRAPH_SHAPE),
        "levels": list(FRONTAL_LEVELS),
        "trained_epochs": state["epoch"],
        "trained_steps": state["epoch"] * steps_per_epoch,
        "best_epoch": state["best_epoch"],
        "validation": figures(val_examples, predict(net, val_examples)),
        "history": state["history"],
        "split_groups": groups,
        "grouping": GROUPING,  # the split_groups' grouping: xray_ap.grouping_of
        "data": "AASCE 2019 frontal spine radiographs (Wu et al., MICCAI 2017), training part only",
        "config": asdict(cfg),
    }
    return export_image_network(net, "radiograph", RADIOGRAPH_SHAPE, out, meta)
