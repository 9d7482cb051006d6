"""Shared pytest configuration: the ``slow`` marker and the ``shared_dir`` fixture (``../shared`` data)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than ~30 s (deselect with -m 'not slow')")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared data folder (``../shared`` next to the project); skips the test when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} is absent (real-data test)")
    return SHARED
