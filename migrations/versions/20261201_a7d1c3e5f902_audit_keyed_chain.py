"""audit chain: keyed links (key_id), resident actors, checkpoint notes

Revision ID: a7d1c3e5f902
Revises: a7d3c9e1f250
Create Date: 2026-12-01 13:00:00

Existing events keep key_id NULL (unkeyed SHA-256 links, never rewritten); the first keyed
append after them writes a signed checkpoint with note 'keyed_from_next' at their head.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'a7d1c3e5f902'
down_revision: str | None = 'a7d3c9e1f250'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('core_audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor_person_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    with op.batch_alter_table('core_audit_checkpoint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('core_audit_checkpoint', schema=None) as batch_op:
        batch_op.drop_column('note')
    with op.batch_alter_table('core_audit_event', schema=None) as batch_op:
        batch_op.drop_column('key_id')
        batch_op.drop_column('actor_person_id')
