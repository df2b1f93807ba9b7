"""Disc crops are joined to gradings by level counted from the bottom, and coverage counts every miss."""

import numpy as np
from PIL import Image

from lumbar.datasets.grading import build_samples, level_of_ivd, read_gradings
from lumbar.tasks.disc_crops import CROP_SHAPE, crop_disc
from lumbar.tasks.levels import label_levels


def test_ivd_labels_count_up_from_l5s1():
    assert [level_of_ivd(k) for k in (1, 2, 5, 6)] == ["L5/S1", "L4/L5", "L1/L2", "T12/L1"]


def test_crop_is_straightened_and_centred_on_the_disc(phantom, phantom_semantic):
    result = label_levels(phantom_semantic, (4.0, 1.0, 1.0))
    mid = phantom_semantic.shape[0] // 2
    truth = phantom.image.with_array(phantom.instances).sagittal_slices()[mid]
    for level in result.discs:
        crop = crop_disc(truth.astype(np.float32), result.instances[mid], level, (1.0, 1.0))
        assert crop.pixels.shape == CROP_SHAPE
        centre = crop.pixels[CROP_SHAPE[0] // 2 - 1 : CROP_SHAPE[0] // 2 + 2, CROP_SHAPE[1] // 2]
        assert (centre == level.label).all()  # the disc sits in the middle of its crop, whatever its tilt


def test_gradings_join_and_coverage(tmp_path, phantom):
    mid = phantom.image.sagittal_slices()[3]
    Image.fromarray(np.clip(mid / np.percentile(mid, 99.5) * 255, 0, 255).astype(np.uint8)).save(tmp_path / "7_t2.png")
    header = (
        "Patient,IVD label,Modic,UP endplate,LOW endplate,Spondylolisthesis,Disc herniation,Disc narrowing,"
        "Disc bulging,Pfirrman grade\n"
    )
    rows = "".join(f"7,{k},0,0,0,0,{int(k == 2)},0,0,{2 + (k == 2)}\n" for k in range(1, 6))
    rows += "7,12,0,0,0,0,0,0,0,1\n"  # a disc far above the image: must be counted as not matched
    (tmp_path / "g.csv").write_text(header + rows)
    gradings = read_gradings(tmp_path / "g.csv")
    samples, coverage = build_samples([tmp_path / "7_t2.png"], gradings, {"7_t2": (1.0, 1.0)})
    assert coverage.graded["t2"] == 6 and len(coverage.unmatched) >= 1
    assert coverage.matched["t2"] == len(samples)
    l4l5 = next((s for s in samples if s.level == "L4/L5"), None)
    if l4l5 is not None:
        assert l4l5.grades["herniation"] == 1 and l4l5.grades["pfirrmann"] == 3
