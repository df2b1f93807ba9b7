"""Train the frontal radiograph's level network: what each candidate body is (above T1, T1, between, L5, below L5,
or no body), read in a wide window around it (:mod:`lumbar.tasks.frontal_levels`).

Data and split as the frontal network's (:mod:`lumbar.train.radiograph`: the AASCE 2019 training part, split by
patient with the same seed; the test part is never read). The candidates are the shipped frontal network's peaks on
each film (``xr_frontal.find_candidates``, as the pipeline finds them), each labelled by the expert's corners
(:func:`candidate_classes`): the expert body within half a body's height gives its level, and an unmatched candidate
is above the spine beyond T1, below it beyond L5, or no body; weaker second peaks on a body and peaks too near a body
to call no body are left out. As the
frontal network saw these films in its training, it finds fewer cervical bodies, sacral segments and stray peaks
on them than on a new film; so half of each batch are windows placed by the expert's corners, the six classes drawn
evenly: on a body T1-L5; one to three of the spine's steps beyond T1 or L5 along the spine (C7 ... C5, S1, S2), where
a new film's extra peaks lie; or off the bodies (on a disc, half a step along the spine, or beside the column, where
ribs and pedicles give stray peaks). Every window is moved (a body's by up to a quarter of a step, a non-body's by a
tenth), turned a few degrees, scaled by up to 20% and flipped one time in two, then given a TorchIO intensity
change.

Loss: cross-entropy. Selection is end to end on the validation films: the shipped frontal network's candidates,
named by :func:`lumbar.tasks.frontal_levels.name_candidates` with the network being trained; the epoch naming the
most bodies right is kept. A run writes ``checkpoint.pt`` (resume), ``train.log`` and ``radiograph_levels.onnx`` +
``.json`` (split, figures, command).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lumbar.datasets.xray_ap import GROUPING, Radiograph, read_image
from lumbar.labels import FRONTAL_LEVELS
from lumbar.models.networks import level_class_net
from lumbar.preprocess import LEVEL_WINDOW, normalize_intensity
from lumbar.progress import SILENT, Progress
from lumbar.tasks.body_frames import body_angle, frame, spine_step
from lumbar.tasks.cobb import side_heights
from lumbar.tasks.corners import FoundVertebra
from lumbar.tasks.frontal_levels import (
    ABOVE,
    BELOW,
    LEVEL_CLASSES,
    NONE,
    candidate_step,
    level_class,
    name_candidates,
)
from lumbar.train import EpochLoop, export_image_network, log
from lumbar.train.radiograph import intensity_transform, start_run
from lumbar.train.radiograph_corners import CornerConfig, Film, numpy_network, vary_intensity

CENTRE_JITTER, MAX_JITTER = 0.1, 0.25  # of a step: a body's window stays nearer its body than a disc's (0.4)
ANGLE_JITTER_DEG = 4.0
SCALE_JITTER = 0.2
PLACED_SHARE = 0.5  # of a batch: windows placed by the expert's corners rather than on the network's candidates
BEYOND_STEPS = (1, 2, 3)  # how far beyond T1 or L5 (in steps along the spine) a placed window above or below lies
OFF_COLUMN_STEPS = (0.8, 2.5)  # how far beside a body (in steps) a placed window of no body lies: ribs, pedicles


@dataclass
class LevelConfig(CornerConfig):
    """As the corner network's (the same films, split and schedule), with its own batch: 64 windows, 150 a epoch."""

    steps_per_epoch: int = 150
    batch_size: int = 64


@dataclass
class LevelFilm(Film):
    """A film (grey values in [0, 1], expert corners) with the frontal network's candidates on it and their classes."""

    candidates: list[FoundVertebra]
    classes: np.ndarray


UNLABELLED = -1  # a candidate left out of training: a second peak on a body, or one too near a body to call no body


def candidate_classes(truth: np.ndarray, candidates: list[FoundVertebra]) -> np.ndarray:
    """Each candidate's class against the expert's corners ``truth`` (17, 4, 2), T1 first: the level of the expert
    body within half a body's height (the strongest candidate on it); an unmatched candidate beyond T1's centre along
    the spine and within a step of its line is above the spine, beyond L5's likewise below it, and one at least half a
    step from every body otherwise no body. Left out (``UNLABELLED``): weaker peaks on a body, and unmatched ones
    nearer than half a step to a body, as their windows look like a body's window moved a little."""
    if not candidates:
        return np.zeros(0, int)
    centres = truth.mean(1)
    half = float(np.median(side_heights(truth))) / 2
    step = spine_step(centres)
    ours = np.array([c.centre for c in candidates], np.float64)
    distance = np.linalg.norm(ours[:, None] - centres[None], axis=2)
    nearest = distance.argmin(1)
    gap = distance[np.arange(len(ours)), nearest]
    classes = np.full(len(ours), UNLABELLED)
    taken: set[int] = set()
    for i in np.argsort([-c.score for c in candidates], kind="stable"):
        if gap[i] <= half:
            if nearest[i] not in taken:
                classes[i] = level_class(int(nearest[i]))
                taken.add(int(nearest[i]))
        elif beyond(ours[i], centres[0], centres[1], step):
            classes[i] = ABOVE
        elif beyond(ours[i], centres[-1], centres[-2], step):
            classes[i] = BELOW
        elif gap[i] >= step / 2:
            classes[i] = NONE
    return classes


def beyond(point: np.ndarray, end: np.ndarray, inner: np.ndarray, step: float) -> bool:
    """Whether ``point`` lies past the spine's ``end`` body, seen from its neighbour ``inner``, and within a step of
    the line through the two."""
    axis = (end - inner) / max(float(np.linalg.norm(end - inner)), 1e-9)
    offset = point - end
    return bool(offset @ axis > 0 and abs(offset @ np.array([-axis[1], axis[0]])) <= step)


def placed_point(corners: np.ndarray, wanted: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A centre and tilt for a window of class ``wanted`` placed by the expert's corners (17, 4, 2): on a body of
    that class; one to three steps along the spine beyond T1 (above) or L5 (below), with T1's or L5's tilt; or, for
    no body, off a body: half a step along the spine (on a disc) or ``OFF_COLUMN_STEPS`` beside it."""
    centres = corners.mean(1)
    if wanted == NONE:
        k = int(rng.integers(len(centres)))
        along = centres[min(k + 1, len(centres) - 1)] - centres[max(k - 1, 0)]
        along /= max(float(np.linalg.norm(along)), 1e-9)
        step = spine_step(centres)
        if rng.random() < 0.5:
            return centres[k] + rng.choice([-0.5, 0.5]) * step * along, body_angle(corners[k])
        beside = np.array([-along[1], along[0]]) * rng.choice([-1.0, 1.0]) * rng.uniform(*OFF_COLUMN_STEPS) * step
        return centres[k] + beside, body_angle(corners[k])
    if wanted == ABOVE:
        return centres[0] + rng.choice(BEYOND_STEPS) * (centres[0] - centres[1]), body_angle(corners[0])
    if wanted == BELOW:
        return centres[-1] + rng.choice(BEYOND_STEPS) * (centres[-1] - centres[-2]), body_angle(corners[-1])
    levels = [k for k in range(len(FRONTAL_LEVELS)) if level_class(k) == wanted]
    k = int(rng.choice(levels))
    return centres[k], body_angle(corners[k])


def level_example(film: LevelFilm, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One window and its class: on a random labelled candidate of ``film`` (scaled by the step the pipeline takes,
    :func:`candidate_step`) or, ``PLACED_SHARE`` of the time, placed by the expert's corners with a class drawn
    evenly from the six (scaled by the expert's step)."""
    labelled = np.flatnonzero(film.classes != UNLABELLED)
    step = candidate_step(film.candidates)
    if rng.random() < PLACED_SHARE or not len(labelled) or not step > 0:
        wanted = int(rng.integers(len(LEVEL_CLASSES)))  # every class evenly
        centre, angle = placed_point(film.corners, wanted, rng)
        step = film.step
    else:
        k = int(rng.choice(labelled))
        wanted = int(film.classes[k])
        centre, angle = film.candidates[k].centre, body_angle(film.candidates[k].corners)
    reach = CENTRE_JITTER if wanted == NONE else MAX_JITTER  # a placed non-body stays off the bodies
    shift = np.clip(rng.normal(0, CENTRE_JITTER, 2), -reach, reach) * step
    turn = np.radians(rng.normal(0, ANGLE_JITTER_DEG))
    scale = np.exp(rng.uniform(-SCALE_JITTER, SCALE_JITTER))
    window = frame(np.asarray(centre) + shift, angle + turn, step * scale, LEVEL_WINDOW).sample(film.pixels)
    return (window[:, ::-1] if rng.random() < 0.5 else window), wanted


def draw_batch(
    films: list[LevelFilm], n: int, rng: np.random.Generator, intensity
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` windows ``(n, 1, size, size)`` from random films (TorchIO intensity changes inside the film) and their
    classes."""
    windows, classes = [], []
    for f in rng.integers(len(films), size=n):
        window, wanted = level_example(films[f], rng)
        windows.append(vary_intensity(window, intensity))
        classes.append(wanted)
    return torch.from_numpy(np.stack(windows)[:, None].astype(np.float32)), torch.tensor(classes)


def named_right(truth: np.ndarray, bodies: list[FoundVertebra], names: list[str]) -> int:
    """How many of the named ``bodies`` lie within half a body's height of the expert's body of their name."""
    centres = truth.mean(1)
    half = float(np.median(side_heights(truth))) / 2
    return sum(
        float(np.linalg.norm(body.centre - centres[FRONTAL_LEVELS.index(name)])) <= half
        for body, name in zip(bodies, names)
    )


def relative_steps(radiographs: list[Radiograph]) -> list[float]:
    """Each level's step to the next (T1-T2 ... L4-L5) over the film's median step, the median over the films: the
    bodies grow down the spine (about 0.7 at T1-T2, 1.3 at L4-L5), so a chain's steps are judged level by level."""
    ratios = []
    for r in radiographs:
        steps = np.linalg.norm(np.diff(r.corners.mean(1), axis=0), axis=1)
        ratios.append(steps / np.median(steps))
    return [round(float(v), 4) for v in np.median(ratios, axis=0)]


def validate(net: torch.nn.Module, films: list[LevelFilm], steps: list[float] | None = None) -> dict:
    """End to end on the validation films: the frontal network's candidates named by ``net`` (their steps held to
    ``steps``); bodies the expert labels that are not named right (missed or misnamed), bodies named right, and films
    named right throughout."""
    net.eval()
    run = numpy_network(net)
    right, whole = 0, 0
    for film in films:
        bodies, names = name_candidates(film.pixels, film.candidates, run, steps)
        n = named_right(film.corners, bodies, names)
        right += n
        whole += n == len(FRONTAL_LEVELS) == len(names)
    net.train()
    return {
        "n_images": len(films),
        "bodies_not_named_right": len(films) * len(FRONTAL_LEVELS) - right,
        "bodies_named_right": right,
        "films_named_right": whole,
    }


def load_film(radiograph: Radiograph) -> LevelFilm:
    """A film, its shipped frontal network's candidates and their classes against the expert."""
    from lumbar.pipelines.xr_frontal import find_candidates

    grey = read_image(radiograph)
    candidates = find_candidates(grey)
    return LevelFilm(
        radiograph, normalize_intensity(grey), candidates, candidate_classes(radiograph.corners, candidates)
    )


def train_levels(cfg: LevelConfig, progress: Progress = SILENT) -> Path:
    """Train the level network with end-to-end validation selection and early stopping; export ONNX."""
    out, train_films, val_films, groups = start_run(cfg, load_film, progress)
    labels = np.concatenate([f.classes for f in train_films])
    counts = np.bincount(labels[labels != UNLABELLED], minlength=len(LEVEL_CLASSES))
    log.info(
        "films: %d training, %d validation; training candidates by class: %s, left out %d",
        len(train_films),
        len(val_films),
        dict(zip(LEVEL_CLASSES, counts.tolist())),
        int((labels == UNLABELLED).sum()),
    )
    steps = relative_steps([f.radiograph for f in train_films])
    torch.manual_seed(cfg.seed)
    net = level_class_net(len(LEVEL_CLASSES))
    intensity = intensity_transform()

    def loss_of(rng: np.random.Generator) -> torch.Tensor:
        windows, classes = draw_batch(train_films, cfg.batch_size, rng, intensity)
        return F.cross_entropy(net(windows), classes)

    loop = EpochLoop(out, cfg.epochs, cfg.steps_per_epoch, cfg.patience, cfg.seed, cfg.lr, key="bodies_not_named_right")
    state = loop.run(net, loss_of, lambda: validate(net, val_films, steps), "level network", progress)
    meta = {
        "name": "radiograph_levels",
        "task": "frontal radiograph: what each candidate body is (above T1, T1, between, L5, below L5, no body)",
        "classes": list(LEVEL_CLASSES),
        "window": {"size": LEVEL_WINDOW.size, "step_px": LEVEL_WINDOW.step_px},
        "trained_epochs": state["epoch"],
        "trained_steps": state["epoch"] * cfg.steps_per_epoch,
        "best_epoch": state["best_epoch"],
        "validation": validate(net, val_films, steps),
        "relative_steps": steps,
        "history": state["history"],
        "split_groups": groups,
        "grouping": GROUPING,  # the split_groups' grouping: xray_ap.grouping_of
        "data": "AASCE 2019 frontal spine radiographs (Wu et al., MICCAI 2017), training part only",
        "config": asdict(cfg),
    }
    return export_image_network(net, "radiograph_levels", (LEVEL_WINDOW.size,) * 2, out, meta)
