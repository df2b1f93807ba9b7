"""Odd but valid images get a clear refusal or review reasons, never a clean Summary.

Built here: noise, a constant image, a gradient, a photo-like colour picture (each given as an MRI slice), the
phantom volume with a saturated blob in the column, as a metal implant's artefact would show, the phantom scaled to a
child's size, a field of view that has slid up the spine so that no sacrum is in it, a transitional lumbosacral
vertebra (four or six lumbar vertebrae), a real slice cut to the thoracolumbar spine alone, and a spine with a cervical
spine's proportions and no sacrum in view. A real abdominal CT given as MRI is covered by the real-data check in
``bench/unlike_mri.py`` and ``tests/test_quality.py``.
"""

import dataclasses
import re

import numpy as np
import pytest
from PIL import Image

import lumbar
from lumbar.errors import InputError
from lumbar.findings import VertebraMeasurements
from lumbar.io.write import write_nifti
from lumbar.phantom import DiscSpec, make_phantom
from lumbar.tasks.quality import (
    CERVICAL_BODY_DEPTH_MM,
    CERVICAL_BODY_HEIGHT_MM,
    CHILD_BODY_HEIGHT_MM,
    median_body_depth_mm,
    median_body_height_mm,
    smaller_than_adult,
)


def _png(path, array, mode=None):
    Image.fromarray(array, mode).save(path)
    return path


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory, phantom):
    root = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(0)
    volume = phantom.image.array.astype(np.float32).copy()
    mid = volume.shape[0] // 2
    volume[mid - 1 : mid + 2, 140:160, 100:125] = volume.max() * 20  # a saturated blob, as around metal
    write_nifti(volume, phantom.image, root / "metal.nii.gz")
    colour = np.kron(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), np.ones((32, 32, 1), np.uint8))
    return {
        "noise": _png(root / "noise.png", rng.integers(0, 255, (256, 256), dtype=np.uint8)),
        "constant": _png(root / "constant.png", np.full((256, 256), 120, np.uint8)),
        "gradient": _png(root / "gradient.png", np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))),
        "photo": _png(root / "photo.png", colour, "RGB"),
        "metal": root / "metal.nii.gz",
    }


@pytest.mark.parametrize("name", ["noise", "constant", "gradient", "photo", "metal"])
def test_an_odd_image_is_refused_or_reviewed_never_summarised(odd_images, name):
    path = odd_images[name]
    try:
        result = lumbar.analyze(path, modality="MR", spacing_mm=1.0 if path.suffix == ".png" else None, report=False)
    except InputError as refusal:
        assert str(refusal)
        return
    findings = result.findings
    assert findings.needs_review, f"{name}: no review reason"
    assert findings.summary == () and findings.summary_withheld


def _body(height_mm: float | None, depth_mm: float | None = 30.0) -> VertebraMeasurements:
    return VertebraMeasurements(
        height_anterior_mm=height_mm,
        height_middle_mm=height_mm,
        height_posterior_mm=height_mm,
        depth_mm=depth_mm,
        wedge_ratio=1.0,
        biconcave_ratio=1.0,
        genant_grade=0,
        upper_endplate_deg=0.0,
    )


def test_body_size_is_the_median_of_the_lumbar_bodies_alone():
    bodies = {"T12": _body(5.0), "L1": _body(20.0), "L2": _body(26.0), "L3": _body(30.0), "L4": _body(None)}
    assert median_body_height_mm(bodies) == 26.0  # T12 and the unmeasured L4 do not count
    assert np.isnan(median_body_height_mm({"T11": _body(25.0)}))


def test_body_depth_is_the_median_of_the_lumbar_bodies_alone():
    bodies = {"T12": _body(25.0, 5.0), "L1": _body(25.0, 20.0), "L2": _body(25.0, 31.0), "L3": _body(25.0, None)}
    assert median_body_depth_mm(bodies) == 25.5  # T12 and the unmeasured L3 do not count
    assert np.isnan(median_body_depth_mm({"L1": _body(25.0, float("nan"))}))


def test_only_a_spine_smaller_than_every_adult_is_flagged():
    adult = {f"L{k}": _body(CHILD_BODY_HEIGHT_MM) for k in range(1, 6)}  # the bound itself is an adult's size
    child = {f"L{k}": _body(CHILD_BODY_HEIGHT_MM - 0.5) for k in range(1, 6)}
    assert smaller_than_adult(adult) is None
    assert "smaller than any adult" in smaller_than_adult(child)
    assert smaller_than_adult({}) is None  # nothing measured: nothing to say of its size


@pytest.mark.parametrize(
    ("height", "depth", "flagged"),
    [
        (CERVICAL_BODY_HEIGHT_MM - 0.5, CERVICAL_BODY_DEPTH_MM - 0.5, True),  # small both ways: a cervical spine's
        (CERVICAL_BODY_HEIGHT_MM + 0.5, CERVICAL_BODY_DEPTH_MM - 0.5, False),  # shallow alone: one axis's pixel size
        (CERVICAL_BODY_HEIGHT_MM - 0.5, CERVICAL_BODY_DEPTH_MM + 0.5, False),
        (CERVICAL_BODY_HEIGHT_MM - 0.5, None, False),  # depth not measured: the height bound alone
        (CERVICAL_BODY_HEIGHT_MM, CERVICAL_BODY_DEPTH_MM - 0.5, False),  # the bounds themselves are adult sizes
        (CERVICAL_BODY_HEIGHT_MM - 0.5, CERVICAL_BODY_DEPTH_MM, False),
    ],
)
def test_bodies_small_both_ways_are_flagged_as_perhaps_not_lumbar(height, depth, flagged):
    said = smaller_than_adult({f"L{k}": _body(height, depth) for k in range(1, 6)})
    assert (said is not None) is flagged
    if flagged:
        assert said.startswith(f"vertebral bodies named lumbar {height:.0f} mm tall and {depth:.0f} mm deep (medians)")
        assert "smaller both ways than any adult's lumbar" in said and "a cervical spine" in said


def test_a_short_spine_of_adult_depth_is_called_a_childs_or_mis_sized_not_cervical():
    short = smaller_than_adult({f"L{k}": _body(CHILD_BODY_HEIGHT_MM - 1, 30.0) for k in range(1, 6)})
    assert short.startswith("vertebral bodies named lumbar 13 mm tall and 30 mm deep (medians), smaller than any")
    assert "a child's spine, or a wrong pixel size" in short and "cervical" not in short
    heights_only = smaller_than_adult({f"L{k}": _body(CHILD_BODY_HEIGHT_MM - 1, None) for k in range(1, 6)})
    assert heights_only.startswith("vertebral bodies named lumbar 13 mm tall (medians)")


def _scaled(image, factor: float):
    """The same pixels, each ``factor`` times its size: every structure ``factor`` times smaller or larger in mm."""
    affine = image.affine.copy()
    affine[:3, :3] *= factor
    return dataclasses.replace(image, affine=affine, source="scaled")


def test_a_childs_spine_is_reviewed_and_never_summarised(phantom):
    """The phantom with its pixels 0.45 times their size: a spine the size of a small child's, segmented exactly as
    the adult one is (same pixels), so the size is the only thing that differs."""
    adult = lumbar.analyze(_scaled(phantom.image, 1.0), modality="MR", report=False).findings
    child = lumbar.analyze(_scaled(phantom.image, 0.45), modality="MR", report=False).findings
    assert not any("smaller than any adult" in reason for reason in adult.needs_review)
    assert any("smaller than any adult" in reason for reason in child.needs_review)
    assert child.summary == () and "smaller than any adult" in child.summary_withheld


def test_a_spine_with_a_cervical_spines_small_bodies_is_reviewed_and_never_summarised(phantom):
    """The phantom with its pixels 0.62 times their size head to feet and half front to back: bodies about
    16 mm tall and 18 mm deep, as a cervical spine's, yet taller than the child's bound, segmented exactly as the
    adult one is (same pixels). The network segments the cervical-proportioned phantom below too poorly to measure
    its bodies: the bound is shown here, on outlines it draws well."""
    affine = phantom.image.affine.copy()
    affine[:3, 1] *= 0.5  # anterior-posterior
    affine[:3, 2] *= 0.62  # superior-inferior
    small = lumbar.analyze(dataclasses.replace(phantom.image, affine=affine, source="small"), modality="MR").findings
    said = [reason for reason in small.needs_review if "smaller both ways than any adult's" in reason]
    assert len(said) == 1 and "a cervical spine" in said[0]
    height = float(re.search(r"named lumbar (\d+) mm tall", said[0]).group(1))
    assert CHILD_BODY_HEIGHT_MM <= height < CERVICAL_BODY_HEIGHT_MM  # not the child's bound: the cervical one
    assert small.summary == () and said[0] in small.summary_withheld


def test_a_field_of_view_without_the_sacrum_is_reviewed_and_never_summarised():
    """The field of view slid 110 mm down the spine (it ends within L4, 21 mm below L3/L4): no sacrum to count from,
    so every level name is in doubt. The rules on the label map cannot see it (the network leaves the sacrum and a
    lumbar body cut by the edge alike unlabelled); the lumbosacral check, reading the image, flags it."""
    image = make_phantom(shape=(7, 320, 288), cranial_shift_mm=-110, seed=3).image
    findings = lumbar.analyze(image, modality="MR", report=False).findings
    assert findings.summary == () and findings.summary_withheld
    assert any("does not look like L5/S1" in reason for reason in findings.needs_review)
    # That the check leaves a whole spine alone is measured on real slices, where it was trained: a drawn
    # phantom's lumbosacral junction is not anatomy (tests/test_lumbosacral.py, bench/lumbosacral.py).


@pytest.mark.parametrize("height_loss", [0.6, 0.9])
def test_a_transitional_lumbosacral_vertebra_is_reviewed_and_never_summarised(height_loss):
    """A sacralised L5 (four lumbar vertebrae) or a lumbarised S1 (six) shows on a sagittal view as a rudimentary
    disc between the lowest mobile vertebra and the sacrum: the phantom's L5/S1 at 40% or 10% of its height. Which
    of the two it is, and so every name, cannot be told from the lumbar view alone: the count must be checked."""
    image = make_phantom(shape=(7, 320, 288), discs={"L5": DiscSpec(height_loss=height_loss)}, seed=3).image
    findings = lumbar.analyze(image, modality="MR", report=False).findings
    assert any(reason.startswith("small lowest disc, not counted") for reason in findings.needs_review)
    assert findings.summary == () and findings.summary_withheld


def test_a_thoracolumbar_view_without_the_lower_lumbar_spine_is_reviewed_and_never_summarised():
    """A real T2 slice (SPIDER 100) cut 15 mm below L1/L2, so that the thoracolumbar junction is all it shows (the
    nearest to a thoracic-only field of view the data here allow): its lowest disc is no L5/S1, and it says so."""
    from pathlib import Path

    from conftest import shared

    from lumbar.io import read_image
    from lumbar.io.arrays import picture_as_slice

    whole = lumbar.analyze(
        read_image(shared("spider", "midsag", "100_t2.png"), spacing_mm=0.478, modality="MR"), report=False
    )
    assert [d.level for d in whole.findings.discs][:4] == ["L5/S1", "L4/L5", "L3/L4", "L2/L3"]
    l1l2 = next(lv for lv in whole.segmentation.levels.discs if lv.name == "L1/L2")
    rows = int((l1l2.centroid_mm[0] + 15.0) / whole.image.sagittal_spacing_mm()[0])
    cut = picture_as_slice(
        whole.image.sagittal_slices()[0][:rows].copy(), whole.image.sagittal_spacing_mm(), Path("cut.png"), "PNG"
    )
    findings = lumbar.analyze(cut, modality="MR", report=False).findings
    assert any("does not look like L5/S1" in reason for reason in findings.needs_review)
    assert findings.summary == () and findings.summary_withheld


def test_a_cervical_sized_spine_without_a_sacrum_is_reviewed_and_never_summarised():
    """No cervical image exists here, so the phantom is drawn with a cervical spine's proportions (bodies 15 mm tall
    and 16 mm deep, discs 5 mm, a 13 mm canal) and its field of view slid down so that no sacrum is in it: what a
    cervical or upper thoracic series shows the lumbar pipeline. Its lowest disc is no L5/S1, and it says so."""
    image = make_phantom(
        shape=(7, 320, 256),
        body_height_mm=15.0,
        body_depth_mm=16.0,
        body_width_mm=20.0,
        disc_height_mm=5.0,
        canal_ap_mm=13.0,
        cranial_shift_mm=-90,
        seed=3,
    ).image
    findings = lumbar.analyze(image, modality="MR", report=False).findings
    assert any("no sacrum in view" in reason for reason in findings.needs_review)
    assert any("does not look like L5/S1" in reason for reason in findings.needs_review)
    assert findings.summary == () and findings.summary_withheld
