"""Resource bench: peak memory and time of ``lumbar analyze`` on large inputs, and the refusal of what would not fit.

Every input is generated from the phantom in a temporary folder (nothing from ../shared):

1. **Memory model**: phantom volumes of 1, 21, 67 and 134 million voxels as NIfTI (the line is fitted on these), the
   first two also as DICOM series (a DICOM SEG is written over them); the peak resident memory of each run against
   ``lumbar.resources.analysis_bytes`` (the estimate the refusal uses must lie above every measured peak).
2. **A 2 GB volume** (1024^3 int16 voxels, uncompressed NIfTI): refused before computing where the estimate exceeds
   the budget (the default, 85% of the available memory, on a machine with less than ~31 GB available), with the
   reason; the time and peak memory of that refusal.
3. **A 5,000-file DICOM folder**: a phantom T2 series among 50 other series of 100 slices each; ``lumbar info``
   lists them and ``lumbar analyze`` picks and analyses the T2 series.
4. **A 100-study batch**: 100 phantom PNG slices in one folder (``lumbar analyze folder``, no report), against a
   10-study batch: the peak memory must not grow with the number of studies.

Each run is a fresh process; its peak memory is ``ru_maxrss`` of that child alone. ``python bench/resources.py``
prints a table and writes bench/results/resources.json (and its summary to bench/claims/).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, save

from lumbar.image import SpineImage
from lumbar.io.dicom_write import write_dicom_series
from lumbar.io.read import read_image
from lumbar.phantom import make_phantom
from lumbar.resources import analysis_bytes, budget_bytes

LUMBAR = [sys.executable, "-m", "lumbar.cli"]
MODEL_SIZES = ((13, 320, 256), (64, 640, 512), (128, 1024, 512), (128, 1024, 1024))  # (lateral, rows, cols)
DICOM_MODEL_SIZES = MODEL_SIZES[:2]
BIG = (1024, 1024, 1024)
DECOY_SERIES, DECOY_SLICES = 50, 100
BATCH_SIZES = (10, 100)


def measure(command: list[str]) -> dict:
    """Wall time, exit code, last line of output and peak resident memory of ``command`` in a fresh process."""
    probe = (
        "import resource, subprocess, sys, json, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "out = (r.stdout + r.stderr).strip().splitlines()\n"
        "print(json.dumps({'rc': r.returncode, 'wall_s': time.perf_counter() - t, 'last_line': out[-1] if out else '',"
        " 'peak_mib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
    import json

    return json.loads(done.stdout)


def phantom_volume(shape: tuple[int, int, int], path: Path) -> int:
    """The phantom resampled (nearest) to ``shape`` = (lateral slices, rows, cols) over the same field of view,
    saved as int16 NIfTI; returns the voxel count."""
    image = make_phantom().image
    target = (shape[0], shape[2], shape[1])  # RAS: lateral, anterior-posterior (cols), inferior-superior (rows)
    index = [np.minimum((np.arange(n) * s) // n, s - 1) for n, s in zip(target, image.shape)]
    scale = 1000.0 / float(image.array.max())
    volume = np.empty(target, np.int16)
    for i, li in enumerate(index[0]):
        volume[i] = np.rint(image.array[li][np.ix_(index[1], index[2])] * scale).astype(np.int16)
    fov = np.asarray(image.shape) * np.asarray(image.spacing_mm)
    nib.save(nib.Nifti1Image(volume, np.diag([*(fov / np.asarray(target)), 1.0])), path)
    return int(volume.size)


def memory_model(tmp: Path) -> list[dict]:
    """Each size as NIfTI and, for the smaller ones, the same volume as a DICOM series (which adds the DICOM SEG
    written over it and the files' headers to the estimate)."""
    rows = []
    for shape in MODEL_SIZES:
        path = tmp / f"volume_{'x'.join(map(str, shape))}.nii"
        voxels = phantom_volume(shape, path)
        inputs = [("NIfTI", path, 0)]
        if shape in DICOM_MODEL_SIZES:
            folder = tmp / f"dicom_{'x'.join(map(str, shape))}"
            write_dicom_series(read_image(path, modality="MR"), folder, series_description="SAG T2 phantom")
            inputs.append(("DICOM", folder, sum(1 for f in folder.iterdir() if f.is_file())))
        for kind, source, files in inputs:
            command = [*LUMBAR, "analyze", str(source), "-o", str(tmp / "out_model"), "--no-report", "--modality", "MR"]
            run = measure(command)
            run.update(input=kind, shape=shape, voxels=voxels, files=files)
            run["estimate_mib"] = analysis_bytes(voxels, files) / 2**20
            rows.append(run)
            print(f"  {voxels / 1e6:.0f} M voxels, {kind}: {run['wall_s']:.1f} s, peak {run['peak_mib']:.0f} MiB")
        path.unlink()
        shutil.rmtree(tmp / "out_model", ignore_errors=True)
    return rows


def big_volume(tmp: Path) -> dict:
    path = tmp / "volume_2GB.nii"
    volume = np.lib.format.open_memmap(tmp / "big.npy", mode="w+", dtype=np.int16, shape=BIG)
    small = make_phantom().image
    index = [np.minimum((np.arange(n) * s) // n, s - 1) for n, s in zip(BIG, small.shape)]
    scale = 1000.0 / float(small.array.max())
    for i, li in enumerate(index[0]):
        volume[i] = np.rint(small.array[li][np.ix_(index[1], index[2])] * scale).astype(np.int16)
    fov = np.asarray(small.shape) * np.asarray(small.spacing_mm)
    nib.save(nib.Nifti1Image(volume, np.diag([*(fov / np.asarray(BIG)), 1.0])), path)
    del volume
    (tmp / "big.npy").unlink()
    run = measure([*LUMBAR, "analyze", str(path), "-o", str(tmp / "out_big"), "--no-report", "--modality", "MR"])
    run.update(shape=BIG, file_gib=path.stat().st_size / 2**30, estimate_gib=analysis_bytes(np.prod(BIG)) / 2**30)
    path.unlink()
    return run


def dicom_folder(tmp: Path) -> dict:
    folder = tmp / "dicom"
    write_dicom_series(make_phantom().image, folder / "t2", series_description="SAG T2 phantom")
    decoy = make_phantom(shape=(DECOY_SLICES, 64, 64), spacing_mm=(1.0, 5.0, 5.0)).image
    for k in range(DECOY_SERIES):
        write_dicom_series(decoy, folder / f"decoy_{k:02d}", series_description=f"SAG localiser {k}")
    files = sum(1 for p in folder.rglob("*") if p.is_file())
    info = measure([*LUMBAR, "info", str(folder)])
    analyse = measure([*LUMBAR, "analyze", str(folder), "-o", str(tmp / "out_dicom"), "--no-report"])
    analyse["estimate_mib"] = analysis_bytes(int(np.prod(make_phantom().image.shape)), files) / 2**20
    return {"files": files, "series": DECOY_SERIES + 1, "info": info, "analyze": analyse}


def batch(tmp: Path) -> list[dict]:
    from PIL import Image

    rows = []
    for n in BATCH_SIZES:
        folder = tmp / f"batch_{n}"
        folder.mkdir()
        for k in range(n):
            image: SpineImage = make_phantom(seed=k).image
            mid = image.sagittal_slices()[image.shape[0] // 2]
            grey = np.clip(255 * (mid - mid.min()) / max(1e-6, float(np.ptp(mid))), 0, 255).astype(np.uint8)
            Image.fromarray(grey).save(folder / f"study_{k:03d}.png")
        run = measure(
            [
                *LUMBAR,
                "analyze",
                str(folder),
                "-o",
                str(tmp / f"out_batch_{n}"),
                "--no-report",
                "--spacing",
                "1",
                "--modality",
                "MR",
            ]
        )
        written = sum(1 for _ in (tmp / f"out_batch_{n}").glob("*/findings.json"))
        run.update(studies=n, findings_written=written, per_study_s=run["wall_s"] / n)
        rows.append(run)
        print(f"  batch of {n}: {run['wall_s']:.0f} s, peak {run['peak_mib']:.0f} MiB, {written} written", flush=True)
    return rows


def main() -> None:
    started = time.time()
    budget, basis = budget_bytes()
    with tempfile.TemporaryDirectory(prefix="lumbar-resources-") as name:
        tmp = Path(name)
        print("memory model", flush=True)
        model = memory_model(tmp)
        print("2 GB volume", flush=True)
        big = big_volume(tmp)
        print("5,000-file DICOM folder", flush=True)
        dicom = dicom_folder(tmp)
        print("batches", flush=True)
        batches = batch(tmp)
    nifti = [r for r in model if r["input"] == "NIfTI"]
    voxels = np.array([r["voxels"] for r in nifti], float)
    peaks = np.array([r["peak_mib"] for r in nifti], float)
    slope, intercept = np.polyfit(voxels, peaks * 2**20, 1)
    above = [r["estimate_mib"] >= r["peak_mib"] for r in [*model, dicom["analyze"]]]
    payload = {
        "machine": machine(),
        "budget_gib": None if budget is None else budget / 2**30,
        "budget_basis": basis,
        "model": {
            "rows": model,
            "fitted_bytes_per_voxel": float(slope),
            "fitted_base_mib": float(intercept / 2**20),
            "fitted_on": "the NIfTI volumes",
            "dicom_series": {  # the DICOM rows, as lists: rows of records stay out of the claims
                key: [r[field] for r in model if r["input"] == "DICOM"]
                for key, field in (("voxels", "voxels"), ("peak_mib", "peak_mib"), ("estimate_mib", "estimate_mib"))
            },
            "estimate_above_every_peak": bool(all(above)),
        },
        "big_volume": big,
        "dicom_folder": dicom,
        "batch": {"rows": batches, "peak_growth_mib": batches[-1]["peak_mib"] - batches[0]["peak_mib"]},
        "bench_minutes": (time.time() - started) / 60,
    }
    path = save("resources", payload)

    from rich.console import Console
    from rich.table import Table

    table = Table(title="lumbar analyze on large inputs (no report), each a fresh process")
    for column in ("input", "result", "wall", "peak memory", "estimate"):
        table.add_column(column)
    for r in model:
        table.add_row(
            f"phantom volume {r['voxels'] / 1e6:.0f} M voxels, {r['input']}"
            + (f" ({r['files']} files)" if r["files"] else ""),
            f"exit {r['rc']}",
            f"{r['wall_s']:.1f} s",
            f"{r['peak_mib']:.0f} MiB",
            f"{r['estimate_mib']:.0f} MiB",
        )
    table.add_row(
        f"2 GB volume ({big['file_gib']:.1f} GiB, 1024^3 int16)",
        f"exit {big['rc']}: {big['last_line'][:90]}",
        f"{big['wall_s']:.1f} s",
        f"{big['peak_mib']:.0f} MiB",
        f"{1024 * big['estimate_gib']:.0f} MiB",
    )
    table.add_row(
        f"DICOM folder, {dicom['files']:,} files in {dicom['series']} series: info",
        f"exit {dicom['info']['rc']}",
        f"{dicom['info']['wall_s']:.1f} s",
        f"{dicom['info']['peak_mib']:.0f} MiB",
        "",
    )
    table.add_row(
        "the same folder: analyze (picks the T2 series)",
        f"exit {dicom['analyze']['rc']}",
        f"{dicom['analyze']['wall_s']:.1f} s",
        f"{dicom['analyze']['peak_mib']:.0f} MiB",
        f"{dicom['analyze']['estimate_mib']:.0f} MiB",
    )
    for r in batches:
        table.add_row(
            f"batch of {r['studies']} PNG studies",
            f"exit {r['rc']}, {r['findings_written']} written",
            f"{r['wall_s']:.0f} s ({r['per_study_s']:.2f} s/study)",
            f"{r['peak_mib']:.0f} MiB",
            "",
        )
    Console(width=160).print(table)
    print(
        f"fitted: {payload['model']['fitted_base_mib']:.0f} MiB + {slope:.1f} bytes/voxel; estimate above every "
        f"measured peak: {payload['model']['estimate_above_every_peak']}; budget here "
        f"{payload['budget_gib'] or float('nan'):.1f} GiB ({basis})"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
