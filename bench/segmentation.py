"""Segmentation benchmark: accuracy on held-out patients, CPU speed (onnxruntime vs torch), peak memory.

Run: ``.venv/bin/python bench/segmentation.py`` (needs ../shared/data for accuracy, the real volume and picture;
without it, speed is measured on a phantom volume of the same size and the phantom's middle slice as a picture).
Prints a table, writes ``bench/results/segmentation.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import CLAIMS, RESULTS, SHARED_DATA, peak_rss_mb_of, save, segmentation_model, timed

from lumbar.evaluate.segmentation import summary_table
from lumbar.image import SpineImage
from lumbar.io.write import write_nifti
from lumbar.models.networks import load_torch_segmentation
from lumbar.models.registry import OnnxModel, load_model
from lumbar.preprocess import model_shape, normalize_intensity, pad_to_multiple, resize
from lumbar.tasks.segmentation import segment_slices

SPIDER = SHARED_DATA / "spider" / "t2space"
SPIDER_SPACING_MM = 0.46875


def volume_20_slices() -> tuple[np.ndarray, str]:
    """20 consecutive 640x512 slices of a held-out SPIDER patient, or a phantom of that size."""
    test_patients = load_model("segmentation").meta.get("split_patients", {}).get("test", [])
    if SPIDER.is_dir() and test_patients:
        from PIL import Image

        paths = sorted(
            (p for p in (SPIDER / "images").glob(f"{test_patients[0]}_*.png")),
            key=lambda p: int(p.stem.rsplit("slice", 1)[1]),
        )[:20]
        if len(paths) == 20:
            return np.stack(
                [np.asarray(Image.open(p).convert("L"), np.float32) for p in paths]
            ), f"SPIDER patient {test_patients[0]}"
    from lumbar.phantom import make_phantom

    return make_phantom(
        shape=(20, 640, 512), spacing_mm=(4.0, SPIDER_SPACING_MM, SPIDER_SPACING_MM)
    ).image.sagittal_slices(), "phantom"


def accuracy(model: OnnxModel | None = None) -> dict | None:
    """Held-out accuracy of the shipped network, or of ``model``, on the test patients of its own split."""
    model = model or load_model("segmentation")
    test_patients = model.meta.get("split_patients", {}).get("test", [])
    if not SPIDER.is_dir() or not test_patients:
        return None
    from lumbar.evaluate.segmentation import evaluate_folder

    report = evaluate_folder(SPIDER / "images", SPIDER / "masks", patients=set(test_patients), model=model)
    missed = [row["image"] for row in report["images"] if row["lowest_disc_named_l5s1"] is False]
    return {**report["summary"], "slices_lowest_disc_not_named_l5s1": missed}


def speed(volume: np.ndarray) -> dict:
    import torch

    spacing = (SPIDER_SPACING_MM, SPIDER_SPACING_MM)
    model = load_model("segmentation")
    net = load_torch_segmentation()
    grid = model_shape(volume.shape[1:], spacing, model.meta["spacing_mm"])
    batch = pad_to_multiple(np.stack([resize(normalize_intensity(s), grid) for s in volume[:4]])[:, None])[0]
    with torch.no_grad():
        torch_batch = torch.from_numpy(batch)
        results = {
            "network_only_4_slices_onnx": timed(lambda: model(batch)),
            "network_only_4_slices_torch": timed(lambda: net(torch_batch)),
        }
    results["slice_onnx"] = timed(lambda: segment_slices(volume[:1], spacing))
    results["volume_20_slices_onnx"] = timed(lambda: segment_slices(volume, spacing), repeats=3)
    return results


def cli_seconds(*args: str) -> float:
    """Median wall time of three ``lumbar ARGS`` runs, process start included (each writes over the last's outputs,
    as a rerun does)."""
    lumbar = str(Path(sys.executable).parent / "lumbar")
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([lumbar, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cli_end_to_end(volume: np.ndarray) -> dict:
    """``lumbar segment`` and ``lumbar analyze`` on a 20-slice NIfTI, process start included; peak memory."""
    with tempfile.TemporaryDirectory() as tmp:
        image = SpineImage.from_sagittal_slices(volume, (4.0, SPIDER_SPACING_MM, SPIDER_SPACING_MM), modality="MR")
        write_nifti(image.array.astype(np.float32), image, Path(tmp) / "vol.nii.gz")
        code = f"import lumbar; lumbar.analyze('{tmp}/vol.nii.gz', '{tmp}/out3')"
        return {
            "cli_segment_20_slices_s": cli_seconds("segment", f"{tmp}/vol.nii.gz", "-o", f"{tmp}/out"),
            "cli_analyze_20_slices_s": cli_seconds("analyze", f"{tmp}/vol.nii.gz", "-o", f"{tmp}/out2"),
            "cli_analyze_no_report_20_slices_s": cli_seconds(
                "analyze", f"{tmp}/vol.nii.gz", "-o", f"{tmp}/out4", "--no-report"
            ),
            "peak_rss_mb": peak_rss_mb_of(code),
        }


def mid_sagittal_picture(folder: Path) -> tuple[Path, float, str]:
    """A mid-sagittal picture as users give one (a PNG; SPIDER's are stored head down) and its pixel size: a held-out
    SPIDER patient's T2, or the phantom's middle slice written as a PNG in ``folder``."""
    test_patients = load_model("segmentation").meta.get("split_patients", {}).get("test", [])
    midsag = SHARED_DATA / "spider" / "midsag"
    name = f"{test_patients[0]}_t2" if test_patients else ""
    if (midsag / f"{name}.png").is_file():
        from lumbar.io.spider import read_overview_spacing

        spacing = read_overview_spacing(SHARED_DATA / "spider" / "overview.csv").get(name)
        if spacing:
            return midsag / f"{name}.png", float(spacing[0]), f"SPIDER {name}"
    from PIL import Image

    from lumbar.phantom import make_phantom

    slices = make_phantom().image.sagittal_slices()
    middle = slices[len(slices) // 2]
    scaled = np.uint8(255 * (middle - middle.min()) / max(float(np.ptp(middle)), 1e-9))
    Image.fromarray(scaled).save(folder / "phantom.png")
    return folder / "phantom.png", SPIDER_SPACING_MM, "phantom middle slice"


def picture_end_to_end() -> dict:
    """A mid-sagittal picture: one segmentation of it, the orientation check (``upright_picture``: each picture is
    segmented 8 ways, and the lumbosacral check asked where those do not decide), and ``lumbar analyze`` on it, process
    start included."""
    from lumbar.io import read_image
    from lumbar.pipelines.mr_sagittal import lowest_disc_check
    from lumbar.tasks.orientation import upright_picture
    from lumbar.tasks.segmentation import segment

    with tempfile.TemporaryDirectory() as tmp:
        path, spacing, source = mid_sagittal_picture(Path(tmp))
        image = read_image(path, modality="MR", spacing_mm=spacing)
        model = load_model("segmentation")
        check = lowest_disc_check()
        args = ["analyze", str(path), "--modality", "MR", "--spacing", str(spacing), "-o", f"{tmp}/out"]
        return {
            "source": source,
            "shape": list(image.sagittal_slices().shape[1:]),
            "one_segmentation": timed(lambda: segment(image, model), repeats=3),
            "orientation_check": timed(lambda: upright_picture(image, model, *check), repeats=3),
            "cli_analyze_s": cli_seconds(*args),
            "cli_analyze_no_report_s": cli_seconds(*args, "--no-report"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a trained candidate's ONNX: measure its held-out accuracy only")
    parser.add_argument(
        "--accuracy-only",
        action="store_true",
        help="remeasure held-out accuracy and level naming, keeping the last speed figures (speed wants an idle CPU)",
    )
    args = parser.parse_args()
    if args.model:
        network, model = segmentation_model(args.model)
        payload = {"model": model, "accuracy_held_out": accuracy(network)}
        path = save(f"segmentation_{Path(args.model).parent.name}", payload)
        from rich.console import Console

        Console().print(summary_table({"summary": payload["accuracy_held_out"]}))
        print(f"wrote {path}")
        return
    if args.accuracy_only:  # the last speed figures and the machine they were measured on (the claims in a clone)
        last = RESULTS / "segmentation.json"
        last = last if last.is_file() else CLAIMS / "segmentation.json"
        payload = {k: v for k, v in json.loads(last.read_text()).items() if k != "accuracy_held_out"}
    else:
        volume, source = volume_20_slices()
        payload = {"volume": {"source": source, "shape": list(volume.shape)}}
        payload["speed"] = speed(volume)
        payload["end_to_end"] = cli_end_to_end(volume)
        payload["picture"] = picture_end_to_end()
    payload["accuracy_held_out"] = accuracy()
    path = save("segmentation", payload)

    from rich.console import Console
    from rich.table import Table

    volume = payload["volume"]
    table = Table(title=f"Segmentation benchmark ({volume['source']} volume {tuple(volume['shape'])})")
    table.add_column("measure")
    table.add_column("value")
    for key, value in payload["speed"].items():
        table.add_row(key, f"{value['median_s'] * 1000:.0f} ms")
    e2e = payload["end_to_end"]
    table.add_row("lumbar segment, 20 slices, process start included", f"{e2e['cli_segment_20_slices_s']:.2f} s")
    table.add_row("lumbar analyze (HTML + PDF report), same", f"{e2e['cli_analyze_20_slices_s']:.2f} s")
    table.add_row("lumbar analyze --no-report, same", f"{e2e['cli_analyze_no_report_20_slices_s']:.2f} s")
    table.add_row("peak memory (lumbar.analyze, 20 slices)", f"{e2e['peak_rss_mb']:.0f} MB")
    picture = payload.get("picture")
    if picture:
        name = f"{picture['source']}, {picture['shape'][0]}x{picture['shape'][1]}"
        table.add_row(f"picture ({name}): one segmentation", f"{picture['one_segmentation']['median_s']:.2f} s")
        table.add_row("  orientation check (8 segmentations)", f"{picture['orientation_check']['median_s']:.2f} s")
        table.add_row("  lumbar analyze (HTML + PDF report)", f"{picture['cli_analyze_s']:.2f} s")
        table.add_row("  lumbar analyze --no-report", f"{picture['cli_analyze_no_report_s']:.2f} s")
    acc = payload["accuracy_held_out"]
    if acc:
        for name in ("disc", "vertebra", "canal"):
            d = acc[name]["dice"]
            table.add_row(
                f"Dice {name} (held-out, {acc['n_patients']} patients)",
                f"{d['mean']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]",
            )
            h = acc[name]["hd95"]
            table.add_row(f"HD95 {name} (mm)", f"{h['mean']:.2f} [{h['ci95'][0]:.2f}, {h['ci95'][1]:.2f}]")
        table.add_row(
            "discs found / truth", f"{acc['discs']['found']}/{acc['discs']['truth']} (extra {acc['discs']['extra']})"
        )
        table.add_row("slices with every disc found", f"{100 * acc['slices_all_discs_found']:.1f}%")
        table.add_row("  ... and no extra disc", f"{100 * acc['slices_exact_disc_count']:.1f}%")
        table.add_row("slices whose lowest disc is named L5/S1", f"{100 * acc['slices_lowest_disc_named_l5s1']:.1f}%")
        table.add_row("  ... not, and no review flag", str(acc["slices_lowest_disc_misnamed_unflagged"]))
    Console().print(table)
    if acc and acc["slices_lowest_disc_not_named_l5s1"]:
        print("lowest disc not named L5/S1 on:", ", ".join(acc["slices_lowest_disc_not_named_l5s1"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
