"""Link tokens: random, at least 128 bits (``secrets``), stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 24  # 192 bits


def new_token() -> tuple[str, str]:
    """A fresh (token for the link, hash to store) pair."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
