"""``lumbar batch``: studies found in folder trees and CSV lists, analysed in parallel, resumable, a failure listed
and the rest going on, the same findings on a local Ray cluster as in local processes."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lumbar.batch_jobs import (
    DIED,
    REPORT,
    SUMMARY,
    VERTEBRAE,
    BatchStudy,
    StudyOutcome,
    _on_processes,
    find_studies,
    plan_names,
    run_batch_jobs,
)
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
    assert [s.path.relative_to(tree).as_posix() for s in find_studies([tree])] == [
        "a/one.png",
        "a/deeper/two.png",
        "b/broken.png",
        "b/three.png",
    ]
    series = tmp_path / "dicom" / "series"
    write_dicom_series(make_phantom(shape=(3, 64, 64)).image, series)
    assert find_studies([tmp_path / "dicom"]) == [BatchStudy(series)]  # a folder of DICOM files is one study
    listing = tmp_path / "list.csv"
    listing.write_text(f"path\n{tree / 'a' / 'one.png'}\nb/three.png\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "three.png").write_bytes((tree / "b" / "three.png").read_bytes())
    assert find_studies([listing]) == [BatchStudy(tree / "a" / "one.png"), BatchStudy(tmp_path / "b" / "three.png")]
    listing.write_text(f"path,modality,spacing_mm\n{tree / 'a' / 'one.png'},MR,0.5\nb/three.png,,\n")
    assert find_studies([listing]) == [
        BatchStudy(tree / "a" / "one.png", "MR", 0.5),  # a row's own reading options
        BatchStudy(tmp_path / "b" / "three.png"),  # empty cells: the batch's
    ]
    listing.write_text("path,spacing_mm\nb/three.png,half\n")
    with pytest.raises(InputError, match=r"list.csv: row 2: spacing_mm 'half' is not a number"):
        find_studies([listing])
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
    assert all(r["weighting"] == (findings[r["study"]]["input"]["weighting"] or "") for r in summary)
    assert {r["weighting"] for r in summary} & {"T1", "T2"}  # the phantoms read as drawn
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


def test_a_rerun_never_hands_one_input_anothers_results(tmp_path, tree):
    """A different picture under the same name gets its own folder (``-2``), the first keeps its results, and both
    stay in the three CSVs; a picture replaced in place is analysed again into its own folder; a rerun of the same
    inputs skips them, whatever else the folder now holds (a name that shifted keeps its results)."""
    first, other = tmp_path / "in1" / "scan.png", tmp_path / "in2" / "scan.png"
    _png(first, 0), _png(other, 3)
    out, options = tmp_path / "out", {"workers": 1, "report": False, "spacing_mm": 1.0, "modality": "MR"}
    assert [(o.name, o.status) for o in run_batch_jobs([first], out, **options)] == [("scan", "done")]
    assert [(o.name, o.status) for o in run_batch_jobs([other], out, **options)] == [("scan-2", "done")]
    sources = {n: json.loads((out / n / "findings.json").read_text())["input"]["source"] for n in ("scan", "scan-2")}
    assert sources == {"scan": str(first), "scan-2": str(other)}
    report = _rows(out / REPORT)
    assert [(r["study"], r["output"], r["status"]) for r in report] == [
        (str(first.absolute()), "scan", "done"),
        (str(other.absolute()), "scan-2", "done"),
    ]
    assert (
        {r["study"] for r in _rows(out / SUMMARY)}
        == {r["study"] for r in _rows(out / VERTEBRAE)}
        == {
            "scan",
            "scan-2",
        }
    )
    again = run_batch_jobs([first, other], out, **options)  # both together now: names as before, nothing redone
    assert [(o.name, o.status) for o in again] == [("scan", "skipped"), ("scan-2", "skipped")]
    _png(first, 4)  # the first picture replaced in place
    assert [(o.name, o.status) for o in run_batch_jobs([first], out, **options)] == [("scan", "done")]
    assert [r["output"] for r in _rows(out / REPORT)] == ["scan-2", "scan"]
    changed = run_batch_jobs([first], out, **{**options, "spacing_mm": 0.5})  # other options: not the same result
    assert [(o.name, o.status) for o in changed] == [("scan", "done")]
    # Another picture of the same size written over it with its modification time put back (as cp -p, rsync -a or
    # touch -r leave it): uncompressed, the two PNGs are the same size.
    Image.open(_png(first, 4)).save(first, compress_level=0)
    assert [(o.name, o.status) for o in run_batch_jobs([first], out, **options)] == [("scan", "done")]
    stat = first.stat()
    Image.open(_png(tmp_path / "in3" / "scan.png", 5)).save(first, compress_level=0)
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (first.stat().st_size, first.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert [(o.name, o.status) for o in run_batch_jobs([first], out, **options)] == [("scan", "done")]


def test_a_killed_rerun_leaves_nothing_taken_for_current(tmp_path, tree, monkeypatch):
    """A rerun with other options killed after its first study: the studies it did not reach keep their old rows
    (old fingerprints), so the next run analyses them again rather than skipping results read with the old options;
    a folder the ledger does not list is never taken as done on its own word: the same input is analysed again under
    its name, another input's folder is left alone."""
    import lumbar.batch_jobs as batch_jobs

    monkeypatch.setattr(batch_jobs, "LEDGER_EVERY_S", 0.0)
    studies = [tree / "a" / "one.png", tree / "b" / "three.png"]
    out, options = tmp_path / "out", {"workers": 1, "report": False, "spacing_mm": 1.0, "modality": "MR"}
    run_batch_jobs(studies, out, **options)

    class Killed(Exception):
        pass

    def kill(outcome):
        raise Killed

    with pytest.raises(Killed):
        run_batch_jobs(studies, out, **{**options, "spacing_mm": 0.5}, on_outcome=kill)
    ledger = {r["output"]: r for r in _rows(out / REPORT)}
    assert set(ledger) == {"one", "three"}  # the study not reached keeps its old row
    again = run_batch_jobs(studies, out, **{**options, "spacing_mm": 0.5})
    finished_first = [o.status for o in again].count("skipped")
    assert finished_first <= 1 and [o.status for o in again][-1] == "done"  # never the old spacing's results
    for name in ("one", "three"):
        assert json.loads((out / name / "findings.json").read_text())["input"]["spacing_mm"][-1] == 0.5
    (out / REPORT).unlink()  # no ledger: the folders' own word is not enough to skip
    assert [(o.name, o.status) for o in run_batch_jobs(studies[:1], out, **options)] == [("one", "done")]
    (out / REPORT).unlink()
    elsewhere = tmp_path / "c" / "one.png"
    _png(elsewhere, 5)
    assert [(o.name, o.status) for o in run_batch_jobs([elsewhere], out, **options)] == [("one-2", "done")]


def test_one_input_by_two_paths_is_one_study_and_one_row(tmp_path, tree):
    """The same file given relative and absolute (or found twice) is analysed once; a rerun skips it, and the ledger
    and summaries hold one row of it; a study renamed by a run keeps no stale row under its old name."""
    import os

    out, options = tmp_path / "out", {"workers": 1, "report": False, "spacing_mm": 1.0, "modality": "MR"}
    here = os.getcwd()
    os.chdir(tree)
    try:
        assert len(find_studies(["a/one.png", tree / "a" / "one.png"])) == 1
        first = run_batch_jobs([Path("a/one.png"), tree / "a" / "one.png"], out, **options)
    finally:
        os.chdir(here)
    assert [(o.name, o.status) for o in first] == [("one", "done")]
    assert [(o.name, o.status) for o in run_batch_jobs([tree / "a" / "one.png"], out, **options)] == [
        ("one", "skipped")
    ]
    other = tmp_path / "x" / "one.png"
    _png(other, 6)
    both = run_batch_jobs([tree / "a" / "one.png", other], out, **options)  # stems now tell the two apart
    assert [o.status for o in both] == ["skipped", "done"]
    rows = _rows(out / REPORT)
    assert sorted(r["study"] for r in rows) == sorted([str(tree / "a" / "one.png"), str(other)])
    assert len({r["study"] for r in _rows(out / SUMMARY)}) == 2


def test_a_list_with_a_spreadsheets_bom_or_odd_columns_is_read_or_refused(tmp_path, tree):
    listing = tmp_path / "list.csv"
    listing.write_text(f"modality,path\nMR,{tree / 'a' / 'one.png'}\n", encoding="utf-8-sig")
    assert find_studies([listing]) == [BatchStudy(tree / "a" / "one.png", "MR")]
    listing.write_text(f"file,spacing_mm\n{tree / 'a' / 'one.png'},1\n")
    with pytest.raises(InputError, match=r"list.csv: unknown column 'file' \(a list's columns: path, modality"):
        find_studies([listing])
    listing.write_text("modality,spacing_mm\nMR,1\n")
    with pytest.raises(InputError, match=r"list\.csv: no path column"):
        find_studies([listing])


def test_a_listed_row_is_read_with_its_own_options_and_the_csvs_say_when_a_summary_is_withheld(tmp_path, tree):
    listing = tmp_path / "list.csv"
    listing.write_text(f"path,modality,spacing_mm\n{tree / 'a' / 'one.png'},MR,0.5\n{tree / 'b' / 'three.png'},,\n")
    out = tmp_path / "out"
    outcomes = run_batch_jobs(find_studies([listing]), out, workers=1, report=False)
    assert [(o.name, o.status) for o in outcomes] == [("one", "done"), ("three", "done")]
    one, three = (json.loads((out / n / "findings.json").read_text()) for n in ("one", "three"))
    assert one["input"]["spacing_mm"][-2:] == [0.5, 0.5] and one["units"] == "mm" and one["input"]["modality"] == "MR"
    assert three["units"] != "mm" and three["summary_withheld"]  # no pixel size, no stated modality
    rows = _rows(out / SUMMARY)
    assert {r["summary_withheld"] for r in rows if r["study"] == "three"} == {three["summary_withheld"]}
    assert {r["summary_withheld"] for r in rows if r["study"] == "one"} == {one["summary_withheld"] or ""}
    assert {r["summary_withheld"] for r in _rows(out / VERTEBRAE) if r["study"] == "three"} == {
        three["summary_withheld"]
    }


def test_force_runs_a_refused_study_flagged_and_counts_as_another_result(tmp_path):
    """A CT whose values are not Hounsfield units fails a batch with the router's line; with ``force`` it is analysed,
    flagged, and a later unforced run does not take the forced result for its own."""
    from lumbar.io.write import write_nifti

    ct = make_phantom(shape=(3, 320, 288), contrast="CT")
    eight_bit = (np.clip((ct.image.array + 1000) / 8, 0, 255) + 256).astype(np.int16)  # no air, no fat: not HU
    path = tmp_path / "in" / "ct.nii.gz"
    path.parent.mkdir()
    write_nifti(eight_bit, ct.image, path)
    out, options = tmp_path / "out", {"workers": 1, "report": False, "modality": "CT"}
    refused = run_batch_jobs([path], out, **options)
    assert refused[0].status == "failed" and "not in Hounsfield units" in refused[0].error
    forced = run_batch_jobs([path], out, **options, force=True)
    assert [(o.name, o.status) for o in forced] == [("ct", "done")]
    findings = json.loads((out / "ct" / "findings.json").read_text())
    assert any(reason.startswith("forced: CT values") for reason in findings["needs_review"])
    assert findings["summary_withheld"]
    assert run_batch_jobs([path], out, **options, force=True)[0].status == "skipped"
    assert run_batch_jobs([path], out, **options)[0].status == "failed"  # unforced: not the forced result's


def _dies_on_crash(study: str, out: str, name: str, *options) -> StudyOutcome:
    """A worker's work that kills its own process on the study named ``crash``, as an out-of-memory kill would."""
    if Path(study).name == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    return StudyOutcome(study, name, "done")


def test_a_worker_that_dies_fails_its_own_study_and_the_others_end(tmp_path):
    """The dead worker breaks the pool and the jobs still in it; run again one at a time, only the study that killed
    its worker fails, with the reason, and every other ends."""
    jobs = [(str(tmp_path / n), str(tmp_path), n, False) for n in ("one", "crash", "two", "three")]
    outcomes: list[StudyOutcome] = []
    _on_processes(jobs, 2, outcomes.append, work=_dies_on_crash)
    assert sorted((o.name, o.status, o.error) for o in outcomes) == [
        ("crash", "failed", DIED),
        ("one", "done", ""),
        ("three", "done", ""),
        ("two", "done", ""),
    ]


def test_one_folder_listed_with_two_series_is_named_study_then_study_2_on_a_fresh_output(tmp_path):
    """The first row of a path listed twice takes the path's own stem, the second the next free name; another
    input with the same stem takes the stem's usual suffix."""
    folder, other = tmp_path / "a" / "study", tmp_path / "b" / "study"
    studies = [BatchStudy(folder, series="1"), BatchStudy(folder, series="2"), BatchStudy(other)]
    plans = plan_names(studies, tmp_path / "out", ["p1", "p2", "p3"])
    assert plans == [("study", False), ("study-2", False), ("study_2", False)]


def test_a_lists_series_and_view_columns_are_that_studys_own_and_part_of_its_fingerprint(tmp_path):
    """A row's ``series`` picks one series of its DICOM folder and its ``view`` states a radiograph's view, as
    ``lumbar analyze --series/--view`` do for one study; another series is another result (analysed again), the
    same one is skipped; a view that is not a radiograph's is refused with its row."""
    import pydicom

    study = tmp_path / "study"
    write_dicom_series(make_phantom(shape=(5, 320, 288), seed=1).image, study / "a", series_description="SAG T2")
    write_dicom_series(
        make_phantom(shape=(5, 320, 288), seed=2, contrast="T1").image, study / "b", series_description="SAG T1"
    )
    uid = {d: pydicom.dcmread(next((study / d).iterdir())).SeriesInstanceUID for d in ("a", "b")}
    listing = tmp_path / "list.csv"
    listing.write_text(f"path,series\n{study},{uid['b']}\n")
    assert find_studies([listing]) == [BatchStudy(study, series=uid["b"])]
    out, options = tmp_path / "out", {"workers": 1, "report": False}
    assert [o.status for o in run_batch_jobs(find_studies([listing]), out, **options)] == ["done"]
    findings = json.loads((out / "study" / "findings.json").read_text())
    assert findings["input"]["series_description"] == "SAG T1"
    assert [o.status for o in run_batch_jobs(find_studies([listing]), out, **options)] == ["skipped"]
    listing.write_text(f"path,series\n{study},{uid['a']}\n")
    assert [o.status for o in run_batch_jobs(find_studies([listing]), out, **options)] == ["done"]
    assert json.loads((out / "study" / "findings.json").read_text())["input"]["series_description"] == "SAG T2"
    listing.write_text(f"path,series\n{study},{uid['a']}\n{study},{uid['b']}\n")  # one folder, both its series
    both = run_batch_jobs(find_studies([listing]), out, **options)
    assert [(o.name, o.status) for o in both] == [("study", "skipped"), ("study-2", "done")]
    assert json.loads((out / "study-2" / "findings.json").read_text())["input"]["series_description"] == "SAG T1"
    assert [o.status for o in run_batch_jobs(find_studies([listing]), out, **options)] == ["skipped", "skipped"]
    listing.write_text(f"path,view\n{study},Lateral\n")
    assert find_studies([listing]) == [BatchStudy(study, view="lateral")]
    listing.write_text(f"path,view\n{study},oblique\n")
    with pytest.raises(InputError, match=r"list\.csv: row 2: view 'oblique': a radiograph's view is frontal or"):
        find_studies([listing])


def test_an_output_inside_an_input_folder_is_refused_in_one_line(tmp_path, tree):
    """Inside a folder tree given as input, each rerun read the last run's figures as new studies (2, then 18, then
    339); inside a DICOM study folder, its files changed the study's fingerprint, so it never resumed."""
    result = CliRunner().invoke(app, ["batch", str(tree), "-o", str(tree / "out"), "--spacing", "1", "--no-report"])
    assert result.exit_code == 2 and "lies inside the input" in result.output and not (tree / "out").exists()
    study = tmp_path / "series"
    write_dicom_series(make_phantom(shape=(5, 320, 288), seed=1).image, study)
    with pytest.raises(InputError, match="lies inside the input"):
        run_batch_jobs([study], study / "out", workers=1, report=False)


def test_an_error_that_is_not_the_inputs_fails_that_study_alone(monkeypatch):
    """A bug one odd study hits is that study's failure, with its type: let through, it ended the batch once every
    other study had run, and their outcomes were dropped."""
    import lumbar
    from lumbar.batch_jobs import analyze_one

    def broken(*args, **kwargs):
        raise RuntimeError("a bug hit by one odd study")

    monkeypatch.setattr(lumbar, "analyze", broken)
    outcome = analyze_one("odd.png", "out", "odd", False)
    assert (outcome.status, outcome.error) == ("failed", "internal error (RuntimeError): please report it")


def test_a_second_batch_on_the_same_output_is_refused(tmp_path, tree):
    """Each batch rewrote the ledger from what it read at its start: two at once lost each other's rows."""
    import fcntl

    from lumbar.batch_jobs import LOCK

    out = tmp_path / "out"
    out.mkdir()
    with open(out / LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match="another batch is writing there"):
            run_batch_jobs([tree / "a" / "one.png"], out, workers=1, report=False, spacing_mm=1.0)
    assert not any(p.name != LOCK for p in out.iterdir())


def test_damaged_findings_are_left_out_of_the_summaries_not_the_batch(tmp_path):
    """A study's findings.json replaced by an older or damaged one (no discs) ended the batch with KeyError."""
    from lumbar.batch_jobs import write_summary, write_vertebrae

    for name, text in (("a", '{"input": {"source": "x"}}'), ("b", "[1, 2]"), ("c", "{not json")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "findings.json").write_text(text)
    outcomes = [StudyOutcome(n, n, "done") for n in ("a", "b", "c")]
    write_summary(outcomes, tmp_path)
    write_vertebrae(outcomes, tmp_path)
    assert _rows(tmp_path / SUMMARY) == [] and _rows(tmp_path / VERTEBRAE) == []


def test_a_study_whose_new_analysis_fails_keeps_no_results_of_its_old_input(tmp_path):
    """Replaced by a broken file, a study's rerun fails; its folder held the old picture's findings beside a ledger
    row saying failed. Results are complete or absent: they are removed."""
    picture = _png(tmp_path / "in" / "a.png", 0)
    out, options = tmp_path / "out", {"workers": 1, "report": False, "spacing_mm": 1.0, "modality": "MR"}
    assert [o.status for o in run_batch_jobs([picture], out, **options)] == ["done"]
    picture.write_bytes(b"not a png any more")
    assert [o.status for o in run_batch_jobs([picture], out, **options)] == ["failed"]
    assert not (out / "a").exists() and [p.name for p in out.iterdir() if p.name.startswith(".a.")] == []


def test_a_list_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_bytes("path\nr\xe9sum\xe9/scan.png\n".encode("cp1252"))
    with pytest.raises(InputError, match="not UTF-8 text"):
        find_studies([listing])


def test_a_ray_task_whose_worker_dies_fails_its_study_alone(tmp_path, tree, monkeypatch):
    """On Ray, a crashed task (its worker killed) raised out of the batch: the studies after it unrecorded, the
    summaries unwritten. It fails its own study, with the reason, and the others end."""
    pytest.importorskip("ray")
    import lumbar.batch_jobs as batch_jobs

    real = batch_jobs.analyze_one

    def dies_on_two(study, *args, **kwargs):
        if study.endswith("two.png"):
            os._exit(1)
        return real(study, *args, **kwargs)

    monkeypatch.setattr(batch_jobs, "analyze_one", dies_on_two)
    studies = [tree / "a" / "one.png", tree / "a" / "deeper" / "two.png", tree / "b" / "three.png"]
    out = tmp_path / "out"
    outcomes = run_batch_jobs(studies, out, ray_address="local", report=False, spacing_mm=1.0, modality="MR")
    assert [(o.name, o.status, o.error) for o in outcomes] == [
        ("one", "done", ""),
        ("two", "failed", DIED),
        ("three", "done", ""),
    ]
    assert {r["study"] for r in _rows(out / SUMMARY)} == {"one", "three"}
