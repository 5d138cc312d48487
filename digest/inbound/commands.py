"""The commands a message to ``commands_address`` gives, arXiv style: one per line.

``subscribe`` (the lines after it, up to the next command, are the interests), ``add LINE``,
``del LINE``, ``list``, ``pause``, ``resume``, ``cancel``, ``help``, and ``confirm CODE`` (what a
reply to a confirmation request carries). The subject counts as the first line when it starts
with a command ("Re: confirm CODE" does). Reading stops at a signature ("-- "), at ``end``, and
at the quoted text of a reply; quoted lines (">") are skipped, blank ones too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.score.interests import InterestError, parse_interests

VERBS = ("subscribe", "add", "del", "list", "pause", "resume", "cancel", "help", "confirm")
CHANGES = ("subscribe", "add", "del", "pause", "resume", "cancel")  # what needs the address confirmed
MAX_COMMANDS = 50
MAX_UNKNOWN = 5  # lines that are no command before reading stops (a letter, not a list of commands)
_REPLY = re.compile(r"^\s*((re|aw|sv|fwd?)\s*:\s*)+", re.IGNORECASE)
_QUOTE_INTRO = re.compile(r".*\bwrote:\s*$|-+\s*original message\s*-+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Command:
    """One command: its ``verb``, the rest of its line (``argument``), and for ``subscribe`` the
    interest lines after it."""

    verb: str
    argument: str = ""
    lines: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The command as written (for quoting in an answer)."""
        head = f"{self.verb} {self.argument}".strip()
        return "\n".join((head, *self.lines))


@dataclass(frozen=True, slots=True)
class Script:
    """The commands of one message, in order, and the lines that were none (``unknown``)."""

    commands: tuple[Command, ...]
    unknown: tuple[str, ...]


def read_commands(subject: str, text: str) -> Script:
    """The commands in a message's subject and text (see the module)."""
    commands: list[Command] = []
    unknown: list[str] = []
    subject = _REPLY.sub("", subject).strip()
    lines = ([subject] if _verb(subject) else []) + text.splitlines()
    for raw in lines:
        line = " ".join(raw.split())
        if raw.rstrip("\r") == "-- " or line.lower() == "end" or _QUOTE_INTRO.fullmatch(line):
            break
        if not line or line.startswith(">"):
            continue
        verb = _verb(line)
        if verb is not None:
            if len(commands) == MAX_COMMANDS:
                break
            commands.append(Command(verb, line[len(verb) :].strip()))
        elif commands and commands[-1].verb == "subscribe":
            last = commands[-1]
            commands[-1] = Command(last.verb, last.argument, (*last.lines, line))
        else:
            unknown.append(line)
            if len(unknown) == MAX_UNKNOWN:
                break
    return Script(tuple(commands), tuple(unknown))


def _verb(line: str) -> str | None:
    word = line.split(" ", 1)[0].lower() if line else ""
    return word if word in VERBS else None


@dataclass(frozen=True, slots=True)
class Applied:
    """What changes would make of a subscription: the ``interests`` and ``status`` after them,
    and one line per command saying what it did or why it did nothing."""

    interests: str
    status: str
    done: tuple[str, ...]
    changed: bool


# pause and resume: the status each moves from, to, and what the answer says of it
_MOVES = {
    "pause": ("active", "paused", "paused: no digest until you send resume"),
    "resume": ("paused", "active", "resumed: the digest comes again"),
}


def apply_changes(interests: str, status: str, commands: tuple[Command, ...]) -> Applied:
    """Carry out ``commands`` (those of CHANGES) on an ``interests`` text and a ``status``
    (active, paused, …). A line that does not parse as an interest is refused, saying why."""
    lines = [line for line in interests.splitlines() if line.strip()]
    done: list[str] = []
    start = (list(lines), status)
    for command in commands:
        if command.verb in ("subscribe", "add"):
            for line in command.lines if command.verb == "subscribe" else (command.argument,):
                done.append(_add(lines, line))
        elif command.verb == "del":
            done.append(_delete(lines, command.argument))
        elif command.verb in _MOVES:
            before, after, said = _MOVES[command.verb]
            if status == before:
                status = after
                done.append(said)
            else:
                done.append(f"{command.verb}: nothing to do (the subscription is {status})")
        elif command.verb == "cancel":
            status = "unsubscribed"
            done.append("cancelled: no more digests; send subscribe to come back")
    return Applied("\n".join(lines), status, tuple(done), (lines, status) != start)


def _add(lines: list[str], line: str) -> str:
    if not line:
        return "add: give the interest after it (add diffusion models)"
    if _key(line) in {_key(known) for known in lines}:
        return f"add {line}: in your interests already"
    try:
        parse_interests("\n".join((*lines, line)))
    except InterestError as exc:
        return f"add {line}: not added, {exc.reason}"
    lines.append(line)
    return f"added: {line}"


def _delete(lines: list[str], line: str) -> str:
    for known in lines:
        if _key(known) == _key(line):
            lines.remove(known)
            return f"deleted: {known}"
    return f"del {line}: not in your interests (send list to see them)"


def _key(line: str) -> str:
    return " ".join(line.split()).casefold()
