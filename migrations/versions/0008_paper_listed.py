"""Whether a source has listed a paper (``listed``). A paper stored only because a reader's library
names it (`digest subscribers import-library --fetch`) is not listed, so no digest takes it for new
until a source lists it. Papers stored before this revision were all listed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("listed", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.drop_column("listed")
