"""Jobs of the HTTP service: their state in SQLite, their files in one folder each, run by a pool of workers.

Layout under the service's data folder (nothing is read or written outside it)::

    jobs.sqlite                  one row per job: id, status, stage, error, times
    jobs/<id>/input/...          the upload, under names the service chose (never the client's)
    jobs/<id>/options.json       how to read and analyse it: modality, spacing_mm, series, view and force as the
                                 client gave them (null or false where not given)
    jobs/<id>/output/study/...   what ``lumbar.analyze`` writes (published whole, or not at all)

A job is ``queued``, ``running`` (with its stage), ``done`` or ``failed`` (with a one-line reason). SQLite commits
are atomic, so a killed server leaves every row as it last was; on start, jobs that were queued or running are
marked failed ("interrupted"), and ``lumbar.outputs`` never leaves a half-written study folder.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lumbar.errors import InputError
from lumbar.io.dicom import remove_extracted
from lumbar.io.write import write_text

STUDY = "study"  # the one study folder of a job's output
OPTIONS = "options.json"  # beside input/ and output/: how the upload is to be read and analysed
READING_OPTIONS = ("modality", "spacing_mm", "series")  # the others (view, force) are the analysis's
JOB_ID = r"^[0-9a-f]{32}$"
INTERRUPTED = "interrupted: the service stopped while this job was queued or running; submit it again"


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    stage: str
    error: str
    created: float
    finished: float | None


class JobStore:
    """The jobs of one data folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "jobs.sqlite"
        root.joinpath("jobs").mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, stage TEXT NOT NULL, "
                "error TEXT NOT NULL, created REAL NOT NULL, finished REAL)"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            with con:
                yield con
        finally:
            con.close()

    def folder(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def create(self, options: dict | None = None) -> str:
        """A new queued job, its empty input folder and its ``options`` (``modality``, ``spacing_mm``, ``series``,
        ``view``, ``force``: :func:`lumbar.analyze`'s)."""
        job_id = uuid.uuid4().hex
        (self.folder(job_id) / "input").mkdir(parents=True)
        write_text(self.folder(job_id) / OPTIONS, json.dumps(options or {}))  # whole or absent: every listing reads it
        with self._connect() as con:
            con.execute(
                "INSERT INTO jobs VALUES (?, 'queued', 'queued', '', ?, NULL)",
                (job_id, time.time()),
            )
        return job_id

    def options(self, job_id: str) -> dict:
        """The options the job was submitted with (none for a job from before they were kept)."""
        path = self.folder(job_id) / OPTIONS
        return json.loads(path.read_text()) if path.is_file() else {}

    def get(self, job_id: str) -> Job | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job(*row) if row else None

    def all(self) -> list[Job]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM jobs ORDER BY created DESC").fetchall()
        return [Job(*row) for row in rows]

    def set_stage(self, job_id: str, stage: str) -> None:
        with self._connect() as con:
            con.execute("UPDATE jobs SET status = 'running', stage = ? WHERE id = ?", (stage, job_id))

    def requeue(self, job_id: str, stage: str) -> None:
        """Put a job whose worker stopped back in the queue, saying why in its stage."""
        with self._connect() as con:
            con.execute("UPDATE jobs SET status = 'queued', stage = ? WHERE id = ?", (stage, job_id))

    def fail_unfinished(self, job_id: str, error: str) -> None:
        """Fail a job with ``error`` unless it is done or failed already (its worker may have recorded its end before
        the pool it ran in broke)."""
        with self._connect() as con:
            con.execute(
                "UPDATE jobs SET status = 'failed', stage = 'failed', error = ?, finished = ? "
                "WHERE id = ? AND status NOT IN ('done', 'failed')",
                (error, time.time(), job_id),
            )

    def finish(self, job_id: str, error: str = "") -> None:
        with self._connect() as con:
            con.execute(
                "UPDATE jobs SET status = ?, stage = ?, error = ?, finished = ? WHERE id = ?",
                ("failed" if error else "done", "failed" if error else "done", error, time.time(), job_id),
            )

    def delete(self, job_id: str) -> bool:
        """Forget a finished job and remove its folder (upload, options, results); False while it is queued or
        running (its worker still writes there). The row goes first: a job half removed is never listed."""
        with self._connect() as con:
            gone = con.execute("DELETE FROM jobs WHERE id = ? AND status IN ('done', 'failed')", (job_id,)).rowcount
        if gone:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
        return bool(gone)

    def fail_interrupted(self) -> int:
        """Mark every job left queued or running by a stopped service as failed; how many there were."""
        with self._connect() as con:
            cursor = con.execute(
                "UPDATE jobs SET status = 'failed', stage = 'failed', error = ?, finished = ? "
                "WHERE status IN ('queued', 'running')",
                (INTERRUPTED, time.time()),
            )
            return cursor.rowcount

    def view_image(self, job_id: str) -> Path:
        """Where the image as read, in its file's geometry, is kept for the browser viewer (see
        :func:`write_view_image`)."""
        return self.folder(job_id) / "view" / "image.nii.gz"

    def output_files(self, job_id: str) -> list[str]:
        """The files a finished job wrote, as relative POSIX names (``findings.json``, ``heatmaps/L4-L5_x.png``); none
        once it is deleted."""
        study = self.folder(job_id) / "output" / STUDY
        try:
            return sorted(
                p.relative_to(study).as_posix() for p in study.rglob("*") if p.is_file() and not p.is_symlink()
            )
        except FileNotFoundError:  # none yet, or the job deleted as it was listed
            return []

    def output_path(self, job_id: str, name: str) -> Path | None:
        """The file ``name`` of a job's output, only if it is one of :meth:`output_files` (never a path built
        from the request)."""
        if name not in self.output_files(job_id):
            return None
        return self.folder(job_id) / "output" / STUDY / name


class _StageToStore:
    """A :class:`lumbar.progress.Progress` that records each stage in the job's row."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id

    def stage(self, name: str, total: int | None = None) -> None:
        self.store.set_stage(self.job_id, name)

    def advance(self, steps: int = 1) -> None:
        pass


def write_view_image(store: JobStore, job_id: str) -> Path:
    """The job's image for the viewer: its voxels (float32, the input file's voxel order and affine, as the label
    maps are written), made from the upload the first time the viewer asks (a job used through the API alone never
    pays for it), under a temporary name renamed into place."""
    import nibabel as nib
    import numpy as np

    import lumbar

    path = store.view_image(job_id)
    if path.is_file():
        return path
    inputs = store.folder(job_id) / "input"
    upload = next(inputs.iterdir())
    reading = {k: v for k, v in store.options(job_id).items() if k in READING_OPTIONS}
    image = lumbar.load(upload, **reading)
    path.parent.mkdir(exist_ok=True)  # not its parents: a job deleted meanwhile is not brought back
    tmp = path.with_name(f".{uuid.uuid4().hex}.nii.gz")
    nib.save(nib.Nifti1Image(image.source_array().astype(np.float32), image.source_affine()), tmp)
    tmp.replace(path)
    remove_extracted(upload)  # an uploaded zip unpacked to read it (the service's process lives on)
    return path


def die_with_parent() -> None:
    """Worker initializer: on Linux, have the kernel kill this worker when the service process dies, so that a
    killed service leaves no orphan finishing a job that the restarted service has already marked interrupted."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def worker_setup(tempdir: str) -> None:
    """Worker initializer: die with the service (:func:`die_with_parent`), and keep temporary files (an uploaded
    zip's series, unpacked) in the service's own ``tempdir``, as its process does: a spawned worker does not inherit
    ``tempfile.tempdir``, and unpacked patient files went to the system's temporary folder, left there by a killed
    worker."""
    import tempfile

    die_with_parent()
    tempfile.tempdir = tempdir


def run_job(root: str, job_id: str, input_name: str) -> None:
    """Analyse a job's input into its output folder (in a worker process); record done or the failure's reason.
    A bad input fails the job with its one-line reason; any other error is a bug, recorded as such."""
    import lumbar

    store = JobStore(Path(root))
    folder = store.folder(job_id)
    try:
        store.set_stage(job_id, "starting")
        lumbar.analyze(
            folder / "input" / input_name,
            **store.options(job_id),
            out=folder / "output",
            stem=STUDY,
            shown_as=input_name,  # the findings name the stored upload, never the service's own folders
            progress=_StageToStore(store, job_id),
        )
    except InputError as exc:
        store.finish(job_id, " ".join(str(exc).replace(str(folder / "input") + "/", "").split()))
    except Exception as exc:  # the service must outlive a bug in one job, and say so
        store.finish(job_id, f"internal error ({type(exc).__name__}): please report it")
    else:
        store.finish(job_id)
    finally:
        remove_extracted(folder / "input" / input_name)  # an uploaded zip's series, unpacked for this job
