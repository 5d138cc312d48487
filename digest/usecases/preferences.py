"""A subscriber's preferences: validation of what people give us, and the CSV form. No I/O.

Every check raises UsageError (or InterestError, positioned) with what is wrong and how to fix it.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email

from digest.errors import UsageError
from digest.model.subscriber import DAY_NAMES, DAYS, FREQUENCIES, STATUSES
from digest.score.interests import InterestError, parse_interests

MAX_PAPERS_LIMIT = 100


@dataclass
class Preferences:
    """What a subscriber chooses; the columns of the CSV form, in order."""

    email: str
    status: str = "pending"
    interests: str = ""
    timezone: str = "UTC"
    send_hour: int = 7
    frequency: str = "daily"
    weekly_day: str = ""
    max_papers: int = 10
    min_score: float = 0.0
    trending_section: bool = True

    def validated(self) -> Preferences:
        """A copy with every field checked and normalised; raises UsageError naming the field."""
        return Preferences(
            email=normalise_email(self.email),
            status=_choice("status", self.status, STATUSES),
            interests=check_interests(self.interests),
            timezone=check_timezone(self.timezone),
            send_hour=_bounded_int("send hour", self.send_hour, 0, 23),
            frequency=_choice("frequency", self.frequency, FREQUENCIES),
            weekly_day=_weekly_day(self.frequency, self.weekly_day),
            max_papers=_bounded_int("maximum papers", self.max_papers, 1, MAX_PAPERS_LIMIT),
            min_score=_min_score(self.min_score),
            trending_section=_boolean(self.trending_section),
        )


COLUMNS = tuple(field.name for field in fields(Preferences))


def normalise_email(address: str) -> str:
    """The address in the one form we store (lower case), or UsageError saying what is wrong."""
    try:
        checked = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise UsageError(f"{address!r} is not a valid email address: {exc}") from None
    return checked.normalized.lower()


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = sorted(zone for zone in available_timezones() if name.lower() in zone.lower())[:3]
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UsageError(
            f"Unknown time zone {name!r}: use an IANA name such as Europe/Paris.{hint}"
        ) from None
    return name


def check_interests(text: str) -> str:
    """The interests, unchanged, once they parse; raises InterestError with line and column."""
    for number, line in enumerate(text.splitlines(), 1):
        for column, char in enumerate(line, 1):
            if char != "\t" and unicodedata.category(char) in ("Cc", "Cs"):
                raise InterestError(number, column, f"remove the control character U+{ord(char):04X}")
    parse_interests(text)
    return text.strip()


def _choice(label: str, value: str, allowed: tuple[str, ...]) -> str:
    value = str(value).strip().lower()
    if value not in allowed:
        raise UsageError(f"Unknown {label} {value!r}; use one of: {', '.join(allowed)}.")
    return value


def _bounded_int(label: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"The {label} must be a whole number from {low} to {high}, not {value!r}.") from None
    if not low <= number <= high:
        raise UsageError(f"The {label} must be from {low} to {high}, not {number}.")
    return number


def _min_score(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"The minimum score must be a number, not {value!r}.") from None
    if not 0 <= number <= 1000:
        raise UsageError(f"The minimum score must be from 0 to 1000, not {number:g}.")
    return number


def _weekly_day(frequency: str, day: str) -> str:
    given = (day or "").strip().lower()
    if str(frequency).strip().lower() != "weekly":
        return ""
    day = given[:3]
    if day not in DAYS or not DAY_NAMES[DAYS.index(day)].startswith(given):
        raise UsageError(f"A weekly digest needs a day: one of {', '.join(DAYS)}.")
    return day


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y", "on"):
        return True
    if text in ("0", "false", "no", "n", "off", ""):
        return False
    raise UsageError(f"Expected yes or no, not {value!r}.")


def to_csv(rows: Iterable[Preferences]) -> str:
    """CSV with a header row; ``from_csv`` reads it back unchanged."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**asdict(row), "trending_section": "yes" if row.trending_section else "no"})
    return out.getvalue()


def from_csv(text: str) -> tuple[list[tuple[int, str, dict[str, str]]], list[tuple[int, str]]]:
    """The rows, as (line number, normalised email, the other non-empty values given), and a
    (line number, problem) per row that cannot be read: a row without an address, with more values
    than the header, or repeating an address. Columns left out or empty are not in the dict, so an
    update changes only what the file gives. Raises UsageError for an unknown or repeated column.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "email" not in header:
        raise UsageError(f"The CSV needs a header row with an 'email' column; columns: {', '.join(COLUMNS)}.")
    unknown = [name for name in header if name not in COLUMNS]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if unknown or repeated:
        problem = (
            f"unknown columns {', '.join(unknown)}" if unknown else f"repeated columns {', '.join(repeated)}"
        )
        raise UsageError(f"The CSV header has {problem}; known columns: {', '.join(COLUMNS)}.")
    seen: dict[str, int] = {}
    rows: list[tuple[int, str, dict[str, str]]] = []
    problems: list[tuple[int, str]] = []
    for row in reader:
        line = reader.line_num
        if None in row:
            problems.append((line, "more values than the header has columns."))
            continue
        values = {key: value for key, value in row.items() if value not in (None, "")}
        address = values.pop("email", "")
        if not address.strip():
            problems.append((line, "the email is empty."))
            continue
        try:
            email = normalise_email(address)
        except UsageError as exc:
            problems.append((line, str(exc)))
            continue
        if email in seen:
            problems.append((line, f"{email} is already on line {seen[email]}."))
            continue
        seen[email] = line
        rows.append((line, email, values))
    return rows, problems
