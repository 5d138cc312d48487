"""What a delivery report that came back later says of a digest (``deliveries.report``: a bounce, a
delay or a complaint, with its detail) and when it came (``deliveries.reported_at``), and when a
subscriber last bounced (``subscribers.bounced_at``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("report", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("bounced_at")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("reported_at")
        batch.drop_column("report")
