"""Which way up a picture was stored, decided by the segmentation network and, where it cannot tell, by the
lumbosacral check asked both ways up (``lumbar/tasks/orientation.py``).

Truth comes from images whose way up is known, each measured as stored and turned over:
* SPIDER's T2 SPACE slices (``t2space/images``, head up as the data README states and as checked by eye): the
  middle slice of each of the 30 volumes; patients the segmentation network trained on are reported apart;
* the 20 second-centre T2 slices (``mri_small_t2``, head up per its README).
And SPIDER's 360 mid-sagittal PNGs, whose way up nobody states: how many are decided head down, head up or left
undecided, per sequence; for the 30 T2 SPACE ones the truth is recovered by matching each to its own volume's
slices (the mid-sagittal picture equals one of them, or that slice turned over).

The lumbosacral check's own call is measured on every picture too (the way up in which it alone finds L5/S1, where
exactly one way passes its operating point), against the truth where there is one and against the network's
confident call on the others; the pictures of patients the check trained on are counted apart.

Prints a table, writes ``bench/results/orientation.json`` and ``bench/claims/orientation.json``.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save

from lumbar.io import read_image
from lumbar.io.arrays import picture_as_slice
from lumbar.io.spider import patient_id, read_overview_spacing, t2space_series
from lumbar.models.registry import load_model
from lumbar.pipelines.mr_sagittal import lowest_disc_check
from lumbar.preprocess import resize
from lumbar.tasks.orientation import MIN_MARGIN, OrientationCheck
from lumbar.tasks.segmentation import segment

SPIDER = SHARED_DATA / "spider"
SECOND_CENTRE = SHARED_DATA / "mri_small_t2"


def _verdict(check: OrientationCheck) -> str:
    return "undecided" if not check.decided else ("head down" if check.head_down else "head up")


def judged(image, truth_head_down: bool | None) -> dict:
    """The calls on one picture: the confidence margin (upside down minus as stored), the pipeline's verdict (the
    network's where it is confident, else the lumbosacral check's where exactly one way passes), and the lumbosacral
    check's own call."""
    lowest_disc, threshold = lowest_disc_check()
    turned = image.turned_upside_down()
    stored_seg, turned_seg = segment(image), segment(turned)
    both = (lowest_disc(image, stored_seg), lowest_disc(turned, turned_seg)) if lowest_disc else None
    check = OrientationCheck(
        stored_seg.mean_confidence() or 0.0, turned_seg.mean_confidence() or 0.0, both, threshold
    )  # as upright_picture decides: the check is asked only where the network is not confident
    alone = OrientationCheck(0.0, 0.0, both, threshold)
    row = {
        "margin": check.upside_down - check.as_stored,
        "verdict": _verdict(check),
        "by_lowest_disc": check.by_lowest_disc,
        "confident_verdict": _verdict(OrientationCheck(check.as_stored, check.upside_down)),
        "lowest_disc_verdict": _verdict(alone),
        "lowest_disc": both,
    }
    if truth_head_down is not None:
        row["truth"] = "head down" if truth_head_down else "head up"
        row["right"] = row["verdict"] == row["truth"]
    return row


def both_ways(name: str, group: str, image) -> list[dict]:
    """A head-up picture judged as stored and turned over."""
    turned = picture_as_slice(image.sagittal_slices()[0][::-1].copy(), image.sagittal_spacing_mm(), Path(name), "PNG")
    return [
        {"image": name, "group": group, **judged(image, False)},
        {"image": name, "group": group, **judged(turned, True)},
    ]


def stored_head_down(midsag: Path, volume: list[Path]) -> bool | None:
    """Whether a mid-sagittal T2 SPACE picture is its head-up volume's slice turned over (None: matches neither)."""
    picture = read_image(midsag).sagittal_slices()[0]
    best = (0.0, None)
    for path in volume:
        candidate = resize(read_image(path).sagittal_slices()[0], picture.shape)
        for turned in (False, True):
            r = float(np.corrcoef((candidate[::-1] if turned else candidate).ravel(), picture.ravel())[0, 1])
            best = max(best, (r, turned), key=lambda b: b[0])
    return best[1] if best[0] > 0.9 else None


def summarise(rows: list[dict]) -> dict:
    margins = np.array([r["margin"] for r in rows])
    out = {
        "n": len(rows),
        "head_down": int(sum(r["verdict"] == "head down" for r in rows)),
        "head_up": int(sum(r["verdict"] == "head up" for r in rows)),
        "undecided": int(sum(r["verdict"] == "undecided" for r in rows)),
        "abs_margin_min_p5_p50": [
            float(np.abs(margins).min()),
            float(np.percentile(np.abs(margins), 5)),
            float(np.median(np.abs(margins))),
        ],
    }
    out["by_lowest_disc"] = int(sum(r["by_lowest_disc"] for r in rows))
    # the lumbosacral check's own call, against the truth, or else against the network's confident call
    reference = [(r, r.get("truth", r["confident_verdict"])) for r in rows]
    called = [(r, ref) for r, ref in reference if r["lowest_disc_verdict"] != "undecided" and ref != "undecided"]
    out["lowest_disc_called"] = len(called)
    out["lowest_disc_agrees"] = int(sum(r["lowest_disc_verdict"] == ref for r, ref in called))
    truth = [r for r in rows if "right" in r]
    if truth:
        decided = [r for r in truth if r["verdict"] != "undecided"]
        out["with_truth"] = len(truth)
        out["wrong"] = int(sum(not r["right"] for r in decided))
        out["right_of_decided"] = float(np.mean([r["right"] for r in decided])) if decided else float("nan")
    return out


def main() -> None:
    if not (SPIDER / "t2space").is_dir():
        print(f"skipped: {SPIDER} not found")
        return
    spacing = read_overview_spacing(SPIDER / "overview.csv")
    trained_on = set(load_model("segmentation").meta.get("split_patients", {}).get("train", []))
    check_trained_on = set(load_model("lumbosacral").meta.get("split_patients", {}).get("train", []))
    rows = []
    volumes = t2space_series(SPIDER / "t2space" / "images")
    for series, paths in sorted(volumes.items()):
        middle = paths[len(paths) // 2]
        group = "T2 SPACE slice, " + ("seen in training" if patient_id(series) in trained_on else "unseen patient")
        rows += both_ways(middle.stem, group, read_image(middle, spacing_mm=spacing[series][0], modality="MR"))
    for path in sorted((SECOND_CENTRE / "images").glob("*.png")):
        rows += both_ways(path.stem, "second centre T2", read_image(path, modality="MR"))
    for path in sorted((SPIDER / "midsag").glob("*.png")):
        if path.stem not in spacing:
            continue
        truth = stored_head_down(path, volumes[path.stem]) if path.stem in volumes else None
        image = read_image(path, spacing_mm=spacing[path.stem][0], modality="MR")
        group = f"SPIDER mid-sagittal {path.stem.split('_', 1)[1]}"
        seen = "seen" if patient_id(path.stem) in check_trained_on else "unseen"
        rows.append({"image": path.stem, "group": group, "lumbosacral_check": seen, **judged(image, truth)})

    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
    summary = {group: summarise(items) for group, items in sorted(groups.items())}
    midsag = [r for r in rows if r["group"].startswith("SPIDER mid-sagittal")]
    for seen in ("seen", "unseen"):
        summary[f"SPIDER mid-sagittal, patients the lumbosacral check {seen} in training"] = summarise(
            [r for r in midsag if r["lumbosacral_check"] == seen]
        )
    print(f"min margin {MIN_MARGIN}; margin = confidence upside down - as stored")
    print(f"{'group':72s} {'n':>4s} {'down':>5s} {'up':>4s} {'undec':>5s} {'by disc':>7s} {'wrong':>5s} check agrees")
    for group, s in summary.items():
        counts = f"{s['n']:4d} {s['head_down']:5d} {s['head_up']:4d} {s['undecided']:5d} {s['by_lowest_disc']:7d}"
        agrees = f"{s['lowest_disc_agrees']}/{s['lowest_disc_called']}"
        print(f"{group:72s} {counts} {s.get('wrong', '-')!s:>5s} {agrees}")
    closest = sorted(
        (r for r in rows if r["group"].startswith("SPIDER mid-sagittal t")), key=lambda r: abs(r["margin"])
    )
    print("closest calls on SPIDER's T1/T2 mid-sagittal pictures (to check by eye):")
    print(", ".join(f"{r['image']} {r['verdict']} {r['margin']:+.4f}" for r in closest[:16]))
    save("orientation", {"min_margin": MIN_MARGIN, "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
