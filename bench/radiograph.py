"""Frontal radiographs: corners, vertebrae found and Cobb angles against the AASCE 2019 expert, beside baselines.

Measured on the test part of ``xray_ap`` (the radiographs the network never saw) without the 15 test images that
repeat a training radiograph, through the pipeline's own path (the JPEG read as ``lumbar analyze`` reads it, the
letterbox, the network, the decoding). Figures, with 95% bootstrap CIs over patients (the 113 test films come from 33
patients, up to 12 films each: resampling films would overstate how sure a figure is; the committed claims were
measured when ``291 E AP2`` counted as a 34th, before ``xray_ap.patient_group`` joined it to 291):
* corner error: median distance from each expert corner to the matched body's corner, in pixels (images 1024 rows
  high) and in % of that body's height; vertebrae missed (no found centre within half the body's height); images
  with exactly 17 found; found bodies named right (the expert's body of that name the nearest, within half its
  height);
* Cobb angles: SMAPE (as the AASCE challenge scores it) against the dataset's angles and against the angles this
  project's definition gives on the expert's own corners, the major angle's mean absolute error;
* baselines in the same table: the mean training spine (every landmark at its mean relative position over the
  training images, scaled to the test image) and the median training angles (no image at all);
* the Summary's operating point: "major Cobb angle >= 40 degrees" is stated only from ``40 + margin``, the margin the
  smallest that calls at most 5% of the expert's < 40 degree films among the validation radiographs (training part,
  the groups the model's record holds out of training, grouped as that record was split: ``xray_ap.grouping_of``;
  for the shipped networks the old grouping, under which 10 of the 64 validation films come from patients with films
  in training, ``python bench/radiograph_split.py``); sensitivity and false-positive rate measured on the test
  images, the latter with its exact one-sided 95% upper bound over patients, each counted once and called where any
  of its films is. Both on the films without review flags, the only films a Summary is stated for, beside the mean
  training spine's call on the same films (the trivial baseline: one curve for every film). ``--ship`` writes it to
  ``lumbar/validation.json`` (section radiographs);
* time per radiograph (find + decode, 2 threads) on this machine; how many films the pipeline's review flags on
  the bodies found (count, gaps, bodies too close, weak scores) leave without a Summary;
* how a picture whose file does not state its modality is routed (``xr_frontal.reads_as_radiograph``): the share of
  the test radiographs read as radiographs, and of SPIDER's 360 mid-sagittal MRI pictures and the 20 second-centre
  MRI slices wrongly read as radiographs.

Usage: ``python bench/radiograph.py [--model runs/x/radiograph.onnx] [--ship]``.
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

from lumbar.datasets.xray_ap import Radiograph, grouping_of, read_part
from lumbar.io import read_image
from lumbar.io.write import write_text
from lumbar.labels import FRONTAL_LEVELS
from lumbar.metrics import bootstrap_ci, corner_errors, exact_rate_ci, smape
from lumbar.models.registry import load_model
from lumbar.pipelines.xr_frontal import (
    MIN_SPINE,
    ROUTE_SCORE,
    corner_model,
    find_vertebrae,
    level_model,
    read_film,
    weights_digest,
)
from lumbar.tasks.cobb import cobb_angles, side_heights

DATA = SHARED_DATA / "xray_ap"
SEVERE_DEG = 40.0
MAX_FPR = 0.05
VALIDATION = Path(__file__).resolve().parents[1] / "lumbar" / "validation.json"


def mean_ci(values: np.ndarray, groups: np.ndarray | None = None) -> dict:
    mean, low, high = bootstrap_ci(values, groups)
    return {"mean": mean, "ci95": [low, high]}


def found_corners(
    radiograph: Radiograph, model, corner_net, level_net, second_look: bool = True, by_levels: bool = True
) -> tuple[np.ndarray, float, list[str], list[str]]:
    """The bodies found on a film (corners), the seconds it took, the pipeline's review flags and names."""
    image = read_image(radiograph.path, modality="XR")
    start = time.perf_counter()
    reading = read_film(
        image.sagittal_slices()[0], model, corner_net, second_look, level_net=level_net, by_levels=by_levels
    )
    seconds = time.perf_counter() - start
    return np.array([v.corners for v in reading.found]).reshape(-1, 4, 2), seconds, reading.flags, reading.names


def parameter_count(path: Path) -> int:
    """The network's weights, counted in its ONNX graph."""
    import onnx

    return int(sum(np.prod(tensor.dims) for tensor in onnx.load(str(path)).graph.initializer))


def definition_agreement(training: list[Radiograph]) -> dict:
    """How often ``tasks/cobb.py`` gives the dataset's own three angles (within 1 degree) from the expert's corners."""
    errors = np.abs([cobb_angles(r.corners, r.height).as_array() - r.angles for r in training])
    return {"films": len(training), "within_1_deg": [int(n) for n in (errors <= 1.0).sum(0)]}


def mean_spine(training: list[Radiograph]) -> np.ndarray:
    """Every landmark's mean position relative to the image's width and height over the training radiographs."""
    return np.mean([r.corners / [r.width, r.height] for r in training], axis=0)


def angles_of(corners: np.ndarray, height: int) -> np.ndarray:
    return cobb_angles(corners, height).as_array() if len(corners) >= 2 else np.zeros(3)


def name_shifts(truth: np.ndarray, found: np.ndarray, names: list[str]) -> dict[str, int]:
    """Per found body, how far its name is from the expert's body nearest to it (within half that body's height),
    in levels: "0" is named right, "-1" is the body above the one named (named one level too low); "none" where no
    expert body is that near."""
    centres, heights = truth.mean(1), np.linalg.norm(truth[:, 3] - truth[:, 0], axis=1)
    shifts: dict[str, int] = {}
    for name, body in zip(names, found):
        distance = np.linalg.norm(centres - body.mean(0), axis=1)
        nearest = int(np.argmin(distance))
        key = str(nearest - FRONTAL_LEVELS.index(name)) if distance[nearest] <= heights[nearest] / 2 else "none"
        shifts[key] = shifts.get(key, 0) + 1
    return shifts


def wrong_bodies(truth: np.ndarray, found: np.ndarray, missed: int) -> dict:
    """What is wrong with a film's bodies: ``missed`` expert bodies (as :func:`corner_errors` counts them) and found
    bodies with no expert centre within half the median body height between the expert's top and bottom body (a
    cervical body or the sacrum found beyond them is no error of its own); and whether L5 was missed while a body was
    found above T1 (the count shifted up a level, which no flag on the bodies' spacing can see)."""
    centres = truth.mean(1)
    half = np.median(side_heights(truth)) / 2
    ours = found.mean(1) if len(found) else np.zeros((0, 2))
    distance = np.linalg.norm(centres[:, None] - ours[None], axis=2)
    inside = (ours[:, 1] > centres[0, 1]) & (ours[:, 1] < centres[-1, 1])
    extra = int(((distance.min(0) > half) & inside).sum()) if len(ours) else 0
    l5_missed = not len(ours) or distance[-1].min() > half
    return {"errors": missed + extra, "shifted_up": bool(l5_missed and (ours[:, 1] < centres[0, 1] - half).any())}


def flag_check(rows: list[dict], flags: list[list[str]]) -> dict:
    """How the review flags (judged without the expert) sit against the films' real detection errors."""
    wrong = [row["wrong_bodies"]["errors"] > 0 for row in rows]
    shifted = [row["wrong_bodies"]["shifted_up"] for row in rows]
    flagged = [bool(f) for f in flags]
    return {
        "flagged_with_errors": int(sum(w and f for w, f in zip(wrong, flagged))),
        "flagged": int(sum(flagged)),
        "unflagged_with_errors": int(sum(w and not f for w, f in zip(wrong, flagged))),
        "unflagged_shifted_up": int(sum(s and not f for s, f in zip(shifted, flagged))),
        "unflagged": int(sum(not f for f in flagged)),
    }


def rows_for(radiographs: list[Radiograph], corners: list[np.ndarray], names: list[list[str]]) -> list[dict]:
    rows = []
    for r, c, n in zip(radiographs, corners, names):
        px, pct, missed = corner_errors(r.corners, c)
        rows.append(
            {
                "image": r.name,
                "patient": r.group,
                "found": len(c),
                "missed": missed,
                "wrong_bodies": wrong_bodies(r.corners, c, missed),
                "name_shifts": name_shifts(r.corners, c, n),
                "corner_px": px.tolist(),
                "corner_pct": pct.tolist(),
                "angles": angles_of(c, r.height).tolist(),
                "expert_angles": r.angles.tolist(),
                "expert_corner_angles": angles_of(r.corners, r.height).tolist(),
            }
        )
    return rows


def summarise(rows: list[dict]) -> dict:
    ids = np.array([r["patient"] for r in rows])  # CIs resample patients: one patient's films are alike
    per_corner_ids = np.concatenate([[k] * len(r["corner_px"]) for k, r in zip(ids, rows)])
    px = np.concatenate([r["corner_px"] for r in rows])
    pct = np.concatenate([r["corner_pct"] for r in rows])
    predicted = np.array([r["angles"] for r in rows])
    expert = np.array([r["expert_angles"] for r in rows])
    own = np.array([r["expert_corner_angles"] for r in rows])
    per_image_smape = np.array([smape(e, p) for e, p in zip(expert, predicted)])
    per_image_own = np.array([smape(e, p) for e, p in zip(own, predicted)])
    major_error = np.abs(predicted[:, 0] - expert[:, 0])
    rng = np.random.default_rng(0)

    def median_ci(values: np.ndarray, groups: np.ndarray) -> list[float]:
        unique = np.unique(groups)
        draws = []
        for _ in range(1000):
            pick = rng.choice(unique, len(unique))
            draws.append(np.median(np.concatenate([values[groups == g] for g in pick])))
        return [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]

    return {
        "n_images": len(rows),
        "corner_error_px_median": float(np.median(px)),
        "corner_error_px_ci95": median_ci(px, per_corner_ids),
        "corner_error_pct_height_median": float(np.median(pct)),
        "corner_error_pct_height_ci95": median_ci(pct, per_corner_ids),
        "vertebrae_missed": int(sum(r["missed"] for r in rows)),
        "images_with_17_found": int(sum(r["found"] == 17 for r in rows)),
        "bodies_found": int(sum(r["found"] for r in rows)),
        "bodies_named_right": int(sum(r["name_shifts"].get("0", 0) for r in rows)),
        "bodies_named_one_level_too_low": int(sum(r["name_shifts"].get("-1", 0) for r in rows)),
        "expert_bodies": len(FRONTAL_LEVELS) * len(rows),
        "films_named_right_throughout": int(sum(r["name_shifts"] == {"0": len(FRONTAL_LEVELS)} for r in rows)),
        "cobb_smape_pct": mean_ci(per_image_smape, ids),
        "cobb_smape_vs_expert_corners_pct": mean_ci(per_image_own, ids),
        "major_angle_abs_error_deg": mean_ci(major_error, ids),
        "major_angle_abs_error_deg_median": float(np.median(major_error)),
    }


def stated_smape(rows: list[dict], flags: list[list[str]]) -> dict:
    """The Cobb SMAPE (mean, 95% CI by patient) over the films without review flags, and how many they are."""
    kept = [row for row, f in zip(rows, flags) if not f]
    values = np.array([smape(np.array(r["expert_angles"]), np.array(r["angles"])) for r in kept])
    return {"films": len(kept), **mean_ci(values, np.array([r["patient"] for r in kept]))}


def severe_margin(rows: list[dict]) -> float:
    """The smallest margin (0.5 degree steps) above 40 at which at most MAX_FPR of the expert's < 40 degree films are
    called."""
    predicted = np.array([r["angles"][0] for r in rows])
    negative = np.array([r["expert_angles"][0] < SEVERE_DEG for r in rows])
    for margin in np.arange(0.0, 30.0, 0.5):
        if np.mean(predicted[negative] >= SEVERE_DEG + margin) <= MAX_FPR:
            return float(margin)
    return 30.0


def operating_point(rows: list[dict], threshold: float) -> dict:
    predicted = np.array([r["angles"][0] for r in rows])
    positive = np.array([r["expert_angles"][0] >= SEVERE_DEG for r in rows])
    called = predicted >= threshold
    ids = np.array([r["patient"] for r in rows])
    sens, fpr = (
        mean_ci(called[positive].astype(float), ids[positive]),
        mean_ci(called[~positive].astype(float), ids[~positive]),
    )
    precision = float(called[positive].sum() / max(called.sum(), 1))
    # A patient's films are not independent cases, and a bootstrap of no calls is the point [0, 0]: the false-positive
    # rate's exact one-sided 95% upper bound over the negative patients, each counted once and called where any of its
    # films is (conservative: a patient with one called film of three counts as wholly called).
    patients = {g: bool(called[~positive & (ids == g)].any()) for g in np.unique(ids[~positive])}
    fpr["patients"] = len(patients)
    fpr["patients_called"] = int(sum(patients.values()))
    if patients:
        fpr["upper95_by_patient"] = exact_rate_ci(fpr["patients_called"], len(patients), alpha=0.10)[1]
    return {
        "threshold": threshold,
        "n_positive": int(positive.sum()),
        "n_negative": int((~positive).sum()),
        "sensitivity": sens,
        "false_positive_rate": fpr,
        "precision": precision,
    }


def strong_bodies(path: Path, model) -> int:
    """How many bodies the network finds at ``ROUTE_SCORE`` or more in a picture (the routing rule's count)."""
    picture = read_image(path).sagittal_slices()[0]
    return sum(v.score >= ROUTE_SCORE for v in find_vertebrae(picture, model))


def routing(test: list[Radiograph], model) -> dict:
    """Pictures of unstated modality read as radiographs (at least ``MIN_SPINE`` strong bodies), per source."""
    sources = {
        "AASCE test radiographs (truth: radiograph)": [r.path for r in test],
        "SPIDER mid-sagittal MRI pictures (truth: MRI)": sorted((SHARED_DATA / "spider" / "midsag").glob("*.png")),
        "second-centre MRI slices (truth: MRI)": sorted((SHARED_DATA / "mri_small_t2" / "images").glob("*.png")),
    }
    out = {}
    for name, paths in sources.items():
        counts = [strong_bodies(p, model) for p in paths]
        out[name] = {
            "n": len(counts),
            "read_as_radiograph": int(sum(c >= MIN_SPINE for c in counts)),
            "most_bodies": int(max(counts, default=0)),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="A trained candidate's ONNX (default: the shipped model).")
    parser.add_argument("--corners", help="A trained corner network's ONNX (default: the shipped one, if any).")
    parser.add_argument("--levels", help="A trained level network's ONNX (default: the shipped one, if any).")
    parser.add_argument(
        "--ship", action="store_true", help="Write the >= 40 degree operating point to validation.json."
    )
    parser.add_argument(
        "--ship-saved",
        action="store_true",
        help="Write the operating point from this bench's last saved run (bench/claims/radiograph.json), unmeasured.",
    )
    args = parser.parse_args()
    if args.ship_saved:
        ship(json.loads((Path(__file__).parent / "claims" / "radiograph.json").read_text()))
        return
    if not DATA.is_dir():
        sys.exit(f"skipped: {DATA} not found (the AASCE radiographs live in ../shared/data/xray_ap)")
    model = load_model("radiograph", args.model)
    meta = model.meta
    training = read_part(DATA, "training")
    test = [r for r in read_part(DATA, "test") if not r.repeats_training]
    validation_groups = set(meta.get("split_groups", {}).get("validation", []))
    grouping = grouping_of(meta)  # the films the record's split named, grouped as it was (the shipped: legacy_group)
    validation = [r for r in training if grouping(r.name) in validation_groups and not r.faults]

    corner_net = load_model("radiograph_corners", args.corners) if args.corners or corner_model() else None
    level_net = load_model("radiograph_levels", args.levels) if args.levels or level_model() else None
    found, seconds, flags, names = zip(*(found_corners(r, model, corner_net, level_net) for r in test))
    rows = rows_for(test, list(found), list(names))
    steps = {}  # what the corner and level networks add, on the same films
    if corner_net is not None:
        alone = [found_corners(r, model, None, None, second_look=False, by_levels=False) for r in test]
        steps["frontal network alone"] = summarise(rows_for(test, [a[0] for a in alone], [a[3] for a in alone]))
    unflagged_smape = {"network": stated_smape(rows, list(flags))}  # on the films a Summary may be stated for
    if level_net is not None:
        counted = [found_corners(r, model, corner_net, None, by_levels=False) for r in test]
        counted_rows = rows_for(test, [a[0] for a in counted], [a[3] for a in counted])
        steps["names counted"] = summarise(counted_rows)
        unflagged_smape["names counted"] = stated_smape(counted_rows, [a[2] for a in counted])
    shape = mean_spine([r for r in training if grouping(r.name) not in validation_groups and not r.faults])
    baseline_rows = rows_for(test, [shape * [r.width, r.height] for r in test], [list(FRONTAL_LEVELS)] * len(test))
    median_angles = np.median([r.angles for r in training], axis=0)
    guess_smape = mean_ci(np.array([smape(r.angles, median_angles) for r in test]), np.array([r.group for r in test]))

    table = {**steps, "network": summarise(rows), "mean training spine": summarise(baseline_rows)}
    used = [net for net in (model, level_net, corner_net) if net is not None]
    payload: dict = {
        "model": model.version,
        "corner_model": corner_net.version if corner_net is not None else None,
        "corner_parameters": parameter_count(corner_net.path) if corner_net is not None else None,
        "level_model": level_net.version if level_net is not None else None,
        "level_parameters": parameter_count(level_net.path) if level_net is not None else None,
        "model_sha256": weights_digest(used),
        "parameters": parameter_count(model.path),
        "test_images": len(test),
        "left_out": "the 15 test images that repeat a training radiograph",
        "results": table,
        "median_training_angles_smape_pct": guess_smape,
        "seconds_per_radiograph_median": float(np.median(seconds)),
        "summary_withheld_by_flags": int(sum(bool(f) for f in flags)),
        "cobb_smape_pct_without_flags": unflagged_smape,
        "flags_against_errors": flag_check(rows, list(flags)),
        "cobb_definition_vs_dataset": definition_agreement(training),
        "expert_body_height_px_median": float(np.median([side_heights(r.corners) for r in test])),
    }
    if validation:  # the Summary is stated only on films without review flags: chosen and measured on those
        val_found = [found_corners(r, model, corner_net, level_net) for r in validation]
        val_rows = rows_for(validation, [c for c, *_ in val_found], [n for *_, n in val_found])
        val_rows = [row for row, (_, _, f, _) in zip(val_rows, val_found) if not f]
        margin = severe_margin(val_rows)
        stated = [row for row, f in zip(rows, flags) if not f]
        payload["severe_curve"] = {
            "statement": f"major Cobb angle >= {SEVERE_DEG:.0f} degrees",
            "margin_deg_chosen_on_validation": margin,
            "validation_images_without_flags": len(val_rows),
            "test_images_without_flags": len(stated),
            "test": operating_point(stated, SEVERE_DEG + margin),
            # the trivial baseline on the same films: the mean training spine's angles, the same curve on every film
            "mean_training_spine": operating_point(
                [row for row, f in zip(baseline_rows, flags) if not f], SEVERE_DEG + margin
            ),
        }
    payload["unstated_modality"] = routing(test, model)
    payload["rows"] = rows

    print(
        f"{'':22s} {'corner px':>10s} {'corner %h':>10s} {'missed':>7s} {'17 found':>9s} {'SMAPE %':>8s} "
        f"{'major MAE':>10s}"
    )
    for name, s in table.items():
        print(
            f"{name:22s} {s['corner_error_px_median']:10.1f} {s['corner_error_pct_height_median']:10.1f} "
            f"{s['vertebrae_missed']:7d} {s['images_with_17_found']:9d} {s['cobb_smape_pct']['mean']:8.1f} "
            f"{s['major_angle_abs_error_deg']['mean']:10.1f}  named right {s['bodies_named_right']}/{s['bodies_found']}"
            f" (films right throughout: {s['films_named_right_throughout']})"
        )
    print(f"{'median training angles':22s} {'':10s} {'':10s} {'':7s} {'':9s} {guess_smape['mean']:8.1f}")
    print(f"seconds per radiograph (median): {payload['seconds_per_radiograph_median']:.2f}")
    agreement = payload["cobb_definition_vs_dataset"]
    print(
        f"Cobb definition vs the dataset's angles, within 1 degree: {agreement['within_1_deg']} of {agreement['films']}"
    )
    print(f"films whose Summary the review flags withhold: {payload['summary_withheld_by_flags']} of {len(test)}")
    for name, entry in unflagged_smape.items():
        print(f"Cobb SMAPE on the films without flags, {name}: {entry['mean']:.1f}% over {entry['films']} films")
    check = payload["flags_against_errors"]
    print(
        f"flagged films with a body missed or one found that is none: {check['flagged_with_errors']} of "
        f"{check['flagged']}; unflagged: {check['unflagged_with_errors']} of {check['unflagged']} "
        f"({check['unflagged_shifted_up']} with L5 missed and a body found above T1)"
    )
    if "severe_curve" in payload:
        print(json.dumps(payload["severe_curve"], indent=1))
    for name, entry in payload["unstated_modality"].items():
        print(f"{name}: {entry['read_as_radiograph']} of {entry['n']} read as radiographs")
    save("radiograph", payload)
    if args.ship and "severe_curve" in payload:
        ship(payload)


def ship(payload: dict) -> None:
    """Record the >= 40 degree statement's operating point in lumbar/validation.json (section radiographs)."""
    point = payload["severe_curve"]["test"]
    names = payload["results"]["network"]
    fpr = point["false_positive_rate"]
    validated = fpr["mean"] <= MAX_FPR and point["precision"] >= 0.5  # the rule every Summary finding follows
    record = json.loads(VALIDATION.read_text())
    record["radiographs"] = {
        "reference": "AASCE 2019 expert Cobb angles (Wu et al. 2017), test radiographs not repeating a training one",
        "short_reference": (  # the point was chosen and measured on films without review flags: a Summary's own
            f"the AASCE 2019 expert's Cobb angles ({payload['severe_curve']['test_images_without_flags']} test "
            f"radiographs without review flags, of {payload['test_images']})"
        ),
        "max_false_positive_rate": MAX_FPR,
        "model_sha256": payload["model_sha256"],
        "command": "python bench/radiograph.py --ship",  # --ship-saved writes the same from its saved summaries
        "findings": {
            "cobb_major_40": {
                "validated": bool(validated),
                "score": "major Cobb angle (degrees)",
                "unit": "°",
                "threshold": point["threshold"],
                "n_positive": point["n_positive"],
                "n_negative": point["n_negative"],
                "sensitivity": point["sensitivity"]["mean"],
                "false_positive_rate": fpr["mean"],
                "false_positive_rate_upper95": fpr.get("upper95_by_patient"),
                "negative_patients": fpr["patients"],
                "precision": point["precision"],
                "positives": f"radiographs with a major curve of {SEVERE_DEG:.0f}° or more",
                "negatives": f"below {SEVERE_DEG:.0f}°",
                "why": ""
                if validated
                else f"false-positive rate {fpr['mean']:.1%}, precision {point['precision']:.0%}",
            },
            "radiograph_cobb_angle_values": {
                "validated": False,
                "why": (
                    "against the expert on the test films the major angle is off by "
                    f"{names['major_angle_abs_error_deg']['mean']:.1f}° on average (Cobb SMAPE "
                    f"{names['cobb_smape_pct']['mean']:.1f}%); only the call 'a major curve of {SEVERE_DEG:.0f}° or "
                    "more' can reach the Summary, by its own record"
                ),
            },
            "radiograph_vertebra_measurements": {
                "validated": False,
                "why": (
                    "heights and tilts come from the corners, whose median error is "
                    f"{names['corner_error_pct_height_median']:.1f}% of a body's height on the test films; never "
                    "compared with an expert's measurement, and no film here gives its pixel size"
                ),
            },
            "radiograph_level_names": {
                "validated": False,
                "why": (
                    f"{names['bodies_named_right']} of the {names['bodies_found']} bodies named on the test films "
                    f"carry the expert's name for them ({names['films_named_right_throughout']} of the "
                    f"{payload['test_images']} films named right throughout): "
                    + (
                        "the level network reads T1 and L5 from what lies around them, but a body the frontal network "
                        "missed or a stray peak taken for a body still shifts the names beside it"
                        if payload.get("level_model")
                        else "the names are counted along the bodies found, and a cervical body taken for T1 (or a "
                        "missed L5) shifts every name"
                    )
                ),
            },
        },
    }
    write_text(VALIDATION, json.dumps(record, indent=1) + "\n")
    print(f"wrote {VALIDATION} (radiographs: validated={validated})")


if __name__ == "__main__":
    main()
