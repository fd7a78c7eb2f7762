"""Operations on purposes, routes and four-condition authorisations, with their approvals."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core import audit, messages
from core.auth import Principal
from core.clock import as_utc, utcnow
from core.models import Department, Organ, OutsideBody, Role
from core.reasons import Conflict, Forbidden, InvalidInput, NotFound, Reason
from core.service import department_by_key, organ_by_key
from governance import rules
from governance.design import canonical_json, design_hash, design_of
from governance.models import (
    ApprovalStep,
    Authorisation,
    Flow,
    Purpose,
    PurposeCitation,
    PurposeItem,
    PurposeStatus,
    PurposeSubject,
    PurposeVersion,
    RecordStatus,
    Route,
    RouteKind,
)
from governance.schemas import (
    ApprovalIn,
    AuthorisationCreate,
    AuthorisationFields,
    Decision,
    PurposeCreate,
    PurposeItemIn,
    PurposeUpdate,
    RouteCreate,
)
from pia import service as pia
from registry import service as registry
from registry.models import RegistryFile, RegistryItem

DRAFTERS = (Role.privacy_officer, Role.data_holder, Role.analyst)
EDITABLE = (PurposeStatus.draft, PurposeStatus.returned)

messages.register(
    {
        "governance.unknown_purpose": (
            "利用目的「{key}」が見つかりません。",
            "Purpose {key!r} not found.",
        ),
        "governance.unknown_route": ("経路「{key}」が見つかりません。", "Route {key!r} not found."),
        "governance.unknown_authorisation": (
            "目的外利用・提供の承認「{key}」が見つかりません。",
            "Authorisation {key!r} not found.",
        ),
        "governance.unknown_item": (
            "記録項目「{key}」は個人情報ファイル簿に登録されていません。",
            "Item {key!r} is not in the file register.",
        ),
        "governance.unknown_body": (
            "外部機関「{key}」が見つかりません。",
            "Outside body {key!r} not found.",
        ),
        "governance.key_taken": ("キー「{key}」は既に使われています。", "Key {key!r} is in use."),
        "governance.not_editable": (
            "状態が「{status}」の利用目的は編集できません。承認済みのものは改訂（新しい版）を作成してください。",
            "A purpose in status {status} cannot be edited; revise an approved one as a new "
            "version.",
        ),
        "governance.bad_transition": (
            "状態「{status}」からは「{action}」できません。",
            "Cannot {action} from status {status}.",
        ),
        "governance.not_a_drafter": (
            "利用目的の作成・編集には、総括管理主体・保有管理主体・分析主体のいずれかの役割が必要です。",
            "Drafting a purpose needs the privacy officer, data holder or analyst role.",
        ),
        "governance.not_privacy_officer": (
            "承認・差戻しは総括管理主体（個人情報保護責任者）が行います。",
            "Approvals and returns are made by a privacy officer.",
        ),
        "governance.not_officer_of_holder": (
            "保有機関「{organ}」の長に代わって承認できる総括管理主体の役割がありません。",
            "You hold no privacy-officer role for {organ}, the organ holding the file.",
        ),
        "governance.self_approval": (
            "提出者本人は承認できません（職務の分離）。",
            "The submitter cannot approve (separation of duties).",
        ),
        "governance.missing_delegation": (
            "専決（委任）の内容を記録してください。",
            "Record the delegation (専決) under which you approve.",
        ),
        "governance.item_not_in_purpose": (
            "記録項目「{item}」は利用目的「{purpose}」の情報項目にありません。",
            "Item {item} is not one of the items of purpose {purpose}.",
        ),
        "governance.items_from_several_organs": (
            "1つの経路には同じ機関が保有する項目だけを含めてください（{organs}）。",
            "One route may carry items of one holding organ only ({organs}).",
        ),
        "governance.one_recipient": (
            "提供先は機関か外部機関のどちらか1つを指定してください。",
            "Name exactly one recipient: an organ or an outside body.",
        ),
        "governance.route_needs_authorisation": (
            "臨時的な目的外利用・提供の経路は、4要件の承認によって承認されます。",
            "A one-off route is approved through its four-condition authorisation.",
        ),
        "governance.route_not_one_off": (
            "4要件の承認は、臨時的な目的外利用（第2号）・提供（第3号）の経路にだけ作成できます。",
            "A four-condition authorisation belongs only to a one-off (ii)/(iii) route.",
        ),
        "governance.purpose_not_approved": (
            "利用目的「{purpose}」が承認されていません。",
            "Purpose {purpose} is not approved.",
        ),
        "governance.duplicate_item": (
            "記録項目「{item}」が重複しています。",
            "Item {item} is listed twice.",
        ),
        "governance.item_unusable": (
            "記録項目「{item}」は現在使用できません。",
            "Item {item} cannot be used now.",
        ),
        "governance.no_route_for_item": (
            "情報項目「{item}」に承認された経路がありません。",
            "Item {item} has no approved route.",
        ),
        "governance.authorisation_missing": (
            "経路「{route}」に承認済みの4要件の承認がありません。",
            "Route {route} has no approved four-condition authorisation.",
        ),
        "governance.authorisation_expired": (
            "経路「{route}」の承認（{key}）は期間外です。",
            "The authorisation {key} of route {route} is outside its period.",
        ),
        "governance.authorisation_exhausted": (
            "経路「{route}」の承認（{key}）の実行回数を使い切っています。",
            "The authorisation {key} of route {route} has no runs left.",
        ),
    }
)

Actor = Principal | audit.Actor


# ---------------------------------------------------------------- helpers


def _actor(by: Actor, role: Role | None = None) -> audit.Actor:
    return by.actor(role) if isinstance(by, Principal) else by


def _account_id(by: Actor) -> int | None:
    return by.account_id if isinstance(by, Principal) else by.id


def _require_drafter(by: Actor) -> None:
    if isinstance(by, Principal) and not by.has_role(*DRAFTERS):
        raise Forbidden(Reason.of("governance.not_a_drafter"))


def _require_officer(by: Actor) -> Principal:
    if not isinstance(by, Principal) or not by.has_role(Role.privacy_officer):
        raise Forbidden(Reason.of("governance.not_privacy_officer"))
    return by


def _step(
    session: Session,
    subject_type: str,
    subject_id: int | None,
    action: str,
    by: Actor,
    comment: str = "",
    version: int = 1,
) -> None:
    assert subject_id is not None
    session.add(
        ApprovalStep(
            subject_type=subject_type,
            subject_id=subject_id,
            subject_version=version,
            action=action,
            actor_id=_account_id(by),
            comment=comment,
        )
    )


def _ensure_free(session: Session, model: type, key: str) -> None:
    if session.exec(select(model).where(model.key == key)).first() is not None:  # type: ignore[attr-defined]
        raise Conflict(Reason.of("governance.key_taken", key=key, field="key"))


def get_purpose(session: Session, key: str) -> Purpose:
    purpose = session.exec(select(Purpose).where(Purpose.key == key)).first()
    if purpose is None:
        raise NotFound(Reason.of("governance.unknown_purpose", key=key, field="purpose"))
    return purpose


def get_purpose_by_id(session: Session, purpose_id: int) -> Purpose:
    purpose = session.get(Purpose, purpose_id)
    if purpose is None:
        raise NotFound(Reason.of("governance.unknown_purpose", key=str(purpose_id)))
    return purpose


def get_route(session: Session, key: str) -> Route:
    route = session.exec(select(Route).where(Route.key == key)).first()
    if route is None:
        raise NotFound(Reason.of("governance.unknown_route", key=key, field="route"))
    return route


def get_authorisation(session: Session, key: str) -> Authorisation:
    found = session.exec(select(Authorisation).where(Authorisation.key == key)).first()
    if found is None:
        raise NotFound(Reason.of("governance.unknown_authorisation", key=key))
    return found


def list_purposes(session: Session) -> list[Purpose]:
    return list(session.exec(select(Purpose).order_by(col(Purpose.key))).all())


def _register_item(session: Session, key: str, field_name: str = "items") -> RegistryItem:
    item = session.exec(select(RegistryItem).where(RegistryItem.key == key)).first()
    if item is None:
        raise InvalidInput(Reason.of("governance.unknown_item", key=key, field=field_name))
    return item


# ---------------------------------------------------------------- purposes


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
            organ = organ_by_key(session, subject.organ)
            department = (
                department_by_key(session, subject.department) if subject.department else None
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
    _require_drafter(by)
    _ensure_free(session, Purpose, data.key)
    purpose = Purpose(key=data.key, title_ja=data.title_ja, created_by=_account_id(by))
    session.add(purpose)
    session.flush()
    _apply_purpose_fields(session, purpose, data)
    audit.append(
        session,
        "governance.purpose_created",
        actor=_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
    )
    return purpose


def update_purpose(session: Session, by: Actor, key: str, data: PurposeUpdate) -> Purpose:
    _require_drafter(by)
    purpose = get_purpose(session, key)
    if purpose.status not in EDITABLE:
        raise Conflict(Reason.of("governance.not_editable", status=purpose.status))
    _apply_purpose_fields(session, purpose, data)
    audit.append(
        session,
        "governance.purpose_updated",
        actor=_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"fields": sorted(data.model_fields_set)},
    )
    return purpose


def set_item(session: Session, by: Actor, purpose_key: str, data: PurposeItemIn) -> PurposeItem:
    """Add an item to the purpose, or update its necessity and relevance."""
    _require_drafter(by)
    purpose = get_purpose(session, purpose_key)
    if purpose.status not in EDITABLE:
        raise Conflict(Reason.of("governance.not_editable", status=purpose.status))
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
    session.add(link)
    purpose.updated_at = utcnow()
    session.add(purpose)
    session.flush()
    audit.append(
        session,
        "governance.purpose_item_set",
        actor=_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"item": item.key},
    )
    return link


def remove_item(session: Session, by: Actor, purpose_key: str, item_key: str) -> None:
    _require_drafter(by)
    purpose = get_purpose(session, purpose_key)
    if purpose.status not in EDITABLE:
        raise Conflict(Reason.of("governance.not_editable", status=purpose.status))
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
        actor=_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"item": item_key},
    )


def purpose_items(session: Session, purpose: Purpose) -> list[tuple[PurposeItem, RegistryItem]]:
    rows = session.exec(
        select(PurposeItem, RegistryItem)
        .join(RegistryItem, col(RegistryItem.id) == PurposeItem.item_id)
        .where(PurposeItem.purpose_id == purpose.id)
        .order_by(col(RegistryItem.key))
    ).all()
    return [(link, item) for link, item in rows]


def facts_of(
    session: Session,
    purpose: Purpose,
    *,
    citations: Sequence[PurposeCitation] | None = None,
    subjects: Sequence[PurposeSubject] | None = None,
    items: Sequence[tuple[PurposeItem, RegistryItem]] | None = None,
) -> rules.PurposeFacts:
    """The purpose as the completeness rules see it; `citations`, `subjects` and `items` (as
    `purpose_items` returns them) may be passed by a caller that has read them already."""
    if citations is None:
        citations = session.exec(
            select(PurposeCitation).where(PurposeCitation.purpose_id == purpose.id)
        ).all()
    if subjects is None:
        subjects = session.exec(
            select(PurposeSubject).where(PurposeSubject.purpose_id == purpose.id)
        ).all()
    if items is None:
        items = purpose_items(session, purpose)
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
        items=[
            (item.key, link.necessity_reason, link.relevance_to_difficulty)
            for link, item in items
        ],
    )


def missing(
    session: Session,
    purpose: Purpose,
    *,
    citations: Sequence[PurposeCitation] | None = None,
    subjects: Sequence[PurposeSubject] | None = None,
    items: Sequence[tuple[PurposeItem, RegistryItem]] | None = None,
) -> list[Reason]:
    return rules.completeness(
        facts_of(session, purpose, citations=citations, subjects=subjects, items=items)
    )


def _transition(purpose: Purpose, allowed: Iterable[PurposeStatus], action: str) -> None:
    if purpose.status not in tuple(allowed):
        raise Conflict(Reason.of("governance.bad_transition", status=purpose.status, action=action))


def submit_purpose(session: Session, by: Actor, key: str) -> Purpose:
    _require_drafter(by)
    purpose = get_purpose(session, key)
    _transition(purpose, EDITABLE, "submit")
    problems = missing(session, purpose)
    if problems:
        raise InvalidInput(problems)
    purpose.status = PurposeStatus.submitted
    purpose.submitted_by = _account_id(by)
    purpose.submitted_at = utcnow()
    session.add(purpose)
    _step(session, "purpose", purpose.id, "submit", by, version=purpose.version)
    audit.append(
        session,
        "governance.purpose_submitted",
        actor=_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"version": purpose.version},
    )
    return purpose


def _separate(officer: Principal, submitted_by: int | None) -> None:
    if submitted_by is not None and submitted_by == officer.account_id:
        raise Forbidden(Reason.of("governance.self_approval"))


def approve_purpose(session: Session, by: Actor, key: str, decision: Decision) -> Purpose:
    officer = _require_officer(by)
    purpose = get_purpose(session, key)
    _transition(purpose, (PurposeStatus.submitted,), "approve")
    _separate(officer, purpose.submitted_by)
    problems = missing(session, purpose)
    if problems:
        raise InvalidInput(problems)
    now = utcnow()
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
    _step(session, "purpose", purpose.id, "approve", by, decision.comment, purpose.version)
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


def _officer_decides(session: Session, by: Actor, key: str, decision: Decision, *,
                     action: str, allowed: tuple[PurposeStatus, ...], to: PurposeStatus,
                     event: str) -> Purpose:
    """One officer's step on a purpose: check the status, move it, record step and event."""
    officer = _require_officer(by)
    purpose = get_purpose(session, key)
    _transition(purpose, allowed, action)
    purpose.status = to
    session.add(purpose)
    _step(session, "purpose", purpose.id, action, by, decision.comment, purpose.version)
    audit.append(session, event, actor=officer.actor(Role.privacy_officer),
                 target_type="purpose", target_id=purpose.id, purpose_id=purpose.id)
    return purpose


def return_purpose(session: Session, by: Actor, key: str, decision: Decision) -> Purpose:
    return _officer_decides(session, by, key, decision, action="return",
                            allowed=(PurposeStatus.submitted,), to=PurposeStatus.returned,
                            event="governance.purpose_returned")


def suspend_purpose(session: Session, by: Actor, key: str, decision: Decision) -> Purpose:
    return _officer_decides(session, by, key, decision, action="suspend",
                            allowed=(PurposeStatus.approved,), to=PurposeStatus.suspended,
                            event="governance.purpose_suspended")


def resume_purpose(session: Session, by: Actor, key: str, decision: Decision) -> Purpose:
    return _officer_decides(session, by, key, decision, action="resume",
                            allowed=(PurposeStatus.suspended,), to=PurposeStatus.approved,
                            event="governance.purpose_resumed")


def retire_purpose(session: Session, by: Actor, key: str, decision: Decision) -> Purpose:
    return _officer_decides(session, by, key, decision, action="retire",
                            allowed=(PurposeStatus.approved, PurposeStatus.suspended),
                            to=PurposeStatus.retired, event="governance.purpose_retired")


def revise_purpose(session: Session, by: Actor, key: str) -> Purpose:
    """Start a new version of an approved or suspended purpose; it is a draft until approved."""
    _require_drafter(by)
    purpose = get_purpose(session, key)
    _transition(purpose, (PurposeStatus.approved, PurposeStatus.suspended), "revise")
    purpose.version += 1
    purpose.status = PurposeStatus.draft
    purpose.submitted_by = None
    purpose.submitted_at = None
    session.add(purpose)
    _step(session, "purpose", purpose.id, "revise", by, version=purpose.version)
    audit.append(
        session,
        "governance.purpose_revised",
        actor=_actor(by),
        target_type="purpose",
        target_id=purpose.id,
        purpose_id=purpose.id,
        details={"version": purpose.version},
    )
    return purpose


def current_design_hash(session: Session, purpose: Purpose) -> str:
    return design_hash(design_of(session, purpose))


def _pia_reasons(session: Session, purpose_id: int, at: datetime) -> list[Reason]:
    """The PIA's reasons, unchanged, when the purpose's PIA is not approved and current."""
    purpose = get_purpose_by_id(session, purpose_id)
    return pia.status(session, purpose_id, current_design_hash(session, purpose), at).reasons


# ---------------------------------------------------------------- routes


def _recipient(
    session: Session, to_organ: str | None, to_body: str | None
) -> tuple[rules.Recipient, Organ | None, OutsideBody | None]:
    if (to_organ is None) == (to_body is None):
        raise InvalidInput(Reason.of("governance.one_recipient", field="to_organ"))
    if to_organ is not None:
        organ = organ_by_key(session, to_organ)
        return rules.Recipient(organ_id=organ.id), organ, None
    body = session.exec(select(OutsideBody).where(OutsideBody.key == to_body)).first()
    if body is None:
        raise InvalidInput(Reason.of("governance.unknown_body", key=to_body, field="to_body"))
    return (
        rules.Recipient(None, body.key, body.name_ja, body.name_en, body.is_public_body),
        None,
        body,
    )


def create_route(session: Session, by: Actor, purpose_key: str, data: RouteCreate) -> Route:
    """Record the footing for items of one holding organ going to one recipient."""
    _require_drafter(by)
    purpose = get_purpose(session, purpose_key)
    _ensure_free(session, Route, data.key)
    if len(set(data.items)) != len(data.items):
        duplicate = next(k for k in data.items if data.items.count(k) > 1)
        raise InvalidInput(Reason.of("governance.duplicate_item", item=duplicate, field="items"))
    in_purpose = {item.key: item for _, item in purpose_items(session, purpose)}
    problems = [
        Reason.of("governance.item_not_in_purpose", item=key, purpose=purpose.key, field="items")
        for key in data.items
        if key not in in_purpose
    ]
    if problems:
        raise InvalidInput(problems)
    items = [in_purpose[key] for key in data.items]
    files = {
        f.id: f
        for f in session.exec(
            select(RegistryFile).where(col(RegistryFile.id).in_({i.file_id for i in items}))
        )
    }
    organs = {files[i.file_id].organ_id for i in items}
    if len(organs) != 1:
        names = ", ".join(
            sorted(o.key for o in session.exec(select(Organ).where(col(Organ.id).in_(organs))))
        )
        raise InvalidInput(
            Reason.of("governance.items_from_several_organs", organs=names, field="items")
        )
    from_organ_id = organs.pop()
    recipient, to_organ, to_body = _recipient(session, data.to_organ, data.to_body)
    kind = rules.derive_route(data.basis, data.recurrence, from_organ_id, recipient)
    if isinstance(kind, Reason):
        raise InvalidInput(kind)
    assert purpose.id is not None
    route = Route(
        key=data.key,
        purpose_id=purpose.id,
        from_organ_id=from_organ_id,
        to_organ_id=to_organ.id if to_organ else None,
        to_body_id=to_body.id if to_body else None,
        basis=data.basis,
        recurrence=data.recurrence,
        kind=kind,
        reasoning=data.reasoning,
        changed_purpose_text=data.changed_purpose_text,
        law_citation=data.law_citation,
        created_by=_account_id(by),
    )
    session.add(route)
    session.flush()
    for item in items:
        assert route.id is not None and item.id is not None
        session.add(Flow(route_id=route.id, item_id=item.id))
    session.flush()
    audit.append(
        session,
        "governance.route_created",
        actor=_actor(by),
        target_type="route",
        target_id=route.id,
        purpose_id=purpose.id,
        details={"kind": kind.value, "items": sorted(data.items)},
    )
    return route


def route_items(session: Session, route: Route) -> list[RegistryItem]:
    return list(
        session.exec(
            select(RegistryItem)
            .join(Flow, col(Flow.item_id) == RegistryItem.id)
            .where(Flow.route_id == route.id)
            .order_by(col(RegistryItem.key))
        ).all()
    )


def routes_of(session: Session, purpose: Purpose) -> list[Route]:
    return list(
        session.exec(
            select(Route).where(Route.purpose_id == purpose.id).order_by(col(Route.key))
        ).all()
    )


def submit_route(session: Session, by: Actor, key: str) -> Route:
    _require_drafter(by)
    route = get_route(session, key)
    if route.status not in (RecordStatus.draft, RecordStatus.returned):
        raise Conflict(Reason.of("governance.bad_transition", status=route.status, action="submit"))
    problems = rules.route_fields_problems(
        RouteKind(route.kind), route.reasoning, route.changed_purpose_text, route.law_citation
    )
    if problems:
        raise InvalidInput(problems)
    route.status = RecordStatus.submitted
    route.submitted_by = _account_id(by)
    session.add(route)
    _step(session, "route", route.id, "submit", by)
    audit.append(
        session,
        "governance.route_submitted",
        actor=_actor(by),
        target_type="route",
        target_id=route.id,
        purpose_id=route.purpose_id,
    )
    return route


def _officer_of_organ(session: Session, officer: Principal, organ_id: int) -> None:
    if organ_id not in officer.organs_for(Role.privacy_officer):
        organ = session.get(Organ, organ_id)
        raise Forbidden(
            Reason.of(
                "governance.not_officer_of_holder", organ=organ.name_ja if organ else organ_id
            )
        )


def approve_route(session: Session, by: Actor, key: str, decision: Decision) -> Route:
    officer = _require_officer(by)
    route = get_route(session, key)
    if route.kind in (RouteKind.internal_use, RouteKind.provision):
        raise Conflict(Reason.of("governance.route_needs_authorisation"))
    if route.status != RecordStatus.submitted:
        raise Conflict(
            Reason.of("governance.bad_transition", status=route.status, action="approve")
        )
    _separate(officer, route.submitted_by)
    _officer_of_organ(session, officer, route.from_organ_id)
    now = utcnow()
    if route.kind == RouteKind.purpose_change:
        pia_problems = _pia_reasons(session, route.purpose_id, now)
        if pia_problems:
            raise InvalidInput(pia_problems)
    route.status = RecordStatus.approved
    route.approved_by = officer.account_id
    route.approved_at = now
    session.add(route)
    if route.kind == RouteKind.purpose_change:
        # The file's registered 利用目的 no longer matches until its entry is corrected (Art. 74).
        for file_id in sorted({item.file_id for item in route_items(session, route)}):
            registry.record_change(
                session,
                officer.actor(Role.privacy_officer),
                file_id,
                "purpose_change",
                f"利用目的の変更（経路 {route.key}）/ purpose change",
            )
    _step(session, "route", route.id, "approve", by, decision.comment)
    audit.append(
        session,
        "governance.route_approved",
        actor=officer.actor(Role.privacy_officer),
        target_type="route",
        target_id=route.id,
        purpose_id=route.purpose_id,
        details={"kind": route.kind},
    )
    return route


def return_route(session: Session, by: Actor, key: str, decision: Decision) -> Route:
    officer = _require_officer(by)
    route = get_route(session, key)
    if route.status != RecordStatus.submitted:
        raise Conflict(Reason.of("governance.bad_transition", status=route.status, action="return"))
    route.status = RecordStatus.returned
    session.add(route)
    _step(session, "route", route.id, "return", by, decision.comment)
    audit.append(
        session,
        "governance.route_returned",
        actor=officer.actor(Role.privacy_officer),
        target_type="route",
        target_id=route.id,
        purpose_id=route.purpose_id,
    )
    return route


def revoke_route(session: Session, by: Actor, key: str, decision: Decision) -> Route:
    officer = _require_officer(by)
    route = get_route(session, key)
    route.status = RecordStatus.revoked
    session.add(route)
    for authorisation in session.exec(
        select(Authorisation).where(Authorisation.route_id == route.id)
    ):
        if authorisation.status != RecordStatus.revoked:
            authorisation.status = RecordStatus.revoked
            authorisation.revoked_at = utcnow()
            session.add(authorisation)
    _step(session, "route", route.id, "revoke", by, decision.comment)
    audit.append(
        session,
        "governance.route_revoked",
        actor=officer.actor(Role.privacy_officer),
        target_type="route",
        target_id=route.id,
        purpose_id=route.purpose_id,
    )
    return route


# ---------------------------------------------------------------- authorisations


def policy() -> rules.GovernancePolicy:
    return _policy


_policy = rules.DEFAULT_POLICY


def set_policy(value: rules.GovernancePolicy | None) -> None:
    global _policy
    _policy = value or rules.DEFAULT_POLICY


def _conditions(auth: Authorisation) -> rules.FourConditions:
    return rules.FourConditions(
        is_temporary=auth.is_temporary,
        temporary_reasoning=auth.temporary_reasoning,
        valid_from=auth.valid_from,
        valid_until=auth.valid_until,
        runs_allowed=auth.runs_allowed,
        within_necessary_extent=auth.within_necessary_extent,
        necessity_reasoning=auth.necessity_reasoning,
        substantial_reason=auth.substantial_reason,
        substantial_reasoning=auth.substantial_reasoning,
        recipient_task_citation=auth.recipient_task_citation,
        no_undue_infringement=auth.no_undue_infringement,
        infringement_reasoning=auth.infringement_reasoning,
    )


def _apply_authorisation(auth: Authorisation, data: AuthorisationFields) -> None:
    for name in AuthorisationFields.model_fields:
        value = getattr(data, name)
        if isinstance(value, datetime):
            value = as_utc(value)
        setattr(auth, name, value)


def create_authorisation(session: Session, by: Actor, data: AuthorisationCreate) -> Authorisation:
    _require_drafter(by)
    route = get_route(session, data.route)
    if route.kind not in (RouteKind.internal_use, RouteKind.provision):
        raise InvalidInput(Reason.of("governance.route_not_one_off", field="route"))
    _ensure_free(session, Authorisation, data.key)
    assert route.id is not None
    auth = Authorisation(key=data.key, route_id=route.id, created_by=_account_id(by))
    _apply_authorisation(auth, data)
    session.add(auth)
    session.flush()
    audit.append(
        session,
        "governance.authorisation_created",
        actor=_actor(by),
        target_type="authorisation",
        target_id=auth.id,
        purpose_id=route.purpose_id,
    )
    return auth


def update_authorisation(
    session: Session, by: Actor, key: str, data: AuthorisationFields
) -> Authorisation:
    _require_drafter(by)
    auth = get_authorisation(session, key)
    if auth.status not in (RecordStatus.draft, RecordStatus.returned):
        raise Conflict(Reason.of("governance.bad_transition", status=auth.status, action="edit"))
    _apply_authorisation(auth, data)
    session.add(auth)
    route = session.get(Route, auth.route_id)
    audit.append(
        session,
        "governance.authorisation_updated",
        actor=_actor(by),
        target_type="authorisation",
        target_id=auth.id,
        purpose_id=route.purpose_id if route else None,
    )
    return auth


def _same_pattern_approvals(
    session: Session, route: Route, exclude_id: int | None
) -> list[tuple[str, datetime]]:
    rows = session.exec(
        select(Authorisation, Route)
        .join(Route, col(Route.id) == Authorisation.route_id)
        .where(
            Route.purpose_id == route.purpose_id,
            Route.from_organ_id == route.from_organ_id,
            Route.to_organ_id == route.to_organ_id
            if route.to_organ_id is not None
            else col(Route.to_organ_id).is_(None),
            Route.to_body_id == route.to_body_id
            if route.to_body_id is not None
            else col(Route.to_body_id).is_(None),
            col(Authorisation.approved_at).is_not(None),
        )
    ).all()
    return [
        (a.key, a.approved_at) for a, _ in rows if a.id != exclude_id and a.approved_at is not None
    ]


def authorisation_problems(session: Session, auth: Authorisation, at: datetime) -> list[Reason]:
    """The four conditions and the repeat rule for one authorisation, all collected."""
    route = session.get(Route, auth.route_id)
    assert route is not None
    purpose = get_purpose_by_id(session, route.purpose_id)
    justified = frozenset(
        item.key for link, item in purpose_items(session, purpose) if link.necessity_reason.strip()
    )
    problems = rules.four_condition_problems(
        _conditions(auth), [i.key for i in route_items(session, route)], justified, policy()
    )
    earlier = rules.repeats_within_window(
        _same_pattern_approvals(session, route, auth.id), at, policy()
    )
    if earlier is not None:
        problems.append(
            Reason.of(
                "governance.repeated_one_off",
                months=policy().repeat_window_days // 30,
                other=earlier,
                field="is_temporary",
                refs={"authorisation": earlier},
            )
        )
    return problems


def submit_authorisation(session: Session, by: Actor, key: str) -> Authorisation:
    _require_drafter(by)
    auth = get_authorisation(session, key)
    if auth.status not in (RecordStatus.draft, RecordStatus.returned):
        raise Conflict(Reason.of("governance.bad_transition", status=auth.status, action="submit"))
    problems = authorisation_problems(session, auth, utcnow())
    if problems:
        raise InvalidInput(problems)
    auth.status = RecordStatus.submitted
    auth.submitted_by = _account_id(by)
    session.add(auth)
    route = session.get(Route, auth.route_id)
    assert route is not None
    route.status = RecordStatus.submitted
    route.submitted_by = auth.submitted_by
    session.add(route)
    _step(session, "authorisation", auth.id, "submit", by)
    audit.append(
        session,
        "governance.authorisation_submitted",
        actor=_actor(by),
        target_type="authorisation",
        target_id=auth.id,
        purpose_id=route.purpose_id,
    )
    return auth


def approve_authorisation(
    session: Session, by: Actor, key: str, decision: ApprovalIn
) -> Authorisation:
    """Approval for the head of the organ holding the file, under a recorded delegation."""
    officer = _require_officer(by)
    auth = get_authorisation(session, key)
    if auth.status != RecordStatus.submitted:
        raise Conflict(Reason.of("governance.bad_transition", status=auth.status, action="approve"))
    _separate(officer, auth.submitted_by)
    route = session.get(Route, auth.route_id)
    assert route is not None
    _officer_of_organ(session, officer, route.from_organ_id)
    if not decision.delegation_note.strip():
        raise InvalidInput(Reason.of("governance.missing_delegation", field="delegation_note"))
    now = utcnow()
    problems = authorisation_problems(session, auth, now)
    # The fourth condition links to the purpose's PIA: approved and current (issue 6).
    problems.extend(_pia_reasons(session, route.purpose_id, now))
    if problems:
        raise InvalidInput(problems)
    auth.status = RecordStatus.approved
    auth.approved_by = officer.account_id
    auth.approved_at = now
    auth.delegation_note = decision.delegation_note
    session.add(auth)
    route.status = RecordStatus.approved
    route.approved_by = officer.account_id
    route.approved_at = now
    session.add(route)
    _step(session, "authorisation", auth.id, "approve", by, decision.comment)
    audit.append(
        session,
        "governance.authorisation_approved",
        actor=officer.actor(Role.privacy_officer),
        target_type="authorisation",
        target_id=auth.id,
        purpose_id=route.purpose_id,
        details={"route": route.key, "runs_allowed": auth.runs_allowed},
    )
    return auth


def return_authorisation(
    session: Session, by: Actor, key: str, decision: Decision
) -> Authorisation:
    officer = _require_officer(by)
    auth = get_authorisation(session, key)
    if auth.status != RecordStatus.submitted:
        raise Conflict(Reason.of("governance.bad_transition", status=auth.status, action="return"))
    auth.status = RecordStatus.returned
    session.add(auth)
    route = session.get(Route, auth.route_id)
    assert route is not None
    route.status = RecordStatus.returned
    session.add(route)
    _step(session, "authorisation", auth.id, "return", by, decision.comment)
    audit.append(
        session,
        "governance.authorisation_returned",
        actor=officer.actor(Role.privacy_officer),
        target_type="authorisation",
        target_id=auth.id,
        purpose_id=route.purpose_id,
    )
    return auth


def authorisations_of(session: Session, route: Route) -> list[Authorisation]:
    return list(
        session.exec(
            select(Authorisation)
            .where(Authorisation.route_id == route.id)
            .order_by(col(Authorisation.id))
        ).all()
    )


# ---------------------------------------------------------------- what is missing


@dataclass(frozen=True)
class Usability:
    usable: bool
    reasons: list[Reason] = field(default_factory=list)


def usability(session: Session, purpose: Purpose, at: datetime | None = None) -> Usability:
    """The "not usable because…" panel: every missing piece of the purpose's legal footing."""
    at = as_utc(at or utcnow())
    refs = {"purpose": purpose.key}
    reasons: list[Reason] = []
    if purpose.status != PurposeStatus.approved:
        reasons.append(Reason.of("governance.purpose_not_approved", purpose=purpose.key, refs=refs))
    reasons.extend(missing(session, purpose))
    routes = [r for r in routes_of(session, purpose) if r.status != RecordStatus.revoked]
    covered: set[int] = set()
    for route in routes:
        if route.status != RecordStatus.approved:
            continue
        if route.kind in (RouteKind.internal_use, RouteKind.provision):
            live = [
                a for a in authorisations_of(session, route) if a.status == RecordStatus.approved
            ]
            if not live:
                reasons.append(
                    Reason.of(
                        "governance.authorisation_missing",
                        route=route.key,
                        refs={**refs, "route": route.key},
                    )
                )
                continue
            current = live[-1]
            if (current.valid_from and as_utc(current.valid_from) > at) or (
                current.valid_until and as_utc(current.valid_until) < at
            ):
                reasons.append(
                    Reason.of(
                        "governance.authorisation_expired",
                        route=route.key,
                        key=current.key,
                        refs={**refs, "authorisation": current.key},
                    )
                )
                continue
            if current.runs_used >= current.runs_allowed:
                reasons.append(
                    Reason.of(
                        "governance.authorisation_exhausted",
                        route=route.key,
                        key=current.key,
                        refs={**refs, "authorisation": current.key},
                    )
                )
                continue
        covered.update(item.id for item in route_items(session, route) if item.id is not None)
    for _, item in purpose_items(session, purpose):
        status = registry.status(session, item, at)
        for reason in status.reasons:
            reasons.append(reason)
        if item.id not in covered:
            reasons.append(
                Reason.of(
                    "governance.no_route_for_item", item=item.key, refs={**refs, "item": item.key}
                )
            )
    return Usability(not reasons, reasons)


def describe(session: Session, purpose: Purpose) -> dict[str, Any]:
    """A purpose with its parts, for the API and the console."""
    organs = {o.id: o for o in session.exec(select(Organ))}
    bodies = {b.id: b for b in session.exec(select(OutsideBody))}
    departments = {d.id: d for d in session.exec(select(Department))}
    files = {f.id: f for f in session.exec(select(RegistryFile))}
    citations = session.exec(
        select(PurposeCitation).where(PurposeCitation.purpose_id == purpose.id)
    ).all()
    subjects = session.exec(
        select(PurposeSubject).where(PurposeSubject.purpose_id == purpose.id)
    ).all()

    def recipient(route: Route) -> str:
        if route.to_organ_id is not None:
            return organs[route.to_organ_id].key
        assert route.to_body_id is not None
        return bodies[route.to_body_id].key

    routes = routes_of(session, purpose)
    return {
        "purpose": purpose,
        "citations": list(citations),
        "subjects": [
            (s, organs.get(s.organ_id), departments.get(s.department_id or -1)) for s in subjects
        ],
        "items": [
            (link, item, files.get(item.file_id), organs.get(files[item.file_id].organ_id))
            for link, item in purpose_items(session, purpose)
        ],
        "routes": [
            {
                "route": r,
                "items": route_items(session, r),
                "from": organs[r.from_organ_id],
                "to": organs.get(r.to_organ_id or -1) or bodies.get(r.to_body_id or -1),
                "to_key": recipient(r),
                "authorisations": authorisations_of(session, r),
            }
            for r in routes
        ],
        "safeguards": rules.parse_json_object(purpose.safeguards),
        "public_notice": rules.parse_json_object(purpose.public_notice),
        "subjects_rule": rules.parse_json_object(purpose.subjects_rule),
        "design_hash": current_design_hash(session, purpose),
    }


def approval_history(session: Session, subject_type: str, subject_id: int) -> list[ApprovalStep]:
    return list(
        session.exec(
            select(ApprovalStep)
            .where(ApprovalStep.subject_type == subject_type, ApprovalStep.subject_id == subject_id)
            .order_by(col(ApprovalStep.id))
        ).all()
    )
