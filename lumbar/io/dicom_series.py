"""The series of a DICOM folder: its image files grouped by SeriesInstanceUID, named, listed and picked.

A scanner may file images that cannot stack into one volume under one UID: a three-plane localizer, the echoes of a
dual-echo sequence at the same positions, a radiograph's frontal and lateral views. Such a UID's files are split into
parts of one orientation, echo, view and image size each, as GDCM's ``useSeriesDetails`` splits them, numbered from 1
(series 3's parts are 3.1, 3.2, ...): each part is a series that ``--series`` picks and an analysis reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from lumbar.errors import InputError
from lumbar.image import series_key
from lumbar.io.dicom_header import HEADER_VALUE_ERRORS, image_type, orientation, plane, text

Files = list[tuple[Path, pydicom.Dataset]]  # (file, its header) of each image of a series


@dataclass(frozen=True)
class Series:
    """The image files of a series, or of a part of one (``part`` from 1; 0 where the series is whole)."""

    files: Files
    part: int = 0

    @property
    def first(self) -> pydicom.Dataset:
        return self.files[0][1]

    @property
    def uid(self) -> str:
        return text(self.first, "SeriesInstanceUID")

    @property
    def key(self) -> str:
        """What ``--series`` names it by besides its number (:func:`lumbar.image.series_key`)."""
        return series_key(self.uid, self.part)

    @property
    def number(self) -> str:
        """Its SeriesNumber, a part's followed by the part (``3.2``); "" where the files give none."""
        number = text(self.first, "SeriesNumber")
        return f"{number}.{self.part}" if self.part else number

    def label(self) -> str:
        """As a reader names it (number and description), without its UID, for findings and reports."""
        return f"#{self.number or '?'} {text(self.first, 'SeriesDescription') or '(no description)'}"

    def describe(self) -> str:
        """For a listing: label, modality, plane, whether it is a localizer, image count; no UID."""
        kind = [text(self.first, "Modality") or "?", plane(self.first) or "no plane"]
        kind += ["localizer"] if self.is_localizer() else []
        return f"{self.label()} [{', '.join(kind)}, {len(self.files)} images]"

    def is_localizer(self) -> bool:
        """A localizer (scout) by its ImageType: views to plan others on, not to analyse."""
        return any("LOCALIZER" in image_type(ds).upper().split("\\") for _, ds in self.files)

    def preference(self) -> tuple:
        """How the automatic pick ranks it: not a localizer before a localizer, then sagittal, then T2, then the most
        images (found in review: a three-plane localizer's 15 files were picked over a 13-slice sagittal series)."""
        description = text(self.first, "SeriesDescription").upper()
        return not self.is_localizer(), plane(self.first) == "sagittal", "T2" in description, len(self.files)


def group_series(headers: Files) -> list[Series]:
    """Image files grouped by SeriesInstanceUID, each UID's files split into the parts that stack (see the module)."""
    by_uid: dict[str, Files] = {}
    for path, ds in headers:
        by_uid.setdefault(text(ds, "SeriesInstanceUID"), []).append((path, ds))
    series = []
    for files in by_uid.values():
        parts = _parts(files)
        series += [Series(parts[0])] if len(parts) == 1 else [Series(p, k) for k, p in enumerate(parts, start=1)]
    return series


def _parts(files: Files) -> list[Files]:
    """``files`` in groups of one echo, view, image size and orientation (within the tolerance stacking allows),
    in the order of their first instance number."""
    parts: list[tuple[tuple, np.ndarray | None, Files]] = []
    for path, ds in files:
        details, iop = _stacking(ds)
        for part_details, part_iop, part in parts:
            if details == part_details and _alike(iop, part_iop):
                part.append((path, ds))
                break
        else:
            parts.append((details, iop, [(path, ds)]))
    return sorted((part for *_, part in parts), key=lambda part: min(_instance(ds) for _, ds in part))


def _stacking(ds: pydicom.Dataset) -> tuple[tuple, np.ndarray | None]:
    """What tells apart images one volume cannot hold together: echo, view and image size, and orientation. A damaged
    value reads as none: the series' reading reports it, where the grouping would refuse the whole folder."""
    try:
        return (text(ds, "EchoNumbers"), text(ds, "ViewPosition"), text(ds, "Rows"), text(ds, "Columns")), orientation(
            ds
        )
    except HEADER_VALUE_ERRORS:
        return ("damaged",), None


def _alike(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Two orientations slices of one volume may have (both none, or equal within 1e-3)."""
    return (a is None and b is None) or (a is not None and b is not None and bool(np.allclose(a, b, atol=1e-3)))


def _instance(ds: pydicom.Dataset) -> int:
    """The file's InstanceNumber; 0 where it gives none, or a damaged one."""
    try:
        return int(ds.get("InstanceNumber", 0) or 0)
    except HEADER_VALUE_ERRORS:
        return 0


def pick_series(series: list[Series], wanted: str | None, where: Path) -> Series:
    """The series ``wanted`` names (its UID or number, a part's as listed), else the one the automatic pick
    prefers (:meth:`Series.preference`). A name several series answer to (two series numbered 3, or the UID or
    number of a series split in parts) is refused, listing them: it took whichever came first."""
    if wanted is None:
        return max(series, key=Series.preference)
    wanted = wanted.strip()
    named = [s for s in series if wanted in (s.key, s.number)]
    named = named or [s for s in series if wanted in (s.uid, text(s.first, "SeriesNumber"))]
    if len(named) == 1:
        return named[0]
    if named:  # the UIDs are left to `lumbar info`: a refusal may be kept in a batch's or the service's records
        raise InputError(
            f"{where}: --series {wanted} names {len(named)} series ({'; '.join(s.describe() for s in named)}); pick "
            "one by its number as listed or, where numbers repeat, its SeriesInstanceUID (`lumbar info` lists them)"
        )
    raise InputError(f"{where}: no series {wanted!r}; found {'; '.join(s.describe() for s in series)}")
