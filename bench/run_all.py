"""Run every benchmark that needs no training run in turn (``make bench``). Left out, as they read a run's files:
``grading_ensemble.py`` (the grading runs) and ``radiograph_lateral.py`` (the anatomies a lateral run caches);
``common.py`` and ``validation.py`` are the benches' shared code."""

import runpy
from pathlib import Path

for script in (
    "segmentation.py",
    "against_revision.py",
    "midsag_levels.py",
    "missed_disc.py",
    "vertebra_pieces.py",
    "lumbosacral.py",
    "measurements.py",
    "canal.py",
    "grading.py",
    "grade_validation.py",
    "grading_baselines.py",
    "unlike_mri.py",
    "resources.py",
    "service.py",
    "batch.py",
    "fusion.py",
    "tracking.py",
    "ultrasound.py",
    "back_pain.py",
    "radiograph_annotation.py",
    "radiograph_split.py",
    "radiograph.py",
    "radiograph_levels.py",
    "ct.py",
    "external_segmentation.py",
    "orientation.py",
    "mirrored.py",
    "on_side.py",
    "body_size.py",
    "lateral_slips.py",
):
    runpy.run_path(str(Path(__file__).parent / script), run_name="__main__")
