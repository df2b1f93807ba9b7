"""The one truth about shipped models: what each does, on which images, with which input and labels.

Every model is an entry of ``REGISTRY``, keyed by name, that says its task, the modalities and planes it
was trained for, its input (pixel size, grid, crop), its labels and its card. The ONNX weights and the
training record (temperatures, thresholds, cross-validated figures) sit beside it in ``weights/``,
written by ``lumbar train``. Pipelines ask the registry which model serves a task on an image
(:func:`model_for`); loading is lazy and happens once per process (:func:`load_model`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from lumbar.errors import InputError
from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES
from lumbar.image import Modality
from lumbar.labels import FRONTAL_LEVEL_CLASSES, STRUCTURE_NAMES, Structure
from lumbar.preprocess import (
    CORNER_WINDOW,
    CROP_SHAPE,
    GRID_MULTIPLE,
    LATERAL_SHAPE,
    LEVEL_WINDOW,
    LUMBOSACRAL_PATCH_PX,
    LUMBOSACRAL_PIXEL_MM,
    MODEL_SPACING_MM,
    RADIOGRAPH_SHAPE,
    ULTRASOUND_FRAME_SHAPE,
)

WEIGHTS_DIR = Path(__file__).parent / "weights"
CARDS_DIR = Path(__file__).parent / "cards"


@dataclass(frozen=True)
class InputSpec:
    """What a network reads: grey images at ``spacing_mm`` pixels padded to ``grid_multiple``, or crops of
    ``crop_shape``."""

    spacing_mm: float | None = None
    grid_multiple: int | None = None
    crop_shape: tuple[int, int] | None = None
    normalisation: str = "percentile 0.5-99.5 of non-background pixels to [0, 1]"


@dataclass(frozen=True)
class ModelSpec:
    """One shipped model: its name, task, the images it serves, its input and its output labels."""

    name: str
    task: str
    modalities: tuple[Modality, ...]
    planes: tuple[str | None, ...]  # None: a near-isotropic volume, resliced in the plane the model reads
    input: InputSpec
    labels: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def weights(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.onnx"

    @property
    def torch_weights(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.pt"

    @property
    def card(self) -> Path:
        return CARDS_DIR / f"{self.name}.md"

    @property
    def shipped(self) -> bool:
        return self.weights.is_file()

    def serves(self, modality: Modality, plane: str | None) -> bool:
        return modality in self.modalities and plane in self.planes


SAGITTAL_MR = ((Modality.MR,), ("sagittal", None))

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "segmentation",
            "segmentation",
            *SAGITTAL_MR,
            InputSpec(spacing_mm=MODEL_SPACING_MM, grid_multiple=GRID_MULTIPLE),
            labels={name: int(s) for s, name in {Structure.BACKGROUND: "background", **STRUCTURE_NAMES}.items()},
            description="sagittal MRI slices into disc, vertebra and spinal canal",
        ),
        ModelSpec(
            "grading",
            "grading",
            *SAGITTAL_MR,
            InputSpec(crop_shape=CROP_SHAPE),
            labels={**{g: list(c) for g, c in ORDINAL_GRADES.items()}, **{g: [0, 1] for g in BINARY_GRADES}},
            description="per-disc grades from a straightened mid-sagittal crop, read beside the study's other discs",
        ),
        ModelSpec(
            "radiograph",
            "radiograph",
            (Modality.RADIOGRAPH,),
            ("projection",),
            InputSpec(
                crop_shape=RADIOGRAPH_SHAPE,
                normalisation="letterboxed into the shape (aspect kept, zero padding); percentile 0.5-99.5 to [0, 1]",
            ),
            labels={"centre": 0, "corner_offsets": [1, 8]},
            description="frontal spine radiographs: each vertebral body's centre and four corners, T1 to L5",
        ),
        ModelSpec(
            "radiograph_corners",
            "radiograph",
            (Modality.RADIOGRAPH,),
            ("projection",),
            InputSpec(
                crop_shape=(CORNER_WINDOW.size, CORNER_WINDOW.size),
                normalisation="the film's percentile 0.5-99.5 to [0, 1]; a window on one body found by `radiograph`, "
                f"turned by its tilt, the spine's step between bodies {CORNER_WINDOW.step_px:g} pixels",
            ),
            labels={"corner_heatmaps": [0, 3]},
            description="frontal radiographs, second look: each body's four corners placed again in its own window",
        ),
        ModelSpec(
            "radiograph_levels",
            "radiograph",
            (Modality.RADIOGRAPH,),
            ("projection",),
            InputSpec(
                crop_shape=(LEVEL_WINDOW.size, LEVEL_WINDOW.size),
                normalisation="the film's percentile 0.5-99.5 to [0, 1]; a window on one candidate body found by "
                f"`radiograph`, turned by its tilt, the spine's step between bodies {LEVEL_WINDOW.step_px:g} pixels",
            ),
            labels={name: k for k, name in enumerate(FRONTAL_LEVEL_CLASSES)},
            description="frontal radiographs, level names: what each candidate body is (above T1, T1, a body between "
            "T1 and L5, L5, below L5, or no body), from a wide window around it",
        ),
        ModelSpec(
            "radiograph_lateral",
            "radiograph",
            (Modality.RADIOGRAPH,),
            ("projection",),
            InputSpec(
                crop_shape=LATERAL_SHAPE,
                normalisation="letterboxed into the shape (aspect kept, zero padding); percentile 0.5-99.5 to [0, 1]",
            ),
            labels={"centre": 0, "corner_offsets": [1, 8], "s1_centre": 9},
            description="lateral spine radiographs (patient facing left): each vertebral body's centre and four "
            "corners, and S1's centre; trained on synthetic films only",
        ),
        ModelSpec(
            "fusion",
            "fusion",
            (Modality.MR, Modality.CT),
            (None, "sagittal", "axial", "coronal"),
            InputSpec(
                normalisation="a wavelet band of the MR and of the CT, each divided by the larger standard deviation "
                "of the two, and a plane of 1 on detail bands"
            ),
            labels={"mr_weight": 0},
            description="MR–CT fusion: the MR's weight for every wavelet coefficient (trained without labels)",
        ),
        ModelSpec(
            "back_pain",
            "back_pain",
            (),
            (),
            InputSpec(
                normalisation="windows of 10 s at 50 Hz: angles and centre of pressure less their mean, foot loads "
                "over the mean total load, then each channel standardised by the training recordings' statistics"
            ),
            labels={"lbp": 1},
            description="low back pain from static-standing kinematics and plantar pressure (input 'signals'); "
            "trained on simulated recordings only",
        ),
        ModelSpec(
            "tracking",
            "tracking",
            (Modality.FLUOROSCOPY, Modality.RADIOGRAPH),
            ("projection",),
            InputSpec(normalisation="frame median 0, 1st-99th percentile range 1; template and search crops"),
            labels={"embedding": 0},
            description="vertebra tracking in lateral fluoroscopy: the Siamese embedding of template and search "
            "crops; trained on simulated flexion-extension sequences only",
        ),
        ModelSpec(
            "ultrasound",
            "ultrasound",
            (Modality.ULTRASOUND,),
            ("sagittal",),
            InputSpec(
                crop_shape=ULTRASOUND_FRAME_SHAPE,
                normalisation="each frame resized to the shape, scaled to [0, 1] between its 1st and 99th percentiles",
            ),
            labels={"sacrum": 0, "gap": 1, "vertebra": 2},
            description="paramedian sagittal ultrasound frames: sacrum, interlaminar gap or lamina, counted into "
            "levels; trained on simulated ultrasound only",
        ),
        ModelSpec(
            "lumbosacral",
            "lumbosacral",
            *SAGITTAL_MR,
            InputSpec(
                spacing_mm=LUMBOSACRAL_PIXEL_MM,
                crop_shape=(LUMBOSACRAL_PATCH_PX, LUMBOSACRAL_PATCH_PX),
                normalisation="percentile 1-99 of the patch's pixels inside the image to [0, 1]; 0 beyond its edge",
            ),
            labels={"L5/S1": 1},
            description="is the lowest disc found L5/S1 (sacrum below) or a lumbar disc (image cut above the sacrum)",
        ),
    )
}


def model_for(task: str, modality: Modality, plane: str | None) -> ModelSpec | None:
    """The shipped model that does ``task`` on images of ``modality`` acquired in ``plane``, if any."""
    return next((s for s in REGISTRY.values() if s.task == task and s.shipped and s.serves(modality, plane)), None)


SEEN_PARTS = ("train", "training", "val", "validation")  # a record's split parts that trained or chose the weights


@dataclass
class OnnxModel:
    """An ONNX network, its registry entry and its training record (temperatures, thresholds, figures)."""

    spec: ModelSpec
    meta: dict[str, Any]
    session: Any
    path: Path

    def __call__(self, batch: np.ndarray, **inputs: np.ndarray) -> np.ndarray:
        """Run on ``batch`` (the input named "image") and any further named inputs the network takes."""
        feed = {name: np.ascontiguousarray(value, np.float32) for name, value in {"image": batch, **inputs}.items()}
        return self.session.run(None, feed)[0]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        """How findings and reports name the model: its name, training steps and the start of its weights' digest
        (the steps alone did not tell two trainings of one length apart)."""
        return f"{self.name}@{self.meta.get('trained_steps', '?')}steps sha256:{self.sha256[:12]}"

    @property
    def sha256(self) -> str:
        """The weights' digest: what a validation record of this model's outputs names it by."""
        return weights_sha256(self.path)

    @property
    def patients_seen(self) -> frozenset[str]:
        """The patients whose images trained these weights or chose among them, as its record names them: figures
        measured on them are in-sample. Read from ``split_patients``, a top-level ``final_split``, every ensemble
        member's ``final_split`` and a frontal radiograph network's ``split_groups`` (AASCE patient groups, named by
        the grouping that record was split with: ``xray_ap.grouping_of``), each's ``train``/``training`` and
        ``val``/``validation`` parts; and, for a cross-validated model whose final network trains on every subject
        (``back_pain``), every subject of ``cv.fold_of_subject``. A record naming only its held-out cases
        (``fusion``: ``held_out_anatomies``) gives none."""
        meta = self.meta
        splits = [meta.get(key) or {} for key in ("split_patients", "final_split", "split_groups")]
        splits += [member.get("final_split") or {} for member in meta.get("members", [])]
        seen = {str(p) for split in splits for part in SEEN_PARTS for p in split.get(part, [])}
        seen |= {str(subject) for subject in (meta.get("cv") or {}).get("fold_of_subject", {})}
        return frozenset(seen)


@cache
def weights_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def available_models() -> list[str]:
    """Registry entries whose weights ship in this installation."""
    return sorted(name for name, spec in REGISTRY.items() if spec.shipped)


def spec_of(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise InputError(f"no model {name!r}; the registry holds {', '.join(REGISTRY)}")
    return REGISTRY[name]


@cache
def load_model(name: str, path: str | None = None) -> OnnxModel:
    """Load shipped model ``name``, or a model trained by ``lumbar train`` from an ONNX file at ``path`` (its
    ``.json`` beside it names the registry entry it is a version of)."""
    import onnxruntime as ort

    onnx_path = Path(path) if path else spec_of(name).weights
    if not onnx_path.is_file():
        raise InputError(
            f"model {name!r} not found at {onnx_path}; shipped models: {', '.join(available_models()) or 'none'}"
        )
    meta_path = onnx_path.with_suffix(".json")
    meta = read_record(meta_path) if meta_path.is_file() else {}
    if path and name in REGISTRY:
        refuse_other_kind(meta, onnx_path, name)
    spec = REGISTRY[name] if name in REGISTRY else replace(spec_of(str(meta.get("name", name))), name=name)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    return OnnxModel(spec, meta, onnx_session(onnx_path, options, providers), onnx_path)


def refuse_other_kind(record: dict, path: Path, name: str) -> None:
    """Refuse a model whose record names another shipped model than ``name`` (a ``--model`` of the wrong kind), in
    one line, before it is run on anything."""
    recorded = record.get("name")
    if isinstance(recorded, str) and recorded in REGISTRY and recorded != name:
        raise InputError(f"{path}: a {recorded} model (its record says so), not a {name} model")


def read_record(path: Path) -> dict:
    """A model's training record (the JSON beside its ONNX file); a damaged one is one line, not a traceback."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable model record ({type(exc).__name__})") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: a model record is a JSON object")
    return record


def load_network_and_record(
    path: Path, name: str, what: str, required: tuple[str, ...] = (), options: Any = None
) -> tuple[Any, dict]:
    """An ONNX network and the training record beside it (``.json``), for the models whose input is not one image
    (:class:`OnnxModel` feeds "image"): both must exist and load, the record be the registry entry ``name``'s and
    hold ``required`` (checked before the network is loaded), each failure one line naming ``what``. ``options``:
    onnxruntime's session options (by default quiet)."""
    import onnxruntime as ort

    record_path = path.with_suffix(".json")
    if not path.is_file() or not record_path.is_file():
        raise InputError(f"{path}: no {what} model there (it needs {path.name} and {record_path.name})")
    record = read_record(record_path)
    refuse_other_kind(record, path, name)
    missing = [key for key in required if key not in record]
    if missing:
        raise InputError(f"{record_path}: not a {what} model's record (no {', '.join(missing)})")
    if options is None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
    return onnx_session(path, options), record


def onnx_session(path: Path, options: Any = None, providers: list[str] | None = None) -> Any:
    """An onnxruntime session of the network at ``path``; a file onnxruntime cannot load is one line."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...) for a bad file
        raise InputError(f"{path}: not a network onnxruntime can load ({type(exc).__name__})") from None
