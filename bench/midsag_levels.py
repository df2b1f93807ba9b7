"""Generalisation check: discs found on SPIDER mid-sagittal T1, T2 and T2 SPACE slices vs the count listed.

SPIDER's ``overview.csv`` lists how many discs each series shows (``num_discs``). The shipped model was
trained on T2 SPACE slices only, so T1 and T2 here are sequences it never saw (patients in its
training split are reported separately from the others). Prints a table, writes
``bench/results/midsag_levels.json``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save, segmentation_model, spider_midsag_pictures

from lumbar.io.spider import patient_id
from lumbar.pipelines.mr_sagittal import segment

SPIDER = SHARED_DATA / "spider"


def _no_sacrum(row: dict) -> bool:
    return any(flag.startswith("no sacrum in view") for flag in row["flags"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a trained segmentation ONNX to measure instead of the shipped one")
    args = parser.parse_args()
    network, model = segmentation_model(args.model)
    if not (SPIDER / "midsag").is_dir():
        print(f"skipped: {SPIDER / 'midsag'} not found")
        return
    with open(SPIDER / "overview.csv", newline="") as overview:
        listed = {row["new_file_name"]: int(row["num_discs"]) for row in csv.DictReader(overview)}
    trained_on = set(network.meta.get("split_patients", {}).get("train", []))
    rows = []
    for path, image in spider_midsag_pictures():
        series = path.stem
        if series not in listed:
            continue
        result = segment(image, model=network)
        found = len(result.levels.discs)
        rows.append(
            {
                "series": series,
                "sequence": series.split("_", 1)[1],
                "patient": patient_id(series),
                "seen_in_training": patient_id(series) in trained_on,
                "listed": listed[series],
                "found": found,
                "flags": result.levels.flags,
            }
        )
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["sequence"]].append(row)
    summary = {}
    for sequence, items in sorted(groups.items()):
        diff = np.array([r["found"] - r["listed"] for r in items])
        summary[sequence] = {
            "n": len(items),
            "exact": float(np.mean(diff == 0)),
            "within_one": float(np.mean(np.abs(diff) <= 1)),
            "too_few": float(np.mean(diff < 0)),
            "too_many": float(np.mean(diff > 0)),
            "flagged_for_review": float(np.mean([bool(r["flags"]) for r in items])),
            "no_sacrum_in_view": float(np.mean([_no_sacrum(r) for r in items])),
            "exact_where_sacrum_in_view": float(
                np.mean([r["found"] == r["listed"] for r in items if not _no_sacrum(r)])
            ),
        }
    flagged = [r for r in rows if any(f.startswith("small lowest disc") for f in r["flags"])]
    small_lowest = {
        "n": len(flagged),
        "count_matches_listed": sum(r["found"] + 1 == r["listed"] for r in flagged),  # the flagged disc is left out
        "leaving_it_out_matches_listed": sum(r["found"] == r["listed"] for r in flagged),
    }
    by_listed = {  # the longest fields of view (more discs listed) are where the top discs go missing
        str(n): {
            "n": sum(r["listed"] == n for r in rows),
            "exact": sum(r["listed"] == n and r["found"] == n for r in rows),
            "too_few": sum(r["listed"] == n and r["found"] < n for r in rows),
            "too_many": sum(r["listed"] == n and r["found"] > n for r in rows),
        }
        for n in sorted({r["listed"] for r in rows})
    }
    above = [r for r in rows if any(f.startswith("bone goes on") for f in r["flags"])]
    unnamed_above = {"n": len(above), "fewer_discs_than_listed": sum(r["found"] < r["listed"] for r in above)}
    name = f"midsag_levels_{Path(args.model).parent.name}" if args.model else "midsag_levels"
    payload = {
        "summary": summary,
        "by_listed_count": by_listed,
        "small_lowest_disc": small_lowest,
        "unnamed_above_highest_disc": unnamed_above,
    }
    path = save(name, {"model": model, **payload, "series": rows})

    from rich.console import Console
    from rich.table import Table

    table = Table(title="Discs found vs listed in overview.csv, SPIDER mid-sagittal slices")
    for column in ("sequence", "n", "exact", "within one", "too few", "too many", "flagged", "no sacrum", "exact†"):
        table.add_column(column)
    for sequence, s in summary.items():
        table.add_row(
            sequence,
            str(s["n"]),
            f"{100 * s['exact']:.0f}%",
            f"{100 * s['within_one']:.0f}%",
            f"{100 * s['too_few']:.0f}%",
            f"{100 * s['too_many']:.0f}%",
            f"{100 * s['flagged_for_review']:.0f}%",
            f"{100 * s['no_sacrum_in_view']:.0f}%",
            f"{100 * s['exact_where_sacrum_in_view']:.0f}%",
        )
    Console().print(table)
    print("† exact, among the images that show a sacrum below the lowest disc")
    print(
        f"small lowest disc flagged in {small_lowest['n']} images: counting it matches the listed count in "
        f"{small_lowest['count_matches_listed']}, leaving it out in {small_lowest['leaving_it_out_matches_listed']}"
    )
    for n, c in by_listed.items():
        print(
            f"{c['n']} series listing {n} discs: {c['exact']} exact, {c['too_few']} too few, {c['too_many']} too many"
        )
    print(
        f"review asked for bone going on above the highest disc's vertebra in {unnamed_above['n']} images, "
        f"{unnamed_above['fewer_discs_than_listed']} of them with fewer discs found than listed"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
