"""Purposes: their fields, items, completeness and workflow (submit, approve, suspend, revise)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from core import audit
from core.auth import Principal
from core.clock import utcnow
from core.db import get_by
from core.models import Department, Organ, Role
from core.reasons import Conflict, InvalidInput, NotFound, Reason
from core.service import (
    Reference,
    Unit,
    active_department,
    active_organ,
    register_reference_check,
)
from governance import rules
from governance.approvals import (
    Actor,
    account_id,
    audit_actor,
    record_step,
    require_author_organ,
    require_drafter,
    take_officer_step,
    take_step,
    workflow_of,
)
from governance.design import (
    PurposeParts,
    canonical_json,
    design_hash,
    design_hasher,
    design_of,
    job_kinds_of,
    read_parts,
)
from governance.models import (
    Purpose,
    PurposeCitation,
    PurposeItem,
    PurposeStatus,
    PurposeSubject,
    PurposeVersion,
)
from governance.schemas import (
    Decision,
    PurposeCreate,
    PurposeItemIn,
    PurposeUpdate,
)
from pia import service as pia
from registry.models import RegistryItem


def ensure_key_free(session: Session, model: type, key: str) -> None:
    if session.exec(select(model).where(model.key == key)).first() is not None:  # type: ignore[attr-defined]
        raise Conflict(Reason.of("governance.key_taken", key=key, field="key"))


def get_purpose(session: Session, key: str) -> Purpose:
    return get_by(session, Purpose, "governance.unknown_purpose", field="purpose", key=key)


def get_purpose_by_id(session: Session, purpose_id: int) -> Purpose:
    return get_by(session, Purpose, "governance.unknown_purpose",
                  params={"key": str(purpose_id)}, id=purpose_id)


def list_purposes(session: Session) -> list[Purpose]:
    return list(session.exec(select(Purpose).order_by(col(Purpose.key))).all())


def _register_item(session: Session, key: str, field_name: str = "items") -> RegistryItem:
    item = session.exec(select(RegistryItem).where(RegistryItem.key == key)).first()
    if item is None:
        raise InvalidInput(Reason.of("governance.unknown_item", key=key, field=field_name))
    return item


def _apply_purpose_fields(
    session: Session, purpose: Purpose, data: PurposeCreate | PurposeUpdate
) -> None:
    fields = data.model_fields_set
    simple = (
        "title_ja",
        "title_en",
        "purpose_text",
        "necessity",
        "acquisition_method",
        "acquisition_note",
        "handling_extraction",
        "handling_matching_key",
        "handling_logic",
        "handling_logic_version",
        "handling_result_viewers",
        "handling_human_assessment",
    )
    for name in simple:
        if name in fields:
            value = getattr(data, name)
            setattr(purpose, name, value if value is not None else "")
    if "job_kinds" in fields:
        purpose.job_kinds = canonical_json(sorted({k.value for k in data.job_kinds or []}))
    for name in ("safeguards", "public_notice", "subjects_rule"):
        if name in fields:
            value = getattr(data, name)
            setattr(purpose, name, canonical_json(value.model_dump() if value else {}))
    assert purpose.id is not None
    if "citations" in fields:
        for old in session.exec(
            select(PurposeCitation).where(PurposeCitation.purpose_id == purpose.id)
        ):
            session.delete(old)
        for citation in data.citations or []:
            session.add(PurposeCitation(purpose_id=purpose.id, **citation.model_dump()))
    if "subjects" in fields:
        for old_subject in session.exec(
            select(PurposeSubject).where(PurposeSubject.purpose_id == purpose.id)
        ):
            session.delete(old_subject)
        session.flush()
        seen: set[tuple[int, int | None, str]] = set()
        for subject in data.subjects or []:
            organ = active_organ(session, subject.organ, "subjects")
            department = (
                active_department(session, subject.department, "subjects")
                if subject.department else None
            )
            assert organ.id is not None
            triple = (organ.id, department.id if department else None, subject.role.value)
            if triple in seen:
                continue
            seen.add(triple)
            session.add(
                PurposeSubject(
                    purpose_id=purpose.id,
                    organ_id=organ.id,
                    department_id=department.id if department else None,
                    role=subject.role,
                )
            )
    purpose.updated_at = utcnow()
    session.add(purpose)
    session.flush()


def create_purpose(session: Session, by: Actor, data: PurposeCreate) -> Purpose:
    require_drafter(by)
    ensure_key_free(session, Purpose, data.key)
    purpose = Purpose(key=data.key, title_ja=data.title_ja, created_by=account_id(by))
    session.add(purpose)
    session.flush()
    _apply_purpose_fields(session, purpose, data)
    audit.append(
        session,
        "governance.purpose_created",
        actor=audit_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
    )
    return purpose


def update_purpose(session: Session, by: Actor, key: str, data: PurposeUpdate) -> Purpose:
    require_drafter(by)
    purpose = get_purpose(session, key)
    require_author_organ(session, by, purpose)
    _require_editable(purpose)
    _apply_purpose_fields(session, purpose, data)
    audit.append(
        session,
        "governance.purpose_updated",
        actor=audit_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"fields": sorted(data.model_fields_set)},
    )
    return purpose


def set_item(session: Session, by: Actor, purpose_key: str, data: PurposeItemIn) -> PurposeItem:
    """Add an item to the purpose, or update its necessity and relevance."""
    require_drafter(by)
    purpose = get_purpose(session, purpose_key)
    require_author_organ(session, by, purpose)
    _require_editable(purpose)
    item = _register_item(session, data.item, "item")
    assert purpose.id is not None and item.id is not None
    link = session.exec(
        select(PurposeItem).where(
            PurposeItem.purpose_id == purpose.id, PurposeItem.item_id == item.id
        )
    ).first()
    if link is None:
        link = PurposeItem(purpose_id=purpose.id, item_id=item.id)
    link.necessity_reason = data.necessity_reason
    link.relevance_to_difficulty = data.relevance_to_difficulty
    link.identified_for = rules.identified_text(data.identified_for)
    session.add(link)
    purpose.updated_at = utcnow()
    session.add(purpose)
    session.flush()
    audit.append(
        session,
        "governance.purpose_item_set",
        actor=audit_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"item": item.key},
    )
    return link


def remove_item(session: Session, by: Actor, purpose_key: str, item_key: str) -> None:
    require_drafter(by)
    purpose = get_purpose(session, purpose_key)
    require_author_organ(session, by, purpose)
    _require_editable(purpose)
    item = _register_item(session, item_key, "item")
    link = session.exec(
        select(PurposeItem).where(
            PurposeItem.purpose_id == purpose.id, PurposeItem.item_id == item.id
        )
    ).first()
    if link is None:
        raise NotFound(
            Reason.of("governance.item_not_in_purpose", item=item_key, purpose=purpose_key)
        )
    session.delete(link)
    audit.append(
        session,
        "governance.purpose_item_removed",
        actor=audit_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"item": item_key},
    )




def facts_of(session: Session, purpose: Purpose,
             parts: PurposeParts | None = None) -> rules.PurposeFacts:
    """The purpose as the completeness rules see it."""
    parts = parts or read_parts(session, purpose)
    citations, subjects, items = parts.citations, parts.subjects, parts.items
    safeguards = rules.parse_json_object(purpose.safeguards)
    return rules.PurposeFacts(
        title_ja=purpose.title_ja,
        purpose_text=purpose.purpose_text,
        citations=len(citations),
        necessity=purpose.necessity,
        acquisition_method=purpose.acquisition_method,
        acquisition_note=purpose.acquisition_note,
        handling={
            "extraction": purpose.handling_extraction,
            "matching_key": purpose.handling_matching_key,
            "logic": purpose.handling_logic,
            "result_viewers": purpose.handling_result_viewers,
            "human_assessment": purpose.handling_human_assessment,
        },
        safeguards={k: v for k, v in safeguards.items() if isinstance(v, list)},
        public_notice={
            k: str(v) for k, v in rules.parse_json_object(purpose.public_notice).items()
        },
        subjects_rule=rules.parse_json_object(purpose.subjects_rule),
        subject_roles=frozenset(s.role for s in subjects),
        job_kinds=frozenset(job_kinds_of(purpose)),
        items=[
            (item.key, link.necessity_reason, link.relevance_to_difficulty)
            for link, item in items
        ],
    )


def missing(session: Session, purpose: Purpose,
            parts: PurposeParts | None = None) -> list[Reason]:
    return rules.completeness(facts_of(session, purpose, parts))


def _require_editable(purpose: Purpose) -> None:
    if purpose.status not in rules.PURPOSE_EDITABLE:
        raise Conflict(Reason.of("governance.not_editable", status=purpose.status))


def _step(session: Session, by: Actor, purpose: Purpose, action: str) -> None:
    take_step(session, by, workflow_of(session, purpose), action)


def _officer_step(session: Session, by: Actor, purpose: Purpose, action: str) -> Principal:
    return take_officer_step(session, by, workflow_of(session, purpose), action)


def submit_purpose(session: Session, by: Actor, key: str) -> Purpose:
    purpose = get_purpose(session, key)
    _step(session, by, purpose, "submit")
    problems = missing(session, purpose)
    if problems:
        raise InvalidInput(problems)
    purpose.status = PurposeStatus.submitted
    purpose.submitted_by = account_id(by)
    purpose.submitted_at = utcnow()
    session.add(purpose)
    record_step(session, "purpose", purpose.id, "submit", by, version=purpose.version)
    audit.append(
        session,
        "governance.purpose_submitted",
        actor=audit_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"version": purpose.version},
    )
    return purpose


def approve_purpose(session: Session, by: Actor, key: str, decision: Decision) -> Purpose:
    purpose = get_purpose(session, key)
    officer = _officer_step(session, by, purpose, "approve")
    problems = missing(session, purpose)
    now = utcnow()
    if purpose.version > 1:
        # A revision (its text, items, subjects, job kinds) changes the design in force: the
        # PIA of the revised design is approved first, as for a route.
        assert purpose.id is not None
        hashes = design_hasher(session, purpose, in_force=False)
        problems.extend(pia.status(session, purpose.id, hashes.accepted, now).reasons)
    if problems:
        raise InvalidInput(problems)
    purpose.status = PurposeStatus.approved
    purpose.approved_by = officer.account_id
    purpose.approved_at = now
    session.add(purpose)
    design = design_of(session, purpose)
    assert purpose.id is not None
    session.add(
        PurposeVersion(
            purpose_id=purpose.id,
            version=purpose.version,
            design=canonical_json(design),
            design_hash=design_hash(design),
            approved_by=officer.account_id,
            approved_at=now,
        )
    )
    record_step(session, "purpose", purpose.id, "approve", by, decision.comment, purpose.version)
    audit.append(
        session,
        "governance.purpose_approved",
        actor=officer.actor(Role.privacy_officer),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"version": purpose.version, "design_hash": design_hash(design)},
    )
    return purpose


def _officer_decides(session: Session, by: Actor, key: str, decision: Decision, action: str,
                     event: str) -> Purpose:
    """One officer's step on a purpose: check and move the status, record step and event."""
    purpose = get_purpose(session, key)
    officer = _officer_step(session, by, purpose, action)
    target = rules.PURPOSE_TRANSITIONS[action].target
    assert target is not None
    purpose.status = PurposeStatus(target)
    session.add(purpose)
    record_step(session, "purpose", purpose.id, action, by, decision.comment, purpose.version)
    audit.append(session, event, actor=officer.actor(Role.privacy_officer),
                 target_type="purpose", target_id=purpose.id, purpose_id=purpose.id)
    return purpose


def return_purpose(session: Session, by: Actor, key: str, decision: Decision) -> Purpose:
    return _officer_decides(session, by, key, decision, "return", "governance.purpose_returned")


def suspend_purpose(session: Session, by: Actor, key: str, decision: Decision) -> Purpose:
    return _officer_decides(session, by, key, decision, "suspend", "governance.purpose_suspended")


def resume_purpose(session: Session, by: Actor, key: str, decision: Decision) -> Purpose:
    return _officer_decides(session, by, key, decision, "resume", "governance.purpose_resumed")


def retire_purpose(session: Session, by: Actor, key: str, decision: Decision) -> Purpose:
    return _officer_decides(session, by, key, decision, "retire", "governance.purpose_retired")


def revise_purpose(session: Session, by: Actor, key: str) -> Purpose:
    """Start a new version of an approved or suspended purpose; it is a draft until approved."""
    purpose = get_purpose(session, key)
    _step(session, by, purpose, "revise")
    purpose.version += 1
    purpose.status = PurposeStatus.draft
    purpose.submitted_by = None
    purpose.submitted_at = None
    session.add(purpose)
    record_step(session, "purpose", purpose.id, "revise", by, version=purpose.version)
    audit.append(
        session,
        "governance.purpose_revised",
        actor=audit_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"version": purpose.version},
    )
    return purpose


def purposes_naming(session: Session, unit: Unit) -> list[Reference]:
    """Purposes not retired whose handling subjects name `unit` (an organ or department)."""
    if isinstance(unit, Organ):
        column: Any = col(PurposeSubject.organ_id)
    elif isinstance(unit, Department):
        column = PurposeSubject.department_id
    else:
        return []
    keys = session.exec(select(Purpose.key).join(
        PurposeSubject, col(PurposeSubject.purpose_id) == Purpose.id).where(
        column == unit.id, Purpose.status != PurposeStatus.retired.value).distinct()
        .order_by(col(Purpose.key))).all()
    return [Reference("利用目的", "purpose", key) for key in keys]


register_reference_check(purposes_naming)
