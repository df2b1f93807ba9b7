"""Train the frontal radiograph's corner network: each body's four corners placed again in its own window.

Data and split as the frontal network's (:mod:`lumbar.train.radiograph`: the AASCE 2019 training part, split by
patient with the same seed, so its validation patients are this network's too; the test part is never read).
Every step draws windows (:mod:`lumbar.tasks.body_frames`) around the expert's bodies as the frontal network would
place them: the centre moved by up to a third of a step, the tilt by a few degrees, the scale by up to 12%, one window
in two flipped left to right; then a TorchIO intensity change.

A 2D U-Net (MONAI) gives one heatmap per corner; loss: L1 between the soft-argmax point and the expert's corner
(window pixels) plus the cross-entropy of the heatmap's softmax against a Gaussian at the corner. Selection is end
to end on the validation films: the shipped frontal network finds the bodies, the network being trained places
their corners again, and the epoch with the lowest median corner error is kept. A run writes ``checkpoint.pt``
(resume), ``train.log`` and ``radiograph_corners.onnx`` + ``.json`` (split, figures, command).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lumbar.datasets.xray_ap import GROUPING, Radiograph, read_image
from lumbar.metrics import corner_errors
from lumbar.models.networks import corner_heatmap_net
from lumbar.preprocess import CORNER_WINDOW, normalize_intensity
from lumbar.progress import SILENT, Progress
from lumbar.tasks.body_frames import MIRRORED_CORNERS, body_angle, frame, refine_corners, spine_step
from lumbar.tasks.corners import FoundVertebra
from lumbar.train import EpochLoop, export_image_network, log
from lumbar.train.radiograph import intensity_transform, start_run

CENTRE_JITTER, MAX_JITTER = 0.1, 0.33  # of a step: about as far as the frontal network's centres fall off
ANGLE_JITTER_DEG = 4.0
SCALE_JITTER = 0.12
HEATMAP_SIGMA = 2.0  # window pixels: the Gaussian the heatmaps are pulled towards


@dataclass
class CornerConfig:
    data: str  # the xray_ap folder
    out: str
    epochs: int = 30
    steps_per_epoch: int = 200
    batch_size: int = 32
    lr: float = 2e-3
    val_fraction: float = 0.12  # as the frontal network's split: the same validation patients
    patience: int = 8
    limit: int | None = None  # use only this many training films (smoke tests)
    seed: int = 0
    channels: tuple[int, ...] = (24, 48, 96, 192)  # the U-Net's widths per level (the shipped network's)
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


@dataclass
class Film:
    """A radiograph's grey values scaled to [0, 1] (as the pipeline scales a film) and its expert corners."""

    radiograph: Radiograph
    pixels: np.ndarray

    @property
    def corners(self) -> np.ndarray:
        return self.radiograph.corners

    @property
    def step(self) -> float:
        return spine_step(self.corners.mean(1))


def load_film(radiograph: Radiograph) -> Film:
    return Film(radiograph, normalize_intensity(read_image(radiograph)))


def corner_example(film: Film, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A window on body ``k`` placed as the frontal network might place it, and the body's four corners in the
    window's pixels (the window flipped one time in two, its corners swapped to match)."""
    quad = film.corners[k]
    shift = np.clip(rng.normal(0, CENTRE_JITTER, 2), -MAX_JITTER, MAX_JITTER) * film.step
    turn = np.radians(rng.normal(0, ANGLE_JITTER_DEG))
    scale = np.exp(rng.uniform(-SCALE_JITTER, SCALE_JITTER))
    f = frame(quad.mean(0) + shift, body_angle(quad) + turn, film.step * scale, CORNER_WINDOW)
    window, points = f.sample(film.pixels), f.to_window(quad)
    if rng.random() < 0.5:
        window = window[:, ::-1]
        points = points[MIRRORED_CORNERS] * [-1.0, 1.0] + [f.size - 1.0, 0.0]
    return window, points


def vary_intensity(window: np.ndarray, intensity) -> np.ndarray:
    """A film window after a TorchIO ``intensity`` change inside the film, clipped to [0, 1]; beyond it stays 0."""
    changed = intensity(torch.from_numpy(np.ascontiguousarray(window))[None, :, :, None])[0, :, :, 0].numpy()
    return np.where(window > 0, np.clip(changed, 0.0, 1.0), 0.0)


def numpy_network(net: torch.nn.Module):
    """``net`` as the pipeline calls an ONNX model: a numpy batch in, numpy logits out, without gradients."""

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(np.ascontiguousarray(batch, np.float32))).numpy()

    return run


def draw_batch(films: list[Film], n: int, rng: np.random.Generator, intensity) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` windows ``(n, 1, size, size)`` on random bodies of random films (TorchIO intensity changes inside the
    film) and their corners ``(n, 4, 2)``."""
    windows, targets = [], []
    for f in rng.integers(len(films), size=n):
        film = films[f]
        window, points = corner_example(film, int(rng.integers(len(film.corners))), rng)
        windows.append(vary_intensity(window, intensity))
        targets.append(points)
    return torch.from_numpy(np.stack(windows)[:, None].astype(np.float32)), torch.tensor(np.array(targets)).float()


def heatmap_loss(logits: torch.Tensor, points: torch.Tensor, sigma: float = HEATMAP_SIGMA) -> torch.Tensor:
    """L1 (window pixels) between each heatmap's soft-argmax and its point ``(b, k, 2)`` [x, y], plus the
    cross-entropy of the heatmap's softmax against a Gaussian of ``sigma`` pixels at the point."""
    b, k, h, w = logits.shape
    log_p = F.log_softmax(logits.reshape(b, k, -1), -1)
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    grid = torch.stack([u.reshape(-1), v.reshape(-1)], -1)  # (h*w, 2)
    expected = log_p.exp() @ grid
    l1 = (expected - points).abs().mean()
    distance2 = ((grid[None, None] - points[:, :, None]) ** 2).sum(-1)
    target = torch.softmax(-distance2 / (2 * sigma**2), -1)
    return l1 + -(target * log_p).sum(-1).mean()


def validate(net: torch.nn.Module, films: list[Film], found: list[list[FoundVertebra]]) -> dict:
    """End to end on the validation films: the frontal network's bodies (``found``), their corners placed again by
    ``net``; median corner error (pixels, % of the body's height) and bodies missed."""
    net.eval()
    run = numpy_network(net)
    errors, relative, missed = [], [], 0
    for film, bodies in zip(films, found):
        px, pct, lost = corner_errors(film.corners, refine_corners(film.pixels, bodies, run))
        errors += list(px)
        relative += list(pct)
        missed += lost
    net.train()
    return {
        "n_images": len(films),
        "corner_error_px_median": float(np.median(errors)),
        "corner_error_pct_height_median": float(np.median(relative)),
        "vertebrae_missed": int(missed),
    }


def train_corners(cfg: CornerConfig, progress: Progress = SILENT) -> Path:
    """Train the corner network with end-to-end validation selection and early stopping; export ONNX."""
    from lumbar.pipelines.xr_frontal import find_vertebrae

    out, train_films, val_films, groups = start_run(cfg, load_film, progress)
    found = [find_vertebrae(read_image(f.radiograph)) for f in val_films]
    log.info("films: %d training, %d validation", len(train_films), len(val_films))
    torch.manual_seed(cfg.seed)
    net = corner_heatmap_net(tuple(cfg.channels))
    intensity = intensity_transform()

    def loss_of(rng: np.random.Generator) -> torch.Tensor:
        windows, points = draw_batch(train_films, cfg.batch_size, rng, intensity)
        return heatmap_loss(net(windows), points)

    loop = EpochLoop(out, cfg.epochs, cfg.steps_per_epoch, cfg.patience, cfg.seed, cfg.lr, key="corner_error_px_median")
    state = loop.run(net, loss_of, lambda: validate(net, val_films, found), "corner network", progress)
    meta = {
        "name": "radiograph_corners",
        "task": "frontal radiograph, second look: each body's four corners as heatmaps in its own window",
        "window": {"size": CORNER_WINDOW.size, "step_px": CORNER_WINDOW.step_px},
        "trained_epochs": state["epoch"],
        "trained_steps": state["epoch"] * cfg.steps_per_epoch,
        "best_epoch": state["best_epoch"],
        "validation": validate(net, val_films, found),
        "history": state["history"],
        "split_groups": groups,
        "grouping": GROUPING,  # the split_groups' grouping: xray_ap.grouping_of
        "data": "AASCE 2019 frontal spine radiographs (Wu et al., MICCAI 2017), training part only",
        "config": asdict(cfg),
    }
    return export_image_network(net, "radiograph_corners", (CORNER_WINDOW.size,) * 2, out, meta)
