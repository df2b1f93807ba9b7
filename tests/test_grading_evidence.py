"""Where the evidence maps lie: the crop's labels in the disc's own frame, the shares of a map's mass on the disc,
the vertebrae beside it and elsewhere (known answers), and on real SPIDER slices the maps of the shipped model sit
mostly on the disc and its neighbours (MISSION capability 4; issue: evidence maps that sit on the disc)."""

import numpy as np
import pytest
from scipy.ndimage import maximum_filter, minimum_filter

from lumbar.labels import CANAL_LABEL
from lumbar.tasks.disc_crops import CROP_SHAPE, CROP_WIDTH, crop_disc, crop_labels
from lumbar.tasks.grading import crop_regions, evidence_share, hottest_region
from lumbar.tasks.levels import Level

DISC, ABOVE, BELOW, CANAL = 5, 4, 6, CANAL_LABEL


def column(tilt_deg: float = 0.0, spacing=(1.0, 1.0)) -> tuple[np.ndarray, Level]:
    """A disc 40 mm front to back and 8 mm high between two vertebrae, tilted by ``tilt_deg``, canal behind."""
    rows, cols = np.mgrid[0 : round(200 / spacing[0]), 0 : round(200 / spacing[1])].astype(float)
    rows, cols = rows * spacing[0], cols * spacing[1]
    a = np.deg2rad(tilt_deg)
    axis = np.array([-np.cos(a), np.sin(a)])  # toward the head: up the rows
    across = np.array([axis[1], -axis[0]])
    if across[1] < 0:
        across = -across
    centre = np.array([100.0, 100.0])
    u = (rows - centre[0]) * axis[0] + (cols - centre[1]) * axis[1]  # along the spine, + toward the head
    v = (rows - centre[0]) * across[0] + (cols - centre[1]) * across[1]  # front to back, + posterior
    labels = np.zeros(rows.shape, np.int32)
    inside = np.abs(v) <= 20
    labels[inside & (u > 4) & (u <= 30)] = ABOVE
    labels[inside & (u < -4) & (u >= -30)] = BELOW
    labels[inside & (np.abs(u) <= 4)] = DISC
    labels[(v > 22) & (v < 34) & (np.abs(u) <= 40)] = CANAL
    level = Level("L4/L5", DISC, "disc", tuple(centre), int((labels == DISC).sum()), tuple(axis))
    return labels, level


@pytest.mark.parametrize("tilt", [0.0, 17.0, -25.0])
def test_crop_labels_share_the_crop_frame(tilt):
    """The labels under the crop are those the grey crop was sampled from, pixel for pixel, at any tilt: the
    disc is a horizontal band in the middle, the vertebra above on top, the canal at the posterior (right) edge."""
    labels, level = column(tilt)
    grey = crop_disc(labels.astype(np.float32), labels, level, (1.0, 1.0))
    crop, labelled = grey.pixels, crop_labels(labels, level, (1.0, 1.0))
    under = labelled.pixels
    assert labelled.mm_per_pixel == grey.mm_per_pixel and labelled.level == level.name
    assert under.shape == CROP_SHAPE and under.dtype == labels.dtype
    interior = maximum_filter(under, 5) == minimum_filter(under, 5)  # over a source pixel from any boundary
    assert np.allclose(crop[interior], under[interior], atol=1e-4)
    mid_row, mid_col = CROP_SHAPE[0] // 2, CROP_SHAPE[1] // 2
    assert under[mid_row, mid_col] == DISC
    assert under[2, mid_col] == ABOVE and under[-3, mid_col] == BELOW
    assert CANAL in under[mid_row, -14:] and CANAL not in under[mid_row, :14]


def test_crop_labels_on_anisotropic_pixels():
    """0.5 x 1 mm pixels: the same anatomy in millimetres gives the same crop labels."""
    square, level = column(0.0)
    fine, _ = column(0.0, spacing=(0.5, 1.0))
    fine_level = Level("L4/L5", DISC, "disc", (100.0, 100.0), 0, level.axis)
    a = crop_labels(square, level, (1.0, 1.0)).pixels
    b = crop_labels(fine, fine_level, (0.5, 1.0)).pixels
    assert (a == b).mean() > 0.97


def test_crop_labels_none_when_the_disc_is_not_on_the_slice():
    labels, level = column()
    assert crop_labels(np.zeros_like(labels), level, (1.0, 1.0)) is None


def test_evidence_shares_known_answers():
    labels, level = column()
    labelled = crop_labels(labels, level, (1.0, 1.0))
    under = labelled.pixels
    assert labelled.mm_per_pixel == pytest.approx(CROP_WIDTH * 40 / CROP_SHAPE[1])  # the disc is 40 mm long
    regions = crop_regions(under, DISC, {ABOVE, BELOW}, labelled.mm_per_pixel)
    assert sum(m.astype(int) for m in regions.values()).max() == 1  # each pixel in one region
    canal = (under == CANAL).astype(float)
    assert evidence_share(canal, regions) == {"disc": 0.0, "vertebrae": 0.0, "canal": 1.0, "elsewhere": 0.0}
    assert evidence_share((under == DISC).astype(float), regions)["disc"] == 1.0
    # Half the mass on the vertebra above (far from the disc), half in the canal.
    far_above = (under == ABOVE) & (np.arange(CROP_SHAPE[0])[:, None] < 8)
    share = evidence_share(far_above / far_above.sum() + canal / canal.sum(), regions)
    assert share == pytest.approx({"disc": 0.0, "vertebrae": 0.5, "canal": 0.5, "elsewhere": 0.0})
    # Spread evenly, a map's shares are the regions' areas.
    even = evidence_share(np.ones(CROP_SHAPE), regions)
    assert sum(even.values()) == pytest.approx(1.0)
    assert even["vertebrae"] > even["disc"] > even["canal"] > 0 and even["elsewhere"] > 0
    assert even["disc"] == pytest.approx(regions["disc"].mean())


def test_hottest_region_is_where_the_peak_lies():
    labels, level = column()
    under = crop_labels(labels, level, (1.0, 1.0)).pixels
    regions = crop_regions(under, DISC, {ABOVE, BELOW}, 0.67)
    heat = np.full(CROP_SHAPE, 0.1)
    row, col = CROP_SHAPE[0] // 2, CROP_SHAPE[1] - 10
    assert under[row, col] == CANAL
    heat[row, col] = 1.0
    assert hottest_region(heat, regions) == "canal"
    heat[2, CROP_SHAPE[1] // 2] = 2.0
    assert hottest_region(heat, regions) == "vertebrae"
    assert hottest_region(np.zeros(CROP_SHAPE), regions) == "none"


def test_the_disc_region_has_a_margin():
    """A bulge's edge lies just outside the disc as segmented: mass within the margin counts as the disc's, mass
    beyond it does not; the margin is in millimetres, whatever the crop's pixel size."""
    under = np.zeros((20, 20), int)
    under[8:12, 4:16] = DISC
    heat = np.zeros((20, 20))
    heat[13, 10] = 1.0  # 2 pixels below the disc's edge
    for mm_per_pixel, margin_mm, on_disc in ((1.0, 2.0, 1.0), (1.0, 1.5, 0.0), (0.5, 2.0, 1.0), (2.0, 2.0, 0.0)):
        regions = crop_regions(under, DISC, set(), mm_per_pixel, margin_mm)
        assert evidence_share(heat, regions)["disc"] == on_disc


def test_an_empty_map_has_no_shares():
    regions = crop_regions(np.zeros((10, 10), int), DISC, set(), 1.0)
    assert regions["elsewhere"].all()
    assert all(np.isnan(v) for v in evidence_share(np.zeros((10, 10)), regions).values())


def test_shipped_model_evidence_sits_on_the_disc_and_its_neighbours():
    """On real mid-sagittal SPIDER slices (T1 and T2), the shipped grading model's maps put most of their mass on
    the disc (2 mm margin) and the vertebrae beside it, and far more on the disc than its area would give.
    (The model has seen these patients: this checks where it looks, not how well it grades.)"""
    from conftest import shared

    from lumbar.io import read_image
    from lumbar.io.spider import read_overview_spacing
    from lumbar.models.registry import load_model
    from lumbar.pipelines.mr_sagittal import evidence_maps, evidence_regions, grade_series, segment, series_grades

    spider = shared("spider")
    spacing = read_overview_spacing(spider / "overview.csv")
    model = load_model("grading")
    mass, area = [], []
    for name in ("100_t2", "104_t1", "105_t2"):
        seg = segment(read_image(spider / "midsag" / f"{name}.png", spacing_mm=spacing[name][0]))
        grading = grade_series(seg, model)
        by_level = evidence_regions(seg, list(grading.crops))
        maps = evidence_maps(grading, series_grades(grading, model), model)
        assert len(maps) >= 5 and set(by_level) == set(maps)
        for level, by_grade in maps.items():
            regions = by_level[level]
            area.append(regions["disc"].mean())
            for heat in by_grade.values():
                share = evidence_share(heat, regions)
                mass.append((share["disc"], share["disc"] + share["vertebrae"]))
    disc_mass, near = np.nanmean(mass, axis=0)
    assert near > 0.55, f"only {near:.2f} of the evidence lies on the disc and the vertebrae beside it"
    assert disc_mass > 1.5 * np.mean(area), f"disc share {disc_mass:.2f} vs its area {np.mean(area):.2f}"
