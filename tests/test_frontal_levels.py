"""Frontal level names from the level network: the chain's alignment with known answers, the training labels of
candidates, the pipeline with a stand-in level network, training and the shipped network on real films."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax
from test_radiograph import KnownOutput, image_bodies, radiograph_file

from lumbar.labels import FRONTAL_LEVELS
from lumbar.pipelines import xr_frontal
from lumbar.preprocess import Letterbox
from lumbar.tasks.corners import FoundVertebra
from lumbar.tasks.frontal_levels import (
    ABOVE,
    BELOW,
    BETWEEN,
    BOTTOM,
    NONE,
    TOP,
    align_levels,
    level_class,
    level_log_probs,
)

A, T, B, L, S, N = ABOVE, TOP, BETWEEN, BOTTOM, BELOW, NONE  # above, T1, between, L5, below, no body


def sure(classes: list[int], p: float = 0.9) -> np.ndarray:
    """Log-probabilities of candidates each of the given class with probability ``p``, the rest spread evenly."""
    out = np.full((len(classes), 6), np.log((1 - p) / 5))
    out[np.arange(len(classes)), classes] = np.log(p)
    return out


def test_level_classes_of_the_indices():
    assert [level_class(k) for k in (-2, -1, 0, 1, 8, 15, 16, 17, 30)] == [A, A, T, B, B, B, L, S, S]
    assert [level_class(k, count=3) for k in (-1, 0, 1, 2, 3)] == [A, T, B, L, S]


def test_a_full_chain_between_a_cervical_and_a_sacral_body_is_named_t1_to_l5():
    assert align_levels(sure([A, A, T] + [B] * 15 + [L, S, S])) == [None, None, *range(17), None, None]


def test_names_hold_from_t1_down_when_l5_was_not_found_and_from_l5_up_when_t1_was_not():
    assert align_levels(sure([A, T] + [B] * 14)) == [None, *range(15)]  # T1 ... L3: a film cut above L4
    assert align_levels(sure([B] * 12 + [L, S])) == [*range(4, 17), None]  # T5 ... L5


def test_a_candidate_that_is_no_body_is_skipped_and_the_count_goes_on_past_it():
    classes = [T] + [B] * 7 + [N] + [B] * 8 + [L]
    assert align_levels(sure(classes)) == [*range(8), None, *range(8, 17)]


def test_a_body_missed_between_t1_and_l5_leaves_its_level_unnamed_at_the_cost_of_one_missed_level():
    named = align_levels(sure([T] + [B] * 14 + [L]))  # 16 candidates between two sure anchors
    assert named[0] == 0 and named[-1] == 16 and sorted(set(named)) == named and len(named) == 16
    # the cost is what the chain pays: each level passed over costs MISSED_LOG_PROB, so a weaker anchor loses
    weak_l5 = sure([T] + [B] * 14 + [L])
    weak_l5[-1] = np.log([0.05, 0.05, 0.80, 0.05, 0.025, 0.025])  # rather a body between than L5: L4
    assert align_levels(weak_l5)[-1] == 15


def test_a_candidate_above_the_spine_found_inside_it_cannot_break_the_chain():
    classes = [T] + [B] * 5 + [A] + [B] * 9 + [L]  # a body read as cervical between T6 and T7
    named = align_levels(sure(classes, p=0.6))
    assert named[0] == 0 and named[-1] == 16 and all(k is not None for k in named)


def test_levels_passed_over_after_a_body_above_the_spine_are_charged():
    # a body a little more likely between than T1: after C7 it is T1 (naming it T2 passes T1 over, at a cost) ...
    unsure = np.log([0.0001, 0.45, 0.5496, 0.0001, 0.0001, 0.0001])
    after_c7 = np.concatenate([sure([A]), unsure[None], sure([B, B])])
    assert align_levels(after_c7) == [None, 0, 1, 2]
    assert align_levels(after_c7, missed=0.0) == [None, 1, 2, 3]  # ... unless missing a level costs nothing
    # ... and at the film's top edge, where nothing lies above, the chain may start at T2 for free
    assert align_levels(np.concatenate([unsure[None], sure([B, B])])) == [1, 2, 3]


def test_no_candidates_name_nothing_and_one_candidate_is_named():
    assert align_levels(np.zeros((0, 6))) == []
    assert align_levels(sure([L])) == [16]
    assert align_levels(sure([N, N])) != [None, None]  # a chain names at least one candidate


def test_log_probabilities_average_the_window_read_as_it_lies_and_flipped():
    film = np.zeros((400, 200), np.float32)
    outline = np.array([[-15.0, -12.0], [15.0, -12.0], [15.0, 12.0], [-15.0, 12.0]])
    centres = [np.array([100.0, 50.0 + 40 * k]) for k in range(3)]
    bodies = [FoundVertebra(c, c + outline, 0.9) for c in centres]
    logits = np.arange(36, dtype=np.float64).reshape(6, 6) % 5

    def stand_in(windows: np.ndarray) -> np.ndarray:
        assert windows.shape == (6, 1, 96, 96)
        return logits

    expected = (log_softmax(logits[:3], axis=1) + log_softmax(logits[3:], axis=1)) / 2
    np.testing.assert_allclose(level_log_probs(film, bodies, stand_in), expected)
    np.testing.assert_allclose(np.exp(log_softmax(logits, axis=1)).sum(1), 1.0)


def test_training_labels_candidates_by_the_experts_bodies():
    from lumbar.train.radiograph_levels import UNLABELLED as U
    from lumbar.train.radiograph_levels import candidate_classes

    truth = image_bodies(17)
    centres = truth.mean(1)
    step = centres[1] - centres[0]

    def at(point: np.ndarray, score: float) -> FoundVertebra:
        return FoundVertebra(np.asarray(point, float), np.zeros((4, 2)), score)

    candidates = [
        at(centres[0] - step, 0.5),  # C7
        at(centres[0] + [2, 3], 0.9),  # T1
        at(centres[4] + [0, 4], 0.3),  # a weaker second peak on T5: left out
        at(centres[4], 0.8),  # T5
        at(centres[8] + [120, 0], 0.2),  # beside T9, far off the body: no body
        at(centres[10] + [20, 0], 0.2),  # 20 px beside T11 (bodies 24 px high, 52 apart): too near to call, left out
        at(centres[16], 0.4),  # L5
        at(centres[16] + step, 0.6),  # S1
        at(centres[16] + step + [80, 0], 0.3),  # below L5 but beside the spine's line (the pelvis): no body
    ]
    assert candidate_classes(truth, candidates).tolist() == [A, T, U, B, N, U, L, S, N]


class LevelStandIn:
    """Stands in for the level network: classes by the candidate's place in the batch (both readings alike)."""

    version = "levels@0steps"
    sha256 = "levels-digest"

    def __init__(self, classes: list[int]):
        self.classes = classes
        self.meta: dict = {}  # no record: the chain's steps are not held to a spine's

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        n = len(windows) // 2
        assert n == len(self.classes)
        return np.tile(np.log(np.clip(np.eye(6)[self.classes], 0.01, 1)), (2, 1))


def test_the_pipeline_names_the_bodies_the_level_network_puts_between_t1_and_l5(tmp_path, monkeypatch):
    from lumbar.io import read_image

    image = read_image(radiograph_file(tmp_path, shape=(1200, 420)), modality="XR")
    bodies = image_bodies(19, shape=(1200, 420))  # C7, T1 ... L5, S1
    model = KnownOutput(Letterbox.fit(image.sagittal_slices()[0].shape).to_box(bodies))
    levels = LevelStandIn([A, T] + [B] * 15 + [L, S])
    monkeypatch.setattr(xr_frontal, "radiograph_model", lambda: model)
    monkeypatch.setattr(xr_frontal, "corner_model", lambda: None)
    monkeypatch.setattr(xr_frontal, "level_model", lambda: levels)
    f = xr_frontal.analyze(image).findings
    assert [v.level for v in f.vertebrae] == list(FRONTAL_LEVELS)
    np.testing.assert_allclose([v.corners_px for v in f.vertebrae], bodies[1:18], atol=0.05)
    assert f.models == {"radiograph": "known@0steps", "radiograph_levels": "levels@0steps"}
    assert not any("of the 17 vertebrae" in r for r in f.needs_review)
    reading = xr_frontal.read_film(image.sagittal_slices()[0])
    assert reading.weights_sha256 == xr_frontal.weights_digest([model, levels])
    counted = xr_frontal.read_film(image.sagittal_slices()[0], by_levels=False)  # the 17 strongest, counted
    assert len(counted.found) == 17 and "radiograph_levels" not in counted.models


def test_a_film_with_fewer_named_bodies_says_which_were_named(tmp_path, monkeypatch):
    from lumbar.io import read_image

    image = read_image(radiograph_file(tmp_path), modality="XR")
    bodies = image_bodies(14)
    model = KnownOutput(Letterbox.fit(image.sagittal_slices()[0].shape).to_box(bodies))
    monkeypatch.setattr(xr_frontal, "radiograph_model", lambda: model)
    monkeypatch.setattr(xr_frontal, "corner_model", lambda: None)
    monkeypatch.setattr(xr_frontal, "level_model", lambda: LevelStandIn([A, T] + [B] * 12))
    f = xr_frontal.analyze(image).findings
    assert [v.level for v in f.vertebrae] == list(FRONTAL_LEVELS[:13])
    assert "named 13 of the 17 vertebrae T1-L5 a full frontal film shows (T1 to L1)" in f.needs_review
    assert f.summary == ()


def test_level_training_runs_and_resumes_on_the_real_films(tmp_path):
    from conftest import shared

    from lumbar.train.radiograph_levels import LevelConfig, train_levels

    data = str(shared("xray_ap"))
    cfg = LevelConfig(data=data, out=str(tmp_path), epochs=1, steps_per_epoch=2, batch_size=4, limit=4)
    train_levels(cfg)
    cfg.epochs = 2
    path = train_levels(cfg)
    assert "resumed after epoch 1" in (tmp_path / "train.log").read_text() and path.name == "radiograph_levels.onnx"
    record = json.loads((tmp_path / "radiograph_levels.json").read_text())
    assert record["trained_epochs"] == 2 and record["validation"]["n_images"] == 2
    assert record["classes"] == ["above", "T1", "between", "L5", "below", "none"]
    assert not set(record["split_groups"]["training"]) & set(record["split_groups"]["validation"])


@pytest.mark.parametrize("wanted", [A, T, B, L, S])
def test_a_placed_training_window_is_centred_where_its_class_lies(wanted):
    from lumbar.train.radiograph_levels import placed_point

    truth = image_bodies(17)
    centres = truth.mean(1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        point, _angle = placed_point(truth, wanted, rng)
        along = (point - centres[0]) @ (centres[-1] - centres[0]) / np.linalg.norm(centres[-1] - centres[0]) ** 2
        index = along * 16  # in levels, T1 = 0
        expected = {A: index < -0.9, T: abs(index) < 0.3, B: 0.7 < index < 15.3, L: abs(index - 16) < 0.3}
        assert expected.get(wanted, index > 16.9)


def test_a_placed_window_of_no_body_lies_off_every_body():
    from lumbar.train.radiograph_levels import placed_point

    truth = image_bodies(17)
    centres = truth.mean(1)
    step = float(np.median(np.linalg.norm(np.diff(centres, axis=0), axis=1)))
    rng = np.random.default_rng(1)
    nearest = [np.linalg.norm(centres - placed_point(truth, N, rng)[0], axis=1).min() / step for _ in range(40)]
    assert min(nearest) > 0.45 and max(nearest) < 2.6
    assert any(d < 0.55 for d in nearest) and any(d > 0.75 for d in nearest)  # on discs and beside the column


def test_a_faint_peak_weighs_less_as_a_body_and_not_at_all_as_no_body():
    from lumbar.tasks.frontal_levels import with_detection

    log_probs = np.log(np.full((2, 6), 1 / 6))
    out = with_detection(log_probs, np.array([1.0, 0.04]), weight=0.5)
    np.testing.assert_allclose(out[0], log_probs[0])  # a sure peak: as the level network said
    np.testing.assert_allclose(out[1, :5], np.log(1 / 6) + 0.5 * np.log(0.04))  # about 1.6 nats less for each body
    assert out[1, N] == log_probs[1, N]
    # between a faint peak and a strong one equally likely T1, the strong one is named T1
    assert align_levels(with_detection(sure([T, T, B, B]), np.array([0.1, 0.9, 0.8, 0.8]))) == [None, 0, 1, 2]


def chain_score(log_probs: np.ndarray, labels: list, count: int, missed: float) -> float:
    """The docstring's score of one labelling: per candidate "none", "above", "below" or a level index."""
    column = {"none": N, "above": A, "below": S}
    total = sum(
        row[column[x]] if isinstance(x, str) else row[level_class(x, count)] for row, x in zip(log_probs, labels)
    )
    levels = [x for x in labels if not isinstance(x, str)]
    total += missed * sum(b - a - 1 for a, b in itertools.pairwise(levels))
    total += missed * levels[0] if "above" in labels else 0.0
    total += missed * (count - 1 - levels[-1]) if "below" in labels else 0.0
    return total


def valid(labels: tuple) -> bool:
    levels = [k for k, x in enumerate(labels) if not isinstance(x, str)]
    if not levels or any(b <= a for a, b in itertools.pairwise([labels[k] for k in levels])):
        return False
    above = [k for k, x in enumerate(labels) if x == "above"]
    below = [k for k, x in enumerate(labels) if x == "below"]
    return all(k < levels[0] for k in above) and all(k > levels[-1] for k in below)


def best_completion(log_probs: np.ndarray, named: list, count: int, missed: float) -> float:
    """The best score of any labelling that names the candidates as ``named`` does."""
    choices = [["none", "above", "below"] if k is None else [k] for k in named]
    return max(
        chain_score(log_probs, list(labels), count, missed) for labels in itertools.product(*choices) if valid(labels)
    )


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda n: st.lists(st.lists(st.integers(-6, 0), min_size=6, max_size=6), min_size=n, max_size=n)
    ),
    st.integers(2, 4),
)
def test_the_chain_is_the_best_labelling_found_by_trying_them_all(rows, count):
    log_probs = np.array(rows, np.float64)  # whole numbers: many labellings tie
    missed = -1.5
    named = align_levels(log_probs, count=count, missed=missed)
    options = ["none", "above", "below", *range(count)]
    best = max(
        chain_score(log_probs, list(labels), count, missed)
        for labels in itertools.product(options, repeat=len(rows))
        if valid(labels)
    )
    assert best_completion(log_probs, named, count, missed) == pytest.approx(best)


def test_each_candidates_window_is_centred_on_it_and_scaled_by_the_spines_step():
    film = np.zeros((700, 300), np.float32)
    centres = [np.array([150.0, 100.0 + 40 * k]) for k in range(5)]
    for c in centres:
        film[int(c[1]) - 5 : int(c[1]) + 6, int(c[0]) - 5 : int(c[0]) + 6] = 1.0  # a bright dot on each body
    outline = np.array([[-15.0, -12.0], [15.0, -12.0], [15.0, 12.0], [-15.0, 12.0]])
    bodies = [FoundVertebra(c, c + outline, 0.9) for c in centres]
    middle, step_px = 47.5, 12.0  # LEVEL_WINDOW: 96 pixels, the step 12 of them

    def stand_in(windows: np.ndarray) -> np.ndarray:
        assert windows.shape == (10, 1, 96, 96)
        for window in windows[:, 0]:
            assert window[47:49, 47:49].min() > 0.9  # the candidate's own dot at the centre
            below = window[int(middle + step_px) - 1 : int(middle + step_px) + 3, 46:50]
            above = window[int(middle - step_px) - 1 : int(middle - step_px) + 3, 46:50]
            assert max(below.max(), above.max()) > 0.9  # a neighbour's dot one step away
            assert window[60:, :40].max() == 0.0  # nothing where no dot is
        np.testing.assert_array_equal(windows[5:], windows[:5, :, :, ::-1])  # then the same windows flipped
        return np.zeros((10, 6))

    np.testing.assert_allclose(level_log_probs(film, bodies, stand_in), np.log(1 / 6))


def test_a_film_with_one_candidate_trains_on_placed_windows_and_names_nothing():
    from lumbar.train.radiograph_levels import LevelFilm, level_example

    truth = image_bodies(17)
    one = [FoundVertebra(truth[3].mean(0), truth[3], 0.9)]
    radiograph = type("R", (), {"corners": truth})()
    film = LevelFilm(radiograph, np.ones((1000, 420), np.float32), one, np.array([B]))
    rng = np.random.default_rng(0)
    for _ in range(10):
        window, wanted = level_example(film, rng)
        assert window.shape == (96, 96) and 0 <= wanted < 6
    from lumbar.tasks.frontal_levels import name_candidates

    assert name_candidates(film.pixels, one, lambda w: np.zeros((len(w), 6))) == ([], [])


def test_the_shipped_level_network_names_real_test_films_better_than_counting_the_strongest_peaks():
    from conftest import shared

    from lumbar.datasets.xray_ap import read_part
    from lumbar.io import read_image
    from lumbar.tasks.cobb import side_heights

    films = [r for r in read_part(shared("xray_ap"), "test") if not r.repeats_training][::8]  # 15 of 113

    def named_right(by_levels: bool) -> int:
        right = 0
        for film in films:
            picture = read_image(film.path, modality="XR").sagittal_slices()[0]
            reading = xr_frontal.read_film(picture, second_look=False, by_levels=by_levels)
            centres, half = film.corners.mean(1), np.median(side_heights(film.corners)) / 2
            right += sum(
                np.linalg.norm(body.centre - centres[FRONTAL_LEVELS.index(name)]) <= half
                for body, name in zip(reading.found, reading.names)
            )
        return right

    levels, counted = named_right(True), named_right(False)
    assert levels >= 160 and levels >= counted + 50  # measured: 179 against 104 of the 255 bodies


def test_a_stray_peak_half_a_step_from_two_bodies_is_left_out_when_the_steps_are_held_to_the_spines():
    from lumbar.tasks.frontal_levels import Spacing

    centres = [np.array([100.0, 40.0 * k]) for k in range(17)]
    stray = np.array([104.0, 40.0 * 7.5])  # between T8 and T9, read as a body as surely as they are
    everything = np.array([*centres[:8], stray, *centres[8:]])
    log_probs = sure([T] + [B] * 15 + [L])
    log_probs = np.insert(log_probs, 8, log_probs[7], axis=0)
    expected = [*range(8), None, *range(8, 17)]
    without = align_levels(log_probs)
    assert without[8] is not None and without != expected  # without the spacing it is taken into the chain
    spacing = Spacing(everything, np.full(16, 40.0), sigma=0.35)
    assert align_levels(log_probs, spacing=spacing) == expected
    # a step that is only a little short (upper thoracic bodies are smaller) costs little: all named as counted
    squeezed = np.array([[100.0, 40.0 * k - 1.5 * max(0, 8 - k) ** 1.2] for k in range(17)])
    assert align_levels(sure([T] + [B] * 15 + [L]), spacing=Spacing(squeezed, np.full(16, 40.0))) == list(range(17))


def test_a_film_without_peaks_says_no_vertebra_was_found_once(tmp_path, monkeypatch):
    from lumbar.io import read_image

    image = read_image(radiograph_file(tmp_path), modality="XR")
    monkeypatch.setattr(xr_frontal, "radiograph_model", lambda: KnownOutput(np.zeros((0, 4, 2))))
    monkeypatch.setattr(xr_frontal, "corner_model", lambda: None)
    monkeypatch.setattr(xr_frontal, "level_model", lambda: LevelStandIn([]))
    f = xr_frontal.analyze(image).findings
    assert not f.vertebrae and f.summary == ()
    assert "no vertebra found: is this a frontal spine radiograph?" in f.needs_review
    assert not any("of the 17 vertebrae" in r for r in f.needs_review)
