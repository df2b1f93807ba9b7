"""Video files (``.mp4``, ``.avi``, ``.mov``, ``.gif``) through PyAV (FFmpeg): grey frames and their times.

Frame times come from each frame's presentation time stamp in the container, so a GIF's uneven delays and a
variable-rate recording keep their real timing.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.image import FrameSequence, Modality

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".gif")
MAX_SEQUENCE_BYTES = 4 * 1024**3  # float32 frames held in memory


def read_video(path: Path) -> FrameSequence:
    """The first video stream of ``path`` as grey float32 frames in presentation order.

    A file that decodes to fewer frames than its container announces is refused as truncated.
    """
    import av

    frames: list[np.ndarray] = []
    times_s: list[float | None] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: file holds no video stream")
            stream = container.streams.video[0]
            announced, rate_hz = stream.frames, stream.average_rate or stream.guessed_rate
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="gray").astype(np.float32))
                times_s.append(frame.time)
                if len(frames) * frames[0].nbytes > MAX_SEQUENCE_BYTES:
                    raise InputError(
                        f"{path}: video is too long to hold in memory "
                        f"(over {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]})"
                    )
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: not a readable video ({exc.strerror or exc})") from None
    if not frames:
        raise InputError(f"{path}: video is truncated or damaged (no frame decodes)")
    if len(frames) < announced:
        raise InputError(f"{path}: video is truncated or damaged (decoded {len(frames)} of {announced} frames)")
    stamps_s = _time_stamps_s(times_s, rate_hz, path)
    order = np.argsort(stamps_s, kind="stable")
    return FrameSequence(
        np.stack(frames)[order],
        stamps_s[order] - stamps_s.min(),
        modality=Modality.OTHER,
        source=str(path),
        format=path.suffix[1:].upper(),
    )


def _time_stamps_s(times_s: list[float | None], rate_hz: Fraction | None, path: Path) -> np.ndarray:
    """Each frame's presentation time; the stream's frame rate stands in where frames carry none."""
    if all(t is not None for t in times_s):
        return np.asarray(times_s, dtype=float)
    if not rate_hz:
        raise InputError(f"{path}: video frames carry no time stamps and the stream states no frame rate")
    return np.arange(len(times_s)) / float(rate_hz)
