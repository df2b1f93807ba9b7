"""Simulated lateral flexion–extension fluoroscopy: the vertebra tracker's training and test sequences.

No fluoroscopy exists here, so sequences are made from the SPIDER anatomies of :mod:`lumbar.train.lateral_drr`.
Each vertebra moves rigidly: the bone layers (body, trabecular bone, posterior elements) are split among the bodies
(each pixel to the body nearest along the spine's axis, so posterior elements go with the body at their height),
and each level bends by an intervertebral angle that grows smoothly from extension to flexion (a few degrees a
level, 10–30° over L1–S1, as in flexion–extension radiographs: Wong et al. 2004), about the middle of its disc, so
that every body carries the motion of the bodies below it; the sacrum turns by at most 2° (the pelvis nearly still).
Discs follow the mean of their two neighbours' motion; soft tissue stays still. Every frame is rendered with the
sequence's own patient (widths, attenuations, overlapping iliac wing, ribs and gas: one random draw for the
sequence) but its own quantum noise at a fluoroscope's lower dose, which drifts slowly (the exposure control), and
a slowly drifting brightness; the frames are cropped around L1–S1 and resampled to ``FRAME_PX`` square. The truth is
each body's rotated box, from its four moved corners.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lumbar.tasks.tracking import RotatedBox
from lumbar.train.lateral_drr import PIXEL_MM, Anatomy, render

FRAME_PX = 256
BONE_LAYERS = ("body", "trabecular", "posterior")
SACRAL_LAYERS = ("sacrum", "sacrum_inner")
LEVEL_RANGE_DEG = (1.0, 3.0)  # half of a level's flexion–extension range: 2–6° a level, 10–30° over L1–S1
PELVIS_RANGE_DEG = 2.0
DOSE_FRACTION = (0.02, 0.1)  # a fluoroscopy frame's photons against a radiograph's
FIELD_MARGIN = 1.3  # the field's side against L1–S1's extent


@dataclass
class FluoroSequence:
    """A simulated sequence: frames (n, h, w), every body's truth box per frame (n, bodies, 5: cx, cy, width,
    height, angle_deg), the bodies' names top to bottom, the frames' pixel size and the patient."""

    frames: np.ndarray
    boxes: np.ndarray
    names: list[str]
    pixel_mm: float
    patient: str
    series: str

    def boxes_at(self, t: int) -> list[RotatedBox]:
        return [RotatedBox(*map(float, b)) for b in self.boxes[t]]


def rotation_about(point: np.ndarray, angle_deg: float) -> np.ndarray:
    """The 3 x 3 homogeneous [x, y] transform that turns the plane by ``angle_deg`` (clockwise on the screen, y
    down) about ``point``."""
    a = np.deg2rad(angle_deg)
    turn = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    shift, back = np.eye(3), np.eye(3)
    shift[:2, 2], back[:2, 2] = point, -np.asarray(point)
    return shift @ turn @ back


def vertebra_motions(corners: np.ndarray, level_deg: np.ndarray, pelvis_deg: float) -> list[np.ndarray]:
    """Each body's rigid motion (3 x 3, [x, y]; corners (n, 4, 2) top to bottom, the last the sacrum's S1): the
    sacrum turns by ``pelvis_deg`` about its centre, and body k by ``level_deg[k]`` against body k + 1 about the
    middle of the disc between them, on top of body k + 1's motion."""
    motions = [rotation_about(corners[-1].mean(0), pelvis_deg)]
    for k in range(len(corners) - 2, -1, -1):
        disc = (corners[k][2] + corners[k][3] + corners[k + 1][0] + corners[k + 1][1]) / 4
        motions.insert(0, motions[0] @ rotation_about(disc, level_deg[k]))
    return motions


def _apply(motion: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ motion[:2, :2].T + motion[:2, 2]


def _warp(layer: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """``layer`` moved by ``motion`` ([x, y]), bilinear, on the same grid."""
    inverse = np.linalg.inv(motion)
    matrix = inverse[:2, :2][::-1, ::-1]  # [x, y] -> [row, col]
    offset = inverse[:2, 2][::-1]
    return ndimage.affine_transform(layer, matrix, offset, order=1, mode="constant", cval=0.0)


def split_bone(anatomy: Anatomy) -> tuple[np.ndarray, np.ndarray]:
    """(owner of each bone pixel: the index of the body nearest along the spine's axis, owner of each disc pixel:
    the index of the upper body of the nearest disc) on the anatomy's grid; the sacrum's layers are S1's."""
    corners = anatomy.corners
    centres = corners.mean(1)
    ups = np.array([(c[0] + c[1] - c[2] - c[3]) / 2 for c in corners])
    ups /= np.linalg.norm(ups, axis=1, keepdims=True)
    rows, cols = np.mgrid[0 : anatomy.layers["soft"].shape[0], 0 : anatomy.layers["soft"].shape[1]]
    points = np.stack([cols, rows], -1).astype(np.float32)

    def nearest(anchors: np.ndarray, axes: np.ndarray) -> np.ndarray:
        cost = []
        for anchor, up in zip(anchors, axes):
            d = points - anchor
            along = d @ up
            cost.append(np.abs(along) + 0.2 * np.abs(d @ np.array([up[1], -up[0]])))
        return np.argmin(np.stack(cost), 0)

    gaps = np.array(
        [(corners[k][2] + corners[k][3] + corners[k + 1][0] + corners[k + 1][1]) / 4 for k in range(len(corners) - 1)]
    )
    gap_ups = (ups[:-1] + ups[1:]) / 2
    return nearest(centres[:-1], ups[:-1]), nearest(gaps, gap_ups)


def pose(anatomy: Anatomy, motions: list[np.ndarray], owners: tuple[np.ndarray, np.ndarray] | None = None) -> Anatomy:
    """The anatomy with each body's bone moved by its motion, each disc by the mean of its neighbours', the sacrum
    by S1's and the soft tissue left where it was; its corners moved with their bodies."""
    bone_owner, disc_owner = owners if owners is not None else split_bone(anatomy)
    layers = {"soft": anatomy.layers["soft"]}
    for name in BONE_LAYERS:
        layer = anatomy.layers[name]
        parts = [
            _warp(np.where(bone_owner == k, layer, 0), m)
            for k, m in enumerate(motions[:-1])
            if (layer[bone_owner == k] > 0).any()
        ]
        layers[name] = np.maximum.reduce([np.zeros_like(layer), *parts])
    disc = anatomy.layers["disc"]
    parts = [
        _warp(np.where(disc_owner == k, disc, 0), (motions[k] + motions[k + 1]) / 2)
        for k in range(len(motions) - 1)
        if (disc[disc_owner == k] > 0).any()
    ]
    layers["disc"] = np.maximum.reduce([np.zeros_like(disc), *parts])
    for name in SACRAL_LAYERS:
        layers[name] = _warp(anatomy.layers[name], motions[-1])
    corners = np.array([_apply(m, c) for m, c in zip(motions, anatomy.corners)])
    return Anatomy(anatomy.series, anatomy.patient, layers, corners, list(anatomy.names))


class _FluoroNoise:
    """A random generator for :func:`lateral_drr.render` that draws the patient from ``patient`` (the same every
    frame) but the quantum noise from ``noise`` at ``dose`` times the radiograph's photons (Poisson, same mean)."""

    def __init__(self, patient: np.random.Generator, noise: np.random.Generator, dose: float):
        self._patient, self._noise, self._dose = patient, noise, dose

    def __getattr__(self, name):
        return getattr(self._patient, name)

    def poisson(self, lam):
        return self._noise.poisson(np.asarray(lam) * self._dose) / self._dose


def field(anatomy: Anatomy, first: str = "L1") -> tuple[Anatomy, float]:
    """The anatomy cropped (or padded: soft tissue continued, the rest empty) to a square field around ``first``–S1,
    and the side of that square in grid pixels."""
    top = anatomy.names.index(first)
    spine = anatomy.corners[top:].reshape(-1, 2)
    centre = (spine.min(0) + spine.max(0)) / 2
    side = int(np.ceil(FIELD_MARGIN * np.ptp(spine[:, 1])))
    x0, y0 = (np.round(centre) - side // 2).astype(int)
    layers = {}
    for name, layer in anatomy.layers.items():
        pad = side
        padded = np.pad(layer, pad, mode="edge" if name == "soft" else "constant")
        layers[name] = padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]
    corners = anatomy.corners - np.array([x0, y0])
    return Anatomy(anatomy.series, anatomy.patient, layers, corners, list(anatomy.names)), side


def simulate_sequence(anatomy: Anatomy, n_frames: int = 40, seed: int = 0, first: str = "L1") -> FluoroSequence:
    """A flexion–extension sequence of ``anatomy`` from ``first`` to S1 (deterministic given ``seed``): from
    extension to flexion or back, every level bending smoothly by its own range."""
    rng = np.random.default_rng(seed)
    cropped, side = field(anatomy, first)
    top = anatomy.names.index(first)
    n_bodies = len(anatomy.corners)
    half_range = rng.uniform(*LEVEL_RANGE_DEG, n_bodies - 1)
    pelvis = rng.uniform(-PELVIS_RANGE_DEG, PELVIS_RANGE_DEG)
    direction = rng.choice([-1.0, 1.0])
    dose = rng.uniform(*DOSE_FRACTION)
    phase = rng.uniform(0, 2 * np.pi, 2)
    patient_seed = int(rng.integers(2**31))
    scale = (FRAME_PX - 1) / (side - 1)
    owners = split_bone(cropped)
    frames, boxes = [], []
    for t in range(n_frames):
        s = direction * -np.cos(np.pi * t / max(n_frames - 1, 1))  # -1 extension .. 1 flexion
        motions = vertebra_motions(cropped.corners, -half_range * s, pelvis * s)
        posed = pose(cropped, motions, owners)
        drift = 1 + 0.3 * np.sin(2 * np.pi * t / max(n_frames, 1) + phase[0])
        noise = _FluoroNoise(np.random.default_rng(patient_seed), rng, dose * drift)
        film = render(posed, noise)
        film = ndimage.affine_transform(
            ndimage.gaussian_filter(film, 0.4 / scale), [1 / scale] * 2, output_shape=(FRAME_PX,) * 2, order=1
        )
        frames.append(film * (1 + 0.1 * np.sin(2 * np.pi * t / max(n_frames, 1) + phase[1])))
        boxes.append([list(vars(RotatedBox.from_corners(c * scale)).values()) for c in posed.corners[top:]])
    return FluoroSequence(
        np.array(frames, np.float32),
        np.array(boxes, np.float32),
        anatomy.names[top:],
        PIXEL_MM / scale,
        anatomy.patient,
        anatomy.series,
    )


def split_patients(patients: list[str], seed: int = 0, val: float = 0.1, test: float = 0.15) -> dict[str, list[str]]:
    """Patients into training, validation and test (a seeded shuffle, the test share first)."""
    order = sorted(set(patients))
    np.random.default_rng(seed).shuffle(order)
    n_test, n_val = round(test * len(order)), max(1, round(val * len(order)))
    return {
        "training": sorted(order[n_test + n_val :]),
        "validation": sorted(order[n_test : n_test + n_val]),
        "test": sorted(order[:n_test]),
    }
