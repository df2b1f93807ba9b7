"""Train a bone-density classifier on spine radiographs: normal / osteopenia / osteoporosis by the DXA T-score.

After Zhang et al. (Bone 2020, in the seed review): a CNN reads a lumbar spine radiograph and predicts the WHO class
of the patient's DXA T-score (normal T >= -1, osteopenia -2.5 < T < -1, osteoporosis T <= -2.5). No radiograph with
a DXA result exists in ``../shared/data``, so no weights ship: this trains on a user's own data.

Data: a folder of radiographs (PNG/JPEG/DICOM) and a CSV with ``image`` (a file name in that folder), ``patient``
(optional; a patient's films stay in one fold) and either ``t_score`` or ``class`` (normal, osteopenia,
osteoporosis). Each film is letterboxed into ``BMD_SHAPE``; training draws mirror, small turns and contrast changes.

Patient k-fold cross-validation: per fold a network is trained on the other folds' patients and predicts its own;
the out-of-fold predictions give balanced accuracy, per-class recall, the confusion matrix and the AUCs of
osteoporosis against the rest and of low bone density (osteopenia or osteoporosis) against normal, each with a 95%
CI by patient bootstrap, beside the majority-class guess in the same record. A final network trained on every
patient is exported (``xray_bmd.onnx`` + ``xray_bmd.json``: the figures and the command).
"""

from __future__ import annotations

import csv
import json
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from lumbar.errors import InputError
from lumbar.io import read_image
from lumbar.io.write import write_text
from lumbar.metrics import balanced_accuracy, bootstrap_metric_ci, confusion, per_class_recall, roc_auc
from lumbar.models.export import export_onnx
from lumbar.models.networks import BoneDensityNet
from lumbar.preprocess import Letterbox
from lumbar.progress import SILENT, Progress
from lumbar.train import log, log_to

CLASSES = ("normal", "osteopenia", "osteoporosis")
BMD_SHAPE = (256, 256)


def who_class(t_score: float) -> int:
    """The WHO class of a DXA T-score: 0 normal (>= -1), 1 osteopenia (between), 2 osteoporosis (<= -2.5)."""
    return 0 if t_score >= -1.0 else 2 if t_score <= -2.5 else 1


@dataclass
class BmdConfig:
    images: str
    labels: str
    out: str
    folds: int = 5
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    shape: tuple[int, int] = BMD_SHAPE  # the letterbox the films are read into
    seed: int = 0
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


@dataclass
class Film:
    name: str
    patient: str
    label: int
    image: np.ndarray  # letterboxed, [0, 1]


def read_labels(images: Path, labels: Path, shape: tuple[int, int] = BMD_SHAPE) -> list[Film]:
    """The labelled films; a row naming a missing file or without a T-score or class is an input error."""
    films = []
    with open(labels, newline="", encoding="utf-8") as f:
        for k, row in enumerate(csv.DictReader(f), start=2):
            name = (row.get("image") or "").strip()
            path = images / name
            if not name or not path.is_file():
                raise InputError(f"{labels}:{k}: no image {name!r} in {images}")
            if (row.get("t_score") or "").strip():
                label = who_class(float(row["t_score"]))
            elif (row.get("class") or "").strip().lower() in CLASSES:
                label = CLASSES.index(row["class"].strip().lower())
            else:
                raise InputError(f"{labels}:{k}: give t_score or class ({', '.join(CLASSES)})")
            picture = read_image(path).sagittal_slices()[0]
            boxed = Letterbox.fit(picture.shape, shape).apply(picture, shape)
            films.append(Film(name, (row.get("patient") or "").strip() or Path(name).stem, label, boxed))
    if len({f.label for f in films}) < 2:
        raise InputError(f"{labels}: a classifier needs films of at least two classes")
    return films


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = ndimage.rotate(image, rng.uniform(-8, 8), reshape=False, order=1, mode="constant")
    image = np.clip(image, 0, 1) ** np.exp(rng.normal(0, 0.25))
    return (image + rng.normal(0, 0.02, image.shape)).astype(np.float32)


def train_net(films: list[Film], cfg: BmdConfig, seed: int) -> torch.nn.Module:
    """A network trained on ``films``, the classes weighted inversely to their frequency."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = BoneDensityNet(len(CLASSES))
    optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    labels = np.array([f.label for f in films])
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(np.float32)
    weights = torch.tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(CLASSES), 0.0))
    net.train()
    for _ in range(cfg.epochs):
        order = rng.permutation(len(films))
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            x = torch.from_numpy(np.stack([augment(films[i].image, rng) for i in batch]))[:, None]
            loss = F.cross_entropy(net(x), torch.from_numpy(labels[batch]), weight=weights.float())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return net.eval()


def probabilities(net: torch.nn.Module, films: list[Film]) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(np.stack([f.image for f in films]))[:, None]
        mirrored = torch.flip(x, dims=[3])
        return ((torch.softmax(net(x), 1) + torch.softmax(net(mirrored), 1)) / 2).numpy()


def figures(labels: np.ndarray, probs: np.ndarray, patients: np.ndarray) -> dict:
    """Out-of-fold figures with 95% CIs by patient, beside the majority-class guess."""
    predicted = probs.argmax(1)
    present = sorted(set(labels.tolist()))
    majority = np.full_like(labels, np.bincount(labels).argmax())
    out = {
        "n_films": len(labels),
        "n_patients": len(np.unique(patients)),
        "class_counts": {CLASSES[c]: int((labels == c).sum()) for c in range(len(CLASSES))},
        "balanced_accuracy": balanced_accuracy(labels, predicted),
        "balanced_accuracy_ci95": bootstrap_metric_ci(balanced_accuracy, [labels, predicted], patients),
        "majority_class_balanced_accuracy": balanced_accuracy(labels, majority),
        "recall": {CLASSES[c]: r for c, r in per_class_recall(labels, predicted, present).items()},
        "confusion": confusion(labels, predicted, list(range(len(CLASSES)))),
    }
    for name, truth, score in (
        ("auc_osteoporosis", labels == 2, probs[:, 2]),
        ("auc_low_density", labels >= 1, probs[:, 1] + probs[:, 2]),
    ):
        if 0 < truth.sum() < len(truth):
            out[name] = roc_auc(truth.astype(int), score)
            out[f"{name}_ci95"] = bootstrap_metric_ci(roc_auc, [truth.astype(int), score], patients)
    return out


def train_bmd(cfg: BmdConfig, progress: Progress = SILENT) -> Path:
    """Cross-validate by patient, then train on every patient and export."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_to(out)
    films = read_labels(Path(cfg.images), Path(cfg.labels), tuple(cfg.shape))
    patients = np.array([f.patient for f in films])
    labels = np.array([f.label for f in films])
    order = sorted(set(patients.tolist()))
    np.random.default_rng(cfg.seed).shuffle(order)
    folds = min(cfg.folds, len(order))
    if folds < 2:
        raise InputError(f"{cfg.labels}: cross-validation needs films of at least two patients")
    fold_of = {p: k % folds for k, p in enumerate(order)}
    oof = np.zeros((len(films), len(CLASSES)), np.float32)
    progress.stage("cross-validation folds", total=folds)
    for k in range(folds):
        held = np.array([fold_of[p] == k for p in patients])
        net = train_net([f for f, h in zip(films, held) if not h], cfg, cfg.seed + k)
        oof[held] = probabilities(net, [f for f, h in zip(films, held) if h])
        log.info("fold %d of %d done", k + 1, folds)
        progress.advance()
    cv = figures(labels, oof, patients)
    log.info("cross-validation: %s", json.dumps(cv))
    progress.stage("final network on every patient")
    net = train_net(films, cfg, cfg.seed + folds)
    meta = {
        "name": "xray_bmd",
        "task": "bone density class from a spine radiograph (DXA T-score: normal, osteopenia, osteoporosis)",
        "classes": list(CLASSES),
        "input_shape": list(cfg.shape),
        "cv": {"folds": folds, **cv},
        "config": asdict(cfg),
    }
    path = export_onnx(net, {"image": torch.zeros(1, 1, *cfg.shape)}, out / "xray_bmd.onnx", {"image": {0: "n"}})
    write_text(out / "xray_bmd.json", json.dumps(meta, indent=1))
    return path
