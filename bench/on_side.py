"""Pictures stored on their side (turned a quarter): how often `lumbar analyze` turns them back, and a right one.

A PNG or JPEG carries no orientation. The segmentation network learnt sagittal slices head up; a picture is turned a
quarter where the network's best confidence on it so (any way up, mirrored or not) is ``ON_SIDE_MARGIN`` above its
best as stored, and its Summary is withheld where the two are closer than that either way
(``lumbar/tasks/orientation.py``). Each picture is judged as the pipeline judges it, as stored and saved turned a
quarter anticlockwise (a new picture from the turned pixels, its pixel sizes swapped with its axes):

* SPIDER's 360 mid-sagittal pictures;
* the 20 second-centre T2 slices (``mri_small_t2``): a centre the network never saw.

A right picture turned is a false alarm; a turned picture analysed as it lies without a word is missed. For the
turned ones, whether they are then analysed on the very pixels the right one is (else how: left mirrored or not), and
whether the discs are named as on the right picture. Prints a table, writes ``bench/results/on_side.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save, spider_midsag_pictures

from lumbar.io import read_image
from lumbar.io.arrays import picture_as_slice
from lumbar.metrics import bootstrap_ci
from lumbar.pipelines.mr_sagittal import lowest_disc_check
from lumbar.tasks.levels import label_levels
from lumbar.tasks.orientation import ON_SIDE_MARGIN, upright_picture

SECOND_CENTRE = SHARED_DATA / "mri_small_t2"


def pictures() -> list[tuple[str, str, object]]:
    """(name, set, picture) for the pictures judged."""
    out = [(path.stem, f"SPIDER {path.stem.split('_', 1)[1]}", image) for path, image in spider_midsag_pictures()]
    if (SECOND_CENTRE / "images").is_dir():
        for path in sorted((SECOND_CENTRE / "images").iterdir()):
            out.append((path.stem, "second centre T2", read_image(path)))
    return out


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
            flagged = np.array([r["turned_back"] for r in sel], float)
            patients = np.array([r["name"].split("_")[0] for r in sel])
            share, low, high = bootstrap_ci(flagged, patients)
            margins = np.array([r["margin"] for r in sel])
            summary = {
                "pictures": len(sel),
                "turned": int(flagged.sum()),
                "turned_share": share,
                "turned_share_ci95": [low, high],
                "unclear": sum(r["unclear"] for r in sel),
                "silent": sum(not r["turned_back"] and not r["unclear"] for r in sel) if turned else None,
                "margin_min_p5_p50": [float(margins.min()), *map(float, np.percentile(margins, [5, 50]))],
            }
            if turned:
                back = [r for r in sel if r["turned_back"]]
                summary["named_as_right"] = sum(r["named_as_right"] for r in sel)
                summary["same_pixels_as_right"] = sum(r["same_pixels_as_right"] for r in back)
                differ = [r for r in back if not r["same_pixels_as_right"]]
                summary["differing_left_mirrored"] = sum(
                    r["same_pixels_as_right"] is False and r["mirrored_back"] is False for r in differ
                )
            else:
                summary["unclear_names"] = [r["name"] for r in sel if r["unclear"]]
            out.setdefault(group, {})["on its side" if turned else "as stored"] = summary
    return out


def main() -> None:
    items = pictures()
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
                f"{r['turned']} ({100 * r['turned_share']:.0f}% [{100 * r['turned_share_ci95'][0]:.0f}, "
                f"{100 * r['turned_share_ci95'][1]:.0f}])",
                str(r["unclear"]),
                "" if r["silent"] is None else str(r["silent"]),
                str(r.get("named_as_right", "")),
                " / ".join(f"{m:+.3f}" for m in r["margin_min_p5_p50"]),
            )
    Console().print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
