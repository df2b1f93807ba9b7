"""Pictures stored mirrored front to back: how often `lumbar analyze` flags them, and how often it flags a right one.

A PNG or JPEG carries no orientation. The segmentation network learnt sagittal slices with anterior on the left; a
picture stored mirrored is segmented as it lies, and is flagged (its Summary withheld) where the network is
``MIRROR_MARGIN`` more confident on it mirrored back (``lumbar/tasks/orientation.py``). Each picture is judged as the
pipeline judges it (turned upright where stored head down), as stored and mirrored:

* SPIDER's mid-sagittal pictures: the 30 T2 SPACE ones and every third T1 and T2 one (anterior on the left, as the
  data README states for the series they come from);
* the 20 second-centre T2 slices (``mri_small_t2``): a centre the network never saw.

A right picture flagged is a false alarm; a mirrored picture not flagged is missed. The confidence margins (as
analysed minus the best mirrored) are summarised too. Prints a table, writes ``bench/results/mirrored.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, save, spider_midsag_pictures

from lumbar.io import read_image
from lumbar.metrics import bootstrap_ci
from lumbar.pipelines.mr_sagittal import lowest_disc_check
from lumbar.tasks.orientation import MIRROR_MARGIN, upright_picture

SECOND_CENTRE = SHARED_DATA / "mri_small_t2"


def pictures() -> list[tuple[str, str, object]]:
    """(name, set, picture) for the pictures judged."""
    out = []
    for path, image in spider_midsag_pictures():
        sequence = path.stem.split("_", 1)[1]
        if sequence == "t2_SPACE" or (sequence in ("t1", "t2") and int(path.stem.split("_")[0]) % 3 == 0):
            out.append((path.stem, f"SPIDER {sequence}", image))
    if (SECOND_CENTRE / "images").is_dir():
        for path in sorted((SECOND_CENTRE / "images").iterdir()):
            out.append((path.stem, "second centre T2", read_image(path)))
    return out


def judged(name: str, group: str, image) -> list[dict]:
    """The picture as stored and mirrored front to back: flagged or not, and the margin behind the call."""
    rows = []
    for mirrored, picture in ((False, image), (True, image.mirrored_front_to_back())):
        _, _, check = upright_picture(picture, None, *lowest_disc_check())
        analysed = check.upside_down if check.head_down else check.as_stored
        rows.append(
            {
                "name": name,
                "set": group,
                "stored_mirrored": mirrored,
                "flagged": check.looks_mirrored,
                "margin": float(analysed - check.mirrored),  # > 0: more confident as analysed
            }
        )
    return rows


def summarise(rows: list[dict]) -> dict:
    out = {}
    for group in [*sorted({r["set"] for r in rows}), "all"]:
        for mirrored in (False, True):
            sel = [r for r in rows if group in ("all", r["set"]) and r["stored_mirrored"] == mirrored]
            flagged = np.array([r["flagged"] for r in sel], float)
            patients = np.array([r["name"].split("_")[0] for r in sel])
            share, low, high = bootstrap_ci(flagged, patients)
            margins = np.array([r["margin"] for r in sel])
            out.setdefault(group, {})["mirrored" if mirrored else "right way round"] = {
                "pictures": len(sel),
                "flagged": int(flagged.sum()),
                "flagged_share": share,
                "flagged_share_ci95": [low, high],
                "margin_min_p5_p50": [float(margins.min()), *map(float, np.percentile(margins, [5, 50]))],
            }
    return out


def main() -> None:
    items = pictures()
    if not items:
        print(f"skipped: no pictures under {SHARED_DATA}")
        return
    rows = [row for name, group, image in items for row in judged(name, group, image)]
    results = {"mirror_margin": MIRROR_MARGIN, "sets": summarise(rows)}
    path = save("mirrored", {**results, "pictures": rows})

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Pictures flagged as stored mirrored (margin {MIRROR_MARGIN})")
    for column in ("set", "stored", "pictures", "flagged [95% CI]", "margin min / p5 / median"):
        table.add_column(column)
    for group, by_way in results["sets"].items():
        for way, r in by_way.items():
            table.add_row(
                group,
                way,
                str(r["pictures"]),
                f"{r['flagged']} ({100 * r['flagged_share']:.0f}% [{100 * r['flagged_share_ci95'][0]:.0f}, "
                f"{100 * r['flagged_share_ci95'][1]:.0f}])",
                " / ".join(f"{m:+.3f}" for m in r["margin_min_p5_p50"]),
            )
    Console().print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
