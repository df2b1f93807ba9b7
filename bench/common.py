"""Helpers shared by the benchmarks: machine description, timing, peak memory, table + JSON output."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
CLAIMS = Path(__file__).parent / "claims"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def machine() -> dict:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as info:
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    import onnxruntime
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def timed(fn, repeats: int = 5, warmup: int = 1) -> dict:
    """Median and min wall time of ``fn()`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats}


def peak_rss_mb_of(code: str) -> float:
    """Peak resident memory (MiB) of a fresh Python process running ``code``, as that process reports it: the
    children's figure would be the largest of every process this one has started (the command-line runs timed before
    it, say)."""
    report = "\nimport resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    done = subprocess.run([sys.executable, "-c", code + report], check=True, capture_output=True, text=True)
    return int(done.stdout.split()[-1]) / 1024


def _without_rows(value):
    """The payload less its per-image or per-disc rows (lists of records): what the README quotes."""
    if isinstance(value, dict):
        return {k: _without_rows(v) for k, v in value.items() if not _is_rows(v)}
    return value


def _is_rows(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def save(name: str, payload: dict) -> Path:
    """Write ``results/<name>.json`` (everything, per-image rows included: not committed, as rows may carry the
    datasets' own labels) and ``claims/<name>.json`` (the summaries the README quotes: committed, checked by
    ``tests/test_readme_claims.py``)."""
    from lumbar.io.write import write_text

    full = {"machine": machine(), **payload}
    write_text(CLAIMS / f"{name}.json", json.dumps(_without_rows(full), indent=1, default=float))
    return write_text(RESULTS / f"{name}.json", json.dumps(full, indent=1, default=float))


def spider_midsag_pictures():
    """Every SPIDER mid-sagittal picture in name order, read with its series' pixel spacing where ``overview.csv``
    gives one: ``(path, image)`` pairs (none where the folder is absent)."""
    from lumbar.io import read_image
    from lumbar.io.spider import read_overview_spacing

    folder = SHARED_DATA / "spider" / "midsag"
    if not folder.is_dir():
        return
    spacing = read_overview_spacing(SHARED_DATA / "spider" / "overview.csv")
    for path in sorted(folder.glob("*.png")):
        yield path, read_image(path, spacing_mm=spacing.get(path.stem, (None,))[0])


SPIDER_SEQUENCES = ("t1", "t2", "t2_SPACE")
MAX_FIELD_OF_VIEW_MM = 400.0  # a lumbar sagittal image spans about 250-350 mm; beyond this the listed spacing is wrong


def spider_midsag_in_mm():
    """SPIDER's mid-sagittal T1, T2 and T2 SPACE pictures with the pixel size ``overview.csv`` lists, read as MRI:
    ``(path, sequence, image, excluded)``, ``excluded`` saying why that pixel size cannot fit the picture (a field of
    view over ``MAX_FIELD_OF_VIEW_MM``: every mm would be wrong), else None."""
    from lumbar.io import read_image
    from lumbar.io.spider import read_overview_spacing

    folder = SHARED_DATA / "spider" / "midsag"
    if not folder.is_dir():
        return
    spacing = read_overview_spacing(SHARED_DATA / "spider" / "overview.csv")
    for path in sorted(folder.glob("*.png")):
        sequence = path.stem.split("_", 1)[1]
        if sequence not in SPIDER_SEQUENCES or path.stem not in spacing:
            continue
        image = read_image(path, spacing_mm=spacing[path.stem][0], modality="MR")  # SPIDER is MRI: say so
        field_mm = max(image.sagittal_slices().shape[1:]) * spacing[path.stem][0]
        yield path, sequence, image, f"field of view {field_mm:.0f} mm" if field_mm > MAX_FIELD_OF_VIEW_MM else None


def segmentation_model(path: str | None):
    """The shipped segmentation model, or a trained candidate (a run's ONNX) to measure on the same path; with a
    line naming it for the results."""
    from lumbar.models.registry import load_model

    model = load_model("segmentation", path)
    return model, f"{path or 'shipped'} (sha256 {model.sha256[:12]})"


def pictures_to_turn():
    """The pictures the orientation benches turn, mirror and judge: SPIDER's mid-sagittal pictures (as
    :func:`spider_midsag_pictures` reads them) and the second centre's T2 slices (``mri_small_t2``, a centre the
    network never saw): ``(name, set, picture)`` triples."""
    from lumbar.io import read_image

    out = [(path.stem, f"SPIDER {path.stem.split('_', 1)[1]}", image) for path, image in spider_midsag_pictures()]
    second_centre = SHARED_DATA / "mri_small_t2" / "images"
    if second_centre.is_dir():
        out += [(path.stem, "second centre T2", read_image(path)) for path in sorted(second_centre.iterdir())]
    return out


def share_and_margins(selected: list[dict], flag: str) -> dict:
    """Of the picture rows ``selected``: how many, how many have ``flag`` set, that share with a 95% CI by patient
    bootstrap (a patient's T1 and T2 alike), and the rows' margins (min, 5th percentile, median)."""
    import numpy as np

    from lumbar.metrics import bootstrap_ci

    flagged = np.array([r[flag] for r in selected], float)
    share, low, high = bootstrap_ci(flagged, np.array([r["name"].split("_")[0] for r in selected]))
    margins = np.array([r["margin"] for r in selected])
    return {
        "pictures": len(selected),
        "flagged": int(flagged.sum()),
        "flagged_share": share,
        "flagged_share_ci95": [low, high],
        "margin_min_p5_p50": [float(margins.min()), *map(float, np.percentile(margins, [5, 50]))],
    }


def share_cell(count: int, share: float, ci95: list[float]) -> str:
    """A count with its share and 95% CI, as the orientation benches print them: ``12 (60% [40, 80])``."""
    return f"{count} ({100 * share:.0f}% [{100 * ci95[0]:.0f}, {100 * ci95[1]:.0f}])"


def margins_cell(margins: list[float]) -> str:
    """Margins (min, 5th percentile, median) as the orientation benches print them."""
    return " / ".join(f"{m:+.3f}" for m in margins)
