"""Vertebral levels in a paramedian sagittal ultrasound sweep: frames classified, gaps counted up from the sacrum.

After Hetherington et al. (IJCARS 2017, "SLIDE: automatic spine level identification system using a deep
convolutional neural network"): a small CNN labels every frame of a sweep that starts over the sacrum and moves
cranially, about 15 mm beside the spinous processes, as **sacrum**, **gap** (an interlaminar window between two
laminae) or **vertebra** (a lamina's bright line and its shadow); a state machine then counts the gaps: the first
above the sacrum is L5/S1, the next L4/L5, and so on up the spine (SLIDE: 88% of frames right, 40 frames/s).

The network (``ultrasound`` in ``lumbar/models/weights``, trained by :mod:`lumbar.train.ultrasound`) was trained on
simulated sweeps only (:mod:`lumbar.train.ultrasound_sim`); it has never seen a real ultrasound image. A frame is
read as :func:`prepare_frames` makes it: grey, resized to the network's input (the sweep's footprint, about 40 mm
across, and about 80 mm of depth, squeezed into ``FRAME_SHAPE``), the 1st to 99th percentiles of its pixels scaled
to [0, 1].

The counter (:func:`count_levels`) is a left-to-right hidden Markov model decoded by Viterbi: its states run
sacrum, gap L5/S1, vertebra L5, gap L4/L5, vertebra L4, ... up to T10 (the probe only moves cranially), then a gap
and a lamina above T10 that repeat for as long as the sweep goes on (so a sweep past T10 keeps the names below it,
and the gaps above are not counted), each held for at least ``min_run`` frames, so a flicker of fewer frames (a
misread lamina inside a gap, a frame of speckle) cannot count as a level. A frame's emission is the network's
probability of the state's class. The sweep is marked for review when it does not start on the sacrum, when the
sacrum returns after the count has left it, when no gap is counted, when the count reaches the highest level it can
name, or when more than a quarter of the frames disagree with the counted sequence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np
from scipy import ndimage

from lumbar.errors import InputError
from lumbar.image import Modality
from lumbar.io.read import sequence_of
from lumbar.labels import discs_between, vertebrae_between
from lumbar.models.registry import load_network_and_record, spec_of
from lumbar.preprocess import ULTRASOUND_FRAME_SHAPE

CLASSES = ("sacrum", "gap", "vertebra")
SACRUM, GAP, VERTEBRA = range(len(CLASSES))
GAPS = tuple(reversed(discs_between("T10", "S1")))  # counted upwards: L5/S1, L4/L5, ..., T10/T11
VERTEBRAE = tuple(reversed(vertebrae_between("T10", "L5")))  # the lamina above each gap: L5, L4, ..., T10
ABOVE = f"above {VERTEBRAE[-1]}"  # a gap or lamina past the highest named level: never counted
FRAME_SHAPE = ULTRASOUND_FRAME_SHAPE  # (depth, across) pixels the network reads
MAX_FRAMES = 10_000  # a sweep's frames at most: about 5 minutes at 30 frames/s
MIN_FRAME_PX = 32  # half the network's input side: a smaller frame holds no picture of the spine to classify
MIN_RUN = 3  # frames a counted state lasts at least: shorter flicker is ignored
ADVANCE = 0.1  # the counter's probability of moving to the next state at a frame
SACRUM_AT_START = 0.5  # mean probability of the sacrum over the first MIN_RUN frames a sweep must start with
MAX_DISAGREEMENT = 0.25  # share of frames whose own class may differ from the counted sequence before review
MODEL_PATH = spec_of("ultrasound").weights
CAUTION = "trained on simulated ultrasound only: never trained or tested on a real ultrasound image"


def prepare_frames(frames: np.ndarray, shape: tuple[int, int] = FRAME_SHAPE) -> np.ndarray:
    """The network's input ``(n, 1, *shape)`` float32 from frames ``(n, rows, cols)`` (or ``(n, rows, cols, 3)``
    colour, averaged to grey): each frame resized (bilinear) to ``shape``, its 1st-99th percentiles scaled to
    [0, 1] and clipped."""
    frames = np.asarray(frames, np.float32)
    if frames.ndim == 4:
        frames = frames.mean(-1)
    if frames.ndim != 3 or frames.shape[0] == 0 or min(frames.shape[1:]) < 2:
        raise InputError(f"a sweep needs frames of shape (n, rows, cols), got {frames.shape}")
    if frames.shape[1:] != tuple(shape):
        zoom = (1, shape[0] / frames.shape[1], shape[1] / frames.shape[2])
        frames = ndimage.zoom(frames, zoom, order=1, grid_mode=True, mode="nearest")
    low, high = np.percentile(frames.reshape(len(frames), -1), [1, 99], axis=1)
    scaled = (frames - low[:, None, None]) / np.maximum(high - low, 1e-6)[:, None, None]
    return np.clip(scaled, 0, 1)[:, None].astype(np.float32)


@dataclass
class UltrasoundModel:
    """The frame classifier (ONNX) and its training record."""

    path: Path
    meta: dict
    session: object

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.meta.get("input_shape", FRAME_SHAPE))

    def probabilities(self, frames: np.ndarray, batch: int = 256) -> np.ndarray:
        """Class probabilities ``(n, 3)`` in the order of ``CLASSES`` of raw frames ``(n, rows, cols)``."""
        logits = np.concatenate(  # prepared a batch at a time: memory stays that of one batch's floats
            [
                self.session.run(None, {"image": prepare_frames(frames[k : k + batch], self.shape)})[0]
                for k in range(0, len(frames), batch)
            ]
        )
        logits = logits - logits.max(1, keepdims=True)
        return (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)


@cache
def load_ultrasound_model(path: str | Path | None = None) -> UltrasoundModel:
    """The shipped frame classifier, or one trained by ``lumbar.train.ultrasound`` (its ``.json`` beside it); once a
    process."""
    onnx_path = Path(path) if path else MODEL_PATH
    session, meta = load_network_and_record(onnx_path, "ultrasound", "ultrasound")
    if tuple(meta.get("classes", ())) != CLASSES:
        raise InputError(
            f"{onnx_path.with_suffix('.json')}: the model's classes {meta.get('classes')} are not {list(CLASSES)}"
        )
    return UltrasoundModel(onnx_path, meta, session)


@dataclass(frozen=True)
class Gap:
    """One counted interlaminar gap: its level name and the frames (first, last, inclusive) it spans."""

    name: str
    first_frame: int
    last_frame: int

    @property
    def centre_frame(self) -> float:
        return (self.first_frame + self.last_frame) / 2


@dataclass(frozen=True)
class Counting:
    """What the counter made of a sweep: per frame the counted class (index into ``CLASSES``) and level name
    (``"sacrum"``, a gap ``"L4/L5"`` or the vertebra ``"L4"``), the gaps, and why to review it (if so)."""

    classes: np.ndarray
    levels: tuple[str, ...]
    gaps: tuple[Gap, ...]
    reasons: tuple[str, ...]

    @property
    def needs_review(self) -> bool:
        return bool(self.reasons)


def _states(n_gaps: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """The counter's chain: classes and level names, sacrum first, then gap and vertebra in turn upwards, and last a
    gap and vertebra above the highest named level (which :func:`count_levels` lets repeat)."""
    classes, names = [SACRUM], ["sacrum"]
    for k in range(n_gaps):
        classes += [GAP, VERTEBRA]
        names += [GAPS[k], VERTEBRAE[k]]
    return np.array([*classes, GAP, VERTEBRA]), (*names, ABOVE, ABOVE)


def _viterbi(
    log_emission: np.ndarray, chain: np.ndarray, min_run: int, advance: float, loop_to: int | None = None
) -> np.ndarray:
    """The most likely state of the chain at each frame, each state held for at least ``min_run`` frames.

    Every state of ``chain`` is expanded into ``min_run`` sub-states passed through in turn; only the last may repeat
    (probability ``1 - advance``) or move on to the next state's first (``advance``); the chain's last state moves on
    to ``loop_to`` (a cycle at its top), or nowhere when that is None. The path starts in the first state and ends on
    a state held for ``min_run`` frames (a gap begun in the sweep's last frames is not counted), or anywhere when the
    sweep is shorter than that."""
    n = len(log_emission)
    classes = np.repeat(chain, min_run)
    size = len(classes)
    index = np.arange(size)
    last = index % min_run == min_run - 1
    enter = np.where(index % min_run == 0, np.log(advance), 0.0)  # cost of arriving from the state before
    stay = np.where(last, np.log1p(-advance), -np.inf)
    before = index - 1  # the sub-state each is entered from (the first: none)
    looped = before.copy()
    if loop_to is not None:
        looped[loop_to * min_run] = size - 1  # the top of the chain entered again from its last sub-state
    score = np.full(size, -np.inf)
    score[0] = log_emission[0, classes[0]]
    came = np.zeros((n, size), np.int32)  # the sub-state each was reached from (itself where it stayed)
    for t in range(1, n):
        again = loop_to is not None and score[-1] > score[loop_to * min_run - 1]
        source = looped if again else before
        entering = np.where(source >= 0, score[source], -np.inf) + enter
        staying = score + stay
        came[t] = np.where(entering > staying, source, index)
        score = np.maximum(entering, staying) + log_emission[t, classes]
    path = np.zeros(n, int)
    held = np.where(last, score, -np.inf)
    path[-1] = int(np.argmax(held if np.isfinite(held).any() else score))
    for t in range(n - 1, 0, -1):
        path[t - 1] = came[t, path[t]]
    return path // min_run


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, first, last) of each run of equal values."""
    edges = np.flatnonzero(np.diff(values)) + 1
    starts, ends = np.concatenate([[0], edges]), np.concatenate([edges, [len(values)]]) - 1
    return [(int(values[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def count_levels(probabilities: np.ndarray, min_run: int = MIN_RUN, advance: float = ADVANCE) -> Counting:
    """Count and name the gaps of a sweep from its frames' class probabilities ``(n, 3)`` (order of ``CLASSES``),
    frames in acquisition order from the sacrum upwards (see the module's docstring)."""
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(CLASSES) or len(probabilities) == 0:
        raise InputError(f"frame probabilities must be (n, {len(CLASSES)}), got {probabilities.shape}")
    chain, names = _states(len(GAPS))
    above = len(chain) - 2  # the gap above the highest named level: the chain's top cycles through it
    states = _viterbi(np.log(np.clip(probabilities, 1e-6, 1)), chain, min_run, advance, loop_to=above)
    classes = chain[states]
    own = probabilities.argmax(1)
    gaps = tuple(Gap(names[s], first, last) for s, first, last in _runs(states) if chain[s] == GAP and s < above)
    reasons = []
    if len(probabilities) < min_run or probabilities[:min_run, SACRUM].mean() < SACRUM_AT_START:
        reasons.append("the sweep does not start on the sacrum: levels are counted from it")
    left = np.flatnonzero(states > 0)
    if left.size and any(c == SACRUM and e - s + 1 >= min_run for c, s, e in _runs(own[left[0] :])):
        reasons.append("the sacrum returns after the count left it: did the probe move back down?")
    if not gaps:
        reasons.append("no gap between two laminae was counted")
    if states.max() >= above - 1:
        reasons.append(f"the count reached {VERTEBRAE[-1]}, the highest level it names: gaps above it are not counted")
    disagree = float(np.mean(own != classes))
    if disagree > MAX_DISAGREEMENT:
        reasons.append(f"{disagree:.0%} of the frames disagree with the counted sequence")
    return Counting(classes, tuple(names[s] for s in states), gaps, tuple(reasons))


@dataclass(frozen=True)
class SweepResult:
    """Levels of one sweep: per frame the network's class and probabilities, the counted class and level name;
    the counted gaps (name and frames); whether to review it, and why."""

    n_frames: int
    frame_classes: tuple[str, ...]  # the network's most probable class of each frame on its own
    probabilities: np.ndarray  # (n, 3), order of CLASSES
    counted_classes: tuple[str, ...]  # after the counter (flicker shorter than its minimum run smoothed away)
    levels: tuple[str, ...]
    gaps: tuple[Gap, ...]
    needs_review: bool
    reasons: tuple[str, ...]
    model: str
    trained_on: str

    def to_dict(self) -> dict:
        return {
            "n_frames": self.n_frames,
            "classes": list(CLASSES),
            "frames": [
                {
                    "frame": k,
                    "class": self.frame_classes[k],
                    "probabilities": [round(float(p), 4) for p in self.probabilities[k]],
                    "counted_class": self.counted_classes[k],
                    "level": self.levels[k],
                }
                for k in range(self.n_frames)
            ],
            "gaps": [{**asdict(g), "centre_frame": g.centre_frame} for g in self.gaps],
            "needs_review": self.needs_review,
            "reasons": list(self.reasons),
            "model": self.model,
            "trained_on": self.trained_on,
            "caution": CAUTION if self.trained_on.startswith("simulated") else None,
        }


def analyse_sweep(frames: np.ndarray, model_path: str | Path | None = None) -> SweepResult:
    """Classify every frame of a sweep ``(n, rows, cols)`` (or ``(n, rows, cols, 3)`` colour, averaged to grey; in
    acquisition order, from below the sacrum upwards) and count its levels (:func:`count_levels`), with the shipped
    model or the one at ``model_path``."""
    if len(frames) > MAX_FRAMES:
        raise InputError(f"a sweep of {len(frames)} frames; at most {MAX_FRAMES} (a few minutes at 30 frames/s)")
    rows_cols = np.shape(frames)[1:3]  # a colour frame's channels are not a side
    if min(rows_cols, default=0) < MIN_FRAME_PX:
        shape = " x ".join(map(str, rows_cols))
        raise InputError(f"frames of {shape} pixels: an ultrasound frame has at least {MIN_FRAME_PX} a side")
    model = load_ultrasound_model(str(model_path) if model_path else None)
    probabilities = model.probabilities(frames)
    counting = count_levels(probabilities)
    return SweepResult(
        n_frames=len(probabilities),
        frame_classes=tuple(CLASSES[c] for c in probabilities.argmax(1)),
        probabilities=probabilities,
        counted_classes=tuple(CLASSES[c] for c in counting.classes),
        levels=counting.levels,
        gaps=counting.gaps,
        needs_review=counting.needs_review,
        reasons=counting.reasons,
        model=str(model.path),
        trained_on=str(model.meta.get("trained_on", "unknown")),
    )


def read_sweep(path: str | Path) -> np.ndarray:
    """The frames ``(n, rows, cols)`` of a sweep as ``docs/ultrasound_format.md`` describes it: a video (MP4, AVI,
    MOV, GIF), a multi-frame DICOM cine, or a folder of PNG/JPEG frames taken in natural name order
    (``frame2`` before ``frame10``)."""
    return sequence_of(path, (Modality.ULTRASOUND,), "ultrasound", max_frames=MAX_FRAMES).frames
