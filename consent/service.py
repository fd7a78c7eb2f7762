"""Operations on notices, consent records and their events, restrictions, and eligibility.

Services take a session and the acting principal, raise domain errors and never commit. Audit
events carry ids and codes only, never names, numbers or free text about a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, event, exists, func, inspect, literal, or_, union, union_all
from sqlalchemy import select as sa_select
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql import Select
from sqlmodel import Session, col, select

import consent.messages  # noqa: F401  (registers the messages)
from consent import receipts, rules
from consent.models import (
    Channel,
    ChildView,
    ConsentEvent,
    ConsentRecord,
    ConsentScope,
    ConsentState,
    EventType,
    Guardianship,
    Notice,
    NoticeItem,
    NoticeRecipient,
    Person,
    Receipt,
    Relation,
    Restriction,
    RestrictionSource,
    UnsuitableMark,
)
from consent.people import Acting, audit_actor, get_person, guardianships
from consent.rules import DEFAULT_POLICY, CapacityPolicy
from consent.schemas import ConsentIn, NoticeIn, RestrictionIn, WithdrawIn
from core import audit, messages
from core.auth import Principal
from core.clock import as_utc, utcnow
from core.models import Organ, OutsideBody, Role
from core.reasons import Conflict, Forbidden, InvalidInput, NotFound, Reason

Flow = tuple[int, str]  # (registry_item.id, recipient key)
# A query whose first column is person ids (any further columns ride along).
Population = Select[*tuple[Any, ...]]

_policy: CapacityPolicy = DEFAULT_POLICY


def set_policy(policy: CapacityPolicy | None) -> None:
    """Configure the capacity policy (None restores the defaults)."""
    global _policy
    _policy = policy or DEFAULT_POLICY


def get_policy() -> CapacityPolicy:
    return _policy


def _staff_id(acting: Acting) -> int | None:
    if isinstance(acting, Principal):
        return acting.account_id
    return acting.id if acting.type == "staff" else None


def _is_privacy_officer(acting: Acting) -> bool:
    if isinstance(acting, Principal):
        return acting.has_role(Role.privacy_officer)
    return acting.type == "system" or acting.role == Role.privacy_officer.value


def _require_privacy_officer(acting: Acting) -> None:
    if not _is_privacy_officer(acting):
        raise Forbidden(Reason.of("auth.role_required",
                                  roles=messages.text("role.privacy_officer")))


# ---------------------------------------------------------------- notices


def _notice_is_shown(session: OrmSession, notice_id: int | None) -> bool:
    if notice_id is None:
        return False
    with session.no_autoflush:
        notice = session.get(Notice, notice_id)
    if notice is None:
        return False
    state = inspect(notice)
    history = state.attrs.first_shown_at.history
    before = history.deleted[0] if history.deleted else notice.first_shown_at
    return before is not None


@event.listens_for(OrmSession, "before_flush")
def _notices_stay_as_shown(session: OrmSession, _context: Any, _instances: Any) -> None:
    """A notice version that has been shown never changes (nor do its items and recipients)."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Notice) and session.is_modified(obj):
            history = inspect(obj).attrs.first_shown_at.history
            before = history.deleted[0] if history.deleted else obj.first_shown_at
            if before is not None:
                raise Conflict(Reason.of("consent.notice_immutable", key=obj.key,
                                         version=obj.version))
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if isinstance(obj, NoticeItem | NoticeRecipient) and _notice_is_shown(
                session, obj.notice_id):
            notice = session.get(Notice, obj.notice_id)
            raise Conflict(Reason.of("consent.notice_immutable", key=notice.key if notice
                                     else "", version=notice.version if notice else 0))


def get_notice(session: Session, notice_id: int) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None:
        raise NotFound(Reason.of("consent.notice_not_found", refs={"notice_id": notice_id}))
    return notice


def notice_items(session: Session, notice_id: int) -> list[NoticeItem]:
    return list(session.exec(select(NoticeItem).where(NoticeItem.notice_id == notice_id)
                             .order_by(col(NoticeItem.id))).all())


def notice_recipients(session: Session, notice_id: int) -> list[NoticeRecipient]:
    return list(session.exec(select(NoticeRecipient)
                             .where(NoticeRecipient.notice_id == notice_id)
                             .order_by(col(NoticeRecipient.id))).all())


def check_recipient(session: Session, key: str, field: str = "recipients") -> Reason | None:
    parsed = rules.parse_recipient(key)
    if parsed is None:
        return Reason.of("consent.bad_recipient", field=field, recipient=key)
    kind, ident = parsed
    table = Organ if kind == "organ" else OutsideBody
    if session.get(table, ident) is None:
        return Reason.of("consent.unknown_recipient", field=field, recipient=key)
    return None


def create_notice(session: Session, acting: Acting, data: NoticeIn) -> Notice:
    """A new version of the notice `data.key` (versions count up from 1)."""
    problems = [r for r in (check_recipient(session, x.recipient) for x in data.recipients) if r]
    if problems:
        raise InvalidInput(problems)
    latest = session.exec(select(func.max(Notice.version)).where(Notice.key == data.key)).one()
    fields = data.model_dump(exclude={"items", "recipients"})
    notice = Notice(**fields, version=(latest or 0) + 1, created_by=_staff_id(acting))
    session.add(notice)
    session.flush()
    assert notice.id is not None
    for item in data.items:
        session.add(NoticeItem(notice_id=notice.id, **item.model_dump()))
    for recipient in data.recipients:
        session.add(NoticeRecipient(notice_id=notice.id, **recipient.model_dump()))
    session.flush()
    audit.append(session, "consent.notice_created", actor=audit_actor(acting),
                 target_type="consent_notice", target_id=notice.id, purpose_id=notice.purpose_id,
                 details={"key": notice.key, "version": notice.version})
    return notice


def mark_notice_shown(session: Session, acting: Acting, notice_id: int,
                      at: datetime | None = None) -> Notice:
    """Record that the notice has been shown (published, printed on a form): it is now fixed."""
    notice = get_notice(session, notice_id)
    if notice.first_shown_at is None:
        notice.first_shown_at = as_utc(at or utcnow())
        session.add(notice)
        session.flush()
        audit.append(session, "consent.notice_shown", actor=audit_actor(acting),
                      target_type="consent_notice", target_id=notice.id,
                      purpose_id=notice.purpose_id)
    return notice


def shown_notices(session: Session) -> list[Notice]:
    """Notice versions that have been shown (the ones consent can be recorded against)."""
    return list(session.exec(select(Notice).where(col(Notice.first_shown_at).is_not(None))
                             .order_by(col(Notice.key), col(Notice.version).desc())).all())


def offered(session: Session, notice_id: int) -> rules.Offered:
    return rules.Offered(
        items={i.item_id: i.optional for i in notice_items(session, notice_id)},
        recipients={r.recipient: r.optional for r in notice_recipients(session, notice_id)},
    )


# ---------------------------------------------------------------- recording consent


def get_record(session: Session, record_id: str) -> ConsentRecord:
    record = session.get(ConsentRecord, record_id)
    if record is None:
        raise NotFound(Reason.of("consent.record_not_found", refs={"record_id": record_id}))
    return record


def _authority(session: Session, child_id: str, giver_id: str, relation: Relation,
               day: date) -> Guardianship | None:
    return next((g for g in guardianships(session, child_id, day)
                 if g.guardian_id == giver_id and str(g.relation) == relation.value), None)


def _relation_label(relation: str) -> str:
    return messages.text(f"consent.relation.{relation}")


def _add_event(session: Session, record: ConsentRecord, kind: EventType, at: datetime,
               acting: Acting, person_id: str | None, channel: Channel,
               evidence_ref: str) -> ConsentEvent:
    created = ConsentEvent(record_id=record.id, type=kind, at=at, person_id=person_id,
                           staff_id=_staff_id(acting), channel=channel, evidence_ref=evidence_ref)
    session.add(created)
    session.flush()
    return created


def record_consent(session: Session, acting: Acting, data: ConsentIn,
                   policy: CapacityPolicy | None = None
                   ) -> tuple[ConsentRecord, Receipt | None]:
    """Record a consent (or a refusal) against a notice version that has been shown.

    Refused with Reasons: a notice never shown, a scope outside the notice, a giver the register
    does not show as having authority, a child alone below the guardian age, a missing view.
    """
    policy = policy or _policy
    at = as_utc(data.at or utcnow())
    day = rules.local_day(at)
    child = get_person(session, data.principal_id)
    notice = get_notice(session, data.notice_id)
    giver_id = data.given_by_id or child.id
    giver = get_person(session, giver_id)
    age = rules.age_on(child.birth_date, day)
    reasons: list[Reason] = []
    refs = {"notice_id": notice.id, "principal_id": child.id}
    if at > utcnow() + timedelta(minutes=5):
        reasons.append(Reason.of("consent.in_the_future", refs=refs, field="at"))
    if notice.first_shown_at is None or as_utc(notice.first_shown_at) > at:
        reasons.append(Reason.of("consent.notice_never_shown", refs=refs, field="notice_id",
                                 key=notice.key, version=notice.version))
    for code, name, detail in rules.scope_problems(offered(session, notice.id or 0),
                                                   data.item_ids, data.recipients):
        reasons.append(Reason.of(code, refs=refs, field=name, detail=detail,
                                 what=messages.text(f"consent.word_{name}")))
    authority_proof = data.authority_proof
    if data.relation == Relation.self_:
        if giver.id != child.id:
            reasons.append(Reason.of("consent.relation_self_mismatch", field="given_by_id"))
        elif policy.guardian_decides(age):
            reasons.append(Reason.of("consent.child_alone_below_guardian_age", refs=refs,
                                     field="relation", age=age,
                                     limit=policy.guardian_required_below))
    else:
        link = _authority(session, child.id, giver.id, data.relation, day)
        if link is None or age >= rules.MAJORITY_AGE:
            reasons.append(Reason.of("consent.no_authority", field="given_by_id",
                                     refs={**refs, "given_by_id": giver.id},
                                     giver=giver.id, relation=_relation_label(data.relation)))
        elif not policy.guardian_decides(age) and not policy.guardian_consent_after_threshold:
            reasons.append(Reason.of("consent.child_decides", refs=refs, field="relation",
                                     age=age, limit=policy.guardian_required_below))
        else:
            authority_proof = authority_proof or link.proof_ref
    view, view_reason = data.child_view, data.child_view_reason
    if data.relation == Relation.self_:
        view = view or ChildView.assent
    elif policy.view_required(age):
        if view is None or (view == ChildView.not_asked and not view_reason.strip()):
            reasons.append(Reason.of("consent.child_view_required", refs=refs,
                                     field="child_view", age=age))
    else:
        view = view or ChildView.not_asked
        if view == ChildView.not_asked and not view_reason:
            view_reason = messages.text("consent.view_under_age")
    if reasons:
        raise InvalidInput(reasons)
    assert view is not None
    given = data.decision == "given"
    record = ConsentRecord(
        principal_id=child.id, given_by_id=giver.id, relation=data.relation,
        authority_proof=authority_proof, child_age_at_event=age, confirmed_age=age,
        child_view=view, child_view_reason=view_reason,
        controller_organ_id=notice.controller_organ_id, purpose_id=notice.purpose_id,
        notice_id=notice.id or 0, language=data.language, collection_method=data.channel,
        retention_class=notice.retention_class,
        withdrawal_method=notice.withdrawal_method_ja,
        power_imbalance_note=data.power_imbalance_note,
        state=ConsentState.given if given else ConsentState.refused,
        given_at=at if given else None,
        valid_until=at + timedelta(days=notice.validity_days) if given else None,
        created_by=_staff_id(acting), created_at=utcnow(),
    )
    session.add(record)
    session.flush()
    optional_items = offered(session, notice.id or 0).items
    for item_id in sorted(set(data.item_ids)):
        for recipient in sorted(set(data.recipients)):
            session.add(ConsentScope(record_id=record.id, item_id=item_id, recipient=recipient,
                                     optional=optional_items.get(item_id, False)))
    created = _add_event(session, record, EventType.given if given else EventType.refused, at,
                         acting, giver.id, data.channel, data.evidence_ref)
    receipt = receipts.issue(session, record, created, at) if given else None
    if given:
        _lift_withdrawal_restrictions(session, acting, child.id, record.purpose_id, at)
    audit.append(session, "consent.given" if given else "consent.refused",
                 actor=audit_actor(acting), target_type="consent_record", target_id=record.id,
                 purpose_id=record.purpose_id,
                 details={"principal": child.id, "relation": data.relation.value,
                          "notice": notice.id, "channel": data.channel.value,
                          "receipt": receipt.id if receipt else None})
    return record, receipt


def withdraw(session: Session, acting: Acting, record_id: str, data: WithdrawIn,
             policy: CapacityPolicy | None = None) -> tuple[ConsentRecord, Receipt]:
    """Withdraw a consent from `data.at` (default now): the giver, the child (of age to decide)
    or another legal representative in force may withdraw. With the policy's default a
    restriction on the purpose follows (source "withdrawal") until consent is given again."""
    policy = policy or _policy
    at = as_utc(data.at or utcnow())
    day = rules.local_day(at)
    record = get_record(session, record_id)
    if record.state != ConsentState.given or record.given_at is None:
        raise Conflict(Reason.of("consent.not_given", refs={"record_id": record.id},
                                 state=messages.text(f"consent.state.{record.state}")))
    by = data.by_person_id or record.given_by_id
    get_person(session, by)
    child = get_person(session, record.principal_id)
    allowed = by in (record.given_by_id, record.principal_id) or any(
        g.guardian_id == by for g in guardianships(session, child.id, day))
    if by == child.id and by != record.given_by_id and policy.guardian_decides(
            rules.age_on(child.birth_date, day)):
        allowed = False
    if not allowed:
        raise Forbidden(Reason.of("consent.no_withdrawal_authority", field="by_person_id",
                                  refs={"record_id": record.id}, person=by))
    record.state = ConsentState.withdrawn
    record.withdrawn_at = at
    session.add(record)
    session.flush()
    created = _add_event(session, record, EventType.withdrawn, at, acting, by, data.channel,
                         data.evidence_ref)
    receipt = receipts.issue(session, record, created, at)
    if policy.withdrawal_restricts_purpose:
        add_restriction(session, acting, RestrictionIn(
            person_id=child.id, purpose_id=record.purpose_id,
            source=RestrictionSource.withdrawal, source_ref=record.id,
            reason="同意の撤回 / consent withdrawn", valid_from=at), check_role=False)
    audit.append(session, "consent.withdrawn", actor=audit_actor(acting),
                 target_type="consent_record", target_id=record.id,
                 purpose_id=record.purpose_id,
                 details={"principal": child.id, "by": by, "channel": data.channel.value,
                          "receipt": receipt.id})
    return record, receipt


def expire_due(session: Session, acting: Acting, at: datetime | None = None) -> int:
    """Record the `expired` event of consents whose validity has ended (eligibility needs no
    such event: it compares `valid_until`; this keeps the record's state and history true)."""
    moment = as_utc(at or utcnow())
    due = session.exec(select(ConsentRecord).where(
        ConsentRecord.state == ConsentState.given, col(ConsentRecord.valid_until) <= moment
    )).all()
    for record in due:
        record.state = ConsentState.expired
        session.add(record)
        _add_event(session, record, EventType.expired, as_utc(record.valid_until or moment),
                   acting, None, record.collection_method, "")
        audit.append(session, "consent.expired", actor=audit_actor(acting),
                     target_type="consent_record", target_id=record.id,
                     purpose_id=record.purpose_id)
    return len(due)


def history(session: Session, person_id: str) -> list[ConsentRecord]:
    """Every consent record of a child (as principal), newest first."""
    return list(session.exec(select(ConsentRecord).where(ConsentRecord.principal_id == person_id)
                             .order_by(col(ConsentRecord.created_at).desc())).all())


def scopes_of(session: Session, record_id: str) -> list[ConsentScope]:
    return list(session.exec(select(ConsentScope).where(ConsentScope.record_id == record_id)
                             .order_by(col(ConsentScope.id))).all())


def events_of(session: Session, record_id: str) -> list[ConsentEvent]:
    return list(session.exec(select(ConsentEvent).where(ConsentEvent.record_id == record_id)
                             .order_by(col(ConsentEvent.at), col(ConsentEvent.id))).all())


def get_receipt(session: Session, receipt_id: str) -> Receipt:
    found = session.get(Receipt, receipt_id)
    if found is None:
        raise NotFound(Reason.of("consent.receipt_not_found", refs={"receipt_id": receipt_id}))
    return found


# ---------------------------------------------------------------- re-confirmation


@dataclass(frozen=True)
class Reconfirmation:
    record_id: str
    principal_id: str
    threshold: int
    age: int


def reconfirmation_due(session: Session, at: datetime | None = None,
                       policy: CapacityPolicy | None = None) -> list[Reconfirmation]:
    """Consents in force given (or last confirmed) for a younger child who has since crossed a
    threshold (the view age, the guardian age, majority): to be re-confirmed."""
    policy = policy or _policy
    moment = as_utc(at or utcnow())
    day = rules.local_day(moment)
    found: list[Reconfirmation] = []
    for threshold in policy.thresholds():
        cut = rules.latest_birth_for_age(day, threshold)
        rows = session.exec(
            select(col(ConsentRecord.id), col(ConsentRecord.principal_id),
                   col(Person.birth_date))
            .join(Person, col(Person.id) == ConsentRecord.principal_id)
            .where(*_in_force(moment), ConsentRecord.confirmed_age < threshold,
                   col(Person.birth_date) <= cut)
        ).all()
        found.extend(Reconfirmation(rid, pid, threshold, rules.age_on(birth, day))
                     for rid, pid, birth in rows)
    found.sort(key=lambda r: (r.record_id, r.threshold))
    return found


def reconfirm(session: Session, acting: Acting, record_id: str, child_view: ChildView,
              child_view_reason: str = "", channel: Channel = Channel.counter,
              evidence_ref: str = "", at: datetime | None = None) -> tuple[ConsentRecord,
                                                                          Receipt]:
    """The child (or guardian) confirms a consent at a threshold, with the child's view."""
    moment = as_utc(at or utcnow())
    record = get_record(session, record_id)
    if record.state != ConsentState.given:
        raise Conflict(Reason.of("consent.not_given", refs={"record_id": record.id},
                                 state=messages.text(f"consent.state.{record.state}")))
    child = get_person(session, record.principal_id)
    record.confirmed_age = rules.age_on(child.birth_date, rules.local_day(moment))
    record.child_view = child_view
    record.child_view_reason = child_view_reason
    session.add(record)
    created = _add_event(session, record, EventType.reconfirmed, moment, acting, child.id,
                         channel, evidence_ref)
    receipt = receipts.issue(session, record, created, moment)
    audit.append(session, "consent.reconfirmed", actor=audit_actor(acting),
                 target_type="consent_record", target_id=record.id,
                 purpose_id=record.purpose_id, details={"view": child_view.value})
    return record, receipt


# ---------------------------------------------------------------- restrictions


def add_restriction(session: Session, acting: Acting, data: RestrictionIn, *,
                    check_role: bool = True) -> Restriction:
    """Restrict a person for a purpose (officer decision, granted 利用停止, withdrawal)."""
    if check_role:
        _require_privacy_officer(acting)
    get_person(session, data.person_id)
    if not data.reason.strip():
        raise InvalidInput(Reason.of("consent.reason_required", field="reason"))
    restriction = Restriction(
        person_id=data.person_id, purpose_id=data.purpose_id, source=data.source,
        source_ref=data.source_ref, reason=data.reason,
        valid_from=as_utc(data.valid_from or utcnow()),
        valid_until=as_utc(data.valid_until) if data.valid_until else None,
        created_by=_staff_id(acting))
    session.add(restriction)
    session.flush()
    audit.append(session, "consent.restriction_added", actor=audit_actor(acting),
                 target_type="consent_restriction", target_id=restriction.id,
                 purpose_id=data.purpose_id,
                 details={"person": data.person_id, "source": data.source.value})
    return restriction


def lift_restriction(session: Session, acting: Acting, restriction_id: int,
                     at: datetime | None = None) -> Restriction:
    _require_privacy_officer(acting)
    restriction = session.get(Restriction, restriction_id)
    if restriction is None:
        raise NotFound(Reason.of("consent.restriction_not_found"))
    restriction.lifted_at = as_utc(at or utcnow())
    restriction.lifted_by = _staff_id(acting)
    session.add(restriction)
    audit.append(session, "consent.restriction_lifted", actor=audit_actor(acting),
                 target_type="consent_restriction", target_id=restriction.id,
                 purpose_id=restriction.purpose_id)
    return restriction


def _lift_withdrawal_restrictions(session: Session, acting: Acting, person_id: str,
                                  purpose_id: int, at: datetime) -> None:
    """Consent given again ends the restrictions its withdrawal caused."""
    for restriction in session.exec(select(Restriction).where(
            Restriction.person_id == person_id, Restriction.purpose_id == purpose_id,
            Restriction.source == RestrictionSource.withdrawal,
            col(Restriction.lifted_at).is_(None), col(Restriction.valid_from) <= at)).all():
        restriction.lifted_at = at
        restriction.lifted_by = _staff_id(acting)
        session.add(restriction)
        audit.append(session, "consent.restriction_lifted", actor=audit_actor(acting),
                     target_type="consent_restriction", target_id=restriction.id,
                     purpose_id=purpose_id, details={"because": "consent_given"})


def restrictions_of(session: Session, person_id: str) -> list[Restriction]:
    return list(session.exec(select(Restriction).where(Restriction.person_id == person_id)
                             .order_by(col(Restriction.valid_from).desc())).all())


# ---------------------------------------------------------------- consent route unsuitable


def mark_unsuitable(session: Session, acting: Acting, person_id: str, reason: str,
                    purpose_id: int | None = None, at: datetime | None = None
                    ) -> UnsuitableMark:
    """Privacy officers only: consent must never count for this child (LAW.md §12.1)."""
    _require_privacy_officer(acting)
    get_person(session, person_id)
    if not reason.strip():
        raise InvalidInput(Reason.of("consent.reason_required", field="reason"))
    mark = UnsuitableMark(person_id=person_id, purpose_id=purpose_id, reason=reason,
                          marked_by=_staff_id(acting), marked_at=as_utc(at or utcnow()))
    session.add(mark)
    session.flush()
    audit.append(session, "consent.route_marked_unsuitable", actor=audit_actor(acting),
                 target_type="consent_person", target_id=person_id, purpose_id=purpose_id,
                 details={"mark": mark.id})
    return mark


def lift_unsuitable(session: Session, acting: Acting, mark_id: int,
                    at: datetime | None = None) -> UnsuitableMark:
    _require_privacy_officer(acting)
    mark = session.get(UnsuitableMark, mark_id)
    if mark is None:
        raise NotFound(Reason.of("consent.mark_not_found"))
    mark.lifted_at = as_utc(at or utcnow())
    mark.lifted_by = _staff_id(acting)
    session.add(mark)
    audit.append(session, "consent.route_mark_lifted", actor=audit_actor(acting),
                 target_type="consent_person", target_id=mark.person_id,
                 purpose_id=mark.purpose_id, details={"mark": mark.id})
    return mark


def unsuitable_marks(session: Session, acting: Acting, person_id: str) -> list[UnsuitableMark]:
    """The marks of a person: privacy officers only (others must not learn of them)."""
    _require_privacy_officer(acting)
    marks = list(session.exec(select(UnsuitableMark)
                              .where(UnsuitableMark.person_id == person_id)
                              .order_by(col(UnsuitableMark.marked_at).desc())).all())
    audit.append(session, "consent.route_marks_viewed", actor=audit_actor(acting),
                 target_type="consent_person", target_id=person_id)
    return marks


# ---------------------------------------------------------------- eligibility (set-based)


def _in_force(at: datetime) -> list[Any]:
    """A record whose consent is in force at `at` (given, not yet expired nor withdrawn)."""
    return [
        col(ConsentRecord.given_at).is_not(None),
        col(ConsentRecord.given_at) <= at,
        or_(col(ConsentRecord.valid_until).is_(None), col(ConsentRecord.valid_until) > at),
        or_(col(ConsentRecord.withdrawn_at).is_(None), col(ConsentRecord.withdrawn_at) > at),
    ]


def _covering(purpose_id: int, flow: Flow) -> list[Any]:
    item_id, recipient = flow
    return [ConsentScope.record_id == ConsentRecord.id, ConsentScope.item_id == item_id,
            ConsentScope.recipient == recipient, ConsentRecord.purpose_id == purpose_id]


def _counting(policy: CapacityPolicy) -> list[Any]:
    if policy.child_objection_blocks:
        return [ConsentRecord.child_view != ChildView.objection.value]
    return []


def _guardians_in_force(day: date) -> list[Any]:
    return [col(Guardianship.valid_from) <= day,
            or_(col(Guardianship.valid_until).is_(None), col(Guardianship.valid_until) > day)]


def _restricted(purpose_id: int, at: datetime) -> Select[Any]:
    return select(Restriction.person_id).where(
        Restriction.purpose_id == purpose_id, col(Restriction.valid_from) <= at,
        or_(col(Restriction.valid_until).is_(None), col(Restriction.valid_until) > at),
        or_(col(Restriction.lifted_at).is_(None), col(Restriction.lifted_at) > at))


def _unsuitable(purpose_id: int, at: datetime) -> Select[Any]:
    return select(UnsuitableMark.person_id).where(
        or_(col(UnsuitableMark.purpose_id).is_(None),
            col(UnsuitableMark.purpose_id) == purpose_id),
        col(UnsuitableMark.marked_at) <= at,
        or_(col(UnsuitableMark.lifted_at).is_(None), col(UnsuitableMark.lifted_at) > at))


def _covered(purpose_id: int, flow: Flow, at: datetime, policy: CapacityPolicy) -> Any:
    """Person ids whose consent for one flow counts at `at` under the policy (one query)."""
    day = rules.local_day(at)
    cut = rules.latest_birth_for_age(day, policy.guardian_required_below)
    # The child decides at or above the guardian age.
    by_self = (select(ConsentRecord.principal_id)
               .select_from(ConsentRecord).join(ConsentScope, and_(*_covering(purpose_id, flow)))
               .join(Person, col(Person.id) == ConsentRecord.principal_id)
               .where(*_in_force(at), *_counting(policy), ConsentRecord.relation == "self",
                      col(Person.birth_date) <= cut))
    # Below it, the legal representatives in force: all of them (default) or any one.
    given = (select(ConsentRecord.principal_id.label("child"),  # type: ignore[attr-defined]
                    ConsentRecord.given_by_id.label("giver"))  # type: ignore[attr-defined]
             .select_from(ConsentRecord).join(ConsentScope, and_(*_covering(purpose_id, flow)))
             .where(*_in_force(at), *_counting(policy),
                    col(ConsentRecord.relation).in_(["parent", "minor_guardian"]))
             .distinct().subquery("given"))
    by_guardians = (select(Guardianship.child_id)
                    .join(Person, col(Person.id) == Guardianship.child_id)
                    .outerjoin(given, and_(given.c.child == Guardianship.child_id,
                                           given.c.giver == Guardianship.guardian_id))
                    .where(*_guardians_in_force(day))
                    .group_by(Guardianship.child_id))
    if not policy.guardian_consent_after_threshold:
        by_guardians = by_guardians.where(col(Person.birth_date) > cut)
    if policy.parents == "all":
        by_guardians = by_guardians.having(func.count() == func.count(given.c.giver))
    else:
        by_guardians = by_guardians.having(func.count(given.c.giver) > 0)
        if policy.withdrawal_by_either_withdraws:
            by_guardians = by_guardians.where(
                col(Guardianship.child_id).not_in(_withdrawn_since(purpose_id, flow, at)))
    return union(by_self, by_guardians)


def _withdrawn_since(purpose_id: int, flow: Flow, at: datetime) -> Select[Any]:
    """Children whose guardian withdrew this flow and no guardian consented again since."""
    withdrawn = (select(ConsentRecord.principal_id.label("child"),  # type: ignore[attr-defined]
                        func.max(ConsentRecord.withdrawn_at).label("w"))
                 .select_from(ConsentRecord)
                 .join(ConsentScope, and_(*_covering(purpose_id, flow)))
                 .where(col(ConsentRecord.withdrawn_at) <= at,
                        col(ConsentRecord.relation).in_(["parent", "minor_guardian"]))
                 .group_by(ConsentRecord.principal_id).subquery("withdrawn"))
    regiven = (select(ConsentRecord.principal_id.label("child"),  # type: ignore[attr-defined]
                      func.max(ConsentRecord.given_at).label("g"))
               .select_from(ConsentRecord).join(ConsentScope, and_(*_covering(purpose_id, flow)))
               .where(*_in_force(at), col(ConsentRecord.relation).in_(["parent",
                                                                       "minor_guardian"]))
               .group_by(ConsentRecord.principal_id).subquery("regiven"))
    return (select(withdrawn.c.child)
            .outerjoin(regiven, regiven.c.child == withdrawn.c.child)
            .where(or_(regiven.c.g.is_(None), regiven.c.g <= withdrawn.c.w)))


def _full_cover(purpose_id: int, flows: Sequence[Flow], at: datetime,
                policy: CapacityPolicy, *, exact: bool = False) -> Any:
    """(child, giver) pairs whose consents in force at `at` cover every one of `flows`.

    One aggregate over the scope rows of the flows: a pair qualifies when, for each flow, at
    least one of its rows is that flow (no DISTINCT). The test is written `max(...) > 0`, not
    `= 1`: PostgreSQL estimates an equality in HAVING as very selective and would then plan
    nested loops over what is in fact most of the consents. SQLite, which has no such
    estimate, plans the exact form better (`exact`)."""
    item_id, recipient_key = col(ConsentScope.item_id), col(ConsentScope.recipient)
    wanted = or_(*[and_(item_id == item, recipient_key == recipient)
                   for item, recipient in flows])
    flags = [func.max(case((and_(item_id == item, recipient_key == recipient), 1), else_=0))
             for item, recipient in flows]
    each = [flag == 1 if exact else flag > 0 for flag in flags]
    return (select(col(ConsentRecord.principal_id).label("child"),
                   col(ConsentRecord.given_by_id).label("giver"))
            .select_from(ConsentRecord)
            .join(ConsentScope, col(ConsentScope.record_id) == ConsentRecord.id)
            .where(ConsentRecord.purpose_id == purpose_id, *_in_force(at), *_counting(policy),
                   wanted)
            .group_by(ConsentRecord.principal_id, ConsentRecord.given_by_id)
            .having(and_(*each)))


def _default_policy(person_id: Any, birth_date: Any | None, purpose_id: int,
                    flows: Sequence[Flow], at: datetime, policy: CapacityPolicy) -> Any:
    """Under the default policy ("all" parents): whether `person_id`'s consent covers every flow.

    Below the guardian age every legal representative in force (at least one) must have
    consented to every flow; from that age, the child. (For every flow, every guardian) equals
    (for every guardian, every flow), so one set of (child, giver) pairs whose consents cover
    all flows answers every flow at once. The eligible ids are built from the consents (a much
    smaller set than the register) and meet the population in a semi-join. `birth_date` is the
    population's own copy of the register's birth date, when it has one; otherwise the ages are
    read from the register inside the sets.
    """
    moment = as_utc(at)
    day = rules.local_day(moment)
    cut = rules.latest_birth_for_age(day, policy.guardian_required_below)
    full = _full_cover(purpose_id, flows, moment, policy, exact=True).cte("full_consent")
    own = select(full.c.child).where(full.c.child == full.c.giver)
    holder = Guardianship.__table__.alias("holder")  # type: ignore[attr-defined]
    every = Guardianship.__table__.alias("every")  # type: ignore[attr-defined]
    # A child qualifies when its links in force that meet a fully covering consent are all its
    # links in force (at least one). `full` has one row per (child, giver), so the join counts
    # each link in force once: "no link in force lacks a consent" as one count per child
    # rather than a doubly nested NOT EXISTS per link.
    in_force = (select(func.count()).select_from(every)
                .where(every.c.child_id == holder.c.child_id, every.c.valid_from <= day,
                       or_(every.c.valid_until.is_(None), every.c.valid_until > day))
                .scalar_subquery())
    by_guardians = (
        select(holder.c.child_id)
        .select_from(full)
        .join(holder, and_(full.c.child == holder.c.child_id,
                           full.c.giver == holder.c.guardian_id))
        .where(holder.c.valid_from <= day,
               or_(holder.c.valid_until.is_(None), holder.c.valid_until > day))
        .group_by(holder.c.child_id)
        .having(func.count() == in_force))
    guardians_only_below = not policy.guardian_consent_after_threshold
    if birth_date is not None:
        guardians_consented = person_id.in_(by_guardians)
        if guardians_only_below:
            guardians_consented = and_(birth_date > cut, guardians_consented)
        return or_(and_(birth_date <= cut, person_id.in_(own)), guardians_consented)
    subject = Person.__table__.alias("subject")  # type: ignore[attr-defined]
    own = own.join(subject, subject.c.id == full.c.child).where(subject.c.birth_date <= cut)
    if guardians_only_below:
        child = Person.__table__.alias("child")  # type: ignore[attr-defined]
        by_guardians = (by_guardians.join(child, child.c.id == holder.c.child_id)
                        .where(child.c.birth_date > cut))
    return person_id.in_(union_all(own, by_guardians))


def _default_policy_split(query: Select[Any], person_id: Any, birth_date: Any | None,
                          purpose_id: int, flows: Sequence[Flow], at: datetime,
                          policy: CapacityPolicy) -> Select[Any]:
    """The default policy as two branches by age, driven by the population (PostgreSQL).

    From the guardian age the person's own fully covering consent is one join; below it the
    guardians in force are grouped per child against the fully covered (child, giver) pairs.
    The covered pairs are inlined in each branch rather than shared as a CTE: a CTE scan would
    keep the whole statement in one process, and the branches each plan in parallel.
    `birth_date` is the population's own copy of the register's birth date, when it has one;
    otherwise each person is looked up again.
    """
    day = rules.local_day(at)
    cut = rules.latest_birth_for_age(day, policy.guardian_required_below)
    allowed = query
    if birth_date is None:
        subject = Person.__table__.alias("subject")  # type: ignore[attr-defined]
        allowed = query.join(subject, subject.c.id == person_id)
        birth_date = subject.c.birth_date
    own = _full_cover(purpose_id, flows, at, policy).subquery("own_consent")
    by_self = (allowed.join(own, and_(own.c.child == person_id, own.c.giver == person_id))
               .where(birth_date <= cut))
    full = _full_cover(purpose_id, flows, at, policy).subquery("full_consent")
    covered = (select(col(Guardianship.child_id).label("child"))
               .outerjoin(full, and_(full.c.child == Guardianship.child_id,
                                     full.c.giver == Guardianship.guardian_id))
               .where(*_guardians_in_force(day))
               .group_by(Guardianship.child_id)
               .having(func.count() == func.count(full.c.giver))
               .subquery("covered"))
    by_guardians = allowed.join(covered, covered.c.child == person_id)
    if policy.guardian_consent_after_threshold:
        # Both branches can hold the same older child: keep each person once.
        branches = union(by_self, by_guardians).subquery("eligible")
    else:
        branches = union_all(by_self, by_guardians.where(birth_date > cut)).subquery("eligible")
    return select(branches.c.person_id)


def _register_birth_date(population: Any) -> Any | None:
    """The population's `birth_date` column when it is the register's own, else None."""
    column = population.c.get("birth_date")
    register = Person.__table__.c.birth_date  # type: ignore[attr-defined]
    if column is not None and column.shares_lineage(register):
        return column
    return None


def eligible(session: Session | None, purpose_id: int, consent_flows: Sequence[Flow],
             population: Population, at: datetime,
             policy: CapacityPolicy | None = None) -> Select[Any]:
    """The eligible person ids of `population` (a query of person ids) at `at`, as a query.

    When the population also selects `consent_person.birth_date` as `birth_date` (as
    `population_of_children` does), the ages are read from it instead of from the register
    again; any other column of that name is ignored.

    A person is included when no restriction applies to the purpose and, when there are
    consent flows, the consent route is not marked unsuitable and, for every (item, recipient)
    flow, a consent in force at `at` covers it under the capacity policy. Set-based: the result
    is one SELECT the caller can run or use in `INSERT … SELECT`; no per-person work in Python.
    `session` tells the backend, whose planner picks the formulation (the rule is the same).
    """
    policy = policy or _policy
    moment = as_utc(at)
    pop = population.subquery("population")
    person_id = next(iter(pop.c))
    query = select(person_id.label("person_id")).where(
        ~exists(_restricted(purpose_id, moment).where(
            col(Restriction.person_id) == person_id)))
    flows = list(dict.fromkeys((int(i), str(r)) for i, r in consent_flows))
    if not flows:
        return query
    query = query.where(
        ~exists(_unsuitable(purpose_id, moment).where(
            col(UnsuitableMark.person_id) == person_id)))
    if policy.parents == "all":
        # One formulation per planner (the same rule, checked by the tests on both): SQLite
        # builds the eligible set from the consents and meets the population once; PostgreSQL
        # splits the population by age and joins each part to the consents.
        birth_date = _register_birth_date(pop)
        if session is not None and session.get_bind().dialect.name == "sqlite":
            return query.where(_default_policy(person_id, birth_date, purpose_id, flows,
                                               moment, policy))
        return _default_policy_split(query, person_id, birth_date, purpose_id, flows, moment,
                                     policy)
    for flow in flows:
        query = query.where(person_id.in_(_covered(purpose_id, flow, moment, policy)))
    return query


def why_excluded(session: Session, person_id: str, purpose_id: int,
                 consent_flows: Sequence[Flow], at: datetime, *,
                 population: Population | None = None, reveal_unsuitable: bool = False,
                 policy: CapacityPolicy | None = None) -> list[Reason]:
    """Why `eligible()` leaves this person out (empty when it includes them), with Reasons.

    The unsuitable mark is named only with `reveal_unsuitable` (privacy officers); anyone
    else is told only that the consent route is not available.
    """
    policy = policy or _policy
    moment = as_utc(at)
    day = rules.local_day(moment)
    person = get_person(session, person_id)
    refs: dict[str, Any] = {"person_id": person.id, "purpose_id": purpose_id}
    reasons: list[Reason] = []
    if population is not None:
        pop = population.subquery("population")
        first = next(iter(pop.c))
        if session.exec(select(first).where(first == person.id)).first() is None:
            reasons.append(Reason.of("consent.excluded_not_in_population", refs=refs))
    for restriction in session.exec(select(Restriction).where(
            col(Restriction.id).in_(_restricted(purpose_id, moment).with_only_columns(
                col(Restriction.id))), Restriction.person_id == person.id)).all():
        reasons.append(Reason.of(
            "consent.excluded_restricted",
            refs={**refs, "restriction_id": restriction.id, "source": restriction.source},
            source=messages.text(f"consent.source.{restriction.source}"),
            since=rules.local_day(restriction.valid_from).isoformat()))
    flows = list(dict.fromkeys((int(i), str(r)) for i, r in consent_flows))
    if not flows:
        return reasons
    marked = session.exec(select(UnsuitableMark.id).where(
        col(UnsuitableMark.id).in_(_unsuitable(purpose_id, moment).with_only_columns(
            col(UnsuitableMark.id))), UnsuitableMark.person_id == person.id)).first()
    if marked is not None:
        code = ("consent.excluded_route_unsuitable" if reveal_unsuitable
                else "consent.excluded_route_unavailable")
        reasons.append(Reason.of(code, refs=refs))
    age = rules.age_on(person.birth_date, day)
    links = guardianships(session, person.id, day)
    for flow in flows:
        reasons.extend(_flow_reasons(session, person, purpose_id, flow, moment, age, links,
                                     policy, refs))
    return reasons


def _records_for(session: Session, person_id: str, purpose_id: int,
                 flow: Flow) -> list[ConsentRecord]:
    return list(session.exec(select(ConsentRecord).join(
        ConsentScope, and_(*_covering(purpose_id, flow))).where(
        ConsentRecord.principal_id == person_id).order_by(col(ConsentRecord.created_at))).all())


def _counts(record: ConsentRecord, at: datetime, policy: CapacityPolicy) -> bool:
    if record.given_at is None or as_utc(record.given_at) > at:
        return False
    if record.valid_until is not None and as_utc(record.valid_until) <= at:
        return False
    if record.withdrawn_at is not None and as_utc(record.withdrawn_at) <= at:
        return False
    return not (policy.child_objection_blocks and record.child_view == ChildView.objection)


def _lapse_reasons(records: Iterable[ConsentRecord], at: datetime, policy: CapacityPolicy,
                   params: dict[str, Any]) -> list[Reason]:  # params: item, recipient
    """Why the records that exist do not count (withdrawn, expired, objected)."""
    found: list[Reason] = []
    codes: set[str] = set()
    for record in records:
        if record.given_at is None or as_utc(record.given_at) > at:
            continue
        if record.withdrawn_at is not None and as_utc(record.withdrawn_at) <= at:
            codes.add("consent.excluded_withdrawn")
        elif record.valid_until is not None and as_utc(record.valid_until) <= at:
            codes.add("consent.excluded_expired")
        elif policy.child_objection_blocks and record.child_view == ChildView.objection:
            codes.add("consent.excluded_child_objected")
    for code in sorted(codes):
        found.append(Reason.of(code, refs={"record_ids": [r.id for r in records]}, **params))
    return found


def _flow_reasons(session: Session, person: Person, purpose_id: int, flow: Flow,
                  at: datetime, age: int, links: list[Guardianship], policy: CapacityPolicy,
                  refs: dict[str, Any]) -> list[Reason]:
    records = _records_for(session, person.id, purpose_id, flow)
    params: dict[str, Any] = {"item": flow[0], "recipient": flow[1]}
    flow_refs = {**refs, "item_id": flow[0], "recipient": flow[1]}
    own = [r for r in records if r.relation == Relation.self_]
    by_guardian = [r for r in records if r.relation != Relation.self_]
    self_ok = not policy.guardian_decides(age) and any(_counts(r, at, policy) for r in own)
    if self_ok:
        return []
    guardians_apply = policy.guardian_decides(age) or policy.guardian_consent_after_threshold
    if guardians_apply and links:
        have = [link for link in links if any(
            r.given_by_id == link.guardian_id and _counts(r, at, policy) for r in by_guardian)]
        ok = len(have) == len(links) if policy.parents == "all" else bool(have)
        if ok and policy.parents == "any" and policy.withdrawal_by_either_withdraws:
            latest_withdrawal = max((as_utc(r.withdrawn_at) for r in by_guardian
                                     if r.withdrawn_at and as_utc(r.withdrawn_at) <= at),
                                    default=None)
            latest_given = max((as_utc(r.given_at) for r in by_guardian
                                if r.given_at and _counts(r, at, policy)), default=None)
            if latest_withdrawal is not None and (latest_given is None
                                                  or latest_given <= latest_withdrawal):
                ok = False
        if ok:
            return []
    if not policy.guardian_decides(age):
        lapsed = _lapse_reasons(own, at, policy, params)
        return lapsed or [Reason.of("consent.excluded_no_self_consent", refs=flow_refs,
                                    **params)]
    if not links:
        return [Reason.of("consent.excluded_no_guardian", refs=flow_refs)]
    lapsed = _lapse_reasons(by_guardian, at, policy, params)
    if lapsed:
        return lapsed
    missing = [link for link in links if not any(
        r.given_by_id == link.guardian_id and _counts(r, at, policy) for r in by_guardian)]
    return [Reason.of("consent.excluded_no_guardian_consent",
                      refs={**flow_refs, "guardian_id": link.guardian_id},
                      guardian=link.guardian_id, **params) for link in missing] or [
        Reason.of("consent.excluded_withdrawn", refs=flow_refs, **params)]


def population_of_children(min_age: int, max_age: int, at: datetime) -> Population:
    """A population query: people aged min_age..max_age during the Japanese day of `at`.

    Ages follow 年齢計算法. The birth date comes along so that `eligible` need not read it again.
    """
    day = rules.local_day(as_utc(at))
    oldest = rules.latest_birth_for_age(day, max_age + 1)
    youngest = rules.latest_birth_for_age(day, min_age)
    return sa_select(col(Person.id), col(Person.birth_date)).where(
        col(Person.birth_date) > oldest, col(Person.birth_date) <= youngest)


def literal_population(person_ids: Iterable[str]) -> Population:
    """A population of the given ids (tests and one-off checks)."""
    ids = list(person_ids)
    return select(Person.id).where(col(Person.id).in_(ids or [literal("")]))
