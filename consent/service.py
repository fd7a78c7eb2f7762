"""Operations on notices, consent records and their events, restrictions and the unsuitable mark.

Services take a session and the acting principal, raise domain errors and never commit. Audit
events carry ids and codes only, never names, numbers or free text about a person.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, inspect
from sqlalchemy.orm import Session as OrmSession
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
    Receipt,
    Relation,
    Restriction,
    RestrictionSource,
    UnsuitableMark,
)
from consent.people import (
    Acting,
    audit_actor,
    audit_read,
    get_person,
    guardianships,
    require_person_access,
)
from consent.rules import CapacityPolicy
from consent.schemas import ConsentIn, NoticeIn, RestrictionIn, WithdrawIn
from core import audit, messages
from core.ages import MAJORITY_AGE
from core.auth import Principal
from core.clock import as_utc, local_day, utcnow
from core.db import get_by
from core.models import Organ, OutsideBody, Role
from core.policies import policy as configured
from core.reasons import Conflict, Forbidden, InvalidInput, Reason


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
    return get_by(session, Notice, "consent.notice_not_found",
                  params={"refs": {"notice_id": notice_id}}, id=notice_id)


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


def noticed_items(session: Session, purpose_id: int, item_ids: Collection[int],
                  recipient: str, at: datetime) -> set[int]:
    """The items among `item_ids` that a notice of the purpose, shown by `at`, names together
    with `recipient` ("organ:<id>" or "body:<id>"): the flows consent can have been asked for."""
    if not item_ids:
        return set()
    rows = session.exec(
        select(NoticeItem.item_id)
        .join(Notice, col(Notice.id) == NoticeItem.notice_id)
        .join(NoticeRecipient, col(NoticeRecipient.notice_id) == Notice.id)
        .where(Notice.purpose_id == purpose_id,
               col(Notice.first_shown_at).is_not(None),
               col(Notice.first_shown_at) <= at,
               NoticeRecipient.recipient == recipient,
               col(NoticeItem.item_id).in_(set(item_ids)))
    ).all()
    return set(rows)


def offered(session: Session, notice_id: int) -> rules.Offered:
    return rules.Offered(
        items={i.item_id: i.optional for i in notice_items(session, notice_id)},
        recipients={r.recipient: r.optional for r in notice_recipients(session, notice_id)},
    )


# ---------------------------------------------------------------- recording consent


def get_record(session: Session, record_id: str) -> ConsentRecord:
    return get_by(session, ConsentRecord, "consent.record_not_found",
                  params={"refs": {"record_id": record_id}}, id=record_id)


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
    policy = policy or configured(CapacityPolicy)
    at = as_utc(data.at or utcnow())
    day = local_day(at)
    child = get_person(session, data.principal_id)
    notice = get_notice(session, data.notice_id)
    giver_id = data.given_by_id or child.id
    giver = get_person(session, giver_id)
    age = policy.age(child.birth_date, day)
    reasons: list[Reason] = []
    refs = {"notice_id": notice.id, "principal_id": child.id}
    if at > utcnow() + timedelta(minutes=5):
        reasons.append(Reason.of("consent.in_the_future", refs=refs, field="at"))
    if notice.first_shown_at is None or notice.first_shown_at > at:
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
        if link is None or age >= MAJORITY_AGE:
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
    policy = policy or configured(CapacityPolicy)
    at = as_utc(data.at or utcnow())
    day = local_day(at)
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
            policy.age(child.birth_date, day)):
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
        _add_event(session, record, EventType.expired, record.valid_until or moment,
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
    return get_by(session, Receipt, "consent.receipt_not_found",
                  params={"refs": {"receipt_id": receipt_id}}, id=receipt_id)


# ---------------------------------------------------------------- audited reads of identified data
#
# Each read below is refused unless the reader may read the person's full record
# (people.require_person_access) and is audited with ids only.


def read_history(session: Session, acting: Acting, person_id: str) -> list[ConsentRecord]:
    get_person(session, person_id)
    require_person_access(session, acting, person_id)
    records = history(session, person_id)
    audit_read(session, acting, "consent.history_viewed", person_id,
               ids=[r.id for r in records])
    return records


def read_restrictions(session: Session, acting: Acting, person_id: str) -> list[Restriction]:
    get_person(session, person_id)
    require_person_access(session, acting, person_id)
    found = restrictions_of(session, person_id)
    audit_read(session, acting, "consent.restrictions_viewed", person_id,
               ids=[r.id or 0 for r in found])
    return found


def read_record(session: Session, acting: Acting, record_id: str) -> ConsentRecord:
    record = get_record(session, record_id)
    require_person_access(session, acting, record.principal_id)
    audit_read(session, acting, "consent.record_viewed", record.principal_id,
               target_type="consent_record", target_id=record.id)
    return record


def read_receipt(session: Session, acting: Acting, receipt_id: str) -> Receipt:
    receipt = get_receipt(session, receipt_id)
    record = get_record(session, receipt.record_id)
    require_person_access(session, acting, record.principal_id)
    audit_read(session, acting, "consent.receipt_viewed", record.principal_id,
               target_type="consent_receipt", target_id=receipt.id, ids=[record.id])
    return receipt


# ---------------------------------------------------------------- re-confirmation


def reconfirm(session: Session, acting: Acting, record_id: str, child_view: ChildView,
              child_view_reason: str = "", channel: Channel = Channel.counter,
              evidence_ref: str = "", at: datetime | None = None,
              policy: CapacityPolicy | None = None) -> tuple[ConsentRecord, Receipt]:
    """The child (or guardian) confirms a consent at a threshold, with the child's view."""
    policy = policy or configured(CapacityPolicy)
    moment = as_utc(at or utcnow())
    record = get_record(session, record_id)
    if record.state != ConsentState.given:
        raise Conflict(Reason.of("consent.not_given", refs={"record_id": record.id},
                                 state=messages.text(f"consent.state.{record.state}")))
    child = get_person(session, record.principal_id)
    record.confirmed_age = policy.age(child.birth_date, local_day(moment))
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
    restriction = get_by(session, Restriction, "consent.restriction_not_found", params={},
                         id=restriction_id)
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
    mark = get_by(session, UnsuitableMark, "consent.mark_not_found", params={}, id=mark_id)
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
