"""Run every benchmark in turn (``make bench``)."""

import runpy
from pathlib import Path

for script in (
    "segmentation.py",
    "midsag_levels.py",
    "lumbosacral.py",
    "measurements.py",
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
):
    runpy.run_path(str(Path(__file__).parent / script), run_name="__main__")
