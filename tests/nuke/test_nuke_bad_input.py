"""Knob values with spaces, quotes and shell characters reach the engine as plain values: a real Bake frame whose
model, cache folder, device text and mask mode carry them (through ``dfl-vfx serve``'s JSON, never a shell)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))
NASTY = "a b \"q\" 'r' $(id) `x`; & |"


def test_a_bake_with_shell_characters_in_every_path(nuke: Any, small_shot: Path, swap_model: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    from dfl_nuke import swap_node

    model = tmp_path / f"model {NASTY}.onnx"
    shutil.copyfile(swap_model[1], model)
    cache = tmp_path / f"cache {NASTY}"
    read = nuke.nodes.Read(file=str(small_shot / "plate" / "plate.%04d.exr"), first=1001, last=1012,
                           on_error="error", colorspace="default (linear)", raw=False)
    node = nuke.createNode("DFLSwap")
    node.setInput(0, read)
    for name, value in (("model", str(model)), ("engine", ENGINE), ("cache_root", str(cache)), ("device", "cpu"),
                        ("backend", "onnxruntime"), ("mask_mode", " learned-prd * learned-dst ")):
        node[name].setValue(value)
    nuke.current.update(node=node, frame=1001)
    swap_node.bake_frame()
    assert nuke.messages == []
    baked = Path(node["bake_file"].value().replace("####", "1001"))
    assert baked.is_file() and cache in baked.parents
    assert not (tmp_path / "id").exists() and not Path("x").exists()  # nothing was run by a shell

    # a device string a shell would split and run is one value the engine refuses by name
    node["device"].setValue("cuda:0; touch pwned")
    nuke.current["frame"] = 1002
    swap_node.bake_frame()
    assert len(nuke.messages) == 1 and "\n" not in nuke.messages[0] and "Traceback" not in nuke.messages[0]
    assert "cuda:0; touch pwned" in nuke.messages[0], nuke.messages[0]
    assert not Path("pwned").exists() and not (tmp_path / "pwned").exists()
