"""Each source's version of a paper's text, and the authority of the text a paper shows: arXiv (3)
over Hugging Face (2) over any other feed (1), so a lesser source only fills what is missing.
Papers stored before this revision count as feed text, which arXiv and Hugging Face may replace.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("text_authority", sa.Integer(), nullable=False, server_default="1"))
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
