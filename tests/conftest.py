"""Shared fixtures: phantoms (always available) and the real data beside the repo (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lumbar.phantom import DiscSpec, make_phantom

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared(*parts: str) -> Path:
    """A path in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (needs ../shared/data beside the repository)")
    return path


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
