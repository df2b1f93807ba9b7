"""Low back pain recognised from a static-standing recording of trunk and pelvis kinematics and plantar pressure.

After Hu et al. (Ergonomics 2018, "Using a deep learning network to recognise low back pain in static standing"),
who told people with low back pain from controls by a deep network over kinematic and plantar-pressure time series
(97.2% precision). Here a small 1D convolutional network reads windows of a recording (``back_pain`` in
``lumbar/models/weights``, trained by ``lumbar.train.back_pain``); a recording's probability is the mean over its
windows, a subject's the mean over their recordings, and the decision is that probability at the threshold chosen
in cross-validation. The shipped network was trained on simulated recordings only
(:mod:`lumbar.train.back_pain_sim`): it shows the method and is no diagnostic test.

The network's input (:func:`window_inputs`): windows of ``window_s`` seconds every ``hop_s``; in each window the
angles and the centre of pressure less their mean (their offsets depend on the sensors' placement and the plate's
origin, not the person) and the foot loads divided by the window's mean total load (a share of body weight, so
that a shift to one leg stays and body weight goes); then each channel less the training recordings' mean, over
their standard deviation (``centre`` and ``scale`` in the model's JSON).

:func:`standing_measures` gives the classical posturography figures (Prieto et al., IEEE Trans Biomed Eng 1996)
the simulated groups differ in; the trainer's one-feature baseline uses the COP sway RMS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.io.kinematics import CHANNELS, LABELS, LOAD_CHANNELS, Recording, Subject, read_cohort, read_recording
from lumbar.models.registry import load_network_and_record, spec_of

MODEL_PATH = spec_of("back_pain").weights
CAUTION = "trained on simulated recordings only: a demonstration of the method, not a diagnosis"


def window_starts(samples: int, window: int, hop: int) -> np.ndarray:
    """Start indices of the windows of ``window`` samples every ``hop`` that fit in ``samples`` (none if too short)."""
    return np.arange(0, samples - window + 1, hop) if samples >= window else np.zeros(0, int)


def relative_window(window: np.ndarray, channels: tuple[str, ...] = CHANNELS) -> np.ndarray:
    """One window ``[channels, samples]`` without its offsets: angles and COP less their mean, loads over the mean
    total load."""
    out = np.asarray(window, np.float64).copy()
    loads = [channels.index(c) for c in LOAD_CHANNELS]
    others = [k for k in range(len(channels)) if k not in loads]
    out[others] -= out[others].mean(1, keepdims=True)
    total = out[loads].sum(0).mean()
    out[loads] /= total if total > 0 else 1.0
    return out


def window_inputs(
    signals: np.ndarray, window: int, hop: int, centre: np.ndarray | None = None, scale: np.ndarray | None = None
) -> np.ndarray:
    """The network's input of one recording: float32 ``[windows, channels, window]`` (see the module's docstring);
    without ``centre`` and ``scale`` the windows are only made relative (how the training statistics are found)."""
    windows = [relative_window(signals[:, s : s + window]) for s in window_starts(signals.shape[1], window, hop)]
    out = np.stack(windows) if windows else np.zeros((0, signals.shape[0], window))
    if centre is not None and scale is not None:
        out = (out - np.asarray(centre)[None, :, None]) / np.asarray(scale)[None, :, None]
    return out.astype(np.float32)


def standing_measures(recording: Recording) -> dict[str, float]:
    """Posturography figures of one recording.

    ``cop_sway_rms_mm``: RMS distance of the centre of pressure from its mean (Prieto 1996, "RDIST");
    ``cop_velocity_mm_s``: mean speed of the centre of pressure ("MVELO"); ``lumbar_motion_rms_deg``: RMS of trunk
    flexion less pelvic tilt about its mean (how much the trunk moves on the pelvis); ``load_asymmetry``:
    |left - right| / (left + right) of the mean foot loads.
    """
    ap, ml = recording.channel("cop_ap_mm"), recording.channel("cop_ml_mm")
    ap, ml = ap - ap.mean(), ml - ml.mean()
    lumbar = recording.channel("trunk_flexion_deg") - recording.channel("pelvis_tilt_deg")
    left, right = recording.channel("load_left_n").mean(), recording.channel("load_right_n").mean()
    speed = np.hypot(np.diff(ap), np.diff(ml)) * recording.sample_rate_hz
    return {
        "cop_sway_rms_mm": float(np.sqrt(np.mean(ap**2 + ml**2))),
        "cop_velocity_mm_s": float(speed.mean()),
        "lumbar_motion_rms_deg": float(np.std(lumbar)),
        "load_asymmetry": float(abs(left - right) / (left + right)) if left + right > 0 else float("nan"),
    }


@dataclass(frozen=True)
class BackPainModel:
    """The ONNX network and its training record (channels, rate, window, normalisation, threshold, figures)."""

    path: Path
    meta: dict
    session: object

    @property
    def window(self) -> int:
        return round(self.meta["window_s"] * self.meta["sample_rate_hz"])

    @property
    def hop(self) -> int:
        return round(self.meta["hop_s"] * self.meta["sample_rate_hz"])

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """One logit per window of ``inputs`` (``[windows, channels, samples]``, already normalised)."""
        return self.session.run(None, {"signals": np.ascontiguousarray(inputs, np.float32)})[0].reshape(-1)

    def recording_probability(self, recording: Recording) -> tuple[float, int]:
        """The mean over a recording's windows of the probability of low back pain, and how many windows."""
        self.check(recording)
        inputs = window_inputs(recording.signals, self.window, self.hop, self.meta["centre"], self.meta["scale"])
        if not len(inputs):
            raise InputError(
                f"{recording.source}: {recording.duration_s:.1f} s is shorter than the model's window "
                f"({self.meta['window_s']:g} s)"
            )
        return float(np.mean(1 / (1 + np.exp(-self.logits(inputs))))), len(inputs)

    def check(self, recording: Recording) -> None:
        """Refuse a recording whose channels or sample rate are not the ones the network was trained on."""
        if tuple(self.meta["channels"]) != tuple(recording.channels):
            raise InputError(
                f"{self.path}: the model reads channels {', '.join(self.meta['channels'])}; "
                f"{recording.source} has {', '.join(recording.channels)}"
            )
        if abs(float(self.meta["sample_rate_hz"]) - recording.sample_rate_hz) > 1e-6:
            raise InputError(
                f"{recording.source}: resampled to {recording.sample_rate_hz:g} Hz; the model {self.path} reads "
                f"{self.meta['sample_rate_hz']:g} Hz"
            )


@cache
def load_back_pain_model(path: str | Path | None = None) -> BackPainModel:
    """The shipped network, or one trained by ``lumbar.train.back_pain`` (its ``.json`` beside it); once a process."""
    onnx_path = Path(path) if path else MODEL_PATH
    required = ("channels", "sample_rate_hz", "window_s", "hop_s", "centre", "scale", "threshold")
    session, meta = load_network_and_record(onnx_path, "back_pain", "back-pain", required)
    return BackPainModel(onnx_path, meta, session)


@dataclass(frozen=True)
class RecordingScore:
    source: str
    subject: str
    windows: int
    probability: float


@dataclass(frozen=True)
class SubjectScore:
    subject_id: str
    label: str | None  # as given in subjects.csv, if any
    recordings: int
    probability: float  # mean of the recordings' probabilities
    decision: str  # "lbp" at or above the threshold, else "healthy"


@dataclass(frozen=True)
class BackPainResult:
    model: str
    threshold: float
    trained_on: str
    recordings: tuple[RecordingScore, ...]
    subjects: tuple[SubjectScore, ...]

    def to_dict(self) -> dict:
        caution = CAUTION if self.trained_on == "simulated" else None
        return {**asdict(self), "caution": caution}


def score_subjects(subjects: list[Subject], model: BackPainModel) -> BackPainResult:
    """Each recording's and each subject's probability of low back pain, and the decision at the model's
    threshold."""
    threshold = float(model.meta["threshold"])
    recordings, scored = [], []
    for subject in subjects:
        probabilities = []
        for recording in subject.recordings:
            probability, windows = model.recording_probability(recording)
            recordings.append(RecordingScore(str(recording.source), subject.subject_id, windows, probability))
            probabilities.append(probability)
        mean = float(np.mean(probabilities))
        decision = LABELS[1] if mean >= threshold else LABELS[0]
        scored.append(SubjectScore(subject.subject_id, subject.label, len(probabilities), mean, decision))
    return BackPainResult(
        str(model.path), threshold, str(model.meta.get("trained_on", "unknown")), tuple(recordings), tuple(scored)
    )


def recognise_back_pain(
    paths: str | Path | list[str | Path], model: str | Path | None = None, subject: str | None = None
) -> BackPainResult:
    """Score a cohort folder (with ``subjects.csv``), or recording files of one subject (``subject``, by default
    the first file's name), with the shipped network or the one at ``model``."""
    network = load_back_pain_model(str(model) if model else None)
    rate = float(network.meta["sample_rate_hz"])
    paths = [Path(p) for p in (paths if isinstance(paths, list) else [paths])]
    if not paths:
        raise InputError("no recording given")
    folders = [p for p in paths if p.is_dir()]
    if folders and len(paths) > 1:
        raise InputError(f"{folders[0]}: a cohort folder is given alone, not beside other folders or recordings")
    if folders:
        if subject is not None:
            raise InputError(f"{folders[0]}: a cohort names its own subjects; --subject is for recording files")
        subjects = read_cohort(paths[0], rate)
    else:
        repeated = next((p for k, p in enumerate(paths) if p.resolve() in {q.resolve() for q in paths[:k]}), None)
        if repeated is not None:
            raise InputError(f"{repeated}: given twice; a recording counts once")
        name = subject or paths[0].stem
        subjects = [Subject(name, None, tuple(read_recording(p, name, rate) for p in paths))]
    return score_subjects(subjects, network)
