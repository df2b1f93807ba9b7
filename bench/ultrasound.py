"""Ultrasound levels: frame classes and named gaps on sweeps the network never saw, and frames per second.

No ultrasound of the spine exists here, so every figure is on simulated sweeps (``lumbar/train/ultrasound_sim.py``):
* **held-out SPIDER patients**: the test patients the model's record lists (never used in training or model
  selection), ``--sweeps`` fresh sweeps each, drawn with ``--seed`` (not the seeds of the training run's own test
  figures). Per frame: accuracy, balanced accuracy (95% CI by patient bootstrap), per-class recall and the confusion
  matrix, beside the majority class and the brightness rule the training run fitted (both in the model's record).
  Per sweep: the counter's level accuracy over the true gaps (all counted ones, and those verified against the
  discs) for the network, the brightness rule and the true frame classes, read through the inference path
  (:class:`lumbar.tasks.ultrasound.UltrasoundModel`, onnxruntime);
* **CT anatomy** (an anatomy from another source and a true paramedian plane, 10-20 mm from the midline): the
  TotalSegmentator example (T11-S1; its S1 label is the sacrum) as sweeps, VerSe 012 (T10-L3, no sacrum: frames
  only);
* **speed**: frames per second of classification (preparation included) on 1 thread and on 2, frame by frame (a
  live probe) and in batches, from 64 x 64 frames and from 480 x 640 frames (a scanner's screen).

``python bench/ultrasound.py [--model runs/ultrasound/ultrasound.onnx] [--sweeps 8]`` writes
``bench/results/ultrasound.json`` and its summary to ``bench/claims/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.models.registry import weights_sha256
from lumbar.tasks.ultrasound import CLASSES, UltrasoundModel, load_ultrasound_model
from lumbar.train.ultrasound import (
    brightness_rule,
    frame_figures,
    level_figures,
    level_rows,
    middle_brightness,
    one_hot,
    stacked,
)
from lumbar.train.ultrasound_sim import CT_SOURCES, SpineVolume, build_spider_volumes, ct_volume, simulate_sweeps

ROOT = Path(__file__).resolve().parents[1]


def figures(model, sweeps, with_levels: bool = True) -> dict:
    """Frame figures of the network and the two baselines, and (with ``with_levels``) the counter's level accuracy."""
    frames, labels, patients = stacked(sweeps)
    probs = model.probabilities(frames)
    ruled = brightness_rule(middle_brightness(frames), model.meta["brightness_rule"])
    majority = CLASSES.index(model.meta["majority_class"])
    out = {
        "sweeps": len(sweeps),
        "frames": len(labels),
        "class_counts": {c: int((labels == k).sum()) for k, c in enumerate(CLASSES)},
        "network": frame_figures(labels, probs.argmax(1), patients),
        "majority_class": frame_figures(labels, np.full_like(labels, majority), patients),
        "brightness_rule": frame_figures(labels, ruled, patients),
    }
    if with_levels:
        splits = np.cumsum([len(s.labels) for s in sweeps])[:-1]
        per_sweep = {
            "network": np.split(probs, splits),
            "brightness_rule": np.split(one_hot(ruled), splits),
            "true_classes": [one_hot(s.labels) for s in sweeps],
        }
        out["levels"] = {k: level_figures(level_rows(sweeps, p), len(sweeps)) for k, p in per_sweep.items()}
    return out


def speed(path: Path) -> dict:
    """Frames per second of :meth:`UltrasoundModel.probabilities` (preparation included) on 1 and 2 threads."""
    import onnxruntime as ort

    meta = load_ultrasound_model(str(path)).meta
    rng = np.random.default_rng(0)
    out = {}
    for threads in (1, 2):
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        model = UltrasoundModel(
            path, meta, ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        )
        for size in ((64, 64), (480, 640)):
            frames = rng.uniform(0, 255, (256, *size)).astype(np.float32)
            for batch in (1, 64):
                model.probabilities(frames[:batch], batch)  # warm-up
                start, done = time.perf_counter(), 0
                while time.perf_counter() - start < 2.0:
                    for k in range(0, len(frames), batch):
                        model.probabilities(frames[k : k + batch], batch)
                    done += len(frames)
                key = f"{threads}_thread{'s' if threads > 1 else ''}_{size[0]}x{size[1]}_batch{batch}"
                out[key] = done / (time.perf_counter() - start)
    return out


def shown(path: Path) -> str:
    """A path inside the repository relative to it (the claims are committed: no machine's own paths)."""
    return str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="an ONNX from lumbar train ultrasound (default: shipped)")
    parser.add_argument("--sweeps", type=int, default=8, help="sweeps per test patient")
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()
    model = load_ultrasound_model(args.model)
    test = model.meta["split_patients"]["test"]
    paths = build_spider_volumes(SHARED_DATA / "spider", ROOT / "runs" / "ultrasound" / "anatomies")
    volumes = [v for v in map(SpineVolume.load, paths) if v.patient in test]
    start = time.perf_counter()
    held_out = figures(model, simulate_sweeps(volumes, args.sweeps, args.seed))
    payload = {
        "model": f"{shown(model.path)} (sha256 {weights_sha256(model.path)[:12]})",
        "trained_on": model.meta["trained_on"],
        "test_patients": test,
        "held_out_spider": held_out,
        "seconds_simulating_and_reading": time.perf_counter() - start,
    }
    for key, (relative, names) in CT_SOURCES.items():
        volume = ct_volume(SHARED_DATA / relative, names, key)
        sweeps = simulate_sweeps([volume], args.sweeps, args.seed)
        payload[f"ct_{key}"] = figures(model, sweeps, with_levels=any(s.labels[0] == 0 for s in sweeps))
    payload["frames_per_second"] = speed(model.path)
    save("ultrasound", payload)
    net, levels = held_out["network"], held_out["levels"]
    print(f"held-out frames: balanced accuracy {net['balanced_accuracy']:.3f} {net['balanced_accuracy_ci95']}")
    print(f"  brightness rule {held_out['brightness_rule']['balanced_accuracy']:.3f}, majority 0.333")
    for name, lv in levels.items():
        print(f"levels ({name}): {lv['level_accuracy']:.3f} {lv['level_accuracy_ci95']} of {lv['gaps']} gaps")
    for key, fps in payload["frames_per_second"].items():
        print(f"{key}: {fps:.0f} frames/s")


if __name__ == "__main__":
    main()
