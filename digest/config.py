"""Typed settings: ``DIGEST_*`` environment variables over an optional TOML file.

Precedence, highest first: environment, TOML file (``--config PATH`` or ``DIGEST_CONFIG``), defaults.
The TOML file uses the field names below as top-level keys (``database_url = "..."``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from digest import __version__
from digest.errors import ConfigError

CONFIG_ENV = "DIGEST_CONFIG"
DEFAULT_CONTACT_URL = "https://github.com/digest-project/digest"


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
    read_timeout: float = Field(30.0, gt=0, description="Seconds to wait for each chunk of a response.")
    fetch_deadline: float = Field(
        60.0, gt=0, description="Seconds one fetch may take in all, retries included."
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
    respect_robots_txt: bool = Field(
        True, description="Fetch and obey each host's robots.txt (cached per run)."
    )
    log_level: str = Field("WARNING", description="Python logging level: DEBUG, INFO, WARNING, ERROR.")
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
        try:
            make_url(value.get_secret_value())
        except ArgumentError as exc:
            raise ValueError(
                "not a database URL; use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
            ) from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("use one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def user_agent(self) -> str:
        return f"digest/{__version__} (+{self.contact_url})"

    @property
    def db_url(self) -> str:
        return self.database_url.get_secret_value()

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret (and any password in a URL) masked."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = _mask_url(value.get_secret_value())
            shown[name] = value
        return shown


_SECRET_QUERY_KEYS = ("password", "passwd", "pass", "secret", "token", "sslpassword")


def _mask_url(raw: str) -> str:
    try:
        url = make_url(raw)
    except ArgumentError:
        return "********"
    secret_keys = [key for key in url.query if key.lower() in _SECRET_QUERY_KEYS]
    if secret_keys:
        url = url.update_query_dict({key: "***" for key in secret_keys})
    if url.password is None and not secret_keys:
        return raw
    return url.render_as_string(hide_password=True)


def load_settings(config_path: str | os.PathLike[str] | None = None) -> Settings:
    """Build the settings from the environment and the TOML file, if any.

    Raises ConfigError naming the file or variable at fault when a value is invalid or the file is
    missing or malformed.
    """
    path = config_path or os.environ.get(CONFIG_ENV) or None
    values: dict[str, Any] = {}
    if path is not None:
        values = _read_toml(Path(path))
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None


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


def _describe(exc: ValidationError, path: str | os.PathLike[str] | None) -> str:
    where = f"the environment or {path}" if path else "the environment"
    lines = [f"Invalid settings (from {where}):"]
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":
            known = ", ".join(Settings.model_fields)
            lines.append(f"  {name}: unknown setting. Known settings: {known}.")
            continue
        env = f"DIGEST_{name.upper()}"
        field = Settings.model_fields.get(name)
        secret = field is not None and field.annotation is SecretStr
        got = "" if secret else f" (got {error.get('input')!r})"
        lines.append(f"  {name} ({env}): {error['msg']}{got}.")
    lines.append("Fix these values; `digest check-config` shows the effective settings.")
    return "\n".join(lines)
