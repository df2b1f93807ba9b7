"""The one path from a study to outputs: read -> segment -> name levels -> write.

``segment_study`` is what ``lumbar segment`` and ``lumbar demo`` run; it returns where every output
went. Outputs mirror the input: PNG masks of the same size and name for a PNG slice, label maps in the
input's own voxel grid for a volume, and DICOM SEG beside them when the input was a DICOM series.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lumbar.errors import InputError
from lumbar.image import SpineImage
from lumbar.io.read import read_image, suffix_of
from lumbar.io.write import classes_to_spider, semantic_colour_table, write_colour_tables, write_nifti, write_png, write_text
from lumbar.labels import CANAL_LABEL, STRUCTURE_COLOURS, Structure, instance_name
from lumbar.tasks.levels import LevelLabelling, label_levels
from lumbar.tasks.segmentation import SemanticSegmentation, segment


@dataclass
class SegmentationResult:
    """Semantic classes, named instances and review flags for one study (display slices)."""

    image: SpineImage
    semantic: SemanticSegmentation
    levels: LevelLabelling
    outputs: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "input": self.image.describe(),
            "model": self.semantic.model_version,
            "levels": [asdict(lv) for lv in self.levels.levels],
            "needs_review": self.levels.flags,
            "outputs": self.outputs,
        }


def study_stem(path: Path) -> str:
    """Output name of a study: the file name without its image suffix, or the folder's name."""
    suffix = suffix_of(path)
    return path.name[: -len(suffix)] if suffix and path.is_file() else path.name


def unique_stems(paths: list[Path]) -> dict[Path, str]:
    """Output names for a batch: the study stem, made unique (``scan``, ``scan_mha``, ``scan_2``) so that
    no study overwrites another's outputs."""
    stems: dict[Path, str] = {}
    used: set[str] = set()
    for path in paths:
        stem = study_stem(path)
        if stem in used:
            stem = f"{stem}_{suffix_of(path).lstrip('.').replace('.', '_')}" if suffix_of(path) else stem
        base, n = stem, 2
        while stem in used:
            stem, n = f"{base}_{n}", n + 1
        used.add(stem)
        stems[path] = stem
    return stems


def segment_image(image: SpineImage, progress: Callable[[int], None] | None = None) -> SegmentationResult:
    """Segment and name the levels of an image already read."""
    semantic = segment(image, progress=progress)
    lateral = image.spacing_mm[0]
    levels = label_levels(semantic.classes, (lateral, *image.sagittal_spacing_mm()))
    return SegmentationResult(image, semantic, levels)


def instance_names(levels: LevelLabelling) -> dict[int, str]:
    """Name of every label present in the instance map."""
    names = {lv.label: lv.name for lv in levels.levels}
    if np.any(levels.instances == CANAL_LABEL):
        names[CANAL_LABEL] = instance_name(CANAL_LABEL)
    return names


def instance_colours(names: dict[int, str]) -> dict[int, tuple[int, int, int]]:
    """Alternating shades per structure so that neighbouring levels stay distinguishable."""
    colours = {}
    for value, name in names.items():
        kind = Structure.CANAL if name == "canal" else Structure.DISC if "/" in name else Structure.VERTEBRA
        r, g, b = STRUCTURE_COLOURS[kind]
        shade = 0.75 if value % 2 else 1.0
        colours[value] = (int(r * shade), int(g * shade), int(b * shade))
    return colours


def save_segmentation(result: SegmentationResult, out_dir: Path, stem: str) -> dict[str, str]:
    """Write masks, instance labels, colour tables, levels JSON (and DICOM SEG for DICOM input)."""
    image, out_dir = result.image, Path(out_dir)
    semantic_spider = classes_to_spider(result.semantic.classes)
    instances = result.levels.instances
    names = instance_names(result.levels)
    outputs: dict[str, str] = {}
    if image.is_2d and image.metadata.get("format") in ("PNG", "JPG", "JPEG"):
        outputs["semantic"] = str(write_png(semantic_spider[0], out_dir / f"{stem}.png"))
        outputs["instances"] = str(write_png(instances[0].astype(np.uint8), out_dir / "instances" / f"{stem}.png"))
        levels_path = out_dir / "levels" / f"{stem}.json"
    else:
        outputs["semantic"] = str(write_nifti(image.labels_from_sagittal(semantic_spider).array, image, out_dir / f"{stem}_seg.nii.gz"))
        instance_image = image.labels_from_sagittal(instances).array
        outputs["instances"] = str(write_nifti(instance_image, image, out_dir / f"{stem}_instances.nii.gz"))
        write_colour_tables(*semantic_colour_table(), out_dir / f"{stem}_seg")
        write_colour_tables(names, instance_colours(names), out_dir / f"{stem}_instances")
        if image.metadata.get("_dicom_files"):
            from lumbar.io.dicom_write import write_dicom_seg

            try:
                outputs["dicom_seg"] = str(write_dicom_seg(instance_image, image, names, out_dir / f"{stem}_seg.dcm"))
            except (InputError, ValueError) as exc:  # highdicom refuses sources it cannot reference
                result.levels.flags.append(f"DICOM SEG not written: {exc}")
        levels_path = out_dir / f"{stem}_levels.json"
    outputs["levels"] = str(levels_path)
    result.outputs = outputs
    write_text(levels_path, json.dumps(result.summary(), indent=1, default=float))
    return outputs


def segment_study(path: str | Path, out_dir: str | Path, *, spacing_mm: float | None = None, modality: str | None = None,
                  series: str | None = None, stem: str | None = None,
                  progress: Callable[[int], None] | None = None) -> SegmentationResult:
    """Read ``path``, segment it, name the levels and write every output into ``out_dir`` (named ``stem``)."""
    path = Path(path)
    image = read_image(path, spacing_mm=spacing_mm, modality=modality, series=series)
    result = segment_image(image, progress)
    if image.modality != "MR":
        result.levels.flags.append(f"modality {image.modality}: the segmentation model was trained on sagittal MRI only")
    save_segmentation(result, Path(out_dir), stem or study_stem(path))
    return result
