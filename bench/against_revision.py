"""Is a slower `lumbar analyze` the machine or a change? This version against an earlier revision, on this machine.

The earlier revision (default 0daa8e9, whose speed claims were measured on 2026-12-01 on an Intel Xeon) is checked out
into a temporary git worktree and run with this virtual environment (its weights are its own; the dependencies are
this environment's). Both run ``lumbar analyze --no-report`` on the 20-slice volume of ``bench/segmentation.py``,
process start included, in alternation (earlier, this, earlier, ...), ``ROUNDS`` times each, so that a change in the
machine's load falls on both. Run ``.venv/bin/python bench/against_revision.py [REV]``; prints the medians and writes
``bench/results/against_revision.json`` (and its summary to bench/claims/).
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
DEFAULT_REVISION = "0daa8e9"
ROUNDS = 5


def seconds(code: Path | None, volume: Path, out: Path) -> float:
    """Wall time of ``lumbar analyze VOLUME --no-report`` with the package at ``code`` (None: this checkout)."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-m", "lumbar.cli", "analyze", str(volume), "-o", str(out), "--no-report"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=out.parent)
    return time.perf_counter() - start


def main() -> None:
    revision = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_REVISION
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", revision], check=True, capture_output=True, text=True
    ).stdout.strip()
    volume, what = volume_20_slices()
    with tempfile.TemporaryDirectory(prefix="lumbar-against-") as name:
        tmp = Path(name)
        earlier = tmp / "earlier"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(earlier), commit], check=True)
        try:
            image = SpineImage.from_sagittal_slices(volume, (4.0, SPIDER_SPACING_MM, SPIDER_SPACING_MM), modality="MR")
            write_nifti(image.array.astype(np.float32), image, tmp / "vol.nii.gz")
            times: dict[str, list[float]] = {"earlier": [], "this": []}
            for _ in range(ROUNDS):
                times["earlier"].append(seconds(earlier, tmp / "vol.nii.gz", tmp / "out_earlier"))
                times["this"].append(seconds(None, tmp / "vol.nii.gz", tmp / "out_this"))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(earlier)], check=True)
    medians = {k: float(np.median(v)) for k, v in times.items()}
    payload = {
        "volume": what,
        "revision": commit,
        "rounds": ROUNDS,
        "analyze_no_report_s": medians,
        "analyze_no_report_runs_s": times,
        "slower_percent": 100.0 * (medians["this"] / medians["earlier"] - 1.0),
    }
    path = save("against_revision", payload)
    print(
        f"lumbar analyze --no-report, {what}, medians of {ROUNDS} alternating runs: {commit} "
        f"{medians['earlier']:.2f} s, this version {medians['this']:.2f} s ({payload['slower_percent']:+.0f}%)"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
