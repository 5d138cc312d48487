"""What every command group shares: the settings and the use cases' context, made on first use,
expected failures turned into a message and an exit code, and output helpers.

Only click is imported here: a command imports what it needs when it runs, so ``digest --help``
and ``digest healthcheck`` load no scoring or database code.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, NoReturn

import click

from digest.errors import DigestError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from digest.config import Settings
    from digest.usecases.context import Context

# Escape sequences a terminal acts on: CSI (cursor, colours, clear screen), OSC (window title,
# hyperlinks), DCS/SOS/PM/APC strings, two-character escapes, and their 8-bit C1 forms.
# A string sequence with no terminator loses only its introducer (the rest is shown as text),
# and none runs past a line break or 512 characters.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b\n]{0,512}(?:\x07|\x1b\\)"
    r"|\x1b[PX^_][^\x1b\n]{0,512}\x1b\\"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c\n]{0,512}(?:\x07|\x9c)"
)
# C0 and C1 controls but tab and line feed, and the bidi marks and overrides.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


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
        from digest.config import unknown_variables

        for warning in unknown_variables(os.environ):
            logging.getLogger("digest.config").warning("%s", warning)
        return settings

    def loaded_settings(self) -> Settings | None:
        """The settings, if a command has read them already (None if not, or if they failed)."""
        return self.__dict__.get("settings")

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
            self.fail(ctx, exc)
        except BrokenPipeError:
            reader_gone()
        except Exception as exc:
            app = ctx.find_object(App)
            settings = app.loaded_settings() if app is not None else None
            if settings is None or isinstance(exc, click.exceptions.Exit | click.ClickException):
                raise
            from digest.usecases.faults import database_fault

            fault = database_fault(exc, settings)
            if fault is None:
                raise
            self.fail(ctx, fault)

    @staticmethod
    def fail(ctx: click.Context, exc: DigestError) -> None:
        """Print ``exc`` as one error line and exit with its code."""
        message = terminal_text(str(exc), lines=True)  # it may quote what a source sent
        click.echo(f"{click.style('error:', fg='red', bold=True)} {message}", err=True)
        ctx.exit(exc.exit_code)


pass_app = click.make_pass_decorator(App)


COMPILING = "digest: compiling the ranking kernel; once per machine, it takes several seconds."


def ranking_ready(app: App) -> None:
    """Before a command ranks papers: make the ranking kernel ready, saying so when Numba has to
    compile it (once per machine, several seconds) so that the command does not look hung."""
    app.context.warm_ranking(lambda: err().print(COMPILING, soft_wrap=True))


def reader_gone() -> NoReturn:
    """Stop quietly with status 0 when the reader of standard output went away (`digest parse FILE |
    head -1`), as Unix tools do; what is still buffered goes nowhere instead of failing at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise SystemExit(0)


@cache
def out() -> Console:
    """The console of standard output."""
    from rich.console import Console

    class Output(Console):
        def on_broken_pipe(self) -> None:  # rich's own exits with status 1
            reader_gone()

    return Output(highlight=False, width=None if sys.stdout.isatty() else 200)


@cache
def err() -> Console:
    """The console of standard error."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def escape(text: str) -> str:
    """``text`` safe to print with rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def shown(text: object, *, lines: bool = False) -> str:
    """Outside text (a paper's title, a feed's error) for a rich console: no escape sequences or
    control characters (see ``terminal_text``), and no rich markup."""
    return escape(terminal_text(str(text), lines=lines))


def terminal_text(text: str, *, lines: bool = False) -> str:
    """``text`` with terminal escape sequences, control characters and bidi overrides removed, so
    that a title cannot clear the screen, move the cursor or print a fake prompt. Tabs become
    spaces; line breaks stay only with ``lines`` (else they become spaces)."""
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\t", " ")
    if not lines:
        text = text.replace("\n", " ")
    return _CONTROL.sub("", text)


def json_text(value: Any, **options: Any) -> str:
    """``value`` as JSON for a terminal: text kept whole, but every character that a terminal could
    act on written as a ``\\uXXXX`` escape (which ``json.dumps`` leaves raw beyond ASCII)."""
    encoded = json.dumps(value, ensure_ascii=False, default=str, **options)
    return _CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", encoded)


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
        click.echo(json_text(row))


def print_figures(figures: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(figures))
        return
    shown = table("figure", "value")
    for name, value in figures.items():
        shown.add_row(name, f"{value:,.2f}" if isinstance(value, float) else str(value))
    out().print(shown)
