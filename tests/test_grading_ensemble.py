"""Several grading runs shipped as one network: the mean of their calibrated probabilities, measured out of fold."""

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lumbar.cli import app
from lumbar.errors import InputError
from lumbar.grades import BINARY_GRADES, ORDINAL_GRADES, grading_outputs, n_grading_outputs
from lumbar.models.networks import GradingEnsemble
from lumbar.train.grading import GradingConfig, load_samples, out_of_fold, save_samples, train_grading
from lumbar.train.grading_ensemble import combine_grading_runs, ensemble_out_of_fold
from tests.test_train_grading import synthetic_samples


class FixedLogits(torch.nn.Module):
    """A stand-in member: the same logits for every disc, whatever the crop."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits, dtype=torch.float32)

    def forward(self, image, context):
        return self.logits.expand(len(image), -1)


def test_ensemble_output_gives_back_the_mean_of_the_members_calibrated_probabilities():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (2, n_grading_outputs()))
    temps = [dict.fromkeys(grading_outputs(), 2.0), {"pfirrmann": 0.5, "herniation": 4.0}]  # the rest at 1
    ensemble = GradingEnsemble([FixedLogits(row) for row in logits], temps)
    out = ensemble(torch.zeros(3, 1, 4, 4), torch.zeros(1, 1, 4, 4)).detach().numpy()
    assert out.shape == (3, n_grading_outputs())
    where = grading_outputs()
    # pfirrmann: member 0 at T=2, member 1 at T=0.5
    z0, z1 = logits[0, where["pfirrmann"]] / 2.0, logits[1, where["pfirrmann"]] / 0.5
    expected = (np.exp(z0) / np.exp(z0).sum() + np.exp(z1) / np.exp(z1).sum()) / 2
    got = np.exp(out[0, where["pfirrmann"]])
    assert np.allclose(got / got.sum(), expected, atol=1e-6) and np.isclose(got.sum(), 1, atol=1e-5)
    # herniation: member 0 at T=2, member 1 at T=4; the output is the log-odds of the mean probability
    h = where["herniation"].start
    expected_p = (1 / (1 + np.exp(-logits[0, h] / 2.0)) + 1 / (1 + np.exp(-logits[1, h] / 4.0))) / 2
    assert np.isclose(1 / (1 + np.exp(-out[1, h])), expected_p, atol=1e-6)
    # modic: member 0 at T=2, member 1 at its default of 1
    m0, m1 = logits[0, where["modic"]] / 2.0, logits[1, where["modic"]]
    expected = (np.exp(m0) / np.exp(m0).sum() + np.exp(m1) / np.exp(m1).sum()) / 2
    got = np.exp(out[2, where["modic"]])
    assert np.allclose(got, expected, atol=1e-6)


def test_a_certain_member_does_not_overflow_the_ensemble():
    logits = np.zeros(n_grading_outputs())
    logits[grading_outputs()["herniation"]] = 200.0  # sigmoid rounds to exactly 1
    logits[grading_outputs()["pfirrmann"].start] = -300.0  # softmax rounds to exactly 0
    ensemble = GradingEnsemble([FixedLogits(logits), FixedLogits(logits)], [{}, {}])
    out = ensemble(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
    assert torch.isfinite(out).all()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    runs = [root / "seed0", root / "seed1"]
    for seed, run in enumerate(runs):
        run.mkdir()
        save_samples(synthetic_samples(), run / "samples.npz")
        train_grading(
            GradingConfig(data=str(run), out=str(run), folds=2, steps=10, studies_per_step=2, val_every=5, seed=seed)
        )
    return runs


def test_combined_runs_ship_one_onnx_that_averages_the_members(two_runs, tmp_path):
    from lumbar.models.registry import load_model
    from lumbar.tasks.grading import disc_probabilities

    path = combine_grading_runs(two_runs, tmp_path / "ensemble")
    crops = [s.crop for s in load_samples(GradingConfig(data="", out=str(two_runs[0])))[:6]]
    together = disc_probabilities(crops, load_model("grading-ens", str(path)))
    members = [disc_probabilities(crops, load_model(f"grading-{r.name}", str(r / "grading.onnx"))) for r in two_runs]
    for i in range(len(crops)):
        for name in (*ORDINAL_GRADES, *BINARY_GRADES):
            mean = (members[0][i][name] + members[1][i][name]) / 2
            assert np.allclose(together[i][name], mean, atol=3e-3)  # members kept in half precision
    record = json.loads(path.with_suffix(".json").read_text())
    metas = [json.loads((r / "grading.json").read_text()) for r in two_runs]
    assert set(record["temperatures"].values()) == {1.0}  # the members' own are inside the graph
    for name in BINARY_GRADES:
        assert record["thresholds"][name] == pytest.approx(
            (metas[0]["thresholds"][name] + metas[1]["thresholds"][name]) / 2
        )
    assert [m["seed"] for m in record["members"]] == [0, 1]
    assert record["trained_steps"] == f"{metas[0]['trained_steps']}+{metas[1]['trained_steps']}"


def test_the_ensembles_cross_validated_figures_come_from_the_averaged_out_of_fold_predictions(two_runs, tmp_path):
    from lumbar.metrics import balanced_accuracy

    path = combine_grading_runs(two_runs, tmp_path / "ensemble")
    cv = json.loads(path.with_suffix(".json").read_text())["cv"]
    samples = load_samples(GradingConfig(data="", out=str(two_runs[0])))
    n = len(samples)
    (p0, t0), (p1, t1) = (out_of_fold(r, n) for r in two_runs)
    herniation = ((p0["herniation"] + p1["herniation"]) / 2 >= (t0["herniation"] + t1["herniation"]) / 2).astype(int)
    truth = np.array([s.grades["herniation"] for s in samples])
    assert cv["metrics"]["herniation"]["balanced_accuracy"] == pytest.approx(balanced_accuracy(truth, herniation))
    pfirrmann = np.array([1, 2, 3, 4, 5])[((p0["pfirrmann"] + p1["pfirrmann"]) / 2).argmax(1)]
    truth = np.array([s.grades["pfirrmann"] for s in samples])
    assert cv["metrics"]["pfirrmann"]["balanced_accuracy"] == pytest.approx(balanced_accuracy(truth, pfirrmann))
    assert cv["members"] == 2 and cv["n_discs"] == n and cv["folds"] == 2
    # the two seeds drew different patient folds: each disc's threshold is the mean of its two folds' choices
    assert ensemble_out_of_fold(two_runs, n)[1]["herniation"] == pytest.approx(
        (t0["herniation"] + t1["herniation"]) / 2
    )


def test_runs_that_cannot_be_combined_are_refused(two_runs, tmp_path):
    with pytest.raises(InputError, match="at least two"):
        combine_grading_runs(two_runs[:1], tmp_path / "one")
    other = tmp_path / "other"
    shutil.copytree(two_runs[1], other)
    save_samples(synthetic_samples(seed=1), other / "samples.npz")
    with pytest.raises(InputError, match="different disc crops"):
        combine_grading_runs([two_runs[0], other], tmp_path / "mixed")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(two_runs[1], unfinished)
    (unfinished / "fold_1.json").unlink()
    with pytest.raises(InputError, match="no out-of-fold prediction"):
        combine_grading_runs([two_runs[0], unfinished], tmp_path / "partial")
    assert not (tmp_path / "partial").exists()


def test_ensemble_command_refuses_a_missing_run_in_one_line(tmp_path):
    result = CliRunner().invoke(
        app, ["train", "grading-ensemble", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "no cached disc crops" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
