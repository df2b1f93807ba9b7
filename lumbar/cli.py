"""The ``lumbar`` command: a thin shell over the Python API.

Errors a user can cause become one line on stderr and exit code 2; anything unexpected becomes one
line and exit code 1. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lumbar.errors import InputError
from lumbar.version import __version__

if TYPE_CHECKING:
    from lumbar.image import SpineImage

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Deep-learning analysis of lumbar spine images.",
)
train_app = typer.Typer(no_args_is_help=True, help="Train the project's models on your own data.")
evaluate_app = typer.Typer(no_args_is_help=True, help="Measure a model against reference masks or gradings.")
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")

console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


def one_line(exc: BaseException) -> str:
    """The exception's message with all whitespace folded, so that an error is exactly one line."""
    return escape(" ".join(str(exc).split()))


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn exceptions into one line and a non-zero exit code (unless --debug)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except InputError as exc:
            if _state["debug"]:
                raise
            err_console.print(f"[red]error:[/red] {one_line(exc)}", highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[red]interrupted[/red]")
            raise typer.Exit(130) from None
        except Exception as exc:  # the last line of defence: never a traceback for a user
            if _state["debug"]:
                raise
            err_console.print(
                f"[red]error:[/red] unexpected {type(exc).__name__}: {one_line(exc)} (rerun with --debug for details)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


class StageBar:
    """:class:`lumbar.progress.Progress` on a rich bar: one line that names the stage and counts its steps."""

    def __init__(self, bar: Progress, prefix: str = "") -> None:
        self.bar, self.prefix = bar, prefix
        self.task = bar.add_task(f"{prefix}starting", total=None)

    def stage(self, name: str, total: int | None = None) -> None:
        self.bar.remove_task(self.task)  # a fresh task: its own count, and its own clock
        self.task = self.bar.add_task(f"{self.prefix}{name}", total=total)

    def advance(self, steps: int = 1) -> None:
        self.bar.advance(self.task, steps)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lumbar {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    """Deep-learning analysis of lumbar spine images: segmentation, levels, grading, measurements, reports."""
    _state["debug"] = debug
    # Decoder plug-ins log their own tracebacks before we turn the failure into one line; pydicom warns of each odd
    # value (a UID with a letter, an over-long description) as it is first read, beside that line or a clean result.
    logging.getLogger("pydicom").setLevel(logging.DEBUG if debug else logging.CRITICAL)
    if not debug:
        import pydicom.config

        pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


@app.command()
@friendly_errors
def info(
    path: Path = typer.Argument(
        ..., help="DICOM (folder, file, .zip), NIfTI, MHA/MHD, NRRD, PNG/JPEG, or a cine/video."
    ),
    spacing: float = typer.Option(None, help="Pixel size in mm for PNG/JPEG slices."),
    series: str = typer.Option(None, help="SeriesInstanceUID or SeriesNumber in a folder with several series."),
    modality: str = typer.Option(None, help="Override the modality (MR, CT, XR, RF, US)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show what was read: shape, spacing, orientation, modality, series (frames and frame rate for a cine), and
    the memory analysing it would need against what is allowed."""
    from lumbar.image import SpineImage
    from lumbar.io.read import read_any
    from lumbar.resources import memory_note

    files_read: list[int] = []  # DICOM files whose headers were read: the analysis's estimate counts them all
    read = read_any(
        path,
        spacing_mm=spacing,
        modality=modality,
        series=series,
        before_decoding=lambda shape, files: files_read.append(files),
    )
    description = read.describe()
    if isinstance(read, SpineImage):
        description.update(_series_uids(read))
        description["memory_to_analyse"] = memory_note([read.shape], files_read[-1] if files_read else 0)
    if as_json:
        typer.echo(json.dumps(description, indent=1, default=str))
        return
    table = Table(show_header=False, box=None)
    for key, value in description.items():
        if isinstance(value, list) and key == "other_series":
            value = "\n".join(value) or "none"
        table.add_row(f"[bold]{key}[/bold]", escape(str(value)))
    console.print(table)


def _series_uids(image: SpineImage) -> dict[str, Any]:
    """The UIDs that pick the image's series and the folder's other series with ``--series`` (a part's followed by
    the part, ``<UID>.2``), for ``lumbar info``'s console only: what findings and level files carry
    (:meth:`SpineImage.describe`) names series without them."""
    shown: dict[str, Any] = {}
    if image.series is not None and image.series.uid:
        shown["series_uid"] = image.series.key
    if image.other_series:
        shown["other_series"] = [f"{other.shown} uid {other.uid}" for other in image.other_series]
    return shown


def run_many(
    inputs: list[Path], work: Callable[[Path, str, StageBar], Any], show: Callable[[Path, str, Any], None]
) -> None:
    """Run ``work`` on every study of ``inputs`` (see :func:`lumbar.batch.run_batch`) with a progress line each;
    a study that fails is reported in one line and the others go on; exit code 2 if any failed."""
    from lumbar.batch import plan, run_batch

    studies = plan(inputs)
    if len(studies) == 1:  # one study: its error is the command's error
        [(study, name)] = studies.items()
        with progress_bar() as bar:
            result = work(study, name, StageBar(bar))
        show(study, name, result)
        return
    with progress_bar() as bar:
        overall = bar.add_task("studies", total=len(studies))
        stages = StageBar(bar, "  ")

        def done(study: Path, name: str, result: Any) -> None:
            bar.advance(overall)
            show(study, name, result)

        def failed(study: Path, reason: str) -> None:
            bar.advance(overall)
            err_console.print(f"[red]error:[/red] {escape(reason)}", highlight=False, soft_wrap=True)

        outcome = run_batch(
            studies,
            lambda study, name: work(study, name, stages),
            on_done=done,
            on_failed=failed,
            keep_going=not _state["debug"],
        )
    if outcome.failed:
        err_console.print(f"[red]{len(outcome.failed)} of {outcome.total} studies failed[/red]")
        raise typer.Exit(2)


VIEW_HELP = "A radiograph's view, frontal or lateral, where its file does not say (else the networks decide)."
FORCE_HELP = "Run the sagittal MRI pipeline even on an image it does not support (CT, axial, ...), flagged for review."


@app.command()
@friendly_errors
def segment(
    inputs: list[Path] = typer.Argument(
        ..., help="Files or folders: DICOM, NIfTI, MHA, NRRD, PNG/JPEG (a folder of PNGs = many slices)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    spacing: float = typer.Option(None, help="Pixel size in mm for PNG/JPEG slices."),
    modality: str = typer.Option(None, help="Override the modality (MR, CT, XR, RF, US)."),
    series: str = typer.Option(None, help="Series to use in a DICOM folder with several."),
    view: str = typer.Option(None, help=VIEW_HELP),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Segment vertebrae, discs and canal, and name every level (L1..S1)."""
    from lumbar.api import segment as run

    def work(study: Path, name: str, stages: StageBar) -> Any:
        return run(
            study,
            out,
            spacing_mm=spacing,
            modality=modality,
            series=series,
            view=view,
            force=force,
            stem=name,
            progress=stages,
        )

    def show(study: Path, name: str, seg: Any) -> None:
        named = ", ".join(lv.name for lv in seg.levels.discs) or "none"
        console.print(f"[green]{escape(str(study))}[/green]: discs {named}", highlight=False)
        for flag in seg.review:
            console.print(f"  [yellow]review:[/yellow] {escape(flag)}", highlight=False)
        for kind, path in seg.outputs.items():
            console.print(f"  {kind}: {escape(path)}", highlight=False)

    run_many(inputs, work, show)


@app.command()
@friendly_errors
def analyze(
    inputs: list[Path] = typer.Argument(
        ...,
        help="Files or folders: DICOM, NIfTI, MHA, NRRD, PNG/JPEG (a folder of PNGs = many "
        "studies; with --same-patient give files or a DICOM study folder).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: one subfolder per study."),
    spacing: float = typer.Option(None, help="Pixel size in mm for PNG/JPEG slices."),
    modality: str = typer.Option(None, help="Override the modality (MR, CT, XR, RF, US)."),
    series: str = typer.Option(None, help="Series to use in a DICOM folder with several."),
    view: str = typer.Option(None, help=VIEW_HELP),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html and report.pdf."),
    same_patient: bool = typer.Option(
        False,
        "--same-patient",
        help="The inputs are series of one patient (e.g. T1 and T2, "
        "or a DICOM study folder holding them): grade each disc from all of them.",
    ),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Segment, name levels, measure, grade stenosis and write findings.json plus an HTML/PDF report."""
    from lumbar.api import analyze as run
    from lumbar.api import analyze_patient

    def show(study: Path, name: str, result: Any) -> None:
        findings = result.findings
        console.print(
            f"[green]{escape(str(study))}[/green]: {found_text(findings)} -> {escape(str(result.folder))}",
            highlight=False,
        )
        for reason in findings.needs_review:
            console.print(f"  [yellow]review:[/yellow] {escape(reason)}", highlight=False)

    if same_patient:
        if view:
            raise InputError("--view states one radiograph's view; --same-patient joins a patient's MRI series")
        if series:
            raise InputError(
                "--series picks one series of one DICOM folder; with --same-patient every sagittal series is used"
            )
        with progress_bar() as bar:
            results = analyze_patient(
                inputs, out, spacing_mm=spacing, modality=modality, force=force, report=report, progress=StageBar(bar)
            )
        for result in results:
            show(Path(result.findings.input.source), Path(result.folder).name, result)
        return

    def work(study: Path, name: str, stages: StageBar) -> Any:
        return run(
            study,
            out,
            spacing_mm=spacing,
            modality=modality,
            series=series,
            view=view,
            force=force,
            report=report,
            stem=name,
            progress=stages,
        )

    run_many(inputs, work, show)


def found_text(findings: Any) -> str:
    """What an analysis found, in a few words: the discs of an MRI, the vertebrae and major curve of a radiograph."""
    if findings.view == "lateral":
        lordosis = f", lordosis {findings.lordosis_deg:.0f}°" if findings.lordosis_deg is not None else ""
        return f"{len(findings.vertebrae)} vertebrae ({', '.join(v.level for v in findings.vertebrae)}){lordosis}"
    if findings.view == "frontal":
        major = next((c for c in findings.cobb_angles if c.curve == "major"), None)
        curve = (
            f", major Cobb angle {major.angle_deg:.0f}° ({major.upper_vertebra}-{major.lower_vertebra}: level names "
            "not validated)"
            if major
            else ""
        )
        return f"{len(findings.vertebrae)} vertebrae{curve}"
    return f"{len(findings.discs)} discs ({', '.join(d.level for d in findings.discs) or 'none'})"


@app.command()
@friendly_errors
def fuse(
    mr: Path = typer.Argument(..., help="The MR volume (DICOM folder or .zip, NIfTI, MHA, NRRD)."),
    ct: Path = typer.Argument(..., help="The CT volume of the same patient and region (Hounsfield units)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for the fused images, transform and picture."),
    rule: list[str] = typer.Option(
        ["cnn", "classic"],
        "--rule",
        help="Fusion rule(s): cnn (the trained network) and/or classic (repeat --rule, or cnn,classic).",
    ),
    affine: bool = typer.Option(False, "--affine", help="After the rigid registration, an affine stage."),
    dims: int = typer.Option(2, help="Wavelet transform of each sagittal plane (2) or of the whole volume (3)."),
    model: Path = typer.Option(None, help="A fusion network trained by `lumbar train fusion` (default: shipped)."),
) -> None:
    """Register an MR onto a CT by mutual information and fuse them by wavelets (network and classic rules);
    experimental: trained and measured on made pairs only."""
    from lumbar.api import fuse as run

    with progress_bar() as bar:
        result = run(
            mr,
            ct,
            out,
            rules=tuple(name.strip() for given in rule for name in given.split(",") if name.strip()),
            affine=affine,
            dims=dims,
            model=str(model) if model else None,
            progress=StageBar(bar),
        )
    metric = result.registration.describe()["final_metric"]
    console.print(
        f"[green]{escape(str(mr))}[/green] onto [green]{escape(str(ct))}[/green]: registered in "
        f"{result.seconds['registration']} s (Mattes metric {metric}, lower is better) -> {escape(str(out))}",
        highlight=False,
    )
    keys = ("entropy_bits", "mi_mr_bits", "mi_ct_bits", "q_abf", "ssim_mr", "ssim_ct")
    table = Table("image", "entropy", "MI with MR", "MI with CT", "Q^AB/F", "SSIM MR", "SSIM CT")
    for name, measured in result.measures.items():
        table.add_row(name, *(f"{measured[k]:.3f}" for k in keys))
    console.print(table)
    for reason in result.needs_review:
        console.print(f"  [yellow]review:[/yellow] {escape(reason)}", highlight=False)
    console.print(f"[yellow]{escape(result.describe()['caution'])}[/yellow]", highlight=False)


@app.command("backpain")
@friendly_errors
def back_pain(
    inputs: list[Path] = typer.Argument(
        ...,
        help="A cohort folder with subjects.csv, or one subject's recordings (CSV/Parquet, docs/back_pain_layout.md).",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write every recording's and subject's scores here (JSON)."),
    model: Path = typer.Option(None, help="A network trained by `lumbar train back-pain` (default: shipped)."),
    subject: str = typer.Option(None, help="The subject's id when recordings are given (default: the first file's)."),
) -> None:
    """Low back pain from static-standing kinematics and plantar pressure (a model trained on simulation only)."""
    from lumbar.api import recognise_back_pain

    result = recognise_back_pain(inputs, out, model=str(model) if model else None, subject=subject)
    table = Table(
        "subject", "recordings", "probability of LBP", f"decision (threshold {result.threshold:.2f})", "label"
    )
    for scored in result.subjects:
        table.add_row(
            escape(scored.subject_id),
            str(scored.recordings),
            f"{scored.probability:.2f}",
            scored.decision,
            scored.label or "",
        )
    console.print(table)
    caution = result.to_dict()["caution"]
    if caution:
        console.print(f"[yellow]{caution}[/yellow]", highlight=False)
    if out:
        console.print(f"wrote {escape(str(out))}", highlight=False)


@app.command()
@friendly_errors
def track(
    sequence: Path = typer.Argument(
        ..., help="A lateral fluoroscopy sequence: multi-frame DICOM (XA/RF), a video, or a folder of frames."
    ),
    boxes: Path = typer.Option(
        ..., help="The bodies on the first frame: JSON or CSV of rotated boxes (see lumbar/tasks/tracking.py)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: tracks.json, tracks.png, angles.png."),
    model: Path = typer.Option(None, help="A tracker trained by `lumbar train tracking` (default: shipped)."),
    modality: str = typer.Option(None, help="Override the modality the file states."),
) -> None:
    """Track vertebral bodies (rotated boxes) through a flexion-extension sequence (trained on simulation only)."""
    from lumbar.api import track as run

    result = run(sequence, boxes, out, model=str(model) if model else None, modality=modality)
    console.print(
        f"[green]{escape(str(sequence))}[/green]: {len(result.names)} bodies tracked through {len(result.boxes)} "
        f"frames ({result.frames_per_s:.0f} frames/s) -> {escape(str(out))}",
        highlight=False,
    )
    for level, angles in result.angles_deg.items():
        console.print(f"  {level}: {min(angles):+.1f}° to {max(angles):+.1f}°", highlight=False)
    for reason in result.needs_review:
        console.print(f"  [yellow]review:[/yellow] {escape(reason)}", highlight=False)
    console.print("[yellow]trained on simulated fluoroscopy only[/yellow]", highlight=False)


@app.command()
@friendly_errors
def ultrasound(
    sweep: Path = typer.Argument(
        ..., help="A paramedian sagittal sweep from below the sacrum upwards: video, DICOM cine or folder of frames."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write every frame's class and level and the gaps here (JSON)."),
    model: Path = typer.Option(None, help="A frame network trained by `lumbar train ultrasound` (default: shipped)."),
) -> None:
    """Name the vertebral levels of an ultrasound sweep: frames classified, gaps counted up from the sacrum."""
    from lumbar.api import ultrasound_levels

    result = ultrasound_levels(sweep, out, model=str(model) if model else None)
    names = ", ".join(f"{gap.name} (frames {gap.first_frame}-{gap.last_frame})" for gap in result.gaps) or "none"
    console.print(
        f"[green]{escape(str(sweep))}[/green]: {result.n_frames} frames; gaps {escape(names)}", highlight=False
    )
    for reason in result.reasons:
        console.print(f"  [yellow]review:[/yellow] {escape(reason)}", highlight=False)
    console.print("[yellow]trained on simulated ultrasound only[/yellow]", highlight=False)
    if out:
        console.print(f"wrote {escape(str(out))}", highlight=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of findings.json."""
    from lumbar.findings import findings_schema

    typer.echo(json.dumps(findings_schema(), indent=1))


@app.command()
@friendly_errors
def demo(
    out: Path = typer.Option(Path("lumbar-demo"), "--out", "-o", help="Where to write the demo study and results."),
) -> None:
    """Write a phantom lumbar MRI study and run the whole pipeline on it."""
    from lumbar.demo import run_demo

    with progress_bar() as bar:
        run_demo(out, console, StageBar(bar))


@app.command()
@friendly_errors
def batch(
    inputs: list[Path] = typer.Argument(..., help="Folder trees of studies, or CSV files listing one study per row."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: one subfolder per study, and the batch CSVs."),
    workers: int = typer.Option(0, min=0, help="Studies analysed at once on this machine (0: one per two cores)."),
    ray: str = typer.Option(None, "--ray", help="Run on a Ray cluster: its address, 'auto' (running) or 'local'."),
    spacing: float = typer.Option(None, help="Pixel size in mm for PNG/JPEG slices."),
    modality: str = typer.Option(None, help="Override the modality (MR, CT, XR, RF, US)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html and report.pdf."),
    force: bool = typer.Option(
        False, "--force", help="Analyse a study no pipeline is made for anyway (flagged, its Summary withheld)."
    ),
) -> None:
    """Analyse many studies, resumably: a study whose input and options already have complete outputs is skipped, a
    failure is listed and the rest go on; OUT/batch_report.csv lists every study, OUT/batch_summary.csv every disc,
    OUT/batch_vertebrae.csv every vertebra. A CSV list may give a row its own modality, spacing_mm, series and
    view."""
    from lumbar.batch_jobs import REPORT, SUMMARY, VERTEBRAE, find_studies, run_batch_jobs
    from lumbar.outputs import check_outside_inputs, ensure_writable

    check_outside_inputs(out, tuple(map(str, inputs)))  # inside a folder tree, its results would be studies next run
    ensure_writable(out)
    studies = find_studies(inputs)
    with progress_bar() as bar:
        task = bar.add_task("studies", total=len(studies))

        def shown(outcome) -> None:
            bar.advance(task)
            if outcome.status == "failed":
                err_console.print(f"[red]error:[/red] {escape(outcome.error)}", highlight=False, soft_wrap=True)

        outcomes = run_batch_jobs(
            studies,
            out,
            workers=workers,
            ray_address=ray,
            report=report,
            spacing_mm=spacing,
            modality=modality,
            force=force,
            on_outcome=shown,
        )
    counts = {status: sum(o.status == status for o in outcomes) for status in ("done", "skipped", "failed")}
    console.print(
        f"{counts['done']} analysed, {counts['skipped']} already complete, {counts['failed']} failed: "
        f"{escape(str(out / REPORT))}, {escape(str(out / SUMMARY))}, {escape(str(out / VERTEBRAE))}",
        highlight=False,
    )
    if counts["failed"]:
        raise typer.Exit(2)


@app.command()
@friendly_errors
def serve(
    data: Path = typer.Option(Path("lumbar-service"), "--data", help="The service's folder: jobs, uploads, state."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    max_upload_mb: int = typer.Option(
        2048,
        min=1,
        help="Largest upload accepted, in MiB (413 beyond, before the body is read where it declares its size).",
    ),
    workers: int = typer.Option(0, min=0, help="Analyses run at once (0: one per two CPU cores)."),
) -> None:
    """Run the HTTP service: POST /jobs uploads a study, GET /jobs/{id} follows it, /docs documents the API."""
    import shutil
    import tempfile

    import uvicorn

    from lumbar.io.locks import exclusive
    from lumbar.resources import default_workers, process_pool
    from lumbar.service.app import SERVICE_LOCK, create_app, ensure_token
    from lumbar.service.jobs import worker_setup

    for folder in (data, *data.resolve().parents):  # one line, not a traceback, where a file stands in the way
        if folder.exists() and not folder.is_dir():
            raise InputError(f"--data {data}: {folder} is a file, not a folder")
    data.resolve().mkdir(parents=True, exist_ok=True, mode=0o700)
    # one service per folder: a second would mark the first's running jobs interrupted and clear its uploads
    with exclusive(data.resolve() / SERVICE_LOCK, blocking=False) as alone:
        if not alone:
            raise InputError(f"--data {data}: another lumbar service is using this folder; stop it or give another")
        new = ensure_token(data.resolve())
        if new:
            console.print(
                f"API token (shown once, stored only as a hash in {data / 'api-token.sha256'}): [bold]{new}[/bold]\n"
                "send it as 'Authorization: Bearer <token>'; delete that file and restart for a new one"
            )
        # where the web framework spools large uploads and workers unpack zips: inside the service's folder too,
        # emptied of what a killed service left there
        spool = data.resolve() / "tmp"
        shutil.rmtree(spool, ignore_errors=True)
        spool.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(spool)
        pool = process_pool(workers or default_workers(), worker_setup, (str(spool),))
        service = create_app(data, max_upload_bytes=max_upload_mb * 1024**2, executor=pool)
        uvicorn.run(service, host=host, port=port, log_level="warning")


def require_train_extra() -> None:
    """Training and surface-distance metrics need torch and MONAI, which inference does without."""
    import importlib.util

    missing = [name for name in ("torch", "monai") if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(
            f"this command needs {' and '.join(missing)}: install the train extra "
            "(pip install -c constraints.txt -e '.[train]')"
        )


def _channels(text: str, levels: int = 5) -> tuple[int, ...]:
    """``16,32,64,128,256`` -> a tuple of ``levels`` positive widths, or an InputError naming the option."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) != levels or min(widths) < 1:
        count = {4: "four", 5: "five"}.get(levels, str(levels))
        raise InputError(f"--channels {text!r}: expected {count} positive integers, comma-separated")
    return widths


@train_app.command("segmentation")
@friendly_errors
def train_segmentation_cmd(
    data: Path = typer.Option(..., help="SPIDER PNG layout (images/, masks/) or NIfTI pairs (imagesTr/, labelsTr/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoints, log, ONNX. Run again to resume."),
    steps: int = typer.Option(2500, help="Optimiser steps in total (about 1.3 s each on 2 CPU cores)."),
    batch_size: int = typer.Option(8),
    max_minutes: float = typer.Option(None, help="Stop (with a checkpoint) after this many minutes."),
    seed: int = typer.Option(0, help="Seed of the patient split and of training."),
    spacing: float = typer.Option(None, help="Pixel size in mm for PNGs without an overview.csv."),
    synthetic_fraction: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Share of each batch synthesised from label maps (random contrast per structure)."
    ),
    init: Path = typer.Option(None, help="Start from these weights (a segmentation .pt) instead of random ones."),
    lr: float = typer.Option(2e-3, min=0.0, help="Peak learning rate (lower it when fine-tuning with --init)."),
    channels: str = typer.Option("16,32,64,128,256", help="U-Net channels per level, comma-separated (5 levels)."),
    patience: int = typer.Option(8, min=1, help="Stop after this many validations (every 250 steps) without gain."),
) -> None:
    """Train the sagittal segmentation network (disc, vertebra, canal)."""
    require_train_extra()
    from lumbar.train.segmentation import SegmentationConfig, train_segmentation

    if not data.is_dir():
        raise InputError(f"{data}: training data folder not found")
    cfg = SegmentationConfig(
        data=str(data),
        out=str(out),
        steps=steps,
        batch_size=batch_size,
        max_minutes=max_minutes,
        seed=seed,
        spacing_mm=spacing,
        synthetic_fraction=synthetic_fraction,
        init=str(init) if init else None,
        lr=lr,
        channels=_channels(channels),
        patience=patience,
    )
    if init and not init.is_file():
        raise InputError(f"{init}: weights to start from not found")
    with progress_bar() as bar:
        path = train_segmentation(cfg, progress=StageBar(bar))
    console.print(f"wrote {path}")


@train_app.command("grading")
@friendly_errors
def train_grading_cmd(
    data: Path = typer.Option(..., help="SPIDER-style folder: midsag/*.png, radiological_gradings.csv, overview.csv."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder: cached crops, per-fold predictions, cv.json, ONNX. Run again to resume."
    ),
    folds: int = typer.Option(5, help="Patient folds for the cross-validated figures."),
    steps: int = typer.Option(
        2000, help="Optimiser steps per fit, each on all graded discs of 4 series (early stopping may end it sooner)."
    ),
    seed: int = typer.Option(0),
    ordinal_spread: float = typer.Option(
        0.0, help="Above 0: Pfirrmann learns from soft ordinal labels, weight exp(-spread * (k - grade)^2) per class."
    ),
    ema_decay: float = typer.Option(
        0.0, help="Above 0: keep and ship an exponential moving average of the weights (e.g. 0.98)."
    ),
    study_context: bool = typer.Option(
        True, "--study-context/--no-study-context", help="Grade each disc beside its study's other discs, or alone."
    ),
) -> None:
    """Train the disc-grading network (Pfirrmann, Modic, herniation, ...) with patient-level cross-validation."""
    require_train_extra()
    from lumbar.train.grading import GradingConfig, train_grading

    if not (data / "radiological_gradings.csv").is_file() or not (data / "midsag").is_dir():
        raise InputError(f"{data}: expected midsag/ and radiological_gradings.csv (SPIDER layout)")
    with progress_bar() as bar:
        path = train_grading(
            GradingConfig(
                data=str(data),
                out=str(out),
                folds=folds,
                steps=steps,
                seed=seed,
                ordinal_spread=ordinal_spread,
                ema_decay=ema_decay,
                study_context=study_context,
            ),
            progress=StageBar(bar),
        )
    console.print(f"wrote {path} and {out / 'cv.json'}")


@train_app.command("grading-ensemble")
@friendly_errors
def train_grading_ensemble_cmd(
    runs: list[Path] = typer.Argument(
        ..., help="Finished `lumbar train grading` folders (other seeds, one samples.npz)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the combined grading.onnx / .pt / .json."),
) -> None:
    """Combine grading runs of several seeds into one model: their calibrated probabilities averaged."""
    require_train_extra()
    from lumbar.train.grading_ensemble import combine_grading_runs

    path = combine_grading_runs(runs, out)
    console.print(f"wrote {path} ({len(runs)} members)")


@train_app.command("lumbosacral")
@friendly_errors
def train_lumbosacral_cmd(
    data: Path = typer.Option(
        ..., help="SPIDER-style folder: midsag/*.png and overview.csv (num_discs, PixelSpacing)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder: cached slices, checkpoint, log, ONNX. Run again to resume."
    ),
    steps: int = typer.Option(1500, help="Optimiser steps (batches of fresh examples)."),
    hold_out_sequence: str = typer.Option(
        None, help="Leave this sequence (t1, t2, t2_SPACE) out of training and test on it alone."
    ),
    seed: int = typer.Option(0, help="Seed of the patient split and of training."),
) -> None:
    """Train the lumbosacral check: is the lowest disc found L5/S1, or does the image end above the sacrum?"""
    require_train_extra()
    from lumbar.train.lumbosacral import LumbosacralConfig, train_lumbosacral

    if not (data / "overview.csv").is_file() or not (data / "midsag").is_dir():
        raise InputError(f"{data}: expected midsag/ and overview.csv (SPIDER layout)")
    cfg = LumbosacralConfig(data=str(data), out=str(out), steps=steps, hold_out_sequence=hold_out_sequence, seed=seed)
    with progress_bar() as bar:
        path = train_lumbosacral(cfg, progress=StageBar(bar))
    console.print(f"wrote {path}")


AASCE_HELP = "AASCE-style folder: images/training/*.jpg and labels/training/{filenames,landmarks,angles}.csv."


def require_aasce_layout(data: Path) -> None:
    """Refuse, in one line, a folder without the AASCE training labels the frontal radiograph networks learn from."""
    labels = data / "labels" / "training"
    if not all((labels / f"{name}.csv").is_file() for name in ("filenames", "landmarks", "angles")):
        raise InputError(f"{data}: expected labels/training/filenames.csv, landmarks.csv and angles.csv (AASCE layout)")


@train_app.command("radiograph")
@friendly_errors
def train_radiograph_cmd(
    data: Path = typer.Option(..., help=AASCE_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoint, log, ONNX. Run again to resume."),
    epochs: int = typer.Option(60, help="Most epochs; training stops earlier when validation stops improving."),
    limit: int = typer.Option(None, help="Use only this many training images (a quick trial)."),
    seed: int = typer.Option(0, help="Seed of the patient split and of training."),
) -> None:
    """Train the frontal radiograph network: each vertebra T1-L5 and its four body corners."""
    require_train_extra()
    from lumbar.train.radiograph import RadiographConfig, train_radiograph

    require_aasce_layout(data)
    cfg = RadiographConfig(data=str(data), out=str(out), epochs=epochs, limit=limit, seed=seed)
    with progress_bar() as bar:
        path = train_radiograph(cfg, progress=StageBar(bar))
    console.print(f"wrote {path}")


@train_app.command("radiograph-corners")
@friendly_errors
def train_radiograph_corners_cmd(
    data: Path = typer.Option(..., help=AASCE_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoint, log, ONNX. Run again to resume."),
    epochs: int = typer.Option(30, help="Most epochs; training stops earlier when validation stops improving."),
    steps: int = typer.Option(200, help="Steps per epoch, each on 32 freshly drawn windows."),
    limit: int = typer.Option(None, help="Use only this many training images (a quick trial)."),
    seed: int = typer.Option(0, help="Seed of the patient split and of training (as the frontal network's)."),
    channels: str = typer.Option("24,48,96,192", help="U-Net channels per level, comma-separated (4 levels)."),
) -> None:
    """Train the frontal radiograph's corner network: each body's corners placed again in its own window."""
    widths = _channels(channels, levels=4)
    require_train_extra()
    from lumbar.train.radiograph_corners import CornerConfig, train_corners

    require_aasce_layout(data)
    cfg = CornerConfig(
        data=str(data),
        out=str(out),
        epochs=epochs,
        steps_per_epoch=steps,
        limit=limit,
        seed=seed,
        channels=widths,
    )
    with progress_bar() as bar:
        path = train_corners(cfg, progress=StageBar(bar))
    console.print(f"wrote {path}")


@train_app.command("radiograph-levels")
@friendly_errors
def train_radiograph_levels_cmd(
    data: Path = typer.Option(..., help=AASCE_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoint, log, ONNX. Run again to resume."),
    epochs: int = typer.Option(30, help="Most epochs; training stops earlier when validation stops improving."),
    steps: int = typer.Option(150, help="Steps per epoch, each on 64 freshly drawn windows."),
    limit: int = typer.Option(None, help="Use only this many training images (a quick trial)."),
    seed: int = typer.Option(0, help="Seed of the patient split and of training (as the frontal network's)."),
) -> None:
    """Train the frontal radiograph's level network: T1, L5 and what lies beyond them, for the level names."""
    require_train_extra()
    from lumbar.train.radiograph_levels import LevelConfig, train_levels

    require_aasce_layout(data)
    cfg = LevelConfig(data=str(data), out=str(out), epochs=epochs, steps_per_epoch=steps, limit=limit, seed=seed)
    with progress_bar() as bar:
        path = train_levels(cfg, progress=StageBar(bar))
    console.print(f"wrote {path}")


@train_app.command("radiograph-lateral")
@friendly_errors
def train_radiograph_lateral_cmd(
    data: Path = typer.Option(..., help="SPIDER-style folder: midsag/*.png and overview.csv (the anatomies)."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder: anatomies, checkpoint, log, ONNX. Run again to resume."
    ),
    epochs: int = typer.Option(40, help="Most epochs; training stops earlier when validation stops improving."),
    steps: int = typer.Option(60, help="Steps per epoch, each on 8 freshly rendered films."),
    limit: int = typer.Option(None, help="Use only this many anatomies (a quick trial)."),
    seed: int = typer.Option(0, help="Seed of the patient split and of training."),
    patience: int = typer.Option(
        12, min=1, help="Epochs without a better validation error before stopping (also when resuming)."
    ),
) -> None:
    """Train the lateral radiograph network on synthetic lateral films rendered from MRI label maps."""
    require_train_extra()
    from lumbar.train.radiograph_lateral import LateralConfig, train_lateral

    if not (data / "overview.csv").is_file() or not (data / "midsag").is_dir():
        raise InputError(f"{data}: expected midsag/ and overview.csv (SPIDER layout)")
    cfg = LateralConfig(
        data=str(data), out=str(out), epochs=epochs, steps_per_epoch=steps, limit=limit, seed=seed, patience=patience
    )
    with progress_bar() as bar:
        path = train_lateral(cfg, progress=StageBar(bar))
    console.print(f"wrote {path}")


@train_app.command("xray-bmd")
@friendly_errors
def train_xray_bmd_cmd(
    images: Path = typer.Option(..., help="Folder of spine radiographs (PNG, JPEG or DICOM)."),
    labels: Path = typer.Option(
        ...,
        help="CSV: image (file name), patient (optional), and t_score (DXA) or class (normal/osteopenia/osteoporosis).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: log, cross-validated figures, ONNX."),
    folds: int = typer.Option(5, help="Patient folds of the cross-validation."),
    epochs: int = typer.Option(30, help="Epochs per network."),
    seed: int = typer.Option(0, help="Seed of the folds and of training."),
) -> None:
    """Train a bone density classifier (normal / osteopenia / osteoporosis by DXA T-score) on your radiographs."""
    require_train_extra()
    from lumbar.train.xray_bmd import BmdConfig, train_bmd

    if not images.is_dir() or not labels.is_file():
        raise InputError(f"expected a folder of radiographs ({images}) and a labels CSV ({labels})")
    cfg = BmdConfig(images=str(images), labels=str(labels), out=str(out), folds=folds, epochs=epochs, seed=seed)
    with progress_bar() as bar:
        path = train_bmd(cfg, progress=StageBar(bar))
    console.print(f"wrote {path} and {out / 'xray_bmd.json'}")


@train_app.command("fusion")
@friendly_errors
def train_fusion_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: log, held-out figures, ONNX."),
    data: Path = typer.Option(
        None, help="SPIDER PNG layout (images/, masks/): real MR slices beside CTs made from their masks."
    ),
    phantoms: int = typer.Option(48, help="Random phantoms rendered as MR and CT."),
    steps: int = typer.Option(1000, help="Optimiser steps (about 0.4 s each on 2 CPU cores)."),
    seed: int = typer.Option(0, help="Seed of the phantoms, the held-out split and training."),
) -> None:
    """Train the MR–CT fusion weight network without labels (SSIM to both sources and a gradient loss)."""
    require_train_extra()
    from lumbar.train.fusion import FusionConfig, train_fusion

    if data is not None and not data.is_dir():
        raise InputError(f"{data}: not a folder")
    cfg = FusionConfig(out=str(out), data=str(data) if data else None, phantoms=phantoms, steps=steps, seed=seed)
    with progress_bar() as bar:
        path = train_fusion(cfg, progress=StageBar(bar))
    console.print(f"wrote {path} and {out / 'fusion.json'}")


@train_app.command("back-pain")
@friendly_errors
def train_back_pain_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: log, cross-validated figures, ONNX."),
    data: Path = typer.Option(None, help="A cohort folder (subjects.csv and recordings); without it, simulate."),
    simulate: int = typer.Option(120, help="Subjects to simulate when no --data is given."),
    effect: float = typer.Option(1.0, min=0.0, help="The simulated group difference (0: none, 1: the documented one)."),
    folds: int = typer.Option(5, help="Subject folds of the cross-validation."),
    epochs: int = typer.Option(60, help="Epochs per network at most (early stopping)."),
    seed: int = typer.Option(0, help="Seed of the simulation, the folds and training."),
) -> None:
    """Train the low-back-pain network, cross-validated by subject, on your recordings or on the simulator."""
    require_train_extra()
    from lumbar.train.back_pain import BackPainConfig, train_back_pain

    if data is not None and not data.is_dir():
        raise InputError(f"{data}: not a folder (a cohort folder holds subjects.csv and the recordings)")
    cfg = BackPainConfig(
        out=str(out),
        data=str(data) if data else None,
        simulate=simulate,
        effect=effect,
        folds=folds,
        epochs=epochs,
        seed=seed,
    )
    with progress_bar() as bar:
        path = train_back_pain(cfg, progress=StageBar(bar))
    console.print(f"wrote {path} and {out / 'back_pain.json'}")


@train_app.command("tracking")
@friendly_errors
def train_tracking_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: log, held-out figures, ONNX."),
    anatomies: Path = typer.Option(
        Path("runs/lateral/anatomies"), help="Cached lateral anatomies (built from --spider when absent)."
    ),
    spider: Path = typer.Option(Path("../shared/data/spider"), help="SPIDER, to build the anatomies from."),
    train_sequences: int = typer.Option(90, help="Simulated training sequences (one per training anatomy)."),
    val_sequences: int = typer.Option(8, help="Simulated validation sequences."),
    frames: int = typer.Option(12, help="Frames per simulated sequence."),
    steps: int = typer.Option(1500, help="Optimiser steps."),
    seed: int = typer.Option(0, help="Seed of the split, the simulation and training."),
) -> None:
    """Train the Siamese vertebra tracker on simulated flexion-extension fluoroscopy."""
    require_train_extra()
    from lumbar.train.tracking import TrackingConfig, train_tracking

    cfg = TrackingConfig(
        out=str(out),
        anatomies=str(anatomies),
        spider=str(spider),
        train_sequences=train_sequences,
        val_sequences=val_sequences,
        frames=frames,
        steps=steps,
        seed=seed,
    )
    with progress_bar() as bar:
        path = train_tracking(cfg, progress=StageBar(bar))
    console.print(f"wrote {path} and {out / 'tracking.json'}")


@train_app.command("ultrasound")
@friendly_errors
def train_ultrasound_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: log, held-out figures, ONNX."),
    spider: Path = typer.Option(Path("../shared/data/spider"), help="SPIDER (t2space masks): the anatomies."),
    train_sweeps: int = typer.Option(24, help="Simulated sweeps per training patient."),
    eval_sweeps: int = typer.Option(8, help="Simulated sweeps per validation and test patient."),
    epochs: int = typer.Option(6, help="Epochs."),
    seed: int = typer.Option(0, help="Seed of the split, the simulation and training."),
) -> None:
    """Train the ultrasound frame network on paramedian sweeps simulated from SPIDER anatomy."""
    require_train_extra()
    from lumbar.train.ultrasound import UltrasoundConfig, train_ultrasound

    if not spider.is_dir():
        raise InputError(f"{spider}: not a folder (SPIDER, with t2space/masks)")
    cfg = UltrasoundConfig(
        out=str(out), spider=str(spider), train_sweeps=train_sweeps, eval_sweeps=eval_sweeps, epochs=epochs, seed=seed
    )
    with progress_bar() as bar:
        path = train_ultrasound(cfg, progress=StageBar(bar))
    console.print(f"wrote {path} and {out / 'ultrasound.json'}")


@evaluate_app.command("grading")
@friendly_errors
def evaluate_grading_cmd(
    images: Path = typer.Option(..., help="Folder of sagittal slices named <patient>_<sequence>.png."),
    gradings: Path = typer.Option(..., help="CSV in SPIDER's radiological_gradings.csv format."),
    overview: Path = typer.Option(None, help="SPIDER-style overview.csv with PixelSpacing per series."),
    json_out: Path = typer.Option(None, "--json", help="Write all metrics here."),
    same_patient: bool = typer.Option(
        False,
        "--same-patient",
        help="Grade each disc from all series of its patient "
        "(<patient>_t1, <patient>_t2, ...) together, as analyze --same-patient does "
        "(a series with flagged level names graded alone, a view cut by the slice's edge left out).",
    ),
) -> None:
    """Per grade: balanced accuracy, recall, confusion, kappa, within-one, AUC with 95% CIs, and coverage."""
    from lumbar.evaluate.grading import evaluate_grading_folder, grading_table

    with progress_bar() as bar:
        task = bar.add_task("grading", total=len(list(images.glob("*.png"))))
        report = evaluate_grading_folder(
            images, gradings, overview, progress=lambda: bar.advance(task), same_patient=same_patient
        )
    console.print(grading_table(report))
    if json_out:
        from lumbar.io.write import write_text

        write_text(json_out, json.dumps(report, indent=1, default=float))
        console.print(f"wrote {json_out}")


@evaluate_app.command("segmentation")
@friendly_errors
def evaluate_segmentation_cmd(
    images: Path = typer.Option(..., help="Folder of PNG slices or NIfTI volumes."),
    masks: Path = typer.Option(..., help="Folder of reference masks with the same file names (SPIDER values or 0-3)."),
    json_out: Path = typer.Option(None, "--json", help="Write the full results (per image, per structure) here."),
    spacing: float = typer.Option(None, help="Pixel size in mm where the files do not say (PNG)."),
    patients: str = typer.Option(None, help="Comma-separated patient ids to evaluate (e.g. a held-out split)."),
) -> None:
    """Dice, HD95 and ASSD per structure with bootstrap CIs, and disc/vertebra detection counts."""
    require_train_extra()  # surface distances come from MONAI
    from lumbar.evaluate.segmentation import evaluate_folder, summary_table

    wanted = set(patients.split(",")) if patients else None
    with progress_bar() as bar:
        task = bar.add_task("evaluating", total=None)
        report = evaluate_folder(images, masks, spacing_mm=spacing, patients=wanted, progress=lambda: bar.advance(task))
    console.print(summary_table(report))
    if json_out:
        from lumbar.io.write import write_text

        write_text(json_out, json.dumps(report, indent=1, default=float))
        console.print(f"wrote {json_out}")


def run() -> None:
    """Console-script entry point."""
    app(prog_name="lumbar")


if __name__ == "__main__":
    sys.exit(run())
