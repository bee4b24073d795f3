"""Install the fake ``nuke`` module and put the plugin folder (nuke/) on sys.path for these tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

NUKE_PLUGIN = Path(__file__).resolve().parents[2] / "nuke"
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(NUKE_PLUGIN) not in sys.path:
    sys.path.insert(0, str(NUKE_PLUGIN))

import fake_nuke  # noqa: E402

sys.modules["nuke"] = fake_nuke  # type: ignore[assignment]


@pytest.fixture()
def nuke() -> Iterator[object]:
    fake_nuke.reset()
    yield fake_nuke
    import dfl_nuke.swap_node

    dfl_nuke.swap_node.close_clients()
    fake_nuke.reset()
