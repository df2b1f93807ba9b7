"""The CT pipeline measured: segmentation and level names on labelled CT, heights and attenuation beside a peer
tool's report on the same CT, a real DICOM series, 8-bit stacks, and time and memory on a 300-slice CT.

* Labelled CT (``../shared/data/ct``): VerSe'19 subject 012 (T10-L3, manual labels), the TPTBox crop (L2-L4,
  manual) and TotalSegmentator's example CT, whose labels are that tool's output (agreement with a peer, not
  accuracy). Scored as ``bench/external_segmentation.py`` scores the MRI pipeline there: Dice of all vertebrae
  inside the labelled vertebrae's bounding box grown by 10 voxels; per labelled vertebra, the Dice of the one
  instance of ours that covers most of it, and whether our name for it is its own (counted only where that Dice is
  at least ``NAMED_MIN_DICE``: a name on a sliver of a vertebra does not name it).
* Peer comparison: every vertebra TotalSegmentator reports (L1-L5) is matched to the instance of ours that covers
  most of its label (so that a naming error does not hide a measurement), and our heights and attenuation are set
  beside its report's: heights anterior/middle/posterior (mm), and attenuation both as it defines it (mean and
  median HU over the whole vertebra) and as we report it (trabecular region of the body: its mean and median,
  each beside the report's).
* The CT phantom (``lumbar.phantom``, exact truth): level names, heights and trabecular density.
* ``../shared/data/dicom/ct_series_totalsegmentator``: 20 slices of 2 mm (40 mm head to feet), analysed.
* ``../shared/data/ct_small``: 8-bit stacks, not Hounsfield units: the CT pipeline must refuse them.
* Time and peak memory of ``lumbar analyze`` in a fresh process on a 336-slice CT made by resampling the
  TotalSegmentator example to 0.7 x 0.7 x 1 mm, written to a temporary folder.

Run ``.venv/bin/python bench/ct.py [--accuracy-only]`` (the flag keeps the last run's large-CT time and memory); prints
tables and writes ``bench/results/ct.json`` and ``bench/claims/ct.json``.
Nothing here is tuned on, but the CT pipeline's constants were chosen while looking at these three volumes (there
is no other CT in HU here): the figures are a development measurement, not an independent test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import CLAIMS, SHARED_DATA, save
from external_segmentation import CT_SETS, TOTALSEGMENTATOR_TO_VERSE

from lumbar.errors import InputError
from lumbar.io import read_image
from lumbar.labels import CANAL_LABEL, VERTEBRA_IDS, VERTEBRA_NAMES
from lumbar.metrics import dice
from lumbar.pipelines import ct
from lumbar.pipelines.router import route
from lumbar.tasks.ct_bone import is_vertebra, midline_index
from lumbar.tasks.levels import Level
from lumbar.tasks.measurements import measure_spine
from lumbar.tasks.sacrum import (
    NO_ANCHOR,
    SACRUM_REACH_MM,
    disc_spacing_mm,
    field_reach_mm,
    reach_profile,
    sacrum_below,
)

CT = SHARED_DATA / "ct"
PEER_REPORT = CT / "totalsegmentator_example" / "totalsegmentator_spine_report.json"
DICOM_SERIES = SHARED_DATA / "dicom" / "ct_series_totalsegmentator"
CT_SMALL = SHARED_DATA / "ct_small"
LARGE_SPACING_MM = (0.7, 0.7, 1.0)
NAMED_MIN_DICE = 0.5


def _truth(name: str, mask_file: str) -> np.ndarray:
    truth = np.rint(read_image(CT / mask_file).sagittal_slices()).astype(int)
    if name.startswith("totalsegmentator"):
        truth = np.vectorize(lambda v: TOTALSEGMENTATOR_TO_VERSE.get(v, 0))(truth)
    return truth


def _best_instance(instances: np.ndarray, where: np.ndarray) -> int:
    """The vertebra label of ours that covers most of ``where``; 0 when none does."""
    ours = instances[where]
    ours = ours[is_vertebra(ours)]
    return int(np.bincount(ours).argmax()) if len(ours) else 0


def _per_level(instances: np.ndarray, truth: np.ndarray) -> dict:
    """Per labelled vertebra: the name of the instance of ours that covers most of it, and that instance's Dice."""
    per_level = {}
    for verse_id in sorted(set(np.unique(truth)) - {0}):
        ours = _best_instance(instances, truth == verse_id)
        per_level[VERTEBRA_NAMES[int(verse_id)]] = {
            "named": VERTEBRA_NAMES.get(ours, "none"),
            "dice": dice(truth == verse_id, instances == ours) if ours else 0.0,
        }
    return per_level


def _levels_right(per_level: dict) -> int:
    return sum(k == v["named"] and v["dice"] >= NAMED_MIN_DICE for k, v in per_level.items())


def labelled() -> dict | None:
    if not CT.is_dir():
        return None
    volumes, results = {}, {}
    for name, (image_file, mask_file) in CT_SETS.items():
        image = read_image(CT / image_file, modality="CT")
        truth = _truth(name, mask_file)
        start = time.perf_counter()
        seg = ct.segment(image)
        seconds = time.perf_counter() - start
        instances = seg.levels.instances
        box = tuple(slice(max(0, int(i.min()) - 10), int(i.max()) + 11) for i in np.nonzero(truth > 0))
        per_level = _per_level(instances, truth)
        reach = _field_reach_mm(image)
        volumes[name] = {
            "vertebra_dice": dice(truth[box] > 0, is_vertebra(instances[box])),
            "instance_dice_mean": float(np.mean([v["dice"] for v in per_level.values()])),
            "levels_right": _levels_right(per_level),
            "levels_total": len(per_level),
            "discs_found": len(seg.levels.discs),
            "sacrum_anchor": NO_ANCHOR not in seg.review,
            "field_reach_mm": reach,
            "wide_enough_for_a_pelvis": reach >= SACRUM_REACH_MM,
            "seconds": seconds,
            "levels": per_level,
        }
        results[name] = (image, seg, truth, ct.build_findings(seg)[0])
        volumes[name]["trabecular_hu_mean_median"] = {  # per vertebra as we name it (the names may be wrong)
            v.level: [v.measurements.bone_density_hu, v.measurements.bone_density_hu_median]
            for v in results[name][3].vertebrae
            if v.measurements is not None and v.measurements.bone_density_hu is not None
        }
    return {"volumes": volumes, "_segmentations": results}


def heights_against_labels(segmentations: dict) -> dict:
    """Our vertebral heights against the same measurement (``measure_spine``, on the same mid-sagittal slice, with
    our canal to cut the bodies from their posterior elements, each end read to its edge in the CT's values) on the
    manual labels: the error our outlines add."""
    out = {}
    for name, (image, seg, truth, findings) in segmentations.items():
        if name.startswith("totalsegmentator"):
            continue  # a peer's labels, not truth
        mid = seg.mid_slice
        labels = np.where(truth[mid] > 0, truth[mid], 0)
        labels[(labels == 0) & (seg.levels.instances[mid] == CANAL_LABEL)] = CANAL_LABEL
        ids = [int(i) for i in np.unique(labels) if 0 < i < CANAL_LABEL]
        levels = [Level(VERTEBRA_NAMES[i], i, "vertebra", (0.0, 0.0), int((labels == i).sum())) for i in ids]
        hu = image.sagittal_slices()[mid]
        expected = measure_spine(labels, levels, image.sagittal_spacing_mm(), intensities=hu).vertebrae
        ours = {v.label: v.measurements for v in findings.vertebrae}
        errors = []
        for i in ids:
            truth_m = expected.get(VERTEBRA_NAMES[i])
            m = ours.get(_best_instance(seg.levels.instances, truth == i))
            for part in ("anterior", "middle", "posterior"):
                key = f"height_{part}_mm"
                t = getattr(truth_m, key, None) if truth_m else None
                o = getattr(m, key, None) if m else None
                if t is not None and o is not None and np.isfinite(t):
                    errors.append(o - t)
        out[name] = {
            "heights_compared": len(errors),
            "mean_error_mm": float(np.mean(errors)) if errors else None,
            "mean_absolute_error_mm": float(np.mean(np.abs(errors))) if errors else None,
        }
    return out


def peer_comparison(segmentations: dict) -> dict | None:
    name = next((n for n in segmentations if n.startswith("totalsegmentator")), None)
    if name is None or not PEER_REPORT.is_file():
        return None
    image, seg, truth, findings = segmentations[name]
    peer = json.loads(PEER_REPORT.read_text())["results"]
    by_label = {v.label: v for v in findings.vertebrae}
    hu = image.sagittal_slices()
    levels = {}
    for level in ("L1", "L2", "L3", "L4", "L5"):
        key = f"vertebrae_{level}"
        where = truth == VERTEBRA_IDS[level]
        ours = _best_instance(seg.levels.instances, where)
        vertebra = by_label.get(ours)
        m = vertebra.measurements if vertebra else None
        mask = seg.levels.instances == ours
        row = {
            "our_name": VERTEBRA_NAMES.get(ours, "none"),
            "peer_mask_mean_hu": float(hu[where].mean()),  # their definition, recomputed on their mask
            "ours_whole_mean_hu": float(hu[mask].mean()) if ours else None,
            "ours_whole_median_hu": float(np.median(hu[mask])) if ours else None,
            "ours_trabecular_mean_hu": m.bone_density_hu if m else None,
            "ours_trabecular_median_hu": m.bone_density_hu_median if m else None,
            "ours_volume_ml": float(mask.sum() * np.prod(image.spacing_mm) / 1000) if ours else None,
        }
        for part in ("anterior", "middle", "posterior"):
            ours_h = getattr(m, f"height_{part}_mm") if m else None
            row[f"height_{part}_mm"] = ours_h
            row[f"height_{part}_difference_mm"] = None if ours_h is None else ours_h - peer[f"{key}_height_{part}_mm"]
        for ours_key, peer_key in (
            ("ours_whole_mean_hu", "intensity"),
            ("ours_whole_median_hu", "intensity_median"),
            ("ours_trabecular_mean_hu", "intensity"),
            ("ours_trabecular_median_hu", "intensity_median"),
            ("ours_volume_ml", "volume_ml"),
        ):
            value = row[ours_key]
            row[f"{ours_key}_difference"] = None if value is None else value - peer[f"{key}_{peer_key}"]
        row["peer_definition_check_hu"] = row["peer_mask_mean_hu"] - peer[f"{key}_intensity"]
        levels[level] = row
    differences = {
        k: float(np.nanmean([abs(r[k]) if r[k] is not None else np.nan for r in levels.values()]))
        for k in (
            "height_anterior_difference_mm",
            "height_middle_difference_mm",
            "height_posterior_difference_mm",
            "ours_whole_mean_hu_difference",
            "ours_whole_median_hu_difference",
            "ours_trabecular_mean_hu_difference",
            "ours_trabecular_median_hu_difference",
            "ours_volume_ml_difference",
        )
    }
    return {"levels": levels, "mean_absolute_difference": differences}


def dicom_series() -> dict | None:
    if not DICOM_SERIES.is_dir():
        return None
    image = read_image(DICOM_SERIES)
    result = ct.analyze(image)
    f = result.findings
    return {
        "shape": list(image.shape),
        "spacing_mm": [round(s, 3) for s in image.spacing_mm],
        "vertebrae": {v.level: (v.measurements.bone_density_hu if v.measurements else None) for v in f.vertebrae},
        "discs_found": len(result.segmentation.levels.discs),
        "needs_review": len(f.needs_review),
    }


def eight_bit() -> dict | None:
    if not CT_SMALL.is_dir():
        return None
    refused = {}
    for path in sorted(CT_SMALL.glob("*_ct.nii.gz")):
        try:
            route(read_image(path, modality="CT"))
            refused[path.name] = "analysed"
        except InputError as error:
            refused[path.name] = str(error).split(": ", 1)[1]
    return {"refused": sum(v != "analysed" for v in refused.values()), "total": len(refused), "reasons": refused}


def large_ct() -> dict | None:
    """Time and peak memory of ``lumbar analyze`` on a 336-slice CT, in a fresh process."""
    source = CT / "totalsegmentator_example" / "example_ct.nii.gz"
    if not source.is_file():
        return None
    import nibabel as nib
    from scipy import ndimage

    img = nib.as_closest_canonical(nib.load(source))
    zoom = np.array(img.header.get_zooms()[:3]) / np.array(LARGE_SPACING_MM)
    data = ndimage.zoom(np.asarray(img.dataobj, np.float32), zoom, order=1).astype(np.int16)
    affine = img.affine.copy()
    affine[:3, :3] = affine[:3, :3] / zoom
    lumbar = str(Path(sys.executable).parent / "lumbar")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "large_ct.nii.gz"
        nib.save(nib.Nifti1Image(data, affine), path)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        done = subprocess.run([lumbar, "analyze", str(path), "-o", str(Path(tmp) / "out")], capture_output=True)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "shape": list(data.shape),
        "spacing_mm": list(LARGE_SPACING_MM),
        "exit_code": done.returncode,
        "seconds": seconds,
        "peak_rss_mb": max(peak, before) / 1024,
    }


def phantom() -> dict:
    """The CT phantom's known answers: every body 27 mm tall (except S1), marrow of 200 HU."""
    from lumbar.phantom import TISSUE, make_phantom

    ph = make_phantom(contrast="CT", shape=(31, 320, 256), spacing_mm=(2.0, 1.0, 1.0))
    truth = {v.level: v for v in ph.vertebrae}
    result = ct.analyze(ph.image)
    findings = result.findings
    true_labels = ph.image.with_array(ph.instances).sagittal_slices()
    errors, densities = [], []
    for v in findings.vertebrae:
        m = v.measurements
        if m is None:
            continue
        for part in ("anterior", "middle", "posterior"):
            height = getattr(m, f"height_{part}_mm")
            if height is not None:
                errors.append(height - getattr(truth[v.level], f"height_{part}_mm"))
        if m.bone_density_hu is not None:
            densities.append(m.bone_density_hu)
    return {
        "levels_right": sum(
            VERTEBRA_NAMES.get(_best_instance(result.segmentation.levels.instances, true_labels == VERTEBRA_IDS[name]))
            == name
            for name in truth
        ),
        "levels_total": len(truth),
        "height_error_mm_mean": float(np.mean(errors)),
        "height_error_mm_max_abs": float(np.max(np.abs(errors))),
        "heights_measured": len(errors),
        "marrow_hu": TISSUE["marrow"][2],
        "density_hu_range": [float(min(densities)), float(max(densities))],
    }


def thick_slices(thicknesses: tuple[int, ...] = (1, 2, 3, 4, 5)) -> dict:
    """The CT phantom drawn at 1 mm and averaged over slabs ``k`` mm thick head to feet (the partial volume of an axial
    CT's thicker slices): levels named right and the heights' errors against its exact 27 mm bodies, per thickness.
    Heights of the top vertebra, which the field of view cuts, are left out."""
    from lumbar.image import SpineImage
    from lumbar.phantom import make_phantom

    ph = make_phantom(contrast="CT", shape=(62, 321, 256), spacing_mm=(1.0, 1.0, 1.0))
    truth = {v.level: v for v in ph.vertebrae}
    top = ph.vertebrae[0].level  # cranial first
    out = {}
    for k in thicknesses:
        rows = ph.image.array.shape[2] // k * k
        voxels = ph.image.array[:, :, :rows]
        thick = voxels.reshape(*voxels.shape[:2], rows // k, k).mean(-1).astype(np.float32)
        image = SpineImage(thick, np.diag([1.0, 1.0, float(k), 1.0]), modality=ph.image.modality, source=f"{k} mm")
        result = ct.analyze(image)
        labels = ph.instances[:, :, :rows][:, :, k // 2 :: k]  # each slab's middle row: the truth it is named by
        true_labels = image.with_array(labels).sagittal_slices()
        errors = []
        for v in result.findings.vertebrae:
            if v.measurements is None or v.level not in truth or v.level == top:
                continue
            for part in ("anterior", "middle", "posterior"):
                height = getattr(v.measurements, f"height_{part}_mm")
                if height is not None:
                    errors.append(height - getattr(truth[v.level], f"height_{part}_mm"))
        instances = result.segmentation.levels.instances
        named = {
            n: VERTEBRA_NAMES.get(_best_instance(instances, true_labels == VERTEBRA_IDS[n]), "none")
            for n in truth
            if (true_labels == VERTEBRA_IDS[n]).any()
        }
        out[f"{k} mm"] = {
            "levels_right": sum(ours == n for n, ours in named.items()),
            "levels_total": len(named),
            "named": ", ".join(f"{n} → {ours}" for n, ours in named.items()),
            "heights_measured": len(errors),
            "height_error_mm_mean": float(np.mean(errors)) if errors else None,
            "height_error_mm_mean_abs": float(np.mean(np.abs(errors))) if errors else None,
            "thick_slice_review": any(r.startswith("slices ") for r in result.findings.needs_review),
        }
    return out


REAL_THICKENING = {"verse012": (1, 2, 3, 5), "totalsegmentator_example (peer labels)": (1, 2)}


def _thickened(image, labels: np.ndarray, k: int):
    """``image`` averaged over slabs of ``k`` voxels head to feet (an axial CT's thicker slices), and ``labels``
    (the same grid) as the label most of each slab holds."""
    from lumbar.image import SpineImage

    rows = image.array.shape[2] // k * k
    slabs = image.array[:, :, :rows].reshape(*image.array.shape[:2], rows // k, k)
    cut = labels[:, :, :rows].reshape(slabs.shape)
    values = np.unique(cut)
    held = np.stack([(cut == v).sum(-1) for v in values], -1)
    affine = image.affine.copy()
    affine[:3, 3] += affine[:3, 2] * (k - 1) / 2  # a slab's centre
    affine[:3, 2] *= k
    thick = SpineImage(slabs.mean(-1).astype(np.float32), affine, modality=image.modality, source=f"{k}x")
    return thick, values[held.argmax(-1)]


def thick_slices_real() -> dict | None:
    """The labelled CTs averaged over thicker slices head to feet (``REAL_THICKENING``: multiples of their own
    slices): per-vertebra Dice, levels named right and whether the sacrum anchored the names, per thickness. The
    labels follow the slabs (each the label most of it holds), so the Dice measures the outline at that thickness."""
    if not CT.is_dir():
        return None
    out = {}
    for name, factors in REAL_THICKENING.items():
        image_file, mask_file = CT_SETS[name]
        image = read_image(CT / image_file, modality="CT")
        mask = np.rint(read_image(CT / mask_file).array).astype(int)
        for k in factors:
            thick, labels = _thickened(image, mask, k)
            truth = thick.with_array(labels).sagittal_slices()
            if name.startswith("totalsegmentator"):
                truth = np.vectorize(lambda v: TOTALSEGMENTATOR_TO_VERSE.get(v, 0))(truth)
            seg = ct.segment(thick)
            per_level = _per_level(seg.levels.instances, truth)
            out[f"{name.split(' ')[0]}, {thick.display_spacing_mm()[1]:.0f} mm"] = {
                "instance_dice_mean": float(np.mean([v["dice"] for v in per_level.values()])),
                "levels_right": _levels_right(per_level),
                "levels_total": len(per_level),
                "sacrum_anchor": NO_ANCHOR not in seg.review,
                "named": ", ".join(f"{n} → {v['named']}" for n, v in per_level.items()),
            }
    return out


def _sacrum_cell(volume: dict) -> str:
    """Whether the sacrum anchored the names, or why not."""
    if volume["sacrum_anchor"]:
        return "found"
    return "not found" if volume["wide_enough_for_a_pelvis"] else "field too narrow"


def _field_reach_mm(image) -> float:
    """How far the field of view reaches from the skeleton's midline, on its narrower side (the sacrum rule needs
    ``SACRUM_REACH_MM`` to see the ilia)."""
    hu = image.sagittal_slices()
    return field_reach_mm(hu.shape[0], midline_index(hu), image.display_spacing_mm()[0])


def pelvis_phantom() -> dict:
    """The sacrum anchor on the CT phantom with a pelvis (alae, 2 mm sacroiliac clefts, iliac crests beside L5):
    end to end, and with the lowest one or two discs erased from its truth (drawn as bone, as a network missing
    them would leave them) before the levels are named, the vertebrae counted between the lowest disc and the
    sacrum."""
    from lumbar.labels import classes_of, disc_label
    from lumbar.phantom import make_phantom
    from lumbar.tasks.levels import label_levels

    ph = make_phantom(contrast="CT", shape=(81, 320, 256), spacing_mm=(3.0, 1.0, 1.0), pelvis=True)
    result = ct.analyze(ph.image)
    truth = ph.image.with_array(ph.instances).sagittal_slices()
    ours = result.segmentation.levels.instances
    right = sum(VERTEBRA_NAMES.get(_best_instance(ours, truth == v.label)) == v.level for v in ph.vertebrae)
    hu, spacing = ph.image.sagittal_slices(), ph.image.display_spacing_mm()
    counted = {}
    for erased in (0, 1, 2):
        labels = truth.copy()
        for upper in ("L5", "L4")[:erased]:
            labels[labels == disc_label(upper)] = VERTEBRA_IDS[upper]
        named = label_levels(classes_of(labels), spacing)
        between = disc_spacing_mm(named.discs)
        anchor = sacrum_below(reach_profile(hu, spacing, midline_index(hu), named.discs[0], between), between)
        counted[str(erased)] = None if anchor is None else anchor.vertebrae_between
    return {
        "levels_right": right,
        "levels_total": len(ph.vertebrae),
        "sacrum_anchor": NO_ANCHOR not in result.findings.needs_review,
        "vertebrae_between_by_discs_erased": counted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--accuracy-only",
        action="store_true",
        help="remeasure all but the large CT's time and memory, kept from the last run (speed wants an idle CPU)",
    )
    args = parser.parse_args()
    part = labelled()
    segmentations = part.pop("_segmentations") if part else {}
    payload = {
        "labelled": part,
        "phantom": phantom(),
        "pelvis_phantom": pelvis_phantom(),
        "thick_slices": thick_slices(),
        "thick_slices_real": thick_slices_real(),
        "heights_against_labels": heights_against_labels(segmentations),
        "peer_comparison": peer_comparison(segmentations),
        "dicom_series": dicom_series(),
        "ct_small_8bit": eight_bit(),
        "large_ct": json.loads((CLAIMS / "ct.json").read_text())["large_ct"] if args.accuracy_only else large_ct(),
    }
    path = save("ct", payload)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    if part:
        table = Table(title="CT pipeline on labelled CT (bench/ct.py)")
        columns = ("data", "vertebra Dice", "per-vertebra Dice", "levels right", "sacrum", "named (truth: ours)", "s")
        for column in columns:
            table.add_column(column)
        for name, r in part["volumes"].items():
            named = ", ".join(f"{k}: {v['named']}" for k, v in r["levels"].items())
            table.add_row(
                name,
                f"{r['vertebra_dice']:.3f}",
                f"{r['instance_dice_mean']:.3f}",
                f"{r['levels_right']}/{r['levels_total']}",
                _sacrum_cell(r),
                named,
                f"{r['seconds']:.1f}",
            )
        console.print(table)
    peer = payload["peer_comparison"]
    if peer:
        table = Table(title="Beside TotalSegmentator's report on its example CT: ours and ours minus theirs")
        for column in (
            "level",
            "our name",
            "height ant / mid / post mm (diff)",
            "whole-vertebra HU mean (diff)",
            "trabecular HU mean",
            "volume ml (diff)",
        ):
            table.add_column(column)
        for level, r in peer["levels"].items():

            def pair(value, diff, digits=1):
                return "–" if value is None else f"{value:.{digits}f} ({diff:+.{digits}f})"

            heights = " / ".join(
                pair(r[f"height_{p}_mm"], r[f"height_{p}_difference_mm"]) for p in ("anterior", "middle", "posterior")
            )
            table.add_row(
                level,
                r["our_name"],
                heights,
                pair(r["ours_whole_mean_hu"], r["ours_whole_mean_hu_difference"], 0),
                "–" if r["ours_trabecular_mean_hu"] is None else f"{r['ours_trabecular_mean_hu']:.0f}",
                pair(r["ours_volume_ml"], r["ours_volume_ml_difference"]),
            )
        console.print(table)
        console.print(f"mean absolute differences: {peer['mean_absolute_difference']}")
    shown = ("heights_against_labels", "phantom", "thick_slices", "thick_slices_real", "dicom_series", "ct_small_8bit")
    for key in (*shown, "large_ct"):
        console.print(f"{key}: {payload[key]}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
