"""A second look at each body of a frontal radiograph, in a window in the body's own frame.

The frontal network reads the whole film at 512 rows, where a body is about 18 pixels high: its corners are good
to a few of its pixels. A :class:`BodyFrame` is a square window centred on one body it found, turned by that body's
tilt and scaled so that the spine's usual step between neighbouring bodies spans a fixed number of the window's
pixels (``CORNER_WINDOW``): every body looks upright and of one size to the corner network, on a film of any size.
The corner network gives one heatmap per corner (:func:`heatmap_points`); :func:`refine_corners` reads each window
as it lies and flipped, and takes the corners back into the film.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lumbar.preprocess import CORNER_WINDOW, Window
from lumbar.tasks.cobb import side_heights
from lumbar.tasks.corners import FoundVertebra

Network = Callable[[np.ndarray], np.ndarray]  # a batch of windows (n, 1, size, size) in, logits out


@dataclass(frozen=True)
class BodyFrame:
    """Where a window lies on the film: its centre [x, y] (film pixels), its turn (radians; the window's x axis
    along the body's endplates, left to right as in the film) and its scale (window pixels per film pixel)."""

    centre: np.ndarray
    angle: float
    scale: float
    size: int

    @property
    def middle(self) -> float:
        return (self.size - 1) / 2

    def _rotation(self) -> np.ndarray:
        c, s = np.cos(self.angle), np.sin(self.angle)
        return np.array([[c, -s], [s, c]])

    def to_film(self, points: np.ndarray) -> np.ndarray:
        """Window pixel coordinates ``(..., 2)`` [x, y] into the film's."""
        local = (np.asarray(points, np.float64) - self.middle) / self.scale
        return local @ self._rotation().T + self.centre

    def to_window(self, points: np.ndarray) -> np.ndarray:
        """Film pixel coordinates ``(..., 2)`` [x, y] into the window's."""
        local = (np.asarray(points, np.float64) - self.centre) @ self._rotation()
        return local * self.scale + self.middle

    def sample(self, film: np.ndarray) -> np.ndarray:
        """The window's pixels (bilinear; 0 beyond the film)."""
        v, u = np.mgrid[0 : self.size, 0 : self.size].astype(np.float64)
        xy = self.to_film(np.stack([u, v], -1))
        return ndimage.map_coordinates(
            np.asarray(film, np.float32), [xy[..., 1], xy[..., 0]], order=1, mode="constant", cval=0.0
        ).astype(np.float32)


def body_angle(quad: np.ndarray) -> float:
    """A body's tilt (radians) from its corners (left-superior, right-superior, right-inferior, left-inferior):
    the direction of its two endplates, left to right, averaged."""
    quad = np.asarray(quad, np.float64)
    along = (quad[1] - quad[0]) / max(np.linalg.norm(quad[1] - quad[0]), 1e-9)
    along += (quad[2] - quad[3]) / max(np.linalg.norm(quad[2] - quad[3]), 1e-9)
    return float(np.arctan2(along[1], along[0]))


def spine_step(centres: np.ndarray) -> float:
    """The spine's usual step: the median distance between neighbouring body centres (top to bottom)."""
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    if len(centres) < 2:
        raise ValueError("a step needs at least two bodies")
    return float(np.median(np.linalg.norm(np.diff(centres, axis=0), axis=1)))


def frame(centre: np.ndarray, angle: float, step: float, window: Window) -> BodyFrame:
    """The ``window`` centred at ``centre`` (film pixels), turned by ``angle``, for a spine whose step is ``step``."""
    if not step > 0:
        raise ValueError(f"the spine's step must be positive, not {step}")
    return BodyFrame(np.asarray(centre, np.float64), float(angle), window.step_px / step, window.size)


def heatmap_points(logits: np.ndarray) -> np.ndarray:
    """Each channel's point [x, y] from heatmap logits ``(k, h, w)``: the mean pixel position under the channel's
    softmax over all pixels (the differentiable soft-argmax a heatmap network is trained with)."""
    logits = np.asarray(logits, np.float64)
    k, h, w = logits.shape
    flat = logits.reshape(k, -1)
    weights = np.exp(flat - flat.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    v, u = np.mgrid[0:h, 0:w]
    return np.stack([weights @ u.ravel(), weights @ v.ravel()], 1)


MIRRORED_CORNERS = [1, 0, 3, 2]  # a window flipped left to right: its left and right corners swap


def body_frames(centres: np.ndarray, angles: np.ndarray, window: Window, step: float | None = None) -> list[BodyFrame]:
    """One ``window`` per body (centres ``(n, 2)`` top to bottom, tilts in radians), scaled by the spine's step
    (measured from the centres unless given)."""
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    step = spine_step(centres) if step is None else step
    return [frame(c, a, step, window) for c, a in zip(centres, angles)]


def windows_both_ways(film: np.ndarray, frames: list[BodyFrame]) -> np.ndarray:
    """The frames' windows ``(2n, 1, size, size)``: as they lie, then each flipped left to right (the networks
    read both and their answers are averaged)."""
    windows = np.stack([f.sample(film) for f in frames])[:, None]
    return np.concatenate([windows, windows[..., ::-1]])


def corners_from_heatmaps(frames: list[BodyFrame], logits: np.ndarray) -> np.ndarray:
    """Each body's four corners ``(n, 4, 2)`` in film pixels from the corner network's heatmaps ``(2n, 4, h, w)``
    over :func:`windows_both_ways`: the flipped windows' points flipped back, their corners swapped back, and the
    two readings averaged."""
    n = len(frames)
    if n == 0:
        return np.zeros((0, 4, 2))
    points = np.stack([heatmap_points(one) for one in np.asarray(logits)])
    size = frames[0].size
    flipped = points[n:, MIRRORED_CORNERS] * [-1.0, 1.0] + [size - 1.0, 0.0]
    window_points = (points[:n] + flipped) / 2
    return np.stack([f.to_film(p) for f, p in zip(frames, window_points)])


def refine_corners(
    film: np.ndarray, bodies: list[FoundVertebra], corner_net: Network, step: float | None = None
) -> np.ndarray:
    """Every body's four corners ``(n, 4, 2)`` (film pixels) placed again by ``corner_net`` in the body's window on
    ``film`` (grey values in [0, 1]), centred and turned by the body's first corners, read as it lies and flipped,
    the two answers averaged. ``corner_net`` is the shipped ONNX model in the pipeline and the network being trained
    in training, through this one function. Fewer than two bodies give no spine step to scale a window by: their
    corners are kept, as they are where the bodies' centres are closer than half a body (no spine's step to scale
    by: peaks on one body, or on no spine). ``step``: the spine's step, where the bodies leave levels out between them
    (else the median distance between their centres)."""
    quads = np.array([b.corners for b in bodies], np.float64).reshape(-1, 4, 2)
    if len(bodies) < 2:
        return quads
    step = spine_step(np.array([b.centre for b in bodies])) if step is None else step
    if not np.isfinite(step) or step < 0.5 * np.median(side_heights(quads)):  # half a body: no spine's step
        return quads
    frames = body_frames(quads.mean(1), [body_angle(q) for q in quads], CORNER_WINDOW, step)
    return corners_from_heatmaps(frames, corner_net(windows_both_ways(film, frames)))
