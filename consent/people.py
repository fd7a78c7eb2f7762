"""The person register: people, 団体内統合宛名番号 look-ups and guardianship links."""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_
from sqlmodel import Session, col, select

import consent.messages  # noqa: F401  (registers the messages)
from consent import rules
from consent.models import (
    ATENA_HASH_PURPOSE,
    KANA_HASH_PURPOSE,
    NAME_HASH_PURPOSE,
    GuardianRelation,
    Guardianship,
    Person,
)
from core import audit
from core.auth import Principal
from core.crypto import keyed_hash_candidates
from core.db import get_by
from core.reasons import InvalidInput, Reason

Acting = Principal | audit.Actor


def audit_actor(acting: Acting) -> audit.Actor:
    """Who the audit chain records for `acting` (a signed-in principal or an audit actor)."""
    return acting.actor() if isinstance(acting, Principal) else acting


def atena_candidates(atena_no: str) -> list[str]:
    return keyed_hash_candidates(atena_no.strip(), ATENA_HASH_PURPOSE)


def person_by_atena(session: Session, atena_no: str) -> Person | None:
    return session.exec(
        select(Person).where(col(Person.atena_hash).in_(atena_candidates(atena_no)))
    ).first()


def get_person(session: Session, person_id: str) -> Person:
    return get_by(session, Person, "consent.person_not_found",
                  params={"refs": {"person_id": person_id}}, id=person_id)


def find_persons(session: Session, acting: Acting, *, atena_no: str | None = None,
                 name: str | None = None, limit: int = 50) -> list[Person]:
    """Find people by 団体内統合宛名番号 or by full name / kana (exact, after normalising).

    Names are encrypted, so a name is matched through the keyed hash of its normalised form.
    Every search is audited with the ids found (never the text searched for).
    """
    conditions = []
    if atena_no and atena_no.strip():
        conditions.append(col(Person.atena_hash).in_(atena_candidates(atena_no)))
    if name and rules.normalise_name(name):
        conditions.append(col(Person.name_hash).in_(
            keyed_hash_candidates(rules.normalise_name(name), NAME_HASH_PURPOSE)))
        conditions.append(col(Person.kana_hash).in_(
            keyed_hash_candidates(rules.normalise_kana(name), KANA_HASH_PURPOSE)))
    if not conditions:
        raise InvalidInput(Reason.of("consent.search_needs_query", field="query"))
    found = list(session.exec(select(Person).where(or_(*conditions))
                              .order_by(col(Person.birth_date)).limit(limit)).all())
    audit.append(session, "consent.person_searched", actor=audit_actor(acting),
                 target_type="consent_person",
                 details={"by": "atena_no" if atena_no else "name",
                          "found": [p.id for p in found][:20], "count": len(found)})
    return found


def view_person(session: Session, acting: Acting, person_id: str) -> Person:
    """A person's record for staff; the access is audited."""
    person = get_person(session, person_id)
    audit.append(session, "consent.person_viewed", actor=audit_actor(acting),
                 target_type="consent_person", target_id=person.id)
    return person


def guardianships(session: Session, child_id: str, day: date | None = None
                  ) -> list[Guardianship]:
    """The guardianship links of a child (those in force on `day`, when given)."""
    query = select(Guardianship).where(Guardianship.child_id == child_id)
    if day is not None:
        query = query.where(Guardianship.valid_from <= day, or_(
            col(Guardianship.valid_until).is_(None), col(Guardianship.valid_until) > day))
    return list(session.exec(query.order_by(col(Guardianship.id))).all())


def wards(session: Session, guardian_id: str) -> list[Guardianship]:
    return list(session.exec(select(Guardianship)
                             .where(Guardianship.guardian_id == guardian_id)).all())


def add_guardianship(session: Session, acting: Acting, *, child_id: str, guardian_id: str,
                     relation: GuardianRelation, proof_ref: str, valid_from: date,
                     valid_until: date | None = None) -> Guardianship:
    get_person(session, child_id)
    get_person(session, guardian_id)
    link = Guardianship(child_id=child_id, guardian_id=guardian_id, relation=relation,
                        proof_ref=proof_ref, valid_from=valid_from, valid_until=valid_until)
    session.add(link)
    session.flush()
    audit.append(session, "consent.guardianship_added", actor=audit_actor(acting),
                 target_type="consent_person", target_id=child_id,
                 details={"guardian": guardian_id, "relation": relation.value,
                          "link": link.id})
    return link
