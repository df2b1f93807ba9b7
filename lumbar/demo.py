"""``lumbar demo``: a phantom study written as DICOM and NIfTI, analysed end to end, checked against truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from lumbar.api import analyze
from lumbar.io.dicom_write import write_dicom_series
from lumbar.io.write import write_intensities, write_nifti
from lumbar.labels import STRUCTURE_NAMES
from lumbar.metrics import dice
from lumbar.phantom import DiscSpec, Phantom, make_phantom
from lumbar.pipelines import Result, Segmentation
from lumbar.progress import SILENT, Progress


def demo_phantom() -> Phantom:
    """The demo's spine: healthy but for a degenerated, herniated L4/L5 and a wedged L1."""
    return make_phantom(
        discs={"L4": DiscSpec(height_loss=0.35, darkening=0.7, bulge_mm=2.0, herniation_mm=5.0)},
        wedge={"L1": 0.25},
        cranial_shift_mm=14.0,
        seed=7,
    )


def truth_table(phantom: Phantom, result: Segmentation) -> Table:
    """Dice per structure and level names against the phantom's exact truth."""
    truth_classes = phantom.image.with_array(phantom.semantic(include_sacrum=False)).sagittal_slices()
    mid = result.mid_slice
    table = Table(title="Check against the phantom's exact truth (sacrum unlabelled, as in SPIDER)")
    table.add_column("structure")
    table.add_column("Dice, all slices")
    table.add_column("mid-sagittal slice")
    for structure, name in STRUCTURE_NAMES.items():
        table.add_row(
            name,
            f"{dice(truth_classes == structure, result.semantic.classes == structure):.3f}",
            f"{dice(truth_classes[mid] == structure, result.semantic.classes[mid] == structure):.3f}",
        )
    # A disc counts as named right when most of its true voxels on the mid-sagittal slice, where levels
    # are named, carry the label of its own level.
    truth_mid = phantom.image.with_array(phantom.instances).sagittal_slices()[mid]
    named = result.levels.instances[mid]
    right = sum(
        np.mean(named[truth_mid == d.label] == d.label) > 0.5 for d in phantom.discs if np.any(truth_mid == d.label)
    )
    found = ", ".join(lv.name for lv in result.levels.discs) or "none"
    table.add_row("discs named right", "", f"{right}/{len(phantom.discs)} (found {found})")
    return table


def run_demo(out: Path, console: Console, progress: Progress = SILENT) -> Result:
    """Write the phantom study, analyse its DICOM series end to end, and show where everything went."""
    out = Path(out)
    progress.stage("drawing the phantom")
    phantom = demo_phantom()
    study = out / "study"
    progress.stage("writing the phantom study")
    write_dicom_series(phantom.image, study / "dicom", series_description="SAG T2 lumbar phantom")
    write_intensities(
        phantom.image.array, phantom.image, study / "phantom_t2.nii.gz"
    )  # float: a label map's int16 cut its fractions
    write_nifti(phantom.instances, phantom.image, study / "phantom_truth_instances.nii.gz")
    console.print(
        f"phantom study written to [bold]{study}[/bold] (DICOM series and NIfTI, with exact truth)", highlight=False
    )
    synthetic = "a synthetic phantom: the findings were validated on real images, which say nothing of it"
    result = analyze(study / "dicom", out / "results", withhold=(synthetic,), progress=progress)
    folder = Path(result.folder or out)
    findings = result.findings
    console.print(truth_table(phantom, result.segmentation))
    console.print(f"discs found: {', '.join(d.level for d in findings.discs) or 'none'}", highlight=False)
    for reason in findings.needs_review:
        console.print(f"[yellow]review:[/yellow] {reason}", highlight=False)
    outputs = Table(title="Outputs")
    outputs.add_column("what")
    outputs.add_column("where")
    for kind, path in result.outputs.items():
        outputs.add_row(kind, str(folder / path))
    console.print(outputs)
    console.print(f"open [bold]{folder / 'report.html'}[/bold] in a browser", highlight=False)
    return result
