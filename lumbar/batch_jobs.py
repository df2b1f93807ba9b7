"""``lumbar batch``: every study of a folder tree or a CSV list, analysed by a pool of processes or a Ray cluster.

Each study is analysed by :func:`lumbar.analyze` into ``OUT/<name>/`` (published whole or not at all), so a batch
can be stopped and run again. ``OUT/batch_report.csv`` is the batch's ledger, rewritten (atomically) after every
study: each study's path, output name, status (done, skipped or failed, and why) and the fingerprint of its input
(its files' names, sizes and modification times, and the reading options). A study is skipped only where the
ledger holds its fingerprint and its output is complete; a different input never takes over another's output: a
name held by another study's results gets a suffix (``-2``, ``-3``, ...), and the same path with new content or
options is analysed again into its own folder. A study that fails is recorded with its one-line reason and the
others go on. ``OUT/batch_summary.csv`` holds one row per disc and ``OUT/batch_vertebrae.csv`` one row per vertebra
of every study the ledger lists with findings, from this run or an earlier one (level, grades, measurements,
stenosis, heights, Genant grade, CT bone density, radiograph heights and tilt, review flags, whether the Summary
was withheld).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

from lumbar.errors import InputError
from lumbar.findings import HEIGHT_FIELDS
from lumbar.io.dicom import is_dicom_file, remove_extracted
from lumbar.io.locks import exclusive
from lumbar.io.names import unique_stems
from lumbar.io.read import ITK_SUFFIXES, NIFTI_SUFFIXES, RASTER_SUFFIXES, check_view, suffix_of
from lumbar.outputs import check_outside_inputs, remove_result
from lumbar.resources import default_workers, process_pool

IMAGE_ENDINGS = (*NIFTI_SUFFIXES, *ITK_SUFFIXES, *RASTER_SUFFIXES, ".zip")
REPORT, SUMMARY, VERTEBRAE = "batch_report.csv", "batch_summary.csv", "batch_vertebrae.csv"


@dataclass(frozen=True)
class StudyOutcome:
    study: str
    name: str
    status: str  # "done", "skipped" (its complete output was already there) or "failed"
    error: str = ""
    fingerprint: str = ""  # of the input and its reading options (:func:`fingerprint`)


@dataclass(frozen=True)
class BatchStudy:
    """One study of a batch and its own options (a CSV list's ``modality`` and ``spacing_mm`` columns, which take
    the place of the batch's, and ``series`` and ``view``, the command line's ``--series`` and ``--view`` for that
    study alone)."""

    path: Path
    modality: str | None = None
    spacing_mm: float | None = None
    series: str | None = None
    view: str | None = None


def find_studies(inputs: Iterable[str | Path]) -> list[BatchStudy]:
    """Studies in folder trees (an image file is one study; a folder holding DICOM files is one study) or listed
    in a CSV file (one path per row, in a column ``path`` or the first; relative paths from the CSV's folder; with a
    header, the columns ``modality`` and ``spacing_mm`` may give a row's own, an empty cell the batch's, and
    ``series`` and ``view`` a row's series of a DICOM folder and radiograph's view). A study
    found twice (the same file by two paths, with the same series and view) is kept once, where it came first."""
    studies: list[BatchStudy] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_file() and suffix_of(path) == ".csv":
            studies.extend(_listed(path))
        elif path.is_file():
            studies.append(BatchStudy(path))
        else:
            studies.extend(BatchStudy(p) for p in _walk(path))
    if not studies:
        raise InputError(f"{', '.join(map(str, inputs))}: no study found (image files or DICOM folders)")
    return _once(studies)


def _once(studies: list[BatchStudy]) -> list[BatchStudy]:
    """Each study once, where it came first: one file by two paths is one study, one folder's two series two."""
    firsts: dict[tuple, BatchStudy] = {}
    for study in studies:
        firsts.setdefault((study.path.resolve(), study.series, study.view), study)
    return list(firsts.values())


LIST_COLUMNS = ("path", "modality", "spacing_mm", "series", "view")


def _listed(table: Path) -> list[BatchStudy]:
    try:
        with open(table, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's "CSV UTF-8" starts with a BOM
            rows = [[cell.strip() for cell in row] for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise InputError(f"{table}: not UTF-8 text (a spreadsheet saves it as 'CSV UTF-8')") from None
    has_header = bool(rows) and any(cell.lower() in LIST_COLUMNS for cell in rows[0])
    header = [cell.lower() for cell in rows[0]] if has_header else ["path"]
    unknown = [name for name in header if name not in LIST_COLUMNS]
    if unknown or "path" not in header:
        what = f"unknown column {unknown[0]!r}" if unknown else "no path column"
        raise InputError(f"{table}: {what} (a list's columns: {', '.join(LIST_COLUMNS)})")
    out = []
    for number, row in enumerate(rows[1:] if has_header else rows, start=2 if has_header else 1):
        cells = dict(zip(header, row))
        if not cells.get("path"):
            raise InputError(f"{table}: row {number} names no path")
        path, spacing = Path(cells["path"]), cells.get("spacing_mm") or None
        try:
            spacing_mm = float(spacing) if spacing is not None else None
        except ValueError:
            raise InputError(f"{table}: row {number}: spacing_mm {spacing!r} is not a number of millimetres") from None
        view = (cells.get("view") or "").lower() or None
        try:
            check_view(view)
        except InputError as exc:
            raise InputError(f"{table}: row {number}: {str(exc).removeprefix('--')}") from None
        where = path if path.is_absolute() else table.parent / path
        out.append(BatchStudy(where, cells.get("modality") or None, spacing_mm, cells.get("series") or None, view))
    return out


def _walk(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if any(suffix_of(p) not in IMAGE_ENDINGS and is_dicom_file(p) for p in files):
        return [folder]  # a DICOM series (or study) folder
    found = [p for p in files if suffix_of(p) in IMAGE_ENDINGS]
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
        found.extend(_walk(sub))
    return found


UNREADABLE = "unreadable"  # the fingerprint of an input that is gone or cannot be read: it matches nothing
DETACHED_HEADERS = (".mhd", ".nhdr")  # whose voxels lie in other files beside them


def fingerprint(study: Path, options: tuple) -> str:
    """What identifies a study's input for a rerun: its files' names (within it), sizes, modification times and
    status-change times, and the reading ``options``; a change in any means its results no longer answer for it. Read
    from the files' metadata, not their bytes: a 5,000-file DICOM folder costs a moment. The status-change time moves
    with every write and cannot be set back, so a file rewritten with its old size and modification time restored
    (``cp -p``, ``rsync -a``, ``touch -r``) is seen as changed too. A detached header (.mhd, .nhdr) counts the files
    beside it that share its name's stem (its voxels' usual names)."""
    digest = hashlib.sha256(repr(options).encode())
    try:
        if study.is_dir():
            files = sorted(p for p in study.rglob("*") if p.is_file())
        elif suffix_of(study) in DETACHED_HEADERS:
            stem = study.name[: -len(suffix_of(study))]
            files = [study, *sorted(p for p in study.parent.glob(f"{stem}*") if p.is_file() and p != study)]
        else:
            files = [study] if study.is_file() else []
        if not files:
            return UNREADABLE
        folder = study.is_dir()
        for f in files:
            stat = f.stat()
            name = f.relative_to(study).as_posix() if folder else f.name
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\n".encode())
    except OSError:  # unreadable: its analysis says why; nothing of it can be complete
        return UNREADABLE
    return digest.hexdigest()[:16]


def read_ledger(out: Path) -> list[StudyOutcome]:
    """The studies an earlier run recorded in ``OUT/batch_report.csv`` (none where there is no such file; rows of
    a ledger from before fingerprints were kept have none)."""
    path = out / REPORT
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [
            StudyOutcome(r["study"], r["output"], r["status"], r.get("error") or "", r.get("fingerprint") or "")
            for r in csv.DictReader(f)
            if r.get("output")
        ]


def _same_path(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _source_of(folder: Path) -> str | None:
    """The input a study folder's findings name (None where there are none, or they cannot be read)."""
    try:
        return json.loads((folder / "findings.json").read_text(encoding="utf-8"))["input"]["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def plan_names(studies: list[BatchStudy], out: Path, prints: list[str]) -> list[tuple[str, bool]]:
    """Each study's output name, and whether its complete results are already there (skip it). A study the ledger
    recorded with the same fingerprint and complete output keeps that name and is skipped (its own path's row first,
    else a moved input's), wherever its name would fall now; otherwise it takes its own stem, unless another input
    holds that name (the ledger names another path, or the folder there holds another input's findings), then the
    first free ``stem-2``, ``stem-3``, ... Nothing is skipped on a folder's word alone: without the ledger's
    fingerprint, a study is analysed again."""
    ledger = {o.name: o for o in read_ledger(out)}
    done = [
        o
        for o in ledger.values()
        if o.status != "failed" and o.fingerprint not in ("", UNREADABLE) and (out / o.name / "findings.json").is_file()
    ]
    stems = unique_stems(list(dict.fromkeys(study.path for study in studies)))  # a path listed twice: one stem
    taken: set[str] = set()
    plans = []
    for study, print_ in zip(studies, prints):
        same = [o for o in done if o.fingerprint == print_ and o.name not in taken]
        own = [o for o in same if _same_path(o.study, study.path)]
        if same:
            name = (own or same)[0].name
            taken.add(name)
            plans.append((name, True))
            continue
        stem, k = stems[study.path], 1
        name = stem
        while name in taken or _held_by_another(out, ledger.get(name), name, study.path):
            k += 1
            name = f"{stem}-{k}"
        taken.add(name)
        plans.append((name, False))
    return plans


def _held_by_another(out: Path, recorded: StudyOutcome | None, name: str, path: Path) -> bool:
    """Whether ``OUT/name`` belongs to an input other than ``path``: the ledger says so (its full path), or, with no
    row of the current kind, the folder holds another input's findings."""
    if recorded is not None and recorded.fingerprint:
        return not _same_path(recorded.study, path)
    if not (out / name).exists():
        return False
    source = _source_of(out / name)
    return source is None or not _same_path(source, path)


def analyze_one(
    study: str,
    out: str,
    name: str,
    report: bool,
    spacing_mm: float | None = None,
    modality: str | None = None,
    force: bool = False,
    series: str | None = None,
    view: str | None = None,
) -> StudyOutcome:
    """Analyse one study into ``out/name`` (in a worker process or a Ray task); never raises: a bad input fails with
    its one-line reason, any other error (a bug one odd study hits) with its type, and the other studies go on (an
    error let through ended the batch once every study had run, their outcomes dropped)."""
    import lumbar

    try:
        options = {"spacing_mm": spacing_mm, "modality": modality, "force": force, "series": series, "view": view}
        lumbar.analyze(study, out=out, stem=name, report=report, **options)
    except InputError as exc:
        return StudyOutcome(study, name, "failed", " ".join(str(exc).split()))
    except Exception as exc:
        return StudyOutcome(study, name, "failed", f"internal error ({type(exc).__name__}): please report it")
    finally:
        remove_extracted(study)  # a zip's series, unpacked for this study: the worker goes on to others
    return StudyOutcome(study, name, "done")


LEDGER_EVERY_S = 1.0  # the ledger is rewritten after a study at most this often (and at the end): a long batch's
# ledger is not rewritten thousands of times a minute; a kill loses at most that much of it, and those studies are
# analysed again


LOCK = ".lumbar-batch.lock"


@contextlib.contextmanager
def _only_batch(out: Path) -> Iterator[None]:
    """Hold ``OUT/.lumbar-batch.lock`` for the batch: a second batch writing the same OUT is refused (each rewrote the
    ledger from what it read at its start, and the other's rows were lost). The kernel drops the lock when its
    holder dies, so a killed batch leaves none."""
    with exclusive(out / LOCK, blocking=False) as held:
        if not held:
            raise InputError(f"{out}: another batch is writing there; wait for it to end, or choose another folder")
        yield


def run_batch_jobs(
    studies: list[BatchStudy | Path],
    out: Path,
    *,
    workers: int = 0,
    ray_address: str | None = None,
    report: bool = True,
    spacing_mm: float | None = None,
    modality: str | None = None,
    force: bool = False,
    on_outcome: Callable[[StudyOutcome], None] | None = None,
) -> list[StudyOutcome]:
    """Analyse every study (a study's own options before ``spacing_mm`` and ``modality``; ``force``: one no pipeline
    is made for is analysed anyway, flagged, as ``lumbar analyze --force`` does), locally in ``workers``
    processes or on the Ray cluster at ``ray_address`` (``local`` starts one on this machine, ``auto`` joins a
    running one), recording each in the ledger as it ends; write the summaries; return the outcomes in the studies'
    order."""
    studies = _once([s if isinstance(s, BatchStudy) else BatchStudy(Path(s)) for s in studies])
    check_outside_inputs(out, tuple(str(s.path) for s in studies))  # its results would be read as studies next run
    out.mkdir(parents=True, exist_ok=True)
    with _only_batch(out):
        return _run(studies, out, workers, ray_address, report, spacing_mm, modality, force, on_outcome)


def _run(
    studies: list[BatchStudy],
    out: Path,
    workers: int,
    ray_address: str | None,
    report: bool,
    spacing_mm: float | None,
    modality: str | None,
    force: bool,
    on_outcome: Callable[[StudyOutcome], None] | None,
) -> list[StudyOutcome]:
    """:func:`run_batch_jobs` once its output folder is checked and held."""
    forced = ("force",) if force else ()  # a forced run is another result; an unforced one's fingerprint as before
    options = [
        (
            s.spacing_mm if s.spacing_mm is not None else spacing_mm,
            s.modality or modality,
            report,
            *forced,
            *((f"series={s.series}",) if s.series else ()),  # likewise a series or view chosen
            *((f"view={s.view}",) if s.view else ()),
        )
        for s in studies
    ]
    prints = [fingerprint(s.path, o) for s, o in zip(studies, options)]
    plans = plan_names(studies, out, prints)
    planned = {name for name, _ in plans}
    current = {s.path.resolve() for s in studies}
    previous = read_ledger(out)
    # other studies' rows stay; a study of this run keeps no row under another name (it has one now)
    earlier = [o for o in previous if o.name not in planned and Path(o.study).resolve() not in current]
    standing = {o.name: o for o in previous if o.name in planned}  # until its study ends, its old row stands
    order = {name: k for k, (name, _) in enumerate(plans)}
    outcomes: list[StudyOutcome] = []
    written = [0.0]

    def ledger(now: bool = False) -> None:
        if now or time.monotonic() - written[0] >= LEDGER_EVERY_S:
            ended = {o.name for o in outcomes}
            write_report([*earlier, *(o for n, o in standing.items() if n not in ended), *outcomes], out)
            written[0] = time.monotonic()

    def recorded(outcome: StudyOutcome, write: bool = True) -> None:
        k = order[outcome.name]  # the ledger names each input in full: a rerun from another folder finds it
        outcomes.append(replace(outcome, study=str(studies[k].path.absolute()), fingerprint=prints[k]))
        if outcome.status == "failed":
            remove_result(out / outcome.name)  # results of its input as it was: they no longer answer for it
        if write:
            ledger()
        if on_outcome:
            on_outcome(outcomes[-1])

    jobs = []
    for study, (name, skip), (spacing, modality_of, *_) in zip(studies, plans, options):
        if skip:
            recorded(StudyOutcome(str(study.path), name, "skipped"), write=False)
        else:
            where = str(study.path.absolute())
            jobs.append((where, str(out), name, report, spacing, modality_of, force, study.series, study.view))
    ledger(now=True)
    if jobs and ray_address is not None:
        _on_ray(jobs, ray_address, recorded)
    elif jobs:
        _on_processes(jobs, workers or default_workers(), recorded)
    outcomes.sort(key=lambda o: order[o.name])
    every = [*earlier, *outcomes]
    write_report(every, out)
    write_summary(every, out)
    write_vertebrae(every, out)
    return outcomes


def _on_processes(
    jobs: list[tuple],
    workers: int,
    on_outcome: Callable[[StudyOutcome], None],
    work: Callable[..., StudyOutcome] = analyze_one,
) -> None:
    """``work`` on every job in ``workers`` processes, each outcome to ``on_outcome`` as it ends. A worker that dies
    (killed, out of memory, a crash in native code) breaks its pool and every job still in it: those are run again
    one at a time, each in a pool of its own, so that a death is its own study's and fails that study alone."""
    for job in _in_pool(jobs, workers, on_outcome, work):
        if _in_pool([job], 1, on_outcome, work):
            on_outcome(StudyOutcome(job[0], job[2], "failed", DIED))


DIED = "the process analysing it ended abruptly (killed, out of memory, or a crash in a native library)"


def _in_pool(
    jobs: list[tuple], workers: int, on_outcome: Callable[[StudyOutcome], None], work: Callable[..., StudyOutcome]
) -> list[tuple]:
    """Run ``jobs`` in a pool of new processes (:func:`lumbar.resources.process_pool`); the jobs a dead worker took
    down."""
    broken = []
    with process_pool(workers) as pool:
        futures = {pool.submit(work, *job): job for job in jobs}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except BrokenProcessPool:
                broken.append(futures[future])
                continue
            on_outcome(outcome)
    return broken


def _on_ray(jobs: list[tuple], address: str, on_outcome: Callable[[StudyOutcome], None]) -> None:
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs the ray package: pip install 'ray>=2.9'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=None if address == "local" else address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(analyze_one)
        of = {task.remote(*job): job for job in jobs}
        pending = list(of)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                outcome = ray.get(done[0])
            except ray.exceptions.RayError as exc:  # its worker died (analyze_one itself never raises): that study's
                job = of[done[0]]  # failure alone; one crashed task stopped the whole batch, its summaries unwritten
                crashed = isinstance(exc, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError)
                outcome = StudyOutcome(job[0], job[2], "failed", DIED if crashed else f"Ray: {type(exc).__name__}")
            on_outcome(outcome)
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
        ["study", "output", "status", "error", "fingerprint"],
        [[o.study, o.name, o.status, o.error, o.fingerprint] for o in outcomes],
    )


SUMMARY_GRADES = ("pfirrmann", "modic", "herniation", "bulging", "narrowing", "spondylolisthesis")
SUMMARY_MEASUREMENTS = ("height_index", "canal_ap_mm", "slip_mm", "angle_deg")


def _rows(outcomes: list[StudyOutcome], out: Path, rows_of: Callable[[str, dict], list[list]]) -> list[list]:
    """``rows_of(name, findings)`` of every study with findings (done now or before); one whose findings cannot be
    read or lack what its rows need (an earlier study's folder damaged since, or written by an older version) is
    left out of the summaries, not the batch's end."""
    rows = []
    for o in outcomes:
        path = out / o.name / "findings.json"
        if o.status == "failed" or not path.is_file():
            continue
        try:
            rows.extend(rows_of(o.name, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return rows


def write_summary(outcomes: list[StudyOutcome], out: Path) -> None:
    """One row per disc of every study with findings (done now or before): what a cohort table needs."""

    def rows_of(name: str, findings: dict) -> list[list]:
        review = "; ".join(findings.get("needs_review", []))
        weighting = findings["input"].get("weighting") or ""  # an MR series' T1/T2, as findings.json reads it
        rows = []
        for disc in findings["discs"]:
            grades = disc.get("grades", {})
            measured = disc.get("measurements") or {}
            rows.append(
                [name, disc["level"]]
                + [grades[g]["value"] if g in grades else "" for g in SUMMARY_GRADES]
                + [_cell(measured.get(m)) for m in SUMMARY_MEASUREMENTS]
                + [(disc.get("stenosis") or {}).get("grade", ""), findings["units"], weighting]
                + [review, _withheld(findings)]
            )
        return rows

    rows = _rows(outcomes, out, rows_of)
    _write_csv(
        out / SUMMARY,
        [
            "study",
            "level",
            *SUMMARY_GRADES,
            *SUMMARY_MEASUREMENTS,
            "stenosis",
            "units",
            "weighting",
            "needs_review",
            WITHHELD,
        ],
        rows,
    )


VERTEBRA_MEASUREMENTS = (
    *HEIGHT_FIELDS,
    "genant_not_graded",
    "bone_density_hu",
    "bone_density_hu_median",
)
FRONTAL_MEASUREMENTS = ("height_left", "height_right", "tilt_deg")


def screen_cell(screening: dict) -> str:
    """A CT's bone density screen in one cell: its category, and what qualifies it (the vertebra's name not
    confirmed, contrast given), which the category alone dropped."""
    if not screening:
        return ""
    qualifiers = []
    if not screening.get("level_confirmed", True):
        qualifiers.append(f"the vertebra named {screening.get('level', 'L1')}: its name not confirmed")
    if str(screening.get("contrast", "")).startswith("contrast-enhanced"):
        qualifiers.append("contrast-enhanced: reads higher")
    return screening.get("category", "") + (f" ({'; '.join(qualifiers)})" if qualifiers else "")


def write_vertebrae(outcomes: list[StudyOutcome], out: Path) -> None:
    """One row per vertebra of every study with findings: heights and Genant grade (MRI, CT), trabecular bone
    density (CT), heights and tilt (frontal radiographs); a CT's bone density screen on every row of its study."""

    def rows_of(name: str, findings: dict) -> list[list]:
        review = "; ".join(findings.get("needs_review", []))
        screen = screen_cell(findings.get("bone_density_screening") or {})
        rows = []
        for vertebra in findings["vertebrae"]:
            measured = vertebra.get("measurements") or {}
            frontal = vertebra.get("frontal") or {}
            rows.append(
                [name, findings["input"]["modality"], vertebra["level"]]
                + [_cell(measured.get(m)) for m in VERTEBRA_MEASUREMENTS]
                + [_cell(frontal.get(m)) for m in FRONTAL_MEASUREMENTS]
                + [screen, findings["units"], review, _withheld(findings)]
            )
        return rows

    rows = _rows(outcomes, out, rows_of)
    header = ["study", "modality", "level", *VERTEBRA_MEASUREMENTS, *FRONTAL_MEASUREMENTS, "bone_density_screen"]
    _write_csv(out / VERTEBRAE, [*header, "units", "needs_review", WITHHELD], rows)


WITHHELD = "summary_withheld"  # why the study's report states nothing: the review reasons that withhold its Summary


def _withheld(findings: dict) -> str:
    """The reason the study's Summary was withheld, empty where it states what was validated."""
    return findings.get(WITHHELD) or ""


def _cell(value: object) -> object:
    """A CSV cell: empty for a value not measured."""
    return "" if value is None else value
