"""Vertebra tracking in fluoroscopy, on held-out simulated flexion–extension sequences.

No fluoroscopy exists here, so every figure is on sequences simulated (``lumbar/train/fluoro_sim.py``) from the
SPIDER anatomies of the patients the model's record lists as test patients (never used in training or model
selection): one anatomy per patient, ``--frames`` frames from extension to flexion or back. L1–L4 are tracked from
their true boxes on the first frame through ``lumbar.tasks.tracking.track_sequence`` (the ONNX path the CLI uses).
Per body and later frame: centre error (px and mm; median, 95% CI by patient bootstrap), rotated IoU, angle error
(°), and per level and frame the intervertebral angle error (°); frames per second for 4 bodies (one thread).
Beside it the same figures for **a trivial baseline**: every box left where it was on the first frame.

``python bench/tracking.py [--model runs/tracking/tracking.onnx] [--frames 24] [--patients N]`` writes
``bench/results/tracking.json`` and its summary to ``bench/claims/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save

from lumbar.metrics import bootstrap_metric_ci
from lumbar.tasks.tracking import WEIGHTS, TrackResult, intervertebral_angle_deg, rotated_iou, track_sequence
from lumbar.train.fluoro_sim import simulate_sequence
from lumbar.train.lateral_drr import Anatomy

ROOT = Path(__file__).resolve().parents[1]
TRACKED = 4  # L1-L4
LOST_PX = 5.0


def errors(result: TrackResult, seq) -> dict[str, list[float]]:
    """Per body and frame after the first: centre error (px, mm), IoU, angle error; per level: angle error."""
    out = {"centre_px": [], "centre_mm": [], "iou": [], "angle_deg": [], "intervertebral_deg": []}
    for t in range(1, len(seq.frames)):
        truth, got = seq.boxes_at(t)[:TRACKED], result.boxes[t]
        for g, w in zip(got, truth):
            d = float(np.hypot(g.cx - w.cx, g.cy - w.cy))
            out["centre_px"].append(d)
            out["centre_mm"].append(d * seq.pixel_mm)
            out["iou"].append(rotated_iou(g, w))
            out["angle_deg"].append(abs(g.angle_deg - w.angle_deg))
        for k in range(TRACKED - 1):
            true_angle = intervertebral_angle_deg(truth[k], truth[k + 1])
            out["intervertebral_deg"].append(abs(intervertebral_angle_deg(got[k], got[k + 1]) - true_angle))
    return out


def summary(rows: list[dict], key: str) -> dict:
    values = np.concatenate([r[key] for r in rows])
    patients = np.concatenate([[r["patient"]] * len(r[key]) for r in rows])
    return {"median": float(np.median(values)), "ci95": bootstrap_metric_ci(np.median, [values], patients)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a trained candidate's ONNX (default: the shipped model)")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--patients", type=int, default=None, help="at most this many test patients")
    args = parser.parse_args()
    model = Path(args.model) if args.model else WEIGHTS
    record = json.loads(model.with_suffix(".json").read_text())
    test = set(record["split_patients"]["test"])
    anatomies = {}
    for path in sorted((ROOT / "runs" / "lateral" / "anatomies").glob("*.npz")):
        anatomy = Anatomy.load(path)
        if anatomy.patient in test and anatomy.patient not in anatomies and "L1" in anatomy.names:
            anatomies[anatomy.patient] = anatomy
    rows, base_rows, speeds = [], [], []
    for k, (patient, anatomy) in enumerate(sorted(anatomies.items())[: args.patients]):
        seq = simulate_sequence(anatomy, args.frames, seed=50_000 + k)
        boxes0 = seq.boxes_at(0)[:TRACKED]
        result = track_sequence(seq.frames, boxes0, seq.names[:TRACKED], model)
        still = TrackResult(seq.names[:TRACKED], [boxes0] * len(seq.frames), np.zeros((len(seq.frames), TRACKED)))
        speeds.append(result.frames_per_s)
        level_range = np.ptp(seq.boxes[:, 0, 4] - seq.boxes[:, TRACKED - 1, 4])
        rows.append(
            {"patient": patient, "series": seq.series, "l1_l4_range_deg": float(level_range), **errors(result, seq)}
        )
        per_body = np.array(rows[-1]["centre_px"]).reshape(-1, TRACKED)
        rows[-1]["lost_bodies"] = int((np.median(per_body, axis=0) > LOST_PX).sum())
        base_rows.append({"patient": patient, **errors(still, seq)})
        centre, angle = np.median(rows[-1]["centre_px"]), np.median(rows[-1]["angle_deg"])
        print(f"{seq.series}: centre {centre:.2f} px, angle {angle:.2f}°")
    keys = ("centre_px", "centre_mm", "iou", "angle_deg", "intervertebral_deg")
    table = {
        "tracker": {k: summary(rows, k) for k in keys},
        "baseline_boxes_left_on_frame_0": {k: summary(base_rows, k) for k in keys},
    }
    payload = {
        "model": f"{model.resolve().relative_to(ROOT) if model.resolve().is_relative_to(ROOT) else model} "
        f"(trained on {record.get('trained_on')})",
        # a body lost: its median centre error over the sequence above LOST_PX (bodies are about 30 px apart)
        "sequences_with_a_lost_body": int(sum(r["lost_bodies"] > 0 for r in rows)),
        "lost_px": LOST_PX,
        "sequences": len(rows),
        "patients": len(rows),
        "frames_per_sequence": args.frames,
        "bodies_tracked": "L1-L4",
        "l1_l4_motion_range_deg_median": float(np.median([r["l1_l4_range_deg"] for r in rows])),
        "frames_per_s_4_bodies_median": float(np.median(speeds)),
        **table,
        "targets": {"frames_per_s": 25, "centre_error_px": 2, "angle_error_deg": 2},
        "rows": [{k: (float(np.median(v)) if isinstance(v, list) else v) for k, v in r.items()} for r in rows],
    }
    print(f"{'':32} {'centre px':>16} {'centre mm':>16} {'IoU':>16} {'angle °':>16} {'IV angle °':>16}")
    for name, figures in table.items():
        cells = [f"{figures[k]['median']:.2f} [{figures[k]['ci95'][0]:.2f}, {figures[k]['ci95'][1]:.2f}]" for k in keys]
        print(f"{name:32} " + " ".join(f"{c:>16}" for c in cells))
    print(f"frames/s (4 bodies, one thread): {payload['frames_per_s_4_bodies_median']:.0f}")
    print(save("tracking", payload))


if __name__ == "__main__":
    main()
