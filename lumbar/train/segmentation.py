"""Train the sagittal segmentation network: patient split, augmentation, checkpoints, early stopping.

With ``synthetic_fraction`` > 0, each batch mixes real slices (geometric and intensity augmentation,
``augment.py``) with images synthesised from the same slices' label maps (``synthesis.py``), so that the network
is less tied to the one sequence it has masks for. The shipped model was trained without (0); a run with 0.5 did
not generalise better on the data at hand (model card, "Tried and not shipped").

A run writes to ``out_dir``: ``checkpoint.pt`` (everything needed to resume), ``best.pt`` (best weights on
the validation patients), ``train.log``, ``split.json`` and, at the end, ``segmentation.onnx`` with its
metadata ``segmentation.json``. Run again with the same ``out_dir`` to resume where it stopped.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss

from lumbar.errors import InputError
from lumbar.io.write import atomic_path, write_text
from lumbar.labels import STRUCTURE_NAMES
from lumbar.models.networks import segmentation_net
from lumbar.preprocess import MODEL_SPACING_MM, pad_to_multiple
from lumbar.progress import SILENT, Progress
from lumbar.train import log, log_to
from lumbar.train.augment import random_affine, random_intensity
from lumbar.train.datasets import Slice, load_dataset, split_by_patient
from lumbar.train.synthesis import TO_CLASS, extended_labels, synthesise, synthesiser


@dataclass
class SegmentationConfig:
    data: str
    out: str
    steps: int = 2500
    batch_size: int = 8
    patch: tuple[int, int] = (384, 320)
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_every: int = 250
    patience: int = 8
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    seed: int = 0
    spacing_mm: float | None = None
    target_mm: float = MODEL_SPACING_MM
    max_minutes: float | None = None
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    synthetic_fraction: float = 0.0  # 0.5 was tried: see the model card
    init: str | None = None  # weights (.pt) to start from instead of random ones: fine-tuning
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


def warmup_cosine(step: int, total: int, warmup_fraction: float = 0.05) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to zero at ``total`` (stretches on resume)."""
    warmup = max(1, int(total * warmup_fraction))
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def three_way_split(samples: list[Slice], cfg: SegmentationConfig) -> dict[str, list[Slice]]:
    """Train / validation (early stopping) / test (reported only) by patient, from one seed."""
    rest, test = split_by_patient(samples, cfg.test_fraction, cfg.seed)
    train, val = split_by_patient(rest, cfg.val_fraction / (1 - cfg.test_fraction), cfg.seed + 1)
    return {"train": train, "val": val, "test": test}


def _stack(samples: list[Slice]) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre-pad every sample to the largest size and stack images (N,1,H,W) and the extended label maps
    to synthesise from (N,H,W; :data:`synthesis.TO_CLASS` maps them to the classes)."""
    h = max(s.image.shape[0] for s in samples)
    w = max(s.image.shape[1] for s in samples)
    images = np.zeros((len(samples), 1, h, w), np.float32)
    labels = np.zeros((len(samples), h, w), np.uint8)
    for i, s in enumerate(samples):
        top, left = (h - s.image.shape[0]) // 2, (w - s.image.shape[1]) // 2
        images[i, 0, top : top + s.image.shape[0], left : left + s.image.shape[1]] = s.image
        labels[i, top : top + s.image.shape[0], left : left + s.image.shape[1]] = extended_labels(s.image, s.mask, i)
    return torch.from_numpy(images), torch.from_numpy(labels)


@torch.no_grad()
def dice_per_structure(model: torch.nn.Module, samples: list[Slice], device: torch.device) -> dict[str, float]:
    """Mean Dice per structure over slices (at the model's pixel size), for model selection."""
    model.eval()
    scores: dict[str, list[float]] = {name: [] for name in STRUCTURE_NAMES.values()}
    for s in samples:
        padded, (h, w) = pad_to_multiple(s.image[None, None])
        pred = model(torch.from_numpy(padded).to(device)).argmax(1)[0, :h, :w].cpu().numpy()
        for structure, name in STRUCTURE_NAMES.items():
            truth, guess = s.mask == structure, pred == structure
            denom = truth.sum() + guess.sum()
            if denom:
                scores[name].append(2.0 * np.logical_and(truth, guess).sum() / denom)
    model.train()
    return {name: float(np.mean(v)) if v else float("nan") for name, v in scores.items()}


def train_segmentation(cfg: SegmentationConfig, progress: Progress = SILENT) -> Path:
    """Train (or resume) and export ONNX; returns the exported model's path, or the checkpoint's when
    ``max_minutes`` stopped the run early (run again to resume)."""
    out_dir = Path(cfg.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_to(out_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)

    progress.stage("loading slices")
    samples = load_dataset(Path(cfg.data), cfg.target_mm, cfg.spacing_mm)
    split = three_way_split(samples, cfg)
    write_text(
        out_dir / "split.json", json.dumps({k: sorted({s.patient for s in v}) for k, v in split.items()}, indent=1)
    )
    log.info("slices train %d val %d test %d", *(len(split[k]) for k in ("train", "val", "test")))
    images, labels = _stack(split["train"])
    images, labels = images.to(device), labels.to(device)
    to_class = torch.from_numpy(TO_CLASS).to(device)
    synthesis = synthesiser()

    model = segmentation_net(cfg.channels).to(device)
    if cfg.init:
        model.load_state_dict({k: v.float() for k, v in torch.load(cfg.init, map_location=device).items()})
        log.info("starting from %s", cfg.init)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: warmup_cosine(step, cfg.steps))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    state = {"step": 0, "best": -1.0, "stale": 0, "history": []}

    checkpoint = out_dir / "checkpoint.pt"
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        trained = tuple(saved.get("config", {}).get("channels", cfg.channels))
        if trained != tuple(cfg.channels):
            raise InputError(
                f"{checkpoint}: this run was trained with --channels {','.join(map(str, trained))}; resume it with "
                "those channels, or give another --out for a new run"
            )
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        scheduler.load_state_dict(saved["scheduler"])
        # map_location moved every tensor to the device; generator states are CPU byte tensors whatever the device
        g.set_state(saved["generator"].cpu())
        torch.set_rng_state(saved["torch_rng"].cpu())  # TorchIO's synthesis draws from the global generator
        state = saved["state"]
        log.info("resumed at step %d (best %.4f)", state["step"], state["best"])

    started = time.monotonic()
    progress.stage("training steps", total=cfg.steps)
    progress.advance(state["step"])
    model.train()
    while state["step"] < cfg.steps and state["stale"] < cfg.patience:
        idx = torch.randint(len(images), (cfg.batch_size,), generator=g, device=device)
        x, extended = random_affine(images[idx], labels[idx], cfg.patch, g)
        if cfg.synthetic_fraction > 0:
            synthetic = torch.rand(cfg.batch_size, generator=g, device=device) < cfg.synthetic_fraction
            if synthetic.any():
                x[synthetic] = synthesise(extended[synthetic], synthesis)
            if (~synthetic).any():
                x[~synthetic] = random_intensity(x[~synthetic], g)
        else:
            x = random_intensity(x, g)  # the shipped model's recipe, draw for draw
        loss = loss_fn(model(x), to_class[extended][:, None])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        scheduler.step()
        state["step"] += 1
        progress.advance()
        if state["step"] % 50 == 0:
            log.info("step %d loss %.4f lr %.2e", state["step"], loss.item(), scheduler.get_last_lr()[0])
        out_of_time = cfg.max_minutes is not None and time.monotonic() - started > cfg.max_minutes * 60
        if state["step"] % cfg.val_every == 0 or state["step"] == cfg.steps or out_of_time:
            dice = dice_per_structure(model, split["val"], device)
            mean = float(np.mean(list(dice.values())))
            state["history"].append({"step": state["step"], "loss": loss.item(), **dice})
            if mean > state["best"]:
                state["best"], state["stale"] = mean, 0
                with atomic_path(out_dir / "best.pt") as tmp:
                    torch.save(model.state_dict(), tmp)
            else:
                state["stale"] += 1
            log.info(
                "step %d val dice %s mean %.4f best %.4f",
                state["step"],
                {k: round(v, 4) for k, v in dice.items()},
                mean,
                state["best"],
            )
            with atomic_path(checkpoint) as tmp:
                torch.save(
                    {
                        "model": model.state_dict(),
                        "optimiser": optimiser.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "generator": g.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "state": state,
                        "config": asdict(cfg),
                    },
                    tmp,
                )
        if out_of_time:
            log.info("stopping: --max-minutes reached; run again with the same --out to resume")
            return checkpoint

    progress.stage("testing and exporting the best model")
    model.load_state_dict(torch.load(out_dir / "best.pt", map_location=device))
    test_dice = dice_per_structure(model, split["test"], device)
    log.info("test dice (model grid) %s", test_dice)
    from lumbar.models.export import export_segmentation_onnx

    return export_segmentation_onnx(model.cpu(), out_dir, cfg, split, state, test_dice)
