"""Train the lumbosacral check: is the lowest disc found L5/S1, or is the image cut above the sacrum?

Examples come from SPIDER's mid-sagittal slices (T1, T2, T2 SPACE; turned head up where stored head down, as
``lumbar analyze`` does, and left out where their way up is unclear) where the shipped segmentation finds exactly
the number of discs the dataset lists and the lowest is not flagged, so that its lowest disc is L5/S1. Each example
is drawn afresh at every step: a disc (L5/S1: positive; L4/L5 or L3/L4: negative), and a field of view ending a
random 3-45 mm below that disc, never farther than the slice reaches below its L5/S1 (one draw in five: exactly that
far). So how far the picture reaches below the disc is the same for both classes and cannot be the answer: a check
trained on negatives with longer views than its positives would learn that an image ending soon below a disc means
the sacrum (``tests/test_train_lumbosacral.py`` guards this). Patches follow
:func:`lumbar.tasks.lumbosacral.disc_patch` exactly.

Split by patient (test, validation, training); ``hold_out_sequence`` leaves one sequence out of training and
validation and tests on it alone (generalisation to a sequence never seen). The operating point is chosen on
validation patients: the highest threshold that flags at most ``max_false_flag`` of true L5/S1 discs. A run writes
``cases.npz`` (the slices and their discs: rebuilt if missing), ``checkpoint.pt`` (resume), ``train.log``, and
``lumbosacral.onnx`` + ``lumbosacral.json`` (threshold, split, figures with CIs, command).
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

from lumbar.io import read_image
from lumbar.io.spider import patient_id, read_overview_spacing
from lumbar.io.write import atomic_path, write_text
from lumbar.metrics import bootstrap_ci, bootstrap_metric_ci, roc_auc
from lumbar.models.export import export_onnx
from lumbar.models.networks import LumbosacralNet
from lumbar.progress import SILENT, Progress
from lumbar.tasks.levels import find_discs, small_lowest_disc_flags
from lumbar.tasks.lumbosacral import PATCH_PX, disc_patch
from lumbar.tasks.orientation import upright_picture
from lumbar.train import log, log_to, resume, save_checkpoint

MAX_DEPTH_MM = 45.0


@dataclass
class LumbosacralConfig:
    data: str  # SPIDER folder: midsag/*.png and overview.csv
    out: str
    steps: int = 1500
    batch_size: int = 48
    lr: float = 2e-3
    val_every: int = 100
    test_fraction: float = 0.2
    val_fraction: float = 0.15
    max_false_flag: float = 0.05
    hold_out_sequence: str | None = None
    seed: int = 0
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


@dataclass
class Case:
    """One mid-sagittal slice whose lowest disc is L5/S1: the discs' centres and lower edges (mm), caudal first."""

    series: str
    patient: str
    sequence: str
    image: np.ndarray
    spacing: tuple[float, float]
    centres: np.ndarray  # (k, 2) row, col mm
    bottoms: np.ndarray  # (k,) lowest row of each disc, mm


def collect_cases(data: Path, progress: Progress = SILENT) -> list[Case]:
    """Segment every listed mid-sagittal slice with the shipped network; keep those whose disc count matches."""
    spacing = read_overview_spacing(data / "overview.csv")
    with open(data / "overview.csv", newline="") as overview:
        listed = {row["new_file_name"]: int(row["num_discs"]) for row in csv.DictReader(overview)}
    paths = [p for p in sorted((data / "midsag").glob("*.png")) if p.stem in listed and p.stem in spacing]
    progress.stage("finding discs on mid-sagittal slices", total=len(paths))
    cases = []
    for path in paths:
        image, semantic, orientation = upright_picture(read_image(path, spacing_mm=spacing[path.stem][0]))
        slice_, classes = image.sagittal_slices()[0], semantic.classes
        pixel = image.sagittal_spacing_mm()
        discs = find_discs(classes, (1.0, *pixel), 0)
        progress.advance()
        if (
            not orientation.decided
            or len(discs) != listed[path.stem]
            or len(discs) < 4
            or small_lowest_disc_flags(discs, (1.0, *pixel))
        ):
            continue
        cases.append(
            Case(
                path.stem,
                patient_id(path.stem),
                path.stem.split("_", 1)[1],
                slice_.astype(np.float32),
                pixel,
                np.array([d.centroid for d in discs]),
                np.array([d.voxels[:, 1].max() * pixel[0] for d in discs]),
            )
        )
    return cases


def save_cases(cases: list[Case], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            meta=json.dumps([[c.series, c.patient, c.sequence, list(c.spacing)] for c in cases]),
            **{f"image_{i}": c.image for i, c in enumerate(cases)},
            **{f"centres_{i}": c.centres for i, c in enumerate(cases)},
            **{f"bottoms_{i}": c.bottoms for i, c in enumerate(cases)},
        )


def load_cases(path: Path) -> list[Case]:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return [
            Case(s, p, q, z[f"image_{i}"], tuple(sp), z[f"centres_{i}"], z[f"bottoms_{i}"])  # type: ignore[arg-type]
            for i, (s, p, q, sp) in enumerate(meta)
        ]


def cut_image(case: Case, disc: int, depth_mm: float | None) -> np.ndarray:
    """The slice as if its field of view ended ``depth_mm`` below disc ``disc``'s lower edge (None: as acquired)."""
    if depth_mm is None:
        return case.image
    rows = int(np.ceil((case.bottoms[disc] + depth_mm) / case.spacing[0]))
    return case.image[: max(1, min(rows, case.image.shape[0]))]


def example(case: Case, disc: int, depth_mm: float | None, rng: np.random.Generator | None = None) -> np.ndarray:
    """One patch: fixed when ``rng`` is None, else turned, zoomed, shifted and with its contrast changed."""
    image = cut_image(case, disc, depth_mm)
    if rng is None:
        return disc_patch(image, case.spacing, tuple(case.centres[disc]))
    centre = case.centres[disc] + rng.normal(0.0, 2.5, 2)
    patch = disc_patch(image, case.spacing, tuple(centre), angle_deg=rng.uniform(-12, 12), scale=rng.uniform(0.85, 1.2))
    grey, inside = patch[0], patch[1] > 0
    if rng.random() < 0.5:
        grey = grey ** np.exp(rng.normal(0.0, 0.35))
    if rng.random() < 0.2:  # a sequence whose fluid and fat swap brightness
        grey = 1.0 - grey
    if rng.random() < 0.3:
        grey = ndimage.gaussian_filter(grey, rng.uniform(0.4, 1.2))
    grey = grey + rng.normal(0.0, rng.uniform(0.0, 0.06), grey.shape)
    patch[0] = np.where(inside, np.clip(grey, 0.0, 1.0), 0.0)
    return patch


def draw_batch(cases: list[Case], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` fresh examples, half L5/S1 and half a lumbar disc above it, reaching equally far below the disc."""
    patches, labels = [], []
    for k in range(n):
        case = cases[rng.integers(len(cases))]
        positive = k % 2 == 0
        disc = 0 if positive else int(rng.choice([1, 2], p=[0.65, 0.35]))
        room = case.image.shape[0] * case.spacing[0] - case.bottoms[0]  # how far this slice reaches below L5/S1
        depth = room if rng.random() < 0.2 else min(room, float(rng.uniform(3.0, MAX_DEPTH_MM)))
        patches.append(example(case, disc, None if positive and depth >= room else depth, rng))
        labels.append(float(positive))
    return np.stack(patches), np.array(labels, np.float32)


def fixed_examples(cases: list[Case]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The evaluation set: L5/S1 as acquired and cut 8/15/25 mm below; L4/L5 and L3/L4 cut 8/15 mm below, and L4/L5
    with the whole image below (L5/S1 missed). Returns patches, labels, patient of each, and what each shows."""
    patches, labels, patients, kinds = [], [], [], []
    plan = [(0, None), (0, 8.0), (0, 15.0), (0, 25.0), (1, 8.0), (1, 15.0), (2, 8.0), (2, 15.0), (1, None)]
    for case in cases:
        for disc, depth in plan:
            patches.append(example(case, disc, depth))
            labels.append(float(disc == 0))
            patients.append(case.patient)
            kinds.append(
                f"{('L5/S1', 'L4/L5', 'L3/L4')[disc]} {'as acquired' if depth is None else f'cut {depth:g} mm'}"
            )
    return np.stack(patches), np.array(labels), np.array(patients), kinds


def split_cases(cases: list[Case], cfg: LumbosacralConfig) -> dict[str, list[Case]]:
    """Train / validation / test by patient; a held-out sequence is removed from training and validation and is
    the only sequence tested."""
    patients = sorted({c.patient for c in cases})
    rng = np.random.default_rng(cfg.seed)
    rng.shuffle(patients)
    n_test = round(cfg.test_fraction * len(patients))
    n_val = round(cfg.val_fraction * len(patients))
    test, val = set(patients[:n_test]), set(patients[n_test : n_test + n_val])
    held = cfg.hold_out_sequence
    split: dict[str, list[Case]] = {"train": [], "val": [], "test": []}
    for case in cases:
        part = "test" if case.patient in test else "val" if case.patient in val else "train"
        if held and (case.sequence == held) != (part == "test"):
            continue
        split[part].append(case)
    return split


def _predict(net: torch.nn.Module, patches: np.ndarray) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        logits = torch.cat(
            [net(torch.from_numpy(chunk)) for chunk in np.array_split(patches, max(1, len(patches) // 256))]
        )
    net.train()
    return torch.sigmoid(logits[:, 0]).numpy()


def operating_point(probabilities: np.ndarray, labels: np.ndarray, max_false_flag: float) -> float:
    """The highest threshold that flags (puts below it) at most ``max_false_flag`` of the true L5/S1 discs."""
    positives = np.sort(probabilities[labels == 1])
    allowed = int(np.floor(max_false_flag * len(positives)))
    return float(positives[allowed]) if len(positives) else 0.5


def figures(
    probabilities: np.ndarray, labels: np.ndarray, patients: np.ndarray, kinds: list[str], threshold: float
) -> dict:
    """AUC, the share of true L5/S1 flagged and of other discs caught, overall and per kind, 95% CIs by patient."""
    flagged = (probabilities < threshold).astype(float)
    out = {
        "n_patients": len(np.unique(patients)),
        "auc": roc_auc(labels, probabilities),
        "auc_ci95": bootstrap_metric_ci(roc_auc, [labels, probabilities], patients),
        "l5s1_flagged": bootstrap_ci(flagged[labels == 1], patients[labels == 1]),
        "others_caught": bootstrap_ci(flagged[labels == 0], patients[labels == 0]),
        "by_kind": {},
    }
    kinds_arr = np.array(kinds)
    for kind in dict.fromkeys(kinds):
        sel = kinds_arr == kind
        out["by_kind"][kind] = {"n": int(sel.sum()), "flagged": bootstrap_ci(flagged[sel], patients[sel])}
    return out


def train_lumbosacral(cfg: LumbosacralConfig, progress: Progress = SILENT) -> Path:
    """Collect (or load) the cases, train with validation-AUC model selection, choose the threshold, export."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_to(out)
    cache = out / "cases.npz"
    if cache.is_file():
        cases = load_cases(cache)
    else:
        cases = collect_cases(Path(cfg.data), progress)
        save_cases(cases, cache)
    split = split_cases(cases, cfg)
    log.info("cases: %s", {k: len(v) for k, v in split.items()})
    val = fixed_examples(split["val"])
    torch.manual_seed(cfg.seed)
    net = LumbosacralNet()
    optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + np.cos(np.pi * min(s, cfg.steps) / cfg.steps))
    )
    checkpoint = out / "checkpoint.pt"
    state = resume(checkpoint, net, optimiser, schedule, {"step": 0, "best": -1.0, "best_weights": None, "history": []})
    if state["step"]:
        log.info("resumed at step %d", state["step"])
    rng = np.random.default_rng(cfg.seed + state["step"])
    progress.stage("training the lumbosacral check", total=cfg.steps)
    progress.advance(state["step"])
    while state["step"] < cfg.steps:
        x, y = draw_batch(split["train"], cfg.batch_size, rng)
        loss = F.binary_cross_entropy_with_logits(net(torch.from_numpy(x))[:, 0], torch.from_numpy(y))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        state["step"] += 1
        progress.advance()
        if state["step"] % cfg.val_every == 0 or state["step"] == cfg.steps:
            auc = roc_auc(val[1], _predict(net, val[0]))
            state["history"].append({"step": state["step"], "loss": loss.item(), "val_auc": auc})
            log.info("step %d loss %.3f val AUC %.4f", state["step"], loss.item(), auc)
            if auc > state["best"]:
                state["best"] = auc
                state["best_weights"] = {k: v.clone() for k, v in net.state_dict().items()}
            save_checkpoint(checkpoint, net, optimiser, schedule, state)
    net.load_state_dict(state["best_weights"])
    net.eval()
    threshold = operating_point(_predict(net, val[0]), val[1], cfg.max_false_flag)
    test = fixed_examples(split["test"])
    meta = {
        "name": "lumbosacral",
        "task": "is the lowest disc found L5/S1",
        "patch_px": PATCH_PX,
        "threshold": threshold,
        "max_false_flag_on_validation": cfg.max_false_flag,
        "trained_steps": state["step"],
        "best_val_auc": state["best"],
        "history": state["history"],
        "validation": figures(_predict(net, val[0]), *val[1:], threshold),
        "test": figures(_predict(net, test[0]), *test[1:], threshold),
        "split_patients": {k: sorted({c.patient for c in v}) for k, v in split.items()},
        "sequences": {k: sorted({c.sequence for c in v}) for k, v in split.items()},
        "config": asdict(cfg),
    }
    path = export_onnx(
        net,
        {"image": torch.zeros(1, 2, PATCH_PX, PATCH_PX)},
        out / "lumbosacral.onnx",
        {"image": {0: "n"}, "logits": {0: "n"}},
    )
    write_text(out / "lumbosacral.json", json.dumps(meta, indent=1))
    log.info("test: %s", json.dumps(meta["test"]))
    return path
