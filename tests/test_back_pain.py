"""Low back pain from static standing: the recording reader's known answers and refusals, the simulator's stated
group differences, cross-validation that is at chance when the groups are drawn alike and above it when they
differ, folds that never share a subject, and the ONNX network that inference runs equal to the trained one."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from lumbar.errors import InputError
from lumbar.io import kinematics
from lumbar.io.kinematics import CHANNELS, read_cohort, read_recording
from lumbar.tasks.back_pain import (
    load_back_pain_model,
    recognise_back_pain,
    relative_window,
    standing_measures,
    window_inputs,
)
from lumbar.train import back_pain
from lumbar.train.back_pain import (
    BackPainConfig,
    BackPainNet,
    best_threshold,
    cross_fitted_decisions,
    cross_validate,
    export_back_pain,
    precision,
    recall,
    subject_folds,
    train_back_pain,
)
from lumbar.train.back_pain_sim import simulate_cohort

HEADER = ",".join(("time_s", *CHANNELS))


def write_csv(path, time, values) -> None:
    """A recording with every channel given by ``values`` (``[channels, samples]``)."""
    rows = [HEADER] + [",".join(f"{v:.9g}" for v in (t, *column)) for t, column in zip(time, np.asarray(values).T)]
    path.write_text("\n".join(rows) + "\n")


def linear_channels(time):
    return np.stack([k + (k + 1) * 0.5 * time for k in range(len(CHANNELS))])


# --- reading one recording


def test_a_linear_recording_sampled_unevenly_is_resampled_to_the_same_line_at_50_hz(tmp_path):
    rng = np.random.default_rng(0)
    time = 2.0 + np.cumsum(rng.uniform(0.005, 0.015, 1300))  # ~100 Hz with jitter, about 13 s
    write_csv(tmp_path / "trial.csv", time, linear_channels(time))
    recording = read_recording(tmp_path / "trial.csv", subject="p07")
    expected_samples = int(np.floor((time[-1] - time[0]) * 50)) + 1
    assert recording.subject == "p07" and recording.sample_rate_hz == 50.0
    assert recording.signals.shape == (len(CHANNELS), expected_samples) and recording.signals.dtype == np.float32
    grid = time[0] + np.arange(expected_samples) / 50
    np.testing.assert_allclose(recording.signals, linear_channels(grid), rtol=1e-5, atol=1e-4)
    assert recording.channel("cop_ap_mm")[0] == pytest.approx(5 + 3 * time[0], abs=1e-4)


def test_text_columns_quoted_fields_and_blank_lines_are_read_and_lines_named_as_in_the_file(tmp_path):
    time = np.arange(0, 12, 0.01)
    values = linear_channels(time) + np.array([0, 0, 0, 0, 0, 0, 0, 300, 300])[:, None]
    rows = [HEADER + ",trial,note"] + [
        ",".join(f"{v:.9g}" for v in (t, *column)) + ',p001_t1,"standing, eyes open"'
        for t, column in zip(time, values.T)
    ]
    rows.insert(3, "")  # a blank line: later lines keep their own numbers
    rows[100] = rows[100].replace(f"{time[98]:.9g},", "nan,", 1)
    (tmp_path / "trial.csv").write_text("\n".join(rows[:100] + rows[101:]) + "\n")
    recording = read_recording(tmp_path / "trial.csv")
    assert recording.signals.shape[1] == 600
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match="time_s is nan at line 101;"):
        read_recording(tmp_path / "bad.csv")
    (tmp_path / "semicolons.csv").write_text(HEADER.replace(",", ";") + "\n")
    with pytest.raises(InputError, match="separated by semicolons"):
        read_recording(tmp_path / "semicolons.csv")


def test_extra_columns_and_any_column_order_are_accepted(tmp_path):
    time = np.arange(0, 12, 0.01)
    values = linear_channels(time)
    order = list(range(len(CHANNELS)))[::-1]
    header = ",".join(["marker", *(CHANNELS[k] for k in order), "time_s"])
    rows = [header] + [",".join(["1", *(f"{values[k, i]:.6f}" for k in order), f"{t:.2f}"]) for i, t in enumerate(time)]
    (tmp_path / "shuffled.csv").write_text("\n".join(rows) + "\n")
    recording = read_recording(tmp_path / "shuffled.csv")
    np.testing.assert_allclose(recording.channel("trunk_flexion_deg")[:3], [0, 0.01, 0.02], atol=1e-5)


def bad_recordings(tmp_path):
    time = np.arange(0, 12, 0.01)
    good = linear_channels(time)
    cases = {}

    def case(name, match, write):
        path = tmp_path / f"{name}.csv"
        write(path)
        cases[name] = (path, match)

    case("missing_column", "missing column.*load_right_n", lambda p: p.write_text(HEADER.rsplit(",", 1)[0] + "\n1,2\n"))
    with_nan = good.copy()
    with_nan[2, 40] = np.nan
    case("nan", "trunk_rotation_deg is nan at line 42", lambda p: write_csv(p, time, with_nan))
    with_inf = good.copy()
    with_inf[7, 5] = np.inf
    case("inf", "load_left_n is inf", lambda p: write_csv(p, time, with_inf))
    backwards = time.copy()
    backwards[100] = backwards[98]
    case("time_backwards", "time_s does not increase at line 102", lambda p: write_csv(p, backwards, good))
    case("too_short", r"9\.9 s recorded; at least 10 s", lambda p: write_csv(p, time[:991], good[:, :991]))
    case("empty", "the file is empty", lambda p: p.write_bytes(b""))
    case("binary", "not a CSV text file", lambda p: p.write_bytes(bytes(range(256)) * 4))
    case(
        "words",
        "time_s is 'x' at line 2, not a number",
        lambda p: p.write_text(HEADER + "\n" + ",".join(["x"] * 10) + "\n"),
    )
    case("header_only", "a header and no samples", lambda p: p.write_text(HEADER + "\n"))
    case("milliseconds", "is time_s in seconds", lambda p: write_csv(p, time * 1000, good))
    case(
        "time_twice",
        "column.s. time_s named twice in the header",
        lambda p: p.write_text(HEADER + ",time_s\n" + ",".join(["1"] * 11) + "\n"),
    )
    return cases


def test_each_bad_recording_is_one_input_error_naming_the_file(tmp_path):
    for name, (path, match) in bad_recordings(tmp_path).items():
        with pytest.raises(InputError, match=match) as error:
            read_recording(path)
        message = str(error.value)
        assert str(path) in message and "\n" not in message, name


def test_a_file_too_large_to_be_a_recording_is_refused_before_it_is_read(tmp_path, monkeypatch):
    time = np.arange(0, 12, 0.01)
    write_csv(tmp_path / "big.csv", time, linear_channels(time))
    monkeypatch.setattr(kinematics, "MAX_FILE_BYTES", 1000)
    with pytest.raises(InputError, match=r"big\.csv: .* MiB is more than a recording"):
        read_recording(tmp_path / "big.csv")


def test_parquet_needs_pyarrow_or_reads_like_csv(tmp_path):
    time = np.arange(0, 12, 0.02)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        (tmp_path / "trial.parquet").write_bytes(b"PAR1")
        with pytest.raises(InputError, match=r"trial\.parquet: reading Parquet needs pyarrow \(pip install pyarrow\)"):
            read_recording(tmp_path / "trial.parquet")
        return
    values = linear_channels(time)
    table = pa.table({"time_s": time, **{c: values[k] for k, c in enumerate(CHANNELS)}})
    pq.write_table(table, tmp_path / "trial.parquet")
    np.testing.assert_allclose(read_recording(tmp_path / "trial.parquet").signals, values, atol=1e-4)


# --- a cohort folder


def write_cohort_table(folder, rows: str) -> None:
    (folder / "subjects.csv").write_text("subject_id,label,recording\n" + rows)


def test_a_cohort_groups_each_subjects_recordings_and_keeps_an_unknown_label(tmp_path):
    time = np.arange(0, 12, 0.01)
    for name in ("a1", "a2", "b1"):
        write_csv(tmp_path / f"{name}.csv", time, linear_channels(time))
    write_cohort_table(tmp_path, "A,lbp,a1.csv\nB,,b1.csv\nA,LBP,a2.csv\n")
    subjects = read_cohort(tmp_path)
    assert [(s.subject_id, s.label, len(s.recordings)) for s in subjects] == [("A", "lbp", 2), ("B", None, 1)]
    assert subjects[0].recordings[1].source == tmp_path / "a2.csv" and subjects[0].recordings[1].subject == "A"


@pytest.mark.parametrize(
    "rows, match",
    [
        ("A,sore,a1.csv\n", r"subjects\.csv:2: label 'sore' is not one of healthy, lbp"),
        ("A,lbp,a1.csv\nA,healthy,a1.csv\n", r"subjects\.csv:3: subject A is labelled both lbp and healthy"),
        ("A,lbp,gone.csv\n", r"gone\.csv: no such recording file"),
        ("", r"subjects\.csv: lists no recording"),
        (",lbp,a1.csv\n", r"subjects\.csv:2: subject_id and recording are required"),
    ],
)
def test_a_bad_cohort_table_is_one_input_error(tmp_path, rows, match):
    time = np.arange(0, 12, 0.01)
    write_csv(tmp_path / "a1.csv", time, linear_channels(time))
    write_cohort_table(tmp_path, rows)
    with pytest.raises(InputError, match=match):
        read_cohort(tmp_path)


def test_a_folder_without_a_subjects_table_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"no subjects\.csv"):
        read_cohort(tmp_path)


# --- standing measures and window inputs: known answers


def standing_still(seconds: float = 20.0, rate: float = 50.0) -> np.ndarray:
    n = int(seconds * rate)
    signals = np.zeros((len(CHANNELS), n))
    signals[CHANNELS.index("load_left_n")] = 300.0
    signals[CHANNELS.index("load_right_n")] = 500.0
    return signals


def test_standing_measures_of_a_sinusoidal_sway_are_its_rms_and_mean_speed():
    rate, amplitude, frequency = 50.0, 6.0, 0.5
    signals = standing_still(rate=rate)
    t = np.arange(signals.shape[1]) / rate
    signals[CHANNELS.index("cop_ap_mm")] = 40 + amplitude * np.sin(2 * np.pi * frequency * t)
    signals[CHANNELS.index("trunk_flexion_deg")] = 7 + 2 * np.sin(2 * np.pi * 0.25 * t)
    signals[CHANNELS.index("pelvis_tilt_deg")] = 9.0
    recording = kinematics.Recording(None, None, rate, signals.astype(np.float32))
    measures = standing_measures(recording)
    assert measures["cop_sway_rms_mm"] == pytest.approx(amplitude / np.sqrt(2), rel=1e-3)
    assert measures["cop_velocity_mm_s"] == pytest.approx(4 * amplitude * frequency, rel=1e-2)
    assert measures["lumbar_motion_rms_deg"] == pytest.approx(2 / np.sqrt(2), rel=1e-3)
    assert measures["load_asymmetry"] == pytest.approx(200 / 800)


def test_a_window_loses_its_offsets_and_keeps_the_share_of_weight_on_each_foot():
    signals = standing_still(seconds=25)
    signals[CHANNELS.index("cop_ap_mm")] += 40 + np.linspace(-1, 1, signals.shape[1])
    window = relative_window(signals[:, :500])
    assert np.abs(window[CHANNELS.index("cop_ap_mm")].mean()) < 1e-9
    assert window[CHANNELS.index("load_left_n")] == pytest.approx(np.full(500, 300 / 800))
    inputs = window_inputs(signals, window=500, hop=250)
    assert inputs.shape == (4, len(CHANNELS), 500) and inputs.dtype == np.float32
    assert window_inputs(signals[:, :499], window=500, hop=250).shape == (0, len(CHANNELS), 500)


def test_decision_helpers_give_their_known_answers():
    truth = np.array([0, 0, 0, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.9])
    assert precision(truth, score >= 0.5) == pytest.approx(2 / 3) and recall(truth, score >= 0.5) == pytest.approx(
        2 / 3
    )
    assert np.isnan(precision(truth, score > 1))
    assert best_threshold(truth, score) == pytest.approx(0.3)  # 5 of 6 right; 0.65 ties, and the lower is kept
    separable = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    assert best_threshold(truth, separable) == pytest.approx(0.45)
    assert (cross_fitted_decisions(truth, separable, seed=0) == truth.astype(bool)).all()


# --- the simulator


def test_the_simulator_writes_the_same_cohort_for_the_same_seed(tmp_path):
    one = simulate_cohort(tmp_path / "one", 4, effect=1.0, seed=3, recordings_per_subject=1, duration_s=12)
    two = simulate_cohort(tmp_path / "two", 4, effect=1.0, seed=3, recordings_per_subject=1, duration_s=12)
    other = simulate_cohort(tmp_path / "other", 4, effect=1.0, seed=4, recordings_per_subject=1, duration_s=12)
    files = sorted(p.relative_to(one) for p in one.rglob("*.csv"))
    assert len(files) == 5
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)
    assert (one / files[0]).read_bytes() != (other / files[0]).read_bytes()
    subjects = read_cohort(one)
    assert [s.label for s in subjects] == ["healthy", "lbp"] * 2 and subjects[0].recordings[0].signals.shape[1] == 601


def group_measures(folder) -> dict[str, dict[str, np.ndarray]]:
    subjects = read_cohort(folder)
    out = {}
    for label in ("healthy", "lbp"):
        rows = [standing_measures(s.recordings[0]) for s in subjects if s.label == label]
        out[label] = {name: np.array([r[name] for r in rows]) for name in rows[0]}
    return out


def test_the_simulated_lbp_group_sways_more_with_a_stiffer_trunk_and_uneven_feet_only_when_the_effect_is_on(tmp_path):
    kwargs = {"recordings_per_subject": 1, "duration_s": 12, "seed": 1}
    differ = group_measures(simulate_cohort(tmp_path / "e1", 120, effect=1.0, **kwargs))
    alike = group_measures(simulate_cohort(tmp_path / "e0", 120, effect=0.0, **kwargs))
    for name, direction in (
        ("cop_sway_rms_mm", "greater"),
        ("cop_velocity_mm_s", "greater"),
        ("lumbar_motion_rms_deg", "less"),
        ("load_asymmetry", "greater"),
    ):
        assert mannwhitneyu(differ["lbp"][name], differ["healthy"][name], alternative=direction).pvalue < 0.01, name
        assert mannwhitneyu(alike["lbp"][name], alike["healthy"][name]).pvalue > 0.05, name
    ratio = np.median(differ["lbp"]["cop_sway_rms_mm"]) / np.median(differ["healthy"]["cop_sway_rms_mm"])
    assert 1.15 < ratio < 1.8  # the stated 1.35 through the subjects' own spread


# --- cross-validation


def quick_config(tmp_path, **overrides) -> BackPainConfig:
    return BackPainConfig(out=str(tmp_path / "run"), folds=3, command="test", **overrides)


def simulated_subjects(folder, n: int, effect: float, seed: int, recordings: int = 1, duration_s: float = 20):
    cohort = simulate_cohort(folder, n, effect, seed, recordings_per_subject=recordings, duration_s=duration_s)
    return read_cohort(cohort)


def test_cross_validation_is_at_chance_when_the_groups_are_drawn_alike(tmp_path):
    """Five cohorts of 40: one cross-validated AUC spreads about 0.1 around 0.5 (and a little below it, as
    cross-validation does without signal: Parker et al., BMC Bioinformatics 2007), the mean of five about 0.05."""
    auc, accuracy = [], []
    for seed in range(5):
        subjects = simulated_subjects(tmp_path / f"s{seed}", 40, effect=0.0, seed=seed)
        network = cross_validate(subjects, quick_config(tmp_path, seed=seed, epochs=12, patience=4))["figures"][
            "network"
        ]
        auc.append(network["auc"])
        accuracy.append(network["balanced_accuracy"])
    assert abs(np.mean(auc) - 0.5) < 0.15 and abs(np.mean(accuracy) - 0.5) < 0.1


def test_cross_validation_is_above_chance_when_the_groups_differ(tmp_path):
    subjects = simulated_subjects(tmp_path, 40, effect=1.0, seed=0, recordings=2, duration_s=30)
    figures = cross_validate(subjects, quick_config(tmp_path, epochs=20, patience=5))["figures"]
    assert figures["network"]["auc"] > 0.75 and figures["network"]["balanced_accuracy_ci95"][0] > 0.5
    assert abs(figures["majority_class"]["balanced_accuracy"] - 0.5) < 0.1 and figures["majority_class"]["auc"] == 0.5
    for table in figures.values():
        for name in ("precision", "recall", "balanced_accuracy", "auc"):
            low, high = table[f"{name}_ci95"]
            assert low <= table[name] <= high, name


def test_no_subject_is_trained_on_and_scored_in_the_same_fold(tmp_path, monkeypatch):
    subjects = simulated_subjects(tmp_path, 12, effect=1.0, seed=0)
    trained, scored = [], []
    real_train, real_score = back_pain.train_net, back_pain.subject_probabilities

    def spy_train(fit, *args, **kwargs):
        trained.append({s.subject_id for s in fit})
        return real_train(fit, *args[:-1], 1)  # one epoch: what is trained on matters here, not how well

    def spy_score(net, held, *args):
        scored.append({s.subject_id for s in held})
        return real_score(net, held, *args)

    monkeypatch.setattr(back_pain, "train_net", spy_train)
    monkeypatch.setattr(back_pain, "subject_probabilities", spy_score)
    cv = cross_validate(subjects, quick_config(tmp_path))
    assert len(trained) == len(scored) == cv["folds"] == 3
    assert all(not (fit & held) for fit, held in zip(trained, scored))
    assert sorted(set().union(*scored)) == sorted(s.subject_id for s in subjects)  # each scored once
    assert sum(map(len, scored)) == len(subjects)


def test_subject_folds_hold_each_label_evenly():
    labels = np.array([0] * 10 + [1] * 7)
    fold = subject_folds(labels, 3, seed=0)
    for k in range(3):
        assert (labels[fold == k] == 0).sum() in (3, 4) and (labels[fold == k] == 1).sum() in (2, 3)


# --- the exported network and inference


def test_the_onnx_network_gives_the_torch_networks_logits(tmp_path):
    torch.manual_seed(0)
    net = BackPainNet().eval()
    with torch.no_grad():  # batch-norm statistics other than the identity, as after training
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    export_back_pain(net, tmp_path / "back_pain.onnx", 500)
    record = {
        "channels": list(CHANNELS),
        "sample_rate_hz": 50.0,
        "window_s": 10.0,
        "hop_s": 5.0,
        "threshold": 0.5,
        "centre": [0.0] * len(CHANNELS),
        "scale": [1.0] * len(CHANNELS),
    }
    (tmp_path / "back_pain.json").write_text(json.dumps(record))
    x = np.random.default_rng(0).normal(size=(7, len(CHANNELS), 500)).astype(np.float32)
    onnx_logits = load_back_pain_model(str(tmp_path / "back_pain.onnx")).logits(x)
    with torch.no_grad():
        torch_logits = net(torch.from_numpy(x))[:, 0].numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("back_pain")
    cfg = BackPainConfig(out=str(out), simulate=12, effect=1.0, folds=2, epochs=3, patience=2, command="test")
    return train_back_pain(cfg)


def test_training_exports_a_network_with_its_record(trained):
    meta = json.loads(trained.with_suffix(".json").read_text())
    assert meta["trained_on"] == "simulated" and meta["channels"] == list(CHANNELS)
    assert meta["sample_rate_hz"] == 50.0 and meta["window_s"] == 10.0 and len(meta["centre"]) == len(CHANNELS)
    assert meta["command"] == "test" and meta["simulator"]["effect"] == 1.0
    assert set(meta["cv"]["figures"]) == {"majority_class", "network", "cop_sway_rms", "standing_measures"}
    assert sorted(meta["cv"]["fold_of_subject"]) == [f"s{k:03d}" for k in range(12)]


def test_a_cohort_is_scored_per_recording_and_per_subject(trained):
    result = recognise_back_pain(trained.parent / "simulated", model=trained)
    meta = json.loads(trained.with_suffix(".json").read_text())
    assert len(result.subjects) == 12 and len(result.recordings) == 24
    assert all(r.windows == 5 and 0 <= r.probability <= 1 for r in result.recordings)
    first = result.subjects[0]
    assert first.probability == pytest.approx(np.mean([r.probability for r in result.recordings[:2]]))
    assert first.decision == ("lbp" if first.probability >= meta["threshold"] else "healthy")
    record = result.to_dict()
    assert record["caution"].startswith("trained on simulated recordings") and record["subjects"][0]["label"] in (
        "healthy",
        "lbp",
    )
    one = recognise_back_pain(trained.parent / "simulated" / "recordings" / "s000_trial1.csv", model=trained)
    assert one.subjects[0].subject_id == "s000_trial1" and one.subjects[0].label is None


def test_a_model_reading_other_channels_is_refused(trained, tmp_path):
    shutil.copy(trained, tmp_path / "back_pain.onnx")
    meta = json.loads(trained.with_suffix(".json").read_text())
    meta["channels"] = [*meta["channels"][:-1], "load_total_n"]
    (tmp_path / "back_pain.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"the model reads channels .*load_total_n"):
        recognise_back_pain(trained.parent / "simulated", model=tmp_path / "back_pain.onnx")


def test_the_shipped_network_scores_a_recording_with_its_caution(tmp_path):
    cohort = simulate_cohort(tmp_path, 1, effect=1.0, seed=0, recordings_per_subject=1, duration_s=20)
    result = recognise_back_pain(cohort / "recordings" / "s000_trial1.csv", subject="visitor")
    record = result.to_dict()
    assert record["trained_on"] == "simulated" and record["caution"].startswith("trained on simulated recordings")
    assert record["model"].endswith("back_pain.onnx") and 0 < record["threshold"] < 1
    assert record["subjects"][0]["subject_id"] == "visitor" and record["recordings"][0]["windows"] == 3


def test_a_missing_model_is_one_input_error(tmp_path):
    with pytest.raises(InputError, match="no back-pain model there"):
        recognise_back_pain(tmp_path, model=tmp_path / "nothing.onnx")


def test_lumbar_backpain_scores_a_cohort_and_writes_its_json(tmp_path):
    from typer.testing import CliRunner

    from lumbar.cli import app

    cohort = simulate_cohort(tmp_path / "cohort", 4, effect=1.0, seed=3)
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["backpain", str(cohort), "-o", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert [s["subject_id"] for s in written["subjects"]] == sorted(s["subject_id"] for s in written["subjects"])
    assert len(written["subjects"]) == 4 and len(written["recordings"]) == 8
    assert written["caution"] and "simulated" in result.output
    again = CliRunner().invoke(app, ["backpain", str(cohort), "-o", str(out)])  # its own earlier result: replaced
    assert again.exit_code == 0, again.output
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    refused = CliRunner().invoke(app, ["backpain", str(cohort), "-o", str(notes)])
    assert refused.exit_code == 2 and "an existing file lumbar did not write there" in refused.output
    assert notes.read_text() == "mine"


def test_lumbar_backpain_refuses_a_table_that_is_not_a_recording_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from lumbar.cli import app

    cohort = simulate_cohort(tmp_path / "cohort", 2, effect=1.0, seed=3)
    result = CliRunner().invoke(app, ["backpain", str(cohort / "subjects.csv"), "-o", str(tmp_path / "s.json")])
    assert result.exit_code == 2
    assert "subjects.csv" in result.output and "missing column" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('s1,lbp,"' + "x" * 200_000 + '"\n', "subjects.csv: not a readable CSV table (after line 1: field larger than"),
        ("s1,lbp,rec\0ording.csv\n", "subjects.csv:2: recording 'rec\\x00ording.csv' holds a NUL byte"),
    ],
)
def test_lumbar_backpain_refuses_a_subjects_table_it_cannot_read_in_one_line(tmp_path, row, message):
    from typer.testing import CliRunner

    from lumbar.cli import app

    cohort = simulate_cohort(tmp_path / "cohort", 2, effect=1.0, seed=3)
    (cohort / "subjects.csv").write_text("subject_id,label,recording\n" + row)
    result = CliRunner().invoke(app, ["backpain", str(cohort)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and len(result.output.strip().splitlines()) == 1, result.output


def test_lumbar_backpain_never_writes_over_an_input_or_into_a_folder(tmp_path):
    from typer.testing import CliRunner

    from lumbar.cli import app

    cohort = simulate_cohort(tmp_path / "cohort", 2, effect=1.0, seed=3)
    table = (cohort / "subjects.csv").read_text()
    (tmp_path / "existing").mkdir()
    for out in (cohort / "subjects.csv", cohort / "scores.json", tmp_path / "existing"):
        result = CliRunner().invoke(app, ["backpain", str(cohort), "-o", str(out)])
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert (cohort / "subjects.csv").read_text() == table and not (cohort / "scores.json").exists()


def test_a_time_column_with_a_hole_or_a_recording_outside_the_cohort_is_refused(tmp_path):
    cohort = simulate_cohort(tmp_path / "cohort", 2, effect=1.0, seed=3)
    first = sorted((cohort / "recordings").glob("*.csv"))[0]
    lines = first.read_text().splitlines()
    head, *rows = lines
    last = rows[-1].split(",")
    last[0] = "1000000"
    (tmp_path / "hole.csv").write_text("\n".join([head, *rows[:-1], ",".join(last)]) + "\n")
    with pytest.raises(InputError, match=r"jumps by|more than"):
        read_recording(tmp_path / "hole.csv")
    (tmp_path / "outside.csv").write_text(first.read_text())
    (cohort / "subjects.csv").write_text("subject_id,label,recording\ns1,lbp,../outside.csv\n")
    with pytest.raises(InputError, match="not inside the cohort folder"):
        read_cohort(cohort)


def test_a_damaged_model_record_is_one_input_error(tmp_path):
    from lumbar.tasks.back_pain import load_back_pain_model

    (tmp_path / "m.onnx").write_bytes(b"junk")
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(InputError, match="not a back-pain model"):
        load_back_pain_model(str(tmp_path / "m.onnx"))
    (tmp_path / "m.json").write_text('{"x": ')
    with pytest.raises(InputError, match="not a readable model record"):
        load_back_pain_model(str(tmp_path / "m.onnx"))  # a refusal is not cached: the record is read again


def test_offsets_from_any_origin_are_read(tmp_path):
    """A centre of pressure 1.5 m from the lab's origin and a heading of about 270 degrees: offsets do not matter."""
    time = np.arange(0, 12, 0.01)
    values = linear_channels(time) + np.array([0, 0, 270, 0, 0, 1500, -1500, 300, 300])[:, None]
    write_csv(tmp_path / "far.csv", time, values)
    assert read_recording(tmp_path / "far.csv").channel("cop_ap_mm")[0] == pytest.approx(1505, abs=1e-3)


def test_a_quote_left_open_is_refused_not_read_as_one_long_field(tmp_path):
    time = np.arange(0, 12, 0.01)
    values = linear_channels(time) + np.array([0, 0, 0, 0, 0, 0, 0, 300, 300])[:, None]
    rows = [HEADER + ",note"] + [",".join(f"{v:.9g}" for v in (t, *c)) + ",ok" for t, c in zip(time, values.T)]
    rows[1100] = rows[1100].replace(",ok", ',"heel')
    (tmp_path / "quote.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match="a quoted field runs from line 1101 over line 1201; close its quote"):
        read_recording(tmp_path / "quote.csv")
    rows = [HEADER + ",note"] + [
        ",".join(f"{v:.9g}" for v in (t, *c)) + ',"' + "x" * 200_000 + '"' for t, c in zip(time[:3], values.T[:3])
    ]
    (tmp_path / "huge_field.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match="not a readable CSV table"):
        read_recording(tmp_path / "huge_field.csv")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v.__setitem__(slice(None), 1e300), r"trunk_flexion_deg reaches 1e\+300, beyond 1e\+06: check"),
        # cop_ap_mm is 5 + 3 t over 11.99 s, times 1000; load_left_n peaks at (307 + 4 x 11.99), times 1000
        (lambda v: v.__setitem__(5, v[5] * 1000), "cop_ap_mm spans 3.597e\\+04, more than 1000"),
        (lambda v: v.__setitem__(7, v[7] * 1000), "load_left_n reaches 3.55e\\+05, beyond 20000"),
        (lambda v: v.__setitem__(2, 3.0), "trunk_rotation_deg never changes"),
        (lambda v: v.__setitem__(slice(7, 9), 0.001 * v[7:9]), "no one is standing on the plate"),
    ],
)
def test_values_no_standing_recording_holds_are_refused(tmp_path, change, message):
    """Huge values (they made the score NaN), a centre of pressure off any plate, a dead sensor, an empty plate."""
    time = np.arange(0, 12, 0.01)
    values = linear_channels(time) + np.array([0, 0, 0, 0, 0, 0, 0, 300, 300])[:, None]
    change(values)
    write_csv(tmp_path / "odd.csv", time, values)
    with pytest.raises(InputError, match=message):
        read_recording(tmp_path / "odd.csv")


def test_inputs_that_do_not_name_one_cohort_or_one_subjects_recordings_are_refused(tmp_path):
    cohort = simulate_cohort(tmp_path / "cohort", 2, effect=1.0, seed=3)
    trial = sorted((cohort / "recordings").glob("*.csv"))[0]
    cases = [
        ([cohort, trial], "a cohort folder is given alone"),
        ([cohort, tmp_path], "a cohort folder is given alone"),
        ([trial, trial], "given twice; a recording counts once"),
    ]
    for paths, message in cases:
        with pytest.raises(InputError, match=message):
            recognise_back_pain(paths)
    with pytest.raises(InputError, match="--subject is for recording files"):
        recognise_back_pain(cohort, subject="p1")
    table = cohort / "subjects.csv"
    rows = table.read_text().splitlines()
    table.write_text("\n".join([*rows, rows[1]]) + "\n")
    with pytest.raises(InputError, match=r"is listed already \(line 2\)"):
        recognise_back_pain(cohort)
    table.write_text("\n".join([rows[0], "p9,,recordings"]) + "\n")
    with pytest.raises(InputError, match="a folder, not a recording file"):
        recognise_back_pain(cohort)
