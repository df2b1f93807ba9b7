"""The bone density trainer on films made in the test: the class is written into the bodies' brightness, so a
classifier that learns anything beats the majority guess; bad label files are one clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lumbar.errors import InputError
from lumbar.train.xray_bmd import BmdConfig, read_labels, train_bmd, who_class


def test_who_classes_follow_the_t_score_thresholds():
    assert [who_class(t) for t in (0.5, -1.0, -1.01, -2.49, -2.5, -3.6)] == [0, 0, 1, 1, 2, 2]


def write_films(folder, n_patients: int = 18, films_per_patient: int = 2) -> None:
    """Spine-like films: a column of bodies whose brightness falls with the patient's T-score, beside a marker of
    fixed brightness (as a film's side marker) that keeps the scale of a film's grey values."""
    rng = np.random.default_rng(0)
    rows = ["image,patient,t_score"]
    for p in range(n_patients):
        t_score = [0.2, -1.8, -3.2][p % 3] + rng.normal(0, 0.2)
        for k in range(films_per_patient):
            film = rng.normal(60, 8, (200, 120))
            for b in range(6):
                film[20 + 30 * b : 40 + 30 * b, 45:75] = 170 + 30 * t_score + rng.normal(0, 4)
            film[5:25, 95:115] = 255
            name = f"p{p}_{k}.png"
            Image.fromarray(np.clip(film, 0, 255).astype(np.uint8)).save(folder / name)
            rows.append(f"{name},p{p},{t_score:.2f}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")


def test_cross_validation_by_patient_beats_the_majority_guess(tmp_path):
    write_films(tmp_path, n_patients=12)
    cfg = BmdConfig(
        str(tmp_path),
        str(tmp_path / "labels.csv"),
        str(tmp_path / "run"),
        folds=3,
        epochs=40,
        batch_size=8,
        shape=(64, 64),
    )
    path = train_bmd(cfg)
    meta = json.loads((tmp_path / "run" / "xray_bmd.json").read_text())
    cv = meta["cv"]
    assert path.is_file() and cv["n_patients"] == 12 and cv["n_films"] == 24
    assert cv["class_counts"] == {"normal": 8, "osteopenia": 8, "osteoporosis": 8}
    assert cv["majority_class_balanced_accuracy"] == pytest.approx(1 / 3)
    assert cv["balanced_accuracy"] > 0.6
    assert cv["auc_osteoporosis"] > 0.8
    assert sum(map(sum, cv["confusion"])) == 24


def test_a_label_row_without_an_image_or_a_score_is_refused(tmp_path):
    write_films(tmp_path, n_patients=3, films_per_patient=1)
    (tmp_path / "missing.csv").write_text("image,t_score\nnot_there.png,-1\n")
    with pytest.raises(InputError, match=r"no image 'not_there\.png'"):
        read_labels(tmp_path, tmp_path / "missing.csv")
    (tmp_path / "no_score.csv").write_text("image,class\np0_0.png,brittle\n")
    with pytest.raises(InputError, match="give t_score or class"):
        read_labels(tmp_path, tmp_path / "no_score.csv")
