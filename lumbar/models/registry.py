"""Shipped weights: name -> ONNX file + metadata + model card, loaded lazily once per process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lumbar.errors import InputError

WEIGHTS_DIR = Path(__file__).parent / "weights"
CARDS_DIR = Path(__file__).parent / "cards"


@dataclass
class OnnxModel:
    """An ONNX network and its metadata (pixel size, classes, training record)."""

    name: str
    path: Path
    meta: dict[str, Any]
    session: Any

    def __call__(self, batch: np.ndarray, **inputs: np.ndarray) -> np.ndarray:
        """Run on ``batch`` (the input named "image") and any further named inputs the network takes."""
        feed = {name: np.ascontiguousarray(value, np.float32) for name, value in {"image": batch, **inputs}.items()}
        return self.session.run(None, feed)[0]

    @property
    def version(self) -> str:
        return f"{self.name}@{self.meta.get('trained_steps', '?')}steps"


def available_models() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.onnx"))


def load_torch_segmentation(name: str = "segmentation"):
    """The shipped half-precision PyTorch weights of the segmentation network, as float32 (benchmarks, fine-tuning)."""
    import torch

    from lumbar.models.networks import segmentation_net

    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.is_file():
        raise InputError(f"no PyTorch weights for {name!r} at {path}")
    meta = load_model(name).meta
    net = segmentation_net(tuple(meta.get("channels", (16, 32, 64, 128, 256))))
    net.load_state_dict({k: v.float() for k, v in torch.load(path, map_location="cpu").items()})
    return net.eval()


@lru_cache(maxsize=None)
def load_model(name: str, path: str | None = None) -> OnnxModel:
    """Load shipped model ``name`` (or an ONNX file at ``path`` with its ``.json`` beside it)."""
    import onnxruntime as ort

    onnx_path = Path(path) if path else WEIGHTS_DIR / f"{name}.onnx"
    if not onnx_path.is_file():
        raise InputError(f"model {name!r} not found at {onnx_path}; shipped models: {', '.join(available_models()) or 'none'}")
    meta_path = onnx_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    session = ort.InferenceSession(str(onnx_path), options, providers=providers)
    return OnnxModel(name, onnx_path, meta, session)
