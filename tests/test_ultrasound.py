"""Ultrasound level identification: the simulator on a hand-built spine of boxes (known bone depth, shadow, labels
under the probe, determinism), the sweep counter's known answers on hand-written frame sequences, and the trained
network's ONNX export and inference path on sweeps simulated in the test. No real data needed."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from lumbar.errors import InputError
from lumbar.models.export import export_onnx
from lumbar.tasks.ultrasound import (
    CLASSES,
    FRAME_SHAPE,
    GAP,
    GAPS,
    SACRUM,
    VERTEBRA,
    analyse_sweep,
    count_levels,
    prepare_frames,
    read_sweep,
)
from lumbar.train.ultrasound import UltrasoundConfig, UltrasoundFrameNet, train_on_volumes
from lumbar.train.ultrasound_sim import DEPTH_MM, Acquisition, SpineVolume, Tissue, simulate_sweep

LAMINA_BACK_Z = 90  # the laminae's and the sacrum's back surface (voxel index, 1 mm voxels)
LEVEL_MM, LAMINA_MM, TOP_MM = 45, 25, 35  # a level's height, a lamina's, where the first lamina starts
SACRUM_TOP = 258
FLAT = Acquisition(
    offset_mm=10,
    skin_mm=30,
    tilt_deg=0,
    out_of_plane_deg=0,
    jitter_deg=0,
    step_mm=2,
    speed_sd=0,
    start_below_mm=20,
    end_above_mm=10,
    noise=False,
)


def box_spine(patient: str = "box") -> SpineVolume:
    """Five box vertebrae (L1 top to L5) on 1 mm voxels, 31 mm across: bodies 35 mm tall with 10 mm discs between,
    the canal behind them, a lamina 25 mm tall behind each (the windows between them 20 mm), a sacrum block below
    L5/S1 whose back is level with the laminae' (the L5/S1 window 18 mm)."""
    tissue = np.zeros((31, 320, 170), np.uint8)
    tissue[:, :, 60:75] = Tissue.CANAL
    discs = {}
    for k, name in enumerate(("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")):
        top = 30 + LEVEL_MM * k
        tissue[:, top : top + 35, 20:60] = Tissue.BODY
        tissue[:, top + 35 : top + 45, 20:60] = Tissue.DISC
        tissue[:, TOP_MM + LEVEL_MM * k : TOP_MM + LEVEL_MM * k + LAMINA_MM, 75:LAMINA_BACK_Z] = Tissue.POSTERIOR
        discs[name] = (top + 40.0, 40.0)
    tissue[:, SACRUM_TOP:, 20:LAMINA_BACK_Z] = Tissue.SACRUM
    return SpineVolume(patient, f"boxes {patient}", tissue, (1.0, 1.0, 1.0), 15.0, discs)


def expected_class(y_mm: float) -> int | None:
    """What lies under a probe centred at height ``y_mm`` of the box spine (None within 2 mm of an edge)."""
    if y_mm >= SACRUM_TOP + 2:
        return SACRUM
    edges = [SACRUM_TOP] + [TOP_MM + LEVEL_MM * k + d for k in range(5) for d in (0, LAMINA_MM)]
    if min(abs(y_mm - e) for e in edges) < 2:
        return None
    inside = any(TOP_MM + LEVEL_MM * k <= y_mm < TOP_MM + LEVEL_MM * k + LAMINA_MM for k in range(5))
    return VERTEBRA if inside else GAP


def test_a_lamina_shows_a_bright_line_at_its_depth_and_a_shadow_below():
    sweep = simulate_sweep(box_spine(), seed=3, acquisition=FLAT)
    vertebra = np.flatnonzero(sweep.labels == VERTEBRA)
    assert vertebra.size > 10
    middle = slice(FRAME_SHAPE[1] // 2 - 3, FRAME_SHAPE[1] // 2 + 3)
    profile = sweep.frames[vertebra][:, :, middle].astype(float).mean((0, 2))
    row_mm = DEPTH_MM / FRAME_SHAPE[0]
    assert abs((np.argmax(profile) + 0.5) * row_mm - FLAT.skin_mm) <= 1.5 * row_mm  # the skin is 30 mm above bone
    above = profile[int(5 / row_mm) : int((FLAT.skin_mm - 5) / row_mm)].mean()
    below = profile[int((FLAT.skin_mm + 5) / row_mm) :].mean()
    assert below < 0.5 * above  # the acoustic shadow
    assert profile.max() > 1.2 * above


def test_frame_labels_follow_the_anatomy_under_the_probe_centre():
    sweep = simulate_sweep(box_spine(), seed=3, acquisition=FLAT)
    expected = [expected_class(y) for y in sweep.centre_mm[:, 0]]
    checked = [(e, got) for e, got in zip(expected, sweep.labels) if e is not None]
    assert len(checked) > 0.7 * len(sweep.labels)
    assert all(e == got for e, got in checked)
    assert sweep.labels[0] == SACRUM and set(sweep.labels.tolist()) == {SACRUM, GAP, VERTEBRA}
    assert np.all(np.diff(sweep.centre_mm[:, 0]) < 0)  # the probe moves cranially


def test_the_box_spine_gaps_are_counted_and_verified_from_l5_s1_upwards():
    sweep = simulate_sweep(box_spine(), seed=3, acquisition=FLAT)
    names = [name for name, _, _ in sweep.counted_gaps()]
    assert names == ["L5/S1", "L4/L5", "L3/L4", "L2/L3", "L1/L2"]
    assert sweep.verified_gaps == 5
    first, last = sweep.counted_gaps()[1][1:]
    assert sweep.levels[last + 1] == "L4" and sweep.levels[first - 1] == "L5"


def test_sweeps_are_the_same_for_a_seed_and_differ_between_seeds():
    volume = box_spine()
    a, b, c = simulate_sweep(volume, 11), simulate_sweep(volume, 11), simulate_sweep(volume, 12)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.labels, b.labels)
    assert a.frames.dtype == np.uint8 and a.frames.shape[1:] == FRAME_SHAPE
    assert a.frames.shape != c.frames.shape or not np.array_equal(a.frames, c.frames)


def probabilities_of(sequence: str, sure: float = 0.9) -> np.ndarray:
    """Frame probabilities of a hand-written sequence: S sacrum, G gap, V vertebra."""
    classes = ["SGV".index(c) for c in sequence]
    out = np.full((len(classes), 3), (1 - sure) / 2)
    out[np.arange(len(classes)), classes] = sure
    return out


def test_the_counter_names_gaps_upwards_from_the_sacrum():
    counting = count_levels(probabilities_of("S" * 8 + "G" * 5 + "V" * 10 + "G" * 5 + "V" * 10 + "G" * 4 + "V" * 6))
    assert [(g.name, g.first_frame, g.last_frame) for g in counting.gaps] == [
        ("L5/S1", 8, 12),
        ("L4/L5", 23, 27),
        ("L3/L4", 38, 41),
    ]
    assert counting.levels[:9] == ("sacrum",) * 8 + ("L5/S1",)
    assert counting.levels[13] == "L5" and counting.levels[28] == "L4" and counting.levels[-1] == "L3"
    assert not counting.needs_review and counting.gaps[2].centre_frame == 39.5


@pytest.mark.parametrize("tail", ["G", "GV"])
def test_a_gap_begun_in_the_sweeps_last_frames_is_not_counted(tail):
    counting = count_levels(probabilities_of("S" * 8 + "G" * 5 + "V" * 10 + tail))
    assert [(g.name, g.first_frame, g.last_frame) for g in counting.gaps] == [("L5/S1", 8, 12)]
    assert counting.levels[-1] == "L5"


def test_the_counter_ignores_flicker_of_one_or_two_frames():
    clean = count_levels(probabilities_of("S" * 8 + "G" * 6 + "V" * 10 + "G" * 6 + "V" * 10))
    flicker = count_levels(
        probabilities_of(
            "S" * 4
            + "V"
            + "S" * 3
            + "G" * 2
            + "VV"
            + "GG"
            + "V" * 4
            + "G"
            + "V" * 5
            + "G" * 6
            + "V" * 3
            + "SS"
            + "V" * 5
        )
    )
    assert [g.name for g in flicker.gaps] == [g.name for g in clean.gaps] == ["L5/S1", "L4/L5"]
    assert not flicker.needs_review


@pytest.mark.parametrize("levels", [8, 9, 10, 12])
def test_a_sweep_past_t10_keeps_every_name_below_it_and_counts_no_gap_above(levels):
    """Eight gaps are named (L5/S1 to T10/T11); a sweep that goes on shows more, which are neither counted nor
    allowed to push the names below them out of place."""
    counting = count_levels(probabilities_of("S" * 6 + "GGGGGVVVVVVV" * levels))
    assert [(g.name, g.first_frame, g.last_frame) for g in counting.gaps] == [
        (name, 6 + 12 * k, 10 + 12 * k) for k, name in enumerate(GAPS)
    ]
    assert counting.levels[6 + 12 * 7 + 5] == "T10"
    assert counting.levels[-1] == ("T10" if levels == 8 else "above T10")
    assert counting.reasons == ("the count reached T10, the highest level it names: gaps above it are not counted",)


def test_a_sweep_that_does_not_start_on_the_sacrum_is_marked_for_review():
    counting = count_levels(probabilities_of("V" * 8 + "G" * 5 + "V" * 10 + "G" * 5 + "V" * 5))
    assert counting.needs_review and any("sacrum" in r for r in counting.reasons)


def test_a_sacrum_seen_again_or_no_gap_at_all_is_marked_for_review():
    back = count_levels(probabilities_of("S" * 8 + "G" * 5 + "V" * 8 + "S" * 8 + "V" * 5))
    assert back.needs_review and any("returns" in r for r in back.reasons)
    none = count_levels(probabilities_of("S" * 20))
    assert none.needs_review and any("no gap" in r for r in none.reasons)
    with pytest.raises(InputError):
        count_levels(np.zeros((5, 2)))


def test_frames_are_prepared_to_the_network_input_whatever_their_size():
    frames = np.random.default_rng(0).uniform(0, 200, (3, 120, 90))
    prepared = prepare_frames(frames)
    assert prepared.shape == (3, 1, *FRAME_SHAPE) and prepared.dtype == np.float32
    assert prepared.min() == 0 and prepared.max() == 1
    with pytest.raises(InputError):
        prepare_frames(np.zeros((4, 5)))


def test_the_onnx_export_gives_the_torch_network_s_logits(tmp_path):
    torch.manual_seed(0)
    net = UltrasoundFrameNet()
    assert sum(p.numel() for p in net.parameters()) <= 100_000
    optimiser = torch.optim.AdamW(net.parameters(), 1e-3)
    x = torch.rand(8, 1, *FRAME_SHAPE)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()
    path = export_onnx(net, {"image": torch.zeros(1, 1, *FRAME_SHAPE)}, tmp_path / "u.onnx", {"image": {0: "n"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = net(x).numpy()
    assert np.allclose(session.run(None, {"image": x.numpy()})[0], expected, atol=1e-4)


def test_training_on_simulated_sweeps_exports_a_model_that_reads_a_sweep(tmp_path):
    volumes = [box_spine(f"p{k}") for k in range(3)]
    cfg = UltrasoundConfig(
        str(tmp_path / "run"), train_sweeps=2, eval_sweeps=1, test_patients=1, val_patients=1, epochs=1, batch_size=32
    )
    path = train_on_volumes(volumes, cfg)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["classes"] == list(CLASSES) and meta["trained_on"] == "simulated paramedian ultrasound"
    assert sorted(p for group in meta["split_patients"].values() for p in group) == ["p0", "p1", "p2"]
    test = meta["test"]
    assert {"network", "majority_class", "brightness_rule", "levels"} <= set(test)
    assert len(test["network"]["balanced_accuracy_ci95"]) == 2
    assert test["levels"]["true_classes"]["level_accuracy"] == 1.0
    sweep = simulate_sweep(volumes[0], seed=1)
    result = analyse_sweep(sweep.frames, path)
    record = result.to_dict()
    assert result.n_frames == len(sweep.frames) == len(record["frames"])
    assert record["trained_on"].startswith("simulated") and record["caution"]
    json.dumps(record)


def test_a_folder_of_frames_is_read_in_natural_order(tmp_path):
    for k in (1, 2, 10):
        Image.fromarray(np.full((20, 16), k * 10, np.uint8)).save(tmp_path / f"frame{k}.png")
    (tmp_path / ".DS_Store").write_bytes(b"\0")  # hidden files are ignored, as docs/ultrasound_format.md says
    frames = read_sweep(tmp_path)
    assert frames.shape == (3, 20, 16) and list(frames[:, 0, 0]) == [10, 20, 100]
    with pytest.raises(InputError):
        read_sweep(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("left probe")  # any other file: refused, not skipped
    with pytest.raises(InputError, match=r"notes\.txt"):
        read_sweep(tmp_path)


def test_lumbar_ultrasound_reads_a_folder_sweep_and_refuses_a_still_image_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from lumbar.cli import app

    sweep = simulate_sweep(box_spine(), seed=4, acquisition=FLAT)
    folder = tmp_path / "sweep"
    folder.mkdir()
    for k, frame in enumerate(sweep.frames):
        Image.fromarray(np.asarray(frame, np.uint8)).save(folder / f"f{k}.png")  # 8-bit frames, as simulated
    out = tmp_path / "levels.json"
    result = CliRunner().invoke(app, ["ultrasound", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["n_frames"] == len(sweep.frames) == len(written["frames"])
    assert written["caution"] and "simulated" in result.output
    (folder / "._f0.png").write_bytes(b"\x00\x05\x16\x07 resource fork")  # a macOS copy's hidden twin: not a frame
    assert CliRunner().invoke(app, ["ultrasound", str(folder), "-o", str(out)]).exit_code == 0  # replaces its own
    other = tmp_path / "other.json"
    other.write_text('{"mine": 1}')
    refused = CliRunner().invoke(app, ["ultrasound", str(folder), "-o", str(other)])
    assert refused.exit_code == 2 and "an existing file lumbar did not write there" in refused.output
    assert other.read_text() == '{"mine": 1}'
    short = tmp_path / "short"
    short.mkdir()
    Image.fromarray(np.asarray(sweep.frames[0], np.uint8)).save(short / "f0.png")
    one = CliRunner().invoke(app, ["ultrasound", str(short), "-o", str(tmp_path / "one.json")])
    assert one.exit_code == 2 and f"{short}: a sweep of 1 frame(s): naming a level needs at least 6" in " ".join(
        one.output.split()
    )
    assert not (tmp_path / "one.json").exists()

    still = tmp_path / "still.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(still)
    refused = CliRunner().invoke(app, ["ultrasound", str(still), "-o", str(tmp_path / "x.json")])
    assert refused.exit_code == 2, refused.output
    assert "still.png" in refused.output and len(refused.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def test_lumbar_ultrasound_never_writes_over_its_sweep_and_bounds_the_frames(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from lumbar.cli import app
    from lumbar.tasks import ultrasound

    folder = tmp_path / "sweep"
    folder.mkdir()
    for k in range(5):
        Image.fromarray(np.full((16, 16), 10 * k, np.uint8)).save(folder / f"f{k}.png")
    for out in (folder / "f1.png", folder, tmp_path / "sweep" / "levels.json"):
        result = CliRunner().invoke(app, ["ultrasound", str(folder), "-o", str(out)])
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in folder.iterdir()) == [f"f{k}.png" for k in range(5)]
    monkeypatch.setattr(ultrasound, "MAX_FRAMES", 4)
    with pytest.raises(InputError, match="at most 4"):
        ultrasound.read_sweep(folder)


def test_frames_too_small_to_show_a_spine_are_refused():
    from lumbar.tasks.ultrasound import analyse_sweep

    with pytest.raises(InputError, match=r"frames of 2 x 2 pixels: an ultrasound frame has at least 32 a side"):
        analyse_sweep(np.zeros((5, 2, 2), np.float32))


def test_colour_frames_are_read_as_grey():
    from lumbar.tasks.ultrasound import analyse_sweep

    grey = np.random.default_rng(5).integers(0, 256, (12, 120, 160), np.uint8)
    colour = np.repeat(grey[..., None], 3, axis=-1)
    result = analyse_sweep(colour)
    assert result.n_frames == 12
    assert np.allclose(result.probabilities, analyse_sweep(grey).probabilities, atol=1e-6)


def test_a_model_of_another_kind_is_refused_as_the_ultrasound_model():
    from lumbar.models.registry import spec_of
    from lumbar.tasks.ultrasound import load_ultrasound_model

    with pytest.raises(InputError, match=r"a tracking model \(its record says so\), not a ultrasound model"):
        load_ultrasound_model(str(spec_of("tracking").weights))
