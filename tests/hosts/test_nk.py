"""Our own `.nk`/`.gizmo` parser: round trips, quoting, group nesting and stack wiring."""

from __future__ import annotations

import pytest

from dfl_vfx.hosts import nk
from dfl_vfx.hosts.nuke_gizmo import GIZMO_DIR

SCRIPT = """\
version 15.1 v1
Read {
 inputs 0
 file "/shots/sh 010/plate.####.exr"
 name Plate
}
set N1 [stack 0]
Group {
 inputs 1
 name Inner
 addUserKnob {20 t l Tab}
 addUserKnob {7 gain l Gain t "x \\[not a command\\] \\$HOME \\"q\\"" R 0 4}
 gain 2
}
 Input {
  inputs 0
  name in
 }
 Grade {
  white {{parent.gain}}
  name G
 }
 Output {
  name Output1
 }
end_group
push $N1
push 0
Merge2 {
 inputs 2
 name M
}
Write {
 file /out/comp.####.exr
 name Write1
}
"""


@pytest.mark.parametrize("path", sorted(GIZMO_DIR.glob("*.gizmo")), ids=lambda p: p.name)
def test_committed_gizmos_round_trip(path) -> None:
    text = path.read_text(encoding="utf-8")
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    assert nk.write(nk.parse(text, str(path))) == body


def test_script_round_trips_and_wires_through_the_stack() -> None:
    statements = nk.parse(SCRIPT)
    assert nk.write(statements) == SCRIPT
    wiring = {name: [i.name if i else None for i in w.inputs] for name, w in nk.graph(statements).items()}
    assert wiring == {"Plate": [], "Inner": ["Plate"], "M": [None, "Plate"], "Write1": ["M"]}
    group = next(s for s in statements if isinstance(s, nk.Node) and s.cls == "Group")
    inner = {name: [i.name if i else None for i in w.inputs] for name, w in nk.graph(group.children).items()}
    assert inner == {"in": [], "G": ["in"], "Output1": ["G"]}


def test_quoted_values_keep_spaces_brackets_dollars_and_quotes() -> None:
    statements = nk.parse(SCRIPT)
    read = statements[1]
    assert isinstance(read, nk.Node) and read.value("file") == "/shots/sh 010/plate.####.exr"
    group = statements[3]
    assert isinstance(group, nk.Node)
    gain = next(k for k in group.user_knobs if k.name == "gain")
    assert gain.type_id == 7 and gain.options == {"l": "Gain", "t": 'x [not a command] $HOME "q"', "R": "0 4"}
    assert group.value("gain") == "2"


@pytest.mark.parametrize("text", ['say "a [b] $c \\\\ d"', "plain", "two words", "", 'q"uote', "x\ny"])
def test_quote_then_unquote_gives_the_text_back(text: str) -> None:
    word = nk.quote(text)
    assert nk.split_words(word) == [word]
    assert nk.unquote(word) == text
    if "[" in text:
        assert "\\[" in word  # never evaluated as a TCL command when Nuke loads the file


@pytest.mark.parametrize("text, message", [
    ("end_group\n", "end_group without a Group"),
    ("Group {\n name g\n}\n Input {\n }\n", "no end_group"),
    ("Blur {\n size 3\n", "never closed"),
    ("Blur {\n label \"open\n}\n", "unterminated quote"),
    ("Blur {\n}\n", "takes 1 inputs, the stack holds 0"),
    ("push $Nope\n", "no such saved node"),
])
def test_malformed_scripts_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(nk.NkSyntaxError, match=message):
        nk.graph(nk.parse(text, "bad.nk"), "bad.nk")


def test_demo_comp_script_round_trips_and_wires_plate_swap_write(tmp_path) -> None:
    from dfl_vfx.hosts.nuke_gizmo import GIZMOS
    from dfl_vfx.hosts.nuke_script import write_comp_script

    path = write_comp_script(tmp_path / "comp.nk", "/shots/sh 010/plate.####.exr", "/models/m [v2].onnx",
                             "/cache", "/out/comp.####.exr", 1001, 1012)
    text = path.read_text()
    statements = nk.parse(text, str(path))
    assert nk.write(statements) == text
    wiring = {name: [i.name if i else None for i in w.inputs] for name, w in nk.graph(statements).items()}
    assert wiring == {"comp.nk": [], "Plate": [], "DFLSwap1": ["Plate"], "Write1": ["DFLSwap1"]}
    nodes = {s.name: s for s in statements if isinstance(s, nk.Node)}
    assert f"{nodes['DFLSwap1'].cls}.gizmo" in GIZMOS
    assert nodes["DFLSwap1"].value("model") == "/models/m [v2].onnx"
    assert nodes["Plate"].value("file") == "/shots/sh 010/plate.####.exr"
    assert nodes["Write1"].value("channels") == "all"  # the mask channel reaches the file
    gizmo = next(s for s in nk.parse((GIZMO_DIR / "DFLSwap.gizmo").read_text()) if isinstance(s, nk.Node))
    assert {k.name for k in nodes["DFLSwap1"].knobs} - {"name"} <= {k.name for k in gizmo.user_knobs}
