"""job kinds per purpose; the design format of each PIA

Revision ID: b14d3e5a7c21
Revises: b3e8f1a2c4d6
Create Date: 2026-12-01 15:30:00.000000

Existing purposes keep every job kind they could run before (nothing running is refused by the
upgrade); a privacy officer narrows them in a revision. Existing PIAs approved designs in format
1 (before job kinds), so each is compared with the design in that format and stays current.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'b14d3e5a7c21'
down_revision: str | None = 'b3e8f1a2c4d6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVERY_KIND = '["export","linkage","scoring","statistics"]'


def upgrade() -> None:
    with op.batch_alter_table('governance_purpose', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job_kinds', sa.Text(), nullable=False,
                                      server_default='[]'))
    op.execute(sa.text("UPDATE governance_purpose SET job_kinds = :kinds")
               .bindparams(kinds=EVERY_KIND))
    with op.batch_alter_table('pia_assessment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('design_format', sa.Integer(), nullable=False,
                                      server_default='1'))


def downgrade() -> None:
    # Columns are dropped in place (SQLite >= 3.35): a batch copy would drop the table, which
    # the rows referencing it forbid.
    op.drop_column('pia_assessment', 'design_format')
    op.drop_column('governance_purpose', 'job_kinds')
