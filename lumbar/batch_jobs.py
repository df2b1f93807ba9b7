"""``lumbar batch``: every study of a folder tree or a CSV list, analysed by a pool of processes or a Ray cluster.

Each study is analysed by :func:`lumbar.analyze` into ``OUT/<name>/`` (published whole or not at all), so a batch
can be stopped and run again: a study whose folder already holds its ``findings.json`` is skipped. A study that
fails is recorded with its one-line reason and the others go on. At the end ``OUT/batch_report.csv`` lists every
study (done, skipped or failed, and why), ``OUT/batch_summary.csv`` holds one row per disc of every analysed
study (level, grades, measurements, stenosis, review flags) and ``OUT/batch_vertebrae.csv`` one row per vertebra
(heights, Genant grade, CT bone density, radiograph heights and tilt), all written atomically.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from lumbar.errors import InputError
from lumbar.io.dicom import is_dicom_file, remove_extracted
from lumbar.io.names import unique_stems
from lumbar.io.read import ITK_SUFFIXES, NIFTI_SUFFIXES, RASTER_SUFFIXES, suffix_of
from lumbar.resources import default_workers

IMAGE_ENDINGS = (*NIFTI_SUFFIXES, *ITK_SUFFIXES, *RASTER_SUFFIXES, ".zip")
REPORT, SUMMARY, VERTEBRAE = "batch_report.csv", "batch_summary.csv", "batch_vertebrae.csv"


@dataclass(frozen=True)
class StudyOutcome:
    study: str
    name: str
    status: str  # "done", "skipped" (its complete output was already there) or "failed"
    error: str = ""


def find_studies(inputs: Iterable[str | Path]) -> list[Path]:
    """Studies in folder trees (an image file is one study; a folder holding DICOM files is one study) or listed
    in a CSV file (one path per row, in a column ``path`` or the first; relative paths from the CSV's folder)."""
    studies: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_file() and suffix_of(path) == ".csv":
            studies.extend(_listed(path))
        elif path.is_file():
            studies.append(path)
        else:
            studies.extend(_walk(path))
    if not studies:
        raise InputError(f"{', '.join(map(str, inputs))}: no study found (image files or DICOM folders)")
    return list(dict.fromkeys(studies))


def _listed(table: Path) -> list[Path]:
    with open(table, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row and row[0].strip()]
    if rows and rows[0][0].strip().lower() == "path":
        rows = rows[1:]
    out = []
    for row in rows:
        path = Path(row[0].strip())
        out.append(path if path.is_absolute() else table.parent / path)
    return out


def _walk(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if any(suffix_of(p) not in IMAGE_ENDINGS and is_dicom_file(p) for p in files):
        return [folder]  # a DICOM series (or study) folder
    found = [p for p in files if suffix_of(p) in IMAGE_ENDINGS]
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
        found.extend(_walk(sub))
    return found


def analyze_one(
    study: str, out: str, name: str, report: bool, spacing_mm: float | None = None, modality: str | None = None
) -> StudyOutcome:
    """Analyse one study into ``out/name`` (in a worker process or a Ray task); never raises for a bad input."""
    import lumbar

    if (Path(out) / name / "findings.json").is_file():
        return StudyOutcome(study, name, "skipped")
    try:
        lumbar.analyze(study, out=out, stem=name, report=report, spacing_mm=spacing_mm, modality=modality)
    except InputError as exc:
        return StudyOutcome(study, name, "failed", " ".join(str(exc).split()))
    finally:
        remove_extracted()  # a zip's series, unpacked for this study: the worker goes on to others
    return StudyOutcome(study, name, "done")


def run_batch_jobs(
    studies: list[Path],
    out: Path,
    *,
    workers: int = 0,
    ray_address: str | None = None,
    report: bool = True,
    spacing_mm: float | None = None,
    modality: str | None = None,
    on_outcome: Callable[[StudyOutcome], None] | None = None,
) -> list[StudyOutcome]:
    """Analyse every study (unique output names), locally in ``workers`` processes or on the Ray cluster at
    ``ray_address`` (``local`` starts one on this machine, ``auto`` joins a running one); write the report and the
    summary; return the outcomes in the studies' order."""
    out.mkdir(parents=True, exist_ok=True)
    names = unique_stems(studies)
    jobs = [(str(study), str(out), name, report, spacing_mm, modality) for study, name in names.items()]
    if ray_address is not None:
        outcomes = _on_ray(jobs, ray_address, on_outcome)
    else:
        outcomes = _on_processes(jobs, workers or default_workers(), on_outcome)
    order = {name: k for k, name in enumerate(names.values())}
    outcomes.sort(key=lambda o: order[o.name])
    write_report(outcomes, out)
    write_summary(outcomes, out)
    write_vertebrae(outcomes, out)
    return outcomes


def _on_processes(jobs: list[tuple], workers: int, on_outcome: Callable | None) -> list[StudyOutcome]:
    outcomes = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for future in as_completed([pool.submit(analyze_one, *job) for job in jobs]):
            outcomes.append(future.result())
            if on_outcome:
                on_outcome(outcomes[-1])
    return outcomes


def _on_ray(jobs: list[tuple], address: str, on_outcome: Callable | None) -> list[StudyOutcome]:
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs the ray package: pip install 'ray>=2.9'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(analyze_one)
        pending = [task.remote(*job) for job in jobs]
        outcomes = []
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            outcomes.append(ray.get(done[0]))
            if on_outcome:
                on_outcome(outcomes[-1])
        return outcomes
    finally:
        if started:
            ray.shutdown()


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)


def write_report(outcomes: list[StudyOutcome], out: Path) -> None:
    _write_csv(
        out / REPORT,
        ["study", "output", "status", "error"],
        [[o.study, o.name, o.status, o.error] for o in outcomes],
    )


SUMMARY_GRADES = ("pfirrmann", "modic", "herniation", "bulging", "narrowing", "spondylolisthesis")
SUMMARY_MEASUREMENTS = ("height_index", "canal_ap_mm", "slip_mm", "angle_deg")


def _analysed(outcomes: list[StudyOutcome], out: Path) -> Iterable[tuple[str, dict]]:
    """(name, findings) of every study with findings (done now or before)."""
    for o in outcomes:
        path = out / o.name / "findings.json"
        if o.status != "failed" and path.is_file():
            yield o.name, json.loads(path.read_text(encoding="utf-8"))


def write_summary(outcomes: list[StudyOutcome], out: Path) -> None:
    """One row per disc of every study with findings (done now or before): what a cohort table needs."""
    rows = []
    for name, findings in _analysed(outcomes, out):
        review = "; ".join(findings.get("needs_review", []))
        for disc in findings["discs"]:
            grades = disc.get("grades", {})
            measured = disc.get("measurements") or {}
            rows.append(
                [name, disc["level"]]
                + [grades[g]["value"] if g in grades else "" for g in SUMMARY_GRADES]
                + [_cell(measured.get(m)) for m in SUMMARY_MEASUREMENTS]
                + [(disc.get("stenosis") or {}).get("grade", ""), findings["units"], review]
            )
    _write_csv(
        out / SUMMARY,
        ["study", "level", *SUMMARY_GRADES, *SUMMARY_MEASUREMENTS, "stenosis", "units", "needs_review"],
        rows,
    )


VERTEBRA_MEASUREMENTS = (
    "height_anterior_mm",
    "height_middle_mm",
    "height_posterior_mm",
    "wedge_ratio",
    "biconcave_ratio",
    "genant_grade",
    "genant_not_graded",
    "bone_density_hu",
    "bone_density_hu_median",
)
FRONTAL_MEASUREMENTS = ("height_left", "height_right", "tilt_deg")


def write_vertebrae(outcomes: list[StudyOutcome], out: Path) -> None:
    """One row per vertebra of every study with findings: heights and Genant grade (MRI, CT), trabecular bone
    density (CT), heights and tilt (frontal radiographs); a CT's bone density screen on every row of its study."""
    rows = []
    for name, findings in _analysed(outcomes, out):
        review = "; ".join(findings.get("needs_review", []))
        screen = (findings.get("bone_density_screening") or {}).get("category", "")
        for vertebra in findings["vertebrae"]:
            measured = vertebra.get("measurements") or {}
            frontal = vertebra.get("frontal") or {}
            rows.append(
                [name, findings["input"]["modality"], vertebra["level"]]
                + [_cell(measured.get(m)) for m in VERTEBRA_MEASUREMENTS]
                + [_cell(frontal.get(m)) for m in FRONTAL_MEASUREMENTS]
                + [screen, findings["units"], review]
            )
    header = ["study", "modality", "level", *VERTEBRA_MEASUREMENTS, *FRONTAL_MEASUREMENTS, "bone_density_screen"]
    _write_csv(out / VERTEBRAE, [*header, "units", "needs_review"], rows)


def _cell(value: object) -> object:
    """A CSV cell: empty for a value not measured."""
    return "" if value is None else value
