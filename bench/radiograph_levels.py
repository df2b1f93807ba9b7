"""The frontal level chain's two constants, on the validation films: the detection-score weight and the step sigma.

The level network reads every candidate of the validation films once (the patients held out of every frontal
network's training, split as in training, with the grouping the network's record was split with: for the shipped
networks the old one, under which 10 of the 64 validation films come from patients with films in training, ``python
bench/radiograph_split.py``; the test films are not read); the chain
(:func:`lumbar.tasks.frontal_levels.align_levels`) then names them with each weight of the detection score
(``with_detection``) and each sigma of the step term (none: no step term), and the bodies named right are counted
(the expert's body of that name within half a body's height). The shipped constants, ``SCORE_WEIGHT`` and
``SPACING_SIGMA``, are printed beside the table. Prints a table, writes
``bench/claims/radiograph_levels.json``.

Usage: ``python bench/radiograph_levels.py [--levels runs/x/radiograph_levels.onnx]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.datasets.xray_ap import grouping_of, read_image
from lumbar.labels import FRONTAL_LEVELS
from lumbar.models.registry import load_model
from lumbar.pipelines.xr_frontal import find_candidates
from lumbar.preprocess import normalize_intensity
from lumbar.tasks.frontal_levels import (
    SCORE_WEIGHT,
    SPACING_SIGMA,
    Spacing,
    align_levels,
    candidate_step,
    level_log_probs,
    with_detection,
)
from lumbar.train.radiograph import training_split
from lumbar.train.radiograph_levels import named_right

DATA = SHARED_DATA / "xray_ap"
WEIGHTS = (0.0, 0.5, 1.0, 2.0)
SIGMAS = (None, 0.25, 0.35, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", help="A trained level network's ONNX (default: the shipped one).")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"skipped: {DATA} not found (the AASCE radiographs live in ../shared/data/xray_ap)")
    net = load_model("radiograph_levels", args.levels)
    config = net.meta["config"]
    # as the network was selected on: the split its record names, grouped as it was then (xray_ap.grouping_of)
    _, films = training_split(str(DATA), config["val_fraction"], config["seed"], grouping=grouping_of(net.meta))
    read = []  # per film: its corners, candidates, their log-probabilities and the spine's step
    for film in films:
        grey = read_image(film)
        candidates = find_candidates(grey)
        step = candidate_step(candidates)
        if step > 0:
            read.append((film, candidates, level_log_probs(normalize_intensity(grey), candidates, net, step), step))
    relative = np.asarray(net.meta["relative_steps"], np.float64)
    table = []
    for weight in WEIGHTS:
        for sigma in SIGMAS:
            right = 0
            for film, candidates, log_probs, step in read:
                centres = np.array([c.centre for c in candidates])
                spacing = None if sigma is None else Spacing(centres, relative * step, sigma)
                evidence = with_detection(log_probs, np.array([c.score for c in candidates]), weight)
                named = align_levels(evidence, spacing=spacing)
                kept = [(c, k) for c, k in zip(candidates, named) if k is not None]
                right += named_right(film.corners, [c for c, _ in kept], [FRONTAL_LEVELS[k] for _, k in kept])
            table.append({"weight": weight, "sigma": sigma, "bodies_named_right": right})
    bodies = 17 * len(films)
    print(f"validation films: {len(films)} ({bodies} bodies); bodies named right")
    print(f"{'score weight':>12s} " + " ".join(f"{'no steps' if s is None else f'sigma {s}':>10s}" for s in SIGMAS))
    for weight in WEIGHTS:
        cells = [row["bodies_named_right"] for row in table if row["weight"] == weight]
        print(f"{weight:12g} " + " ".join(f"{c:10d}" for c in cells))
    print(f"shipped: weight {SCORE_WEIGHT}, sigma {SPACING_SIGMA}")
    save(
        "radiograph_levels",
        {
            "model": net.version,
            "validation_films": len(films),
            "bodies": bodies,
            "shipped": {"weight": SCORE_WEIGHT, "sigma": SPACING_SIGMA},
            "table": table,
        },
    )


if __name__ == "__main__":
    main()
