"""Low back pain from static standing, on simulated cohorts: does the network find the group difference the simulator
puts in, and nothing when there is none? And how fast does inference score recordings?

For ``effect`` 0 (groups drawn alike), 0.5 and 1 (the differences stated in ``lumbar/train/back_pain_sim.py``), a
cohort of ``--subjects`` (half with low back pain, two 30 s recordings each, seed 0) is simulated and cross-validated
by subject exactly as ``lumbar.train.back_pain`` does it: precision, recall, balanced accuracy and AUC of the network,
each with a 95% CI by subject bootstrap, beside the majority class and logistic regression on the COP sway RMS alone
and on the four standing measures. Effect 0 is cross-validated on six more cohorts (seeds 1-6): one cohort's
figures land some way from 0.5 by chance alone, and cross-validation without signal leans a little below it. Then the
shipped network (or ``--model``) scores the effect-1 cohort's recordings: recordings per second read and scored, and
scored only. ``python bench/back_pain.py`` (about 3 min on 2 cores) prints the table and writes
``bench/results/back_pain.json`` and ``bench/claims/back_pain.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save

from lumbar.io.kinematics import read_cohort, read_recording
from lumbar.tasks.back_pain import load_back_pain_model, recognise_back_pain
from lumbar.train.back_pain import BackPainConfig, cross_validate
from lumbar.train.back_pain_sim import LbpDifferences, simulate_cohort

ROOT = Path(__file__).resolve().parents[1]
EFFECTS = (0.0, 0.5, 1.0)
NULL_SEEDS = range(1, 7)  # effect 0 on six more cohorts: how far from 0.5 chance alone lands
METRICS = ("precision", "recall", "balanced_accuracy", "auc")


def cell(table: dict, metric: str) -> str:
    low, high = table[f"{metric}_ci95"]
    return f"{table[metric]:.2f} [{low:.2f}, {high:.2f}]"


def cross_validated(cohort: Path, seed: int) -> dict:
    cfg = BackPainConfig(out=str(cohort.parent), seed=seed, command="bench/back_pain.py")
    start = time.perf_counter()
    cv = cross_validate(read_cohort(cohort), cfg)
    keep = ("folds", "n_subjects", "n_recordings", "label_counts", "kept_epochs", "figures")
    return {"cv_seconds": time.perf_counter() - start, **{k: cv[k] for k in keep}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=120)
    parser.add_argument("--model", default=None, help="a trained back_pain.onnx (default: the shipped one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="back_pain_bench_"))
    results, cohorts = {}, {}
    for effect in EFFECTS:
        cohorts[effect] = simulate_cohort(work / f"effect_{effect:g}", args.subjects, effect=effect, seed=0)
        results[f"effect_{effect:g}"] = {"effect": effect, **cross_validated(cohorts[effect], seed=0)}
        print(f"effect {effect:g}: cross-validated in {results[f'effect_{effect:g}']['cv_seconds']:.0f} s")
    null = [results["effect_0"]["figures"]]
    for seed in NULL_SEEDS:
        null.append(cross_validated(simulate_cohort(work / f"null_{seed}", args.subjects, 0.0, seed), seed)["figures"])
    chance = {
        name: {
            "cohorts": len(null),
            **{f"{m}_mean": float(np.mean([f[name][m] for f in null])) for m in ("auc", "balanced_accuracy")},
            **{f"{m}_range": [min(f[name][m] for f in null), max(f[name][m] for f in null)] for m in ("auc",)},
            "balanced_accuracy_ci95_holds_half": sum(
                f[name]["balanced_accuracy_ci95"][0] <= 0.5 <= f[name]["balanced_accuracy_ci95"][1] for f in null
            ),
        }
        for name in null[0]
    }

    model = load_back_pain_model(args.model)
    paths = sorted((cohorts[1.0] / "recordings").glob("*.csv"))
    rate = float(model.meta["sample_rate_hz"])
    start = time.perf_counter()
    recognise_back_pain(cohorts[1.0], model=args.model)
    read_and_scored = len(paths) / (time.perf_counter() - start)
    recordings = [read_recording(p, sample_rate_hz=rate) for p in paths]
    start = time.perf_counter()
    for recording in recordings:
        model.recording_probability(recording)
    scored = len(paths) / (time.perf_counter() - start)
    speed = {
        "model": str(
            model.path.resolve().relative_to(ROOT) if model.path.resolve().is_relative_to(ROOT) else model.path
        ),
        "recordings": len(paths),
        "recording_s": recordings[0].duration_s,
        "recordings_per_s_read_and_scored": read_and_scored,
        "recordings_per_s_scored": scored,
    }

    print(f"\n{args.subjects} simulated subjects, two 30 s recordings each; 95% CI by subject bootstrap")
    print(f"{'effect':<7}{'model':<20}" + "".join(f"{m:<22}" for m in METRICS))
    for result in results.values():
        for name, table in result["figures"].items():
            print(f"{result['effect']:<7g}{name:<20}" + "".join(f"{cell(table, m):<22}" for m in METRICS))
    print(f"\neffect 0 on {len(null)} cohorts (seeds 0-{len(null) - 1}):")
    for name, c in chance.items():
        print(
            f"  {name:<20} AUC mean {c['auc_mean']:.2f} (range {c['auc_range'][0]:.2f}-{c['auc_range'][1]:.2f}), "
            f"balanced accuracy mean {c['balanced_accuracy_mean']:.2f}, its CI holds 0.5 in "
            f"{c['balanced_accuracy_ci95_holds_half']} of {c['cohorts']}"
        )
    print(
        f"\ninference ({speed['model']}): {read_and_scored:.0f} recordings/s read and scored, {scored:.0f} scored "
        f"(30 s each, onnxruntime, CPU)"
    )
    payload = {"subjects": args.subjects, "lbp_differences_at_effect_1": asdict(LbpDifferences())}
    path = save("back_pain", {**payload, **results, "effect_0_cohorts": chance, "speed": speed})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
