"""Command groups that import a command's module only when the command is used.

``pano360 --help`` lists every command from the short help strings kept here, so it imports
neither the command modules nor torch; running ``pano360 faces ...`` (or asking for its help)
imports ``pano360.cli._faces`` then.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from difflib import get_close_matches
from typing import ClassVar

import typer
import typer.main
from typer.core import TyperGroup

__all__ = ["CONTEXT", "LazyCommand", "LazyGroup"]

#: Context settings of every command: -h as --help, help text up to 100 columns wide.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives: ``attribute`` of module ``pano360.cli<module>`` is a command
    function or a :class:`typer.Typer` group; ``short_help`` is its line in the group's help."""

    module: str
    attribute: str
    short_help: str


def _load(name: str, spec: LazyCommand):
    obj = getattr(importlib.import_module(spec.module, __package__), spec.attribute)
    if not isinstance(obj, typer.Typer):
        single = typer.Typer(add_completion=False, rich_markup_mode=None)
        single.command(name, short_help=spec.short_help, context_settings=CONTEXT)(obj)
        obj = single
    command = typer.main.get_command(obj)
    command.name = name
    command.short_help = spec.short_help
    return command


class LazyGroup(TyperGroup):
    """A typer group whose commands, listed in the class attribute ``lazy`` (name ->
    :class:`LazyCommand`, in help order), are imported when first looked up."""

    lazy: ClassVar[dict[str, LazyCommand]] = {}

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*self.commands, *(n for n in self.lazy if n not in self.commands)]

    def get_command(self, ctx: typer.Context, cmd_name: str):
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.commands[cmd_name] = _load(cmd_name, self.lazy[cmd_name])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: typer.Context, formatter) -> None:
        # The short help of commands not imported yet comes from ``lazy``: listing the
        # commands must not import them.
        rows = [
            (n, self.lazy[n].short_help if n in self.lazy else self.commands[n].short_help or "")
            for n in self.list_commands(ctx)
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as e:
            # TyperGroup suggests among the commands imported so far; suggest among all.
            message = getattr(e, "message", None)
            if args and isinstance(message, str) and "Did you mean" not in message:
                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    e.message = (
                        f"{message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
                    )
            raise
