"""Each source's version of a paper's text, and the authority of the text a paper shows: arXiv (3)
over Hugging Face (2) over any other feed (1), so a lesser source only fills what is missing.
Papers stored before this revision take the authority of the best source that has listed them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rule of digest.model.source.text_authority as it stood at this revision.
_AUTHORITY = {"arxiv-api": 3, "arxiv-rss": 3, "hf-daily": 2, "hf-page": 2}
_HOSTS = {
    "arxiv-api": "arxiv.org",
    "arxiv-rss": "arxiv.org",
    "hf-daily": "huggingface.co",
    "hf-page": "huggingface.co",
}


def _authority(kind: str, url: str) -> int:
    if kind not in _AUTHORITY:
        return 1
    parts = urlsplit(url)
    if parts.scheme.lower() in {"", "file"} or len(parts.scheme) == 1:
        return _AUTHORITY[kind]
    host = (parts.hostname or "").lower().rstrip(".")
    return _AUTHORITY[kind] if host == _HOSTS[kind] or host.endswith("." + _HOSTS[kind]) else 1


def _backfill() -> None:
    """Give each stored paper the authority of the best source that listed it."""
    bind = op.get_bind()
    listed = bind.execute(
        sa.text(
            "SELECT DISTINCT listings.paper_id, sources.kind, sources.url FROM listings "
            "JOIN sources ON sources.id = listings.source_id"
        )
    )
    best: dict[str, int] = {}
    for paper_id, kind, url in listed:
        best[paper_id] = max(best.get(paper_id, 1), _authority(kind, url))
    papers = sa.table("papers", sa.column("id", sa.Text), sa.column("text_authority", sa.Integer))
    for level in (2, 3):
        ids = [paper_id for paper_id, authority in best.items() if authority == level]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            bind.execute(sa.update(papers).where(papers.c.id.in_(chunk)).values(text_authority=level))


def upgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("text_authority", sa.Integer(), nullable=False, server_default="1"))
    _backfill()
    op.create_table(
        "paper_texts",
        sa.Column("paper_id", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("abstract", sa.Text(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name=op.f("fk_paper_texts_paper_id_papers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_paper_texts_source_id_sources"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("paper_id", "source_id", name=op.f("pk_paper_texts")),
    )


def downgrade() -> None:
    op.drop_table("paper_texts")
    with op.batch_alter_table("papers") as batch:
        batch.drop_column("text_authority")
