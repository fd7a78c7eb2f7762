"""demo marker, demo accounts, sign-in throttle

Revision ID: a7d3c9e1f250
Revises: 7c1f0e2a9b44
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'a7d3c9e1f250'
down_revision: str | None = '7c1f0e2a9b44'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('core_demo_marker',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('marked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('how', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('core_sign_in_throttle',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('login_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('blocked_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('core_sign_in_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_core_sign_in_throttle_login_digest'),
                              ['login_digest'], unique=False)
    with op.batch_alter_table('core_staff_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_demo', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('core_staff_account', schema=None) as batch_op:
        batch_op.drop_column('is_demo')
    with op.batch_alter_table('core_sign_in_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_core_sign_in_throttle_login_digest'))
    op.drop_table('core_sign_in_throttle')
    op.drop_table('core_demo_marker')
