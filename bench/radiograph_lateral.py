"""Lateral radiographs: bodies, corners, names and lordosis on films the network never saw, and the view decision.

No labelled lateral radiograph exists here, so every figure is on projections:
* **held-out synthetic films**: rendered (``lumbar/train/lateral_drr.py``) from the anatomies of the SPIDER patients
  the model's record lists as test patients (never used in training or model selection), ``--films`` per anatomy
  with random fields of view, every other one mirrored (the patient facing right), read through the pipeline's own
  path (both ways round, named from the S1 peak). Per film and body: corner error in mm and in % of the body's
  height (median, 95% CI by patient bootstrap), bodies missed, bodies named right, whether the facing was right,
  lordosis L1-S1 error where the truth shows both. Beside it the same figures for **a trivial baseline**: every
  body at the mean position, relative to the film, that it has over the training anatomies;
* **films projected from real CTs** (water-equivalent path from the CT's HU, exposed like the synthetic films):
  the TotalSegmentator example CT (T11-S1, TotalSegmentator's labels as the truth) and VerSe 012 (T10-L3, manual
  labels; no sacrum, so names cannot be anchored), ``--exposures`` films each (exposure, scatter, dose and
  processing drawn per film): bodies missed, corner error in mm, named right;
* on both: how far the bodies stand out from the soft tissue in front of them (``body_contrast``, at the truth's
  corners), which is what made the network blind to CT films before the renderer drew faint bodies, and how often
  the review's tall-space reason (``xr_lateral.tall_space_flags``) is raised, and raised with no body missed; and
  where that reason's threshold should sit, from films of the model's validation patients
  (:func:`tall_space_operating_point`);
* **the view decision** (``xr_lateral.radiograph_view``) on the 128 real frontal test films of ``xray_ap`` and on
  the held-out synthetic lateral films; **routing of pictures of unstated modality** (``reads_as_lateral``) on
  SPIDER's 360 mid-sagittal MRI pictures (must stay MRI) and the frontal test films;
* time per film (read both ways round) on this machine.

``python bench/radiograph_lateral.py [--model runs/lateral/radiograph_lateral.onnx] [--films 3] [--exposures 4]``
writes ``bench/results/radiograph_lateral.json`` (with ``--model``: ``radiograph_lateral_<its folder>.json``) and
its summary to ``bench/claims/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.image import Modality, SpineImage
from lumbar.metrics import bootstrap_metric_ci, corner_errors
from lumbar.models.registry import load_model
from lumbar.pipelines import xr_lateral
from lumbar.tasks import lateral
from lumbar.tasks.measurements import CUT_BY_EDGE
from lumbar.train.lateral_drr import PIXEL_MM, Anatomy, build_anatomies, ct_film, render
from lumbar.train.radiograph_lateral import field_of_view, in_view

ROOT = Path(__file__).resolve().parents[1]
SPIDER = SHARED_DATA / "spider"


def picture_of(film: np.ndarray, modality: Modality = Modality.RADIOGRAPH) -> SpineImage:
    """A film as a PNG of unstated spacing is read (what the routing of pictures sees)."""
    return SpineImage.from_sagittal_slices(film[None], (PIXEL_MM,) * 3, modality=modality, format="PNG")


def named_right(truth: np.ndarray, truth_names: list[str], found: np.ndarray, names: list[str]) -> tuple[int, int]:
    """(bodies found and named as the truth names them, bodies found): a found body is the truth's nearest
    within half its height."""
    right = matched = 0
    heights = lateral.heights(truth).mean(1) if len(truth) else np.zeros(0)
    for c, name in zip(found, names):
        d = np.linalg.norm(truth.mean(1) - c.mean(0), axis=1) if len(truth) else np.array([np.inf])
        k = int(np.argmin(d))
        if d[k] <= heights[k] / 2:
            matched += 1
            right += truth_names[k] == name
    return right, matched


def read(film: np.ndarray, model) -> tuple[np.ndarray, list[str], bool, list[str], float]:
    """(corners top to bottom, names, faces right, review flags, the largest space between neighbouring bodies over
    their height: :func:`lumbar.tasks.lateral.space_ratios`) as the pipeline reads ``film``."""
    reading = xr_lateral.read_film(film, model)
    found, names, flags = xr_lateral.names_and_flags(reading)
    largest = max(lateral.space_ratios([v.corners for v in found], names), default=0.0)
    return np.array([v.corners for v in found]).reshape(-1, 4, 2), names, reading.faces_right, flags, largest


def body_contrast(film: np.ndarray, corners: np.ndarray) -> list[float]:
    """How far each body stands out from the soft tissue in front of it: the median grey of its interior (its outline
    shrunk to 0.6 about its centre) minus that of the same shape moved one body depth forward, over the film's 1st to
    99th percentile range; NaN where either region holds under 10 pixels (a body at the film's edge)."""
    from PIL import Image, ImageDraw

    lo, hi = np.percentile(film, [1, 99])
    span = max(float(hi - lo), 1e-6)
    out = []
    for c in np.asarray(corners, float).reshape(-1, 4, 2):
        inner = c.mean(0) + 0.6 * (c - c.mean(0))
        forward = ((c[lateral.AS] - c[lateral.PS]) + (c[lateral.AI] - c[lateral.PI])) / 2
        medians = []
        for quad in (inner, inner + forward):
            mask = Image.new("1", film.shape[::-1])
            ImageDraw.Draw(mask).polygon([tuple(map(float, p)) for p in quad], fill=1)
            inside = np.asarray(mask)
            medians.append(float(np.median(film[inside])) if inside.sum() >= 10 else float("nan"))
        out.append((medians[0] - medians[1]) / span)
    return out


def true_space_ratios(anatomies: list[Anatomy]) -> dict:
    """:func:`lateral.space_ratios` on the anatomies' own corners: what no network's reading distorts."""
    ratios = np.array([r for a in anatomies for r in lateral.space_ratios(a.corners, a.names)])
    return {
        "spaces": len(ratios),
        "p99": float(np.percentile(ratios, 99)),
        "above_0_8": int((ratios > 0.8).sum()),
        "above_factor": int((ratios > xr_lateral.TALL_SPACE_FACTOR).sum()),
    }


def lordosis(names: list[str], corners: np.ndarray, faces_right: bool, shape: tuple[int, int]) -> float | None:
    """The lordosis the pipeline reports from these corners (bodies it does not measure left out)."""
    measured, _ = xr_lateral.measured_corners(corners, names, shape, faces_right, np.ones(2))
    angle = lateral.alignment(names, measured).lordosis_deg
    return None if angle is None or np.isnan(angle) else angle  # NaN: L1 or S1 not measured, as the report has it


def beyond_film(
    found: np.ndarray,
    names: list[str],
    faces_right: bool,
    shape: tuple[int, int],
    corners: np.ndarray,
    inside: np.ndarray,
    mirrored: bool,
) -> tuple[int, int]:
    """(bodies found with a corner beyond the film, which the pipeline leaves unmeasured as cut by its edge; how many
    of them the film truly cuts: the nearest true body is not wholly on it)."""
    reasons = xr_lateral.measured_corners(found, names, shape, faces_right, np.ones(2))[1]
    every = lateral.facing_left(corners, shape[1]) if mirrored else corners
    beyond = [k for k, reason in enumerate(reasons) if reason == CUT_BY_EDGE]
    nearest = [int(np.argmin(np.linalg.norm(every.mean(1) - found[k].mean(0), axis=1))) for k in beyond]
    return len(beyond), int(sum(not inside[j] for j in nearest))


def synthetic(model, record: dict, films_per: int, anatomies: list[Anatomy]) -> dict:
    test = set(record["split_patients"]["test"])
    train = set(record["split_patients"]["training"])
    held = [a for a in anatomies if a.patient in test]
    mean_shape = _mean_spine([a for a in anatomies if a.patient in train])
    rows, base_rows = [], []
    rng = np.random.default_rng(2026)
    for anatomy in held:
        for k in range(films_per):
            film, corners = field_of_view(render(anatomy, rng), anatomy.corners, rng)
            inside = in_view(corners, film.shape)
            truth, truth_names = corners[inside], [n for n, i in zip(anatomy.names, inside) if i]
            mirrored = k % 2 == 1
            width = film.shape[1]
            if mirrored:
                film, truth = film[:, ::-1].copy(), lateral.facing_left(truth, width)
            found, names, faces_right, flags, largest = read(film, model)
            px, pct, missed = corner_errors(truth, found)
            right, matched = named_right(truth, truth_names, found, names)
            true_lordosis = lordosis(truth_names, truth, mirrored, film.shape)
            got = lordosis(names, found, faces_right, film.shape)
            beyond, cut = beyond_film(found, names, faces_right, film.shape, corners, inside, mirrored)
            rows.append(
                {
                    "series": anatomy.series,
                    "patient": anatomy.patient,
                    "mirrored": mirrored,
                    "facing_right_read": faces_right,
                    "bodies": len(truth),
                    "missed": missed,
                    "named_right": right,
                    "matched": matched,
                    "errors_mm": (px * PIXEL_MM).tolist(),
                    "errors_pct": pct.tolist(),
                    "lordosis_true": true_lordosis,
                    "lordosis_read": got,
                    "beyond_film": beyond,
                    "beyond_film_cut": cut,
                    "flags": flags,
                    "largest_space_ratio": largest,
                    "contrast": body_contrast(film, truth),
                    "read_as_lateral": xr_lateral.radiograph_view(film, model) == "lateral",
                }
            )
            base = _place_mean_spine(mean_shape, truth, truth_names)
            bpx, _, bmissed = corner_errors(truth, base)
            base_rows.append({"patient": anatomy.patient, "errors_mm": (bpx * PIXEL_MM).tolist(), "missed": bmissed})
    return {"rows": rows, "baseline_rows": base_rows, "test_patients": len({a.patient for a in held})}


def _mean_spine(anatomies: list[Anatomy]) -> dict[str, np.ndarray]:
    """Each body's mean corners relative to its column: the corners minus the L3 centre, over training anatomies."""
    by_name: dict[str, list[np.ndarray]] = {}
    for a in anatomies:
        if "L3" not in a.names:
            continue
        origin = a.corners[a.names.index("L3")].mean(0)
        for name, c in zip(a.names, a.corners):
            by_name.setdefault(name, []).append(c - origin)
    return {name: np.mean(cs, axis=0) for name, cs in by_name.items()}


def _place_mean_spine(mean: dict[str, np.ndarray], truth: np.ndarray, names: list[str]) -> np.ndarray:
    """The baseline's bodies on a film: the mean spine centred on the film's bodies' centroid (no image read)."""
    if not len(truth):
        return np.zeros((0, 4, 2))
    placed = np.array([mean[n] for n in names if n in mean])
    return placed - placed.reshape(-1, 2).mean(0) + truth.reshape(-1, 2).mean(0)


def ct_films(model, exposures: int) -> list[dict]:
    """Each real CT projected ``exposures`` times (exposure, scatter, dose and processing drawn per film as for the
    synthetic films; the anatomy is the same), every film read as the pipeline reads it."""
    import nibabel as nib

    out = []
    cases = [
        (
            "TotalSegmentator example",
            SHARED_DATA / "ct/totalsegmentator_example/example_ct.nii.gz",
            SHARED_DATA / "ct/totalsegmentator_example/example_ct_vertebrae_totalsegmentator.nii.gz",
            {26: "S1", 27: "L5", 28: "L4", 29: "L3", 30: "L2", 31: "L1", 32: "T12", 33: "T11"},
        ),
        (
            "VerSe 012",
            SHARED_DATA / "ct/verse19_sub-verse012/sub-verse012_ct.nii.gz",
            SHARED_DATA / "ct/verse19_sub-verse012/sub-verse012_seg-vert_msk.nii.gz",
            {17: "T10", 18: "T11", 19: "T12", 20: "L1", 21: "L2", 22: "L3"},
        ),
    ]
    for name, ct_path, label_path, names in cases:
        if not ct_path.is_file():
            continue
        ct, labels = nib.as_closest_canonical(nib.load(ct_path)), nib.as_closest_canonical(nib.load(label_path))
        hu, label_map = ct.get_fdata(), np.rint(labels.get_fdata()).astype(int)
        films, px_all, pct_all = [], [], []
        for seed in range(exposures):
            film, truth, truth_names = ct_film(hu, label_map, tuple(ct.header.get_zooms()[:3]), names, seed=seed)
            found, found_names, faces_right, flags, largest = read(film, model)
            px, pct, missed = corner_errors(truth, found)
            right, matched = named_right(truth, truth_names, found, found_names)
            px_all.append(px)
            pct_all.append(pct)
            films.append(
                {
                    "seed": seed,
                    "bodies": len(truth),
                    "found_names": found_names,
                    "missed": missed,
                    "named_right": right,
                    "matched": matched,
                    "facing_right_read": faces_right,
                    "flags": flags,
                    "largest_space_ratio": largest,
                    "contrast": body_contrast(film, truth),
                    "read_as_lateral": xr_lateral.radiograph_view(film, model) == "lateral",
                }
            )
        px, pct = np.concatenate(px_all), np.concatenate(pct_all)
        out.append(
            {
                "ct": name,
                "films": len(films),
                "truth_names": truth_names,
                **{k: int(sum(f[k] for f in films)) for k in ("bodies", "missed", "named_right", "matched")},
                "corner_error_mm_median": float(np.median(px) * PIXEL_MM) if len(px) else None,
                "corner_error_pct_median": float(np.median(pct)) if len(pct) else None,
                "read_as_lateral": int(sum(f["read_as_lateral"] for f in films)),
                **_contrast_and_tall_spaces(films),
                "per_film": films,
            }
        )
    return out


def frontal_films(model) -> dict:
    from lumbar.datasets.xray_ap import read_image as read_radiograph
    from lumbar.datasets.xray_ap import read_part

    root = SHARED_DATA / "xray_ap"
    if not root.is_dir():
        return {}
    views, routed = [], []
    for radiograph in read_part(root, "test"):
        picture = read_radiograph(radiograph)
        views.append(xr_lateral.radiograph_view(picture, model))
        routed.append(xr_lateral.reads_as_lateral(picture_of(picture, Modality.MR), model))
    return {
        "films": len(views),
        "read_as_lateral": int(sum(v == "lateral" for v in views)),
        "lateral_route_true": int(sum(routed)),
    }


def mri_pictures(model) -> dict:
    from lumbar.io import read_image

    pictures = sorted((SPIDER / "midsag").glob("*.png"))
    hits = [p.stem for p in pictures if xr_lateral.reads_as_lateral(read_image(p), model)]
    return {"pictures": len(pictures), "read_as_lateral_radiographs": len(hits), "which": hits}


def tall_space_operating_point(model, record: dict, anatomies: list[Anatomy], films_per: int = 3) -> dict:
    """Where the tall-space review should sit: films rendered from the model's *validation* patients' anatomies (never
    its test patients), read as the pipeline reads them; per threshold on a 0.1 grid, the share of the films with no
    body missed whose largest space ratio (:func:`lateral.space_ratios`) exceeds it; the operating point is the
    smallest threshold flagging at most 5% of them."""
    validation = set(record["split_patients"]["validation"])
    rng = np.random.default_rng(7)
    largest = []
    for anatomy in (a for a in anatomies if a.patient in validation):
        for k in range(films_per):
            film, corners = field_of_view(render(anatomy, rng), anatomy.corners, rng)
            truth = corners[in_view(corners, film.shape)]
            if k % 2:
                film, truth = film[:, ::-1].copy(), lateral.facing_left(truth, film.shape[1])
            found, names, _ = xr_lateral.names_and_flags(xr_lateral.read_film(film, model))
            corners_found = np.array([v.corners for v in found]).reshape(-1, 4, 2)
            if corner_errors(truth, corners_found)[2] == 0:
                largest.append(max(lateral.space_ratios([v.corners for v in found], names), default=0.0))
    grid = [round(t, 1) for t in np.arange(0.8, 2.05, 0.1)]
    share = {f"{t:.1f}": float(np.mean(np.array(largest) > t)) for t in grid}
    chosen = next((t for t in grid if share[f"{t:.1f}"] <= 0.05), None)
    return {"films_no_body_missed": len(largest), "flagged_share_by_threshold": share, "threshold_at_5pct": chosen}


def _contrast_and_tall_spaces(films: list[dict]) -> dict:
    """Over films (rows with ``contrast``, ``flags``, ``missed``): the median body-against-soft-tissue contrast (the
    films' own medians: :func:`body_contrast`) and its spread, and the films the tall-space review flags, with those
    of them where no body was missed (a false flag for certain)."""
    per_film = np.array([np.nanmedian(f["contrast"]) if np.isfinite(f["contrast"]).any() else np.nan for f in films])
    per_film = per_film[np.isfinite(per_film)]
    flagged = [f for f in films if f["largest_space_ratio"] > xr_lateral.TALL_SPACE_FACTOR]
    return {
        "body_contrast_median": float(np.median(per_film)) if len(per_film) else None,
        "body_contrast_film_range": [float(per_film.min()), float(per_film.max())] if len(per_film) else None,
        "films_body_contrast_below_0_05": int((per_film < 0.05).sum()),
        "films_with_body_missed": int(sum(f["missed"] > 0 for f in films)),
        "tall_space_flagged": len(flagged),
        "tall_space_flagged_no_body_missed": int(sum(f["missed"] == 0 for f in flagged)),
    }


def summarise(synth: dict, cts: list[dict], frontal: dict, mri: dict, speed_s: float, record: dict) -> dict:
    rows, base = synth["rows"], synth["baseline_rows"]
    errors = np.concatenate([r["errors_mm"] for r in rows]) if rows else np.zeros(0)
    groups = np.concatenate([[r["patient"]] * len(r["errors_mm"]) for r in rows]) if rows else np.zeros(0)
    pct = np.concatenate([r["errors_pct"] for r in rows]) if rows else np.zeros(0)
    base_errors = np.concatenate([r["errors_mm"] for r in base]) if base else np.zeros(0)
    with_lordosis = [r for r in rows if r["lordosis_true"] is not None and r["lordosis_read"] is not None]
    lordosis_err = np.array([abs(r["lordosis_read"] - r["lordosis_true"]) for r in with_lordosis])
    return {
        "model": record.get("name"),
        "test_patients": synth["test_patients"],
        "films": len(rows),
        "bodies": int(sum(r["bodies"] for r in rows)),
        "corner_error_mm_median": float(np.median(errors)) if len(errors) else None,
        "corner_error_mm_median_ci95": bootstrap_metric_ci(np.median, [errors], groups) if len(errors) else None,
        "corner_error_pct_median": float(np.median(pct)) if len(pct) else None,
        "bodies_missed": int(sum(r["missed"] for r in rows)),
        "named_right": int(sum(r["named_right"] for r in rows)),
        "named_matched": int(sum(r["matched"] for r in rows)),
        "facing_right": int(sum(r["mirrored"] == r["facing_right_read"] for r in rows)),
        "lordosis_films": len(with_lordosis),
        "lordosis_error_deg_median": float(np.median(lordosis_err)) if len(lordosis_err) else None,
        "lordosis_within_5_deg": int((lordosis_err <= 5).sum()),
        "bodies_beyond_film": int(sum(r["beyond_film"] for r in rows)),
        "bodies_beyond_film_cut": int(sum(r["beyond_film_cut"] for r in rows)),
        "synthetic_read_as_lateral": int(sum(r["read_as_lateral"] for r in rows)),
        **_contrast_and_tall_spaces(rows),
        "baseline_corner_error_mm_median": float(np.median(base_errors)) if len(base_errors) else None,
        "ct_films": {c["ct"]: {k: v for k, v in c.items() if k != "ct"} for c in cts},
        "frontal_films": frontal,
        "mri_pictures": {k: v for k, v in mri.items() if k != "which"},
        "seconds_per_film": speed_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a trained radiograph_lateral ONNX (default: the shipped one)")
    parser.add_argument("--films", type=int, default=3, help="films rendered per held-out anatomy")
    parser.add_argument("--exposures", type=int, default=4, help="films projected per real CT")
    args = parser.parse_args()
    if args.exposures < 1 or args.films < 1:
        parser.error("--films and --exposures must be at least 1")
    model = load_model("radiograph_lateral", args.model)
    record_path = Path(model.path).with_suffix(".json")
    record = json.loads(record_path.read_text())
    if not (SPIDER / "midsag").is_dir():
        print(f"skipped: no SPIDER mid-sagittal pictures under {SPIDER} to draw the films' anatomies from")
        return
    # the anatomies lumbar train radiograph-lateral caches; built here where absent (about ten minutes on 2 cores)
    cache = ROOT / "runs" / "lateral" / "anatomies"
    build_anatomies(SPIDER, cache)
    anatomies = [Anatomy.load(p) for p in sorted(cache.glob("*.npz"))]  # read once: three measurements use them
    synth = synthetic(model, record, args.films, anatomies)
    cts = ct_films(model, args.exposures)
    frontal = frontal_films(model)
    mri = mri_pictures(model)
    film = np.zeros((400, 360), np.float32)
    film[100:300, 100:260] = 1
    start = time.perf_counter()
    for _ in range(10):
        xr_lateral.read_film(film, model)
    speed = (time.perf_counter() - start) / 10
    summary = summarise(synth, cts, frontal, mri, speed, record)
    summary["tall_space_validation"] = tall_space_operating_point(model, record, anatomies)
    summary["tall_space_true_corners"] = true_space_ratios(anatomies)
    summary["tall_space_factor"] = xr_lateral.TALL_SPACE_FACTOR
    name = f"radiograph_lateral_{Path(args.model).parent.name}" if args.model else "radiograph_lateral"
    path = save(name, {**summary, "rows": synth["rows"], "mri_which": mri.get("which", [])})
    print(json.dumps(summary, indent=1, default=float))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
