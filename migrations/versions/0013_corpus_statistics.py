"""The corpus statistics (``corpus_terms``, ``corpus_definitions``, ``corpus_totals``), counted
here from the papers already stored and from then on kept as papers are stored: IDF and the
learned acronyms no longer read every stored paper.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    terms = op.create_table(
        "corpus_terms",
        sa.Column("stem", sa.Text(), nullable=False),
        sa.Column("papers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("stem", name=op.f("pk_corpus_terms")),
    )
    definitions = op.create_table(
        "corpus_definitions",
        sa.Column("short", sa.Text(), nullable=False),
        sa.Column("long", sa.Text(), nullable=False),
        sa.Column("short_text", sa.Text(), nullable=False),
        sa.Column("long_text", sa.Text(), nullable=False),
        sa.Column("papers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "short", "long", "short_text", "long_text", name=op.f("pk_corpus_definitions")
        ),
    )
    op.create_index(op.f("ix_corpus_definitions_long"), "corpus_definitions", ["long"])
    totals = op.create_table(
        "corpus_totals",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_corpus_totals")),
    )
    _count_stored_papers(terms, definitions, totals)


def _count_stored_papers(terms: sa.Table, definitions: sa.Table, totals: sa.Table) -> None:
    """Count the papers already stored, with the analysis digest scores with."""
    from digest.score.index import corpus_counts

    bind = op.get_bind()
    texts = bind.execute(sa.text("SELECT title, abstract FROM papers"))
    counts = corpus_counts((title, abstract or "") for title, abstract in texts)
    if not counts.papers:
        return
    op.bulk_insert(totals, [{"name": "papers", "value": counts.papers}])
    op.bulk_insert(terms, [{"stem": stem, "papers": n} for stem, n in sorted(counts.df.items())])
    keys = ("short", "long", "short_text", "long_text")
    rows = [
        {**dict(zip(keys, key, strict=True)), "papers": n} for key, n in sorted(counts.definitions.items())
    ]
    op.bulk_insert(definitions, rows)


def downgrade() -> None:
    op.drop_table("corpus_totals")
    op.drop_index(op.f("ix_corpus_definitions_long"), table_name="corpus_definitions")
    op.drop_table("corpus_definitions")
    op.drop_table("corpus_terms")
