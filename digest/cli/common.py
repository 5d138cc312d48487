"""What every command group shares: the settings and the use cases' context, made on first use,
expected failures turned into a message and an exit code, and output helpers.

Only click is imported here: a command imports what it needs when it runs, so ``digest --help``
and ``digest healthcheck`` load no scoring or database code.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import click

from digest.errors import DigestError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from digest.config import Settings
    from digest.usecases.context import Context


class App:
    """What commands share: settings (with logging set up from them) and the use cases' context."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path

    @cached_property
    def settings(self) -> Settings:
        from digest.config import load_settings

        settings = load_settings(self.config_path)
        handler = logging.StreamHandler()
        if settings.log_format == "json":
            from pythonjsonlogger.json import JsonFormatter

            handler.setFormatter(
                JsonFormatter(
                    "%(levelname)s %(name)s %(message)s", timestamp=True, rename_fields={"levelname": "level"}
                )
            )
        else:
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=settings.log_level, handlers=[handler])
        return settings

    @cached_property
    def context(self) -> Context:
        """The use cases' context on the real clock (a command's --now is passed to the use case)."""
        from digest.usecases.context import Context

        return Context(self.settings)


class DigestGroup(click.Group):
    """A click group that turns expected failures (DigestError) into a message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            click.echo(f"{click.style('error:', fg='red', bold=True)} {exc}", err=True)
            ctx.exit(exc.exit_code)


pass_app = click.make_pass_decorator(App)


@cache
def out() -> Console:
    """The console of standard output."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


@cache
def err() -> Console:
    """The console of standard error."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def escape(text: str) -> str:
    """``text`` safe to print with rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def table(*columns: str) -> Any:
    from rich.table import Table

    return Table(*columns, box=None)


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. {option} 2026-11-20."
        ) from None


def parse_now(value: str | None) -> datetime | None:
    """An ISO 8601 ``--now`` as aware UTC (no zone means UTC); None when not given."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--now {value!r} is not a date and time; use ISO 8601, e.g. --now 2026-11-24T07:30:00+01:00."
        ) from None
    from digest.usecases.terms import utc

    return utc(moment)


def now_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """The --now option: act as if it were that time."""
    return click.option(
        "--now", "now_text", help="Act as if it were this time (ISO 8601; no zone means UTC)."
    )(command)


def now_of(app: App, now_text: str | None) -> datetime:
    """The time a command acts at: --now, or the context's clock."""
    return parse_now(now_text) or app.context.now()


def print_json_lines(rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=str))


def print_figures(figures: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(figures))
        return
    shown = table("figure", "value")
    for name, value in figures.items():
        shown.add_row(name, f"{value:,.2f}" if isinstance(value, float) else str(value))
    out().print(shown)
