"""Train the low-back-pain network on static-standing recordings, cross-validated by subject.

After Hu et al. (Ergonomics 2018), who recognised low back pain from kinematic and plantar-pressure time series of
static standing with a deep (LSTM) network. Here a small 1D convolutional network (:class:`BackPainNet`) reads
``window_s`` windows of the nine channels of :data:`lumbar.io.kinematics.CHANNELS` (inputs as
:func:`lumbar.tasks.back_pain.window_inputs` makes them); each training epoch draws windows at random starts in
every recording and mirrors half of them left-right (lateral bend, rotation, obliquity and ML sway negated, the
feet's loads swapped).

Data: a cohort folder (``docs/back_pain_layout.md``), or ``simulate`` subjects written by
:mod:`lumbar.train.back_pain_sim` at ``effect``. Subjects without a label are left out of training.

Subject k-fold cross-validation, stratified by label: per fold a network is trained on the other folds' subjects
(a fifth of them held back to stop training when their loss stops falling) and scores its own; a subject's
probability is the mean over their recordings of the mean over windows. The out-of-fold probabilities give the AUC,
and precision, recall and balanced accuracy at a threshold chosen on one half of the subjects and applied to the
other (both ways: no subject is judged at a threshold chosen on them), each with a 95% CI by subject bootstrap,
beside baselines fitted in the same folds: the majority class, logistic regression on the COP sway RMS alone, and
on all four standing measures (:func:`lumbar.tasks.back_pain.standing_measures`). The shipped threshold maximises
the balanced accuracy over all out-of-fold probabilities. A final network, trained on every subject for the median
number of epochs the folds kept, is exported (``back_pain.onnx`` + ``back_pain.json``).
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
from torch import nn

from lumbar.errors import InputError
from lumbar.io.kinematics import CHANNELS, LABELS, SAMPLE_RATE_HZ, Subject, read_cohort
from lumbar.io.write import write_text
from lumbar.metrics import balanced_accuracy, bootstrap_metric_ci, roc_auc
from lumbar.models.export import export_onnx
from lumbar.models.networks import BackPainNet
from lumbar.progress import SILENT, Progress
from lumbar.tasks.back_pain import relative_window, standing_measures, window_inputs
from lumbar.train import log, log_to, one_thread
from lumbar.train.back_pain_sim import BETWEEN_SUBJECT, LbpDifferences, simulate_cohort

CROPS_PER_RECORDING = 4  # windows drawn from each recording in an epoch
# Left-right mirror: channels negated, and the pair of foot loads swapped.
MIRROR_NEGATED = ("trunk_lateral_deg", "trunk_rotation_deg", "pelvis_obliquity_deg", "cop_ml_mm")
MIRROR_SWAPPED = ("load_left_n", "load_right_n")
MEASURES = ("cop_sway_rms_mm", "cop_velocity_mm_s", "lumbar_motion_rms_deg", "load_asymmetry")


@dataclass
class BackPainConfig:
    out: str
    data: str | None = None  # a cohort folder; None: simulate
    simulate: int = 120  # subjects simulated when no data is given
    effect: float = 1.0  # the simulated group difference (0: none)
    folds: int = 5
    epochs: int = 60  # at most; a fold stops after ``patience`` epochs without a lower validation loss
    patience: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    window_s: float = 10.0
    hop_s: float = 5.0  # between the windows that are scored
    seed: int = 0
    command: str = field(default_factory=lambda: shlex.join(["lumbar", *sys.argv[1:]]))


@dataclass
class Windows:
    """Relative windows (offsets removed, not yet normalised) and their labels."""

    inputs: np.ndarray  # float32 [n, channels, samples]
    labels: np.ndarray  # 0 healthy, 1 lbp, per window


def subject_windows(subjects: list[Subject], window: int, hop: int) -> Windows:
    inputs, labels = [], []
    for s in subjects:
        for r in s.recordings:
            w = window_inputs(r.signals, window, hop)
            inputs.append(w)
            labels += [LABELS.index(s.label)] * len(w)
    return Windows(np.concatenate(inputs), np.array(labels, np.float32))


def normalisation(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of relative windows (the scale never below 1e-6)."""
    return inputs.mean((0, 2)), np.maximum(inputs.std((0, 2)), 1e-6)


def mirror(inputs: np.ndarray) -> np.ndarray:
    """Windows seen in a mirror: lateral channels negated, the feet's loads swapped."""
    out = inputs.copy()
    out[:, [CHANNELS.index(c) for c in MIRROR_NEGATED]] *= -1
    out[:, [CHANNELS.index(c) for c in MIRROR_SWAPPED]] = inputs[:, [CHANNELS.index(c) for c in MIRROR_SWAPPED[::-1]]]
    return out


def subject_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold of each subject: subjects shuffled within each label and dealt round the folds in turn, so every
    fold holds nearly the same share of each label."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), int)
    dealt = 0
    for value in np.unique(labels):
        members = rng.permutation(np.nonzero(labels == value)[0])
        fold[members] = (dealt + np.arange(len(members))) % folds
        dealt += len(members)
    return fold


def random_windows(subjects: list[Subject], window: int, per_recording: int, rng: np.random.Generator) -> Windows:
    """``per_recording`` relative windows at random starts in each recording, half of them mirrored."""
    inputs, labels = [], []
    for s in subjects:
        for r in s.recordings:
            for start in rng.integers(0, r.signals.shape[1] - window + 1, per_recording):
                inputs.append(relative_window(r.signals[:, start : start + window]))
                labels.append(LABELS.index(s.label))
    x = np.stack(inputs).astype(np.float32)
    flip = rng.random(len(x)) < 0.5
    x[flip] = mirror(x[flip])
    return Windows(x, np.array(labels, np.float32))


def train_net(
    subjects: list[Subject],
    val: Windows | None,
    centre: np.ndarray,
    scale: np.ndarray,
    cfg: BackPainConfig,
    seed: int,
    epochs: int,
) -> tuple[BackPainNet, int]:
    """A network trained on ``subjects`` (classes weighted to balance; each epoch ``CROPS_PER_RECORDING`` windows
    drawn afresh from every recording), and the epoch kept: the one with the lowest loss on ``val``, or the last
    when there is no ``val``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = BackPainNet()
    optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-2)
    labels = np.array([LABELS.index(s.label) for s in subjects for _ in s.recordings])
    pos_weight = torch.tensor((labels == 0).sum() / max((labels == 1).sum(), 1), dtype=torch.float32)
    c, s = torch.from_numpy(centre[None, :, None]).float(), torch.from_numpy(scale[None, :, None]).float()
    best, best_epoch, best_state = np.inf, epochs, None
    window = _samples(cfg.window_s)
    for epoch in range(1, epochs + 1):
        net.train()
        train = random_windows(subjects, window, CROPS_PER_RECORDING, rng)
        order = rng.permutation(len(train.labels))
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            logits = net((torch.from_numpy(train.inputs[batch]) - c) / s)[:, 0]
            target = torch.from_numpy(train.labels[batch])
            loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if val is None:
            continue
        logits = torch.from_numpy(window_logits(net, val.inputs, centre, scale))
        loss = float(F.binary_cross_entropy_with_logits(logits, torch.from_numpy(val.labels), pos_weight=pos_weight))
        if loss < best:
            best, best_epoch, best_state = loss, epoch, {k: v.clone() for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= cfg.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval(), best_epoch


def window_logits(net: nn.Module, inputs: np.ndarray, centre: np.ndarray, scale: np.ndarray) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        x = (torch.from_numpy(inputs) - torch.from_numpy(centre[None, :, None]).float()) / torch.from_numpy(
            scale[None, :, None]
        ).float()
        return torch.cat([net(x[k : k + 256])[:, 0] for k in range(0, len(x), 256)]).numpy()


def subject_probabilities(
    net: nn.Module, subjects: list[Subject], window: int, hop: int, centre: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Per subject: the mean over their recordings of the mean window probability."""
    out = []
    for s in subjects:
        per_recording = []
        for r in s.recordings:
            logits = window_logits(net, window_inputs(r.signals, window, hop), centre, scale)
            per_recording.append(np.mean(1 / (1 + np.exp(-logits))))
        out.append(float(np.mean(per_recording)))
    return np.array(out)


def measure_table(subjects: list[Subject]) -> np.ndarray:
    """Per subject, the log of each standing measure (:data:`MEASURES`) averaged over their recordings."""
    return np.array(
        [[np.log(np.mean([standing_measures(r)[m] for r in s.recordings]) + 1e-6) for m in MEASURES] for s in subjects]
    )


def logistic_probabilities(features: np.ndarray, labels: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Logistic regression (standardised features, classes balanced) fitted on the ``train`` rows, for every row."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced"))
    return model.fit(features[train], labels[train]).predict_proba(features)[:, 1]


def precision(truth: np.ndarray, decision: np.ndarray) -> float:
    """Share of the subjects called positive who are; NaN when none is called."""
    truth, decision = np.asarray(truth), np.asarray(decision, bool)
    return float(np.mean(truth[decision] == 1)) if decision.any() else float("nan")


def recall(truth: np.ndarray, decision: np.ndarray) -> float:
    """Share of the positive subjects called positive; NaN without positives."""
    truth, decision = np.asarray(truth), np.asarray(decision, bool)
    return float(np.mean(decision[truth == 1])) if (truth == 1).any() else float("nan")


def best_threshold(truth: np.ndarray, score: np.ndarray) -> float:
    """The threshold (``score >= threshold`` is positive) of highest balanced accuracy, midway between two scores;
    the lowest such when several tie."""
    values = np.unique(score)
    candidates = np.concatenate([[values[0]], (values[1:] + values[:-1]) / 2, [np.nextafter(values[-1], np.inf)]])
    accuracy = [balanced_accuracy(truth, (score >= t).astype(int)) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def cross_fitted_decisions(truth: np.ndarray, score: np.ndarray, seed: int) -> np.ndarray:
    """Decisions at thresholds chosen on the other half of the subjects (halves drawn within each label)."""
    half = subject_folds(truth, 2, seed) == 0
    decision = np.zeros(len(truth), bool)
    for fit, apply in ((half, ~half), (~half, half)):
        decision[apply] = score[apply] >= best_threshold(truth[fit], score[fit])
    return decision


def figures(truth: np.ndarray, score: np.ndarray, decision: np.ndarray, subjects: np.ndarray) -> dict:
    """Precision, recall, balanced accuracy (of ``decision``) and AUC (of ``score``), each with a 95% CI resampling
    subjects."""
    out = {}
    for name, metric, arrays in (
        ("precision", precision, [truth, decision]),
        ("recall", recall, [truth, decision]),
        ("balanced_accuracy", balanced_accuracy, [truth, decision.astype(int)]),
        ("auc", roc_auc, [truth, score]),
    ):
        out[name] = metric(*arrays)
        out[f"{name}_ci95"] = bootstrap_metric_ci(metric, arrays, subjects)
    return out


@one_thread()
def cross_validate(subjects: list[Subject], cfg: BackPainConfig, progress: Progress = SILENT) -> dict:
    """Out-of-fold subject probabilities of the network and the baselines, their figures, the epochs each fold
    kept and the fold of each subject."""
    labels = np.array([LABELS.index(s.label) for s in subjects])
    ids = np.array([s.subject_id for s in subjects])
    folds = min(cfg.folds, int(np.bincount(labels, minlength=2).min()))
    if folds < 2:
        raise InputError(f"{cfg.data or cfg.out}: cross-validation needs at least two subjects of each label")
    window, hop = _samples(cfg.window_s), _samples(cfg.hop_s)
    fold = subject_folds(labels, folds, cfg.seed)
    measures = measure_table(subjects)
    scores = {name: np.zeros(len(subjects)) for name in ("network", "cop_sway_rms", "standing_measures")}
    majority = np.zeros(len(subjects), int)
    kept_epochs = []
    progress.stage("cross-validation folds", total=folds)
    for k in range(folds):
        held, rest = np.nonzero(fold == k)[0], np.nonzero(fold != k)[0]
        inner = subject_folds(labels[rest], 5, cfg.seed + k) == 0
        fit, val = rest[~inner], rest[inner]
        centre, scale = normalisation(subject_windows([subjects[i] for i in fit], window, hop).inputs)
        val_windows = subject_windows([subjects[i] for i in val], window, hop)
        net, epoch = train_net([subjects[i] for i in fit], val_windows, centre, scale, cfg, cfg.seed + k, cfg.epochs)
        kept_epochs.append(epoch)
        scores["network"][held] = subject_probabilities(net, [subjects[i] for i in held], window, hop, centre, scale)
        scores["cop_sway_rms"][held] = logistic_probabilities(measures[:, :1], labels, rest)[held]
        scores["standing_measures"][held] = logistic_probabilities(measures, labels, rest)[held]
        majority[held] = int(labels[rest].mean() >= 0.5)  # a tie goes to low back pain; one score for all: AUC 0.5
        log.info("fold %d of %d: kept epoch %d", k + 1, folds, epoch)
        progress.advance()
    table = {"majority_class": figures(labels, np.full(len(labels), 0.5), majority.astype(bool), ids)}
    for name, score in scores.items():
        table[name] = figures(labels, score, cross_fitted_decisions(labels, score, cfg.seed), ids)
    return {
        "folds": folds,
        "n_subjects": len(subjects),
        "n_recordings": sum(len(s.recordings) for s in subjects),
        "label_counts": {name: int((labels == k).sum()) for k, name in enumerate(LABELS)},
        "figures": table,
        "threshold": best_threshold(labels, scores["network"]),
        "kept_epochs": kept_epochs,
        "fold_of_subject": {str(i): int(f) for i, f in zip(ids, fold)},
        "network_probability": {str(i): float(p) for i, p in zip(ids, scores["network"])},
    }


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE_HZ)


def load_subjects(cfg: BackPainConfig) -> list[Subject]:
    """The labelled subjects of ``cfg.data``, or of a cohort simulated into ``out/simulated``."""
    folder = (
        Path(cfg.data) if cfg.data else simulate_cohort(Path(cfg.out) / "simulated", cfg.simulate, cfg.effect, cfg.seed)
    )
    subjects = read_cohort(folder)
    labelled = [s for s in subjects if s.label is not None]
    if len(labelled) < len(subjects):
        log.info("%d subjects without a label left out", len(subjects) - len(labelled))
    return labelled


@one_thread()
def train_back_pain(cfg: BackPainConfig, progress: Progress = SILENT) -> Path:
    """Cross-validate by subject, then train on every subject and export ``back_pain.onnx`` and its JSON."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_to(out)
    subjects = load_subjects(cfg)
    cv = cross_validate(subjects, cfg, progress)
    log.info("cross-validation: %s", json.dumps(cv["figures"]))
    progress.stage("final network on every subject")
    window = _samples(cfg.window_s)
    centre, scale = normalisation(subject_windows(subjects, window, _samples(cfg.hop_s)).inputs)
    epochs = int(np.median(cv["kept_epochs"]))
    net, _ = train_net(subjects, None, centre, scale, cfg, cfg.seed + cv["folds"], epochs)
    meta = {
        "name": "back_pain",
        "task": "low back pain or not, from a static-standing recording of trunk and pelvis kinematics and plantar "
        "pressure",
        "trained_on": "recordings" if cfg.data else "simulated",
        "channels": list(CHANNELS),
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "window_s": cfg.window_s,
        "hop_s": cfg.hop_s,
        "normalisation": "per window: angles and COP less their mean, loads over the mean total load; then per "
        "channel (x - centre) / scale, from the training windows",
        "centre": [float(v) for v in centre],
        "scale": [float(v) for v in scale],
        "threshold": cv["threshold"],
        "threshold_rule": "highest balanced accuracy of the out-of-fold subject probabilities",
        "final_epochs": epochs,
        "cv": cv,
        "command": cfg.command,
        "config": asdict(cfg),
    }
    if not cfg.data:
        meta["simulator"] = {
            "n_subjects": cfg.simulate,
            "effect": cfg.effect,
            "seed": cfg.seed,
            "lbp_differences_at_effect_1": asdict(LbpDifferences()),
            "between_subject": BETWEEN_SUBJECT,
        }
    path = export_back_pain(net, out / "back_pain.onnx", window)
    write_text(out / "back_pain.json", json.dumps(meta, indent=1))
    return path


def export_back_pain(net: nn.Module, path: Path, window: int) -> Path:
    """The network as ONNX: input ``signals`` (n, channels, ``window``), output ``logits`` (n, 1)."""
    axes = {"signals": {0: "n"}, "logits": {0: "n"}}
    return export_onnx(net, {"signals": torch.zeros(1, len(CHANNELS), window)}, path, axes)
