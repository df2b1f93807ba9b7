"""Static-standing recordings of trunk and pelvis kinematics and plantar pressure, and cohorts of them.

One recording is one file, CSV (or Parquet, which needs ``pyarrow``), one row per sample::

    time_s,trunk_flexion_deg,trunk_lateral_deg,trunk_rotation_deg,pelvis_tilt_deg,pelvis_obliquity_deg,cop_ap_mm,cop_ml_mm,load_left_n,load_right_n
    0.00,4.12,-0.31,0.88,11.02,0.40,41.7,-3.2,361.5,349.0
    0.01,4.13,-0.30,0.88,11.03,0.40,41.9,-3.1,361.2,349.3

- ``time_s``: seconds, strictly increasing; any start, any rate of at least ``MIN_SOURCE_RATE_HZ``, steps may vary.
- the :data:`CHANNELS`, every one, in any order (other columns are ignored). Angles in degrees, in the room's frame,
  as an IMU or a marker set gives them: trunk (thorax) flexion forward +, lateral bend to the right +, axial rotation
  to the left +; pelvis anterior tilt +, obliquity right side down +. Centre of pressure (both feet together) in mm:
  anterior + and to the right +, from any origin. Vertical load under each foot in newtons.

Each channel is interpolated linearly onto a fixed grid of ``sample_rate_hz`` (``SAMPLE_RATE_HZ`` by default) from
the first sample on. A recording shorter than ``MIN_DURATION_S`` (one window of the back-pain network), a file
larger than ``MAX_FILE_BYTES``, a missing column, a value that is not a finite number or a time that does not
increase is an :class:`~lumbar.errors.InputError` naming the file.

A cohort is a folder with ``subjects.csv``: ``subject_id,label,recording``, one row per recording (a subject may
have several), ``label`` ``lbp``, ``healthy`` or empty (unknown), ``recording`` a path relative to the folder.
The same layout is described for users in ``docs/back_pain_layout.md``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumbar.errors import InputError

TIME = "time_s"
CHANNELS = (
    "trunk_flexion_deg",
    "trunk_lateral_deg",
    "trunk_rotation_deg",
    "pelvis_tilt_deg",
    "pelvis_obliquity_deg",
    "cop_ap_mm",
    "cop_ml_mm",
    "load_left_n",
    "load_right_n",
)
LOAD_CHANNELS = ("load_left_n", "load_right_n")
LABELS = ("healthy", "lbp")  # index 1: low back pain
SAMPLE_RATE_HZ = 50.0
MIN_DURATION_S = 10.0
MIN_SOURCE_RATE_HZ = 10.0  # slower than this, time_s is most likely not in seconds
MAX_FILE_BYTES = 200 * 2**20  # about 10 hours of nine channels at 100 Hz as CSV
MAX_DURATION_S = 4 * 3600.0  # a standing recording longer than this is a wrong time column, not a recording
MAX_GAP_S = 1.0  # samples further apart than this leave a hole interpolation would fill with a straight line
COHORT_TABLE = "subjects.csv"


@dataclass(frozen=True)
class Recording:
    """One standing trial on a regular time grid: ``signals`` is float32 ``[len(channels), samples]``."""

    source: Path
    subject: str | None
    sample_rate_hz: float
    signals: np.ndarray
    channels: tuple[str, ...] = CHANNELS

    @property
    def duration_s(self) -> float:
        return self.signals.shape[1] / self.sample_rate_hz

    def channel(self, name: str) -> np.ndarray:
        return self.signals[self.channels.index(name)]


@dataclass(frozen=True)
class Subject:
    """One person of a cohort: ``label`` is ``"lbp"``, ``"healthy"`` or None (unknown)."""

    subject_id: str
    label: str | None
    recordings: tuple[Recording, ...]


def read_recording(path: str | Path, subject: str | None = None, sample_rate_hz: float = SAMPLE_RATE_HZ) -> Recording:
    """Read one recording (CSV or Parquet) and resample its :data:`CHANNELS` linearly to ``sample_rate_hz``."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: a folder, not a recording file (a cohort folder is given alone)")
    if not path.is_file():
        raise InputError(f"{path}: no such recording file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path}: {size / 2**20:.0f} MiB is more than a recording ({MAX_FILE_BYTES // 2**20} MiB)")
    if size == 0:
        raise InputError(f"{path}: the file is empty")
    columns = _read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else _read_csv(path)
    where = columns.pop(WHERE)  # per sample, "line N" of a CSV or "row N" of a Parquet table
    time = columns[TIME]
    if time.size < 2:
        raise InputError(f"{path}: fewer than two samples")
    step = np.diff(time)
    if not (step > 0).all():
        k = int(np.argmax(step <= 0)) + 1
        raise InputError(f"{path}: {TIME} does not increase at {where[k]} ({time[k - 1]} then {time[k]})")
    median_step = float(np.median(step))
    if 1.0 / median_step < MIN_SOURCE_RATE_HZ:
        raise InputError(
            f"{path}: samples {median_step:g} apart, under {MIN_SOURCE_RATE_HZ:g} Hz: is {TIME} in seconds?"
        )
    duration = float(time[-1] - time[0])
    if duration > MAX_DURATION_S:
        raise InputError(f"{path}: {TIME} spans {duration:g} s, more than {MAX_DURATION_S:g} s: is it in seconds?")
    if step.max() > MAX_GAP_S:
        k = int(np.argmax(step)) + 1
        raise InputError(
            f"{path}: {TIME} jumps by {step[k - 1]:g} s at {where[k]} (at most {MAX_GAP_S:g} s between samples)"
        )
    if duration < MIN_DURATION_S:
        raise InputError(f"{path}: {duration:.1f} s recorded; at least {MIN_DURATION_S:g} s of standing is needed")
    _plausible(path, columns)
    grid = time[0] + np.arange(int(np.floor(duration * sample_rate_hz + 1e-9)) + 1) / sample_rate_hz
    signals = np.stack([np.interp(grid, time, columns[c]) for c in CHANNELS]).astype(np.float32)
    return Recording(path, subject, float(sample_rate_hz), signals)


# What a standing person on a force plate can give: angles that sway within a turn, a centre of pressure that moves
# within a plate under a metre across (both from any origin: offsets do not matter), loads of no more than a few body
# weights, and something standing on the plate.
MAX_ANGLE_SPREAD_DEG = 360.0
MAX_COP_SPREAD_MM = 1000.0
MAX_VALUE = 1e6  # any channel: beyond this the column is in the wrong units or the file is damaged
MAX_LOAD_N = 20_000.0
MIN_TOTAL_LOAD_N = 50.0  # 5 kg: a dead or unloaded plate reads about 0


def _plausible(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Refuse values no standing recording holds (wrong units, a dead plate or sensor) before they are scored."""
    for name in CHANNELS:
        values = columns[name]
        worst, spread = float(np.abs(values).max()), float(np.ptp(values))
        if worst > (MAX_LOAD_N if name in LOAD_CHANNELS else MAX_VALUE):
            limit = MAX_LOAD_N if name in LOAD_CHANNELS else MAX_VALUE
            raise InputError(f"{path}: {name} reaches {worst:.4g}, beyond {limit:g}: check the column's units")
        bound = MAX_ANGLE_SPREAD_DEG if name.endswith("_deg") else MAX_COP_SPREAD_MM if name.endswith("_mm") else None
        if bound is not None and spread > bound:
            raise InputError(f"{path}: {name} spans {spread:.4g}, more than {bound:g}: check the column's units")
        if spread == 0:
            raise InputError(f"{path}: {name} never changes ({values[0]:g} throughout): a dead sensor or an empty one")
    total = float(np.mean(sum(columns[name] for name in LOAD_CHANNELS)))
    if total < MIN_TOTAL_LOAD_N:
        raise InputError(
            f"{path}: the feet's loads add up to {total:.3g} N on average, under {MIN_TOTAL_LOAD_N:g} N: no one is "
            "standing on the plate (or it was not zeroed)"
        )


WHERE = "where"  # the key under which the readers give each sample's place in the file, for messages


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    """The time and channel columns of a CSV recording (other columns, text or not, are left alone); a value that
    is not a finite number is named by its line in the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a CSV text file (not UTF-8 text)") from None
    reader = csv.reader(io.StringIO(text))
    values: dict[str, list[float]] = {}
    found: list[str] = []
    try:
        header = [h.strip() for h in next(reader, [])]
        if not any(header):
            raise InputError(f"{path}: no header row (expected {TIME},{','.join(CHANNELS)})")
        if len(header) == 1 and ";" in header[0]:
            raise InputError(f"{path}: its columns are separated by semicolons; a recording's CSV uses commas")
        _check_columns(path, header)
        wanted = {name: header.index(name) for name in (TIME, *CHANNELS)}
        values = {name: [] for name in wanted}
        last = reader.line_num
        for row in reader:
            first, last = last + 1, reader.line_num
            if last > first:  # a quote left open took the lines after it into one field
                raise InputError(f"{path}: a quoted field runs from line {first} over line {last}; close its quote")
            if not any(field.strip() for field in row):
                continue  # a blank line
            if len(row) != len(header):
                raise InputError(f"{path}: line {first} has {len(row)} values but the header {len(header)} columns")
            for name, column in wanted.items():
                try:
                    value = float(row[column])
                except ValueError:
                    raise InputError(f"{path}: {name} is {row[column]!r} at line {first}, not a number") from None
                if not np.isfinite(value):
                    raise InputError(f"{path}: {name} is {value} at line {first}; every value must be a finite number")
                values[name].append(value)
            found.append(f"line {first}")
    except csv.Error as exc:
        raise InputError(f"{path}: not a readable CSV table (line {reader.line_num}: {exc})") from None
    if not values[TIME]:
        raise InputError(f"{path}: a header and no samples")
    return {**{name: np.array(column, np.float64) for name, column in values.items()}, WHERE: np.array(found)}


def _read_parquet(path: Path) -> dict[str, np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or save it as CSV") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own error types for a damaged file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    _check_columns(path, table.column_names)
    try:
        columns = {n: np.asarray(table.column(n).to_numpy(zero_copy_only=False), np.float64) for n in (TIME, *CHANNELS)}
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: a column is not numeric ({exc})") from None
    columns = _finite(path, columns)
    return {**columns, WHERE: np.array([f"row {k + 1}" for k in range(len(columns[TIME]))])}


def _check_columns(path: Path, header: list[str]) -> None:
    missing = [c for c in (TIME, *CHANNELS) if c not in header]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (see docs/back_pain_layout.md)")
    twice = [c for c in (TIME, *CHANNELS) if header.count(c) > 1]
    if twice:  # which of the two is meant cannot be told: neither is read
        raise InputError(f"{path}: column(s) {', '.join(twice)} named twice in the header")


def _finite(path: Path, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for name, values in columns.items():
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(f"{path}: {name} is {values[row]} at row {row + 1}; every value must be a finite number")
    return columns


def read_cohort(folder: str | Path, sample_rate_hz: float = SAMPLE_RATE_HZ) -> list[Subject]:
    """Every subject listed in ``folder/subjects.csv`` with their recordings, in the order first listed."""
    folder = Path(folder)
    table = folder / COHORT_TABLE
    if not table.is_file():
        raise InputError(f"{folder}: no {COHORT_TABLE} (subject_id,label,recording) in the cohort folder")
    labels: dict[str, str | None] = {}
    recordings: dict[str, list[Recording]] = {}
    listed: dict[Path, int] = {}  # each recording's first line in the table
    try:
        with open(table, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = {"subject_id", "label", "recording"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(f"{table}: missing column(s) {', '.join(sorted(missing))}")
            for k, row in enumerate(reader, start=2):
                subject = (row["subject_id"] or "").strip()
                label = (row["label"] or "").strip().lower() or None
                name = (row["recording"] or "").strip()
                if not subject or not name:
                    raise InputError(f"{table}:{k}: subject_id and recording are required")
                if label is not None and label not in LABELS:
                    raise InputError(f"{table}:{k}: label {label!r} is not one of {', '.join(LABELS)} or empty")
                if labels.setdefault(subject, label) != label:
                    raise InputError(f"{table}:{k}: subject {subject} is labelled both {labels[subject]} and {label}")
                if "\0" in name:  # no file name holds one (and the path cannot be resolved)
                    raise InputError(f"{table}:{k}: recording {name!r} holds a NUL byte; give the file's name")
                path = folder / name
                if Path(name).is_absolute() or not path.resolve().is_relative_to(folder.resolve()):
                    raise InputError(f"{table}:{k}: recording {name!r} is not inside the cohort folder")
                if path.resolve() in listed:
                    raise InputError(
                        f"{table}:{k}: recording {name!r} is listed already (line {listed[path.resolve()]}); a "
                        "recording counts once"
                    )
                listed[path.resolve()] = k
                recordings.setdefault(subject, []).append(read_recording(path, subject, sample_rate_hz))
    except UnicodeDecodeError:
        raise InputError(f"{table}: not a CSV text file (not UTF-8 text)") from None
    except csv.Error as exc:  # a field past the csv module's limit, say
        raise InputError(f"{table}: not a readable CSV table (after line {reader.line_num}: {exc})") from None
    if not recordings:
        raise InputError(f"{table}: lists no recording")
    return [Subject(s, labels[s], tuple(recordings[s])) for s in recordings]
