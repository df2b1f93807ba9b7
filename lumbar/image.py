"""``SpineImage``: the one image type every step of the pipeline accepts and returns.

The array is always held in **RAS+ canonical orientation** (NIfTI convention): axis 0 increases toward
the patient's Right, axis 1 toward Anterior, axis 2 toward Superior; ``affine`` maps voxel indices to
RAS millimetres. Readers reorient whatever they load (DICOM LPS, NIfTI in any voxel order, PNG slices)
to it and remember the source voxel order, so that outputs can be written back in the input's own
geometry. ``sagittal_slices()`` gives the view radiologists read: slices from the patient's right
to left, each with the head up and anterior to the left (like the SPIDER PNGs).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

RAS = axcodes2ornt("RAS")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # DICOM and ITK world (LPS) to ours (RAS)
PLANES = ("sagittal", "coronal", "axial")  # the plane normal to R-L, A-P and S-I
PICTURE_FORMATS = ("PNG", "JPG", "JPEG")  # 2D raster files: no orientation, no slice thickness
ASSUMED_FOV_MM = 300.0  # a typical lumbar sagittal field of view, for pictures that do not store their pixel size
ANISOTROPY = 1.3  # a volume whose thickest voxel side is this much larger than the others was acquired in slices


class Modality(StrEnum):
    """What made the image; the router picks a pipeline by it (and by the plane)."""

    MR = "MR"
    CT = "CT"
    RADIOGRAPH = "XR"  # projection radiography: DICOM CR, DX
    FLUOROSCOPY = "RF"  # X-ray cine: DICOM XA, RF (multi-frame)
    ULTRASOUND = "US"
    OTHER = "OT"

    @classmethod
    def parse(cls, text: str) -> Modality:
        """A modality from what a user types or a DICOM ``Modality`` code (``mr``, ``MRI``, ``DX``, ``xa``...)."""
        code = str(text).strip().upper()
        aliases = {
            "MRI": "MR",
            "CR": "XR",
            "DX": "XR",
            "DR": "XR",
            "XRAY": "XR",
            "X-RAY": "XR",
            "RADIOGRAPH": "XR",
            "XA": "RF",
            "FLUORO": "RF",
            "FLUOROSCOPY": "RF",
            "ULTRASOUND": "US",
        }
        code = aliases.get(code, code)
        try:
            return cls(code)
        except ValueError:
            raise ValueError(f"unknown modality {text!r}: use one of {', '.join(m.value for m in cls)}") from None

    @classmethod
    def from_dicom(cls, code: str) -> Modality:
        """A DICOM ``Modality`` attribute; anything unknown (SC, OT, PT, ...) is OTHER."""
        try:
            return cls.parse(code)
        except ValueError:
            return cls.OTHER


def series_key(uid: str, part: int) -> str:
    """What ``--series`` names a series by besides its number: its UID, a part's followed by the part (``<UID>.2``;
    ``part`` 0 where the series is whole)."""
    return f"{uid}.{part}" if part else uid


@dataclass(frozen=True)
class SeriesInfo:
    """The DICOM series an image came from; the UID is kept for DICOM SEG references, never shown in reports."""

    uid: str = ""
    number: str = ""
    description: str = ""
    plane: str | None = None  # from ImageOrientationPatient
    manufacturer: str = ""
    transfer_syntax: str = ""
    contrast_agent: str | None = None  # ContrastBolusAgent: None when the file does not say, "" when it says none
    image_type: str = ""  # ImageType joined by "\\" (a CT scout says LOCALIZER)
    echo_time_ms: float | None = None  # MR timing (EchoTime, RepetitionTime, InversionTime): None when not given
    repetition_time_ms: float | None = None
    inversion_time_ms: float | None = None
    rescale_stated: bool = True  # RescaleIntercept given (the CT Image module requires it: HU are known)
    gantry_tilt_deg: float = 0.0  # slices stepping at this angle to their normal, resampled onto an upright grid
    part: int = 0  # which part of a UID split in parts (lumbar.io.dicom_series), from 1; 0 where the series is whole

    @property
    def key(self) -> str:
        """What ``--series`` picks it by besides its number (:func:`series_key`)."""
        return series_key(self.uid, self.part)

    def label(self) -> str:
        """How a reader names the series: ``#3 SAG T2`` (number and description, no UID)."""
        return f"#{self.number or '?'} {self.description or '(no description)'}"


@dataclass(frozen=True)
class OtherSeries:
    """A series of the same folder that was not read: how a listing shows it (number, description, modality, plane,
    image count) and its UID, which picks it with ``--series``. The UID is for the console (``lumbar info``) only:
    :meth:`SpineImage.describe`, which findings and level files carry, shows the listing alone."""

    shown: str
    uid: str = ""


@dataclass(frozen=True)
class FileGrid:
    """The voxel grid of a 2D file read as a picture (a NIfTI, MHA or NRRD slice): ``affine`` (RAS) maps its voxel
    (x, y) to the world, x running along the stored picture's columns and y along its rows, downward or, with
    ``rows_up``, upward (NIfTI's second axis runs up the picture). Label maps are written back on it."""

    affine: np.ndarray
    rows_up: bool = False


def assumed_spacing_mm(shape: tuple[int, ...]) -> float:
    """Pixel size that makes a picture of unknown spacing span ``ASSUMED_FOV_MM`` on its longer side."""
    return ASSUMED_FOV_MM / max(shape)


def to_canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorient ``array`` to RAS+ by axis permutations and flips; returns (array, affine, source_ornt)."""
    ornt = io_orientation(affine)
    canonical = apply_orientation(array, ornt)
    return canonical, affine @ inv_ornt_aff(ornt, array.shape), ornt


def display_to_canonical(stack: np.ndarray) -> np.ndarray:
    """Inverse of :meth:`SpineImage.sagittal_slices`: ``(n, rows S->I, cols A->P)`` to RAS axes."""
    return np.ascontiguousarray(np.flip(stack, axis=(0, 1, 2)).transpose(0, 2, 1))


def _as_stored(sizes: list, on_side: bool) -> list:
    """Per-axis sizes (shape, spacing) of a picture as its file holds them: its two in-plane axes swapped back where
    it was stored on its side."""
    return [sizes[0], sizes[2], sizes[1]] if on_side else sizes


@dataclass
class SpineImage:
    """Voxels in RAS+ orientation with their geometry, modality and where they came from."""

    array: np.ndarray
    affine: np.ndarray
    modality: Modality = Modality.OTHER
    source: str = ""
    format: str = ""  # "DICOM", "NIfTI", "PNG", ...
    spacing_known: bool = True
    modality_guessed: bool = False  # the file did not say (NIfTI, MHA, PNG): guessed from intensities or assumed
    series: SeriesInfo | None = None  # DICOM input only
    patient_id: str = ""  # compared when series are joined as one patient's; never written out
    source_files: tuple[str, ...] = ()  # the DICOM files, for DICOM SEG references
    other_series: tuple[OtherSeries, ...] = ()  # series of the same folder that were not read
    source_ornt: np.ndarray = field(default_factory=lambda: RAS.copy())
    # built from display slices (from_sagittal_slices: a picture, a DICOM without geometry): the file's frames are its
    # sagittal slices in their stored rows and columns, not its voxels in the canonical order
    from_display: bool = False
    frame_order: tuple[int, ...] = ()  # a multi-frame DICOM: the file's frame number (from 0) of each slice as stacked
    stored_head_down: bool = False  # a picture stored upside down, turned upright here (outputs are turned back)
    stored_mirrored: bool = False  # a picture stored mirrored front to back, mirrored back here (outputs too)
    # a picture stored turned a quarter (the spine across it), turned back here (outputs too)
    stored_on_side: bool = False
    file_grid: FileGrid | None = None  # a 2D NIfTI/MHA/NRRD read as a picture: its own grid, for outputs
    nifti_codes: tuple[int, int] = (1, 1)  # the (qform, sform) codes outputs carry: a NIfTI input's own, else scanner
    view: str | None = None  # radiographs: "frontal" or "lateral" (DICOM ViewPosition, --view, or the networks)
    view_guessed: bool = False  # the view was decided by the networks, not stated

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"SpineImage needs a 3D array, got shape {self.array.shape}")
        self.modality = Modality.parse(self.modality) if not isinstance(self.modality, Modality) else self.modality

    @classmethod
    def from_array(cls, array: np.ndarray, affine: np.ndarray, **kwargs: Any) -> SpineImage:
        """Build from an array in any voxel order; it is reoriented to RAS+ and the order remembered."""
        canonical, canonical_affine, ornt = to_canonical(np.asarray(array), np.asarray(affine, float))
        return cls(canonical, canonical_affine, source_ornt=ornt, **kwargs)

    @classmethod
    def from_sagittal_slices(
        cls, stack: np.ndarray, spacing_mm: tuple[float, float, float], **kwargs: Any
    ) -> SpineImage:
        """Build from display slices ``(n, rows, cols)`` (head up, anterior left) and (lateral, row, col) spacing."""
        lateral, row, col = spacing_mm
        array = display_to_canonical(np.asarray(stack))
        affine = np.diag([lateral, col, row, 1.0])
        return cls(array, affine, from_display=True, **kwargs)

    def stored_frames(self, array: np.ndarray | None = None) -> np.ndarray:
        """``array`` (default: the image) as the files hold it, ``(frame, row, col)``: each file's frame, or a
        multi-frame file's frames in the file's own order (what a DICOM SEG's frames must match)."""
        array = self.array if array is None else array
        frames = (
            self.in_stored_frame(self.with_array(array).sagittal_slices())
            if self.from_display
            else self.source_array(array)
        )
        if not self.frame_order:
            return frames
        stored = np.empty_like(frames)
        stored[list(self.frame_order)] = frames
        return stored

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.array.shape  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along the RAS axes, in mm."""
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))  # type: ignore[return-value]

    @property
    def is_2d(self) -> bool:
        """One sagittal slice (a PNG, or a single-slice DICOM)."""
        return self.shape[0] == 1

    def sagittal_slices(self) -> np.ndarray:
        """Slices ``(n, rows, cols)`` from right to left, rows head to feet, columns anterior to posterior."""
        return np.flip(self.array, axis=(0, 1, 2)).transpose(0, 2, 1)

    def sagittal_spacing_mm(self) -> tuple[float, float]:
        """(row, column) pixel size of :meth:`sagittal_slices`, in mm."""
        _, a, s = self.spacing_mm
        return s, a

    def display_spacing_mm(self) -> tuple[float, float, float]:
        """(lateral, row, column) voxel size of :meth:`sagittal_slices`, in mm."""
        return (self.spacing_mm[0], *self.sagittal_spacing_mm())

    @property
    def is_picture(self) -> bool:
        """A 2D raster file (PNG/JPEG): its label maps are written back as pictures of the same size."""
        return self.is_2d and self.format in PICTURE_FORMATS

    @property
    def plane(self) -> str | None:
        """The plane the image was acquired in: from DICOM's orientation, else from the thickest voxel side;
        ``None`` for a near-isotropic volume (any plane can be resliced from it). A single picture is taken to be
        sagittal, as a PNG slice is read, unless it is a radiograph or fluoroscopy frame: a projection."""
        if self.series is not None and self.series.plane:
            return self.series.plane
        if self.is_2d:
            return "projection" if self.modality in (Modality.RADIOGRAPH, Modality.FLUOROSCOPY) else "sagittal"
        spacing = np.asarray(self.spacing_mm)
        thick = int(np.argmax(spacing))
        if spacing[thick] < ANISOTROPY * np.delete(spacing, thick).max():
            return None
        return PLANES[thick]

    def labels_from_sagittal(self, stack: np.ndarray) -> SpineImage:
        """A label image on this image's grid from display-oriented slices (e.g. a network's output)."""
        return self.with_array(display_to_canonical(stack))

    def turned_upside_down(self) -> SpineImage:
        """The same picture with head and feet swapped (a vertical flip of every sagittal slice), remembering it
        so that label maps written for the file can be turned back to its rows. For pictures (PNG/JPEG) only: the
        affine is not changed."""
        flipped = np.ascontiguousarray(np.flip(self.array, axis=2))
        return replace(self, array=flipped, stored_head_down=not self.stored_head_down)

    def mirrored_front_to_back(self) -> SpineImage:
        """The same picture with anterior and posterior swapped (a horizontal flip of every sagittal slice),
        remembering it so that label maps written for the file can be mirrored back to its columns. For pictures
        (PNG/JPEG) only: the affine is not changed."""
        mirrored = np.ascontiguousarray(np.flip(self.array, axis=1))
        return replace(self, array=mirrored, stored_mirrored=not self.stored_mirrored)

    def turned_on_side(self) -> SpineImage:
        """The same picture with its rows and columns swapped (a transpose of every sagittal slice, pixel sizes
        swapped with them): a picture stored turned a quarter either way is this, turned over or mirrored. The turns
        are remembered as the file's transpose followed by flips (a transpose after flipping the rows is a flip of
        the columns after it), so that :meth:`in_stored_frame` undoes them in order. For pictures (PNG/JPEG) only:
        the affine is taken as diagonal."""
        swapped = display_to_canonical(np.swapaxes(self.sagittal_slices(), 1, 2))
        order = [0, 2, 1, 3]
        return replace(
            self,
            array=swapped,
            affine=self.affine[np.ix_(order, order)],
            stored_on_side=not self.stored_on_side,
            stored_head_down=self.stored_mirrored,
            stored_mirrored=self.stored_head_down,
        )

    def in_stored_frame(self, display: np.ndarray) -> np.ndarray:
        """Display-oriented arrays ``(..., rows, cols)`` of this image in the rows and columns its file stores them
        (turned over for a picture stored head down, mirrored for one stored mirrored, then transposed for one
        stored on its side; unchanged otherwise)."""
        if self.stored_head_down:
            display = np.flip(display, axis=-2)
        if self.stored_mirrored:
            display = np.flip(display, axis=-1)
        return np.swapaxes(display, -1, -2) if self.stored_on_side else display

    def in_analysed_frame(self, stored: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`in_stored_frame`: arrays in the file's rows and columns (a reference mask) in the
        analysed image's."""
        if self.stored_on_side:
            stored = np.swapaxes(stored, -1, -2)
        if self.stored_mirrored:
            stored = np.flip(stored, axis=-1)
        return np.flip(stored, axis=-2) if self.stored_head_down else stored

    def with_array(self, array: np.ndarray) -> SpineImage:
        """Same geometry and provenance, other voxels (a label map, a normalised copy)."""
        if array.shape != self.shape:
            raise ValueError(f"array shape {array.shape} does not match image shape {self.shape}")
        return replace(self, array=array)

    def source_array(self, array: np.ndarray | None = None) -> np.ndarray:
        """``array`` (default: the image) back in the voxel order of the file it was read from (a 2D file read as a
        picture: its (x, y) voxels, a third axis of one)."""
        array = self.array if array is None else array
        if self.file_grid is not None:
            picture = self.in_stored_frame(self.with_array(array).sagittal_slices())[0]
            picture = picture[::-1] if self.file_grid.rows_up else picture
            return np.ascontiguousarray(picture.T[:, :, None])
        return apply_orientation(array, ornt_transform(RAS, self.source_ornt))

    def source_affine(self) -> np.ndarray:
        """The affine of the file it was read from (for writing outputs in the input's geometry)."""
        if self.file_grid is not None:
            return self.file_grid.affine.copy()
        back = ornt_transform(RAS, self.source_ornt)
        return self.affine @ inv_ornt_aff(back, self.shape)

    def describe(self) -> dict[str, Any]:
        """What was read, for ``lumbar info`` and the findings' input description."""
        from nibabel.orientations import aff2axcodes

        described: dict[str, Any] = {
            "source": self.source,
            "format": self.format or None,
            "modality": self.modality.value,
            "plane": self.plane,
            "shape": _as_stored(list(self.shape), self.stored_on_side),
            "spacing_mm": _as_stored([round(v, 4) for v in self.spacing_mm], self.stored_on_side)
            if self.spacing_known
            else None,
            "orientation": "".join(aff2axcodes(self.affine)),
            "source_orientation": "".join(aff2axcodes(self.source_affine())),
        }
        if self.series is not None:
            described.update(
                series_number=self.series.number,
                series_description=self.series.description,
                manufacturer=self.series.manufacturer,
                transfer_syntax=self.series.transfer_syntax,
            )
        if self.other_series:
            described["other_series"] = [other.shown for other in self.other_series]
        # said only once analysis turned it: reading alone does not judge a picture. A picture on its side was
        # turned over or mirrored after its turn, not in the file: its review reason says where head and front lay
        if self.stored_on_side:
            described["stored_on_side"] = True
        else:
            if self.stored_head_down:
                described["stored_head_down"] = True
            if self.stored_mirrored:
                described["stored_mirrored"] = True
        return described

    def series_label(self, short: bool = False) -> str:
        """The image as a reader names it: the file (``short``: its name without its folders, as findings name the
        series a disc was graded from), and the series number and description for DICOM."""
        source = Path(self.source).name if short and self.source else self.source
        if self.series is None or not (self.series.number or self.series.description):
            return source
        return f"{source} (series {self.series.label().lstrip('#')})"


@dataclass
class FrameSequence:
    """Grey frames over time (a cine, fluoroscopy or ultrasound run, a video), kept as acquired.

    ``frames`` is ``(n_frames, rows, cols)``, each frame with rows down and columns across as shown; there is no
    voxel-to-world affine (a projection or a probe's view has no slice position). ``frame_times_s`` holds one time
    per frame, in seconds from the first frame.
    """

    frames: np.ndarray
    frame_times_s: np.ndarray
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, col); None when the file does not say
    modality: Modality = Modality.OTHER
    source: str = ""
    format: str = ""  # "DICOM", "MP4", "GIF", ...
    series: SeriesInfo | None = None  # DICOM input only
    patient_id: str = ""

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.float32)
        self.frame_times_s = np.asarray(self.frame_times_s, dtype=np.float64)
        if self.frames.ndim != 3 or self.frames.shape[0] < 1:
            raise ValueError(f"FrameSequence needs frames of shape (n_frames, rows, cols), got {self.frames.shape}")
        if self.frame_times_s.shape != (self.frames.shape[0],):
            raise ValueError(f"{self.frames.shape[0]} frames need as many times, got {self.frame_times_s.shape}")
        if np.any(np.diff(self.frame_times_s) < 0):
            raise ValueError("frame times must not decrease")
        self.modality = Modality.parse(self.modality) if not isinstance(self.modality, Modality) else self.modality

    def describe(self) -> dict[str, Any]:
        """What was read, for ``lumbar info``."""
        described: dict[str, Any] = {
            "source": self.source,
            "format": self.format or None,
            "modality": self.modality.value,
            "frames": len(self.frames),
            "frame_shape": list(self.frames.shape[1:]),
            "pixel_spacing_mm": list(self.pixel_spacing_mm) if self.pixel_spacing_mm else None,
            "duration_s": round(float(self.frame_times_s[-1] - self.frame_times_s[0]), 4),
            "frame_rate_hz": round(self.frame_rate_hz, 3) if self.frame_rate_hz else None,
        }
        if self.series is not None:
            described.update(series_number=self.series.number, series_description=self.series.description)
        return described

    @property
    def frame_rate_hz(self) -> float | None:
        """Mean frames per second over the run; None for a single frame or frames that share one time."""
        duration_s = float(self.frame_times_s[-1] - self.frame_times_s[0])
        return (len(self.frame_times_s) - 1) / duration_s if duration_s > 0 else None
