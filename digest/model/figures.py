"""A paper's public figures at one moment: what its metric snapshots record and scoring reads."""

from __future__ import annotations

from typing import NamedTuple


class Figures(NamedTuple):
    """Upvotes, comments and GitHub stars, and the paper's place in Hugging Face's trending order
    (1 is first; None when no source ranks papers by trending, or it has left that list)."""

    upvotes: int | None = None
    comments: int | None = None
    stars: int | None = None
    trending_rank: int | None = None
