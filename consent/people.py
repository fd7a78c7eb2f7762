"""The person register: people, 団体内統合宛名番号 look-ups and guardianship links."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date

from sqlalchemy import ColumnElement, and_, or_
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
from core.reasons import Forbidden, InvalidInput, Reason

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
                 name: str | None = None, birth_date: date | None = None,
                 limit: int = rules.SEARCH_LIMIT) -> list[Person]:
    """Find people by 団体内統合宛名番号, or by full name / kana (exact, after normalising) AND
    birth date together; at most `limit` (rules.SEARCH_LIMIT) candidates.

    Names are encrypted, so a name is matched through the keyed hash of its normalised form.
    A name alone, or a birth date alone, finds no one: a search is for an intake of a person
    at hand, not a browse of the register. Every search is audited with the ids found (never
    the text searched for).
    """
    conditions: list[ColumnElement[bool]] = []
    by = ""
    if atena_no and atena_no.strip():
        conditions.append(col(Person.atena_hash).in_(atena_candidates(atena_no)))
        by = "atena_no"
    elif name and rules.normalise_name(name) and birth_date is not None:
        conditions.append(and_(col(Person.birth_date) == birth_date, or_(
            col(Person.name_hash).in_(
                keyed_hash_candidates(rules.normalise_name(name), NAME_HASH_PURPOSE)),
            col(Person.kana_hash).in_(
                keyed_hash_candidates(rules.normalise_kana(name), KANA_HASH_PURPOSE)))))
        by = "name_birth_date"
    if not conditions:
        raise InvalidInput(Reason.of("consent.search_needs_query", field="query"))
    found = list(session.exec(select(Person).where(*conditions)
                              .order_by(col(Person.birth_date), col(Person.id))
                              .limit(max(1, min(limit, rules.SEARCH_LIMIT)))).all())
    audit.append(session, "consent.person_searched", actor=audit_actor(acting),
                 target_type="consent_person",
                 details={"by": by, "found": [p.id for p in found], "count": len(found)})
    return found


# The support ledger (governance) hands in the person ids of a support worker's assigned cases;
# consent cannot import it, so it registers a source here. None is registered until it exists.
CaseAssignments = Callable[[Session, Principal], Collection[str]]
_case_assignments: list[CaseAssignments] = []


def register_case_assignments(source: CaseAssignments) -> None:
    if source not in _case_assignments:
        _case_assignments.append(source)


def assigned_people(session: Session, acting: Principal) -> frozenset[str]:
    """The person ids of the support cases assigned to `acting` (empty until the support ledger
    registers its source; empty for anyone without a case role). The one place both the
    person pages and the gate's export scope read it from."""
    assigned: set[str] = set()
    if acting.has_role(*rules.CASE_ROLES):
        for source in _case_assignments:
            assigned.update(source(session, acting))
    return frozenset(assigned)


def require_person_access(session: Session, acting: Acting, person_id: str) -> None:
    """Refuse unless `acting` may read the full record of `person_id` (rules.may_read_person).
    The system and the CLI (an audit actor, not a signed-in principal) are not limited here."""
    if not isinstance(acting, Principal):
        return
    assigned = assigned_people(session, acting)
    if not rules.may_read_person(acting.roles, person_id, assigned):
        raise Forbidden(Reason.of("consent.person_access_denied",
                                  refs={"person_id": person_id}))


def may_read_any(acting: Acting) -> bool:
    """Whether `acting` may read some full person records (pages link search hits to them)."""
    return not isinstance(acting, Principal) or acting.has_role(
        *rules.PERSON_RECORD_ROLES, *(rules.CASE_ROLES if _case_assignments else ()))


def audit_read(session: Session, acting: Acting, action: str, person_id: str,
               target_type: str = "consent_person", target_id: str | int | None = None,
               ids: Collection[str | int] = ()) -> None:
    """Record a read of identified data: who, which person, which records (ids, never values)."""
    details: dict[str, object] = {"person": person_id}
    if ids:
        details["ids"] = sorted(str(i) for i in ids)
    audit.append(session, action, actor=audit_actor(acting), target_type=target_type,
                 target_id=person_id if target_id is None else target_id, details=details)


def view_person(session: Session, acting: Acting, person_id: str) -> Person:
    """A person's full record for staff who may read it (require_person_access); audited."""
    person = get_person(session, person_id)
    require_person_access(session, acting, person.id)
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
