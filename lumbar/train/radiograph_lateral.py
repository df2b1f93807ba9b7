"""Train the lateral radiograph network on synthetic lateral films: each body's centre and corners, and S1's centre.

Data: anatomies from SPIDER's mid-sagittal MRI (:mod:`lumbar.train.lateral_drr`, cached in ``out/anatomies``), split
by patient into training, validation (model selection) and test (never used here: ``bench/radiograph_lateral.py``
measures on it). Every step renders fresh films: a random field of view (from the thoracic spine or from L1 down to
the sacrum or below it), collimation, a rotation, scale and shift, and TorchIO's intensity changes. The patient
always faces left: a film facing right is mirrored by the pipeline, which reads both ways and keeps the stronger.

Loss: the frontal network's (focal loss on body centres, L1 on the corner offsets) plus half a focal loss on S1's
centre.
The epoch with the lowest capped corner error on the validation films is kept (:func:`figures`); training stops
after ``patience`` epochs without one. A run writes ``checkpoint.pt`` (resume), ``train.log`` and
``radiograph_lateral.onnx`` + ``.json``.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from lumbar.metrics import corner_errors
from lumbar.models.networks import radiograph_net
from lumbar.preprocess import LATERAL_OUTPUTS, LATERAL_SHAPE, Letterbox
from lumbar.progress import SILENT, Progress
from lumbar.tasks.corners import decode, targets
from lumbar.train import EpochLoop, export_image_network, log, log_to
from lumbar.train.lateral_drr import PIXEL_MM, Anatomy, build_anatomies, render
from lumbar.train.radiograph import focal_loss, intensity_transform, loss_fn, random_geometry

SPREAD = 0.1  # the centre target's Gaussian width, as a share of the body's height
MAX_BODIES = 12  # T8 ... S1 at most in a lumbar film's height


@dataclass
class LateralConfig:
    data: str  # the SPIDER folder
    out: str
    epochs: int = 40
    steps_per_epoch: int = 60
    batch_size: int = 8
    lr: float = 2e-3
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    val_films: int = 3  # rendered per validation anatomy, the same every epoch
    patience: int = 12
    s1_weight: float = 0.5  # S1's focal loss against the bodies' (one positive a film: it would dominate)
    limit: int | None = None  # use only this many anatomies (smoke tests)
    seed: int = 0
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


@dataclass
class Film:
    """A synthetic lateral film letterboxed for the network, its bodies' corners and S1's centre in its pixels."""

    image: np.ndarray
    corners: np.ndarray
    s1: np.ndarray | None
    letterbox: Letterbox
    truth_mm_per_px: float


def split_patients(patients: list[str], cfg: LateralConfig) -> tuple[set[str], set[str], set[str]]:
    """(training, validation, test) patients: a seeded shuffle, the test share first."""
    order = sorted(set(patients))
    np.random.default_rng(cfg.seed).shuffle(order)
    n_test, n_val = round(cfg.test_fraction * len(order)), max(1, round(cfg.val_fraction * len(order)))
    return set(order[n_test + n_val :]), set(order[n_test : n_test + n_val]), set(order[:n_test])


def field_of_view(image: np.ndarray, corners: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A lumbar film's field of view: from somewhere between the top of the picture and L1 down to S1 or beyond,
    with random side margins, and a collimator's edge darkening a border now and then."""
    h, w = image.shape
    tops, bottoms = corners[:, :, 1].min(1), corners[:, :, 1].max(1)
    first_lumbar = max(0, len(corners) - 6)  # L1 in a column ending L5, S1
    r0 = int(rng.uniform(0, max(1.0, tops[first_lumbar])))
    r1 = int(rng.uniform(min(bottoms[-1] - 0.3 * (bottoms[-1] - tops[-1]), h - 1), h)) + 1
    c0, c1 = int(rng.uniform(0, 0.15) * w), w - int(rng.uniform(0, 0.15) * w)
    crop = image[r0:r1, c0:c1].copy()
    if rng.random() < 0.3:  # collimation: a dark band along one edge
        side, depth = rng.integers(4), int(rng.uniform(0.03, 0.1) * min(crop.shape))
        view = [crop[:depth], crop[-depth:], crop[:, :depth], crop[:, -depth:]][side]
        view[...] = crop.min()
    return crop, corners - [c0, r0]


def in_view(corners: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which bodies (top to bottom, S1 last) a film of ``shape`` shows: all four corners inside it; S1 while its
    superior endplate is (its inferior pair is a definition, not a landmark)."""
    within = (corners >= 0) & (corners < np.array(shape[::-1]) - 1)
    inside = within.all(axis=(1, 2))
    inside[-1] = within[-1, :2].all()
    return inside


def make_film(anatomy: Anatomy, rng: np.random.Generator, intensity=None, augment: bool = True) -> Film:
    """One rendered, cropped, letterboxed film; only bodies wholly inside it keep their corners."""
    image, corners = field_of_view(render(anatomy, rng), anatomy.corners, rng)
    if augment:
        image = image - image.min()
        image, corners = random_geometry(image, corners, rng, mirror_chance=0.0)
    box = Letterbox.fit(image.shape, LATERAL_SHAPE)
    picture = box.apply(image, LATERAL_SHAPE)
    if intensity is not None:
        inside = picture > 0
        picture = intensity(torch.from_numpy(picture)[None, :, :, None])[0, :, :, 0].numpy()
        picture = np.where(inside, np.clip(picture, 0.0, 1.0), 0.0).astype(np.float32)
    inside = in_view(corners, image.shape)
    s1 = box.to_box(corners[-1].mean(0)) if inside[-1] else None
    return Film(picture, box.to_box(corners[inside]), s1, box, PIXEL_MM / box.scale[0])


def _batch(films: list[Film]) -> tuple[torch.Tensor, ...]:
    images, heats, offsets, weights, s1s = [], [], [], [], []
    for film in films:
        heat, offset, weight = targets(film.corners, LATERAL_SHAPE, spread=SPREAD)
        s1 = np.zeros(LATERAL_SHAPE, np.float32)
        if film.s1 is not None:
            s1 = targets(film.corners[-1:], LATERAL_SHAPE, spread=SPREAD)[0]
        images.append(film.image)
        heats.append(heat)
        offsets.append(offset)
        weights.append(weight)
        s1s.append(s1)
    return tuple(torch.from_numpy(np.stack(a)).float() for a in (images, heats, offsets, weights, s1s))


def predict(net: torch.nn.Module, films: list[Film]) -> list[np.ndarray]:
    """Each film's bodies found by ``net``: corners in the film's network pixels."""
    net.eval()
    found = []
    with torch.no_grad():
        for film in films:
            logits = net(torch.from_numpy(film.image)[None, None]).numpy()[0]
            bodies = decode(logits[:9], MAX_BODIES, reorder=False)
            found.append(np.array([v.corners for v in bodies]).reshape(-1, 4, 2))
    net.train()
    return found


CAP_MM = 10.0  # model selection: a corner's error counts up to this much, a missed body's four corners this much


def figures(films: list[Film], found: list[np.ndarray]) -> dict:
    """Median corner error in mm and in % of the body's height, bodies missed, and the selection score: the mean
    corner error capped at ``CAP_MM``, a missed body's corners counted at the cap (so that finding few bodies well
    does not beat finding all of them)."""
    errors_mm, relative, missed, total = [], [], 0, 0
    for film, corners in zip(films, found):
        px, pct, lost = corner_errors(film.corners, corners)
        errors_mm += list(px * film.truth_mm_per_px)
        relative += list(pct)
        missed += lost
        total += len(film.corners)
    capped = np.minimum(errors_mm, CAP_MM).sum() + 4 * CAP_MM * missed
    return {
        "films": len(films),
        "bodies": total,
        "corner_error_mm_median": float(np.median(errors_mm)) if errors_mm else None,
        "corner_error_pct_height_median": float(np.median(relative)) if relative else None,
        "bodies_missed": int(missed),
        "capped_error_mm": float(capped / max(4 * total, 1)),
    }


def train_lateral(cfg: LateralConfig, progress: Progress = SILENT) -> Path:
    """Train with validation model selection and early stopping; export ONNX and the record."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_to(out)
    if (Path(cfg.data) / "midsag").is_dir():
        build_anatomies(Path(cfg.data), out / "anatomies", progress)
    anatomies = [Anatomy.load(p) for p in sorted((out / "anatomies").glob("*.npz"))[: cfg.limit]]
    train_p, val_p, test_p = split_patients([a.patient for a in anatomies], cfg)
    train_set = [a for a in anatomies if a.patient in train_p]
    val_set = [a for a in anatomies if a.patient in val_p]
    n_test = len(anatomies) - len(train_set) - len(val_set)
    log.info("anatomies: %d training, %d validation, %d test", len(train_set), len(val_set), n_test)
    val_rng = np.random.default_rng(cfg.seed + 7)
    val_films = [make_film(a, val_rng, augment=False) for a in val_set for _ in range(cfg.val_films)]
    torch.manual_seed(cfg.seed)
    net = radiograph_net(outputs=LATERAL_OUTPUTS)
    intensity = intensity_transform()

    def loss_of(rng: np.random.Generator) -> torch.Tensor:
        films = [make_film(train_set[k], rng, intensity) for k in rng.integers(len(train_set), size=cfg.batch_size)]
        image, heat, offset, weight, s1 = _batch(films)
        logits = net(image[:, None])
        return loss_fn(logits, heat, offset, weight) + cfg.s1_weight * focal_loss(logits[:, 9], s1)

    loop = EpochLoop(out, cfg.epochs, cfg.steps_per_epoch, cfg.patience, cfg.seed, cfg.lr, key="capped_error_mm")
    state = loop.run(
        net, loss_of, lambda: figures(val_films, predict(net, val_films)), "lateral radiograph network", progress
    )
    meta = {
        "name": "radiograph_lateral",
        "task": "lateral radiograph: vertebral body centres and corners, and S1's centre",
        "input_shape": list(LATERAL_SHAPE),
        "trained_epochs": state["epoch"],
        "trained_steps": state["epoch"] * cfg.steps_per_epoch,
        "best_epoch": state["best_epoch"],
        "validation": figures(val_films, predict(net, val_films)),
        "history": state["history"],
        "split_patients": {"training": sorted(train_p), "validation": sorted(val_p), "test": sorted(test_p)},
        "data": "synthetic lateral films from SPIDER mid-sagittal MRI label maps (lumbar/train/lateral_drr.py)",
        "config": asdict(cfg),
    }
    return export_image_network(net, "radiograph_lateral", LATERAL_SHAPE, out, meta)
