"""``lumbar batch``: studies found in folder trees and CSV lists, analysed in parallel, resumable, a failure listed
and the rest going on, the same findings on a local Ray cluster as in local processes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lumbar.batch_jobs import REPORT, SUMMARY, VERTEBRAE, find_studies, run_batch_jobs
from lumbar.cli import app
from lumbar.errors import InputError
from lumbar.io.dicom_write import write_dicom_series
from lumbar.phantom import make_phantom


def _png(path, seed):
    image = make_phantom(seed=seed).image
    mid = image.sagittal_slices()[image.shape[0] // 2]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(255 * (mid - mid.min()) / np.ptp(mid), 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("studies")
    _png(root / "a" / "one.png", 0)
    _png(root / "a" / "deeper" / "two.png", 1)
    _png(root / "b" / "three.png", 2)
    (root / "b" / "broken.png").write_bytes(b"not a png")
    return root


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_studies_are_found_in_trees_and_csv_lists(tmp_path, tree):
    assert [p.relative_to(tree).as_posix() for p in find_studies([tree])] == [
        "a/one.png",
        "a/deeper/two.png",
        "b/broken.png",
        "b/three.png",
    ]
    series = tmp_path / "dicom" / "series"
    write_dicom_series(make_phantom(shape=(3, 64, 64)).image, series)
    assert find_studies([tmp_path / "dicom"]) == [series]  # a folder of DICOM files is one study
    listing = tmp_path / "list.csv"
    listing.write_text(f"path\n{tree / 'a' / 'one.png'}\nb/three.png\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "three.png").write_bytes((tree / "b" / "three.png").read_bytes())
    assert find_studies([listing]) == [tree / "a" / "one.png", tmp_path / "b" / "three.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no study found"):
        find_studies([tmp_path / "empty"])


def test_a_batch_lists_every_study_goes_on_past_a_failure_and_resumes(tmp_path, tree):
    out = tmp_path / "out"
    studies = find_studies([tree])
    outcomes = run_batch_jobs(studies, out, workers=2, report=False, spacing_mm=1.0, modality="MR")
    assert [(o.name, o.status) for o in outcomes] == [
        ("one", "done"),
        ("two", "done"),
        ("broken", "failed"),
        ("three", "done"),
    ]
    report = _rows(out / REPORT)
    assert [r["status"] for r in report] == ["done", "done", "failed", "done"]
    assert "broken.png" in report[2]["error"] and "\n" not in report[2]["error"]
    summary = _rows(out / SUMMARY)
    discs = sum(len(json.loads((out / n / "findings.json").read_text())["discs"]) for n in ("one", "two", "three"))
    assert len(summary) == discs and {r["study"] for r in summary} == {"one", "two", "three"}
    findings = {n: json.loads((out / n / "findings.json").read_text()) for n in ("one", "two", "three")}
    vertebrae = _rows(out / VERTEBRAE)
    assert [(r["study"], r["level"]) for r in vertebrae] == [
        (n, v["level"]) for n in ("one", "two", "three") for v in findings[n]["vertebrae"]
    ]
    first = next(v for v in findings["one"]["vertebrae"] if (v["measurements"] or {}).get("height_middle_mm"))
    row = next(r for r in vertebrae if r["study"] == "one" and r["level"] == first["level"])
    assert float(row["height_middle_mm"]) == pytest.approx(first["measurements"]["height_middle_mm"])
    assert row["bone_density_hu"] == "" and row["modality"] == "MR"
    again = run_batch_jobs(studies, out, workers=1, report=False, spacing_mm=1.0, modality="MR")
    assert [o.status for o in again] == ["skipped", "skipped", "failed", "skipped"]
    assert len(_rows(out / SUMMARY)) == discs  # the summary still covers the studies done before


def test_the_command_exits_2_when_a_study_failed(tmp_path, tree):
    result = CliRunner().invoke(
        app,
        ["batch", str(tree / "b"), "-o", str(tmp_path / "out"), "--spacing", "1", "--modality", "MR", "--no-report"],
    )
    assert result.exit_code == 2 and "1 analysed, 0 already complete, 1 failed" in " ".join(result.output.split())


def test_a_local_ray_cluster_gives_the_same_findings(tmp_path, tree):
    pytest.importorskip("ray")
    studies = [tree / "a" / "one.png", tree / "a" / "deeper" / "two.png", tree / "b" / "three.png"]
    local = run_batch_jobs(studies, tmp_path / "local", workers=1, report=False, spacing_mm=1.0, modality="MR")
    on_ray = run_batch_jobs(studies, tmp_path / "ray", ray_address="local", report=False, spacing_mm=1.0, modality="MR")
    assert [o.status for o in local] == [o.status for o in on_ray] == ["done"] * 3
    for o in local:
        a = json.loads((tmp_path / "local" / o.name / "findings.json").read_text())
        b = json.loads((tmp_path / "ray" / o.name / "findings.json").read_text())
        assert a == b
