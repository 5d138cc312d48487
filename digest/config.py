"""Typed settings: ``DIGEST_*`` environment variables over an optional TOML file.

Precedence, highest first: environment, TOML file (``--config PATH`` or ``DIGEST_CONFIG``), defaults.
The TOML file uses the field names below as top-level keys (``database_url = "..."``).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from digest import __version__
from digest.errors import ConfigError, MessageError
from digest.model.address import checked_address
from digest.model.network import parse_networks
from digest.store.urls import check_database_url, masked_url, sqlite_file

CONFIG_ENV = "DIGEST_CONFIG"
DEFAULT_CONTACT_URL = "https://github.com/digest-project/digest"
MAX_NAME = 60
_LOCAL_ADDRESS = re.compile(r"[A-Za-z0-9._+-]+@localhost")


class Settings(BaseSettings):
    """Every setting of digest, with its default. The README's settings table mirrors this class."""

    model_config = SettingsConfigDict(env_prefix="DIGEST_", extra="forbid", validate_default=True)

    database_url: SecretStr = Field(
        SecretStr("sqlite:///digest.db"),
        description="SQLAlchemy URL: SQLite by default, postgresql+psycopg://user:pw@host/db in production.",
    )
    contact_url: str = Field(
        DEFAULT_CONTACT_URL,
        description="Named in the User-Agent of every request so source operators can reach you.",
    )
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to open a connection to a source.")
    read_timeout: float = Field(20.0, gt=0, description="Seconds to wait for each chunk of a response.")
    fetch_deadline: float = Field(
        25.0, gt=0, description="Seconds one fetch may take in all, every phase and retry included."
    )
    fetch_allowed_networks: str = Field(
        "",
        description="Private networks sources may be fetched from (comma-separated, e.g. 10.0.0.0/8).",
    )
    max_response_bytes: int = Field(20_000_000, gt=0, description="Largest response body accepted, in bytes.")
    fetch_retries: int = Field(3, ge=0, le=10, description="Retries after a 5xx, 429 or connection error.")
    retry_backoff: float = Field(
        1.0, ge=0, description="First retry delay in seconds; doubles each retry, with jitter."
    )
    max_retry_after: float = Field(
        120.0, ge=0, description="Longest Retry-After (seconds) honoured; longer gives up."
    )
    host_min_interval: float = Field(1.0, ge=0, description="Seconds between two requests to the same host.")
    arxiv_min_interval: float = Field(
        3.0, ge=3.0, description="Seconds between requests to arXiv hosts (arXiv's terms ask for at least 3)."
    )
    arxiv_api_url: str = Field(
        "https://export.arxiv.org/api/query",
        description="The arXiv API that `import-library --fetch` asks for papers by id.",
    )
    respect_robots_txt: bool = Field(
        True, description="Fetch and obey each host's robots.txt (cached per run)."
    )
    log_level: str = Field("WARNING", description="Python logging level: DEBUG, INFO, WARNING, ERROR.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text, or as one JSON object each (for log collectors)."
    )
    title_weight: float = Field(2.0, ge=0, description="BM25F weight of a match in the title.")
    abstract_weight: float = Field(1.0, ge=0, description="BM25F weight of a match in the abstract.")
    bm25_k1: float = Field(1.2, gt=0, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation (0 = none, 1 = full).")
    relevance_weight: float = Field(1.0, ge=0, description="Weight of relevance in the final score.")
    trending_weight: float = Field(0.5, ge=0, description="Weight of the trending signal in the final score.")
    upvotes_weight: float = Field(1.0, ge=0, description="Weight of ln(1 + upvotes) in the trending signal.")
    comments_weight: float = Field(
        0.5, ge=0, description="Weight of ln(1 + comments) in the trending signal."
    )
    stars_weight: float = Field(
        0.25, ge=0, description="Weight of ln(1 + GitHub stars) in the trending signal."
    )
    trending_rank_weight: float = Field(
        2.0,
        ge=0,
        description="Weight of 1 / rank in the trending signal, for a paper on Hugging Face's trending "
        "list (a source whose URL asks for sort=trending).",
    )
    feedback_lift: float = Field(
        1.0,
        ge=0,
        description="How far a paper near one the reader liked rises: relevance x (1 + lift x nearness).",
    )
    feedback_sink: float = Field(
        1.0,
        ge=0,
        description="How far a paper near a disliked one sinks (a matched one keeps at least a quarter).",
    )
    related_relevance: float = Field(
        4.0,
        ge=0,
        description="Relevance of a related paper (matched by no line) as near a liked one as can be.",
    )
    mail_transport: Literal["auto", "smtp", "outbox", "console"] = Field(
        "auto", description="Where mail goes: auto is smtp when smtp_url is set, else the file outbox."
    )
    smtp_url: SecretStr | None = Field(
        None,
        description="smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 (TLS at once).",
    )
    smtp_timeout: float = Field(30.0, gt=0, description="Seconds any one SMTP exchange may take.")
    smtp_data_timeout: float = Field(
        600.0, gt=0, description="Seconds to wait for the reply to a message's end (RFC 5321: 10 minutes)."
    )
    smtp_connections: int = Field(4, ge=1, le=64, description="SMTP connections kept open and used at once.")
    smtp_rate_limit: float = Field(0.0, ge=0, description="Most messages per second over SMTP; 0 = no limit.")
    outbox_dir: Path = Field(Path("outbox"), description="Folder of the file outbox (one .eml per message).")
    mail_from: str = Field("digest@localhost", description="Sender address of the digest mail.")
    mail_from_name: str = Field("Paper digest", description="Sender name shown to subscribers.")
    base_url: str = Field(
        "http://localhost:8000",
        description="Public address of the web front; links in mail (unsubscribe, preferences) start here.",
    )
    commands_address: str | None = Field(
        None,
        description="An address that takes commands by mail (subscribe, add, del, list, pause, resume, "
        "cancel, help), as arXiv's lists do; answers come from it. Unset: commands by mail are off.",
    )
    inbound_answers_per_day: int = Field(
        5,
        ge=1,
        le=100,
        description="Answers by mail (to commands, to an unsubscribe) one address gets in a day at most.",
    )
    inbound_listen: str | None = Field(
        None,
        description="HOST:PORT where `digest serve` (and `digest inbound serve`) takes mail from an MTA "
        "by LMTP, e.g. 127.0.0.1:8024. Unset: `digest serve` takes no mail.",
    )
    inbound_protocol: Literal["lmtp", "smtp"] = Field(
        "lmtp", description="What the inbound listener speaks: lmtp (an MTA's transport) or smtp."
    )
    inbound_imap_url: SecretStr | None = Field(
        None,
        description="imaps://user:password@host:993/FOLDER (TLS), or imap://…:143/FOLDER (STARTTLS): a "
        "mailbox `digest inbound fetch` (and `digest serve`, every inbound_imap_interval) reads; each "
        "message handled goes to inbound_imap_done, one that cannot be read to inbound_imap_failed.",
    )
    inbound_imap_done: str = Field("digest-done", min_length=1, description="Folder for messages handled.")
    inbound_imap_failed: str = Field(
        "digest-failed", min_length=1, description="Folder for messages that could not be read (kept there)."
    )
    inbound_imap_interval: float = Field(
        60.0, ge=5, description="Seconds between `digest serve`'s reads of inbound_imap_url."
    )
    inbound_max_bytes: int = Field(
        10_000_000,
        ge=10_000,
        description="Largest incoming message read (a report, a command); larger ones are refused.",
    )
    bounce_address: str | None = Field(
        None,
        description="Where delivery reports go: each digest's envelope sender becomes LOCAL+ID@DOMAIN of it "
        "(VERP; ID is the left part of the message's Message-ID), so a bounce names its delivery. Unset: "
        "mail_from.",
    )
    unsubscribe_mailto: str | None = Field(
        None, description="An address that unsubscribes whoever mails it, added to List-Unsubscribe."
    )
    dkim_selector: str | None = Field(None, description="DKIM selector; with dkim_key_file, mail is signed.")
    dkim_key_file: Path | None = Field(None, description="PEM private key for DKIM signing.")
    send_empty_digest: bool = Field(
        False, description="Send a short 'nothing matched today' note instead of no mail."
    )
    trending_papers: int = Field(
        3, ge=0, le=20, description="Papers in the 'trending today' section (for those who want it)."
    )
    related_papers: int = Field(
        3,
        ge=0,
        le=20,
        description="Related papers (near ones the reader liked, matched by no line) a digest adds.",
    )
    repoll_days: int = Field(
        2,
        ge=0,
        le=7,
        description="Past listing days of a Hugging Face source fetched again each time (current upvotes).",
    )
    hold_for_sources: float = Field(
        3.0,
        ge=0,
        le=24,
        description="Hours a digest due while a source is late or stale waits for it (0: never waits).",
    )
    catch_up_days: int = Field(
        7, ge=1, le=60, description="Days of missed papers a late digest may hold beyond its usual period."
    )
    retry_deadline: float = Field(
        24.0, gt=0, description="Hours a temporarily failed digest is retried before it is given up."
    )
    retry_delay: float = Field(
        300.0, ge=1, description="Seconds before the first retry of a failed digest; doubles, at most 1 h."
    )
    max_hard_bounces: int = Field(
        3, ge=1, description="Permanent failures in a row after which a subscriber is suspended (bounced)."
    )
    claim_batch: int = Field(200, ge=1, le=10_000, description="Digests one sender claims at a time.")
    claim_lease: float = Field(
        600.0, gt=0, description="Seconds a claim lasts; a crashed sender's claims are taken over after it."
    )

    confirm_hours: float = Field(
        72.0, gt=0, description="Hours a sign-up confirmation link stays valid (it works once)."
    )
    link_days: int = Field(
        90, ge=1, description="Days the preferences, unsubscribe and view links in a mail keep working."
    )
    signup_per_client: int = Field(
        10, ge=1, description="Sign-ups a client (IP address) may make per hour on the web front."
    )
    preview_per_client: int = Field(
        60, ge=1, description="Previews a client (IP address) may ask for per hour on the web front."
    )
    signup_per_address: int = Field(
        3, ge=1, le=20, description="Confirmation or manage mails one email address may get per day."
    )
    listen_host: str = Field("127.0.0.1", description="Address `digest serve` listens on.")
    listen_port: int = Field(8000, ge=1, le=65535, description="Port `digest serve` listens on.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies whose X-Forwarded-For/-Proto are trusted (comma-separated IPs, or *).",
    )
    metrics_enabled: bool = Field(False, description="Serve Prometheus metrics at /metrics.")
    fetch_interval: float = Field(
        3600.0, ge=60, description="Seconds between two fetches of a source by `digest serve`."
    )
    send_interval: float = Field(
        120.0, ge=1, description="Seconds between two runs of the sender in `digest serve`."
    )
    fetch_log_days: int = Field(
        90, ge=1, description="Days of fetch log kept; the daily clean-up drops older."
    )
    arxiv_holidays: Annotated[list[date], NoDecode] = Field(
        default_factory=list,
        description="More days without an arXiv announcement (US Eastern dates, comma-separated in the "
        "environment) than the shipped list has.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first, then the TOML values passed in as init arguments by load_settings.
        return env_settings, init_settings

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr) -> SecretStr:
        check_database_url(value.get_secret_value())
        return value

    @field_validator("arxiv_holidays", mode="before")
    @classmethod
    def _split_dates(cls, value: Any) -> Any:
        """``2026-12-24,2026-12-31`` from the environment; a TOML list as it is."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("fetch_allowed_networks")
    @classmethod
    def _check_fetch_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network; give the proxies' addresses, "
                    "comma-separated (e.g. 127.0.0.1,10.0.0.0/8), or *"
                ) from None
        return value

    @field_validator("inbound_listen")
    @classmethod
    def _check_inbound_listen(cls, value: str | None) -> str | None:
        if value is not None:
            listen_address(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("use one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("mail_from", "unsubscribe_mailto", "bounce_address", "commands_address")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if _LOCAL_ADDRESS.fullmatch(value):
            return value
        try:
            normal = validate_email(value, check_deliverability=False, globally_deliverable=False).normalized
            return checked_address(normal)  # what a header can carry: ASCII, the domain in IDNA form
        except EmailNotValidError as exc:
            raise ValueError(f"not an email address ({exc})") from None
        except MessageError:
            raise ValueError("use an address whose part before the @ is ASCII") from None

    @field_validator("mail_from_name")
    @classmethod
    def _check_display_name(cls, value: str) -> str:
        if not value.strip() or any(not char.isprintable() for char in value):
            raise ValueError("give a name of printable characters, no line breaks")
        if len(value) > MAX_NAME:
            raise ValueError(f"give a name of at most {MAX_NAME} characters")
        return value.strip()

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
            raise ValueError("give the web front's address, e.g. https://digest.example.org")
        return value.rstrip("/")

    @field_validator("arxiv_api_url")
    @classmethod
    def _check_arxiv_api_url(cls, value: str) -> str:
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
            raise ValueError(
                "give the API's address without a query, e.g. https://export.arxiv.org/api/query"
            )
        return value

    @field_validator("inbound_imap_url")
    @classmethod
    def _check_imap_url(cls, value: SecretStr | None) -> SecretStr | None:
        return _server_url(
            value,
            ("imap", "imaps"),
            "use imaps://user:password@host:993/INBOX (TLS) or "
            "imap://user:password@host:143/INBOX (STARTTLS)",
            needs_user=True,
        )

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        return _server_url(
            value,
            ("smtp", "smtps"),
            "use smtp://user:password@host:587 (STARTTLS) or smtps://user:password@host:465",
        )

    @property
    def transport(self) -> str:
        """The transport in force: ``mail_transport``, with auto resolved."""
        if self.mail_transport != "auto":
            return self.mail_transport
        return "smtp" if self.smtp_url is not None else "outbox"

    @property
    def mail_domain(self) -> str:
        return self.mail_from.rsplit("@", 1)[1]

    @property
    def user_agent(self) -> str:
        return f"digest/{__version__} (+{self.contact_url})"

    @property
    def db_url(self) -> str:
        return self.database_url.get_secret_value()

    def where(self) -> dict[str, str]:
        """Where things go on this machine, resolved: the mail transport in force (and why, for
        auto), where mail goes, and the database, SQLite files and the outbox as absolute paths."""
        transport = self.transport
        why = ""
        if self.mail_transport == "auto":
            why = " (auto: smtp_url is set)" if transport == "smtp" else " (auto: smtp_url is not set)"
        if transport == "smtp" and self.smtp_url is not None:
            goes = masked_url(self.smtp_url.get_secret_value())
        elif transport == "outbox":
            goes = f"{Path(self.outbox_dir).expanduser().resolve()}/ (one .eml file per mail)"
        else:
            goes = "standard output"
        database = sqlite_file(self.db_url)
        return {
            "mail_transport": transport + why,
            "mail_goes_to": goes,
            "database": str(database) if database else masked_url(self.db_url),
        }

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret (and any password in a URL) masked."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = masked_url(value.get_secret_value())
            shown[name] = value
        return shown


def _server_url(
    value: SecretStr | None, schemes: tuple[str, ...], usage: str, needs_user: bool = False
) -> SecretStr | None:
    """A mail server's URL, checked: one of ``schemes``, a host (and a user when ``needs_user``) and a
    numeric port if any; empty is None. Raises ValueError saying ``usage`` otherwise."""
    if value is None or not value.get_secret_value():
        return None
    parsed = urlsplit(value.get_secret_value())
    if parsed.scheme not in schemes or not parsed.hostname or (needs_user and not parsed.username):
        raise ValueError(usage)
    try:
        parsed.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError("the port is not a number") from None
    return value


def load_settings(config_path: str | os.PathLike[str] | None = None) -> Settings:
    """Build the settings from the environment and the TOML file, if any.

    Raises ConfigError naming the file or variable at fault when a value is invalid or the file is
    missing or malformed.
    """
    path = config_path or os.environ.get(CONFIG_ENV) or None
    values: dict[str, Any] = {}
    if path is not None:
        values = _read_toml(Path(path))
    from_files = _from_files()
    values.update(from_files)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, set(from_files))) from None


# DIGEST_ variables that are not settings: the config file's path, and the test suite's switches.
OTHER_VARIABLES = frozenset({CONFIG_ENV, "DIGEST_UPDATE_GOLDEN"})
TEST_PREFIX = "DIGEST_TEST_"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each DIGEST_* variable in ``environ`` that names no setting (and is ignored),
    with the nearest name that does: a misspelt variable must not go unnoticed, as a misspelt
    TOML key does not."""
    known = {f"DIGEST_{name.upper()}" for name in Settings.model_fields}
    known |= {f"{name}_FILE" for name in known} | OTHER_VARIABLES
    warnings = []
    for variable in sorted(environ):
        if not variable.startswith("DIGEST_") or variable in known or variable.startswith(TEST_PREFIX):
            continue
        nearest = difflib.get_close_matches(variable.upper(), sorted(known), n=1, cutoff=0.7)
        hint = f"; did you mean {nearest[0]}?" if nearest else " (README: Settings lists them)."
        warnings.append(f"{variable} is not a digest setting and is ignored{hint}")
    return warnings


def _from_files() -> dict[str, str]:
    """Settings given as ``DIGEST_<NAME>_FILE=path`` (Docker and Kubernetes secrets): the file's
    text, without its final line break. A ``DIGEST_<NAME>`` variable set as well wins. Raises
    ConfigError naming the variable when the file cannot be read."""
    values = {}
    for name in Settings.model_fields:
        variable = f"DIGEST_{name.upper()}_FILE"
        where = os.environ.get(variable)
        if not where or f"DIGEST_{name.upper()}" in os.environ:
            continue
        try:
            values[name] = Path(where).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise ConfigError(
                f"{variable} names {where}, which cannot be read: {reason}. Fix the path."
            ) from None
    return values


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {path} does not exist. Fix the path given to --config or {CONFIG_ENV}, or unset it."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"Config file {path} is not valid TOML: {exc}. Fix the file and try again."
        ) from None
    except OSError as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc.strerror}.") from None


def _describe(
    exc: ValidationError, path: str | os.PathLike[str] | None, from_files: set[str] = frozenset()
) -> str:
    where = f"the environment or {path}" if path else "the environment"
    lines = [f"Invalid settings (from {where}):"]
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":
            known = ", ".join(Settings.model_fields)
            lines.append(f"  {name}: unknown setting. Known settings: {known}.")
            continue
        env = f"DIGEST_{name.upper()}" + ("_FILE" if name in from_files else "")
        field = Settings.model_fields.get(name)
        secret = field is not None and "SecretStr" in str(field.annotation)
        got = "" if secret else f" (got {error.get('input')!r})"
        lines.append(f"  {name} ({env}): {error['msg'].removeprefix('Value error, ')}{got}.")
    lines.append("Fix these values; once they are valid, `digest check-config` shows every setting.")
    return "\n".join(lines)


def listen_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT`` too) as a host and a port; raises ValueError saying the form."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT; give one such as 127.0.0.1:8024")
    return host, int(port)
