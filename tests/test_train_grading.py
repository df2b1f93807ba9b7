"""Grading training: folds by patient, resumable per fold, calibration fitted on validation, ONNX export."""

import json
from typing import ClassVar

import numpy as np
import pytest

from lumbar.datasets.grading import GradingSample
from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES
from lumbar.tasks.disc_crops import CROP_SHAPE
from lumbar.train.grading import (
    GRADES,
    GradingConfig,
    cross_validate,
    fit_temperatures,
    fit_thresholds,
    save_samples,
    train_grading,
)


def synthetic_samples(n_patients=10, per_patient=6, seed=0):
    """Crops whose brightness encodes the Pfirrmann grade; herniation marked by a bright posterior blob."""
    rng = np.random.default_rng(seed)
    samples = []
    for p in range(n_patients):
        for k in range(per_patient):
            pfirrmann = int(rng.integers(1, 6))
            herniation = int(rng.random() < 0.3)
            crop = rng.normal(0.2, 0.02, CROP_SHAPE).astype(np.float32)
            crop[26:38, 20:76] = 1.0 - 0.15 * pfirrmann
            if herniation:
                crop[28:36, 76:86] = 0.9
            grades = dict.fromkeys(GRADES, 0)
            grades.update(pfirrmann=pfirrmann, herniation=herniation)
            samples.append(GradingSample(str(p), f"{p}_t2", f"disc {k}", crop, grades))
    return samples


def test_temperature_and_threshold_are_fitted_on_validation():
    y = {g: np.zeros(200, int) for g in GRADES}
    y["pfirrmann"] = np.repeat([1, 2, 3, 4, 5], 40)
    y["herniation"] = np.r_[np.zeros(180, int), np.ones(20, int)]
    logits = np.zeros((200, 15))
    logits[np.arange(200), np.searchsorted([1, 2, 3, 4, 5], y["pfirrmann"])] = 20.0  # right but overconfident
    logits[:180, 9] = -1.0
    logits[180:, 9] = 0.2  # positives score higher, but below 0.5 after a sigmoid: the threshold must move
    temperatures = fit_temperatures(logits, y)
    from lumbar.tasks.grading import calibrated_probabilities

    thresholds = fit_thresholds(calibrated_probabilities(logits, temperatures), y)
    assert temperatures["pfirrmann"] < 1.0  # always right: sharpening lowers the loss
    p = calibrated_probabilities(logits, temperatures)["herniation"]
    assert ((p >= thresholds["herniation"]) == (y["herniation"] == 1)).all()


@pytest.fixture(scope="module")
def tiny_grading_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("grading")
    save_samples(synthetic_samples(), out / "samples.npz")
    cfg = GradingConfig(data=str(out), out=str(out), folds=2, steps=20, studies_per_step=2, val_every=10)
    from lumbar.models.registry import load_model

    return load_model("grading-tiny", str(train_grading(cfg)))


def test_analyze_adds_grades_and_evidence_when_a_grading_model_is_there(
    tmp_path, phantom, tiny_grading_model, monkeypatch
):
    import lumbar.pipelines.mr_sagittal as mr_sagittal
    from lumbar.api import analyze
    from lumbar.io.write import write_nifti

    monkeypatch.setattr(mr_sagittal, "grading_model", lambda: tiny_grading_model)
    write_nifti(phantom.image.array, phantom.image, tmp_path / "scan.nii.gz")
    findings = analyze(tmp_path / "scan.nii.gz", tmp_path / "out").findings
    graded = [d for d in findings.discs if d.grades]
    assert graded and set(graded[0].grades) == set(GRADES)
    assert findings.models["grading"].startswith("grading-tiny")
    assert list((tmp_path / "out" / "scan" / "heatmaps").glob("*_pfirrmann.png"))
    assert "Evidence for the grades" in (tmp_path / "out" / "scan" / "report.html").read_text()


def test_cross_validation_resumes_per_fold_and_exports(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    save_samples(synthetic_samples(), out / "samples.npz")
    cfg = GradingConfig(data=str(tmp_path), out=str(out), folds=2, steps=30, studies_per_step=2, val_every=10)
    cross_validate(__import__("lumbar.train.grading", fromlist=["load_samples"]).load_samples(cfg), cfg)
    first = (out / "fold_0.json").read_text()
    (out / "fold_1.json").unlink()
    path = train_grading(cfg)  # fold 0 is kept, fold 1 is redone, then the final model
    assert (out / "fold_0.json").read_text() == first
    report = json.loads((out / "cv.json").read_text())
    assert report["n_patients"] == 10 and set(report["metrics"]) == set(ORDINAL_GRADES) | set(BINARY_GRADES)
    assert "kappa_ci95" in report["metrics"]["pfirrmann"] and "auc" in report["metrics"]["herniation"]
    assert report["metrics_same_patient"] == report["metrics"]  # one series per patient: nothing to grade together
    meta = json.loads((out / "grading.json").read_text())
    assert set(meta["temperatures"]) == set(GRADES) and path.suffix == ".onnx"
    from lumbar.models.registry import load_model
    from lumbar.tasks.grading import grade_crops, occlusion_maps

    model = load_model("grading-test", str(path))
    grades = grade_crops([s.crop for s in synthetic_samples(1, 2)], model)
    assert set(grades[0]) == set(GRADES) and 0 <= grades[0]["pfirrmann"]["probability"] <= 1
    assert abs(sum(grades[0]["pfirrmann"]["probabilities"].values()) - 1) < 1e-4
    heat = occlusion_maps(synthetic_samples(1, 1)[0].crop, model, {"pfirrmann": grades[0]["pfirrmann"]["value"]})[
        "pfirrmann"
    ]
    assert heat.shape == CROP_SHAPE and heat.max() <= 1


def test_occlusion_evidence_lies_where_the_decision_comes_from():
    """A stand-in model that looks only at the top-left corner: hiding anything else changes nothing."""
    from lumbar.grades import grading_outputs, n_grading_outputs
    from lumbar.tasks.grading import occlusion_maps

    class CornerModel:
        meta: ClassVar[dict] = {}

        def __call__(self, batch, context):
            logits = np.zeros((len(batch), n_grading_outputs()), np.float32)
            corner = batch[:, 0, :16, :16].mean(axis=(1, 2))
            logits[:, grading_outputs()["pfirrmann"].start] = 20 * corner  # Pfirrmann 1 the brighter the corner
            logits[:, grading_outputs()["herniation"].start] = 20 * corner - 5
            return logits

    crop = np.zeros(CROP_SHAPE, np.float32)
    crop[:16, :16] = 1.0
    crop[40:, 60:] = 0.5
    maps = occlusion_maps(crop, CornerModel(), {"pfirrmann": 1, "herniation": 1})
    for heat in maps.values():
        assert heat[:16, :16].mean() > 0.3 and heat[30:, 40:].max() == 0.0


def test_study_network_grades_each_disc_beside_its_own_study():
    """Training (several studies in one batch) and inference (one study, its discs as context) agree,
    and a disc's logits depend on the other discs of its study."""
    import torch

    from lumbar.models.networks import StudyGradingNet

    torch.manual_seed(0)
    net = StudyGradingNet().eval()
    a, b = torch.rand(3, 1, *CROP_SHAPE), torch.rand(4, 1, *CROP_SHAPE)
    with torch.no_grad():
        together = net.forward_studies(torch.cat([a, b]), torch.tensor([0, 0, 0, 1, 1, 1, 1]))
        torch.testing.assert_close(together[:3], net(a, a), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(together[3:], net(b, b), atol=1e-5, rtol=1e-4)
        assert not torch.allclose(net(a[:1], a), net(a[:1], b))


def test_without_study_context_a_disc_is_graded_from_its_own_crop(tmp_path):
    """The context's ablation: the same disc gets the same logits whatever its study, in training and at inference,
    and the exported ONNX still takes (and ignores) the context input the pipeline gives it."""
    import onnxruntime as ort
    import torch

    from lumbar.models.export import export_onnx
    from lumbar.models.networks import StudyGradingNet

    torch.manual_seed(0)
    net = StudyGradingNet(study_context=False).eval()
    a, b = torch.rand(3, 1, *CROP_SHAPE), torch.rand(4, 1, *CROP_SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(net(a[:1], a), net(a[:1], b))
        together = net.forward_studies(torch.cat([a, b]), torch.tensor([0, 0, 0, 1, 1, 1, 1]))
        torch.testing.assert_close(together[:3], net(a, b), atol=1e-5, rtol=1e-4)
    path = export_onnx(net, {"image": a, "context": b}, tmp_path / "g.onnx", {"image": {0: "n"}, "context": {0: "m"}})
    session = ort.InferenceSession(str(path))
    assert {i.name for i in session.get_inputs()} == {"image", "context"}
    logits = session.run(None, {"image": a.numpy(), "context": b[:2].numpy()})[0]
    np.testing.assert_allclose(logits, net(a, a).detach().numpy(), atol=1e-4)


def test_evaluate_grading_command_on_real_slices(tmp_path):
    """`lumbar evaluate grading` on a few SPIDER patients: coverage, every grade's metrics, a JSON file.
    (The shipped model has seen these patients: this checks the command, not the model's accuracy.)"""
    import shutil

    from conftest import shared
    from typer.testing import CliRunner

    from lumbar.cli import app

    spider = shared("spider")
    images = tmp_path / "images"
    images.mkdir()
    for name in ("100_t2.png", "104_t2.png", "105_t2.png", "106_t1.png"):
        shutil.copy(spider / "midsag" / name, images / name)
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "grading",
            "--images",
            str(images),
            "--gradings",
            str(spider / "radiological_gradings.csv"),
            "--overview",
            str(spider / "overview.csv"),
            "--json",
            str(tmp_path / "grading.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "grading.json").read_text())
    assert report["n_patients"] == 4 and 0.8 <= report["coverage"]["overall"] <= 1.0
    assert set(report["metrics"]) == set(GRADES) and "within_one" in report["metrics"]["pfirrmann"]
    # the shipped model learnt from all four: the figures are said to be in-sample, on screen and in the JSON
    assert report["patients_seen_in_training"] == ["100", "104", "105", "106"]
    assert "in-sample: 4 of these 4 patients" in " ".join(result.output.split())


def test_evaluating_a_patients_series_together_fuses_them_as_analyze_does(monkeypatch, tmp_path):
    """`evaluate grading --same-patient` grades each patient's series as `analyze --same-patient` does: the two
    series of patient 106 end with one set of grades per disc (their fused probabilities), read through the
    pipeline's own fusion (flagged series alone, cut views left out)."""
    from conftest import shared

    import lumbar.pipelines.mr_sagittal as mr_sagittal
    from lumbar.evaluate.grading import evaluate_grading_folder

    spider = shared("spider")
    fused_calls = []
    real = mr_sagittal.fuse_where_trusted

    def spy(segs, gradings):
        out = real(segs, gradings)
        fused_calls.append(out[0])
        return out

    monkeypatch.setattr(mr_sagittal, "fuse_where_trusted", spy)
    import lumbar.datasets.grading as datasets_grading

    joined = []
    real_join = datasets_grading.join

    def join_spy(series, probabilities):
        joined.append(probabilities)
        return real_join(series, probabilities)

    monkeypatch.setattr(datasets_grading, "join", join_spy)
    for name in ("106_t1.png", "106_t2.png"):
        (tmp_path / name).symlink_to(spider / "midsag" / name)
    report = evaluate_grading_folder(
        tmp_path, spider / "radiological_gradings.csv", spider / "overview.csv", same_patient=True
    )
    assert report["same_patient"] and report["n_patients"] == 1 and len(fused_calls) == 1
    t1, t2 = fused_calls[0]
    together = [level for level in set(t1.probabilities) & set(t2.probabilities) if len(t1.graded_from[level]) == 2]
    assert together, "patient 106's two series are joined on at least one disc"
    for level in together:  # both series report the same fused grades, and those are what is scored
        np.testing.assert_allclose(t1.probabilities[level]["pfirrmann"], t2.probabilities[level]["pfirrmann"])
    assert [p[together[0]]["pfirrmann"] for p in joined[0]] == [t1.probabilities[together[0]]["pfirrmann"]] * 2


def test_cross_validation_grades_a_patients_series_together_fold_by_fold(tmp_path):
    """Same-patient figures: each disc's rows (one per series) get the mean of their out-of-fold
    probabilities, decided with their own fold's thresholds."""
    from lumbar.train.grading import cross_validate

    samples = []
    for p in range(4):
        for series in ("t1", "t2"):
            for level in ("L4/L5", "L5/S1"):
                grades = dict.fromkeys(GRADES, 0)
                grades.update(pfirrmann=3, herniation=int(level == "L5/S1"))
                samples.append(GradingSample(str(p), f"{p}_{series}", level, np.zeros(CROP_SHAPE, np.float32), grades))
    cfg = GradingConfig(data=str(tmp_path), out=str(tmp_path), folds=2)
    # Out-of-fold herniation probabilities: T1 and T2 disagree; only their mean crosses the 0.5 threshold right.
    for k, patients in enumerate(({"0", "2"}, {"1", "3"})):
        index = [i for i, s in enumerate(samples) if s.patient in patients]
        probs = {
            g: [[0.2] * len(ORDINAL_GRADES[g])] * len(index) if g in ORDINAL_GRADES else [0.1] * len(index)
            for g in GRADES
        }
        probs["herniation"] = [
            (0.9 if samples[i].series.endswith("t2") else 0.3)
            if samples[i].level == "L5/S1"
            else (0.7 if samples[i].series.endswith("t2") else 0.1)
            for i in index
        ]
        (tmp_path / f"fold_{k}.json").write_text(
            json.dumps(
                {"index": index, "temperatures": {}, "probs": probs, "thresholds": dict.fromkeys(BINARY_GRADES, 0.5)}
            )
        )
    report = cross_validate(samples, cfg)
    alone, together = report["metrics"]["herniation"], report["metrics_same_patient"]["herniation"]
    assert alone["balanced_accuracy"] == 0.5  # t2 calls every disc, t1 none
    assert together["balanced_accuracy"] == 1.0  # means 0.6 (L5/S1) and 0.4 (L4/L5)


def test_ordinal_targets_weigh_classes_by_distance_from_the_grade():
    import torch

    from lumbar.train.grading import ordinal_targets

    soft = ordinal_targets(torch.tensor([0, 2, 4]), 5, spread=1.0)
    torch.testing.assert_close(soft.sum(1), torch.ones(3))
    assert soft.argmax(1).tolist() == [0, 2, 4]
    row = soft[1]  # grade 3 of 1..5: symmetric, each step away weighted exp(-d^2) of the grade's own weight
    torch.testing.assert_close(row[1] / row[2], torch.tensor(np.exp(-1.0), dtype=torch.float32))
    torch.testing.assert_close(row[0] / row[2], torch.tensor(np.exp(-4.0), dtype=torch.float32))
    torch.testing.assert_close(row[0], row[4])
    sharp = ordinal_targets(torch.tensor([3]), 5, spread=50.0)
    torch.testing.assert_close(sharp, torch.nn.functional.one_hot(torch.tensor([3]), 5).float())


def test_ordinal_loss_prefers_a_near_miss_and_is_plain_cross_entropy_without_spread():
    import torch

    from lumbar.train.grading import _encode, _loss, _weights

    y = {g: np.zeros(2, int) for g in GRADES}
    y["pfirrmann"] = np.array([1, 1])
    enc, weights = _encode(y), _weights(y)
    near, far = torch.zeros(1, 15), torch.zeros(1, 15)
    near[0, 1] = far[0, 4] = 5.0  # Pfirrmann 2 or 5 called for a true 1
    one = {k: v[:1] for k, v in enc.items()}
    assert _loss(near, one, weights) == pytest.approx(float(_loss(far, one, weights)))  # plain: a miss is a miss
    assert _loss(near, one, weights, ordinal_spread=1.0) < _loss(far, one, weights, ordinal_spread=1.0)
    right = torch.zeros(1, 15)
    right[0, 0] = 5.0
    assert _loss(right, one, weights, ordinal_spread=1.0) < _loss(near, one, weights, ordinal_spread=1.0)


def test_weight_averaging_keeps_a_smoothed_network(tmp_path):
    """With ema_decay the kept network is the moving average: trained the same way, its weights differ from the
    raw network's, and the fit still calibrates and returns a working model."""
    import torch

    from lumbar.train.grading import fit

    samples = synthetic_samples(6, 6)
    train, val = samples[:24], samples[24:]
    base = GradingConfig(data="", out=str(tmp_path), steps=20, studies_per_step=2, val_every=10, patience=5)
    plain, *_ = fit(train, val, base, seed=0)
    averaged, temperatures, thresholds, step = fit(
        train, val, GradingConfig(**{**base.__dict__, "ema_decay": 0.9}), seed=0
    )
    weights = [k for k in plain.state_dict() if k.endswith("weight")]
    assert weights and not any(torch.equal(plain.state_dict()[k], averaged.state_dict()[k]) for k in weights)
    assert set(temperatures) == set(GRADES) and set(thresholds) == set(BINARY_GRADES) and step in (10, 20)


def test_train_command_passes_the_training_choices_through(tmp_path, monkeypatch):
    """`lumbar train grading --ordinal-spread 1 --ema-decay 0.98 --no-study-context` trains with exactly those
    choices; without them, with the shipped model's."""
    from typer.testing import CliRunner

    import lumbar.train.grading as training
    from lumbar.cli import app

    (tmp_path / "midsag").mkdir()
    (tmp_path / "radiological_gradings.csv").write_text("Patient,IVD label\n")
    seen = {}

    def fake_train(cfg, progress):
        seen["cfg"] = cfg
        return tmp_path / "grading.onnx"

    monkeypatch.setattr(training, "train_grading", fake_train)
    args = ["train", "grading", "--data", str(tmp_path), "-o", str(tmp_path / "run"), "--steps", "7"]
    result = CliRunner().invoke(app, [*args, "--ordinal-spread", "1", "--ema-decay", "0.98", "--no-study-context"])
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.steps, cfg.ordinal_spread, cfg.ema_decay, cfg.folds, cfg.study_context) == (7, 1.0, 0.98, 5, False)
    assert CliRunner().invoke(app, args).exit_code == 0
    plain = seen["cfg"]  # plain cross-entropy, raw weights, the study as context
    assert (plain.ordinal_spread, plain.ema_decay, plain.study_context) == (0.0, 0.0, True)
