"""Pictures stored mirrored front to back: how often `lumbar analyze` mirrors them back, and a right one by mistake.

A PNG or JPEG carries no orientation. The segmentation network learnt sagittal slices with anterior on the left; a
picture is mirrored back where the network is ``MIRROR_MARGIN`` more confident on it mirrored, either way up, or,
where the two are closer than that, where only mirrored back does the lowest disc pass the lumbosacral check
(``lumbar/tasks/orientation.py``). Each picture is judged as the pipeline judges it (way up, then mirror), as stored
and mirrored by hand:

* SPIDER's 360 mid-sagittal pictures (anterior on the left, as the data README states for its series);
* the 20 second-centre T2 slices (``mri_small_t2``): a centre the network never saw.

A right picture mirrored back is a false alarm; a mirrored picture left as it lies is missed. For the mirrored ones,
whether the discs are then named as on the right picture; for both, how many neither the network nor the check
tells (the front's side unclear: the Summary withheld), and of those how many another reason withholds anyway.
The confidence margins (the picture as it lay, less its best mirrored) are summarised too. Prints a table, writes
``bench/results/mirrored.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, margins_cell, pictures_to_turn, save, share_and_margins, share_cell

from lumbar.pipelines.mr_sagittal import lowest_disc_check, segment
from lumbar.tasks.levels import label_levels
from lumbar.tasks.orientation import MIRROR_MARGIN, upright_picture


def withheld_anyway(picture, unclear_front: str) -> bool:
    """Whether the pipeline withholds the picture's Summary for a reason other than ``unclear_front`` (its check's
    own reason) or the PNG's unstated modality (which ``--modality MR`` answers: not the picture's fault)."""
    return any(
        reason != unclear_front and not reason.startswith("modality not stated") for reason in segment(picture).gate
    )


def judged(name: str, group: str, image) -> list[dict]:
    """The picture as stored and mirrored front to back: mirrored back or not, the margin behind the call, and the
    discs named."""
    rows = []
    for mirrored, picture in ((False, image), (True, image.mirrored_front_to_back())):
        analysed, semantic, check = upright_picture(picture, None, *lowest_disc_check())
        as_it_lay, mirror = (
            (check.mirrored, check.analysed) if check.mirrored_back else (check.analysed, check.mirrored)
        )
        discs = label_levels(semantic.classes, analysed.display_spacing_mm()).discs
        rows.append(
            {
                "name": name,
                "set": group,
                "stored_mirrored": mirrored,
                "mirrored_back": check.mirrored_back,
                "margin": float(as_it_lay - mirror),  # > 0: more confident on the picture as it lay
                "front_unclear": check.mirror_unclear,  # neither the network nor the check tells: withheld
                "withheld_anyway": check.mirror_unclear and withheld_anyway(picture, check.mirror_unclear_reason()),
                "discs": [lv.name for lv in discs],
            }
        )
    rows[1]["named_as_right"] = rows[1]["discs"] == rows[0]["discs"]
    return rows


def summarise(rows: list[dict]) -> dict:
    out = {}
    for group in [*sorted({r["set"] for r in rows}), "all"]:
        for mirrored in (False, True):
            sel = [r for r in rows if group in ("all", r["set"]) and r["stored_mirrored"] == mirrored]
            summary = share_and_margins(sel, "mirrored_back")
            summary["front_unclear"] = sum(r["front_unclear"] for r in sel)
            summary["front_unclear_withheld_anyway"] = sum(r["withheld_anyway"] for r in sel)
            if mirrored:
                summary["named_as_right"] = sum(r["named_as_right"] for r in sel)
            out.setdefault(group, {})["mirrored" if mirrored else "right way round"] = summary
    return out


def main() -> None:
    items = pictures_to_turn()
    if not items:
        print(f"skipped: no pictures under {SHARED_DATA}")
        return
    rows = [row for name, group, image in items for row in judged(name, group, image)]
    results = {"mirror_margin": MIRROR_MARGIN, "sets": summarise(rows)}
    path = save("mirrored", {**results, "pictures": rows})

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Pictures mirrored back (margin {MIRROR_MARGIN})")
    for column in (
        "set",
        "stored",
        "pictures",
        "mirrored back [95% CI]",
        "named as the right one",
        "front unclear (withheld)",
        "margin min / p5 / median",
    ):
        table.add_column(column)
    for group, by_way in results["sets"].items():
        for way, r in by_way.items():
            table.add_row(
                group,
                way,
                str(r["pictures"]),
                share_cell(r["flagged"], r["flagged_share"], r["flagged_share_ci95"]),
                str(r.get("named_as_right", "")),
                str(r["front_unclear"]),
                margins_cell(r["margin_min_p5_p50"]),
            )
    Console().print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
