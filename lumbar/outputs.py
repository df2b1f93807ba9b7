"""Write results to files, the one place that does: masks, colour tables, DICOM SEG, evidence maps, the
reports and ``findings.json``.

A study folder appears whole or not at all: everything is written into a hidden staging folder beside
it, which is renamed into place at the end (a previous folder of the same name is replaced only then).
``findings.json`` is written last, from the result's findings plus the list of files written and any
output that could not be written (e.g. a DICOM SEG over a series highdicom cannot reference).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.figures import png_bytes
from lumbar.findings import Findings
from lumbar.io.write import (
    atomic_path,
    classes_to_spider,
    semantic_colour_table,
    write_colour_tables,
    write_nifti,
    write_png,
    write_text,
)
from lumbar.labels import instance_colours
from lumbar.pipelines.result import Result, Segmentation
from lumbar.progress import SILENT, Progress


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
        outputs["semantic"] = str(write_png(semantic_spider[0], out_dir / f"{stem}.png"))
        outputs["instances"] = str(write_png(instances[0].astype(np.uint8), out_dir / "instances" / f"{stem}.png"))
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
        except (InputError, ValueError) as exc:  # highdicom refuses sources it cannot reference
            notes.append(f"DICOM SEG not written: {exc}")
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


def _write_study(result: Result, folder: Path, report: bool, progress: Progress) -> Findings:
    """Every output of one study into ``folder`` (a staging folder); ``findings.json`` last."""
    progress.stage("writing masks")
    written, notes = write_segmentation(result.segmentation, folder, "segmentation")
    outputs = {kind: str(Path(path).relative_to(folder)) for kind, path in written.items()}
    if result.figures.evidence:
        for item in result.figures.evidence:
            with atomic_path(folder / "heatmaps" / item.file_name) as tmp:
                tmp.write_bytes(png_bytes(item.picture))
        outputs["heatmaps"] = "heatmaps"
    if report:
        from lumbar.report.html import write_reports

        progress.stage("writing report")
        write_reports(result.findings, result.figures, folder)
        outputs.update(report_html="report.html", report_pdf="report.pdf")
    outputs["findings"] = "findings.json"
    document = result.findings.model_copy(
        update={"outputs": outputs, "needs_review": [*result.findings.needs_review, *notes]}
    )
    write_text(folder / "findings.json", document.model_dump_json(indent=1))
    return document


def write_result(result: Result, folder: str | Path, *, report: bool = True, progress: Progress = SILENT) -> Result:
    """Write one study into ``folder``, whole or not at all; returns the result with the files it now has."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        document = _write_study(result, staging, report, progress)
        os.chmod(staging, 0o777 & ~_umask())
        _swap_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return replace(result, findings=document, folder=str(folder), outputs=dict(document.outputs))


def _swap_into_place(staging: Path, folder: Path) -> None:
    """Rename ``staging`` onto ``folder``; an existing folder is moved aside first and removed after."""
    if not folder.exists():
        os.replace(staging, folder)
        return
    if not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder; choose another output folder")
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    os.replace(folder, old / folder.name)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_results(
    results: list[Result], folders: list[Path], *, report: bool = True, progress: Progress = SILENT
) -> list[Result]:
    """Several series of one patient, each into its own folder (each folder whole or not at all)."""
    return [write_result(result, folder, report=report, progress=progress) for result, folder in zip(results, folders)]
