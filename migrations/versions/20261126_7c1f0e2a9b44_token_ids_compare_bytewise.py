"""token ids compare bytewise; the job population has no per-row foreign keys

Revision ID: 7c1f0e2a9b44
Revises: 5b7e0c3d9a21
Create Date: 2026-11-26 16:40:00.000000

The random hex ids of people, consent records, events and receipts (and the columns that refer
to them) take the "C" collation on PostgreSQL, as core.db.TOKEN_ID declares: sorts and merge
joins over them no longer go through the locale, and their order matches Python's. SQLite
compares bytes already, so nothing changes there.

The population of a job loses its two foreign keys (see governance.models.JobPopulation): one
query per inserted row made them most of the cost of writing a population on PostgreSQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7c1f0e2a9b44'
down_revision: str | None = '5b7e0c3d9a21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKEN_COLUMNS = {
    'consent_person': ['id'],
    'consent_guardianship': ['child_id', 'guardian_id'],
    'consent_record': ['id', 'principal_id', 'given_by_id'],
    'consent_scope': ['record_id'],
    'consent_event': ['record_id', 'person_id'],
    'consent_receipt': ['id', 'record_id'],
    'consent_restriction': ['person_id'],
    'consent_unsuitable_mark': ['person_id'],
    'governance_job_population': ['person_id'],
}


def _retype(collation: str | None) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, columns in TOKEN_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=sa.String(32, collation=collation),
                                   existing_type=sa.String(32))


POPULATION_KEYS = {
    'fk_governance_job_population_job_id_governance_job': ('governance_job', 'job_id'),
    'fk_governance_job_population_person_id_consent_person': ('consent_person', 'person_id'),
}


def upgrade() -> None:
    _retype('C')
    with op.batch_alter_table('governance_job_population') as batch:
        for name in POPULATION_KEYS:
            batch.drop_constraint(name, type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('governance_job_population') as batch:
        for name, (referred, column) in POPULATION_KEYS.items():
            batch.create_foreign_key(name, referred, [column], ['id'])
    _retype(None)
