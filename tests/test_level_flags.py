"""Level labelling's review flags name the right place and fire at the right count.

The phantom shows seven discs, L5/S1 (disc 1 from the bottom) up to T11/T12 (disc 7). Discs are removed by
painting them as bone, so the chain keeps its spacing and only the removed disc is missing.
"""

import pytest

from lumbar.labels import Structure, disc_label
from lumbar.tasks.levels import label_levels

SPACING = (4.0, 1.0, 1.0)


def _without(phantom_semantic, phantom_instances, *uppers: str) -> list[str]:
    """The flags of the phantom with the discs below the vertebrae ``uppers`` painted as bone."""
    classes = phantom_semantic.copy()
    for upper in uppers:
        classes[phantom_instances == disc_label(upper)] = Structure.VERTEBRA
    return label_levels(classes, SPACING).flags


@pytest.mark.parametrize(
    "missing, above_disc, near",
    [("L4", 1, "L4"), ("L2", 3, "L2"), ("T12", 5, "T12")],  # L4/L5 (disc 2), L2/L3 (disc 4), T12/L1 (disc 6)
)
def test_a_gap_flag_names_the_vertebra_above_the_missing_disc(
    phantom_semantic, phantom_instances, missing, above_disc, near
):
    """With the disc below ``missing`` gone, the gap lies above disc ``above_disc`` from the bottom; the chain is
    otherwise regular, so the missed disc is counted, and the vertebra whose names rest on that count is ``missing``
    itself (counted up from the sacrum)."""
    gaps = [flag for flag in _without(phantom_semantic, phantom_instances, missing) if "gap" in flag]
    assert len(gaps) == 1
    assert f"above disc {above_disc} from the bottom" in gaps[0]
    assert gaps[0].endswith(
        f"counted as 1 missed disc, so {near} and every name above rest on that count; check it on the image"
    )


def test_no_gap_is_flagged_on_a_complete_chain(phantom_semantic):
    assert not any("gap" in flag for flag in label_levels(phantom_semantic, SPACING).flags)


def test_five_discs_are_a_full_lumbar_spine_and_four_are_too_few(phantom_semantic, phantom_instances):
    """Removing the top discs leaves L5/S1..L1/L2 (five: not flagged), then L5/S1..L2/L3 (four: flagged)."""
    five = _without(phantom_semantic, phantom_instances, "T11", "T12")
    assert not any("discs found" in flag for flag in five)
    four = _without(phantom_semantic, phantom_instances, "T11", "T12", "L1")
    assert [flag for flag in four if "discs found" in flag] == [
        "only 4 discs found; a full lumbar spine shows 5 (L1/L2 to L5/S1)"
    ]
