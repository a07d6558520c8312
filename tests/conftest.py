"""Shared test fixtures."""

import sys

import pytest


@pytest.fixture(autouse=True)
def close_figures():
    """Close every pyplot figure after each test (only where a test has loaded pyplot)."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")
