"""MR–CT fusion: registration recovers a known misalignment, the wavelet rules and measures give known answers,
training and inference fuse alike, and `lumbar fuse` writes whole results or refuses in one line."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from lumbar.cli import app
from lumbar.image import SpineImage
from lumbar.phantom import make_phantom
from lumbar.tasks import fusion as F

SHAPE, SPACING = (48, 128, 112), (2.0, 1.5, 1.5)


@pytest.fixture(scope="module")
def pair():
    """One phantom anatomy as CT and as T2 MRI, on one isotropic-ish grid."""
    ct = make_phantom(contrast="CT", shape=SHAPE, spacing_mm=SPACING, seed=1)
    mr = make_phantom(contrast="T2", shape=SHAPE, spacing_mm=SPACING, seed=2)
    return mr, ct


def misaligned(mr: SpineImage, rotation_deg, translation_mm) -> tuple[SpineImage, sitk.Euler3DTransform]:
    """``mr`` moved by a known rigid transform; returns it and the true fixed-to-moving transform."""
    volume = F.to_sitk(mr)
    truth = sitk.Euler3DTransform()
    truth.SetCenter(volume.TransformContinuousIndexToPhysicalPoint([s / 2 for s in volume.GetSize()]))
    truth.SetRotation(*np.deg2rad(rotation_deg))
    truth.SetTranslation(tuple(float(t) for t in translation_mm))
    return F.moved_by(mr, truth), truth


def test_a_moved_image_puts_each_voxel_where_the_transform_sends_it(pair):
    mr, _ = pair
    moved, truth = misaligned(mr.image, (5, -3, 7), (6, -9, 4))
    before, after = F.to_sitk(mr.image), F.to_sitk(moved)
    for ijk in [(0, 0, 0), (10, 20, 30), (47, 127, 111)]:
        sitk_ijk = (ijk[0], ijk[1], ijk[2])
        assert np.allclose(
            after.TransformIndexToPhysicalPoint(sitk_ijk),
            truth.TransformPoint(before.TransformIndexToPhysicalPoint(sitk_ijk)),
            atol=1e-6,
        )


# --- geometry and registration -----------------------------------------------------------------------------------


def test_sitk_geometry_is_the_affine_in_lps():
    affine = np.array([[0.0, 0, 2.5, -40], [1.2, 0, 0, 10], [0, 0.8, 0, 7], [0, 0, 0, 1]])
    image = SpineImage(np.zeros((5, 6, 7), np.float32), affine)
    volume = F.to_sitk(image)
    ijk = (2, 3, 4)
    ras = affine @ np.array([*ijk, 1.0])
    lps = volume.TransformIndexToPhysicalPoint(ijk)
    assert np.allclose(lps, [-ras[0], -ras[1], ras[2]])
    assert np.array_equal(
        F.from_sitk(F.to_sitk(image.with_array(np.arange(210.0).reshape(5, 6, 7)))), np.arange(210.0).reshape(5, 6, 7)
    )


def test_affine_parts_and_target_errors_have_known_values():
    shift = sitk.TranslationTransform(3, (3.0, 4.0, 0.0))
    matrix, offset = F.affine_parts(shift)
    assert np.allclose(matrix, np.eye(3)) and np.allclose(offset, [3, 4, 0])
    points = np.random.default_rng(0).normal(0, 50, (20, 3))
    assert np.allclose(F.target_errors_mm(shift, sitk.Euler3DTransform(), points), 5.0)
    turn = sitk.Euler3DTransform()
    turn.SetRotation(0.0, 0.0, math.pi / 2)  # about z: (x, y) -> (-y, x)
    # A point at distance r from the axis moves by r * sqrt(2) under a quarter turn.
    assert np.allclose(
        F.target_errors_mm(turn, sitk.Euler3DTransform(), np.array([[10.0, 0, 0], [0, 0, 7]])), [10 * math.sqrt(2), 0.0]
    )


@pytest.mark.slow
def test_registration_recovers_a_known_rigid_misalignment_and_repeats_exactly(pair):
    mr, ct = pair
    moved, truth = misaligned(mr.image, (6, -4, 8), (8, -10, 5))
    points = F.world_points_lps(ct.image, ct.instances > 0)
    before = F.target_errors_mm(sitk.Euler3DTransform(), truth, points)
    registration = F.register(ct.image, moved)
    errors = F.target_errors_mm(registration.transform, truth, points)
    assert before.mean() > 10
    assert errors.mean() < 1.0 and errors.max() < 1.5, (errors.mean(), errors.max())
    assert registration.initialised_by == "world"
    # The metric's random voxels come from a fixed seed and one thread adds them up: a second run, with ITK set to
    # 4 threads around it (which the registration overrides), finds the very same transform.
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(4)
    try:
        again = F.register(ct.image, moved)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    assert again.transform.GetParameters() == registration.transform.GetParameters()
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == threads


def test_a_clock_seed_is_refused(pair):
    mr, ct = pair
    with pytest.raises(ValueError, match="seed"):
        F.register(ct.image, mr.image, seed=0)


@pytest.mark.slow
def test_the_affine_stage_recovers_a_scaling_the_rigid_one_cannot(pair):
    mr, ct = pair
    volume = F.to_sitk(mr.image)
    truth = sitk.AffineTransform(3)
    truth.SetCenter(volume.TransformContinuousIndexToPhysicalPoint([s / 2 for s in volume.GetSize()]))
    turn = sitk.Euler3DTransform()
    turn.SetRotation(*np.deg2rad((4, -3, 5)))
    # 6% longer left-right and 5% shorter head-feet than the CT: a mis-set MR field of view.
    truth.SetMatrix(tuple((np.array(turn.GetMatrix()).reshape(3, 3) @ np.diag([1.06, 1.0, 0.95])).ravel()))
    truth.SetTranslation((5.0, -6.0, 4.0))
    moved = F.moved_by(mr.image, truth)
    points = F.world_points_lps(ct.image, ct.instances > 0)
    rigid = F.target_errors_mm(F.register(ct.image, moved).transform, truth, points)
    affine = F.register(ct.image, moved, affine=True)
    errors = F.target_errors_mm(affine.transform, truth, points)
    assert isinstance(affine.transform, sitk.AffineTransform)
    assert errors.mean() < 2.5 and errors.mean() < rigid.mean() - 0.5, (errors.mean(), rigid.mean())


def test_images_far_apart_start_from_their_centres(pair):
    mr, ct = pair
    far = SpineImage(
        mr.image.array,
        mr.image.affine @ np.diag([1, 1, 1, 1.0])
        + np.array([[0, 0, 0, 400.0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]),
    )
    assert F._overlap_fraction(F.to_sitk(ct.image), F.to_sitk(far)) == 0.0
    assert F._overlap_fraction(F.to_sitk(ct.image), F.to_sitk(mr.image)) == pytest.approx(1.0)


def lower_part(image: SpineImage, share: float) -> SpineImage:
    """The inferior ``share`` of ``image`` (its last axis runs upwards), left where it was in the world."""
    keep = round(share * image.shape[2])
    return SpineImage(image.array[:, :, :keep], image.affine.copy(), modality=image.modality, source=image.source)


def test_a_ct_cropped_inside_the_mrs_field_of_view_overlaps_it_wholly(pair):
    mr, ct = pair
    crop = F.to_sitk(lower_part(ct.image, 0.45))
    assert F._overlap_fraction(crop, F.to_sitk(mr.image)) == pytest.approx(1.0)
    assert F._overlap_fraction(F.to_sitk(mr.image), crop) == pytest.approx(1.0)  # whichever is fixed


@pytest.mark.parametrize("share", [0.45, 0.3])
def test_an_aligned_mr_larger_than_the_ct_registers_from_their_shared_world(pair, share):
    """An MR of the whole lumbar spine beside a CT of its lower part, already aligned: the search starts where
    both images say they are, not from their centres (which lie a level or more apart)."""
    mr, ct = pair
    crop = lower_part(ct.image, share)
    registration = F.register(crop, mr.image)
    points = F.world_points_lps(crop, ct.instances[:, :, : crop.shape[2]] > 0)
    errors = F.target_errors_mm(registration.transform, sitk.Euler3DTransform(), points)
    assert registration.initialised_by == "world"
    assert errors.mean() < 1.0, errors.mean()


# --- wavelet fusion ----------------------------------------------------------------------------------------------


def test_constant_images_fuse_to_their_average():
    a, b = np.full((6, 32, 24), 0.8, np.float32), np.full((6, 32, 24), 0.2, np.float32)
    for dims in (2, 3):
        assert np.allclose(F.wavelet_fuse(a, b, rule="classic", dims=dims), 0.5, atol=1e-6)


def test_an_image_fused_with_itself_is_itself():
    a = np.random.default_rng(1).random((4, 30, 22)).astype(np.float32)  # odd-sized planes: padded and cropped
    for dims in (2, 3):
        assert np.allclose(F.wavelet_fuse(a, a, rule="classic", dims=dims), a, atol=1e-5)


def test_classic_rules_average_coarse_content_and_keep_the_stronger_detail():
    b = np.full((1, 16, 16), 0.5, np.float32)  # no detail at all
    stripes = np.zeros_like(b)
    stripes[0, :, 1::2] = 1.0  # all of it finest detail, mean 0.5: kept whole beside b's equal mean
    assert np.allclose(F.wavelet_fuse(stripes, b, rule="classic"), stripes, atol=1e-5)
    halves = np.zeros_like(b)
    halves[0, :, 8:] = 1.0  # an edge on the coarsest blocks' boundary: all of it approximation, averaged with b
    assert np.allclose(F.wavelet_fuse(halves, b, rule="classic"), (halves + b) / 2, atol=1e-5)


def test_network_rule_follows_the_weights_it_is_given():
    rng = np.random.default_rng(2)
    a, b = rng.random((4, 32, 32)).astype(np.float32), rng.random((4, 32, 32)).astype(np.float32)
    ones = lambda stack: np.ones((len(stack), 1, *stack.shape[2:]), np.float32)  # noqa: E731
    zeros = lambda stack: np.zeros((len(stack), 1, *stack.shape[2:]), np.float32)  # noqa: E731
    for dims in (2, 3):
        assert np.allclose(F.wavelet_fuse(a, b, rule="cnn", model=ones, dims=dims), a, atol=1e-5)
        assert np.allclose(F.wavelet_fuse(a, b, rule="cnn", model=zeros, dims=dims), b, atol=1e-5)


def test_wrong_fusion_arguments_are_refused():
    a = np.zeros((2, 8, 8), np.float32)
    with pytest.raises(ValueError, match="shape"):
        F.wavelet_fuse(a, np.zeros((2, 8, 9), np.float32))
    with pytest.raises(ValueError, match="weight model"):
        F.wavelet_fuse(a, a, rule="cnn")
    with pytest.raises(ValueError, match="rule"):
        F.wavelet_fuse(a, a, rule="max")


# --- the measures ------------------------------------------------------------------------------------------------


def test_entropy_and_mutual_information_known_values():
    half = np.zeros((10, 10))
    half[:5] = 1.0
    assert F.entropy_bits(half) == pytest.approx(1.0)
    assert F.entropy_bits(np.full((4, 4), 0.3)) == 0.0
    rng = np.random.default_rng(3)
    x = rng.random(400_000)
    assert F.mutual_information_bits(x, x) == pytest.approx(math.log2(F.MI_BINS), abs=0.01)  # uniform in 64 bins
    assert F.mutual_information_bits(x, rng.random(400_000)) < 0.01  # independent: 0 plus the histogram's bias


def test_q_abf_of_a_source_kept_whole_is_the_sigmoids_ceiling():
    a = np.zeros((1, 32, 32))
    a[0, 8:24, 8:24] = 1.0
    b = np.full_like(a, 0.4)  # no edges: carries no weight
    ceiling = 0.9994 / (1 + math.exp(-15 * (1 - 0.5))) * 0.9879 / (1 + math.exp(-22 * (1 - 0.8)))
    assert F.q_abf(a, b, a) == pytest.approx(ceiling, rel=1e-6)
    assert F.q_abf(a, b, b) < 0.05  # every edge of a lost
    assert math.isnan(F.q_abf(b, b, b))


def step_edge(vertical: bool) -> np.ndarray:
    """A plane dark on one side of a straight edge and bright on the other; the edge runs down the plane's
    columns (vertical) or along its rows (horizontal)."""
    plane = np.zeros((1, 48, 48))
    plane[0, :, 24:] = 1.0
    return plane if vertical else plane.transpose(0, 2, 1)


def test_q_abf_scores_an_edge_kept_alike_whatever_its_orientation():
    """A fused image that keeps the edge (a little dimmer, a little noise): near a horizontal edge the gradient
    along x is noise around 0, so its orientation flips between +90° and -90°; that is one orientation."""
    scores = {}
    for vertical in (True, False):
        source = step_edge(vertical)
        kept = 0.9 * source + 0.05 + np.random.default_rng(8).normal(0, 0.01, source.shape)
        scores[vertical] = F.q_abf(source, np.full_like(source, 0.4), kept)
    assert scores[True] > 0.9 and scores[False] == pytest.approx(scores[True], abs=0.02), scores


def test_ssim_of_an_image_with_itself_is_one():
    a = np.random.default_rng(4).random((2, 32, 32))
    assert F.ssim(a, a) == pytest.approx(1.0)
    assert F.ssim(a, 1 - a) < 0


# --- training graph = inference path -----------------------------------------------------------------------------


def test_training_fusion_equals_the_inference_path():
    torch = pytest.importorskip("torch")
    from lumbar.models.networks import FusionWeightNet
    from lumbar.train.fusion import check_haar, fuse_torch, numpy_model

    check_haar()
    torch.manual_seed(0)
    net = FusionWeightNet().eval()
    rng = np.random.default_rng(5)
    mr, ct = rng.random((2, 64, 48)).astype(np.float32), rng.random((2, 64, 48)).astype(np.float32)
    with torch.no_grad():
        trained = fuse_torch(net, torch.from_numpy(mr)[:, None], torch.from_numpy(ct)[:, None])[:, 0].numpy()
    inferred = F.wavelet_fuse(mr, ct, rule="cnn", model=numpy_model(net), dims=2)
    assert np.allclose(np.clip(trained, 0, 1), inferred, atol=1e-4)


def test_the_shipped_network_gives_weights_in_unit_range():
    from lumbar.models.registry import load_model

    model = load_model("fusion")
    stack = np.random.default_rng(6).normal(0, 1, (2, 3, 20, 36)).astype(np.float32)
    weights = model(stack)
    assert weights.shape == (2, 1, 20, 36)
    assert weights.min() >= 0 and weights.max() <= 1


# --- the command -------------------------------------------------------------------------------------------------


def _save(image: SpineImage, values: np.ndarray, path) -> str:
    nib.save(nib.Nifti1Image(values, image.affine), str(path))
    return str(path)


@pytest.mark.slow
def test_lumbar_fuse_writes_a_whole_result_that_undoes_the_misalignment(pair, tmp_path):
    mr, ct = pair
    moved, truth = misaligned(mr.image, (4, 3, -6), (-7, 6, 9))
    mr_path = _save(moved, (moved.array * 1000).astype(np.float32), tmp_path / "mr.nii.gz")
    ct_path = _save(ct.image, ct.image.array.astype(np.int16), tmp_path / "ct.nii.gz")
    out = tmp_path / "fused"
    result = CliRunner().invoke(app, ["fuse", mr_path, ct_path, "-o", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert names == {
        "fusion.json",
        "fusion.png",
        "mr_on_ct.nii.gz",
        "transform.tfm",
        "fused_cnn.nii.gz",
        "fused_classic.nii.gz",
    }
    document = json.loads((out / "fusion.json").read_text())
    assert set(document["measures"]) == {"cnn", "classic", "mr_alone", "ct_alone"}
    assert document["needs_review"] == []
    assert document["registration"]["method"].startswith("Mattes mutual information, rigid (SimpleITK, seed 1")
    assert document["fusion"]["dims"] == 2 and set(document["fusion"]["rules"]) == {"cnn", "classic"}
    assert document["caution"].startswith("Experimental: the fusion network was trained") and "made pairs" in " ".join(
        result.output.split()
    )
    assert "Mattes metric" in result.output
    transform = sitk.ReadTransform(str(out / "transform.tfm"))
    errors = F.target_errors_mm(transform, truth, F.world_points_lps(ct.image, ct.instances > 0))
    assert errors.mean() < 2.0
    fused = nib.load(str(out / "fused_cnn.nii.gz"))
    assert fused.shape == ct.image.shape and np.allclose(fused.affine, ct.image.affine)
    values = fused.get_fdata()
    assert values.min() >= 0.0 and values.max() <= 1.0 + 1e-6
    # Run again into the same folder: the earlier fusion is replaced, whole.
    again = CliRunner().invoke(app, ["fuse", mr_path, ct_path, "-o", str(out), "--rule", "classic"])
    assert again.exit_code == 0, again.output
    assert not (out / "fused_cnn.nii.gz").exists()
    assert set(json.loads((out / "fusion.json").read_text())["fusion"]["rules"]) == {"classic"}  # what was used


def test_the_measures_read_at_most_64_evenly_spaced_planes():
    from lumbar.pipelines.fusion import MEASURE_PLANES, measure_step

    assert [measure_step(n) for n in (1, 64, 65, 127, 128, 129, 256)] == [1, 1, 2, 2, 2, 3, 4]
    assert max(len(range(0, n, measure_step(n))) for n in range(1, 1000)) == MEASURE_PLANES


def test_an_mr_that_shares_nothing_with_the_ct_is_flagged(pair):
    """Noise in place of the MR: registration ends somewhere, and the little the two images share says it failed."""
    from lumbar.pipelines.fusion import MIN_SHARED_MI_BITS, fuse_images

    mr, ct = pair
    noise = np.random.default_rng(0).random(mr.image.shape).astype(np.float32) * 1000
    result = fuse_images(mr.image.with_array(noise), ct.image, rules=("classic",))
    assert result.measures["mr_alone"]["mi_ct_bits"] < MIN_SHARED_MI_BITS
    assert any("mutual information" in reason for reason in result.needs_review)


def test_lumbar_fuse_refuses_bad_pairs_in_one_line(pair, tmp_path):
    mr, ct = pair
    mr_path = _save(mr.image, (mr.image.array * 1000).astype(np.float32), tmp_path / "mr.nii.gz")
    ct_path = _save(ct.image, ct.image.array.astype(np.int16), tmp_path / "ct.nii.gz")
    thin = _save(
        SpineImage(np.zeros((1, 64, 64), np.float32), np.eye(4)),
        np.zeros((1, 64, 64), np.float32),
        tmp_path / "thin.nii.gz",
    )
    foreign = tmp_path / "taken"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    cases = {
        "not a CT in Hounsfield units": [mr_path, mr_path],  # an MR given as the CT
        "slices each": [thin, ct_path],
        "did not write": [mr_path, ct_path, "-o", str(foreign)],
        "no such file": [str(tmp_path / "missing.nii.gz"), ct_path],
        "is a file; the output is a folder": [mr_path, ct_path, "-o", str(foreign / "notes.txt")],
        "wavelet dimensions 4": [mr_path, ct_path, "--dims", "4"],
        "fusion rule median": [mr_path, ct_path, "--rule", "classic,median"],
    }
    for message, args in cases.items():
        out = ["-o", str(tmp_path / "out")] if "-o" not in args else []
        result = CliRunner().invoke(app, ["fuse", *args, *out])
        assert result.exit_code == 2, (message, result.output)
        assert message in result.output.lower() or message in result.output, (message, result.output)
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_a_short_training_run_exports_a_network_and_its_record(tmp_path):
    pytest.importorskip("torch")
    from lumbar.models.registry import load_model
    from lumbar.train.fusion import FusionConfig, train_fusion

    path = train_fusion(FusionConfig(out=str(tmp_path), phantoms=3, steps=2, held_out_fraction=0.34))
    record = json.loads((tmp_path / "fusion.json").read_text())
    assert record["pairs"]["train"] > 0 and record["pairs"]["held_out"] > 0
    assert len(record["held_out_anatomies"]) == 1
    assert set(record["held_out"]["phantom"]) == {"cnn", "classic", "mr_alone", "ct_alone"}
    model = load_model("fusion", str(path))
    assert model(np.zeros((1, 3, 8, 8), np.float32)).shape == (1, 1, 8, 8)


def test_edges_are_measured_within_each_plane_never_across():
    rng = np.random.default_rng(7)
    stack, fused = rng.random((3, 24, 20)), rng.random((3, 24, 20))
    together, weights = F.edge_preservation(stack, fused)
    for k in range(3):
        alone, w = F.edge_preservation(stack[k : k + 1], fused[k : k + 1])
        assert np.allclose(together[k], alone[0]) and np.allclose(weights[k], w[0])


def test_lumbar_fuse_refuses_a_ct_as_the_mr_a_blank_mr_and_a_bad_model_in_one_line(pair, tmp_path):
    mr, ct = pair
    ct_path = _save(ct.image, ct.image.array.astype(np.int16), tmp_path / "ct.nii.gz")
    mr_path = _save(mr.image, (mr.image.array * 1000).astype(np.float32), tmp_path / "mr.nii.gz")
    blank = _save(mr.image, np.zeros(mr.image.shape, np.float32), tmp_path / "blank.nii.gz")
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(b"not a network")
    with_air = ct.image.array.astype(np.int16).copy()
    with_air[:, :, -12:] = -1000  # a real CT's field of view reaches air beyond the body
    ct_with_air = _save(ct.image, with_air, tmp_path / "ct_air.nii.gz")
    cases = {
        "as a CT in Hounsfield units has": [ct_with_air, ct_path],
        "one value throughout": [blank, ct_path],
        "not a network onnxruntime can load": [mr_path, ct_path, "--model", str(bad_model)],
    }
    for message, args in cases.items():
        result = CliRunner().invoke(app, ["fuse", *args, "-o", str(tmp_path / "out")])
        assert result.exit_code == 2, (message, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists()


def test_an_output_inside_an_input_folder_is_refused(tmp_path):
    from lumbar.outputs import check_fusion_folder

    series = tmp_path / "dicom"
    series.mkdir()
    (series / "001.dcm").write_bytes(b"")
    with pytest.raises(Exception, match="inside the input"):
        check_fusion_folder(series / "fused", (str(series), str(series / "001.dcm")))


def test_a_model_of_another_kind_is_refused_as_the_fusion_model():
    from lumbar.errors import InputError
    from lumbar.models.registry import load_model, spec_of

    with pytest.raises(InputError, match=r"a ultrasound model \(its record says so\), not a fusion model"):
        load_model("fusion", str(spec_of("ultrasound").weights))


def test_registrations_in_several_threads_leave_itks_thread_setting_as_it_was():
    import threading
    import time

    original = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(3)  # not 1, so that a setting left behind shows
    seen = []

    def work():
        with F._itk_threads(1):
            seen.append(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())
            time.sleep(0.05)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(original)
    assert seen == [1, 1, 1, 1] and after == 3


def test_an_affine_stage_that_ends_worse_than_the_rigid_one_is_set_aside():
    """A user's aligned phantom pair (128³ at 2 mm, the MR's values x 1000): the affine stage wandered 48 mm off (a
    head-to-feet shift and a shear) with nothing flagged; its metric ended worse than the rigid one's, so the rigid
    transform is kept and the registration says why. Either way, the result must stay on the anatomy."""
    ct = make_phantom(contrast="CT", shape=(128, 128, 128), spacing_mm=(2.0, 2.0, 2.0), seed=1)
    mr = make_phantom(contrast="T2", shape=(128, 128, 128), spacing_mm=(2.0, 2.0, 2.0), seed=2)
    mr_image = SpineImage(mr.image.array * 1000, mr.image.affine, modality="MR", source="mr")
    registration = F.register(ct.image, mr_image, affine=True)
    points = F.world_points_lps(ct.image, ct.instances > 0)
    errors = F.target_errors_mm(registration.transform, sitk.Euler3DTransform(), points)
    assert errors.mean() < 5.0, errors.mean()
    if registration.note:
        assert registration.note == F.AFFINE_WORSE and isinstance(registration.transform, sitk.Euler3DTransform)
        assert registration.describe()["method"].endswith(F.AFFINE_WORSE)
