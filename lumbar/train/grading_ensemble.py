"""Several finished ``lumbar train grading`` runs, one per seed, combined into the one grading model that ships.

Every run holds the same cached disc crops (``samples.npz``) and its own patient 5-fold cross-validation (a seed
also draws other folds) and final model. Every member's out-of-fold probability for a disc comes from a network
that never saw its patient, so their mean is a fair out-of-fold prediction of the ensemble: the cross-validated
figures recorded. A binary grade is decided at the mean of the members' thresholds (out of fold: those each disc's
fold models chose on their validation patients; shipped: those of the members' final models). The shipped network
is :class:`~lumbar.models.networks.GradingEnsemble` over the members' final models, exported as one ONNX graph.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from lumbar.errors import InputError
from lumbar.grades import BINARY_GRADES, grading_outputs
from lumbar.io.write import atomic_path, write_text
from lumbar.models.networks import GradingEnsemble, StudyGradingNet
from lumbar.tasks.disc_crops import CROP_SHAPE
from lumbar.train.grading import GradingConfig, load_samples, out_of_fold, out_of_fold_report


def ensemble_out_of_fold(runs: list[Path], n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The members' out-of-fold probabilities averaged, and each disc's thresholds averaged likewise."""
    members = [out_of_fold(run, n) for run in runs]
    probs = {name: np.mean([p[name] for p, _ in members], axis=0) for name in members[0][0]}
    thresholds = {name: np.mean([t[name] for _, t in members], axis=0) for name in BINARY_GRADES}
    return probs, thresholds


def _member(run: Path) -> tuple[StudyGradingNet, dict]:
    """A run's final network (its half-precision weights as float32) and its training record."""
    meta_path, weights = run / "grading.json", run / "grading.pt"
    if not meta_path.is_file() or not weights.is_file():
        raise InputError(f"{run}: no final model (grading.json, grading.pt); finish `lumbar train grading` first")
    meta = json.loads(meta_path.read_text())
    net = StudyGradingNet(study_context=meta["config"].get("study_context", True))
    net.load_state_dict({k: v.float() for k, v in torch.load(weights, weights_only=True).items()})
    return net.eval(), meta


def combine_grading_runs(runs: list[Path], out_dir: Path) -> Path:
    """Write ``grading.onnx`` / ``.pt`` / ``.json`` in ``out_dir``: the ensemble of ``runs``' final models and its
    cross-validated figures. The runs must share one ``samples.npz`` (the same discs in the same order)."""
    from lumbar.models.export import export_onnx

    if len(runs) < 2:
        raise InputError("an ensemble needs at least two runs")
    caches = [run / "samples.npz" for run in runs]
    if missing := [str(c) for c in caches if not c.is_file()]:
        raise InputError(f"no cached disc crops at {', '.join(missing)}")
    keys = ("patient", "series", "level", "grades")  # the discs, in order: the runs' fold indices point into them
    cached = [np.load(c, allow_pickle=False) for c in caches]
    if any(not all(np.array_equal(c[k], cached[0][k]) for k in keys) for c in cached[1:]):
        raise InputError("the runs were trained on different disc crops: copy one samples.npz into every run first")
    samples = load_samples(GradingConfig(data="", out=str(runs[0])))
    probs, fold_thresholds = ensemble_out_of_fold(runs, len(samples))
    nets, metas = zip(*(_member(run) for run in runs), strict=True)
    report = {
        "folds": metas[0]["cv"]["folds"],
        "members": len(runs),
        **out_of_fold_report(samples, probs, fold_thresholds),
    }
    ensemble = GradingEnsemble(list(nets), [m["temperatures"] for m in metas]).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 1, *CROP_SHAPE)
    path = export_onnx(
        ensemble,
        {"image": example, "context": example},
        out_dir / "grading.onnx",
        {"image": {0: "n"}, "context": {0: "m"}, "logits": {0: "n"}},
    )
    with atomic_path(out_dir / "grading.pt") as tmp:
        torch.save({k: v.half() for k, v in ensemble.state_dict().items()}, tmp)
    record = {
        "name": "grading",
        "trained_steps": "+".join(str(m["trained_steps"]) for m in metas),
        "crop_shape": list(CROP_SHAPE),
        "temperatures": dict.fromkeys(grading_outputs(), 1.0),  # the members' own are applied inside the graph
        "thresholds": {name: float(np.mean([m["thresholds"][name] for m in metas])) for name in BINARY_GRADES},
        "cv": report,
        "coverage": metas[0].get("coverage", {}),
        "members": [
            {
                "run": str(run),
                "seed": m["config"]["seed"],
                "trained_steps": m["trained_steps"],
                "temperatures": m["temperatures"],
                "thresholds": m["thresholds"],
                "final_split": m["final_split"],
                "command": m["config"]["command"],
            }
            for run, m in zip(runs, metas, strict=True)
        ],
        "config": {"command": shlex.join(["lumbar", *sys.argv[1:]])},
    }
    write_text(out_dir / "grading.json", json.dumps(record, indent=1, default=float))
    return path
