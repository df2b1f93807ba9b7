"""Train the vertebra tracker's embedding network φ (SiamFC, Bertinetto et al. 2016; for rotated vertebral boxes
in fluoroscopy after Liu et al. 2020) on simulated flexion–extension sequences (:mod:`lumbar.train.fluoro_sim`).

A training pair is a template crop around a body on frame t, turned by the body's true rotation between t and
t + k (the tracker's rotated templates, :mod:`lumbar.tasks.tracking`), and a search crop on frame t + k around the
body's position on frame t, shifted at random; the response is the cross-correlation of their embeddings (the
template made zero-mean), scaled and biased. SiamFC's logistic loss: +1 within ``positive_radius_px`` of the true
displacement, -1 elsewhere, the two classes weighted equally. Augmentation per crop: gain, offset, blur and noise.
Patients are split into training, validation (the step with the lowest validation centre error is kept) and test
(never used here: ``bench/tracking.py``). Output: ``tracking.onnx`` (φ) and ``tracking.json`` (the record).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from lumbar.io.write import write_text
from lumbar.models.export import export_onnx
from lumbar.models.networks import TrackingEmbedding
from lumbar.progress import SILENT, Progress
from lumbar.tasks.tracking import SEARCH_PX, STRIDE, TEMPLATE_PX, Tracker, crop, normalise, rotated_iou
from lumbar.train import log, log_to
from lumbar.train.fluoro_sim import FluoroSequence, simulate_sequence, split_patients
from lumbar.train.lateral_drr import Anatomy, build_anatomies


@dataclass
class TrackingConfig:
    out: str
    anatomies: str = "runs/lateral/anatomies"
    spider: str = "../shared/data/spider"  # rebuilds ``anatomies`` when that folder is missing
    train_sequences: int = 90  # one per training anatomy, up to this many
    val_sequences: int = 8
    frames: int = 12
    steps: int = 1500
    batch_size: int = 16
    lr: float = 2e-3
    max_gap: int = 4  # template and search frames at most this far apart
    jitter_px: float = 10.0  # the search crop's random offset from the body's last position
    positive_radius_px: float = 6.0
    seed: int = 0
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


def load_anatomies(cfg: TrackingConfig) -> list[Anatomy]:
    folder = Path(cfg.anatomies)
    if not any(folder.glob("*.npz")):
        build_anatomies(Path(cfg.spider), folder)
    return [
        a for a in (Anatomy.load(p) for p in sorted(folder.glob("*.npz"))) if "L1" in a.names and a.names[-1] == "S1"
    ]


def sequences_of(anatomies: list[Anatomy], count: int, frames: int, seed: int) -> list[FluoroSequence]:
    """``count`` sequences, one per anatomy (a seeded choice), each of ``frames`` frames."""
    order = np.random.default_rng(seed).permutation(len(anatomies))[:count]
    return [simulate_sequence(anatomies[i], frames, seed + int(i)) for i in order]


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A crop under another gain, offset, blur and noise."""
    image = image * rng.uniform(0.7, 1.3) + rng.normal(0, 0.05)
    if rng.random() < 0.3:
        image = ndimage.gaussian_filter(image, rng.uniform(0.3, 1.0))
    return (image + rng.normal(0, rng.uniform(0, 0.05), image.shape)).astype(np.float32)


def make_pair(seq: FluoroSequence, cfg: TrackingConfig, rng: np.random.Generator) -> tuple:
    """(template, search, true displacement [x, y] of the body from the search crop's centre, in pixels)."""
    n = len(seq.frames)
    t = int(rng.integers(0, n - 1))
    u = int(np.clip(t + rng.integers(1, cfg.max_gap + 1) * rng.choice([-1, 1]), 0, n - 1))
    b = int(rng.integers(0, seq.boxes.shape[1] - 1))  # S1 is never tracked
    before, after = seq.boxes[t, b], seq.boxes[u, b]
    turn = float(after[4] - before[4]) + rng.normal(0, 0.5)
    template = crop(normalise(seq.frames[t]), before[:2], TEMPLATE_PX, -turn)
    centre = before[:2] + rng.uniform(-cfg.jitter_px, cfg.jitter_px, 2)
    search = crop(normalise(seq.frames[u]), centre, SEARCH_PX)
    return augment(template, rng), augment(search, rng), after[:2] - centre


def response(net: nn.Module, template: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    """(n, side, side): each search crop's cross-correlation with its own template (zero-mean)."""
    z, x = net(template), net(search)
    z = z - z.mean((2, 3), keepdim=True)
    n, c = z.shape[:2]
    return F.conv2d(x.reshape(1, n * c, *x.shape[2:]), z, groups=n)[0]


def logistic_loss(scores: torch.Tensor, shift_px: torch.Tensor, radius_px: float) -> torch.Tensor:
    """SiamFC's balanced logistic loss: positive within ``radius_px`` of the true displacement."""
    side = scores.shape[-1]
    cells = (torch.arange(side, dtype=torch.float32) - side // 2) * STRIDE
    dy = cells[None, :, None] - shift_px[:, 1, None, None]
    dx = cells[None, None, :] - shift_px[:, 0, None, None]
    positive = (dx**2 + dy**2) <= radius_px**2
    labels = positive.float() * 2 - 1
    weights = torch.where(
        positive,
        0.5 / positive.sum((1, 2), keepdim=True).clamp(min=1),
        0.5 / (~positive).sum((1, 2), keepdim=True).clamp(min=1),
    )
    return (F.softplus(-labels * scores) * weights).sum((1, 2)).mean()  # log(1 + exp(-y s)), stable


def embedding_fn(net: nn.Module):
    def embed(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(np.ascontiguousarray(batch, np.float32))).numpy()

    return embed


def evaluate(embed, sequences: list[FluoroSequence], tracked: int = 4) -> dict:
    """Track the first ``tracked`` bodies of each sequence from its first frame's truth: centre error (px, mm),
    angle error (°) and rotated IoU over every later frame, and frames per second."""
    errors_px, errors_mm, angles, ious, seconds, count = [], [], [], [], 0.0, 0
    for seq in sequences:
        tracker = Tracker(embed)
        start = time.perf_counter()
        tracker.start(seq.frames[0], seq.boxes_at(0)[:tracked])
        for t in range(1, len(seq.frames)):
            boxes, _ = tracker.step(seq.frames[t])
            for got, truth in zip(boxes, seq.boxes_at(t)):
                d = float(np.hypot(got.cx - truth.cx, got.cy - truth.cy))
                errors_px.append(d)
                errors_mm.append(d * seq.pixel_mm)
                angles.append(abs(got.angle_deg - truth.angle_deg))
                ious.append(rotated_iou(got, truth))
        seconds += time.perf_counter() - start
        count += len(seq.frames)
    return {
        "sequences": len(sequences),
        "centre_error_px_median": float(np.median(errors_px)),
        "centre_error_mm_median": float(np.median(errors_mm)),
        "angle_error_deg_median": float(np.median(angles)),
        "rotated_iou_median": float(np.median(ious)),
        "frames_per_s": count / max(seconds, 1e-9),
    }


def train_tracking(cfg: TrackingConfig, progress: Progress = SILENT) -> Path:
    """Simulate sequences of the training and validation patients, train φ, keep the best step, export."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_to(out)
    anatomies = load_anatomies(cfg)
    split = split_patients([a.patient for a in anatomies], cfg.seed)
    progress.stage("simulating sequences")
    train = sequences_of(
        [a for a in anatomies if a.patient in split["training"]], cfg.train_sequences, cfg.frames, cfg.seed
    )
    val = sequences_of(
        [a for a in anatomies if a.patient in split["validation"]], cfg.val_sequences, 2 * cfg.frames, cfg.seed + 10_000
    )
    log.info("simulated %d training and %d validation sequences", len(train), len(val))
    net = TrackingEmbedding()
    scale_bias = nn.Parameter(torch.tensor([-3.0, 0.0]))  # the response's log-scale and bias (SiamFC's adjust)
    optimiser = torch.optim.AdamW([*net.parameters(), scale_bias], lr=cfg.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    best, best_state, history = float("inf"), None, []
    progress.stage("training", total=cfg.steps)
    for step in range(1, cfg.steps + 1):
        net.train()
        pairs = [make_pair(train[int(rng.integers(len(train)))], cfg, rng) for _ in range(cfg.batch_size)]
        template = torch.from_numpy(np.stack([p[0] for p in pairs]))[:, None]
        search = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
        shift = torch.from_numpy(np.stack([p[2] for p in pairs]).astype(np.float32))
        scores = response(net, template, search) * scale_bias[0].exp() + scale_bias[1]
        loss = logistic_loss(scores, shift, cfg.positive_radius_px)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_([*net.parameters(), scale_bias], 5.0)
        optimiser.step()
        schedule.step()
        progress.advance()
        if step % 250 == 0 or step == cfg.steps:
            figures = evaluate(embedding_fn(net.eval()), val)
            history.append({"step": step, "loss": loss.item(), **figures})
            log.info("step %d: %s", step, json.dumps(history[-1]))
            if figures["centre_error_px_median"] < best:
                best = figures["centre_error_px_median"]
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    net.eval()
    best_entry = min(history, key=lambda h: h["centre_error_px_median"])
    meta = {
        "name": "tracking",
        "task": "vertebra tracking in fluoroscopy: the SiamFC embedding φ of template and search crops",
        "trained_on": "simulated flexion-extension fluoroscopy",
        "input": {
            "template_px": TEMPLATE_PX,
            "search_px": SEARCH_PX,
            "stride": STRIDE,
            "normalisation": "frame median 0, 1st-99th percentile range 1",
        },
        "parameters": sum(p.numel() for p in net.parameters()),
        "best_step": best_entry["step"],
        "validation": best_entry,
        "history": history,
        "split_patients": split,
        "sequences": {"training": len(train), "validation": len(val), "frames": cfg.frames},
        "config": asdict(cfg),
    }
    axes = {0: "n", 2: "h", 3: "w"}
    path = export_onnx(
        net, {"image": torch.zeros(1, 1, SEARCH_PX, SEARCH_PX)}, out / "tracking.onnx", {"image": axes, "logits": axes}
    )
    write_text(out / "tracking.json", json.dumps(meta, indent=1))
    return path
