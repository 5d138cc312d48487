"""What a source's fetches brought that it had never listed (``fetch_log.fresh``), and when it last
did (``sources.last_new_at``): how digest tells a late or stale source from a quiet day. Fetches
logged before this revision count their papers new to the database as fresh, the nearest figure
they kept.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fetch_log") as batch:
        batch.add_column(sa.Column("fresh", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("last_new_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE fetch_log SET fresh = new")
    op.execute(
        "UPDATE sources SET last_new_at = (SELECT max(fetch_log.started_at) FROM fetch_log"
        " WHERE fetch_log.source_id = sources.id AND fetch_log.new > 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("last_new_at")
    with op.batch_alter_table("fetch_log") as batch:
        batch.drop_column("fresh")
