"""The README documents every setting and command, and CI runs the README's test command."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli import cli
from digest.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "digest") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, path))
        else:
            paths.append(path)
    return paths


def test_every_setting_is_in_the_readme() -> None:
    missing = [name for name in Settings.model_fields if f"`{name}`" not in README]
    assert missing == []


def test_every_command_is_in_the_readme() -> None:
    documented = README.replace("/ `disable", "/ `digest sources disable").replace(
        "/ `remove", "/ `digest sources remove"
    )
    missing = [path for path in command_paths(cli) if f"`{path}" not in documented]
    assert missing == []


def test_every_command_help_has_an_example() -> None:
    lacking = []
    for path in command_paths(cli):
        command: click.Command = cli
        for part in path.split()[1:]:
            command = command.commands[part]  # type: ignore[attr-defined]
        if "Example" not in (command.help or ""):
            lacking.append(path)
    assert lacking == []


def test_ci_runs_the_readme_test_command() -> None:
    blocks = README.split("```sh\n")
    test_command = blocks[2].split("\n```", 1)[0].strip()
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_contents_at_the_top_list_every_section() -> None:
    top = README.split("\n## ", 1)[0]
    sections = [line[3:] for line in README.splitlines() if line.startswith("## ")]
    missing = [section for section in sections if f"[{section}](#" not in top]
    assert sections and missing == []
