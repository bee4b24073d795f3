"""Nuke script text (`.nk` / `.gizmo`): our own small writer and parser, and the stack wiring of a node graph.

Owns the subset of Nuke's TCL-like syntax the generated gizmos and the demo script use (and that Nuke itself saves):
top-level commands (``version``, ``add_layer``, ``set N [stack 0]``, ``push $N``, ``push 0``, ``end_group``),
node blocks ``Class { knob value ... }`` with ``addUserKnob {...}`` lines, quoted ``"..."`` values with backslash
escapes, ``{...}`` words (``{{expr}}`` expressions), and ``Group``/``Gizmo`` ... ``end_group`` nesting. The
``nkparser`` package cannot be used: 0.3.0 fails on ``end_group`` and reads ``addUserKnob`` lines as nodes.

:func:`parse` then :func:`write` gives back the same text for everything :func:`write` produces (one knob a line,
one space of indent per block level); :func:`graph` replays the stack to find which node feeds which input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dfl_vfx.errors import DflError

BARE_WORD = re.compile(r"[A-Za-z0-9_.:/+\-]+")
# classes with no input unless an ``inputs`` knob says otherwise
SOURCE_CLASSES = frozenset({"Read", "Input", "Constant", "CheckerBoard2", "ColorWheel", "ColorBars", "Root"})
GROUP_CLASSES = frozenset({"Group", "Gizmo"})
# addUserKnob options that take more than one word: ``R min max``
OPTION_WORDS = {"R": 2}


class NkSyntaxError(DflError):
    """A script line our parser cannot read."""


def quote(text: str) -> str:
    """One TCL word for ``text``: bare when it is plain, else ``"..."`` with ``\\ " [ $`` and newlines escaped
    (so nothing in a label or tooltip is evaluated as a TCL command or variable when Nuke loads the file)."""
    if text and BARE_WORD.fullmatch(text):
        return text
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("[", "\\[")
               .replace("$", "\\$").replace("\n", "\\n"))
    return f'"{escaped}"'


def braces(*words: str) -> str:
    """``{a b c}``: a TCL list of words (each quoted as needed)."""
    return "{" + " ".join(quote(word) for word in words) + "}"


def expression(expr: str) -> str:
    """``{{expr}}``: a knob value that Nuke evaluates (braces keep ``[`` and ``$`` literal until then)."""
    if "{" in expr or "}" in expr:
        raise ValueError(f"expression {expr!r}: braces are not allowed inside")
    return "{{" + expr + "}}"


def split_words(text: str, where: str = "") -> list[str]:
    """TCL words of one line, braces and quotes kept in each word (``a "b c" {d {e}}`` -> 3 words)."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        if text[i] == "{":
            depth = 0
            while i < n:
                if text[i] == "\\":
                    i += 2
                    continue
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
                if depth == 0:
                    break
            if depth:
                raise NkSyntaxError(f"{where}: unbalanced braces in {text!r}")
        elif text[i] == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                raise NkSyntaxError(f"{where}: unterminated quote in {text!r}")
            i += 1
        else:
            while i < n and not text[i].isspace():
                i += 1
        words.append(text[start:i])
    return words


def unquote(word: str) -> str:
    """The text of one word: ``"a \\[b\\]"`` -> ``a [b]``, ``{x y}`` -> ``x y``, ``bare`` -> ``bare``."""
    if len(word) >= 2 and word[0] == '"' and word[-1] == '"':
        out, i, body = [], 0, word[1:-1]
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                out.append("\n" if body[i + 1] == "n" else body[i + 1])
                i += 2
            else:
                out.append(body[i])
                i += 1
        return "".join(out)
    if len(word) >= 2 and word[0] == "{" and word[-1] == "}":
        return word[1:-1]
    return word


@dataclass
class Knob:
    """One line of a node block: ``name value`` (``value`` kept as written, words quoted)."""

    name: str
    value: str

    @property
    def words(self) -> list[str]:
        return split_words(self.value)

    @property
    def text(self) -> str:
        """The value as one unquoted string (for a one-word value)."""
        return unquote(self.value)


@dataclass
class UserKnob:
    """An ``addUserKnob {TYPE name l "Label" t "tooltip" ...}`` line: type id, name and its options."""

    type_id: int
    name: str
    options: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    line: str = ""


@dataclass
class Node:
    """A node block and, for a Group/Gizmo, the statements up to its ``end_group``."""

    cls: str
    knobs: list[Knob] = field(default_factory=list)
    children: list[Statement] = field(default_factory=list)

    def knob(self, name: str) -> Knob | None:
        return next((knob for knob in self.knobs if knob.name == name), None)

    def value(self, name: str, default: str | None = None) -> str | None:
        knob = self.knob(name)
        return knob.text if knob else default

    @property
    def name(self) -> str:
        return self.value("name") or self.cls

    @property
    def user_knobs(self) -> list[UserKnob]:
        return [parse_user_knob(knob.value) for knob in self.knobs if knob.name == "addUserKnob"]

    @property
    def input_count(self) -> int:
        inputs = self.value("inputs")
        if inputs is not None:
            return int(inputs.split()[0])
        return 0 if self.cls in SOURCE_CLASSES else 1


@dataclass
class Command:
    """A top-level line that is not a node: ``version 15.1 v1``, ``set N1 [stack 0]``, ``push $N1`` ..."""

    words: list[str]


Statement = Node | Command


def parse_user_knob(value: str) -> UserKnob:
    inner = split_words(unquote(value))
    if len(inner) < 2:
        raise NkSyntaxError(f"addUserKnob {value}: needs a type and a name")
    knob = UserKnob(int(inner[0]), inner[1], line=value)
    i = 2
    while i < len(inner):
        word = inner[i]
        if word[:1] in "+-" and len(word) > 1 and not word[1:2].isdigit():
            knob.flags.append(word)
            i += 1
        elif i + OPTION_WORDS.get(word, 1) < len(inner):
            count = OPTION_WORDS.get(word, 1)
            knob.options[word] = " ".join(unquote(item) for item in inner[i + 1:i + 1 + count])
            i += 1 + count
        else:
            raise NkSyntaxError(f"addUserKnob {value}: option {word} has no value")
    return knob


def parse(text: str, source: str = "<script>") -> list[Statement]:
    """The statements of a script; a Group/Gizmo holds its children up to ``end_group``."""
    lines = text.splitlines()
    top: list[Statement] = []
    scopes: list[list[Statement]] = [top]
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        where = f"{source}:{i + 1}"
        i += 1
        if not line or line.startswith("#"):
            continue
        if line == "end_group":
            if len(scopes) == 1:
                raise NkSyntaxError(f"{where}: end_group without a Group or Gizmo")
            scopes.pop()
            continue
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*) \{(\s*\})?", line)
        if match:
            node = Node(match.group(1))
            if match.group(2):
                scopes[-1].append(node)
                continue
            while True:
                if i >= len(lines):
                    raise NkSyntaxError(f"{source}: node {node.cls} is never closed with }}")
                knob_line = lines[i].strip()
                i += 1
                if knob_line == "}":
                    break
                name, _, value = knob_line.partition(" ")
                split_words(value, f"{source}:{i}")  # check the value's quoting now, naming the line
                node.knobs.append(Knob(name, value))
            scopes[-1].append(node)
            if node.cls in GROUP_CLASSES:
                scopes.append(node.children)
            continue
        scopes[-1].append(Command(split_words(line, where)))
    if len(scopes) != 1:
        raise NkSyntaxError(f"{source}: a Group or Gizmo has no end_group")
    return top


def write(statements: list[Statement], depth: int = 0) -> str:
    """Script text: each node a ``Class {`` line, one knob a line, ``}``; a group's children one space deeper,
    then ``end_group``."""
    pad = " " * depth
    out: list[str] = []
    for statement in statements:
        if isinstance(statement, Command):
            out.append(pad + " ".join(statement.words) + "\n")
            continue
        out.append(f"{pad}{statement.cls} {{\n")
        for knob in statement.knobs:
            out.append(f"{pad} {knob.name} {knob.value}\n" if knob.value else f"{pad} {knob.name}\n")
        out.append(pad + "}\n")
        if statement.cls in GROUP_CLASSES:
            out.append(write(statement.children, depth + 1))
            out.append(pad + "end_group\n")
    return "".join(out)


@dataclass
class Wired:
    """A node with the nodes feeding its inputs (input 0 first; None for an unconnected input)."""

    node: Node
    inputs: list[Node | None]


def graph(statements: list[Statement], source: str = "<script>") -> dict[str, Wired]:
    """Replay Nuke's stack over one scope (a group's children are their own scope): each node takes its inputs
    from the top of the stack (input 0 = the top) and pushes itself; ``set N [stack 0]`` names the top, ``push $N``
    pushes it again, ``push 0`` pushes an empty input. Nodes by name."""
    stack: list[Node | None] = []
    saved: dict[str, Node | None] = {}
    nodes: dict[str, Wired] = {}
    for statement in statements:
        if isinstance(statement, Command):
            words = statement.words
            if words[0] == "set" and len(words) >= 3:
                if not stack:
                    raise NkSyntaxError(f"{source}: set {words[1]} on an empty stack")
                saved[words[1]] = stack[-1]
            elif words[0] == "push":
                target = words[1]
                if target == "0":
                    stack.append(None)
                elif target.startswith("$") and target[1:] in saved:
                    stack.append(saved[target[1:]])
                else:
                    raise NkSyntaxError(f"{source}: push {target}: no such saved node")
            continue
        count = statement.input_count
        if count > len(stack):
            raise NkSyntaxError(f"{source}: {statement.name} takes {count} inputs, the stack holds {len(stack)}")
        taken = [stack.pop() for _ in range(count)]
        nodes[statement.name] = Wired(statement, taken)
        if statement.cls != "Root":  # the script's settings: not a node of the graph
            stack.append(statement)
    return nodes
