"""Shared fixtures for the model tests."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny tensors: one thread avoids oversubscription on small shared CI machines (20x slower under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
