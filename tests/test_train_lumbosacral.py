"""Training the lumbosacral check: examples cut alike for both classes, a split by patient, the operating point, and
a tiny run from cached phantom slices that exports, loads, runs and resumes."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from lumbar.labels import Structure
from lumbar.phantom import make_phantom
from lumbar.tasks.levels import find_discs
from lumbar.train.lumbosacral import (
    Case,
    LumbosacralConfig,
    cut_image,
    draw_batch,
    fixed_examples,
    load_cases,
    operating_point,
    save_cases,
    split_cases,
    train_lumbosacral,
)


def _case(seed: int, sequence: str = "t2") -> Case:
    """A phantom's mid-sagittal slice and its true discs (caudal first), ending 20 mm below L5/S1 as SPIDER's do."""
    phantom = make_phantom(shape=(3, 256, 224), seed=seed)
    image = phantom.image
    mid = image.sagittal_slices().shape[0] // 2
    classes = image.with_array(phantom.semantic(include_sacrum=False)).sagittal_slices()[mid][None]
    pixel = image.sagittal_spacing_mm()
    discs = find_discs(classes, (1.0, *pixel), 0)
    assert len(discs) >= 4 and np.any(classes == Structure.DISC)
    bottoms = np.array([d.voxels[:, 1].max() * pixel[0] for d in discs])
    rows = int((bottoms[0] + 20.0) / pixel[0])  # the slice ends 20 mm below L5/S1, as SPIDER's do
    return Case(
        f"{seed}_{sequence}",
        str(seed),
        sequence,
        image.sagittal_slices()[mid][:rows].astype(np.float32),
        pixel,
        np.array([d.centroid for d in discs]),
        bottoms,
    )


@pytest.fixture(scope="module")
def cases():
    return [_case(seed, sequence) for seed in range(1, 7) for sequence in ("t1", "t2")]


def test_a_cut_ends_the_given_depth_below_the_disc(cases):
    case = cases[0]
    image = cut_image(case, 1, 10.0)
    assert image.shape[0] == int(np.ceil((case.bottoms[1] + 10.0) / case.spacing[0]))
    assert cut_image(case, 0, None) is case.image
    assert cut_image(case, 0, 10_000.0).shape == case.image.shape


def test_batches_are_half_l5s1_and_reach_no_farther_below_the_disc(cases):
    """Every other example is L5/S1, and the L4/L5 and L3/L4 examples never show more of the image below their disc
    than the L5/S1 ones can (the rows of the patch's inside-the-image mask below the disc, down its middle column),
    nor more on average (within 2 patch pixels, 5 mm). Else a long view below a disc would mean "not L5/S1", and a
    field of view reaching the pelvis would be flagged: cut up to 45 mm below their disc regardless of where the slice
    ends, 43% of them would reach the patch's lower edge, 40 mm below the disc, against none of the L5/S1 ones."""
    from lumbar.preprocess import LUMBOSACRAL_ABOVE_MM, LUMBOSACRAL_PIXEL_MM
    from lumbar.preprocess import LUMBOSACRAL_PATCH_PX as PX

    patches, labels = draw_batch(cases, 400, np.random.default_rng(0))
    assert patches.shape == (400, 2, PX, PX) and labels.tolist() == [1.0, 0.0] * 200
    disc_row = round((PX - 1) / 2 + LUMBOSACRAL_ABOVE_MM / LUMBOSACRAL_PIXEL_MM)
    reach = patches[:, 1, disc_row:, PX // 2].sum(1)
    assert reach[labels == 0].max() <= reach[labels == 1].max() + 1
    assert abs(reach[labels == 1].mean() - reach[labels == 0].mean()) < 2.0
    assert np.mean(reach[labels == 0] == PX - disc_row) < 0.02


def test_the_split_keeps_patients_apart_and_holds_a_sequence_out(cases):
    cfg = LumbosacralConfig(data="", out="", test_fraction=0.34, val_fraction=0.17)
    split = split_cases(cases, cfg)
    patients = {part: {c.patient for c in items} for part, items in split.items()}
    assert len(patients["test"]) == 2 and len(patients["val"]) == 1 and len(patients["train"]) == 3
    assert not (patients["test"] & patients["train"]) and not (patients["val"] & patients["train"])
    assert not (patients["test"] & patients["val"])
    held = split_cases(
        cases, LumbosacralConfig(data="", out="", test_fraction=0.34, val_fraction=0.17, hold_out_sequence="t1")
    )
    assert {c.sequence for c in held["test"]} == {"t1"}
    assert {c.sequence for c in held["train"] + held["val"]} == {"t2"}
    assert {c.patient for c in held["test"]} == patients["test"]


def test_the_evaluation_set_has_every_kind_once_per_slice(cases):
    _, labels, patients, kinds = fixed_examples(cases[:2])
    assert len(kinds) == 18 and labels.sum() == 8  # L5/S1 four ways, the others five
    assert kinds.count("L4/L5 as acquired") == 2 and labels[kinds.index("L4/L5 as acquired")] == 0
    assert set(patients) == {cases[0].patient}


def test_the_operating_point_flags_at_most_the_allowed_share_of_l5s1():
    """20 true L5/S1 at 0.05, 0.10, ..., 1.00: 5% may fall below the threshold, so it is the second lowest."""
    probabilities = np.r_[np.arange(1, 21) / 20, [0.01, 0.5]]
    labels = np.r_[np.ones(20), [0, 0]]
    threshold = operating_point(probabilities, labels, 0.05)
    assert threshold == pytest.approx(0.10)
    assert np.mean(probabilities[labels == 1] < threshold) == pytest.approx(0.05)


def test_a_tiny_run_exports_a_model_that_loads_runs_and_resumes(cases, tmp_path):
    from lumbar.models.registry import load_model
    from lumbar.tasks.lumbosacral import lumbosacral_probability

    save_cases(cases, tmp_path / "cases.npz")
    reloaded = load_cases(tmp_path / "cases.npz")
    assert [c.series for c in reloaded] == [c.series for c in cases]
    assert np.array_equal(reloaded[3].image, cases[3].image) and reloaded[3].spacing == cases[3].spacing
    cfg = LumbosacralConfig(
        data="unused", out=str(tmp_path), steps=4, batch_size=8, val_every=2, test_fraction=0.34, val_fraction=0.17
    )
    path = train_lumbosacral(cfg)
    meta = json.loads((tmp_path / "lumbosacral.json").read_text())
    assert meta["trained_steps"] == 4 and 0.0 <= meta["threshold"] <= 1.0
    assert set(meta["test"]["by_kind"]) >= {"L5/S1 as acquired", "L3/L4 cut 8 mm"}
    model = load_model("lumbosacral", str(path))
    p = lumbosacral_probability(model, cases[0].image, cases[0].spacing, tuple(cases[0].centres[0]))
    assert 0.0 < p < 1.0
    cfg.steps = 6
    train_lumbosacral(cfg)
    log = (tmp_path / "train.log").read_text()
    assert "resumed at step 4" in log
    assert json.loads((tmp_path / "lumbosacral.json").read_text())["trained_steps"] == 6
