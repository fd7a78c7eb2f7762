"""Export scope by role and structured Art. 69(4) access limits

Purpose items say which handling subjects may receive them identified (`identified_for`, by
default only the holder). An authorisation's free-text `access_limited_to` becomes structured
(`access_limits`: organs, departments and roles by key). The text is converted where every word
of it names a known organ, department or role (by key or Japanese name); anything else is kept
word for word in `access_limit_note`, shown on the authorisation, and approval is refused until
the limit is structured.

Revision ID: c14b7e2d9f03
Revises: b14d3e5a7c21
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'c14b7e2d9f03'
down_revision: str | None = 'b14d3e5a7c21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here on purpose: a migration does not follow later changes to the application.
_ROLES = {
    "privacy_officer": "privacy_officer", "総括管理主体": "privacy_officer",
    "data_holder": "data_holder", "保有・管理主体": "data_holder",
    "analyst": "analyst", "分析主体": "analyst",
    "support_worker": "support_worker", "活用主体": "support_worker",
    "auditor": "auditor", "admin": "admin",
}


def _convert(text: str, organs: dict[str, str], departments: dict[str, str]
             ) -> dict[str, list[str]] | None:
    words = [w for w in re.split(r"[,，、;；/／\s]+", text.strip()) if w]
    found: dict[str, set[str]] = {"organs": set(), "departments": set(), "roles": set()}
    for word in words:
        for part, names in (("organs", organs), ("departments", departments),
                            ("roles", _ROLES)):
            if word in names:
                found[part].add(names[word])
                break
        else:
            return None
    return {part: sorted(keys) for part, keys in found.items()}


def upgrade() -> None:
    with op.batch_alter_table('governance_purpose_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identified_for',
                                      sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=False, server_default='holding'))
    with op.batch_alter_table('governance_authorisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_limits', sa.Text(), nullable=False,
                                      server_default='{}'))
        batch_op.add_column(sa.Column('access_limit_note', sa.Text(), nullable=False,
                                      server_default=''))
    connection = op.get_bind()
    organs: dict[str, str] = {}
    for key, name in connection.execute(sa.text("SELECT key, name_ja FROM core_organ")):
        organs[key] = organs[name] = key
    departments: dict[str, str] = {}
    for key, name in connection.execute(sa.text("SELECT key, name_ja FROM core_department")):
        departments[key] = departments[name] = key
    rows = connection.execute(sa.text(
        "SELECT id, access_limited_to FROM governance_authorisation")).all()
    for auth_id, text in rows:
        text = text or ""
        converted = _convert(text, organs, departments)
        limits = converted or {"organs": [], "departments": [], "roles": []}
        connection.execute(
            sa.text("UPDATE governance_authorisation SET access_limits = :limits, "
                    "access_limit_note = :note WHERE id = :id"),
            {"limits": json.dumps(limits, ensure_ascii=False, sort_keys=True),
             "note": "" if converted is not None else text, "id": auth_id})
    with op.batch_alter_table('governance_authorisation', schema=None) as batch_op:
        batch_op.drop_column('access_limited_to')


def downgrade() -> None:
    # Columns are dropped in place (SQLite >= 3.35): a batch copy would drop the table, which
    # the rows referencing it forbid.
    with op.batch_alter_table('governance_authorisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_limited_to', sa.Text(), nullable=False,
                                      server_default=''))
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT id, access_limits, access_limit_note FROM governance_authorisation")).all()
    for auth_id, limits, note in rows:
        data = json.loads(limits or "{}")
        words = [*data.get("organs", []), *data.get("departments", []), *data.get("roles", [])]
        text = note or "、".join(words)
        connection.execute(sa.text("UPDATE governance_authorisation SET access_limited_to = :t "
                                   "WHERE id = :id"), {"t": text, "id": auth_id})
    op.drop_column('governance_authorisation', 'access_limit_note')
    op.drop_column('governance_authorisation', 'access_limits')
    op.drop_column('governance_purpose_item', 'identified_for')
