"""Vertebra tracking in fluoroscopy: rotated boxes of the vertebral bodies through a flexion–extension sequence.

After Liu et al. (2020), a fully convolutional Siamese tracker (SiamFC, Bertinetto et al. 2016) for rotated boxes:
an embedding network φ maps a template crop around each body on the first frame, sampled at several rotations,
and a search crop around the body's previous position in every later frame to feature maps; their
cross-correlation is the response, whose peak (sub-pixel by a parabola fit) is the body's new centre and whose best
rotation (sub-step by a parabola over the rotations) is its angle. The templates are computed once, on the first
frame: no online update, so a tracker never drifts onto its own mistakes, but cannot follow a body that no longer
looks like it did on the first frame.

Geometry: a :class:`RotatedBox` is centre (x, y) in pixels, width along its own x axis, height along its own y axis,
and ``angle_deg``, the angle from the image's x axis to the box's, in image coordinates (x right, y down: a positive
angle turns clockwise on the screen). Its corners run top-left, top-right, bottom-right, bottom-left in the box's
own frame, which on a lateral view with the patient facing left is a body's anterior-superior, posterior-superior,
posterior-inferior and anterior-inferior corner.

Initial boxes (``--boxes``), JSON: ``{"boxes": [{"name": "L1", "corners": [[x, y], [x, y], [x, y], [x, y]]},
{"name": "L2", "cx": 120.5, "cy": 80.0, "width": 34.0, "height": 24.0, "angle_deg": -3.0}, ...]}`` (either form per
body, pixels of the first frame, corners in the order above), or CSV with a ``name`` column and either
``cx,cy,width,height,angle_deg`` or ``x1,y1,x2,y2,x3,y3,x4,y4``. The bodies may be listed in any order: they are
taken from head to feet, by their level names where every body is named by one (T1 ... L5, S1), otherwise by their
places along the spine on the first frame (the boxes' own top edge points up it); two unnamed bodies side by side
are refused. Each intervertebral angle is the upper body's against the one below it, positive clockwise on the
screen: extension where the patient faces the image's left, flexion where the patient faces its right (the facing is
not detected; :data:`ANGLE_SIGN` says so in every result).

Frames at any pixel size: the tracker was trained on bodies of about 19-35 pixels (about 1 mm pixels); where the first
frame's bodies are larger or smaller, every crop is sampled as if the frames were resampled to bring them to the
training's typical size, and the boxes come back in the frames' own pixels.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import numpy as np
from scipy import ndimage

from lumbar.errors import InputError
from lumbar.labels import SPINE_ORDER
from lumbar.models.registry import onnx_session, read_record, refuse_other_kind, spec_of

TEMPLATE_PX = 48  # the template crop: a body (about 35 x 25 px at 1 mm) and its endplates' surroundings
SEARCH_PX = 80  # the search crop: up to 16 px of motion a frame, less than a body and disc's height
STRIDE = 4  # the embedding's total stride
MAX_BOXES = 12  # bodies tracked at once (T10 to S1): each costs its templates' memory and time
MIN_BOX_PX, MAX_BOX_PX = 4, 400  # a box side in pixels
ROTATIONS_DEG = np.arange(-30.0, 30.1, 3.0)  # template rotations from the first frame's angle
ROTATION_WINDOW_DEG = 6.0  # rotations searched each frame, either side of the last one
WINDOW_INFLUENCE = 0.2  # SiamFC's cosine window: the weight of a penalty on large displacements
# A body's size (the square root of its box's area, pixels) in the training sequences: L1-L5 of the 109 training
# patients' anatomies as lumbar.train.fluoro_sim frames them span 19.4-34.8 px, median 25.9. Bodies of a size in
# that range are tracked on the frames' own pixels; others on crops scaled to bring them to the median.
TRAINED_BODY_PX = (19.4, 34.8)
TYPICAL_BODY_PX = 25.9
ANTI_ALIAS = 0.4  # Gaussian sigma (in crop pixels) before sampling a crop coarser than the frame, as fluoro_sim does
SIDE_BY_SIDE = 0.25  # unnamed bodies closer than this share of a body's height along the spine cannot be ordered
WEIGHTS = spec_of("tracking").weights

Embedding = Callable[[np.ndarray], np.ndarray]  # (n, 1, h, w) float32 -> (n, c, h / STRIDE, w / STRIDE)


@dataclass(frozen=True)
class RotatedBox:
    """A rotated rectangle in pixels: centre, width and height along its own axes, angle from the image's x axis."""

    cx: float
    cy: float
    width: float
    height: float
    angle_deg: float

    def corners(self) -> np.ndarray:
        """(4, 2) [x, y]: top-left, top-right, bottom-right, bottom-left in the box's own frame."""
        a = np.deg2rad(self.angle_deg)
        u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        half_w, half_h = self.width / 2, self.height / 2
        signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
        return np.array([self.cx, self.cy]) + signs[:, :1] * half_w * u + signs[:, 1:] * half_h * v

    @classmethod
    def from_corners(cls, corners: np.ndarray) -> RotatedBox:
        """The box of four corners in the order of :meth:`corners` (a body's quadrilateral: the box whose axis is
        the mean direction of its top and bottom edges, and whose sides lie at the mean of each pair of corners)."""
        c = np.asarray(corners, float).reshape(4, 2)
        direction = (c[1] - c[0]) + (c[2] - c[3])
        a = np.arctan2(direction[1], direction[0])
        u, v = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        centre = c.mean(0)
        pu, pv = (c - centre) @ u, (c - centre) @ v
        return cls(
            float(centre[0]),
            float(centre[1]),
            float((pu[1] + pu[2] - pu[0] - pu[3]) / 2),
            float((pv[2] + pv[3] - pv[0] - pv[1]) / 2),
            float(np.rad2deg(a)),
        )

    def moved(self, dx: float, dy: float, angle_deg: float) -> RotatedBox:
        return RotatedBox(self.cx + dx, self.cy + dy, self.width, self.height, angle_deg)

    def to_dict(self) -> dict:
        return {
            "cx": self.cx,
            "cy": self.cy,
            "width": self.width,
            "height": self.height,
            "angle_deg": self.angle_deg,
            "corners": self.corners().round(2).tolist(),
        }


def polygon_area(points: np.ndarray) -> float:
    """The area of a simple polygon (shoelace formula), its vertices in order."""
    x, y = np.asarray(points, float).T
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def clip_polygon(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """The part of polygon ``subject`` inside the convex polygon ``clip`` (Sutherland & Hodgman 1974)."""
    clip = np.asarray(clip, float)
    if _signed_area(clip) < 0:  # the inside test below wants counter-clockwise (in x-right, y-up terms) order
        clip = clip[::-1]
    out = [np.asarray(p, float) for p in subject]
    for a, b in zip(clip, np.roll(clip, -1, axis=0)):
        if not out:
            break
        edge = b - a
        inside = [edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0]) >= 0 for p in out]
        points, out = out, []
        for k, p in enumerate(points):
            q, q_in = points[k - 1], inside[k - 1]
            if inside[k] != q_in:  # the edge p-q crosses the clipping line: keep the crossing
                d = p - q
                t = (edge[0] * (a[1] - q[1]) - edge[1] * (a[0] - q[0])) / (edge[0] * d[1] - edge[1] * d[0])
                out.append(q + t * d)
            if inside[k]:
                out.append(p)
    return np.array(out).reshape(-1, 2)


def _signed_area(points: np.ndarray) -> float:
    x, y = np.asarray(points, float).T
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def rotated_iou(a: RotatedBox, b: RotatedBox) -> float:
    """Intersection over union of two rotated boxes (exact: polygon clipping)."""
    overlap = clip_polygon(a.corners(), b.corners())
    inter = polygon_area(overlap) if len(overlap) >= 3 else 0.0
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


MIN_INSIDE = 0.5  # a box with less than this share of its area inside the frame is not tracking a body in view


def inside_fraction(box: RotatedBox, frame_shape: tuple[int, int]) -> float:
    """The share of ``box``'s area that lies inside a frame of ``frame_shape`` (height, width) pixels."""
    height, width = frame_shape
    frame = np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])
    area = box.width * box.height
    return polygon_area(clip_polygon(box.corners(), frame)) / area if area > 0 else 0.0


def wrap_deg(angle: float) -> float:
    """An angle in degrees wrapped into (-180, 180]."""
    return float(-((-angle + 180.0) % 360.0 - 180.0))


def intervertebral_angle_deg(upper: RotatedBox, lower: RotatedBox) -> float:
    """The angle of the upper body's box relative to the lower one's (degrees, positive clockwise on the screen:
    with the patient facing left, the upper body tilted backwards, into extension)."""
    return wrap_deg(upper.angle_deg - lower.angle_deg)


def head_to_feet(boxes: list[RotatedBox], names: list[str]) -> list[int]:
    """The bodies' order from head to feet: by level name where every name is a level (``L1`` above ``L2``),
    otherwise by their places along the spine on the first frame (the boxes' mean upward direction, their own top
    edge's side). Refuses two unnamed bodies side by side: which is above the other would be a guess."""
    levels = [name.strip().upper() for name in names]
    if all(level in SPINE_ORDER for level in levels):
        return sorted(range(len(names)), key=lambda k: SPINE_ORDER.index(levels[k]))
    turns = np.deg2rad([box.angle_deg for box in boxes])
    up = np.array([np.sin(turns).mean(), -np.cos(turns).mean()])
    height = [float(np.dot([box.cx, box.cy], up)) for box in boxes]
    order = sorted(range(len(boxes)), key=lambda k: -height[k])
    for upper, lower in itertools.pairwise(order):
        if height[upper] - height[lower] < SIDE_BY_SIDE * min(boxes[upper].height, boxes[lower].height):
            raise InputError(
                f"the boxes of {names[upper]} and {names[lower]} lie side by side, neither above the other along "
                "the spine: name the bodies by level (L1, L2, ...) so that they can be ordered"
            )
    return order


def read_boxes(path: Path) -> tuple[list[RotatedBox], list[str]]:
    """The first frame's boxes and names from a JSON or CSV file (the module's docstring gives the formats), from
    head to feet (:func:`head_to_feet`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such boxes file")
    try:
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's CSV may start with a BOM
                rows = [{k: v for k, v in row.items() if k and v not in (None, "")} for row in csv.DictReader(f)]
            rows = [
                {"name": r["name"], "corners": [[r[f"x{k}"], r[f"y{k}"]] for k in range(1, 5)]} if "x1" in r else r
                for r in rows
            ]
        else:
            rows = json.loads(path.read_text(encoding="utf-8-sig"), parse_constant=_no_constant)["boxes"]
        boxes = [
            RotatedBox.from_corners(np.array(r["corners"], float))
            if "corners" in r
            else RotatedBox(*(_number(r[k]) for k in ("cx", "cy", "width", "height", "angle_deg")))
            for r in rows
        ]
        names = [str(r["name"]) for r in rows]
    except (KeyError, ValueError, TypeError, IndexError, json.JSONDecodeError) as error:
        raise InputError(
            f"{path}: boxes need a name and either corners or cx, cy, width, height, angle_deg ({error})"
        ) from None
    except RecursionError:  # JSON nested deeper than Python's stack allows, in the parse or in reading a value
        raise InputError(f"{path}: nested too deeply to be a boxes file (see lumbar/tasks/tracking.py)") from None
    if not boxes:
        raise InputError(f"{path}: no boxes; give the first frame's box of every body to track")
    if len(boxes) > MAX_BOXES:
        raise InputError(f"{path}: {len(boxes)} boxes; at most {MAX_BOXES} bodies are tracked at once")
    if len(set(names)) < len(names):
        raise InputError(f"{path}: box names repeat ({', '.join(sorted(n for n in set(names) if names.count(n) > 1))})")
    for box, name in zip(boxes, names):
        values = (box.cx, box.cy, box.width, box.height, box.angle_deg)
        if not all(np.isfinite(values)) or abs(box.angle_deg) > 360:
            raise InputError(f"{path}: the box of {name} has a value that is not a finite number (or an angle > 360°)")
        if not (MIN_BOX_PX <= box.width <= MAX_BOX_PX and MIN_BOX_PX <= box.height <= MAX_BOX_PX):
            raise InputError(
                f"{path}: the box of {name} is {box.width:.1f} x {box.height:.1f} px; each side must be "
                f"{MIN_BOX_PX}-{MAX_BOX_PX} px (corners in the order top-left, top-right, bottom-right, bottom-left)"
            )
    try:
        order = head_to_feet(boxes, names)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None
    return [boxes[k] for k in order], [names[k] for k in order]


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _number(value: object) -> float:
    """A box's value as a float: a number or a numeric string (CSV), never a boolean."""
    if isinstance(value, bool):
        raise ValueError(f"{value} is not a number")
    return float(value)  # type: ignore[arg-type]


def crop(
    image: np.ndarray, centre: tuple[float, float], size: int, angle_deg: float = 0.0, step: float = 1.0
) -> np.ndarray:
    """A ``size`` x ``size`` crop of ``image`` centred on ``centre`` [x, y] in the frame of a box turned by
    ``angle_deg`` (the crop shows the image turned by ``-angle_deg``), its samples ``step`` pixels of ``image``
    apart; bilinear, zero outside."""
    a = np.deg2rad(angle_deg)
    offsets = (np.arange(size, dtype=np.float32) - (size - 1) / 2) * np.float32(step)
    px, py = np.meshgrid(offsets, offsets)
    x = centre[0] + np.cos(a) * px - np.sin(a) * py
    y = centre[1] + np.sin(a) * px + np.cos(a) * py
    return ndimage.map_coordinates(image, [y, x], order=1, mode="constant", cval=0.0).astype(np.float32)


def normalise(frame: np.ndarray) -> np.ndarray:
    """A frame centred on its median and scaled by its 1st-99th percentile range (fluoroscopy's exposure control
    changes brightness from frame to frame)."""
    sample = np.asarray(frame, np.float32)[::4, ::4]
    low, median, high = np.percentile(sample, [1, 50, 99])
    return ((frame - median) / max(high - low, 1e-6)).astype(np.float32)


def pixels_per_crop_pixel(boxes: list[RotatedBox]) -> float:
    """How many of the frames' pixels a crop's pixel spans: 1 where the bodies' median size is one the tracker was
    trained on (:data:`TRAINED_BODY_PX`), otherwise what brings them to :data:`TYPICAL_BODY_PX`."""
    size = float(np.median([np.sqrt(box.width * box.height) for box in boxes]))
    low, high = TRAINED_BODY_PX
    return 1.0 if low <= size <= high else size / TYPICAL_BODY_PX


def _parabola_peak(left: float, centre: float, right: float) -> float:
    """The offset (-0.5..0.5) of a parabola's vertex through three samples at -1, 0, 1."""
    denominator = left - 2 * centre + right
    return float(np.clip(0.5 * (left - right) / denominator, -0.5, 0.5)) if denominator < 0 else 0.0


@cache
def _window(n: int) -> np.ndarray:
    hann = np.hanning(n + 2)[1:-1]
    return np.outer(hann, hann)


@dataclass
class TrackResult:
    """Per frame and body the tracked box, and the response's peak (its confidence, in the embedding's units)."""

    names: list[str]
    boxes: list[list[RotatedBox]]  # [frame][body]
    scores: np.ndarray  # (frames, bodies)
    frames_per_s: float = float("nan")
    lost_score: float | None = None  # a peak below this marks a frame where the body may be lost (model's record)
    frame_shape: tuple[int, int] | None = None  # (height, width): a box mostly outside the frame is lost
    angles_deg: dict[str, list[float]] = field(init=False)

    def __post_init__(self) -> None:
        self.angles_deg = {
            f"{self.names[k]}/{self.names[k + 1]}": [intervertebral_angle_deg(f[k], f[k + 1]) for f in self.boxes]
            for k in range(len(self.names) - 1)
        }

    def doubtful_frames(self) -> dict[str, list[int]]:
        """Per body, the frames whose response peak fell below the model's lost-track level (none without one)."""
        if self.lost_score is None:
            return {}
        low = np.nan_to_num(self.scores, nan=np.inf) < self.lost_score
        return {name: np.flatnonzero(low[:, k]).tolist() for k, name in enumerate(self.names) if low[:, k].any()}

    def frames_outside(self) -> dict[str, list[int]]:
        """Per body, the frames where its box lies mostly outside the frame: it has left the view, or the tracker
        has run off (its response can stay high on whatever it follows there)."""
        return self._outside

    @cached_property
    def _outside(self) -> dict[str, list[int]]:
        if self.frame_shape is None:
            return {}
        out = {
            name: [t for t, frame in enumerate(self.boxes) if inside_fraction(frame[k], self.frame_shape) < MIN_INSIDE]
            for k, name in enumerate(self.names)
        }
        return {name: frames for name, frames in out.items() if frames}

    @property
    def needs_review(self) -> list[str]:
        """One reason per body that may have been lost: its track after the first doubtful frame is not to be used
        unchecked."""
        low = [
            f"{name}: the tracker's response fell below its lost-track level in {len(frames)} of "
            f"{len(self.boxes)} frames (first at frame {frames[0]}): check its box there and after"
            for name, frames in self.doubtful_frames().items()
        ]
        outside = [
            f"{name}: its box lies mostly outside the frame in {len(frames)} of {len(self.boxes)} frames (first at "
            f"frame {frames[0]}): the body left the view or the track ran off; its track there is not to be used"
            for name, frames in self.frames_outside().items()
        ]
        return low + outside

    def to_dict(self) -> dict:
        return {
            "caution": CAUTION,
            "units": UNITS,
            "needs_review": self.needs_review,
            "lost_score": self.lost_score,
            "names": self.names,
            "frames": [{name: box.to_dict() for name, box in zip(self.names, frame)} for frame in self.boxes],
            "scores": [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in self.scores],
            "intervertebral_angles_deg": {k: np.round(v, 2).tolist() for k, v in self.angles_deg.items()},
            "intervertebral_angle_sign": ANGLE_SIGN,
            "frames_per_s": self.frames_per_s,
        }


CAUTION = (
    "Experimental: the tracker was trained and measured on simulated fluoroscopy only (SPIDER's vertebrae moved "
    "through flexion and extension and projected); check every track against the frames"
)
UNITS = "boxes in the frames' pixels: cx = column, cy = row from the top-left corner; angles in degrees"
ANGLE_SIGN = (
    "each intervertebral angle is the upper body's box angle minus the lower one's, positive clockwise on the "
    "screen: extension where the patient faces the image's left, flexion where the patient faces its right (the "
    "facing is not detected: read the sign the other way for a right-facing patient)"
)


class Tracker:
    """SiamFC for rotated boxes: :meth:`start` on the first frame, then :meth:`step` per frame.

    ``embed`` is φ; the response for a template z and a search crop x is ``sum_c (x_c ⋆ (z_c - mean z_c))`` (the
    template made zero-mean, as in training, so that brightness alone wins nothing), computed by FFT."""

    def __init__(self, embed: Embedding, rotations_deg: np.ndarray = ROTATIONS_DEG):
        """``rotations_deg``: the templates' rotations, evenly spaced, 0 among them."""
        self.embed = embed
        self.rotations_deg = np.asarray(rotations_deg, float)
        self.rotation_step_deg = float(np.diff(self.rotations_deg).mean()) if len(self.rotations_deg) > 1 else 0.0
        self.window = round(ROTATION_WINDOW_DEG / self.rotation_step_deg) if self.rotation_step_deg else 0

    def start(self, frame: np.ndarray, boxes: list[RotatedBox]) -> None:
        self.scale = pixels_per_crop_pixel(boxes)
        image = self._prepared(frame)
        crops = [crop(image, (b.cx, b.cy), TEMPLATE_PX, -r, self.scale) for b in boxes for r in self.rotations_deg]
        z = self.embed(np.stack(crops)[:, None])
        z = z - z.mean((2, 3), keepdims=True)
        side = SEARCH_PX // STRIDE
        self.templates = np.conj(np.fft.rfft2(z, s=(side, side))).reshape(
            len(boxes), len(self.rotations_deg), *z.shape[1:2], side, side // 2 + 1
        )
        self.response_side = side - z.shape[-1] + 1
        self.first = list(boxes)
        self.boxes = list(boxes)
        self.rotation_index = [int(np.argmin(np.abs(self.rotations_deg))) for _ in boxes]

    def step(self, frame: np.ndarray) -> tuple[list[RotatedBox], np.ndarray]:
        """The boxes on the next frame and their responses' peaks."""
        image = self._prepared(frame)
        x = self.embed(np.stack([crop(image, (b.cx, b.cy), SEARCH_PX, step=self.scale) for b in self.boxes])[:, None])
        spectra = np.fft.rfft2(x)
        side, n = self.response_side, self.response_side // 2
        boxes, scores = [], np.zeros(len(self.boxes), np.float32)
        for i, box in enumerate(self.boxes):
            low = max(self.rotation_index[i] - self.window, 0)
            high = min(self.rotation_index[i] + self.window + 1, len(self.rotations_deg))
            product = (spectra[i][None] * self.templates[i, low:high]).sum(1)
            responses = np.fft.irfft2(product, s=x.shape[-2:])[:, :side, :side]
            peaks = responses.reshape(len(responses), -1).max(1)
            k = int(np.argmax(peaks))
            r = low + k
            sub = _parabola_peak(peaks[k - 1], peaks[k], peaks[k + 1]) if 0 < k < len(peaks) - 1 else 0.0
            rotation = self.rotations_deg[r] + sub * self.rotation_step_deg
            response = responses[k]
            spread = response.max() - response.min()
            scored = (1 - WINDOW_INFLUENCE) * (response - response.min()) / max(spread, 1e-12)
            scored += WINDOW_INFLUENCE * _window(side)
            row, col = np.unravel_index(int(np.argmax(scored)), scored.shape)
            dy = row + (_parabola_peak(*response[row - 1 : row + 2, col]) if 0 < row < side - 1 else 0.0) - n
            dx = col + (_parabola_peak(*response[row, col - 1 : col + 2]) if 0 < col < side - 1 else 0.0) - n
            first = self.first[i]
            shift = STRIDE * self.scale  # frame pixels per response cell
            boxes.append(box.moved(shift * dx, shift * dy, first.angle_deg + rotation))
            scores[i] = peaks[k]
            self.rotation_index[i] = r
        self.boxes = boxes
        return boxes, scores

    def _prepared(self, frame: np.ndarray) -> np.ndarray:
        """The frame normalised, and smoothed where crops sample it coarser than its pixels (no aliasing)."""
        image = normalise(frame)
        return ndimage.gaussian_filter(image, ANTI_ALIAS * self.scale) if self.scale > 1 else image


def load_tracking_model(model_path: Path | str | None = None) -> tuple[Embedding, float | None]:
    """φ from an ONNX file (input ``image`` (n, 1, h, w), output its embedding), the shipped one by default, and
    the response peak below which a body may be lost, from the record beside it (set by ``bench/tracking.py
    --ship`` on validation patients' sequences; None without a record or without that level)."""
    import onnxruntime

    path = Path(model_path) if model_path else WEIGHTS
    if not path.is_file():
        raise InputError(f"{path}: no tracking model; train one with `lumbar train tracking` or pass its ONNX file")
    record = read_record(path.with_suffix(".json")) if path.with_suffix(".json").is_file() else {}
    refuse_other_kind(record, path, "tracking")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnx_session(path, options)
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or shape[1] != 1:
        raise InputError(f"{path}: not a tracking model (its input is {shape}, not (n, 1, height, width))")
    if any(isinstance(side, int) for side in shape[2:]):
        raise InputError(
            f"{path}: not a tracking model (its input is fixed at {shape[2]} x {shape[3]} pixels; the tracker runs "
            f"one network on {TEMPLATE_PX}- and {SEARCH_PX}-pixel crops)"
        )
    name = session.get_inputs()[0].name
    lost_score = record.get("lost_score")
    return (
        lambda batch: session.run(None, {name: np.ascontiguousarray(batch, np.float32)})[0],
        float(lost_score) if lost_score is not None else None,
    )


def track_sequence(
    frames: np.ndarray, boxes0: list[RotatedBox], names: list[str], model_path: Path | str | None = None
) -> TrackResult:
    """Track the bodies boxed on the first of ``frames`` (n, h, w) through the sequence; the result lists them
    from head to feet (:func:`head_to_feet`)."""
    import time

    if len(boxes0) != len(names):
        raise InputError(f"{len(boxes0)} boxes but {len(names)} names: give one name per box")
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 3:
        raise InputError(f"a sequence is (frames, height, width); got an array of shape {frames.shape}")
    if len(frames) < 2:
        raise InputError(f"a sequence of {len(frames)} frame(s): tracking needs at least 2")
    height, width = frames.shape[1:]
    for box, name in zip(boxes0, names):
        if box.width > width or box.height > height:
            raise InputError(
                f"the box of {name} ({box.width:.0f} x {box.height:.0f} pixels) is larger than the frame "
                f"({width} x {height})"
            )
        if inside_fraction(box, (height, width)) < MIN_INSIDE:
            raise InputError(
                f"the box of {name} lies mostly outside the first frame ({width} x {height} pixels): box the "
                "bodies the frame shows"
            )
    order = head_to_feet(boxes0, names)
    boxes0, names = [boxes0[k] for k in order], [names[k] for k in order]
    embed, lost_score = load_tracking_model(model_path)
    tracker = Tracker(embed)
    start = time.perf_counter()
    tracker.start(frames[0], boxes0)
    boxes, scores = [list(boxes0)], [np.full(len(boxes0), np.nan, np.float32)]
    for frame in frames[1:]:
        found, score = tracker.step(frame)
        boxes.append(found)
        scores.append(score)
    elapsed = time.perf_counter() - start
    fps = len(frames) / elapsed if elapsed > 0 else float("nan")
    return TrackResult(list(names), boxes, np.array(scores), fps, lost_score, (height, width))


def strip_png(frames: np.ndarray, result: TrackResult, count: int = 6):
    """A PIL image: ``count`` frames spread over the sequence side by side, each body's tracked box drawn."""
    from PIL import Image, ImageDraw

    picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    h, w = frames.shape[1:]
    strip = Image.new("RGB", (w * len(picks), h))
    colours = [(255, 80, 80), (80, 220, 80), (80, 160, 255), (255, 200, 40), (220, 80, 255), (40, 220, 220)]
    for j, t in enumerate(picks):
        low, high = np.percentile(frames[t], [1, 99])
        grey = (np.clip((frames[t] - low) / max(high - low, 1e-6), 0, 1) * 255).astype(np.uint8)
        strip.paste(Image.fromarray(grey).convert("RGB"), (j * w, 0))
        draw = ImageDraw.Draw(strip)
        for k, box in enumerate(result.boxes[t]):
            points = [(x + j * w, y) for x, y in box.corners()]
            draw.polygon(points, outline=colours[k % len(colours)])
        draw.text((j * w + 3, 3), f"frame {t}", fill=(255, 255, 255))
    return strip


def angle_chart(result: TrackResult, size: tuple[int, int] = (480, 240)):
    """A PIL image: each level's intervertebral angle (degrees) over the frames, one line each, with a legend."""
    from PIL import Image, ImageDraw

    width, height = size
    chart = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(chart)
    curves = {k: np.asarray(v) for k, v in result.angles_deg.items()}
    values = np.concatenate(list(curves.values())) if curves else np.zeros(1)
    low, high = float(values.min()) - 1, float(values.max()) + 1
    left, right, top, bottom = 40, width - 90, 10, height - 25
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    draw.text((2, top), f"{high:.0f}°", fill=(0, 0, 0))
    draw.text((2, bottom - 10), f"{low:.0f}°", fill=(0, 0, 0))
    draw.text((left, bottom + 5), "frame", fill=(0, 0, 0))
    colours = [(220, 40, 40), (40, 160, 40), (40, 90, 220), (200, 140, 0), (160, 40, 200), (0, 160, 160)]
    n = max(len(result.boxes) - 1, 1)
    for k, (name, curve) in enumerate(curves.items()):
        points = [
            (left + (right - left) * t / n, bottom - (bottom - top) * (v - low) / (high - low))
            for t, v in enumerate(curve)
        ]
        colour = colours[k % len(colours)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        draw.text((right + 5, top + 14 * k), name, fill=colour)
    return chart
