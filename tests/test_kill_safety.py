"""A study folder is whole or absent even when `lumbar analyze` is killed (SIGKILL) at any moment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lumbar.io.write import write_nifti

TRIALS = 20


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_a_killed_analyze_leaves_the_study_folder_whole_or_absent(tmp_path, phantom):
    write_nifti(phantom.image.array, phantom.image, tmp_path / "scan.nii.gz")
    command = [sys.executable, "-m", "lumbar.cli", "analyze", str(tmp_path / "scan.nii.gz"), "--no-report", "-o"]
    started = time.monotonic()
    subprocess.run([*command, str(tmp_path / "whole")], check=True, capture_output=True)
    duration = time.monotonic() - started
    whole = _files(tmp_path / "whole" / "scan")
    assert "findings.json" in whole
    rng = np.random.default_rng(0)
    outcomes = []
    for trial in range(TRIALS):
        out = tmp_path / f"killed{trial}"
        process = subprocess.Popen([*command, str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(float(rng.uniform(0.2, 1.1) * duration))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        study = out / "scan"
        outcomes.append(study.exists())
        if study.exists():  # all of it, and findings.json readable
            assert _files(study) == whole, trial
            json.loads((study / "findings.json").read_text())
        leftovers = [p.name for p in out.iterdir() if p.name != "scan"] if out.exists() else []
        assert all(name.startswith(".scan.partial-") for name in leftovers), leftovers  # only hidden staging
    rerun = tmp_path / f"killed{TRIALS - 1}"
    subprocess.run([*command, str(rerun)], check=True, capture_output=True)  # a rerun after a kill completes
    assert _files(rerun / "scan") == whole
    assert any(outcomes) and not all(outcomes)  # the kills did land both before and after the folder appeared
