"""Train the ultrasound frame classifier (sacrum, gap, vertebra) on simulated paramedian sweeps.

After Hetherington et al. (IJCARS 2017, SLIDE): a small CNN labels each frame of a sweep that moves up from the
sacrum, and :func:`lumbar.tasks.ultrasound.count_levels` counts the gaps. No ultrasound exists here, so every frame
is simulated (:mod:`lumbar.train.ultrasound_sim`) from the anatomy of SPIDER's T2 SPACE series (30 patients, their
label maps stacked in 3D, a sacrum drawn); the network is never trained or tested on a real ultrasound image.

Split by patient (seeded): ``test_patients`` held out (never used here but for the final figures),
``val_patients`` for choosing the epoch, the rest for training. Training sweeps are rendered once
(``train_sweeps`` per patient) and read every epoch, mirrored head to feet at random (a probe held either way
round) and with a random gamma; class-weighted cross-entropy, AdamW with a cosine schedule; the epoch with the
best validation balanced accuracy is kept.

Held-out figures, on ``eval_sweeps`` fresh sweeps per test patient: per-class recall, balanced accuracy with a 95%
CI by patient bootstrap and the confusion matrix, beside two baselines in the same record: the majority class and a
brightness rule (the mean grey of the frame's middle third, two thresholds fitted on the training frames); and per
sweep the counter's level accuracy: a gap is named right when the counter's most frequent name over the true gap's
frames is its true name (the truth counted from the sacrum on the true frame classes, see
:func:`lumbar.train.ultrasound_sim._level_names`), with CI by patient, over all counted gaps and over the gaps
verified against the discs, for the network, the brightness rule and the true frame classes themselves (what the
counter alone loses). Exported: ``ultrasound.onnx`` and ``ultrasound.json``.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import permutations
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lumbar.errors import InputError
from lumbar.io.write import write_text
from lumbar.metrics import balanced_accuracy, bootstrap_metric_ci, confusion, per_class_recall
from lumbar.models.export import export_onnx
from lumbar.models.networks import UltrasoundFrameNet
from lumbar.progress import SILENT, Progress
from lumbar.tasks.ultrasound import CLASSES, FRAME_SHAPE, count_levels, prepare_frames
from lumbar.train import log, log_to, one_thread
from lumbar.train.ultrasound_sim import (
    DEPTH_MM,
    FOOTPRINT_MM,
    SpineVolume,
    Sweep,
    build_spider_volumes,
    simulate_sweeps,
)

TRAINED_ON = "simulated paramedian ultrasound"


@dataclass
class UltrasoundConfig:
    out: str
    spider: str = "../shared/data/spider"  # SPIDER's folder: t2space/masks and overview.csv
    train_sweeps: int = 24  # rendered once per training patient
    eval_sweeps: int = 8  # per validation and test patient
    test_patients: int = 7
    val_patients: int = 3
    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


def split_patients(patients: list[str], n_test: int, n_val: int, seed: int) -> dict[str, list[str]]:
    """Patients shuffled by ``seed`` and dealt: the first ``n_test`` to test, the next ``n_val`` to validation."""
    order = sorted(set(patients))
    np.random.default_rng(seed).shuffle(order)
    if len(order) < n_test + n_val + 1:
        raise InputError(f"{len(order)} patients cannot give {n_test} test, {n_val} validation and training patients")
    return {
        "test": sorted(order[:n_test]),
        "validation": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def stacked(sweeps: list[Sweep]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames uint8, labels, patients) of all the sweeps' frames."""
    frames = np.concatenate([s.frames for s in sweeps])
    labels = np.concatenate([s.labels for s in sweeps])
    patients = np.concatenate([[s.patient] * len(s.labels) for s in sweeps])
    return frames, labels, patients


def augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Prepared frames ``(n, 1, h, w)`` mirrored head to feet at random and with a random gamma."""
    flip = rng.random(len(batch)) < 0.5
    batch = np.where(flip[:, None, None, None], batch[..., ::-1], batch)
    return (batch ** np.exp(rng.normal(0, 0.2, (len(batch), 1, 1, 1)))).astype(np.float32)


def probabilities(net: nn.Module, frames: np.ndarray, batch: int = 512) -> np.ndarray:
    """Class probabilities ``(n, 3)`` of raw frames."""
    net.eval()
    out = []
    with torch.no_grad():
        for k in range(0, len(frames), batch):
            x = torch.from_numpy(prepare_frames(frames[k : k + batch]))
            out.append(torch.softmax(net(x), 1).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), np.float32)


def train_net(
    frames: np.ndarray,
    labels: np.ndarray,
    val: tuple[np.ndarray, np.ndarray],
    cfg: UltrasoundConfig,
    progress: Progress = SILENT,
) -> tuple[nn.Module, list[dict]]:
    """The network after the epoch with the best validation balanced accuracy, and every epoch's record."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = UltrasoundFrameNet(len(CLASSES))
    optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = cfg.epochs * max(len(frames) // cfg.batch_size, 1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, cfg.lr, total_steps=steps, pct_start=0.1)
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(np.float32)
    weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / len(CLASSES))
    best, best_state, history = -1.0, None, []
    progress.stage("epochs", total=cfg.epochs)
    for epoch in range(cfg.epochs):
        net.train()
        order = rng.permutation(len(frames))
        losses = []
        for start in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            x = torch.from_numpy(augment(prepare_frames(frames[batch]), rng))
            loss = F.cross_entropy(net(x), torch.from_numpy(labels[batch]), weight=weights)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        score = balanced_accuracy(val[1], probabilities(net, val[0]).argmax(1))
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_balanced_accuracy": score})
        log.info("epoch %d: loss %.4f, validation balanced accuracy %.4f", epoch + 1, np.mean(losses), score)
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in net.state_dict().items()}
        progress.advance()
    net.load_state_dict(best_state)
    return net.eval(), history


def middle_brightness(frames: np.ndarray) -> np.ndarray:
    """The brightness rule's feature: the mean grey of each prepared frame's middle third (across)."""
    prepared = prepare_frames(frames)[:, 0]
    third = prepared.shape[2] // 3
    return prepared[:, :, third : 2 * third].mean((1, 2))


def fit_brightness_rule(feature: np.ndarray, labels: np.ndarray) -> dict:
    """Two thresholds on ``feature`` and the class order of the three intervals they make, best by balanced
    accuracy on the given frames (thresholds searched over the feature's percentiles)."""
    cuts = np.percentile(feature, np.arange(2, 99, 2))
    best = {"balanced_accuracy": -1.0}
    for low in cuts:
        for high in cuts[cuts > low]:
            interval = np.digitize(feature, [low, high])
            for order in permutations(range(len(CLASSES))):
                score = balanced_accuracy(labels, np.asarray(order)[interval])
                if score > best["balanced_accuracy"]:
                    best = {"thresholds": [float(low), float(high)], "classes": list(order), "balanced_accuracy": score}
    return best


def brightness_rule(feature: np.ndarray, rule: dict) -> np.ndarray:
    return np.asarray(rule["classes"])[np.digitize(feature, rule["thresholds"])]


def frame_figures(labels: np.ndarray, predicted: np.ndarray, patients: np.ndarray) -> dict:
    """Per-class recall, balanced accuracy (95% CI by patient bootstrap), accuracy and the confusion matrix (rows:
    truth, columns: prediction, order of ``CLASSES``)."""
    return {
        "balanced_accuracy": balanced_accuracy(labels, predicted),
        "balanced_accuracy_ci95": bootstrap_metric_ci(balanced_accuracy, [labels, predicted], patients),
        "accuracy": float(np.mean(labels == predicted)),
        "recall": {CLASSES[c]: r for c, r in per_class_recall(labels, predicted, list(range(len(CLASSES)))).items()},
        "confusion": confusion(labels, predicted, list(range(len(CLASSES)))),
    }


def one_hot(classes: np.ndarray, sure: float = 0.9) -> np.ndarray:
    """Probabilities of hard decisions: ``sure`` for the class, the rest shared (what a rule gives the counter)."""
    out = np.full((len(classes), len(CLASSES)), (1 - sure) / (len(CLASSES) - 1), np.float32)
    out[np.arange(len(classes)), classes] = sure
    return out


def level_rows(sweeps: list[Sweep], frame_probabilities: list[np.ndarray]) -> list[dict]:
    """One row per true gap of every sweep: its name, whether verified, the counter's name for it."""
    rows = []
    for k, (sweep, probs) in enumerate(zip(sweeps, frame_probabilities)):
        counted = count_levels(probs)
        for rank, (name, first, last) in enumerate(sweep.counted_gaps()):
            named = Counter(counted.levels[first : last + 1]).most_common(1)[0][0]
            rows.append(
                {
                    "sweep": k,
                    "patient": sweep.patient,
                    "gap": name,
                    "verified": rank < sweep.verified_gaps,
                    "named": named,
                    "review": counted.needs_review,
                }
            )
    return rows


def level_figures(rows: list[dict], n_sweeps: int) -> dict:
    """Level accuracy (95% CI by patient) over all true gaps and over the verified ones; sweeps all named right."""

    def accuracy(right: np.ndarray) -> float:
        return float(np.mean(right)) if len(right) else float("nan")

    right = np.array([r["named"] == r["gap"] for r in rows])
    patients = np.array([r["patient"] for r in rows])
    verified = np.array([r["verified"] for r in rows], bool)
    wrong_sweeps = {r["sweep"] for r in rows if r["named"] != r["gap"]}
    return {
        "gaps": len(rows),
        "level_accuracy": accuracy(right),
        "level_accuracy_ci95": bootstrap_metric_ci(accuracy, [right], patients),
        "verified_gaps": int(verified.sum()),
        "verified_level_accuracy": accuracy(right[verified]),
        "verified_level_accuracy_ci95": bootstrap_metric_ci(accuracy, [right[verified]], patients[verified]),
        "sweeps": n_sweeps,
        "sweeps_all_named_right": n_sweeps - len(wrong_sweeps),
        "sweeps_marked_for_review": len({r["sweep"] for r in rows if r["review"]}),
    }


def evaluate(net: nn.Module, sweeps: list[Sweep], rule: dict, majority: int) -> dict:
    """Held-out frame and sweep figures of the network beside the majority class and the brightness rule."""
    frames, labels, patients = stacked(sweeps)
    probs = probabilities(net, frames)
    ruled = brightness_rule(middle_brightness(frames), rule)
    splits = np.cumsum([len(s.labels) for s in sweeps])[:-1]
    per_sweep = {
        "network": np.split(probs, splits),
        "brightness_rule": np.split(one_hot(ruled), splits),
        "true_classes": [one_hot(s.labels) for s in sweeps],
    }
    return {
        "frames": len(labels),
        "patients": len(set(patients.tolist())),
        "class_counts": {c: int((labels == k).sum()) for k, c in enumerate(CLASSES)},
        "network": frame_figures(labels, probs.argmax(1), patients),
        "majority_class": frame_figures(labels, np.full_like(labels, majority), patients),
        "brightness_rule": frame_figures(labels, ruled, patients),
        "levels": {name: level_figures(level_rows(sweeps, p), len(sweeps)) for name, p in per_sweep.items()},
    }


def load_volumes(spider: Path, out: Path) -> list[SpineVolume]:
    paths = build_spider_volumes(spider, out / "anatomies")
    if not paths:
        raise InputError(f"{spider}: no SPIDER T2 SPACE series (t2space/masks, overview.csv) gave an anatomy")
    return [SpineVolume.load(p) for p in paths]


def train_on_volumes(volumes: list[SpineVolume], cfg: UltrasoundConfig, progress: Progress = SILENT) -> Path:
    """Split ``volumes`` by patient, simulate, train, measure on the test patients and export (see the module)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_to(out)
    split = split_patients([v.patient for v in volumes], cfg.test_patients, cfg.val_patients, cfg.seed)
    of = {name: [v for v in volumes if v.patient in patients] for name, patients in split.items()}
    progress.stage("simulating sweeps")
    train = simulate_sweeps(of["train"], cfg.train_sweeps, cfg.seed)
    val = simulate_sweeps(of["validation"], cfg.eval_sweeps, cfg.seed + 1)
    frames, labels, _ = stacked(train)
    val_frames, val_labels, _ = stacked(val)
    log.info("split %s; %d training frames of %d sweeps", json.dumps(split), len(labels), len(train))
    with one_thread():
        net, history = train_net(frames, labels, (val_frames, val_labels), cfg, progress)
        rule = fit_brightness_rule(middle_brightness(frames), labels)
        majority = int(np.bincount(labels, minlength=len(CLASSES)).argmax())
        progress.stage("held-out test patients")
        test = evaluate(net, simulate_sweeps(of["test"], cfg.eval_sweeps, cfg.seed + 2), rule, majority)
    log.info("test: %s", json.dumps(test))
    meta = {
        "name": "ultrasound",
        "task": "paramedian sagittal ultrasound frame: sacrum, gap (interlaminar window) or vertebra (lamina)",
        "classes": list(CLASSES),
        "input_shape": list(FRAME_SHAPE),
        "frame": {
            "footprint_mm": FOOTPRINT_MM,
            "depth_mm": DEPTH_MM,
            "rows": "depth, skin at the top",
            "columns": "along the spine (either way round: trained mirrored)",
        },
        "normalisation": "grey, resized (bilinear) to input_shape, 1st-99th percentile of the frame to [0, 1]",
        "trained_on": TRAINED_ON,
        "anatomy": "SPIDER T2 SPACE label maps stacked in 3D (van der Graaf et al. 2024, CC BY 4.0), sacrum drawn",
        "parameters": sum(p.numel() for p in net.parameters()),
        "split_patients": split,
        "training_frames": len(labels),
        "training_class_counts": {c: int((labels == k).sum()) for k, c in enumerate(CLASSES)},
        "history": history,
        "validation_balanced_accuracy": max(h["val_balanced_accuracy"] for h in history),
        "brightness_rule": rule,
        "majority_class": CLASSES[majority],
        "test": test,
        "command": cfg.command,
        "config": asdict(cfg),
    }
    axes = {"image": {0: "n"}, "logits": {0: "n"}}
    path = export_onnx(net, {"image": torch.zeros(1, 1, *FRAME_SHAPE)}, out / "ultrasound.onnx", axes)
    write_text(out / "ultrasound.json", json.dumps(meta, indent=1))
    return path


def train_ultrasound(cfg: UltrasoundConfig, progress: Progress = SILENT) -> Path:
    """Build the anatomies from SPIDER (cached in ``out/anatomies``), then :func:`train_on_volumes`."""
    progress.stage("anatomies from SPIDER's T2 SPACE label maps")
    return train_on_volumes(load_volumes(Path(cfg.spider), Path(cfg.out)), cfg, progress)
