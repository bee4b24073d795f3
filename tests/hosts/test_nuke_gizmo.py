"""The committed gizmos are what the schema generates, and their knobs and inner graph are the ones Nuke needs."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from dfl_vfx.hosts import nk
from dfl_vfx.hosts.nuke_gizmo import GIZMO_DIR, GIZMOS, HOST_OWNED, LAYERS_FILE, gizmo_text, write_gizmos
from dfl_vfx.schema import schema_document


def _gizmo(text: str) -> nk.Node:
    statements = nk.parse(text)
    gizmos = [s for s in statements if isinstance(s, nk.Node) and s.cls == "Gizmo"]
    assert len(gizmos) == 1
    return gizmos[0]


@pytest.mark.parametrize("file_name", sorted(GIZMOS))
def test_committed_gizmo_is_the_generated_one_byte_for_byte(file_name: str) -> None:
    committed = (GIZMO_DIR / file_name).read_text(encoding="utf-8")
    assert committed == gizmo_text(schema_document(), GIZMOS[file_name]), \
        f"nuke/gizmos/{file_name} is stale: run `python -m dfl_vfx.hosts.nuke_gizmo`"


def test_a_schema_change_changes_the_gizmo() -> None:
    schema = copy.deepcopy(schema_document())
    blur = next(entry for entry in schema["settings"] if entry["name"] == "blur")
    blur["range"] = [0, 123]
    blur["label"] = "Edge softness"
    knob = next(k for k in _gizmo(gizmo_text(schema)).user_knobs if k.name == "blur")
    assert knob.options["R"] == "0 123" and knob.options["l"] == "Edge softness"


def test_every_schema_setting_is_a_knob_with_its_label_help_range_and_default() -> None:
    schema = schema_document()
    gizmo = _gizmo(gizmo_text(schema))
    knobs = {k.name: k for k in gizmo.user_knobs}
    for entry in schema["settings"]:
        name = entry["name"]
        if name in HOST_OWNED:
            assert name not in knobs
            continue
        knob = knobs[name]
        assert knob.type_id == {"float": 7, "int": 3, "choice": 4, "text": 1, "path": 2}[entry["type"]]
        assert knob.options["l"] == entry["label"]
        assert knob.options["t"].startswith(entry["help"])
        assert ("no re-bake" in knob.options["t"]) == entry["live"]
        if entry.get("range"):
            assert [float(v) for v in knob.options["R"].split()] == [float(v) for v in entry["range"]]
        if entry["type"] == "choice":
            items = nk.split_words(knob.options["M"])
            assert items[-len(entry["choices"]):] == entry["choices"]
        default = entry["default"]
        written = gizmo.value(name)
        if entry["type"] == "float":
            assert float(written if written is not None else 0) == default
        elif entry["type"] == "choice" and default is not None:
            assert (written or entry["choices"][0]) == default
    # face_type's default is the engine's: the first item stands for it
    assert nk.split_words(knobs["face_type"].options["M"])[0] == "default"


def test_the_issue_s_knobs_and_buttons_exist() -> None:
    knobs = {k.name: k for k in _gizmo(gizmo_text(schema_document())).user_knobs}
    for name in ("model", "engine", "faceset", "color_transfer", "mask_mode", "erode", "blur", "face_scale",
                 "opacity", "face_exposure", "first_frame", "last_frame", "cache_root", "bake_frame", "bake_range",
                 "cancel_bake"):
        assert name in knobs, name
    assert knobs["bake_range"].type_id == 22
    assert knobs["bake_range"].options["T"] == "import dfl_nuke.swap_node; dfl_nuke.swap_node.bake_range()"
    for hidden in ("bake_file", "px_per_unit", "stale"):
        assert "+INVISIBLE" in knobs[hidden].flags


def _wiring(text: str) -> dict[str, list[str | None]]:
    return {name: [i.name if i else None for i in wired.inputs]
            for name, wired in nk.graph(_gizmo(text).children).items()}


def test_swap_inner_graph_reads_the_bake_and_keymixes_the_face_over_the_plate() -> None:
    gizmo = _gizmo(gizmo_text(schema_document()))
    wiring = _wiring(gizmo_text(schema_document()))
    assert wiring["BakeRead"] == [] and wiring["plate"] == []
    # the engine's order: unpremultiply the face, erode its coverage by clip_px and the matte by erode_px, keep
    # the smaller of the two (the matte never leaves the face), blur, opacity
    assert wiring["FaceUnpremult"] == ["BakeRead"]
    assert wiring["CoverageErode"] == ["FaceUnpremult"]
    assert wiring["MatteErode"] == ["CoverageErode"]
    assert wiring["MatteLimit"] == ["MatteErode", "MatteErode"]
    assert wiring["MatteBlur"] == ["MatteLimit"]
    assert wiring["MatteOpacity"] == ["MatteBlur"]
    assert wiring["FaceExposure"] == ["MatteOpacity"]
    # Keymix: B (kept outside the matte) is the plate, A the face, the mask input the shaped matte
    assert wiring["FaceOverPlate"] == ["plate", "FaceToRgba", "MatteToMask"]
    assert wiring["MaskToOutput"] == ["FaceOverPlate", "MatteToMask"]
    assert wiring["Output1"] == ["MaskToOutput"]
    children = {n.name: n for n in gizmo.children if isinstance(n, nk.Node)}
    assert children["BakeRead"].value("file") == LAYERS_FILE
    assert children["BakeRead"].value("raw") == "true"
    assert children["FaceOverPlate"].value("maskChannel") == "mask.alpha"
    limit = children["MatteLimit"]
    assert (limit.value("operation"), limit.value("A"), limit.value("B"), limit.value("output")) == \
        ("min", "raw.alpha", "matte.alpha", "matte.alpha")
    assert nk.split_words(children["CoverageErode"].value("channels") or "") == \
        ["-raw.red", "-raw.green", "-raw.blue", "raw.alpha"]
    assert children["MaskToOutput"].value("to0") == "mask.alpha"
    # every parent.X an inner node reads is a knob of the gizmo
    knob_names = {k.name for k in gizmo.user_knobs}
    read = {name for node in children.values() for knob in node.knobs
            for name in re.findall(r"parent\.([A-Za-z_]\w*)", knob.value)}
    assert {"bake_file", "bake_first", "erode", "blur", "opacity", "face_exposure", "px_per_unit"} <= read
    assert read and read <= knob_names, read - knob_names


@pytest.mark.parametrize("mask_only", [False, True])
def test_the_inner_read_reads_the_layers_file_beside_the_baked_frames(mask_only: bool) -> None:
    """The Read's file, evaluated by a real Tcl interpreter (Nuke's expression language) with bake_file set to a
    bake's frames, is the layers file of swap-output.md: OUT/layers/NAME.####.exr."""
    tkinter = pytest.importorskip("tkinter")
    children = {n.name: n for n in _gizmo(gizmo_text(schema_document(), mask_only)).children
                if isinstance(n, nk.Node)}
    tcl = tkinter.Tcl()
    tcl.eval("proc value {knob} {return /shots/sh010/cache/untitled/DFLSwap1/0123abcd/plate.####.exr}")
    evaluated = tcl.eval("subst {" + children["BakeRead"].value("file") + "}")
    assert evaluated == "/shots/sh010/cache/untitled/DFLSwap1/0123abcd/layers/plate.####.exr"


def test_mask_gizmo_outputs_the_shaped_matte_alone() -> None:
    text = gizmo_text(schema_document(), mask_only=True)
    wiring = _wiring(text)
    assert wiring["Output1"] == ["MatteToRgba"]
    assert wiring["MatteToRgba"] == ["MatteToMask"] and wiring["MatteToMask"] == ["MatteBlur"]
    assert wiring["CoverageErode"] == ["BakeRead"] and wiring["MatteBlur"] == ["MatteLimit"]
    assert not any(name.startswith("Face") for name in wiring)
    knobs = {k.name for k in _gizmo(text).user_knobs}
    assert {"erode", "blur", "bake_range"} <= knobs and "face_exposure" not in knobs


def test_write_gizmos_writes_both_files(tmp_path: Path) -> None:
    written = write_gizmos(tmp_path, schema_document())
    assert sorted(p.name for p in written) == sorted(GIZMOS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(GIZMOS)


def _evaluate(expr_value: str, **knobs: float) -> float:
    """A gizmo expression ``{{...}}`` evaluated as Python (the generator writes only syntax both share)."""
    import math
    from types import SimpleNamespace

    body = expr_value.strip()
    assert body.startswith("{{") and body.endswith("}}"), body
    return float(eval(body[2:-2], {"__builtins__": {}}, {  # noqa: S307 - our own generated text
        "parent": SimpleNamespace(**knobs), "fmod": math.fmod, "int": int, "max": max, "pow": pow}))


@pytest.mark.parametrize("blur", [0, 1, 2, 25, 26, 70.6, 400])
@pytest.mark.parametrize("erode", [-30, 0, 12.5])
def test_live_node_sizes_are_the_engine_s_per_face_sizes(blur: float, erode: float) -> None:
    import numpy as np

    from dfl_vfx.hosts.nuke_gizmo import BLUR_SIZE_PER_SIGMA
    from dfl_vfx.merge.masks import plate_blur_sigma, plate_clip_margin, plate_erode_radius, plate_px_per_unit

    matrix = np.array([[0.31, -0.05, 12.0], [0.05, 0.31, -40.0]])  # a face at about a third of plate scale
    unit = plate_px_per_unit(matrix)
    knobs = {"blur": blur, "erode": erode, "px_per_unit": unit, "opacity": 0.5, "face_exposure": -1.5}
    children = {n.name: n for n in _gizmo(gizmo_text(schema_document())).children if isinstance(n, nk.Node)}
    size = {name: _evaluate(children[name].knob("size").value, **knobs)  # type: ignore[union-attr]
            for name in ("MatteErode", "CoverageErode", "MatteBlur")}
    assert -size["MatteErode"] == pytest.approx(plate_erode_radius(erode, matrix), abs=1e-12)
    assert -size["CoverageErode"] == pytest.approx(plate_clip_margin(blur, matrix), abs=1e-12)
    assert size["MatteBlur"] / BLUR_SIZE_PER_SIGMA == pytest.approx(plate_blur_sigma(blur, matrix), abs=1e-12)
    exposure = _evaluate(children["FaceExposure"].knob("value").value, **knobs)  # type: ignore[union-attr]
    assert exposure == pytest.approx(2 ** -1.5)
    assert _evaluate(children["MatteOpacity"].knob("value").value, **knobs) == 0.5  # type: ignore[union-attr]
