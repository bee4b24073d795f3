"""A fake ``nuke`` module with only the API names nuke/ uses (held honest by mypy against types-nuke).

Gizmo nodes are built from the committed ``nuke/gizmos/*.gizmo`` through our own parser, so a knob the Python
touches but the gizmo lacks fails here as it would in Nuke. ``execute``, ``message`` and progress are recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dfl_vfx.hosts import nk

GIZMO_DIR = Path(__file__).resolve().parents[2] / "nuke" / "gizmos"
ENUM, INT, DOUBLE, BOOL = 4, 3, 7, 6

messages: list[str] = []
executed: list[tuple[str, int, int]] = []
plugin_paths: list[str] = []
before_renders: list[Callable[..., Any]] = []
menus: dict[str, Menu] = {}
main_thread_calls: list[str] = []
all_nodes: dict[str, Node] = {}
current: dict[str, Any] = {"node": None, "knob": None, "frame": 1, "script": "Root"}
cancel_after: dict[str, int | None] = {"progress": None}  # a ProgressTask reports cancelled after N updates


class Knob:
    def __init__(self, name: str, value: Any = "") -> None:
        self._name = name
        self._value = value

    def name(self) -> str:
        return self._name

    def value(self) -> Any:
        return self._value

    def getValue(self) -> Any:
        return self._value

    def setValue(self, value: Any) -> bool:
        self._value = value
        return True

    def fromScript(self, script: str) -> None:
        """Nuke parses the .nk value (an animation ``{curve ...}``); the fake keeps the text for the tests."""
        self._value = script

    def toScript(self) -> str:
        return str(self._value)


class Format:
    def __init__(self, width: int, height: int) -> None:
        self._size = (width, height)

    def width(self) -> int:
        return self._size[0]

    def height(self) -> int:
        return self._size[1]


class Node:
    def __init__(self, cls: str, name: str, knobs: dict[str, Any] | None = None) -> None:
        self._cls = cls
        self._knobs = {key: Knob(key, value) for key, value in (knobs or {}).items()}
        self._knobs.setdefault("name", Knob("name", name))
        self._inputs: dict[int, Node | None] = {}
        all_nodes[name] = self

    def Class(self) -> str:
        return self._cls

    def name(self) -> str:
        return str(self._knobs["name"].value())

    def fullName(self) -> str:
        return self.name()

    def knob(self, name: str) -> Knob | None:
        return self._knobs.get(name)

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    def __getitem__(self, name: str) -> Knob:
        if name not in self._knobs:
            raise NameError(f"{self.name()} has no knob named {name}")  # what Nuke raises
        return self._knobs[name]

    def input(self, index: int) -> Node | None:
        return self._inputs.get(index)

    def setInput(self, index: int, node: Node | None) -> bool:
        self._inputs[index] = node
        return True

    def format(self) -> Format:
        """The node's format: its ``format_size`` (width, height) when a test set one, else 640x360."""
        width, height = self._knobs["format_size"].value() if "format_size" in self._knobs else (640, 360)
        return Format(width, height)


def _typed(type_id: int, text: str | None, first_item: str | None) -> Any:
    if type_id == ENUM:
        return text if text is not None else first_item
    if type_id in (INT, DOUBLE):
        try:
            return (int if type_id == INT else float)(text) if text is not None else 0
        except ValueError:
            return 0  # an expression: tests set the value
    if type_id == BOOL:
        return text in ("true", "1", "True")
    return text if text is not None else ""


def gizmo_node(cls: str, name: str) -> Node:
    """A node of a committed gizmo: its own knobs and user knobs with their defaults."""
    statements = nk.parse((GIZMO_DIR / f"{cls}.gizmo").read_text(encoding="utf-8"))
    gizmo = next(s for s in statements if isinstance(s, nk.Node) and s.cls == "Gizmo")
    knobs: dict[str, Any] = {k.name: k.text for k in gizmo.knobs if k.name != "addUserKnob"}
    for user in gizmo.user_knobs:
        first = nk.split_words(user.options["M"])[0] if "M" in user.options else None
        knobs[user.name] = _typed(user.type_id, gizmo.value(user.name), first)
    knobs["tile_color"] = int(str(knobs.get("tile_color", "0")), 0)
    return Node(cls, name, knobs)


def createNode(typ: str, knobs: str = "", inpanel: bool = True) -> Node:
    name = f"{typ}{sum(1 for n in all_nodes.values() if n.Class() == typ) + 1}"
    if (GIZMO_DIR / f"{typ}.gizmo").exists():
        return gizmo_node(typ, name)
    return Node(typ, name)


class _Nodes:
    def __getattr__(self, cls: str) -> Callable[..., Node]:
        def make(**knobs: Any) -> Node:
            name = f"{cls}{sum(1 for n in all_nodes.values() if n.Class() == cls) + 1}"
            return Node(cls, name, knobs)
        return make


nodes = _Nodes()


class Root(Node):
    pass


def root() -> Root:
    return Root("Root", str(current["script"]))


def thisNode() -> Node:
    return current["node"]


def thisKnob() -> Knob:
    return current["knob"]


def toNode(name: str) -> Node | None:
    return all_nodes.get(name)


def frame(f: int | None = None) -> int:
    return int(current["frame"])


def message(prompt: str) -> None:
    messages.append(prompt)


def execute(node: Node, start: int, end: int, incr: int = 1) -> None:
    executed.append((node.name(), start, end))


def delete(node: Node | None) -> None:
    if node is not None:
        all_nodes.pop(node.name(), None)


def allNodes(filter: str | None = None, group: Node | None = None, recurseGroups: bool = False) -> list[Node]:
    return [node for node in all_nodes.values() if filter is None or node.Class() == filter]


def addBeforeRender(call: Callable[..., Any], args: tuple = (), kwargs: dict | None = None,
                    nodeClass: str = "Write") -> None:
    before_renders.append(call)


def pluginAddPath(path: str, addToSysPath: bool = True) -> None:
    plugin_paths.insert(0, path)


class Menu:
    def __init__(self, name: str) -> None:
        self.name = name
        self.items: dict[str, Any] = {}

    def addMenu(self, name: str) -> Menu:
        return self.items.setdefault(name, Menu(name))

    def addCommand(self, name: str, command: str = "") -> None:
        self.items[name] = command


def menu(name: str) -> Menu:
    return menus.setdefault(name, Menu(name))


class ProgressTask:
    """Records progress; reports cancelled after ``cancel_after["progress"]`` updates when set."""

    instances: list[ProgressTask] = []

    def __init__(self, title: str) -> None:
        self.title = title
        self.progress: list[int] = []
        self.text = ""
        ProgressTask.instances.append(self)

    def setProgress(self, percent: int) -> None:
        self.progress.append(percent)

    def setMessage(self, text: str) -> None:
        self.text = text

    def isCancelled(self) -> bool:
        limit = cancel_after["progress"]
        return limit is not None and len(self.progress) >= limit


_main_lock = threading.Lock()


def executeInMainThread(call: Callable[..., Any], args: tuple = (), kwargs: dict | None = None) -> None:
    with _main_lock:
        main_thread_calls.append(getattr(call, "__name__", str(call)))
        call(*args, **(kwargs or {}))


def reset() -> None:
    for store in (messages, executed, plugin_paths, before_renders, main_thread_calls, ProgressTask.instances):
        store.clear()
    menus.clear()
    all_nodes.clear()
    current.update(node=None, knob=None, frame=1, script="Root")
    cancel_after["progress"] = None
