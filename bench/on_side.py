"""Pictures stored on their side (turned a quarter): how often `lumbar analyze` turns them back, and a right one.

A PNG or JPEG carries no orientation. The segmentation network learnt sagittal slices head up; a picture is turned a
quarter where the network's best confidence on it so (any way up, mirrored or not) is ``ON_SIDE_MARGIN`` above its
best as stored, and its Summary is withheld where the two are closer than that either way
(``lumbar/tasks/orientation.py``). Each picture is judged as the pipeline judges it, as stored and saved turned a
quarter anticlockwise (a new picture from the turned pixels, its pixel sizes swapped with its axes):

* SPIDER's 360 mid-sagittal pictures;
* the 20 second-centre T2 slices (``mri_small_t2``): a centre the network never saw.

A right picture turned is a false alarm; a turned picture analysed as it lies without a word is missed. For the
turned ones, whether they are then analysed on the very pixels the right one is (else how: left mirrored or not; of
those left mirrored, how many have their front called unclear, so withheld), and whether the discs are named as on
the right picture. Prints a table, writes ``bench/results/on_side.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, margins_cell, pictures_to_turn, save, share_and_margins, share_cell

from lumbar.io.arrays import picture_as_slice
from lumbar.pipelines.mr_sagittal import lowest_disc_check
from lumbar.tasks.levels import label_levels
from lumbar.tasks.orientation import ON_SIDE_MARGIN, upright_picture


def on_its_side(image):
    """The picture saved turned a quarter anticlockwise: a new file's pixels, nothing remembered of the turn."""
    row, col = image.sagittal_spacing_mm()
    pixels = np.ascontiguousarray(np.rot90(image.sagittal_slices()[0]))
    return picture_as_slice(pixels, (col, row) if image.spacing_known else None, Path(image.source), image.format)


def judged(name: str, group: str, image) -> list[dict]:
    """The picture as stored and turned a quarter: turned back or not, unclear or not, the margin behind the call,
    the way it was analysed (turned upright, mirrored back), whether a turned one was analysed on the very pixels the
    right one was, and the discs named."""
    rows, analysed_right = [], None
    for turned, picture in ((False, image), (True, on_its_side(image))):
        analysed, semantic, check = upright_picture(picture, None, *lowest_disc_check())
        as_it_lay, other = (check.on_side, check.best) if check.turned_on_side else (check.best, check.on_side)
        discs = label_levels(semantic.classes, analysed.display_spacing_mm()).discs
        rows.append(
            {
                "name": name,
                "set": group,
                "stored_on_side": turned,
                "turned_back": check.turned_on_side,
                "unclear": check.side_unclear,
                "head_down": check.head_down,
                "mirrored_back": check.mirrored_back,
                "front_unclear": check.mirror_unclear,
                "margin": float(as_it_lay - other),  # > 0: more confident on the picture as it lay
                "discs": [lv.name for lv in discs],
            }
        )
        if not turned:
            analysed_right = analysed.sagittal_slices()
        else:
            rows[-1]["same_pixels_as_right"] = bool(np.array_equal(analysed.sagittal_slices(), analysed_right))
    rows[1]["named_as_right"] = rows[1]["discs"] == rows[0]["discs"]
    return rows


def summarise(rows: list[dict]) -> dict:
    out = {}
    for group in [*sorted({r["set"] for r in rows}), "all"]:
        for turned in (False, True):
            sel = [r for r in rows if group in ("all", r["set"]) and r["stored_on_side"] == turned]
            flags = share_and_margins(sel, "turned_back")
            summary = {
                "pictures": flags["pictures"],
                "turned": flags["flagged"],
                "turned_share": flags["flagged_share"],
                "turned_share_ci95": flags["flagged_share_ci95"],
                "unclear": sum(r["unclear"] for r in sel),
                "silent": sum(not r["turned_back"] and not r["unclear"] for r in sel) if turned else None,
                "margin_min_p5_p50": flags["margin_min_p5_p50"],
            }
            if turned:
                back = [r for r in sel if r["turned_back"]]
                summary["named_as_right"] = sum(r["named_as_right"] for r in sel)
                summary["same_pixels_as_right"] = sum(r["same_pixels_as_right"] for r in back)
                left_mirrored = [r for r in back if not r["same_pixels_as_right"] and not r["mirrored_back"]]
                summary["differing_left_mirrored"] = len(left_mirrored)
                summary["left_mirrored_front_unclear"] = sum(r["front_unclear"] for r in left_mirrored)
            else:
                summary["unclear_names"] = [r["name"] for r in sel if r["unclear"]]
            out.setdefault(group, {})["on its side" if turned else "as stored"] = summary
    return out


def main() -> None:
    items = pictures_to_turn()
    if not items:
        print(f"skipped: no pictures under {SHARED_DATA}")
        return
    rows = [row for name, group, image in items for row in judged(name, group, image)]
    results = {"on_side_margin": ON_SIDE_MARGIN, "sets": summarise(rows)}
    path = save("on_side", {**results, "pictures": rows})

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Pictures turned back off their side (margin {ON_SIDE_MARGIN})")
    for column in ("set", "stored", "pictures", "turned [95% CI]", "unclear", "silent", "named as the right one"):
        table.add_column(column)
    table.add_column("margin min / p5 / median")
    for group, by_way in results["sets"].items():
        for way, r in by_way.items():
            table.add_row(
                group,
                way,
                str(r["pictures"]),
                share_cell(r["turned"], r["turned_share"], r["turned_share_ci95"]),
                str(r["unclear"]),
                "" if r["silent"] is None else str(r["silent"]),
                str(r.get("named_as_right", "")),
                margins_cell(r["margin_min_p5_p50"]),
            )
    Console().print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
