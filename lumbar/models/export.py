"""Export a trained network to ONNX with the metadata that inference and the model card need."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from lumbar.io.write import atomic_path, write_text
from lumbar.labels import Structure


def export_onnx(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], path: Path, dynamic_axes: dict[str, dict[int, str]]
) -> Path:
    """Write ``model`` as ONNX with named ``inputs`` and dynamic axes (atomic: temp file, then rename)."""
    model.eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(inputs.values()),
            str(tmp),
            input_names=list(inputs),
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=17,
            dynamo=False,
        )
    return path


def export_segmentation_onnx(model, out_dir: Path, cfg, split: dict, state: dict, test_dice: dict) -> Path:
    """Export the segmentation network and its metadata (``segmentation.json``) into ``out_dir``."""
    image_axes = {0: "n", 2: "h", 3: "w"}
    path = export_onnx(
        model,
        {"image": torch.zeros(1, 1, *cfg.patch)},
        out_dir / "segmentation.onnx",
        {"image": image_axes, "logits": image_axes},
    )
    # A half-precision copy of the weights for PyTorch users (fine-tuning, the torch-vs-ONNX benchmark).
    with atomic_path(out_dir / "segmentation.pt") as tmp:
        torch.save({k: v.half() for k, v in model.state_dict().items()}, tmp)
    meta = {
        "name": "segmentation",
        "task": "sagittal MRI segmentation: disc, vertebra, spinal canal",
        "spacing_mm": cfg.target_mm,
        "classes": {s.name.lower(): int(s) for s in Structure},
        "grid_multiple": 32,
        "normalisation": "percentile 0.5-99.5 of non-background pixels to [0, 1]",
        "trained_steps": state["step"],
        "best_val_mean_dice": state["best"],
        "history": state["history"],
        "test_dice_model_grid": test_dice,
        "split_patients": {k: sorted({s.patient for s in v}) for k, v in split.items()},
        "channels": list(cfg.channels),
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("data", "out")},
    }
    write_text(out_dir / "segmentation.json", json.dumps(meta, indent=1))
    return path
