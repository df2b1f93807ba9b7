"""Is a slower `lumbar analyze` the machine or a change? This version against an earlier revision, on this machine.

The earlier revision (default fc831b0, the commit whose speed claims were measured on 2026-12-01 on an Intel Xeon,
kept unchanged in bench/claims/segmentation.json until 2026-12-06) is checked out into a temporary git worktree and
run with this virtual environment (its weights are its own; the dependencies are this environment's; each version's
package comes first on PYTHONPATH). Both run ``lumbar analyze --no-report`` on the 20-slice volume of
``bench/segmentation.py``, process start included, in alternation (each first in every other round), ``ROUNDS`` times
each, so that a change in the machine's load falls on both. Skipped where the revision is not in the history (a
shallow clone). Run ``.venv/bin/python bench/against_revision.py [REV]``; prints the medians and writes
``bench/results/against_revision.json`` (and its summary to bench/claims/; for another revision than the default,
``against_revision_<commit>.json``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save
from segmentation import SPIDER_SPACING_MM, volume_20_slices

from lumbar.image import SpineImage
from lumbar.io.write import write_nifti

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REVISION = "fc831b0"
ROUNDS = 5


def seconds(code: Path, volume: Path, out: Path) -> float:
    """Wall time of ``lumbar analyze VOLUME --no-report`` with the package at ``code`` (first on the path, whatever
    the environment installed)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, "-m", "lumbar.cli", "analyze", str(volume), "-o", str(out), "--no-report"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=out.parent)
    if done.returncode != 0:
        raise SystemExit(f"{code}: lumbar analyze failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)


def main() -> None:
    revision = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[0].endswith("run_all.py") else DEFAULT_REVISION
    found = git("show", "-s", "--format=%h %cs", revision)
    if found.returncode != 0:  # a shallow clone or a source archive: nothing to compare against
        print(f"skipped: revision {revision} is not in this repository's history")
        return
    commit, committed = found.stdout.split()
    volume, what = volume_20_slices()
    with tempfile.TemporaryDirectory(prefix="lumbar-against-") as name:
        tmp = Path(name)
        earlier = tmp / "earlier"
        git("worktree", "add", "--detach", str(earlier), commit).check_returncode()
        try:
            image = SpineImage.from_sagittal_slices(volume, (4.0, SPIDER_SPACING_MM, SPIDER_SPACING_MM), modality="MR")
            write_nifti(image.array.astype(np.float32), image, tmp / "vol.nii.gz")
            times: dict[str, list[float]] = {"earlier": [], "this": []}
            for k in range(ROUNDS):  # each first in every other round
                for which in ("earlier", "this") if k % 2 == 0 else ("this", "earlier"):
                    code = earlier if which == "earlier" else REPO
                    times[which].append(seconds(code, tmp / "vol.nii.gz", tmp / f"out_{which}"))
        finally:
            git("worktree", "remove", "--force", str(earlier))
            git("worktree", "prune")
    medians = {k: float(np.median(v)) for k, v in times.items()}
    payload = {
        "volume": what,
        "revision": commit,
        "revision_date": committed,
        "rounds": ROUNDS,
        "analyze_no_report_s": medians,
        "analyze_no_report_runs_s": times,
        "slower_percent": 100.0 * (medians["this"] / medians["earlier"] - 1.0),
    }
    # the default comparison's claims are the README's; another revision's go beside them, named by its commit
    path = save("against_revision" if revision == DEFAULT_REVISION else f"against_revision_{commit}", payload)
    print(
        f"lumbar analyze --no-report, {what}, medians of {ROUNDS} alternating runs: {commit} "
        f"{medians['earlier']:.2f} s, this version {medians['this']:.2f} s ({payload['slower_percent']:+.0f}%)"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
