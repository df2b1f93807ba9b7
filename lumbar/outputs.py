"""Write results to files, the one place that does: masks, colour tables, DICOM SEG, evidence maps, the
reports and ``findings.json``.

A study folder appears whole or not at all: everything is written into a hidden staging folder beside
it, which is renamed into place at the end (a previous folder of the same name is replaced only then).
Two runs writing the same study at once each land whole, the last to finish winning: swaps into a parent folder
are serialised by a lock on that folder, and each run locks its own staging folder for as long as it lives, so
the staging folders a killed run left behind (unlocked) are removed by the next run, a live run's never; an
earlier result a killed swap had moved aside is put back. Files are flushed to disk before they are renamed in.
``findings.json`` is written last, from the result's findings plus the list of files written and any
output that could not be written (e.g. a DICOM SEG over a series highdicom cannot reference).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from lumbar.errors import InputError
from lumbar.figures import png_bytes
from lumbar.findings import Findings
from lumbar.io.locks import exclusive
from lumbar.io.write import (
    UMASK,
    atomic_path,
    classes_to_spider,
    semantic_colour_table,
    sync_folder,
    sync_tree,
    write_colour_tables,
    write_intensities,
    write_nifti,
    write_png,
    write_text,
)
from lumbar.labels import instance_colours
from lumbar.pipelines.fusion import RULES, FusionResult, overview_picture
from lumbar.pipelines.result import Result, Segmentation
from lumbar.progress import SILENT, Progress
from lumbar.tasks.tracking import TrackResult, angle_chart, strip_png

T = TypeVar("T")


def ensure_writable(folder: str | Path) -> Path:
    """Check that outputs can be written in ``folder`` before anything is computed: a read-only or impossible
    output folder is one line and exit 2, not a failure after minutes of work. Folders created for the check are
    removed again, so a refused input leaves nothing behind."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(
            f"{folder}: cannot write outputs there ({exc.strerror or exc}); choose another folder"
        ) from None
    finally:
        for path in created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
    return folder


def write_segmentation(seg: Segmentation, out_dir: str | Path, stem: str) -> tuple[dict[str, str], list[str]]:
    """Masks, instance labels, colour tables (and DICOM SEG for DICOM input) of one image into ``out_dir``,
    named ``stem``: PNGs of the same size for a PNG/JPEG slice, label maps in the input's own voxel grid for a
    volume. Returns where each went and notes on outputs that could not be written."""
    image, out_dir = seg.image, Path(out_dir)
    semantic_spider = classes_to_spider(seg.semantic.classes)
    instances = seg.levels.instances
    names = seg.label_names()
    outputs: dict[str, str] = {}
    notes: list[str] = []
    if image.is_picture:
        semantic_rows, instance_rows = image.in_stored_frame(semantic_spider[0]), image.in_stored_frame(instances[0])
        outputs["semantic"] = str(write_png(semantic_rows, out_dir / f"{stem}.png"))
        outputs["instances"] = str(write_png(instance_rows.astype(np.uint8), out_dir / "instances" / f"{stem}.png"))
        return outputs, notes
    outputs["semantic"] = str(
        write_nifti(image.labels_from_sagittal(semantic_spider).array, image, out_dir / f"{stem}_seg.nii.gz")
    )
    instance_image = image.labels_from_sagittal(instances).array
    outputs["instances"] = str(write_nifti(instance_image, image, out_dir / f"{stem}_instances.nii.gz"))
    write_colour_tables(*semantic_colour_table(), out_dir / f"{stem}_seg")
    write_colour_tables(names, instance_colours(names), out_dir / f"{stem}_instances")
    if image.source_files:
        from lumbar.io.dicom_write import write_dicom_seg

        try:
            outputs["dicom_seg"] = str(write_dicom_seg(instance_image, image, names, out_dir / f"{stem}_seg.dcm"))
        except (InputError, ValueError, AttributeError, TypeError, KeyError) as exc:  # sources highdicom refuses
            reason = " ".join(str(exc).split()).strip("'\"")  # a blank SOPClassUID gives KeyError('')
            notes.append(
                f"DICOM SEG not written: {reason or f'{type(exc).__name__}: a tag it needs is blank in the source'}"
            )
    return outputs, notes


def levels_json_path(seg: Segmentation, out_dir: Path, stem: str) -> Path:
    return out_dir / "levels" / f"{stem}.json" if seg.image.is_picture else out_dir / f"{stem}_levels.json"


def save_segmentation(seg: Segmentation, out_dir: str | Path, stem: str) -> Segmentation:
    """What ``lumbar segment`` writes for one image: the label maps and a levels JSON naming every level.
    Returns the segmentation with where each file went."""
    out_dir = Path(out_dir)
    outputs, notes = write_segmentation(seg, out_dir, stem)
    levels_path = levels_json_path(seg, out_dir, stem)
    outputs["levels"] = str(levels_path)
    summary = seg.summary(outputs)
    summary["needs_review"] += notes
    write_text(levels_path, json.dumps(summary, indent=1, default=float))
    return replace(seg, review=tuple(summary["needs_review"]), outputs=outputs)


LUMBAR_OUTPUTS = ("findings.json", "report.html", "report.pdf", "heatmaps", "instances", "levels")


def check_study_folder(folder: str | Path, sources: tuple[str, ...] = ()) -> Path:
    """Refuse a study folder that writing would harm: one that holds the input (``sources``), or one that exists
    and holds anything but a previous lumbar result of that study (which is replaced as a whole)."""
    folder = Path(folder)
    resolved = folder.resolve()
    for source in sources:
        path = Path(source).resolve()
        if path == resolved or resolved in path.parents:
            raise InputError(f"{folder}: holds the input {source}; choose an output folder outside the input")
    if not folder.exists():
        return folder
    if not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder; choose another output folder")
    entries = [entry.name for entry in folder.iterdir()]
    foreign = [name for name in entries if name not in LUMBAR_OUTPUTS and not name.startswith("segmentation")]
    if foreign or (entries and "findings.json" not in entries):
        shown = ", ".join(sorted(foreign)[:3]) or "files lumbar did not write"
        raise InputError(
            f"{folder}: exists and holds {shown}; choose another output folder (lumbar replaces only "
            "its own earlier results)"
        )
    return folder


def _write_study(result: Result, folder: Path, report: bool, progress: Progress) -> Findings:
    """Every output of one study into ``folder`` (a staging folder). The findings document (the result's findings
    plus the files written and any output that could not be) is built before the report, which renders it, and
    ``findings.json`` is written last."""
    progress.stage("writing masks")
    seg = result.segmentation
    written, notes = write_segmentation(seg, folder, "segmentation")
    outputs = {kind: str(Path(path).relative_to(folder)) for kind, path in written.items()}
    levels_path = levels_json_path(seg, folder, "segmentation")
    outputs["levels"] = str(levels_path.relative_to(folder))
    if result.figures.evidence:
        for item in result.figures.evidence:
            with atomic_path(folder / "heatmaps" / item.file_name) as tmp:
                tmp.write_bytes(png_bytes(item.picture))
        outputs["heatmaps"] = "heatmaps"
    if report:
        outputs.update(report_html="report.html", report_pdf="report.pdf")
    outputs["findings"] = "findings.json"
    document = result.findings.model_copy(
        update={"outputs": outputs, "needs_review": (*result.findings.needs_review, *notes)}
    )
    summary = seg.summary(outputs)
    summary["needs_review"] += notes
    write_text(levels_path, json.dumps(summary, indent=1, default=float))
    if report:
        from lumbar.report.html import write_reports

        progress.stage("writing report")
        write_reports(document, result.figures, folder)
    write_text(folder / "findings.json", document.model_dump_json(indent=1))
    return document


def write_result(result: Result, folder: str | Path, *, report: bool = True, progress: Progress = SILENT) -> Result:
    """Write one study into ``folder``, whole or not at all; returns the result with the files it now has.
    A previous lumbar result in ``folder`` is replaced; anything else there is refused (see
    :func:`check_study_folder`)."""
    folder = check_study_folder(folder, (result.image.source, *result.image.source_files))
    folder.parent.mkdir(parents=True, exist_ok=True)
    document = publish(folder, lambda staging: _write_study(result, staging, report, progress))
    return replace(result, findings=document, folder=str(folder))


def publish(folder: Path, write: Callable[[Path], T]) -> T:
    """Run ``write`` into a fresh staging folder beside ``folder``, then rename that onto ``folder`` (replacing
    what is there) under the parent folder's lock; returns what ``write`` returned."""
    with staging_folder(folder) as staging:
        value = write(staging)
        os.chmod(staging, 0o777 & ~UMASK)
        sync_tree(staging)  # on disk before it is renamed in: a power cut leaves the old result or the new, whole
        with exclusive(folder.parent):
            _swap_into_place(staging, folder)
            sync_folder(folder.parent)
    return value


@contextlib.contextmanager
def staging_folder(folder: Path) -> Iterator[Path]:
    """A new hidden staging folder beside ``folder``, locked by this run until it ends and removed then (unless
    it was renamed into place). It is made under the parent's lock, after the staging folders of killed runs for
    this study are removed, so no run can take another's fresh, not yet locked folder for debris."""
    with exclusive(folder.parent):
        remove_debris(folder)
        staging = Path(tempfile.mkdtemp(prefix=f".{_temp_key(folder)}.partial-", dir=folder.parent))
        fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(fd)


LONGEST_KEY = 200  # a staging folder's name is ".KEY.partial-" and 8 random characters: within 255 bytes


def _temp_key(folder: Path) -> str:
    """What names ``folder``'s staging and set-aside folders: its name, or for a long one (over 200 bytes) a part of
    it and a digest of the whole (the whole name and a suffix went past the file system's 255 bytes)."""
    name = folder.name
    if len(os.fsencode(name)) <= LONGEST_KEY:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    return f"{os.fsdecode(os.fsencode(name)[:120]).rstrip(chr(0xFFFD))}~{digest}"


def _is_temp_of(path: Path, folder: Path, kind: str) -> bool:
    """Whether ``path`` is a ``.NAME.partial-XXXX``, ``.NAME.old-XXXX`` or ``.NAME.removed-XXXX`` folder made for
    ``folder`` (``tempfile``'s random part has no dot, so another study's staging folder is never taken for one)."""
    prefix = f".{_temp_key(folder)}.{kind}-"
    return path.name.startswith(prefix) and "." not in path.name[len(prefix) :]


def remove_debris(folder: Path) -> None:
    """Clear what killed runs left beside ``folder`` (the caller holds the parent's lock): staging folders no live
    run holds are removed; an earlier result a swap had moved aside is put back where the kill came before the new
    one was renamed in (``folder`` missing), else removed; one being removed (:func:`remove_result`) is removed."""
    for path in folder.parent.iterdir():
        if _is_temp_of(path, folder, "old"):
            if not os.path.lexists(folder) and (path / folder.name).is_dir():
                os.replace(path / folder.name, folder)
            shutil.rmtree(path, ignore_errors=True)
        elif _is_temp_of(path, folder, "removed"):
            shutil.rmtree(path, ignore_errors=True)
        elif _is_temp_of(path, folder, "partial"):
            with contextlib.suppress(FileNotFoundError), exclusive(path, blocking=False) as free:
                if free:
                    shutil.rmtree(path, ignore_errors=True)


def remove_result(folder: Path) -> None:
    """Remove an earlier result whole: under the parent's lock, renamed to ``.NAME.removed-XXXX`` (which
    :func:`remove_debris` clears if a kill comes first), then deleted."""
    if not folder.is_dir():
        return
    with exclusive(folder.parent):
        gone = Path(tempfile.mkdtemp(prefix=f".{_temp_key(folder)}.removed-", dir=folder.parent))
        os.replace(folder, gone / folder.name)
        sync_folder(folder.parent)
    shutil.rmtree(gone, ignore_errors=True)


def _swap_into_place(staging: Path, folder: Path) -> None:
    """Rename ``staging`` onto ``folder``; an earlier result there is moved aside first and removed after (put back
    by the next run's :func:`remove_debris` if a kill comes between the two renames). The caller holds the parent's
    lock, so no other run swaps at the same time."""
    if not folder.exists():
        os.replace(staging, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{_temp_key(folder)}.old-", dir=folder.parent))
    try:
        os.replace(folder, old / folder.name)
    except OSError as exc:
        old.rmdir()
        if exc.errno != errno.EBUSY:
            raise
        _replace_contents(staging, folder)  # a mount point (a container's volume) cannot be moved
        return
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)


INCOMING = ".lumbar-incoming-"  # a new result's entries in a folder that cannot be moved, before they replace the old


def _replace_contents(staging: Path, folder: Path) -> None:
    """``folder``'s entries (an earlier result: the caller checked) replaced by ``staging``'s: the new entries are
    first moved into ``folder`` under hidden names (copied where ``folder`` is another filesystem), then the old
    ones removed and the new ones renamed within ``folder``. The earlier result stays whole until every new entry
    is in; the nearest to a whole swap a folder that cannot itself be moved allows."""
    for entry in folder.iterdir():  # a killed run's incoming entries
        if entry.name.startswith(INCOMING):
            _remove(entry)
    names = [entry.name for entry in staging.iterdir()]
    try:
        for name in names:
            shutil.move(str(staging / name), str(folder / f"{INCOMING}{name}"))
    except OSError:
        for name in names:
            _remove(folder / f"{INCOMING}{name}")
        raise
    for entry in folder.iterdir():
        if not entry.name.startswith(INCOMING):
            _remove(entry)
    for name in names:
        os.replace(folder / f"{INCOMING}{name}", folder / name)
    staging.rmdir()


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    elif entry.exists() or entry.is_symlink():
        entry.unlink()


def write_results(
    results: list[Result], folders: list[Path], *, report: bool = True, progress: Progress = SILENT
) -> list[Result]:
    """Several series of one patient, each into its own folder (each folder whole or not at all)."""
    return [write_result(result, folder, report=report, progress=progress) for result, folder in zip(results, folders)]


FUSION_OUTPUTS = (
    "fusion.json",
    "fusion.png",
    "mr_on_ct.nii.gz",
    "transform.tfm",
    *(f"fused_{r}.nii.gz" for r in RULES),
)


def check_result_folder(folder: str | Path, sources: tuple[str, ...], marker: str, owned: tuple[str, ...]) -> Path:
    """Refuse an output folder that writing would harm: one holding an input, or one holding anything but an
    earlier result of the same command (``marker`` among its files, nothing but ``owned``), which is replaced
    whole. Called before anything is computed."""
    folder = Path(folder)
    check_outside_inputs(folder, sources)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: is a file; the output is a folder (give a new folder's name)")
    if folder.exists():
        entries = {entry.name for entry in folder.iterdir() if not entry.name.startswith(INCOMING)}
        if entries and (marker not in entries or entries - set(owned)):
            raise InputError(f"{folder}: exists and holds files lumbar did not write there; choose another folder")
    return folder


def check_outside_inputs(out: Path, sources: tuple[str, ...]) -> None:
    """Refuse an output that is an input, holds one, or lies inside an input folder."""
    resolved = out.resolve()
    for source in sources:
        path = Path(source).resolve()
        if path == resolved or resolved in path.parents or (path.is_dir() and path in resolved.parents):
            raise InputError(f"{out}: is, holds or lies inside the input {source}; write outside the inputs")


def check_output_file(out: str | Path, sources: tuple[str, ...], marker: str, example: str) -> Path:
    """Refuse an output file that writing would harm: an existing folder, an input, a file inside an input folder,
    or an existing file that is not an earlier result of the same command (a JSON object holding ``marker``).
    ``example``: the file name suggested when ``out`` is a folder. Called before anything is computed."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"{out}: is a folder; give the output file's name (e.g. {out / example})")
    check_outside_inputs(out, sources)
    if out.exists() and not _earlier_result(out, marker):
        raise InputError(f"{out}: an existing file lumbar did not write there; give a new name or remove it")
    ensure_writable(out.parent)
    return out


def _earlier_result(path: Path, marker: str, largest_bytes: int = 256 * 2**20) -> bool:
    """Whether ``path`` is a JSON object holding ``marker`` (what the command that would replace it writes)."""
    try:
        if not path.is_file() or path.stat().st_size > largest_bytes:
            return False
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(document, dict) and marker in document


def check_fusion_folder(folder: str | Path, sources: tuple[str, ...]) -> Path:
    return check_result_folder(folder, sources, "fusion.json", FUSION_OUTPUTS)


def write_fusion(result: FusionResult, folder: str | Path) -> dict:
    """Write a fusion into ``folder``, whole or not at all: the fused images (8 bits, [0, 1]) and the registered MR
    (its own intensities) on the CT's grid in the CT file's voxel order, the transform (ITK .tfm: CT points, LPS
    mm, to MR points), the overview picture and ``fusion.json`` (written last). Only an earlier fusion is replaced."""
    import SimpleITK as sitk

    from lumbar.version import __version__

    folder = check_fusion_folder(
        folder, (result.mr.source, result.ct.source, *result.mr.source_files, *result.ct.source_files)
    )
    folder.parent.mkdir(parents=True, exist_ok=True)

    def write(staging: Path) -> dict:
        write_intensities(result.mr_on_ct, result.ct, staging / "mr_on_ct.nii.gz")
        for rule, image in result.fused.items():
            write_intensities(image, result.ct, staging / f"fused_{rule}.nii.gz", unit_range=True)
        with atomic_path(staging / "transform.tfm") as tmp:
            sitk.WriteTransform(result.registration.transform, str(tmp))
        write_png(overview_picture(result), staging / "fusion.png")
        document = {"lumbar_version": __version__, **result.describe()}
        document["files"] = [*sorted(p.name for p in staging.iterdir()), "fusion.json"]
        write_text(staging / "fusion.json", json.dumps(document, indent=1, default=float))
        return document

    return publish(folder, write)


TRACKING_OUTPUTS = ("tracks.json", "tracks.png", "angles.png")


def write_tracking(result: TrackResult, frames: np.ndarray, source: str, folder: str | Path) -> dict:
    """Write a tracking into ``folder``, whole or not at all: ``tracks.json`` (every frame's boxes, the
    intervertebral angles over time; written last), the frames with their boxes (``tracks.png``) and the angles'
    chart (``angles.png``). Only an earlier tracking is replaced."""
    from lumbar.version import __version__

    folder = check_result_folder(folder, (source,), "tracks.json", TRACKING_OUTPUTS)
    folder.parent.mkdir(parents=True, exist_ok=True)

    def write(staging: Path) -> dict:
        with atomic_path(staging / "tracks.png") as tmp:
            strip_png(frames, result).save(tmp, format="PNG")
        with atomic_path(staging / "angles.png") as tmp:
            angle_chart(result).save(tmp, format="PNG")
        document = {"lumbar_version": __version__, "source": source, **result.to_dict()}
        document["files"] = list(TRACKING_OUTPUTS)
        write_text(staging / "tracks.json", json.dumps(document, indent=1, default=float))
        return document

    return publish(folder, write)
