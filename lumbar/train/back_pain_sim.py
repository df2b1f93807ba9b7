"""Simulated static-standing recordings of people with and without low back pain, written as a cohort folder.

No recording of people with low back pain exists in ``../shared/data``, so the back-pain network is trained and
tested on this simulator, whose group differences are stated here rather than learnt. It writes the layout of
``docs/back_pain_layout.md`` (CSV at ``SOURCE_RATE_HZ``), so the same reader serves simulated and real cohorts.

A trial (``duration_s`` of quiet standing, feet apart) is built from:

- centre-of-pressure sway: white noise through a second-order low-pass filter at the sway's corner frequency,
  scaled to the trial's RMS, anteroposterior (AP) and mediolateral (ML);
- the body as an inverted pendulum over it: pelvic tilt and obliquity follow the sway (COP / height of the centre
  of mass, in degrees) plus small pelvic motion of their own;
- the trunk moves with the pelvis plus motion of its own on it (lumbar motion, with breathing in flexion);
- the loads under the feet: body weight, split by a standing asymmetry and shifted by the ML sway over the stance
  width;
- sensor offsets (placement, plate origin) and measurement noise.

Every subject draws traits (sway amplitude and frequency, lumbar motion, asymmetry, body mass, offsets) and every
trial varies about them (``TRIAL_SPREAD``). The low back pain group differs by :class:`LbpDifferences`, each scaled
by one ``effect`` (0: the groups are drawn alike; 1: the differences below). They are plausible directions from the
literature, not fitted to data: larger and faster COP sway (Ruhe et al., Eur Spine J 2011, a systematic review of
COP excursion in non-specific LBP), less trunk motion on the pelvis, a guarded, stiffer trunk (van Dieën et al.,
J Electromyogr Kinesiol 2003), and weight borne more on one leg. Between subjects the traits spread widely
(``BETWEEN_SUBJECT``), so at effect 1 the groups overlap: the cross-validated balanced accuracy of the network is
0.87 [0.80, 0.93] on 120 subjects (``lumbar/models/cards/back_pain.md``), not 1.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal

from lumbar.io.kinematics import CHANNELS, COHORT_TABLE, LABELS, TIME
from lumbar.io.write import atomic_path, write_text

SOURCE_RATE_HZ = 100.0  # as a force plate and IMUs record; the reader resamples it
GRAVITY_M_S2 = 9.81
COM_HEIGHT_MM = 900.0
STANCE_WIDTH_MM = 200.0

# Healthy standing (eyes open, feet apart): typical magnitudes of quiet-standing posturography.
HEALTHY = {
    "cop_ap_rms_mm": 4.0,
    "cop_ml_rms_mm": 2.5,
    "sway_corner_hz": 0.4,
    "lumbar_motion_deg": 0.5,
    "pelvis_motion_deg": 0.15,
    "breathing_deg": 0.15,
    "body_mass_kg": 72.0,
}
# Between-subject spread: log-normal SD of the multiplicative traits, SD of the additive ones.
BETWEEN_SUBJECT = {
    "sway_amplitude_log_sd": 0.35,
    "sway_corner_log_sd": 0.25,
    "lumbar_motion_log_sd": 0.35,
    "load_asymmetry_sd": 0.03,
    "body_mass_kg_sd": 12.0,
}
TRIAL_SPREAD = 0.12  # log-normal SD of a trial's sway and lumbar motion about the subject's
NOISE = {"deg": 0.05, "mm": 0.1, "n": 2.0}  # measurement noise SD by unit


@dataclass(frozen=True)
class LbpDifferences:
    """The simulated LBP group's differences from the healthy group at effect 1; ``effect`` scales each (ratios
    as ``ratio ** effect``)."""

    sway_amplitude_ratio: float = 1.35  # COP sway RMS, AP and ML
    sway_frequency_ratio: float = 1.3  # the sway's corner frequency: faster sway
    lumbar_motion_ratio: float = 0.6  # the trunk's motion on the pelvis: a stiffer trunk
    load_asymmetry: float = 0.05  # share of body weight moved onto one leg (either side)


@dataclass(frozen=True)
class SubjectTraits:
    subject_id: str
    label: str
    sway_amplitude: float  # times the healthy RMS
    sway_corner_hz: float
    lumbar_motion_deg: float
    load_asymmetry: float  # left share of body weight above 0.5
    body_mass_kg: float
    offsets: dict[str, float] = field(default_factory=dict)


def draw_subject(subject_id: str, lbp: bool, effect: float, rng: np.random.Generator) -> SubjectTraits:
    """A subject's traits: the healthy values times their between-subject spread, times the LBP differences
    (scaled by ``effect``) when ``lbp``."""
    d = LbpDifferences()
    e = effect if lbp else 0.0
    b = BETWEEN_SUBJECT
    side = rng.choice([-1.0, 1.0])
    return SubjectTraits(
        subject_id,
        LABELS[int(lbp)],
        sway_amplitude=float(np.exp(rng.normal(0, b["sway_amplitude_log_sd"])) * d.sway_amplitude_ratio**e),
        sway_corner_hz=float(
            HEALTHY["sway_corner_hz"] * np.exp(rng.normal(0, b["sway_corner_log_sd"])) * d.sway_frequency_ratio**e
        ),
        lumbar_motion_deg=float(
            HEALTHY["lumbar_motion_deg"] * np.exp(rng.normal(0, b["lumbar_motion_log_sd"])) * d.lumbar_motion_ratio**e
        ),
        load_asymmetry=float(rng.normal(0, b["load_asymmetry_sd"]) + side * e * d.load_asymmetry),
        body_mass_kg=float(max(40.0, rng.normal(HEALTHY["body_mass_kg"], b["body_mass_kg_sd"]))),
        offsets={
            "trunk_flexion_deg": rng.normal(5, 4),
            "trunk_lateral_deg": rng.normal(0, 2),
            "trunk_rotation_deg": rng.normal(0, 3),
            "pelvis_tilt_deg": rng.normal(10, 4),
            "pelvis_obliquity_deg": rng.normal(0, 2),
            "cop_ap_mm": rng.normal(40, 15),
            "cop_ml_mm": rng.normal(0, 10),
        },
    )


def _filtered(n: int, corner_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Low-pass filtered white noise of unit RMS (second-order Butterworth at ``corner_hz``, settled)."""
    settle = int(10 * SOURCE_RATE_HZ)
    sos = signal.butter(2, corner_hz, fs=SOURCE_RATE_HZ, output="sos")
    x = signal.sosfilt(sos, rng.normal(size=n + settle))[settle:]
    x -= x.mean()
    return x / x.std()


def simulate_trial(traits: SubjectTraits, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """One trial at ``SOURCE_RATE_HZ``: ``[1 + len(CHANNELS), samples]``, time first."""
    n = int(duration_s * SOURCE_RATE_HZ) + 1
    t = np.arange(n) / SOURCE_RATE_HZ
    trial = np.exp(rng.normal(0, TRIAL_SPREAD, 2))
    sway = traits.sway_amplitude * trial[0]
    ap = HEALTHY["cop_ap_rms_mm"] * sway * _filtered(n, traits.sway_corner_hz, rng)
    ml = HEALTHY["cop_ml_rms_mm"] * sway * _filtered(n, traits.sway_corner_hz, rng)
    to_deg = np.degrees(1 / COM_HEIGHT_MM)
    lumbar = traits.lumbar_motion_deg * trial[1]
    pelvis = HEALTHY["pelvis_motion_deg"]
    breathing = HEALTHY["breathing_deg"] * np.sin(2 * np.pi * rng.uniform(0.2, 0.33) * t + rng.uniform(0, 2 * np.pi))
    pelvis_tilt = ap * to_deg + pelvis * _filtered(n, 0.5, rng)
    pelvis_obliquity = ml * to_deg + pelvis * _filtered(n, 0.5, rng)
    weight = traits.body_mass_kg * GRAVITY_M_S2 * (1 + 0.003 * _filtered(n, 2.0, rng))
    left_share = 0.5 + traits.load_asymmetry - ml / STANCE_WIDTH_MM
    clean = {
        "trunk_flexion_deg": pelvis_tilt + lumbar * _filtered(n, 0.3, rng) + breathing,
        "trunk_lateral_deg": pelvis_obliquity + 0.7 * lumbar * _filtered(n, 0.3, rng),
        "trunk_rotation_deg": 0.6 * lumbar * _filtered(n, 0.3, rng),
        "pelvis_tilt_deg": pelvis_tilt,
        "pelvis_obliquity_deg": pelvis_obliquity,
        "cop_ap_mm": ap,
        "cop_ml_mm": ml,
        "load_left_n": weight * left_share,
        "load_right_n": weight * (1 - left_share),
    }
    rows = [t]
    for name in CHANNELS:
        noise = NOISE[name.rsplit("_", 1)[1]]
        rows.append(clean[name] + traits.offsets.get(name, 0.0) + rng.normal(0, noise, n))
    return np.stack(rows)


def simulate_cohort(
    folder: str | Path,
    n_subjects: int,
    effect: float = 1.0,
    seed: int = 0,
    recordings_per_subject: int = 2,
    duration_s: float = 30.0,
) -> Path:
    """Write ``n_subjects`` (half with low back pain, alternating) with ``recordings_per_subject`` trials each into
    ``folder`` in the documented layout; the same arguments write the same files."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_subjects):
        traits = draw_subject(f"s{k:03d}", lbp=k % 2 == 1, effect=effect, rng=rng)
        for r in range(recordings_per_subject):
            name = f"{traits.subject_id}_trial{r + 1}.csv"
            write_trial(folder / "recordings" / name, simulate_trial(traits, duration_s, rng))
            rows.append((traits.subject_id, traits.label, f"recordings/{name}"))
    with atomic_path(folder / COHORT_TABLE) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["subject_id", "label", "recording"])
        writer.writerows(rows)
    return folder


def write_trial(path: Path, trial: np.ndarray) -> Path:
    header = ",".join((TIME, *CHANNELS))
    lines = [header] + [",".join(f"{v:.4f}" for v in row) for row in trial.T]
    return write_text(path, "\n".join(lines) + "\n")
