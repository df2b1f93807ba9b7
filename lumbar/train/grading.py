"""Train the disc-grading network: cached crops, patient folds, class weighting, calibration, export.

Each step trains on whole studies (every graded disc of a few series), because the network grades a
disc beside the other discs of its study (``StudyGradingNet``).

A run writes to ``out_dir``: ``samples.npz`` (disc crops joined to gradings; rebuilt if missing),
``coverage.json``, ``fold_<k>.json`` (out-of-fold predictions, one file per finished fold, so a stopped
run resumes at the next fold), ``cv.json`` (the cross-validated metrics reported), and the final model
``grading.onnx`` with ``grading.json`` (temperatures, thresholds, metrics, split, command).
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lumbar.datasets.grading import GradingSample, build_from_spider
from lumbar.errors import InputError
from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES, grading_outputs, n_grading_outputs
from lumbar.io.write import atomic_path, write_text
from lumbar.metrics import grade_metrics
from lumbar.models.networks import StudyGradingNet
from lumbar.progress import SILENT, Progress
from lumbar.tasks.disc_crops import CROP_SHAPE
from lumbar.tasks.grading import calibrated_probabilities, decide, fuse_same_disc, prepare_crops
from lumbar.train import log, log_to
from lumbar.train.augment import mild_intensity, random_affine

GRADES = (*ORDINAL_GRADES, *BINARY_GRADES)


@dataclass
class GradingConfig:
    data: str
    out: str
    folds: int = 5
    steps: int = 2000
    studies_per_step: int = 4  # each step sees every graded disc of this many series (about 28 crops)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_every: int = 100
    patience: int = 8
    val_fraction: float = 0.15
    ordinal_spread: float = 0.0  # > 0: Pfirrmann learns from soft ordinal labels (see ordinal_targets)
    ema_decay: float = 0.0  # > 0: keep an exponential moving average of the weights (see fit)
    study_context: bool = True  # False: grade each disc from its own crop alone
    seed: int = 0
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


def save_samples(samples: list[GradingSample], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            patient=[s.patient for s in samples],
            series=[s.series for s in samples],
            level=[s.level for s in samples],
            crops=np.stack([s.crop for s in samples]).astype(np.float16),
            grades=np.array([[s.grades[g] for g in GRADES] for s in samples]),
        )


def load_samples(cfg: GradingConfig, progress: Progress = SILENT) -> list[GradingSample]:
    """Disc crops joined to gradings, built once per run folder and cached in ``samples.npz``."""
    cache = Path(cfg.out) / "samples.npz"
    if cache.is_file():
        d = np.load(cache, allow_pickle=False)
        return [
            GradingSample(str(p), str(s), str(lv), c.astype(np.float32), dict(zip(GRADES, (int(v) for v in g))))
            for p, s, lv, c, g in zip(d["patient"], d["series"], d["level"], d["crops"], d["grades"])
        ]
    progress.stage("cropping discs", total=len(list((Path(cfg.data) / "midsag").glob("*.png"))))
    samples, coverage = build_from_spider(Path(cfg.data), progress.advance)
    save_samples(samples, cache)
    write_text(
        Path(cfg.out) / "coverage.json",
        json.dumps(
            {
                "graded": dict(coverage.graded),
                "matched": dict(coverage.matched),
                "fraction": {k: coverage.fraction(k) for k in coverage.graded},
                "overall": coverage.fraction(),
                "unmatched": coverage.unmatched,
            },
            indent=1,
        ),
    )
    return samples


def targets(samples: list[GradingSample]) -> dict[str, np.ndarray]:
    return {g: np.array([s.grades[g] for s in samples]) for g in GRADES}


def ordinal_targets(y: torch.Tensor, n_classes: int, spread: float) -> torch.Tensor:
    """Soft labels for an ordinal grade (SORD, Diaz & Marathe, CVPR 2019): class ``k`` gets weight
    ``exp(-spread * (k - y)^2)``, normalised, so a grade off by one costs less than one off by three."""
    distance = (torch.arange(n_classes, device=y.device)[None, :] - y[:, None]).float()
    return torch.softmax(-spread * distance**2, dim=1)


def _loss(
    logits: torch.Tensor, y: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], ordinal_spread: float = 0.0
) -> torch.Tensor:
    """Class-weighted cross-entropy per grade, summed; with ``ordinal_spread`` > 0, Pfirrmann learns from
    :func:`ordinal_targets` (still weighted by the true class)."""
    total = logits.new_zeros(())
    for name, where in grading_outputs().items():
        if name == "pfirrmann" and ordinal_spread > 0:
            w = weights[name][y[name]]
            soft = ordinal_targets(y[name], len(ORDINAL_GRADES[name]), ordinal_spread)
            nll = -(soft * F.log_softmax(logits[:, where], dim=1)).sum(1)
            total = total + (w * nll).sum() / w.sum()
        elif name in ORDINAL_GRADES:
            total = total + F.cross_entropy(logits[:, where], y[name], weight=weights[name])
        else:
            total = total + F.binary_cross_entropy_with_logits(
                logits[:, where][:, 0], y[name].float(), pos_weight=weights[name]
            )
    return total


def _weights(y: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Square-root inverse-frequency class weights (and positive weights): the rare classes count more."""
    out = {}
    for name in GRADES:
        if name in ORDINAL_GRADES:
            counts = np.array([np.sum(y[name] == c) for c in ORDINAL_GRADES[name]], float)
            w = np.sqrt(counts.sum() / (len(counts) * np.maximum(counts, 1)))
            out[name] = torch.tensor(np.clip(w, 0.2, 5.0), dtype=torch.float32)
        else:
            pos = max(1, int(y[name].sum()))
            out[name] = torch.tensor(np.sqrt((len(y[name]) - pos) / pos), dtype=torch.float32)
    return out


def _encode(y: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {
        name: torch.as_tensor(
            np.searchsorted(ORDINAL_GRADES[name], v) if name in ORDINAL_GRADES else v, dtype=torch.long
        )
        for name, v in y.items()
    }


def studies(samples: list[GradingSample]) -> list[np.ndarray]:
    """Indices of ``samples`` grouped by series: the discs one study shows, graded together."""
    by_series: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_series.setdefault(s.series, []).append(i)
    return [np.array(v) for v in by_series.values()]


@torch.no_grad()
def predict_logits(net: StudyGradingNet, crops: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Logits of every crop, each study's discs graded with their own study as context (as at inference)."""
    net.eval()
    out = np.zeros((len(crops), n_grading_outputs()), np.float32)
    for idx in groups:
        x = torch.from_numpy(crops[idx])
        out[idx] = net(x, x).numpy()
    return out


def fit_temperatures(logits: np.ndarray, y: dict[str, np.ndarray]) -> dict[str, float]:
    """Per grade, the temperature that minimises the negative log-likelihood on validation."""
    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 60))
    best = {}
    for name in GRADES:
        nll = []
        for t in grid:
            p = calibrated_probabilities(logits, {name: t})[name]
            if name in ORDINAL_GRADES:
                picked = p[np.arange(len(p)), np.searchsorted(ORDINAL_GRADES[name], y[name])]
            else:
                picked = np.where(y[name] == 1, p, 1 - p)
            nll.append(-np.mean(np.log(np.clip(picked, 1e-7, 1))))
        best[name] = float(grid[int(np.argmin(nll))])
    return best


def fit_thresholds(probs: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> dict[str, float]:
    """Per binary grade, the threshold with the best balanced accuracy on validation."""
    from lumbar.metrics import balanced_accuracy

    out = {}
    for name in BINARY_GRADES:
        grid = np.linspace(0.05, 0.95, 37)
        scores = [
            balanced_accuracy(y[name], (probs[name] >= t).astype(int)) if y[name].min() != y[name].max() else 0.0
            for t in grid
        ]
        out[name] = float(grid[int(np.argmax(scores))]) if max(scores) > 0 else 0.5
    return out


def fit(
    train: list[GradingSample], val: list[GradingSample], cfg: GradingConfig, seed: int, progress: Progress = SILENT
) -> tuple[StudyGradingNet, dict, dict, int]:
    """Train on ``train``, keep the best state on ``val``, then calibrate on ``val``; also returns the best step.
    ``progress`` advances once a step (early stopping may end it before ``cfg.steps``)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x_train = torch.from_numpy(prepare_crops([s.crop for s in train]))
    y_train = targets(train)
    enc = _encode(y_train)
    weights = _weights(y_train)
    x_val = prepare_crops([s.crop for s in val])
    y_val = targets(val)
    enc_val = _encode(y_val)
    train_studies, val_studies = studies(train), studies(val)
    net = StudyGradingNet(study_context=cfg.study_context)
    optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, cfg.steps)
    # Validated, kept and shipped: the network itself, or (ema_decay > 0) an exponential moving average of its
    # weights and batch-norm statistics, which smooths out the step-to-step noise of small batches.
    kept = net
    if cfg.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averaged = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
        kept = averaged.module
    best, best_state, best_step, stale = np.inf, None, 0, 0
    for step in range(1, cfg.steps + 1):
        net.train()
        chosen = torch.randperm(len(train_studies), generator=g)[: cfg.studies_per_step].tolist()
        idx = torch.from_numpy(np.concatenate([train_studies[k] for k in chosen]))
        study = torch.from_numpy(np.concatenate([np.full(len(train_studies[k]), j) for j, k in enumerate(chosen)]))
        x, _ = random_affine(
            x_train[idx],
            torch.zeros(len(idx), *CROP_SHAPE, dtype=torch.long),
            CROP_SHAPE,
            g,
            max_rotation_deg=8,
            scale_range=(0.9, 1.1),
        )
        loss = _loss(
            net.forward_studies(mild_intensity(x, g), study),
            {k: v[idx] for k, v in enc.items()},
            weights,
            cfg.ordinal_spread,
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        scheduler.step()
        if kept is not net:
            averaged.update_parameters(net)
        progress.advance()
        if step % cfg.val_every == 0 or step == cfg.steps:
            with torch.no_grad():
                val_loss = float(_loss(torch.from_numpy(predict_logits(kept, x_val, val_studies)), enc_val, weights))
            log.info("step %d train %.3f val %.3f", step, loss.item(), val_loss)
            if val_loss < best:
                best, best_step, stale = val_loss, step, 0
                best_state = {k: v.clone() for k, v in kept.state_dict().items()}
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
    net.load_state_dict(best_state)
    logits = predict_logits(net, x_val, val_studies)
    temperatures = fit_temperatures(logits, y_val)
    thresholds = fit_thresholds(calibrated_probabilities(logits, temperatures), y_val)
    return net, temperatures, thresholds, best_step


def _split_patients(patients: list[str], fraction: float, seed: int) -> tuple[set[str], set[str]]:
    order = sorted(patients)
    np.random.default_rng(seed).shuffle(order)
    n = max(1, round(len(order) * fraction))
    return set(order[n:]), set(order[:n])


def cross_validate(samples: list[GradingSample], cfg: GradingConfig, progress: Progress = SILENT) -> dict:
    """Patient-level k-fold: out-of-fold calibrated predictions for every disc, then the metrics."""
    out_dir = Path(cfg.out)
    patients = sorted({s.patient for s in samples})
    order = list(patients)
    np.random.default_rng(cfg.seed).shuffle(order)
    folds = [set(order[k :: cfg.folds]) for k in range(cfg.folds)]
    for k, test_patients in enumerate(folds):
        path = out_dir / f"fold_{k}.json"
        if path.is_file():
            continue
        rest = [p for p in patients if p not in test_patients]
        train_p, val_p = _split_patients(rest, cfg.val_fraction, cfg.seed + k)
        progress.stage(f"cross-validation fold {k + 1} of {cfg.folds}", total=cfg.steps)
        net, temps, thresholds, _ = fit(
            [s for s in samples if s.patient in train_p],
            [s for s in samples if s.patient in val_p],
            cfg,
            cfg.seed + k,
            progress,
        )
        test = [i for i, s in enumerate(samples) if s.patient in test_patients]
        test_samples = [samples[i] for i in test]
        probs = calibrated_probabilities(
            predict_logits(net, prepare_crops([s.crop for s in test_samples]), studies(test_samples)), temps
        )
        write_text(
            path,
            json.dumps(
                {
                    "index": test,
                    "temperatures": temps,
                    "thresholds": thresholds,
                    "probs": {k2: v.tolist() for k2, v in probs.items()},
                }
            ),
        )
        log.info("fold %d done: %d test discs", k, len(test))
    probs, thresholds = out_of_fold(out_dir, len(samples))
    report = {"folds": cfg.folds, **out_of_fold_report(samples, probs, thresholds)}
    write_text(out_dir / "cv.json", json.dumps(report, indent=1, default=float))
    return report


def out_of_fold(run: Path, n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A finished cross-validation's (probabilities, decision thresholds) for each of its ``n`` discs: the
    calibrated probabilities of the fold model that never saw the disc's patient, and per binary grade the
    threshold that fold chose on its validation patients."""
    folds = sorted(Path(run).glob("fold_*.json"))
    probs: dict[str, np.ndarray] = {}
    thresholds = {name: np.full(n, np.nan) for name in BINARY_GRADES}
    seen = np.zeros(n, bool)
    for path in folds:
        fold = json.loads(path.read_text())
        index = np.array(fold["index"], int)
        seen[index] = True
        for name, values in fold["probs"].items():
            values = np.asarray(values, float)
            probs.setdefault(name, np.zeros((n, *values.shape[1:])))[index] = values
        for name, value in fold["thresholds"].items():
            thresholds[name][index] = value
    if not folds or not seen.all():
        raise InputError(f"{run}: {int((~seen).sum())} of {n} discs have no out-of-fold prediction; finish the run")
    return probs, thresholds


def out_of_fold_report(
    samples: list[GradingSample], probs: dict[str, np.ndarray], thresholds: dict[str, np.ndarray]
) -> dict:
    """The cross-validated figures of out-of-fold ``probs``, each disc decided at its own ``thresholds``: every
    series graded alone (``metrics``), and each disc from the mean of its patient's series (``metrics_same_patient``;
    a patient's series lie in one fold, so they share its thresholds)."""
    groups = np.array([s.patient for s in samples])
    fused = fuse_same_disc(probs, [f"{s.patient} {s.level}" for s in samples])
    truth = targets(samples)
    return {
        "n_discs": len(samples),
        "n_patients": len(set(groups)),
        "metrics": grade_metrics(truth, decide(probs, thresholds), probs, groups),
        "metrics_same_patient": grade_metrics(truth, decide(fused, thresholds), fused, groups),
    }


def train_grading(cfg: GradingConfig, progress: Progress = SILENT) -> Path:
    """Cross-validate (for the reported figures), then train the shipped model on all patients."""
    from lumbar.models.export import export_onnx

    out_dir = Path(cfg.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_to(out_dir)
    samples = load_samples(cfg, progress)
    log.info("%d graded discs of %d patients", len(samples), len({s.patient for s in samples}))
    report = cross_validate(samples, cfg, progress)
    train_p, val_p = _split_patients(sorted({s.patient for s in samples}), cfg.val_fraction, cfg.seed + 100)
    progress.stage("final model on all patients", total=cfg.steps)
    net, temps, thresholds, best_step = fit(
        [s for s in samples if s.patient in train_p],
        [s for s in samples if s.patient in val_p],
        cfg,
        cfg.seed + 100,
        progress,
    )
    example = torch.zeros(2, 1, *CROP_SHAPE)
    path = export_onnx(
        net,
        {"image": example, "context": example},
        out_dir / "grading.onnx",
        {"image": {0: "n"}, "context": {0: "m"}, "logits": {0: "n"}},
    )
    with atomic_path(out_dir / "grading.pt") as tmp:
        torch.save({k: v.half() for k, v in net.state_dict().items()}, tmp)
    coverage = json.loads((out_dir / "coverage.json").read_text()) if (out_dir / "coverage.json").is_file() else {}
    write_text(
        out_dir / "grading.json",
        json.dumps(
            {
                "name": "grading",
                "trained_steps": best_step,
                "crop_shape": list(CROP_SHAPE),
                "temperatures": temps,
                "thresholds": thresholds,
                "cv": report,
                "coverage": {k: v for k, v in coverage.items() if k != "unmatched"},
                "final_split": {"train": sorted(train_p), "val": sorted(val_p)},
                "config": {k: v for k, v in asdict(cfg).items() if k not in ("data", "out")},
            },
            indent=1,
            default=float,
        ),
    )
    return path
