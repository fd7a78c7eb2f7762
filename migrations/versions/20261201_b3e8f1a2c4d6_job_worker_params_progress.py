"""jobs: worker claim and heartbeat, parameters, start basis, progress, attempts

Revision ID: b3e8f1a2c4d6
Revises: c5e81f0a3d27
Create Date: 2026-12-01 15:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'b3e8f1a2c4d6'
down_revision: str | None = 'c5e81f0a3d27'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('governance_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('params', sa.Text(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('start_basis', sa.Text(), nullable=False,
                                      server_default='{}'))
        batch_op.add_column(sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=128),
                                      nullable=True))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('progress', sa.Text(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    # Dropped in place (SQLite >= 3.35): a batch copy would drop the table, which the job
    # populations referencing it forbid.
    for name in ('attempts', 'progress', 'heartbeat_at', 'claimed_at', 'worker_id',
                 'start_basis', 'params'):
        op.drop_column('governance_job', name)
