"""The lab's state file (`state.json` in the lab directory): what `up` created, for `down` and `status`.

`up` saves it after every namespace and daemon it creates, so that `down` can remove
everything even when `up` failed half-way or was killed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
MARKER = ".mecsa-lab"  # marks a directory as the lab's own, so `down` may delete it


class LabError(RuntimeError):
    """The lab could not be brought up, or is not up; the message says why and where the logs are."""


class LabState:
    """The recorded state of one lab. A thin, always-saved wrapper over a JSON object."""

    def __init__(self, directory: Path, data: dict[str, Any]) -> None:
        self.directory = directory
        self.data = data

    @classmethod
    def create(cls, directory: Path, prefix: str) -> LabState:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)  # daemons that drop privileges must reach their files
        (directory / MARKER).write_text("created by mecsa lab up; removed by mecsa lab down\n")
        state = cls(
            directory,
            {
                "directory": str(directory),
                "prefix": prefix,
                "namespaces": [],
                "daemons": [],
                "complete": False,
            },
        )
        state.save()
        return state

    @classmethod
    def load(cls, directory: Path) -> LabState | None:
        try:
            data = json.loads((directory / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        return cls(directory, data)

    def save(self) -> None:
        """Write atomically: a crash never leaves a half-written state file."""
        path = self.directory / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True))
        tmp.replace(path)

    def add_namespace(self, name: str) -> None:
        self.data["namespaces"].append(name)
        self.save()

    def add_daemon(self, name: str, node: str, pid: int) -> None:
        self.data["daemons"].append({"name": name, "node": node, "pid": pid})
        self.save()

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    @property
    def prefix(self) -> str:
        return str(self.data["prefix"])

    @property
    def namespaces(self) -> list[str]:
        return list(self.data["namespaces"])

    def ns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    @property
    def domains(self) -> dict[str, Any]:
        return dict(self.data.get("domains", {}))
