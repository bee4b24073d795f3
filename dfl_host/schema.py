"""The engine's swap-settings schema as a host reads it: names, CLI flags, defaults, live or re-bake.

The document comes from the server's ``schema`` method (:meth:`dfl_host.client.EngineClient.schema`) or from
``dfl-vfx schema`` (:func:`read_schema`); hosts build their knobs from it and never hard-code a setting.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from dfl_host.errors import EngineError, SettingError
from dfl_host.locate import find_engine

SCHEMA_FORMAT = "dfl_vfx.schema"


class Schema:
    """The settings of a ``dfl_vfx.schema`` document, by name."""

    def __init__(self, document: dict[str, Any]) -> None:
        if not isinstance(document, dict) or document.get("format") != SCHEMA_FORMAT:
            raise EngineError(f"not a {SCHEMA_FORMAT} document; is the engine a dfl-vfx of this version?")
        self.document = document
        self.version = int(document.get("version", 0))
        self.settings: dict[str, dict[str, Any]] = {entry["name"]: entry for entry in document["settings"]}

    @property
    def names(self) -> list[str]:
        return list(self.settings)

    @property
    def live_names(self) -> list[str]:
        """Settings a host redoes from the baked layers, without a re-bake."""
        return [name for name, entry in self.settings.items() if entry.get("live")]

    @property
    def rebake_names(self) -> list[str]:
        """Settings whose change needs a new bake."""
        return [name for name, entry in self.settings.items() if not entry.get("live")]

    def entry(self, name: str) -> dict[str, Any]:
        try:
            return self.settings[name]
        except KeyError:
            raise SettingError(f"unknown setting {name!r}; known: {', '.join(self.settings)}",
                               data={"setting": name, "problem": "unknown setting"}) from None

    def flag(self, name: str) -> str:
        """The CLI option of a setting (``--face-scale``)."""
        return str(self.entry(name)["cli"])

    def default(self, name: str) -> Any:
        return self.entry(name).get("default")

    def normalised(self, name: str, value: Any) -> Any:
        """``value`` in the setting's type, so equal settings compare (and hash) equal: 5 and 5.0 for a float,
        a list for ``"rgba,mask"``; None stays None (the engine's default)."""
        entry = self.entry(name)
        if value is None:
            return None
        kind = entry.get("type")
        try:
            if kind == "float":
                return float(value)
            if kind == "int":
                return int(value)
        except (TypeError, ValueError):
            raise SettingError(f"{name} {value}: must be a number", data={
                "setting": name, "value": value, "problem": "must be a number"}) from None
        if kind == "list":
            items = value.split(",") if isinstance(value, str) else list(value)
            return sorted({str(item).strip() for item in items if str(item).strip()})
        return str(value).strip()

    def cli_value(self, name: str, value: Any) -> str:
        """How the CLI takes a value: a comma list for lists, the number or text as written otherwise."""
        if self.entry(name).get("type") == "list" and not isinstance(value, str):
            return ",".join(str(item) for item in value)
        if isinstance(value, float) and value % 1 == 0:
            return str(int(value))
        return str(value)


def read_schema(exe: str | None = None, timeout: float = 120.0) -> Schema:
    """The schema printed by ``dfl-vfx schema`` (the engine found as :func:`dfl_host.locate.find_engine` does)."""
    command = [find_engine(exe), "schema"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise EngineError(f"{command[0]} schema did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise EngineError(f"{command[0]}: cannot run ({exc.strerror or exc})") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise EngineError(f"{command[0]} schema failed (exit {done.returncode}): {last}")
    try:
        return Schema(json.loads(done.stdout))
    except ValueError:
        raise EngineError(f"{command[0]} schema printed no JSON; is it a dfl-vfx engine?") from None
