"""Temporary input renders (non-Read inputs): a new render supersedes the node's earlier ones, stale ones of any
node go after a day, folders in use stay, and a cancelled render leaves no frame under a real name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


def _folder(root: Path, name: str, age_s: float = 0.0, now: float = 1_000_000.0) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    frame = folder / "input.1001.exr"
    frame.write_bytes(b"exr")
    for path in (frame, folder):
        os.utime(path, (now - age_s, now - age_s))
    return folder


def test_prune_removes_superseded_and_stale_folders_only(tmp_path: Path) -> None:
    from dfl_nuke.inputs import node_prefix, prune

    now = 1_000_000.0
    mine_old = _folder(tmp_path, f"{node_prefix('DFLSwap1')}ab12", age_s=60)
    other_fresh = _folder(tmp_path, f"{node_prefix('DFLSwap2')}cd34", age_s=23 * 3600)
    other_stale = _folder(tmp_path, f"{node_prefix('DFLSwap3')}ef56", age_s=25 * 3600)
    in_use = _folder(tmp_path, f"{node_prefix('DFLSwap4')}gh78", age_s=48 * 3600)
    bake = _folder(tmp_path, "untitled", age_s=48 * 3600)  # a bake folder is never an input folder
    similar = _folder(tmp_path, f"{node_prefix('DFLSwap10')}ij90", age_s=60)  # DFLSwap10 is not DFLSwap1
    removed = prune(str(tmp_path), "DFLSwap1", keep=[str(in_use)], now=now)
    assert sorted(removed) == sorted([str(mine_old), str(other_stale)])
    assert not mine_old.exists() and not other_stale.exists()
    assert other_fresh.is_dir() and in_use.is_dir() and bake.is_dir() and similar.is_dir()
    assert prune(str(tmp_path / "missing"), "DFLSwap1") == []


def test_node_prefix_is_one_folder_name() -> None:
    from dfl_nuke.inputs import node_prefix

    assert node_prefix("Group1.DFLSwap1") == "input_Group1.DFLSwap1_"
    assert node_prefix('a b/"c"') == "input_a-b-c-_"


def _grade_node(nuke: Any, tmp_path: Path) -> Any:
    read = nuke.nodes.Read(file=str(tmp_path / "plate.####.exr"), first=1, last=3)
    grade = nuke.nodes.Grade()
    grade.setInput(0, read)
    node = nuke.createNode("DFLSwap")
    node.setInput(0, grade)
    return node


def test_a_new_render_supersedes_the_node_s_previous_one(nuke: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from dfl_nuke import swap_node

    node = _grade_node(nuke, tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()

    def execute(write: Any, first: int, last: int, incr: int = 1) -> None:
        for frame in range(first, last + 1):
            Path(write["file"].value().replace("####", f"{frame:04d}")).write_bytes(b"frame")

    monkeypatch.setattr(nuke, "execute", execute)
    first = Path(swap_node.render_upstream(node, [1, 2], str(cache)))
    assert sorted(p.name for p in first.parent.iterdir()) == ["input.0001.exr", "input.0002.exr"]
    second = Path(swap_node.render_upstream(node, [1, 2, 3], str(cache)))
    assert second.parent != first.parent and not first.parent.exists()
    assert [p.name for p in cache.iterdir()] == [second.parent.name]
    assert second.parent.name.startswith("input_DFLSwap1_")


def test_a_cancelled_render_leaves_no_frame_under_a_real_name(nuke: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from dfl_nuke import swap_node
    from dfl_nuke.bake import BakeError

    node = _grade_node(nuke, tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()

    def cancelled(write: Any, first: int, last: int, incr: int = 1) -> None:
        Path(write["file"].value().replace("####", "0001")).write_bytes(b"complete frame")
        Path(write["file"].value().replace("####", "0002")).write_bytes(b"half")  # Nuke stops mid-frame
        raise RuntimeError("Cancelled")

    monkeypatch.setattr(nuke, "execute", cancelled)
    with pytest.raises(BakeError, match=r"DFLSwap1: rendering the input stopped \(Cancelled\); nothing was baked"):
        swap_node.render_upstream(node, [1, 2, 3], str(cache))
    assert list(cache.iterdir()) == []  # the whole folder went, half frame included
    assert "Write1" not in nuke.all_nodes

    # through the bake button: one message, no traceback, the node not pointed anywhere
    node["model"].setValue(str(tmp_path))
    node["cache_root"].setValue(str(cache))
    node["first_frame"].setValue(1)
    node["last_frame"].setValue(3)
    nuke.current["node"] = node
    assert swap_node.bake_range() is None
    assert nuke.messages == ["DFLSwap1: rendering the input stopped (Cancelled); nothing was baked"]
    assert list(cache.iterdir()) == [] and node["bake_file"].value() == ""


def test_no_second_render_while_the_node_bakes(nuke: Any, tmp_path: Path) -> None:
    from dfl_nuke import swap_node
    from dfl_nuke.bake import BakeError

    node = _grade_node(nuke, tmp_path)
    swap_node._running[node.fullName()] = None
    try:
        with pytest.raises(BakeError, match="a bake is already running"):
            swap_node.render_upstream(node, [1], str(tmp_path))
    finally:
        swap_node._running.pop(node.fullName(), None)
