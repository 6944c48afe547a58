"""Global options typed after the subcommand (``reasonrec data --data DIR``).

Click reads a group's options only before its subcommand, but users type
options where they think of them. :class:`GlobalOptionsGroup` moves the
top-level options (``--config``, ``--data``, ``--data-dir``, ``--device``)
found after the subcommand to the front, unless that subcommand defines an
option of the same name itself (``bench reference --device`` means where the
references train, not the studio's device).
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

# Typer vendors its own copy of click, so commands are told apart by what they
# have (groups have subcommands, options have ``opts``), not by click's classes.


def _is_group(command: Any) -> bool:
    return hasattr(command, "get_command")


def _options(command: Any) -> list[Any]:
    return [param for param in command.params if getattr(param, "param_type_name", "") == "option"]


def _option_names(command: Any) -> set[str]:
    names: set[str] = set()
    for option in _options(command):
        names.update(option.opts)
        names.update(option.secondary_opts)
    return names


def _takes_value(group: Any, name: str) -> bool:
    return any(name in option.opts and not option.is_flag for option in _options(group))


def hoist_global_options(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """``args`` with the group's own options moved before the subcommand path.

    Args:
        group: the top-level group, whose options are the global ones.
        ctx: its context (to look up subcommands).
        args: the command line after the program name.
    """
    global_names = _option_names(group) - {"--help"}
    command = group
    index = 0
    # Walk down the subcommand path, stepping over options placed before it.
    while index < len(args) and _is_group(command):
        token = args[index]
        if token == "--":
            return args
        if token.startswith("-"):
            name = token.split("=", 1)[0]
            step = 2 if "=" not in token and _takes_value(group, name) else 1
            index += step
            continue
        found = command.get_command(ctx, token)
        if found is None:
            return args   # click reports the unknown command itself
        command = found
        index += 1
    if _is_group(command):
        return args
    own = _option_names(command)
    hoisted: list[str] = []
    kept = args[:index]
    rest = args[index:]
    position = 0
    while position < len(rest):
        token = rest[position]
        if token == "--":
            kept.extend(rest[position:])
            break
        name = token.split("=", 1)[0]
        if name in global_names and name not in own:
            width = 1 if "=" in token or not _takes_value(group, name) else 2
            hoisted.extend(rest[position:position + width])
            position += width
            continue
        kept.append(token)
        position += 1
    return hoisted + kept


class GlobalOptionsGroup(TyperGroup):
    """The ``reasonrec`` group: global options are accepted before or after the subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, ctx, list(args)))
