"""The DFL sidebar panel draws the active node's settings: every property it shows exists (a recording layout
stands in for Blender's UI, which a headless bpy does not draw), the stale warning follows the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import pytest
from blender_comp import FIRST, LAST, comp_over_plate


class Recorder:
    """A UILayout stand-in: records labels, operators and properties, checking each property exists."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.log = log
        self.enabled = True

    def row(self, align: bool = False) -> Recorder:
        return self

    def box(self) -> Recorder:
        return self

    def label(self, text: str = "", icon: str = "NONE") -> None:
        self.log.append(("label", text))

    def prop(self, data: Any, name: str, text: str | None = None) -> None:
        assert name in data.bl_rna.properties, f"{data} has no property {name}"
        self.log.append(("prop", text or data.bl_rna.properties[name].name))

    def operator(self, idname: str, icon: str = "NONE") -> Any:
        category, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, category), name), idname
        self.log.append(("operator", idname))
        return type("Properties", (), {})()


def draw(scene: Any) -> list[tuple[str, str]]:
    from dfl_blender.panel import DFL_PT_swap

    log: list[tuple[str, str]] = []
    panel = type("Panel", (), {"layout": Recorder(log)})()
    DFL_PT_swap.draw(panel, type("Context", (), {"scene": scene})())
    return log


def test_panel_shows_the_nodes_settings_and_the_stale_warning(addon: Any, demo_plate: Path, model: Path,
                                                             cache_root: Path) -> None:
    scene = bpy.context.scene
    node = comp_over_plate(scene, demo_plate / f"plate.{FIRST}.exr", FIRST, LAST, model, cache_root, "DFL Panel")
    log = draw(scene)
    shown = [text for kind, text in log if kind == "prop"]
    assert shown[:5] == ["Model", "Faceset", "Cache folder", "Scene range", "Start"]
    assert {"Colour transfer", "Mask mode", "Face scale", "Erode", "Blur", "Opacity", "Face exposure",
            "Bake at render time"} <= set(shown)
    assert ("label", f"Plate: {demo_plate / 'plate.####.exr'}") in log
    assert {"dfl.bake_frame", "dfl.bake_range", "dfl.submit_farm"} <= {t for k, t in log if k == "operator"}
    assert not any("Stale" in text for _, text in log)
    node.node_tree.dfl.bake_hash = "000000000000"  # a bake made with other re-bake settings
    assert any(text.startswith("Stale") for _, text in draw(scene))


def test_group_inputs_come_from_the_schema(addon: Any, demo_plate: Path, model: Path, cache_root: Path) -> None:
    from dfl_blender import bake_plan

    node = comp_over_plate(bpy.context.scene, demo_plate / f"plate.{FIRST}.exr", FIRST, LAST, model, cache_root,
                           "DFL Inputs")
    sockets = {item.name: item for item in node.node_tree.interface.items_tree
               if item.item_type == "SOCKET" and item.in_out == "INPUT"}
    live = [spec for spec in bake_plan.setting_specs(bake_plan.load_schema()) if spec.live]
    assert list(sockets) == ["Image"] + [spec.label for spec in live]
    for spec in live:
        socket = sockets[spec.label]
        assert (socket.default_value, socket.min_value, socket.max_value) == pytest.approx(
            (spec.default, spec.minimum, spec.maximum))
        assert node.inputs[spec.label].default_value == pytest.approx(spec.default)
        assert "Live" in socket.description
