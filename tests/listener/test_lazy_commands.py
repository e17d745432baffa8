"""listener.cli imports a command's module only when that command runs (COMMANDS says
where each lives), and 'listener --help' lists COMMANDS' short helps without importing
them: they must say what the commands' own docstrings say."""

from __future__ import annotations

import click

from listener.cli import COMMANDS, LazyGroup, cli


def commands_section(group: click.Group, width: int) -> str:
    ctx = click.Context(group, terminal_width=width, max_content_width=width)
    formatter = ctx.make_formatter()
    group.format_commands(ctx, formatter)
    return formatter.getvalue()


def test_each_command_lives_where_commands_says():
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command), name
        assert command.name == name, f"COMMANDS calls {command.name!r} {name!r}"
    assert cli.get_command(ctx, "no-such-command") is None


def test_help_lists_what_each_command_says():
    ctx = click.Context(cli)
    loaded = click.Group("listener", commands={name: cli.get_command(ctx, name) for name in COMMANDS})
    for width in (60, 100, 400):  # short helps are cut to the width: compare cut and whole
        lazy = commands_section(LazyGroup("listener"), width)  # nothing loaded: COMMANDS' text
        assert lazy == commands_section(loaded, width), "a short help in listener.cli.COMMANDS is out of date"
