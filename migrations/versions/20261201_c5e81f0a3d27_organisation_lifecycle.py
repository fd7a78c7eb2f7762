"""organisation lifecycle: organs, departments and outside bodies can be deactivated

Revision ID: c5e81f0a3d27
Revises: a7d1c3e5f902
Create Date: 2026-12-01 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c5e81f0a3d27'
down_revision: str | None = 'a7d1c3e5f902'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('core_organ', 'core_department', 'core_outside_body')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('deactivated_at', sa.DateTime(timezone=True),
                                          nullable=True))


def downgrade() -> None:
    # Dropped in place (SQLite >= 3.35): a batch copy would drop the table, which the rows
    # referencing it forbid.
    for table in reversed(TABLES):
        op.drop_column(table, 'deactivated_at')
