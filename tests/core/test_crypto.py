"""Field encryption, keyed hashes, the EncryptedText column and key rotation in the database."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core import crypto
from core.crypto import (
    CryptoError,
    EncryptedText,
    KeyRotationError,
    TamperedValue,
    commit_rotation,
    decrypt_field,
    encrypt_field,
    keyed_hash,
    keyed_hash_candidates,
    keyed_hash_info,
    rotate_keys,
)
from core.keys import Keyring, ensure_keyring, get_keyring, load_keyring, reset_keyring_cache
from core.settings import get_settings
from tests.databases import postgres_admin_url, skip_or_fail_without_postgres

TOKEN = re.compile(r"^v1\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$")
ATENA_PURPOSE = "test.atena_no"


@pytest.fixture(autouse=True)
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "keys.json"
    monkeypatch.setenv("KODOMO_KEY_FILE", str(path))
    monkeypatch.delenv("KODOMO_DEMO", raising=False)
    get_settings.cache_clear()
    reset_keyring_cache()
    ensure_keyring(path)
    yield path
    get_settings.cache_clear()
    reset_keyring_cache()


def flip(token: str, index: int = -5) -> str:
    chars = list(token)
    chars[index] = "A" if chars[index] != "A" else "B"
    return "".join(chars)


# -- field encryption -----------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", ["", "山田 花子", "東京都千代田区1-1 〒100-0001", "a" * 5000])
def test_roundtrip(plaintext: str) -> None:
    token = encrypt_field(plaintext, context="consent_person.name")
    match = TOKEN.match(token)
    assert match and match.group(1) == get_keyring().active_field_key
    assert plaintext == "" or plaintext not in token
    assert decrypt_field(token, context="consent_person.name") == plaintext


def test_each_encryption_uses_a_fresh_nonce() -> None:
    first = encrypt_field("山田", context="c.name")
    second = encrypt_field("山田", context="c.name")
    assert first != second


def test_tampered_ciphertext_is_refused() -> None:
    token = encrypt_field("山田 花子", context="consent_person.name")
    for index in (-1, -5, len("v1.") + len(get_keyring().active_field_key) + 3):
        with pytest.raises(TamperedValue):
            decrypt_field(flip(token, index), context="consent_person.name")
    # A change in the middle always reaches the GCM tag check.
    with pytest.raises(TamperedValue, match="does not authenticate"):
        decrypt_field(flip(token, -8), context="consent_person.name")
    for cut in range(len(token) - 30, len(token)):
        with pytest.raises(TamperedValue):
            decrypt_field(token[:cut], context="consent_person.name")


def test_wrong_context_is_refused() -> None:
    token = encrypt_field("山田 花子", context="consent_person.name")
    with pytest.raises(TamperedValue, match=r"consent_person\.address"):
        decrypt_field(token, context="consent_person.address")


def test_relabelled_key_id_is_refused(key_file: Path) -> None:
    ring = get_keyring().with_new_field_key()
    token = encrypt_field("山田", context="c.name", keyring=ring)
    _, kid, body = token.split(".")
    other = next(k for k in ring.field_keys if k != kid)
    with pytest.raises(TamperedValue):
        decrypt_field(f"v1.{other}.{body}", context="c.name", keyring=ring)


def test_unknown_key_id_is_named() -> None:
    token = encrypt_field("山田", context="c.name")
    _, _, body = token.split(".")
    with pytest.raises(CryptoError, match=r"'fk-gone'.*KODOMO_KEY_FILE"):
        decrypt_field(f"v1.fk-gone.{body}", context="c.name")


@pytest.mark.parametrize("bad", ["", "plain text", "v2.fk.abc", "v1..abc", "v1.fk"])
def test_malformed_tokens_are_refused(bad: str) -> None:
    with pytest.raises(CryptoError):
        decrypt_field(bad, context="c.name")


def test_a_context_is_required() -> None:
    with pytest.raises(ValueError):
        encrypt_field("x", context="")
    with pytest.raises(ValueError):
        EncryptedText("")


# -- keyed hashes ---------------------------------------------------------------------------


def test_keyed_hash_is_stable_and_domain_separated() -> None:
    ring = get_keyring()
    first = keyed_hash("0123456789", purpose=ATENA_PURPOSE)
    assert first == keyed_hash("0123456789", purpose=ATENA_PURPOSE)
    kid, digest = first.split(".")
    assert kid == ring.active_hmac_key and re.fullmatch(r"[0-9a-f]{64}", digest)
    assert keyed_hash("0123456789", purpose="other.purpose") != first
    assert keyed_hash("0123456789 ", purpose=ATENA_PURPOSE) != first
    with pytest.raises(ValueError):
        keyed_hash("x", purpose="")


def test_keyed_hash_changes_with_the_key() -> None:
    ring = get_keyring()
    rotated = ring.with_new_hmac_key()
    old = keyed_hash("0123456789", purpose=ATENA_PURPOSE, keyring=ring)
    new = keyed_hash("0123456789", purpose=ATENA_PURPOSE, keyring=rotated)
    assert old.split(".")[1] != new.split(".")[1]
    assert new.startswith(rotated.active_hmac_key + ".")
    # Mid-rotation both keys are held: a lookup finds rows hashed under either.
    candidates = keyed_hash_candidates("0123456789", ATENA_PURPOSE, keyring=rotated)
    assert candidates == [new, old]
    assert keyed_hash_candidates("0123456789", ATENA_PURPOSE) == [old]


# -- the database ---------------------------------------------------------------------------


def postgres_engine() -> Engine:
    skip_or_fail_without_postgres()
    return sa.create_engine(postgres_admin_url(), connect_args={"connect_timeout": 3})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    eng = sa.create_engine("sqlite://") if request.param == "sqlite" else postgres_engine()
    yield eng
    eng.dispose()


class Tables:
    """Two tables on their own MetaData, uniquely named so PostgreSQL runs cannot collide."""

    def __init__(self) -> None:
        suffix = secrets.token_hex(4)
        self.metadata = sa.MetaData()
        person = f"kt_person_{suffix}"
        self.person = sa.Table(
            person,
            self.metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", EncryptedText(f"{person}.name"), nullable=False),
            sa.Column("address", EncryptedText(f"{person}.address")),
            sa.Column("atena", EncryptedText(f"{person}.atena")),
            sa.Column(
                "atena_hash",
                sa.String(100),
                info=keyed_hash_info("atena", ATENA_PURPOSE, normalise=str.strip),
            ),
            sa.Column("birth_date", sa.String(10)),
        )
        note = f"kt_note_{suffix}"
        self.note = sa.Table(
            note,
            self.metadata,
            sa.Column("org", sa.String(10), primary_key=True),
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("body", EncryptedText(f"{note}.body")),
        )
        # Tables without protected columns are left alone.
        self.plain = sa.Table(
            f"kt_plain_{suffix}", self.metadata, sa.Column("id", sa.Integer, primary_key=True)
        )


@pytest.fixture
def tables(engine: Engine) -> Iterator[Tables]:
    t = Tables()
    t.metadata.create_all(engine)
    yield t
    t.metadata.drop_all(engine)


def person_row(i: int) -> dict[str, object]:
    atena = f"{i:012d}"
    return {
        "id": i,
        "name": f"山田 太郎{i}",
        "address": None if i % 7 == 0 else f"千代田区{i}番地",
        "atena": None if i % 11 == 0 else f" {atena} ",
        "atena_hash": None if i % 11 == 0 else keyed_hash(atena, purpose=ATENA_PURPOSE),
        "birth_date": "2015-04-01",
    }


def fill(engine: Engine, t: Tables, people: int = 257, notes: int = 45) -> None:
    with engine.begin() as conn:
        conn.execute(t.person.insert(), [person_row(i) for i in range(1, people + 1)])
        if notes:
            conn.execute(
                t.note.insert(),
                [{"org": f"o{i % 3}", "seq": i, "body": f"メモ{i}"} for i in range(notes)],
            )


def raw(engine: Engine, table: sa.Table, column: str) -> list[str | None]:
    pk = list(table.primary_key.columns)
    with engine.connect() as conn:
        query = sa.select(sa.type_coerce(table.c[column], sa.Text)).order_by(*pk)
        return list(conn.execute(query).scalars())


def test_encrypted_text_column(engine: Engine, tables: Tables) -> None:
    fill(engine, tables, people=12, notes=3)
    stored = raw(engine, tables.person, "name")
    kid = get_keyring().active_field_key
    assert all(v is not None and v.startswith(f"v1.{kid}.") for v in stored)
    assert not any("山田" in (v or "") for v in stored)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(tables.person).order_by(tables.person.c.id)).all()
    assert [r.name for r in rows] == [f"山田 太郎{i}" for i in range(1, 13)]
    assert rows[6].address is None  # NULL stays NULL, not an encrypted empty string
    # A value copied into another column does not decrypt there.
    with engine.begin() as conn:
        conn.execute(
            tables.person.update()
            .where(tables.person.c.id == 1)
            .values(address=sa.type_coerce(stored[1], sa.Text))
        )
    with engine.connect() as conn, pytest.raises(TamperedValue):
        conn.execute(sa.select(tables.person.c.address).where(tables.person.c.id == 1)).all()


def test_rotation_reencrypts_and_retires_the_old_keys(
    engine: Engine, tables: Tables, key_file: Path
) -> None:
    fill(engine, tables)
    old = get_keyring()
    before_names = raw(engine, tables.person, "name")
    before_hashes = raw(engine, tables.person, "atena_hash")
    seen: list[tuple[int, int]] = []

    with Session(engine) as session:
        report = rotate_keys(
            session, tables.metadata, batch_size=50, progress=lambda d, t: seen.append((d, t))
        )
        backup = commit_rotation(session, report.keyring, key_file)

    new = load_keyring(key_file)
    assert new == report.keyring
    assert set(new.field_keys) == {report.new_field_kid}
    assert set(new.hmac_keys) == {report.new_hmac_kid}
    assert old.active_field_key not in new.field_keys
    assert old.active_hmac_key not in new.hmac_keys
    assert report.retired_field_kids == {old.active_field_key}
    assert set(report.tables) == {tables.person.name, tables.note.name}
    assert report.rows == 257 + 45
    assert seen[0] == (0, 302) and seen[-1] == (302, 302)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    # Every stored value carries the new kid, and decrypts with the new keyring alone.
    for table, column in (
        (tables.person, "name"),
        (tables.person, "address"),
        (tables.person, "atena"),
        (tables.note, "body"),
    ):
        for value in raw(engine, table, column):
            assert value is None or value.startswith(f"v1.{report.new_field_kid}.")
    assert get_keyring() == new
    with engine.connect() as conn:
        people = conn.execute(sa.select(tables.person).order_by(tables.person.c.id)).all()
        notes = conn.execute(sa.select(tables.note).order_by(tables.note.c.seq)).all()
    assert [p.name for p in people] == [f"山田 太郎{i}" for i in range(1, 258)]
    assert [p._asdict() for p in people] == [person_row_after(i, new) for i in range(1, 258)]
    assert [n.body for n in notes] == [f"メモ{i}" for i in range(45)]

    # The old ciphertexts no longer decrypt: their key is gone.
    with pytest.raises(CryptoError, match="does not hold"):
        decrypt_field(before_names[0] or "", context=f"{tables.person.name}.name", keyring=new)
    after_hashes = raw(engine, tables.person, "atena_hash")
    for after, before in zip(after_hashes, before_hashes, strict=True):
        assert (after is None) == (before is None)
        assert after is None or (after != before and after.startswith(report.new_hmac_kid))
    assert backup is not None and load_keyring(backup) == old


def person_row_after(i: int, ring: Keyring) -> dict[str, object]:
    row = person_row(i)
    if row["atena"] is not None:
        atena = str(row["atena"]).strip()
        row["atena_hash"] = keyed_hash(atena, purpose=ATENA_PURPOSE, keyring=ring)
    return row


def test_rotation_refuses_undecryptable_values_and_saves_nothing(
    engine: Engine, tables: Tables, key_file: Path
) -> None:
    fill(engine, tables, people=20, notes=0)
    stored = raw(engine, tables.person, "name")
    with engine.begin() as conn:
        conn.execute(
            tables.person.update()
            .where(tables.person.c.id == 13)
            .values(name=sa.type_coerce(flip(stored[12] or ""), sa.Text))
        )
    stored = raw(engine, tables.person, "name")
    before = key_file.read_bytes()
    with Session(engine) as session, pytest.raises(KeyRotationError, match=r"\.name at \(13,\)"):
        rotate_keys(session, tables.metadata, batch_size=5)
    # The batches already rewritten were rolled back with the session; the keys are untouched.
    assert key_file.read_bytes() == before
    assert raw(engine, tables.person, "name") == stored


def test_a_failed_commit_loses_nothing(
    engine: Engine, tables: Tables, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(engine, tables, people=30, notes=0)
    old = get_keyring()
    with Session(engine) as session:
        report = rotate_keys(session, tables.metadata)

        def broken_commit() -> None:
            raise sa.exc.OperationalError("COMMIT", {}, Exception("disk full"))

        monkeypatch.setattr(session, "commit", broken_commit)
        with pytest.raises(sa.exc.OperationalError):
            commit_rotation(session, report.keyring, key_file)
        session.rollback()

    # The file holds old and new keys, the new ones active, so the untouched rows still read.
    held = load_keyring(key_file)
    assert set(held.field_keys) == {old.active_field_key, report.new_field_kid}
    assert held.active_field_key == report.new_field_kid
    assert all(
        v and v.startswith(f"v1.{old.active_field_key}.")
        for v in raw(engine, tables.person, "name")
    )
    with engine.connect() as conn:
        names = conn.execute(sa.select(tables.person.c.name).order_by(tables.person.c.id))
        assert list(names.scalars()) == [f"山田 太郎{i}" for i in range(1, 31)]
    assert sorted(p.name for p in key_file.parent.iterdir() if ".bak-" in p.name)


def test_hash_columns_must_name_a_real_source() -> None:
    metadata = sa.MetaData()
    sa.Table(
        "kt_bad",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("h", sa.String, info=keyed_hash_info("missing", "p")),
    )
    with pytest.raises(KeyRotationError, match="'missing'"):
        crypto._plan(metadata)


def test_rotation_through_the_project_engine_and_a_sqlmodel_session(
    tmp_path: Path, key_file: Path
) -> None:
    from sqlmodel import Session as SqlModelSession

    from core.db import make_engine
    from core.settings import Settings

    engine = make_engine(
        f"sqlite:///{tmp_path / 'rotation.sqlite3'}", settings=Settings(data_dir=tmp_path)
    )
    t = Tables()
    t.metadata.create_all(engine)
    fill(engine, t, people=40, notes=4)
    with SqlModelSession(engine) as session:
        report = rotate_keys(session, t.metadata)
        commit_rotation(session, report.keyring, key_file)
    assert all(
        v is None or v.startswith(f"v1.{report.new_field_kid}.")
        for v in raw(engine, t.person, "address")
    )
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.note.c.body).order_by(t.note.c.seq)).scalars().all() == [
            f"メモ{i}" for i in range(4)
        ]
    engine.dispose()
