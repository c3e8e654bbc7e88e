"""A click group that imports a sub-command's module only when that command is used (issue 20).

`mecsa --help` lists every command with its one-line summary from the registry table, so it
imports none of them; `mecsa assess ...` imports mecsa.cli.assess alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click

from mecsa import helpcache


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives ("module:attribute") and the first paragraph of its help."""

    target: str
    summary: str

    def load(self) -> click.Command:
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command


class LazyGroup(click.Group):
    """A group whose sub-commands are named in a table and imported on first use."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The table's order (the order of `mecsa --help`), then any command added directly."""
        return [*self.lazy_commands, *(name for name in self.commands if name not in self.lazy_commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            command = self.commands[cmd_name] = self.lazy_commands[cmd_name].load()
        return command

    def get_help(self, ctx: click.Context) -> str:
        text = super().get_help(ctx)
        if ctx.parent is None:  # the top level's: kept for the next `mecsa --help` if it is asked for
            helpcache.rendered(text)
        return text

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table's summaries, truncated as click truncates a command's help.

        A command not yet imported is shown through a stand-in with its summary as help: the same
        shortening as the real command's, without importing its module.
        """
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=self.lazy_commands[name].summary)
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
