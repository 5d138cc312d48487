"""The web front: a confirmation token carries the preferences asked for; tokens expire (indexed for
the daily clean-up).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch.create_index(batch.f("ix_tokens_expires_at"), ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index(batch.f("ix_tokens_expires_at"))
        batch.drop_column("payload")
