"""How much memory an analysis needs, and the refusal of one that would not fit; how many workers run at once, and
in what kind of process.

The sagittal pipeline holds the image, its display slices, the class and confidence maps, the connected
components that name the levels and the label maps written back: its peak resident memory grows linearly with
the voxels analysed; a DICOM input adds the DICOM SEG written over it and the header of each of its files.
``bench/resources.py`` measures that line on phantom volumes of growing size and checks
that :func:`analysis_bytes` lies above every measured peak. An image whose estimate exceeds the budget is refused
before any computing, with the numbers, instead of being killed by the system half-way.

The budget is ``LUMBAR_MAX_MEMORY_MB`` when set, else ``AVAILABLE_SHARE`` of the memory the system reports as
available.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from lumbar.errors import InputError

# interpreter, onnxruntime and the models: a 1 M-voxel volume peaked at 758 MiB on an AMD EPYC (bench/resources.py),
# at 450-470 MiB on an Intel Xeon; with a margin
BASE_BYTES = 800 * 2**20
BYTES_PER_VOXEL = 26  # measured 22-23 bytes per analysed voxel on phantom volumes (bench/resources.py)
# A DICOM input adds the DICOM SEG written over it (110-130 MiB above the memory in use while highdicom built it, on
# phantom series of 1 and 21 M voxels alike) and each file's grouping header, held while the series is read (about
# 7 KiB on phantom files; a scanner's private elements are not kept). DICOM series in bench/resources.py peak below.
DICOM_BYTES = 192 * 2**20
BYTES_PER_FILE = 16 * 2**10
AVAILABLE_SHARE = 0.85  # leave the rest to the system and other processes
ENV_LIMIT = "LUMBAR_MAX_MEMORY_MB"


def process_pool(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes started afresh ("spawn"), not forked: a fork of a process that has run a
    network carries the state of its thread pools into the child, where running a network again can crash it (nor
    does such a worker inherit the parent's settings, ``tempfile.tempdir`` among them: ``initializer`` sets them)."""
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=initializer, initargs=initargs
    )


def default_workers() -> int:
    """How many analyses to run at once on this machine: one per two cores (onnxruntime already spreads each
    network run over every core by default), at least one; the service's and the batch's default."""
    return max(1, (os.cpu_count() or 2) // 2)


def analysis_bytes(voxels: int, files: int = 0) -> int:
    """Upper estimate of the peak memory of analysing ``voxels`` voxels (one study or several series together)
    read from ``files`` DICOM files (0 for any other input)."""
    dicom = DICOM_BYTES + BYTES_PER_FILE * int(files) if files else 0
    return BASE_BYTES + BYTES_PER_VOXEL * int(voxels) + dicom


def available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Memory the system reports as available (Linux ``MemAvailable``; else physical memory), or None."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def budget_bytes() -> tuple[int | None, str]:
    """The memory an analysis may use, and where that bound comes from (for the refusal's message)."""
    limit = os.environ.get(ENV_LIMIT, "").strip()
    if limit:
        try:
            mb = float(limit)
        except ValueError:
            raise InputError(f"{ENV_LIMIT}={limit!r} is not a number of megabytes") from None
        if mb <= 0:
            raise InputError(f"{ENV_LIMIT}={limit!r} must be a positive number of megabytes")
        return int(mb * 2**20), f"{ENV_LIMIT}"
    available = available_bytes()
    if available is None:
        return None, "unknown"
    return int(available * AVAILABLE_SHARE), f"{AVAILABLE_SHARE:.0%} of the memory available now; {ENV_LIMIT} sets it"


def _voxels(shapes: Sequence[tuple[int, ...]]) -> int:
    return sum(math.prod(int(n) for n in shape) for shape in shapes)


def memory_note(shapes: Sequence[tuple[int, ...]], files: int = 0) -> str:
    """What analysing images of ``shapes`` (read from ``files`` DICOM files) would need against the budget, in one
    line for ``lumbar info``: whether ``lumbar analyze`` would take it or refuse it, before anyone waits for that
    (for the image alone: series analysed together with ``--same-patient`` count together)."""
    need = analysis_bytes(_voxels(shapes), files)
    try:
        budget, basis = budget_bytes()
    except InputError as exc:  # reading is not refused for a bad limit: the analysis will be
        return f"about {need / 2**20:,.0f} MiB; {exc}"
    if budget is None:
        return f"about {need / 2**20:,.0f} MiB (this system does not report its memory)"
    verdict = "fits" if need <= budget else "would be refused"
    return f"about {need / 2**20:,.0f} MiB of the {budget / 2**20:,.0f} MiB allowed: {verdict} ({basis})"


def check_memory(shapes: Sequence[tuple[int, ...]], source: str, files: int = 0) -> None:
    """Refuse (``InputError``: one line, exit 2) an analysis of images of ``shapes``, read from ``files`` DICOM
    files, whose estimated peak memory exceeds the budget; a system that does not report its memory is not refused."""
    voxels = _voxels(shapes)
    need = analysis_bytes(voxels, files)
    budget, basis = budget_bytes()
    if budget is not None and need > budget:
        what = f"{voxels:,} voxels" + (f" from {files:,} DICOM files" if files else "")
        raise InputError(
            f"{source}: analysing {what} needs about {need / 2**30:.1f} GiB of memory, more than the "
            f"{budget / 2**30:.1f} GiB allowed ({basis}): crop or resample the volume, or give more memory"
        )
