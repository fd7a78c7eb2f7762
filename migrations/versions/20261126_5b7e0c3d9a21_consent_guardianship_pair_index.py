"""consent guardianship pair index

Revision ID: 5b7e0c3d9a21
Revises: ba5bbe1bee34
Create Date: 2026-11-26 15:22:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = '5b7e0c3d9a21'
down_revision: str | None = 'ba5bbe1bee34'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_consent_guardianship_pair', 'consent_guardianship',
                    ['child_id', 'guardian_id', 'valid_from', 'valid_until'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_consent_guardianship_pair', table_name='consent_guardianship')
