"""A paper's place in Hugging Face's trending order (``metric_snapshots.trending_rank``), recorded
by sources whose URL asks the API for ``sort=trending``, and an index to find the snapshots a
source took lately.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("metric_snapshots") as batch:
        batch.add_column(sa.Column("trending_rank", sa.Integer(), nullable=True))
    op.create_index("ix_metric_snapshots_source_id_taken_at", "metric_snapshots", ["source_id", "taken_at"])


def downgrade() -> None:
    op.drop_index("ix_metric_snapshots_source_id_taken_at", table_name="metric_snapshots")
    with op.batch_alter_table("metric_snapshots") as batch:
        batch.drop_column("trending_rank")
