"""Feedback: a subscriber's "more like this" (+1) or "less like this" (-1) on a paper, one row per
(subscriber, paper); and, for a related paper in a digest, the liked paper it is near.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("paper_id", sa.Text(), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("value IN (-1, 1)", name=op.f("ck_feedback_value")),
        sa.ForeignKeyConstraint(
            ["paper_id"], ["papers.id"], name=op.f("fk_feedback_paper_id_papers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_feedback_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "paper_id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_paper_id"), "feedback", ["paper_id"])
    with op.batch_alter_table("delivery_papers") as batch:
        batch.add_column(sa.Column("liked_paper_id", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_papers") as batch:
        batch.drop_column("liked_paper_id")
    op.drop_index(op.f("ix_feedback_paper_id"), table_name="feedback")
    op.drop_table("feedback")
