"""Shared fixtures for the model tests."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(single_thread):
    """Every test here runs with one torch thread (tests/conftest.py)."""
