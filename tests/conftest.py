"""Shared fixtures: phantoms (always available) and the real data beside the repo (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lumbar.phantom import DiscSpec, make_phantom

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


REAL_DATA_TESTS: set[str] = set()  # node ids of the tests that asked for real data
MISSING = "real data not available"


def shared(*parts: str) -> Path:
    """A path in ../shared/data, or skip the test with the reason."""
    REAL_DATA_TESTS.add(os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0])
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{MISSING}: {path} (needs ../shared/data beside the repository)")
    return path


def _real_data_outcomes(stats: dict) -> tuple[int, int]:
    ran = sum(1 for report in stats.get("passed", []) + stats.get("failed", []) if report.nodeid in REAL_DATA_TESTS)
    skipped = sum(1 for report in stats.get("skipped", []) if MISSING in str(report.longrepr))
    return ran, skipped


def pytest_terminal_summary(terminalreporter):
    """One line that says how many real-data tests ran and how many skipped for want of ../shared/data."""
    ran, skipped = _real_data_outcomes(terminalreporter.stats)
    where = "present" if SHARED_DATA.is_dir() else "absent"
    terminalreporter.write_line(f"real-data tests: {ran} ran, {skipped} skipped (../shared/data {where})")


def pytest_sessionfinish(session, exitstatus):
    """With ../shared/data beside the repository, a real-data test that skips is a failure: its data went missing."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not SHARED_DATA.is_dir():
        return
    _, skipped = _real_data_outcomes(reporter.stats)
    if skipped and exitstatus == 0:
        reporter.write_line(f"{skipped} real-data tests skipped although ../shared/data is present: failing the run")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def phantom():
    """A small T2 phantom with one degenerated, herniated disc (L4/L5) and a wedged L1."""
    return make_phantom(
        shape=(7, 320, 288),
        discs={"L4": DiscSpec(height_loss=0.35, darkening=0.7, bulge_mm=2, herniation_mm=5)},
        wedge={"L1": 0.25},
        seed=3,
    )


@pytest.fixture(scope="session")
def phantom_semantic(phantom):
    """The phantom's exact class map as display slices."""
    return phantom.image.with_array(phantom.semantic()).sagittal_slices()


@pytest.fixture(scope="session")
def phantom_semantic_spider(phantom):
    """The class map as SPIDER labels it: no sacrum."""
    return phantom.image.with_array(phantom.semantic(include_sacrum=False)).sagittal_slices()


@pytest.fixture(scope="session")
def phantom_instances(phantom):
    return phantom.image.with_array(phantom.instances).sagittal_slices()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
