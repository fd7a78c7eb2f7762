"""Key rotation recomputes the person register's keyed hashes from the normalised values."""

from __future__ import annotations

from sqlalchemy import Text, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

import main
from consent import rules
from consent.models import ATENA_HASH_PURPOSE, KANA_HASH_PURPOSE, NAME_HASH_PURPOSE, Person
from core.crypto import decrypt_field, keyed_hash, rotate_keys
from tests.factories import World


def test_rotation_rehashes_people(world: World, db: Session) -> None:
    child, _parents = world.family("2013-05-10")
    db.flush()
    report = rotate_keys(db, main.all_metadata(), batch_size=100)
    ring = report.keyring
    table = Person.__table__  # type: ignore[attr-defined]
    row = db.execute(sa_select(type_coerce(table.c.name, Text), type_coerce(table.c.kana, Text),
                            type_coerce(table.c.atena_no, Text), table.c.name_hash,
                            table.c.kana_hash, table.c.atena_hash)
                     .where(col(table.c.id) == child)).one()
    name = decrypt_field(row[0], context="consent_person.name", keyring=ring)
    kana = decrypt_field(row[1], context="consent_person.kana", keyring=ring)
    atena = decrypt_field(row[2], context="consent_person.atena_no", keyring=ring)
    assert row[3] == keyed_hash(rules.normalise_name(name), purpose=NAME_HASH_PURPOSE,
                                keyring=ring)
    assert row[4] == keyed_hash(rules.normalise_kana(kana), purpose=KANA_HASH_PURPOSE,
                                keyring=ring)
    assert row[5] == keyed_hash(atena, purpose=ATENA_HASH_PURPOSE, keyring=ring)
    assert row[5].split(".")[0] == report.new_hmac_kid
    db.rollback()
