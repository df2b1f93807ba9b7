"""Vertebra tracking in fluoroscopy: rotated-box geometry with known answers, the simulator's per-vertebra motion,
and the tracker's search on a synthetic moving box (all data made here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lumbar.errors import InputError
from lumbar.tasks.tracking import (
    RotatedBox,
    Tracker,
    TrackResult,
    angle_chart,
    inside_fraction,
    intervertebral_angle_deg,
    read_boxes,
    rotated_iou,
    strip_png,
    track_sequence,
)
from lumbar.train.fluoro_sim import pose, simulate_sequence, split_bone, vertebra_motions
from lumbar.train.lateral_drr import Anatomy


def test_box_corners_run_clockwise_from_top_left_and_back():
    box = RotatedBox(10, 20, 4, 2, 0)
    assert np.allclose(box.corners(), [[8, 19], [12, 19], [12, 21], [8, 21]])
    turned = RotatedBox(5.5, -3, 30, 20, 17)
    again = RotatedBox.from_corners(turned.corners())
    assert np.allclose([again.cx, again.cy, again.width, again.height, again.angle_deg], [5.5, -3, 30, 20, 17])


def test_box_of_a_quarter_turned_square_has_its_corners_at_the_axes():
    corners = RotatedBox(0, 0, 2, 2, 45).corners()
    assert np.allclose(corners, [[0, -np.sqrt(2)], [np.sqrt(2), 0], [0, np.sqrt(2)], [-np.sqrt(2), 0]])


def test_rotated_iou_known_answers():
    box = RotatedBox(0, 0, 2, 2, 0)
    assert rotated_iou(box, box) == pytest.approx(1)
    assert rotated_iou(box, RotatedBox(10, 0, 2, 2, 30)) == 0
    assert rotated_iou(box, RotatedBox(-0.5, 0, 1, 2, 0)) == pytest.approx(0.5)  # a box and its half
    # a square and the same square turned by 45°: the overlap is a regular octagon, the IoU 1/√2
    assert rotated_iou(box, RotatedBox(0, 0, 2, 2, 45)) == pytest.approx(1 / np.sqrt(2))
    assert rotated_iou(box, RotatedBox(1, 0, 2, 2, 0)) == pytest.approx(1 / 3)  # half overlapping: 2 / (4 + 4 - 2)


def test_intervertebral_angle_is_upper_minus_lower_wrapped():
    assert intervertebral_angle_deg(RotatedBox(0, 0, 1, 1, 5), RotatedBox(0, 0, 1, 1, -3)) == pytest.approx(8)
    assert intervertebral_angle_deg(RotatedBox(0, 0, 1, 1, 179), RotatedBox(0, 0, 1, 1, -179)) == pytest.approx(-2)


def test_boxes_read_from_json_corners_or_centre_and_from_csv(tmp_path):
    turned = RotatedBox(50, 40, 30, 20, -4)
    path = tmp_path / "boxes.json"
    path.write_text(
        json.dumps(
            {
                "boxes": [
                    {"name": "L1", "corners": turned.corners().tolist()},
                    {"name": "L2", "cx": 50, "cy": 70, "width": 30, "height": 22, "angle_deg": 2},
                ]
            }
        )
    )
    boxes, names = read_boxes(path)
    assert names == ["L1", "L2"]
    assert boxes[0].angle_deg == pytest.approx(-4) and boxes[1] == RotatedBox(50, 70, 30, 22, 2)
    table = tmp_path / "boxes.csv"
    table.write_text("name,cx,cy,width,height,angle_deg\nL3,1,2,30,40,5\n")
    assert read_boxes(table) == ([RotatedBox(1, 2, 30, 40, 5)], ["L3"])
    (tmp_path / "bad.json").write_text('{"boxes": [{"name": "L1", "cx": 1}]}')
    with pytest.raises(InputError, match=r"bad\.json"):
        read_boxes(tmp_path / "bad.json")


def block_spine() -> Anatomy:
    """Three rectangular bodies (L1-L3) and an S1 block, discs between, posterior blocks behind, on soft tissue."""
    shape = (200, 120)
    layers = {
        k: np.zeros(shape, np.float32) for k in ("body", "trabecular", "disc", "posterior", "sacrum", "sacrum_inner")
    }
    layers["soft"] = np.ones(shape, np.float32)
    corners = []
    for k, top in enumerate((40, 75, 110, 145)):
        corners.append([[40, top], [75, top], [75, top + 25], [40, top + 25]])
        part = "sacrum" if k == 3 else "body"
        layers[part][top : top + 25, 40:75] = 1
        layers[part + ("_inner" if k == 3 else "")][top + 2 : top + 23, 42:73] = 1 if k == 3 else 0
        if k < 3:
            layers["trabecular"][top + 2 : top + 23, 42:73] = 1
            layers["posterior"][top + 5 : top + 20, 80:95] = 1
            layers["disc"][top + 25 : top + 35, 40:75] = 1
    return Anatomy("x_t1", "x", layers, np.array(corners, float), ["L1", "L2", "L3", "S1"])


def test_a_level_bent_by_a_known_angle_turns_the_bodies_above_it_by_that_angle():
    spine = block_spine()
    motions = vertebra_motions(spine.corners, np.array([0.0, 5.0, 0.0]), 0.0)  # L2 against L3 by 5°
    posed = pose(spine, motions)
    angles = [RotatedBox.from_corners(c).angle_deg for c in posed.corners]
    assert angles == pytest.approx([5, 5, 0, 0])
    moved = np.abs(posed.layers["body"] - spine.layers["body"]) > 0.1
    assert moved[40:100].any() and not moved[110:135].any()  # L1 and L2 moved, L3 did not
    assert np.array_equal(posed.layers["soft"], spine.layers["soft"])
    owner, _ = split_bone(spine)
    assert owner[50, 85] == 0 and owner[120, 85] == 2  # posterior blocks go with the body at their height


def test_simulated_sequence_is_deterministic_and_bends_smoothly():
    spine = block_spine()
    one, two = simulate_sequence(spine, 3, seed=4), simulate_sequence(spine, 3, seed=4)
    assert np.array_equal(one.frames, two.frames) and one.names == ["L1", "L2", "L3", "S1"]
    assert one.frames.shape == (3, 256, 256)
    l1 = one.boxes[:, 0, 4] - one.boxes[:, 2, 4]  # L1 against L3
    assert abs(l1[0] - l1[2]) > 1 and min(l1[0], l1[2]) <= l1[1] <= max(l1[0], l1[2])
    assert not np.array_equal(one.frames[0], one.frames[1])


def moving_box_frames(rng, n=11, step_px=(0.7, -0.5), step_deg=1.0, zoom=1):
    """A bright textured rectangle on a noisy background, moved and turned a little every frame; ``zoom`` times
    as many pixels for the same picture (a finer detector)."""
    yy, xx = (np.mgrid[0 : 128 * zoom, 0 : 128 * zoom].astype(np.float32) + 0.5) / zoom - 0.5
    frames, truth = [], []
    for t in range(n):
        box = RotatedBox(60 + step_px[0] * t, 64 + step_px[1] * t, 34, 22, -5 + step_deg * t)
        a = np.deg2rad(box.angle_deg)
        u = (xx - box.cx) * np.cos(a) + (yy - box.cy) * np.sin(a)
        v = -(xx - box.cx) * np.sin(a) + (yy - box.cy) * np.cos(a)
        inside = (np.abs(u) < box.width / 2) & (np.abs(v) < box.height / 2)
        endplate = inside & (v < -box.height / 2 + 4)  # a brighter top edge: the box is not symmetric
        corner = inside & (u < -box.width / 2 + 8) & (v > 0)
        frames.append(inside * 1.0 + endplate * 1.0 + corner * 0.6 + rng.normal(0, 0.15, xx.shape))
        truth.append(box)
    return np.array(frames, np.float32), [in_pixels_zoomed(box, zoom) for box in truth]


def in_pixels_zoomed(box: RotatedBox, zoom: int) -> RotatedBox:
    """``box`` in the pixels of a picture ``zoom`` times finer (pixel centres at integers in both)."""
    return RotatedBox(
        (box.cx + 0.5) * zoom - 0.5, (box.cy + 0.5) * zoom - 0.5, box.width * zoom, box.height * zoom, box.angle_deg
    )


@pytest.fixture(scope="module")
def pooling_onnx(tmp_path_factory):
    """φ that is nearly the identity: 4 x 4 average pooling (stride 4), as an ONNX file."""
    torch = pytest.importorskip("torch")
    from lumbar.models.export import export_onnx

    path = tmp_path_factory.mktemp("phi") / "pool.onnx"
    axes = {0: "n", 2: "h", 3: "w"}
    return export_onnx(
        torch.nn.AvgPool2d(4), {"image": torch.zeros(1, 1, 80, 80)}, path, {"image": axes, "logits": axes}
    )


def test_tracker_follows_a_moving_turning_box_with_a_pixel_correlation(pooling_onnx):
    frames, truth = moving_box_frames(np.random.default_rng(0))
    result = track_sequence(frames, [truth[0]], ["L1"], model_path=pooling_onnx)
    centre_px = [np.hypot(f[0].cx - w.cx, f[0].cy - w.cy) for f, w in zip(result.boxes, truth)]
    angle_deg = [abs(f[0].angle_deg - w.angle_deg) for f, w in zip(result.boxes, truth)]
    assert max(centre_px) < 1.5 and max(angle_deg) < 3.5 and np.median(angle_deg) < 1.5  # φ pools 4 x 4 pixels
    assert result.boxes[-1][0].angle_deg == pytest.approx(5, abs=1.5)
    record = result.to_dict()
    assert len(record["frames"]) == len(frames) and record["frames"][0]["L1"]["angle_deg"] == pytest.approx(-5)
    assert "extension where the patient faces the image's left" in record["intervertebral_angle_sign"]


def test_tracked_levels_give_intervertebral_angles_and_pictures(pooling_onnx):
    frames, truth = moving_box_frames(np.random.default_rng(1), n=4, step_deg=0.0)
    lower = RotatedBox(60, 100, 30, 20, 0.0)
    result = track_sequence(frames, [truth[0], lower], ["L1", "L2"], model_path=pooling_onnx)
    assert result.angles_deg["L1/L2"][0] == pytest.approx(-5)
    assert strip_png(frames, result, 3).size == (3 * 128, 128)
    assert angle_chart(result).size == (480, 240)


def test_tracker_rotation_search_stays_within_its_window():
    tracker = Tracker(lambda batch: batch[:, :, ::4, ::4], rotations_deg=np.arange(-30.0, 30.1, 3.0))
    frames, truth = moving_box_frames(np.random.default_rng(2), n=2, step_deg=20.0)
    tracker.start(frames[0], [truth[0]])
    boxes, _ = tracker.step(frames[1])
    assert abs(boxes[0].angle_deg - truth[0].angle_deg) <= 6 + 1.5  # at most the window (and its sub-step)


def test_missing_model_is_an_input_error_naming_the_file(tmp_path):
    with pytest.raises(InputError, match=r"nothing\.onnx"):
        track_sequence(np.zeros((2, 64, 64)), [RotatedBox(32, 32, 10, 10, 0)], ["L1"], tmp_path / "nothing.onnx")


def test_exported_embedding_equals_torch(tmp_path):
    torch = pytest.importorskip("torch")
    import onnxruntime

    from lumbar.models.export import export_onnx
    from lumbar.train.tracking import TrackingEmbedding

    torch.manual_seed(0)
    net = TrackingEmbedding().eval()
    assert sum(p.numel() for p in net.parameters()) <= 200_000
    axes = {0: "n", 2: "h", 3: "w"}
    path = export_onnx(
        net, {"image": torch.zeros(1, 1, 80, 80)}, tmp_path / "phi.onnx", {"image": axes, "logits": axes}
    )
    x = np.random.default_rng(0).normal(size=(3, 1, 48, 48)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert expected.shape == (3, 64, 12, 12)
    assert np.allclose(session.run(None, {"image": x})[0], expected, atol=1e-4)


def _gif(frames: np.ndarray, path) -> str:
    from PIL import Image

    scaled = [(np.clip((f - f.min()) / (np.ptp(frames) or 1), 0, 1) * 255).astype(np.uint8) for f in frames]
    pictures = [Image.fromarray(s) for s in scaled]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=100, loop=0)
    return str(path)


def test_lumbar_track_writes_its_folder_whole_and_refuses_bad_boxes_in_one_line(pooling_onnx, tmp_path):
    from typer.testing import CliRunner

    from lumbar.cli import app

    frames, truth = moving_box_frames(np.random.default_rng(2), n=6)
    video = _gif(frames, tmp_path / "run.gif")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(
        json.dumps(
            {
                "boxes": [
                    {"name": "L3", **{k: getattr(truth[0], k) for k in ("cx", "cy", "width", "height", "angle_deg")}}
                ]
            }
        )
    )
    out = tmp_path / "tracked"
    result = CliRunner().invoke(
        app, ["track", video, "--boxes", str(boxes), "-o", str(out), "--model", str(pooling_onnx)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["angles.png", "tracks.json", "tracks.png"]
    record = json.loads((out / "tracks.json").read_text())
    assert len(record["frames"]) == 6 and record["scores"][0] == [None]
    assert record["caution"].startswith("Experimental: the tracker was trained") and "pixels" in record["units"]
    last = record["frames"][-1]["L3"]
    assert np.hypot(last["cx"] - truth[-1].cx, last["cy"] - truth[-1].cy) < 2.0

    outside = tmp_path / "outside.json"
    outside.write_text(
        json.dumps({"boxes": [{"name": "L3", "cx": 500, "cy": 20, "width": 30, "height": 20, "angle_deg": 0}]})
    )
    for args, message in (
        (["track", video, "--boxes", str(outside), "-o", str(tmp_path / "o2")], "outside the first frame"),
        (["track", str(boxes), "--boxes", str(boxes), "-o", str(tmp_path / "o3")], "boxes.json"),
    ):
        refused = CliRunner().invoke(app, [*args, "--model", str(pooling_onnx)])
        assert refused.exit_code == 2, refused.output
        assert message in refused.output and len(refused.output.strip().splitlines()) == 1
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
    from PIL import Image

    single = tmp_path / "single"
    single.mkdir()
    first = (np.clip((frames[0] - frames.min()) / (np.ptp(frames) or 1), 0, 1) * 255).astype(np.uint8)
    Image.fromarray(first).save(single / "f0.png")
    one = CliRunner().invoke(app, ["track", str(single), "--boxes", str(boxes), "-o", str(tmp_path / "o4")])
    assert one.exit_code == 2 and f"{single}: a sequence of 1 frame: tracking needs at least 2" in " ".join(
        one.output.split()
    )


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ({"boxes": [{"name": "L1", "cx": 10, "cy": 10, "width": 30, "height": 20, "angle_deg": 0}] * 2}, "repeat"),
        (
            {"boxes": [{"name": "L1", "cx": 10, "cy": 10, "width": float("nan"), "height": 20, "angle_deg": 0}]},
            "not a number",
        ),
        ({"boxes": [{"name": "L1", "cx": True, "cy": 10, "width": 30, "height": 20, "angle_deg": 0}]}, "not a number"),
        ({"boxes": [{"name": "L1", "corners": [[40, 0], [0, 0], [0, 30], [40, 30]]}]}, "each side must be"),
        (
            {
                "boxes": [
                    {"name": f"B{k}", "cx": 10, "cy": 10, "width": 30, "height": 20, "angle_deg": 0} for k in range(40)
                ]
            },
            "at most",
        ),
    ],
)
def test_boxes_that_cannot_be_tracked_are_one_input_error(tmp_path, boxes, message):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(boxes))
    with pytest.raises(InputError, match=message):
        read_boxes(path)


def test_boxes_from_a_spreadsheet_csv_with_a_bom_are_read(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("\ufeffname,cx,cy,width,height,angle_deg\nL1,40,50,30,20,-3\n", encoding="utf-8")
    boxes, names = read_boxes(path)
    assert names == ["L1"] and boxes[0].angle_deg == -3


def test_frames_whose_response_falls_below_the_lost_level_are_named_for_review():
    box = RotatedBox(10, 10, 30, 20, 0)
    scores = np.array([[np.nan, np.nan], [300.0, 90.0], [280.0, 120.0], [50.0, 80.0]])
    result = TrackResult(["L1", "L2"], [[box, box]] * 4, scores, 30.0, lost_score=100.0)
    assert result.doubtful_frames() == {"L1": [3], "L2": [1, 3]}
    assert len(result.needs_review) == 2 and result.needs_review[1].startswith("L2:")
    assert "2 of 4 frames (first at frame 1)" in result.needs_review[1]
    assert result.to_dict()["needs_review"] == result.needs_review
    assert TrackResult(["L1", "L2"], [[box, box]] * 4, scores).needs_review == []  # a model without a level


def test_the_share_of_a_box_inside_the_frame_has_known_values():
    assert inside_fraction(RotatedBox(50, 50, 20, 10, 0), (100, 100)) == pytest.approx(1.0)
    assert inside_fraction(RotatedBox(0, 50, 20, 10, 0), (100, 100)) == pytest.approx(0.5)  # centred on the edge
    assert inside_fraction(RotatedBox(100, 100, 20, 10, 0), (100, 100)) == pytest.approx(0.25)  # on a corner
    assert inside_fraction(RotatedBox(-50, -50, 20, 10, 30), (100, 100)) == 0.0


def test_a_box_that_runs_out_of_the_frame_is_named_for_review_whatever_its_response():
    inside, half, out = RotatedBox(50, 50, 20, 10, 0), RotatedBox(-1, 50, 20, 10, 0), RotatedBox(-40, 50, 20, 10, 0)
    scores = np.array([[np.nan], [300.0], [300.0], [300.0]])
    result = TrackResult(["L1"], [[inside], [inside], [half], [out]], scores, 30.0, 100.0, (100, 100))
    assert result.frames_outside() == {"L1": [2, 3]}
    assert result.needs_review == [
        "L1: its box lies mostly outside the frame in 2 of 4 frames (first at frame 2): the body left the view or "
        "the track ran off; its track there is not to be used"
    ]


@pytest.mark.parametrize(
    ("frames", "box", "message"),
    [
        (1, RotatedBox(32, 32, 10, 10, 0), "a sequence of 1 frame"),
        (3, RotatedBox(32, 32, 70, 10, 0), "larger than the frame"),
        (3, RotatedBox(2, 2, 30, 20, 0), "mostly outside the first frame"),
    ],
)
def test_sequences_and_boxes_that_cannot_be_tracked_are_refused(pooling_onnx, frames, box, message):
    with pytest.raises(InputError, match=message):
        track_sequence(np.zeros((frames, 64, 64)), [box], ["L1"], pooling_onnx)


def test_a_model_of_another_kind_is_refused_before_tracking(tmp_path):
    from lumbar.models.registry import spec_of

    with pytest.raises(InputError, match="a back_pain model"):
        track_sequence(np.zeros((2, 64, 64)), [RotatedBox(32, 32, 10, 10, 0)], ["L1"], spec_of("back_pain").weights)


def test_a_folder_of_frames_is_tracked_like_the_video_of_them(pooling_onnx, tmp_path):
    from PIL import Image

    from lumbar.api import track

    frames, truth = moving_box_frames(np.random.default_rng(3), n=4)
    folder = tmp_path / "run"
    folder.mkdir()
    for k, frame in enumerate(frames):  # named so that natural order differs from the names' sort order
        Image.fromarray(np.clip(frame * 80 + 40, 0, 255).astype(np.uint8)).save(folder / f"frame{k * 5}.png")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"boxes": [{"name": "L1", **truth[0].to_dict()}]}))
    result = track(folder, boxes, model=str(pooling_onnx))
    assert len(result.boxes) == 4
    assert np.hypot(result.boxes[-1][0].cx - truth[-1].cx, result.boxes[-1][0].cy - truth[-1].cy) < 2


# --- frames at another pixel size -------------------------------------------------------------------------------


def centre_and_angle_errors(result: TrackResult, truth: list[RotatedBox], zoom: int) -> tuple[float, float]:
    """The largest centre error (in the unzoomed picture's pixels) and angle error (°) over the frames."""
    centre = [np.hypot(f[0].cx - w.cx, f[0].cy - w.cy) / zoom for f, w in zip(result.boxes, truth)]
    angle = [abs(f[0].angle_deg - w.angle_deg) for f, w in zip(result.boxes, truth)]
    return max(centre), max(angle)


@pytest.mark.parametrize("zoom", [2, 4])
def test_a_sequence_at_a_finer_pixel_size_is_tracked_as_well_as_at_the_trained_one(pooling_onnx, zoom):
    """The same moving body on a detector with 2 or 4 times as many pixels: its box is 2-4 times the bodies the
    tracker was trained on, and its crops are sampled to bring it back to that size."""
    plain, plain_truth = moving_box_frames(np.random.default_rng(0))
    fine, fine_truth = moving_box_frames(np.random.default_rng(0), zoom=zoom)
    expected = centre_and_angle_errors(track_sequence(plain, plain_truth[:1], ["L1"], pooling_onnx), plain_truth, 1)
    got = centre_and_angle_errors(track_sequence(fine, fine_truth[:1], ["L1"], pooling_onnx), fine_truth, zoom)
    assert got[0] < 1.5 and got[1] < 3.5, (got, expected)  # the bounds the unzoomed sequence meets
    assert got[0] < expected[0] + 0.5 and got[1] < expected[1] + 1.0, (got, expected)


def test_bodies_of_a_trained_size_are_tracked_on_the_frames_own_pixels():
    from lumbar.tasks.tracking import TYPICAL_BODY_PX, pixels_per_crop_pixel

    assert pixels_per_crop_pixel([RotatedBox(0, 0, 34, 22, 0), RotatedBox(0, 0, 30, 20, 5)]) == 1.0
    assert pixels_per_crop_pixel([RotatedBox(0, 0, 68, 44, 0)]) == pytest.approx(np.sqrt(68 * 44) / TYPICAL_BODY_PX)
    assert pixels_per_crop_pixel([RotatedBox(0, 0, 8, 8, 0)]) == pytest.approx(8 / TYPICAL_BODY_PX)


# --- the order of the bodies ------------------------------------------------------------------------------------


def test_bodies_listed_from_the_feet_up_give_the_same_intervertebral_angles(pooling_onnx):
    frames, truth = moving_box_frames(np.random.default_rng(1), n=4, step_deg=0.0)
    upper, lower = truth[0], RotatedBox(60, 100, 30, 20, 0.0)
    for names in (["L1", "L2"], ["upper", "lower"]):  # named by level, or by anything (then ordered by place)
        down = track_sequence(frames, [upper, lower], names, model_path=pooling_onnx)
        up = track_sequence(frames, [lower, upper], names[::-1], model_path=pooling_onnx)
        key = f"{names[0]}/{names[1]}"
        assert down.names == up.names == names and list(up.angles_deg) == [key]
        assert up.angles_deg[key] == down.angles_deg[key] and up.angles_deg[key][0] == pytest.approx(-5)


def test_boxes_are_read_from_head_to_feet_by_level_name_or_by_place(tmp_path):
    table = tmp_path / "boxes.csv"
    table.write_text("name,cx,cy,width,height,angle_deg\nL3,50,40,30,20,0\nL1,50,120,30,20,0\nL2,50,80,30,20,0\n")
    assert read_boxes(table)[1] == ["L1", "L2", "L3"]  # by name, wherever the boxes are
    table.write_text("name,cx,cy,width,height,angle_deg\nc,50,120,30,20,0\na,50,40,30,20,0\nb,52,80,30,20,0\n")
    assert read_boxes(table)[1] == ["a", "b", "c"]  # by place: the top of the frame first
    table.write_text("name,cx,cy,width,height,angle_deg\nx,40,40,30,20,0\ny,80,42,30,20,0\n")
    with pytest.raises(InputError, match=r"boxes\.csv: the boxes of x and y lie side by side"):
        read_boxes(table)


# --- files that are not what they claim ---------------------------------------------------------------------------


def test_boxes_nested_too_deeply_and_a_network_of_fixed_size_are_refused_in_one_line(pooling_onnx, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from lumbar.cli import app
    from lumbar.models.registry import spec_of

    frames, truth = moving_box_frames(np.random.default_rng(2), n=3)
    video = _gif(frames, tmp_path / "run.gif")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"boxes": [{"name": "L3", **truth[0].to_dict()}]}))
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000)
    fixed = tmp_path / "us_only.onnx"  # the ultrasound network alone: no record, an input of one fixed size
    shutil.copy(spec_of("ultrasound").weights, fixed)
    cases = {
        "nested.json: nested too deeply to be a boxes file": ["--boxes", str(nested), "--model", str(pooling_onnx)],
        "us_only.onnx: not a tracking model (its input is fixed at": ["--boxes", str(boxes), "--model", str(fixed)],
    }
    for message, args in cases.items():
        result = CliRunner().invoke(app, ["track", video, *args, "-o", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split()) and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
