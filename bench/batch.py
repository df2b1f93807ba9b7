"""Batch bench: studies per hour of ``lumbar batch`` with 1 and 2 worker processes on this machine.

Twelve phantom T2 volumes (different seeds) in a temporary folder, analysed with the report (as a user runs it),
each setting into a fresh output folder. ``python bench/batch.py`` prints a table and writes bench/results/batch.json
and its summary to bench/claims/.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, save

from lumbar.io.write import write_nifti
from lumbar.phantom import make_phantom

STUDIES = 12
WORKERS = (1, 2)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="lumbar-batch-") as name:
        tmp = Path(name)
        for k in range(STUDIES):
            image = make_phantom(seed=k).image
            write_nifti(image.array, image, tmp / "in" / f"study_{k:02d}.nii.gz")
        for workers in WORKERS:
            start = time.perf_counter()
            command = [sys.executable, "-m", "lumbar.cli", "batch", str(tmp / "in"), "-o", str(tmp / f"out_{workers}")]
            done = subprocess.run(
                [*command, "--workers", str(workers), "--modality", "MR"],
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - start
            written = sum(1 for _ in (tmp / f"out_{workers}").glob("*/findings.json"))
            rows.append(
                {
                    "workers": workers,
                    "rc": done.returncode,
                    "studies": written,
                    "wall_s": wall,
                    "studies_per_hour": 3600 * written / wall,
                }
            )
            print(f"{workers} worker(s): {written} studies in {wall:.0f} s, {rows[-1]['studies_per_hour']:.0f}/hour")
    path = save(
        "batch",
        {
            "machine": machine(),
            "studies": STUDIES,
            "rows": rows,
            **{f"studies_per_hour_{r['workers']}": r["studies_per_hour"] for r in rows},
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
