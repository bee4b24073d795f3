"""The panel's Submit to Farm: the node's bake as a shot file and `dfl-vfx farm submit` (a dry run writes the job
files), the farm swapping into the very folder the node reads, with the layers Blender needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import pytest
from blender_comp import FIRST, LAST, comp_over_plate


def test_submit_dry_run_writes_the_job_for_the_nodes_bake(addon: Any, demo_plate: Path, model: Path,
                                                          cache_root: Path, tmp_path: Path) -> None:
    scene = bpy.context.scene
    node = comp_over_plate(scene, demo_plate / f"plate.{FIRST}.exr", FIRST, LAST, model, cache_root, "DFL Farm")
    job = tmp_path / "job"
    assert bpy.ops.dfl.submit_farm(node_name=node.name, farm_engine="openjd", dry_run_folder=str(job),
                                   chunk_size=2) == {"FINISHED"}
    written = sorted(p.name for p in job.rglob("*") if p.is_file())
    assert written, "no job files"
    folder = Path(node.node_tree.dfl.bake_pattern).parent  # the node now reads the folder the farm fills
    shot = next((folder.parent / "farm").glob("*.toml")).read_text()
    assert f'output = "{folder}"' in shot and f'plate = "{demo_plate / "plate.####.exr"}"' in shot
    assert 'frames = "1001-1003"' in shot and 'layer_window = "display"' in shot and 'mask_mode = "hull"' in shot


def test_submit_refused_is_one_line(addon: Any, demo_plate: Path, model: Path, cache_root: Path,
                                    capfd: pytest.CaptureFixture[str]) -> None:
    scene = bpy.context.scene
    node = comp_over_plate(scene, demo_plate / f"plate.{FIRST}.exr", FIRST, LAST, model, cache_root, "DFL Farm")
    node.node_tree.dfl.mask_mode = "no-such-mask"
    with pytest.raises(RuntimeError) as raised:
        bpy.ops.dfl.submit_farm(node_name=node.name, farm_engine="openjd", dry_run_folder=str(cache_root / "x"))
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    message = str(raised.value).strip()
    assert message.startswith("Error: DFL Farm: farm submission refused: ") and "\n" not in message
    assert "mask" in message
