"""Evaluate the segmentation (and level labelling) on a folder of images with reference masks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from lumbar.errors import InputError
from lumbar.evaluate import in_sample_warning
from lumbar.io.read import NIFTI_SUFFIXES, RASTER_SUFFIXES, read_image, suffix_of
from lumbar.io.spider import find_overview, patient_id, read_overview_spacing, series_name, spider_to_classes
from lumbar.labels import STRUCTURE_NAMES, Structure, disc_label
from lumbar.metrics import bootstrap_ci, dice, surface_distances
from lumbar.models.registry import OnnxModel, load_model
from lumbar.pipelines.mr_sagittal import segment
from lumbar.tasks.levels import MIN_DISC_AREA_MM2

MIN_BODY_AREA_MM2 = 200.0  # a vertebral body on a sagittal slice; smaller pieces are posterior elements


def _components(mask: np.ndarray, min_pixels: float) -> list[np.ndarray]:
    labelled, n = ndimage.label(mask)
    sizes = np.bincount(labelled.ravel(), minlength=n + 1)
    return [labelled == i for i in range(1, n + 1) if sizes[i] >= min_pixels]


def detection(truth: np.ndarray, instances: np.ndarray, labels: list[int], min_pixels: float) -> dict[str, int]:
    """Detection counts against the connected components of the truth.

    A truth component is found when at least half of it lies in one predicted instance of the kind
    (a vertebra instance also holds the posterior elements, so overlap, not Dice, decides). A predicted
    instance is extra when less than a tenth of it lies on any truth component.
    """
    truth_parts = _components(truth, min_pixels)
    found = 0
    for part in truth_parts:
        hits = instances[part]
        if any(np.mean(hits == lab) >= 0.5 for lab in labels):
            found += 1
    covered = np.any(truth_parts, axis=0) if truth_parts else np.zeros(truth.shape, bool)
    extra = sum(1 for lab in labels if np.mean(covered[instances == lab]) < 0.1)
    return {
        "truth": len(truth_parts),
        "predicted": len(labels),
        "found": found,
        "missed": len(truth_parts) - found,
        "extra": extra,
    }


def lowest_disc_named_l5s1(truth: np.ndarray, instances: np.ndarray, min_pixels: float) -> bool | None:
    """Whether the truth's lowest disc (SPIDER's IVD 1, normally L5/S1) is the one we call L5/S1.

    Judged on the slice (or volume) as a whole; None when the truth has no disc.
    """
    parts = _components(truth, min_pixels)
    if not parts:
        return None
    lowest = max(parts, key=lambda part: np.argwhere(part)[:, -2].mean())
    return bool(np.mean(instances[lowest] == disc_label("L5")) >= 0.5)


def overlap_pixels(truth: np.ndarray, pred: np.ndarray) -> dict[str, int]:
    """Pixel counts behind precision and recall: pooled over images they show whether outlines are drawn too
    small (high precision, low recall) or too large, which a Dice alone does not."""
    return {"truth_px": int(truth.sum()), "predicted_px": int(pred.sum()), "overlap_px": int((truth & pred).sum())}


def pooled_precision_recall(counts: list[dict[str, int]]) -> dict[str, float]:
    """Precision (overlap over predicted) and recall (overlap over truth) of pixel counts pooled over images."""
    overlap = sum(c["overlap_px"] for c in counts)
    predicted, truth = sum(c["predicted_px"] for c in counts), sum(c["truth_px"] for c in counts)
    return {
        "precision": overlap / predicted if predicted else float("nan"),
        "recall": overlap / truth if truth else float("nan"),
    }


def evaluate_pair(image_path: Path, mask_path: Path, spacing_mm: float | None, model: OnnxModel | None = None) -> dict:
    """Metrics of one image against its mask: per structure, plus disc/vertebra detection."""
    image = read_image(image_path, spacing_mm=spacing_mm)
    truth_image = read_image(mask_path, spacing_mm=spacing_mm)
    truth = spider_to_classes(np.rint(truth_image.sagittal_slices()).astype(np.int32))
    result = segment(image, model=model)
    truth = result.image.in_analysed_frame(truth)  # a picture analysed turned or mirrored: its mask turns with it
    pred = result.semantic.classes
    if truth.shape != pred.shape:
        raise InputError(f"{mask_path}: mask shape {truth.shape} differs from image shape {pred.shape}")
    spacing = image.display_spacing_mm() if image.spacing_known else None
    row = {"image": image_path.name, "patient": patient_id(image_path.name), "units": "mm" if spacing else "pixels"}
    for structure, name in STRUCTURE_NAMES.items():
        t, p = truth == structure, pred == structure
        axes_spacing = spacing[1:] if spacing and t.shape[0] == 1 else spacing
        t2, p2 = (t[0], p[0]) if t.shape[0] == 1 else (t, p)
        hd95, assd = surface_distances(t2, p2, axes_spacing)
        row[name] = {"dice": dice(t, p), "hd95": hd95, "assd": assd, **overlap_pixels(t, p)}
    pixel_mm2 = float(np.prod(spacing[1:])) if spacing else 1.0
    discs = [lv.label for lv in result.levels.discs]
    bodies = [lv.label for lv in result.levels.vertebrae]
    row["discs"] = detection(truth == Structure.DISC, result.levels.instances, discs, MIN_DISC_AREA_MM2 / pixel_mm2)
    row["vertebrae"] = detection(
        truth == Structure.VERTEBRA, result.levels.instances, bodies, MIN_BODY_AREA_MM2 / pixel_mm2
    )
    row["all_discs_found"] = row["discs"]["missed"] == 0
    row["exact_disc_count"] = row["discs"]["missed"] == 0 and row["discs"]["extra"] == 0
    row["lowest_disc_named_l5s1"] = lowest_disc_named_l5s1(
        truth == Structure.DISC, result.levels.instances, MIN_DISC_AREA_MM2 / pixel_mm2
    )
    row["flags"] = result.levels.flags
    return row


def _pairs(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    if not images.is_dir() or not masks.is_dir():
        raise InputError(f"{images if not images.is_dir() else masks}: not a folder")
    pairs = []
    for path in sorted(images.iterdir()):
        if suffix_of(path) in (*RASTER_SUFFIXES, *NIFTI_SUFFIXES, ".mha", ".nrrd") and (masks / path.name).is_file():
            pairs.append((path, masks / path.name))
    if not pairs:
        raise InputError(f"{images}: no images with a mask of the same name in {masks}")
    return pairs


def evaluate_folder(
    images: Path,
    masks: Path,
    spacing_mm: float | None = None,
    patients: set[str] | None = None,
    progress: Callable[[], None] | None = None,
    model: OnnxModel | None = None,
) -> dict:
    """Per-image rows and a summary: mean and patient-bootstrap 95% CI per structure and metric."""
    overview = find_overview(images)
    spacing_by_series = read_overview_spacing(overview) if overview else {}
    rows = []
    for image_path, mask_path in _pairs(images, masks):
        if patients and patient_id(image_path.name) not in patients:
            continue
        known = spacing_by_series.get(series_name(image_path.stem))
        if known and abs(known[0] - known[1]) > 1e-3:
            raise InputError(
                f"{image_path}: anisotropic pixels {known} in overview.csv are not supported for PNG slices"
            )
        rows.append(evaluate_pair(image_path, mask_path, known[0] if known else spacing_mm, model))
        if progress:
            progress()
    if not rows:
        raise InputError(f"{images}: no images left to evaluate (check --patients)")
    units = {r["units"] for r in rows}
    if len(units) > 1:
        raise InputError(
            f"{images}: some images have a known pixel spacing and some do not; give --spacing so that "
            "distances are not averaged across mm and pixels"
        )
    groups = np.array([r["patient"] for r in rows])
    seen = (model or load_model("segmentation")).patients_seen
    summary: dict = {
        "n_images": len(rows),
        "n_patients": len(set(groups)),
        "patients_seen_in_training": sorted(set(groups) & seen),
        "units": units.pop(),
    }
    for name in STRUCTURE_NAMES.values():
        summary[name] = {}
        for metric in ("dice", "hd95", "assd"):
            mean, lo, hi = bootstrap_ci(np.array([r[name][metric] for r in rows]), groups)
            summary[name][metric] = {"mean": mean, "ci95": [lo, hi]}
        summary[name].update(pooled_precision_recall([r[name] for r in rows]))
    for kind in ("discs", "vertebrae"):
        summary[kind] = {
            k: int(sum(r[kind][k] for r in rows)) for k in ("truth", "predicted", "found", "missed", "extra")
        }
    summary["slices_all_discs_found"] = float(np.mean([r["all_discs_found"] for r in rows]))
    summary["slices_exact_disc_count"] = float(np.mean([r["exact_disc_count"] for r in rows]))
    named = [r["lowest_disc_named_l5s1"] for r in rows if r["lowest_disc_named_l5s1"] is not None]
    summary["slices_lowest_disc_named_l5s1"] = float(np.mean(named)) if named else float("nan")
    summary["slices_lowest_disc_misnamed_unflagged"] = misnamed_unflagged(rows)
    return {"summary": summary, "images": rows}


def misnamed_unflagged(rows: list[dict]) -> int:
    """Slices whose lowest disc is not the reference's L5/S1 and that carry no review flag: the failure that matters
    most, names off with nothing asking for a look (a slice without reference discs, None, is not counted)."""
    return sum(row["lowest_disc_named_l5s1"] is False and not row["flags"] for row in rows)


def summary_table(report: dict):
    """A rich table of the summary for the terminal."""
    from rich.table import Table

    s = report["summary"]
    table = Table(
        title=f"{s['n_images']} images, {s['n_patients']} patients (distances in {s['units']})",
        caption=in_sample_warning(s),
    )
    for column in ("structure", "Dice", "HD95", "ASSD", "precision / recall (pixels pooled)"):
        table.add_column(column)
    for name in STRUCTURE_NAMES.values():
        cells = [
            f"{s[name][m]['mean']:.3f} [{s[name][m]['ci95'][0]:.3f}, {s[name][m]['ci95'][1]:.3f}]"
            for m in ("dice", "hd95", "assd")
        ]
        table.add_row(name, *cells, f"{s[name]['precision']:.3f} / {s[name]['recall']:.3f}")
    for kind in ("discs", "vertebrae"):
        d = s[kind]
        table.add_row(kind, f"found {d['found']}/{d['truth']}", f"missed {d['missed']}", f"extra {d['extra']}", "")
    table.add_row("slices with every disc found", f"{100 * s['slices_all_discs_found']:.1f}%", "", "", "")
    table.add_row("  ... and no extra disc", f"{100 * s['slices_exact_disc_count']:.1f}%", "", "", "")
    table.add_row(
        "slices whose lowest disc is named L5/S1", f"{100 * s['slices_lowest_disc_named_l5s1']:.1f}%", "", "", ""
    )
    table.add_row("  ... not, and no review flag", str(s["slices_lowest_disc_misnamed_unflagged"]), "", "", "")
    return table
