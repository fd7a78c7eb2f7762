"""The gate: one fail-closed decision, with every reason, for each job touching personal data."""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core import audit, messages
from core.auth import Principal
from core.clock import as_utc, to_tokyo, utcnow
from core.models import Organ, OutsideBody, Role
from core.reasons import Reason
from governance import service
from governance.design import canonical_json, design_hash, design_of
from governance.models import (
    Authorisation,
    Flow,
    Purpose,
    PurposeCitation,
    PurposeStatus,
    PurposeSubject,
    RecordStatus,
    Route,
    RouteKind,
    SubjectRole,
)
from pia import service as pia
from registry import service as registry
from registry.models import RegistryItem


class JobKind(enum.StrEnum):
    linkage = "linkage"
    scoring = "scoring"
    export = "export"  # identified data leaves for a support worker or data holder
    statistics = "statistics"  # aggregates only


# Who may run each kind of job, and as which handling subject of the purpose.
JOB_ROLES: dict[JobKind, dict[Role, SubjectRole]] = {
    JobKind.linkage: {Role.analyst: SubjectRole.analysis},
    JobKind.scoring: {Role.analyst: SubjectRole.analysis},
    JobKind.statistics: {Role.analyst: SubjectRole.analysis},
    JobKind.export: {Role.support_worker: SubjectRole.use, Role.data_holder: SubjectRole.holding},
}
ONE_OFF = (RouteKind.internal_use, RouteKind.provision)

messages.register(
    {
        "gate.role_not_permitted": (
            "この役割では「{kind}」のジョブを実行できません（必要な役割: {roles}）。",
            "Your roles may not run a {kind} job (needed: {roles_en}).",
        ),
        "gate.not_a_handling_subject": (
            "あなたの所属する機関・部署は、この利用目的の「{subject}」として登録されていません。",
            "Your organ or department is not a handling subject ({subject_en}) of this purpose.",
        ),
        "gate.unknown_purpose": (
            "利用目的「{key}」は登録されていません。",
            "Purpose {key!r} is not registered.",
        ),
        "gate.purpose_not_in_force": (
            "利用目的「{key}」は承認された状態ではありません（現在: {status}）。",
            "Purpose {key!r} is not in force (status: {status}).",
        ),
        "gate.no_items": ("データ項目が指定されていません。", "No data item is named."),
        "gate.duplicate_item": (
            "データ項目「{item}」が重複して指定されています。",
            "Item {item!r} is named twice.",
        ),
        "gate.unknown_item": (
            "データ項目「{item}」は個人情報ファイル簿に登録されていません。",
            "Item {item!r} is not in the file register.",
        ),
        "gate.item_not_in_purpose": (
            "データ項目「{item}」は利用目的「{purpose}」で必要性が示された項目ではありません。",
            "Item {item!r} is not a justified item of purpose {purpose!r}.",
        ),
        "gate.no_route": (
            "データ項目「{item}」を「{recipient}」へ流す承認済みの経路がありません。",
            "Item {item!r} has no approved route to {recipient}.",
        ),
        "gate.authorisation_missing": (
            "経路「{route}」に承認済みの目的外利用・提供の承認がありません。",
            "Route {route!r} has no approved out-of-purpose authorisation.",
        ),
        "gate.authorisation_not_yet": (
            "経路「{route}」の承認（{key}）は {date} から有効です。",
            "The authorisation {key!r} of route {route!r} is valid from {date}.",
        ),
        "gate.authorisation_expired": (
            "経路「{route}」の承認（{key}）は {date} に期限切れとなりました。",
            "The authorisation {key!r} of route {route!r} expired on {date}.",
        ),
        "gate.authorisation_exhausted": (
            "経路「{route}」の承認（{key}）の実行回数（{runs}回）を使い切っています。",
            "The authorisation {key!r} of route {route!r} has used all its {runs} runs.",
        ),
        "gate.statistics_only": (
            "経路「{route}」（統計・学術研究のための提供）は統計ジョブにのみ使えます。",
            "Route {route!r} (provision for statistics or research) serves statistics jobs only.",
        ),
        "gate.unknown_recipient": (
            "提供先「{key}」が見つかりません。",
            "Recipient {key!r} not found.",
        ),
    }
)


@dataclass(frozen=True)
class JobRequest:
    kind: JobKind
    purpose: str
    items: Sequence[str]
    principal: Principal
    recipient_organ: str | None = None
    recipient_body: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class FlowBasis:
    """The route (and authorisation) a decision relies on for one item."""

    item: str
    item_id: int
    route: str
    kind: RouteKind
    authorisation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item, "route": self.route, "kind": self.kind.value,
                "authorisation": self.authorisation}


@dataclass(frozen=True)
class Decision:
    id: str
    allowed: bool
    kind: JobKind
    purpose_key: str
    purpose_id: int | None
    recipient: str
    at: datetime
    reasons: list[Reason]
    to_organ_id: int | None = None
    to_body_id: int | None = None
    flows: list[FlowBasis] = field(default_factory=list)
    pia: dict[str, Any] | None = None
    design_hash: str | None = None
    inputs_hash: str = ""

    @property
    def consent_flows(self) -> list[FlowBasis]:
        """Flows whose people must be filtered by their own consent."""
        return [f for f in self.flows if f.kind == RouteKind.consent]

    @property
    def one_off_authorisations(self) -> list[str]:
        return sorted({f.authorisation for f in self.flows if f.authorisation})

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "allowed": self.allowed,
            "kind": self.kind.value,
            "purpose": self.purpose_key,
            "recipient": self.recipient,
            "at": as_utc(self.at).isoformat(),
            "reasons": [r.to_dict() for r in self.reasons],
            "flows": [f.to_dict() for f in self.flows],
            "consent_flows": [f.to_dict() for f in self.consent_flows],
            "restrictions": {"purpose_id": self.purpose_id} if self.allowed else None,
            "pia": self.pia,
            "design_hash": self.design_hash,
            "inputs_hash": self.inputs_hash,
        }


def _inputs_hash(request: JobRequest, recipient: str, at: datetime,
                 purpose_version: int | None) -> str:
    payload = canonical_json({
        "kind": request.kind.value,
        "purpose": request.purpose,
        "purpose_version": purpose_version,
        "items": sorted(request.items),
        "recipient": recipient,
        "principal": request.principal.account_id,
        "at": as_utc(at).isoformat(),
    })
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _role_reasons(request: JobRequest, purpose: Purpose | None,
                  subjects: Sequence[PurposeSubject]) -> tuple[list[Reason], int | None]:
    """Role for the job kind and membership of a handling subject; returns the acting organ."""
    allowed = JOB_ROLES[request.kind]
    grants = [g for g in request.principal.grants if g.role in allowed]
    if not grants:
        # Still name a recipient (the principal's own organ) so the other checks can run.
        own_organ = request.principal.grants[0].organ_id if request.principal.grants else None
        names = "、".join(messages.text(f"role.{r.value}") for r in allowed)
        names_en = ", ".join(messages.text(f"role.{r.value}", "en") for r in allowed)
        return [Reason.of("gate.role_not_permitted", kind=request.kind.value, roles=names,
                          roles_en=names_en, field="kind")], own_organ
    if purpose is None:
        return [], grants[0].organ_id
    for grant in grants:
        wanted = allowed[grant.role]
        for subject in subjects:
            if subject.role != wanted or subject.organ_id != grant.organ_id:
                continue
            if subject.department_id is None or grant.department_id in (None,
                                                                        subject.department_id):
                return [], grant.organ_id
    wanted_roles = {allowed[g.role] for g in grants}
    subject_ja = "、".join(sorted(messages.text(f"gate.subject.{r.value}") for r in wanted_roles))
    subject_en = ", ".join(sorted(messages.text(f"gate.subject.{r.value}", "en")
                                  for r in wanted_roles))
    return [Reason.of("gate.not_a_handling_subject", subject=subject_ja, subject_en=subject_en,
                      refs={"purpose": purpose.key})], grants[0].organ_id


messages.register(
    {
        "gate.ui.title": ("ジョブの可否（今日の時点）", "What jobs may run today"),
        "gate.ui.lead": (
            "利用目的ごとに、あなたが各種のジョブを実行できるか、できない場合は何が足りないかを示します。",
            "For each purpose: whether you could run each kind of job today and, if not, what "
            "is missing.",
        ),
        "gate.ui.kind": ("ジョブの種類", "Job kind"),
        "gate.ui.verdict": ("判定", "Verdict"),
        "gate.ui.missing": ("根拠・不足しているもの", "Basis, or what is missing"),
        "gate.ui.allowed": ("実行可", "Allowed"),
        "gate.ui.refused": ("実行不可", "Refused"),
        "gate.nav": ("ジョブの可否", "Job gate"),
        "gate.kind.linkage": ("名寄せ", "linkage"),
        "gate.kind.scoring": ("リスク判定・スコアリング", "scoring"),
        "gate.kind.export": ("識別可能なデータの提供", "identified export"),
        "gate.kind.statistics": ("統計作成", "statistics"),
        "gate.subject.overall": ("総括管理主体", "overall management"),
        "gate.subject.holding": ("保有・管理主体", "holding"),
        "gate.subject.analysis": ("分析主体", "analysis"),
        "gate.subject.use": ("活用主体", "use"),
    }
)


def _date(moment: datetime | None) -> str:
    return "" if moment is None else to_tokyo(moment).strftime("%Y-%m-%d")


def _approved_authorisations(session: Session, routes: Sequence[Route]
                             ) -> dict[int, list[Authorisation]]:
    """The approved authorisations of the one-off routes, latest approval first, one query."""
    ids = [r.id for r in routes if r.kind in ONE_OFF and r.id is not None]
    found: dict[int, list[Authorisation]] = {i: [] for i in ids}
    if ids:
        for auth in session.exec(
            select(Authorisation).where(col(Authorisation.route_id).in_(ids),
                                        Authorisation.status == RecordStatus.approved.value)
            .order_by(col(Authorisation.approved_at).desc())
        ).all():
            found[auth.route_id].append(auth)
    return found


def _route_problems(route: Route, authorisations: Sequence[Authorisation], kind: JobKind,
                    at: datetime) -> tuple[list[Reason], str | None]:
    """Why this approved route cannot carry the job now; the authorisation relied on if it can."""
    refs = {"route": route.key}
    if route.kind == RouteKind.statistics and kind != JobKind.statistics:
        return [Reason.of("gate.statistics_only", route=route.key, refs=refs)], None
    if route.kind not in ONE_OFF:
        return [], None
    if not authorisations:
        return [Reason.of("gate.authorisation_missing", route=route.key, refs=refs)], None
    problems: list[Reason] = []
    for auth in authorisations:
        auth_refs = {**refs, "authorisation": auth.key}
        if auth.valid_from is not None and as_utc(auth.valid_from) > at:
            problems.append(Reason.of("gate.authorisation_not_yet", route=route.key, key=auth.key,
                                      date=_date(auth.valid_from), refs=auth_refs))
        elif auth.valid_until is not None and as_utc(auth.valid_until) < at:
            problems.append(Reason.of("gate.authorisation_expired", route=route.key, key=auth.key,
                                      date=_date(auth.valid_until), refs=auth_refs))
        elif auth.runs_used >= auth.runs_allowed:
            problems.append(Reason.of("gate.authorisation_exhausted", route=route.key,
                                      key=auth.key, runs=auth.runs_allowed, refs=auth_refs))
        else:
            return [], auth.key
    return problems, None


def _recipient(session: Session, request: JobRequest, acting_organ: int | None
               ) -> tuple[int | None, int | None, str, list[Reason]]:
    if request.recipient_body:
        body = session.exec(select(OutsideBody)
                            .where(OutsideBody.key == request.recipient_body)).first()
        if body is None:
            return None, None, request.recipient_body, [Reason.of(
                "gate.unknown_recipient", key=request.recipient_body, field="recipient")]
        return None, body.id, f"body:{body.key}", []
    organ = None
    if request.recipient_organ:
        organ = session.exec(select(Organ).where(Organ.key == request.recipient_organ)).first()
        if organ is None:
            return None, None, request.recipient_organ, [Reason.of(
                "gate.unknown_recipient", key=request.recipient_organ, field="recipient")]
    elif acting_organ is not None:
        organ = session.get(Organ, acting_organ)
    if organ is None:
        return None, None, "?", []
    return organ.id, None, f"organ:{organ.key}", []


def evaluate(session: Session, request: JobRequest) -> Decision:
    """Every check, all reasons collected; anything unknown or missing refuses (fail closed)."""
    at = as_utc(request.at or utcnow())
    reasons: list[Reason] = []
    purpose = session.exec(select(Purpose).where(Purpose.key == request.purpose)).first()
    # The purpose's records are read once here and shared by every check below (one query per
    # table, never one per item or route).
    subjects = [] if purpose is None else list(session.exec(
        select(PurposeSubject).where(PurposeSubject.purpose_id == purpose.id)).all())
    role_reasons, acting_organ = _role_reasons(request, purpose, subjects)
    reasons.extend(role_reasons)
    to_organ, to_body, recipient, recipient_reasons = _recipient(session, request, acting_organ)
    reasons.extend(recipient_reasons)
    if purpose is None:
        reasons.append(Reason.of("gate.unknown_purpose", key=request.purpose, field="purpose"))
        return _decision(request, None, (recipient, to_organ, to_body), at, reasons, [], None,
                         None)
    if purpose.status != PurposeStatus.approved:
        reasons.append(Reason.of("gate.purpose_not_in_force", key=purpose.key,
                                 status=purpose.status, refs={"purpose": purpose.key}))
    in_purpose = service.purpose_items(session, purpose)
    citations = list(session.exec(
        select(PurposeCitation).where(PurposeCitation.purpose_id == purpose.id)).all())
    reasons.extend(service.missing(session, purpose, citations=citations, subjects=subjects,
                                   items=in_purpose))

    flows: list[FlowBasis] = []
    if not request.items:
        reasons.append(Reason.of("gate.no_items", field="items"))
    seen: set[str] = set()
    justified = {item.key: (item, link) for link, item in in_purpose}
    all_routes = service.routes_of(session, purpose)
    live_ids = {r.id for r in all_routes if r.status != RecordStatus.revoked and r.id is not None}
    route_flows = (list(session.exec(select(Flow).where(col(Flow.route_id).in_(live_ids))).all())
                   if live_ids else [])
    routes = [r for r in all_routes
              if r.status == RecordStatus.approved
              and r.to_organ_id == to_organ and r.to_body_id == to_body]
    authorisations = _approved_authorisations(session, routes)
    wanted = set(request.items)
    items = ({i.key: i for i in session.exec(select(RegistryItem)
                                             .where(col(RegistryItem.key).in_(wanted)))}
             if wanted else {})
    statuses = registry.item_statuses(session, list(items.values()), at)
    key_of = {i.id: i.key for i in [*items.values(), *(item for _link, item in in_purpose)]}
    unknown = {f.item_id for f in route_flows} - set(key_of)
    if unknown:
        key_of.update((i.id, i.key) for i in session.exec(
            select(RegistryItem).where(col(RegistryItem.id).in_(unknown))))
    route_items: dict[int | None, set[str]] = {r.id: set() for r in routes}
    for flow in route_flows:
        if flow.route_id in route_items:
            route_items[flow.route_id].add(key_of[flow.item_id])
    for key in request.items:
        if key in seen:
            reasons.append(Reason.of("gate.duplicate_item", item=key, field="items"))
            continue
        seen.add(key)
        item = items.get(key)
        if item is None:
            reasons.append(Reason.of("gate.unknown_item", item=key, field="items"))
            continue
        assert item.id is not None
        reasons.extend(statuses[item.id].reasons)
        found = justified.get(key)
        if found is None or not found[1].necessity_reason.strip():
            reasons.append(Reason.of("gate.item_not_in_purpose", item=key, purpose=purpose.key,
                                     refs={"purpose": purpose.key, "item": key}))
        candidates = [r for r in routes if key in route_items[r.id]]
        basis, problems = None, []
        for route in candidates:
            route_problems, authorisation = _route_problems(
                route, authorisations.get(route.id or 0, []), request.kind, at)
            if not route_problems:
                assert item.id is not None
                basis = FlowBasis(key, item.id, route.key, RouteKind(route.kind), authorisation)
                break
            problems.extend(route_problems)
        if basis is None:
            reasons.append(Reason.of("gate.no_route", item=key, recipient=recipient,
                                     refs={"purpose": purpose.key, "item": key}))
            reasons.extend(problems)
        else:
            flows.append(basis)

    current_hash = design_hash(design_of(session, purpose, citations=citations, subjects=subjects,
                                         items=in_purpose, routes=all_routes, flows=route_flows))
    assert purpose.id is not None
    pia_status = pia.status(session, purpose.id, current_hash, at)
    reasons.extend(pia_status.reasons)
    pia_ref = None
    if pia_status.pia_id is not None:
        pia_ref = {"id": pia_status.pia_id, "version": pia_status.version,
                   "design_hash": current_hash}
    return _decision(request, purpose, (recipient, to_organ, to_body), at, reasons, flows, pia_ref,
                     current_hash)


def _decision(request: JobRequest, purpose: Purpose | None,
              recipient: tuple[str, int | None, int | None], at: datetime,
              reasons: list[Reason], flows: list[FlowBasis], pia_ref: dict[str, Any] | None,
              current_hash: str | None) -> Decision:
    name, to_organ, to_body = recipient
    return Decision(
        id=uuid.uuid4().hex,
        allowed=not reasons,
        kind=request.kind,
        purpose_key=request.purpose,
        purpose_id=purpose.id if purpose else None,
        recipient=name,
        at=at,
        reasons=reasons,
        to_organ_id=to_organ,
        to_body_id=to_body,
        flows=flows,
        pia=pia_ref,
        design_hash=current_hash,
        inputs_hash=_inputs_hash(request, name, at, purpose.version if purpose else None),
    )


def check(session: Session, request: JobRequest) -> Decision:
    """Decide and record the decision (allowed or refused) in the audit chain."""
    decision = evaluate(session, request)
    audit.append(
        session, "gate.decision", actor=request.principal.actor(),
        target_type="job_request", purpose_id=decision.purpose_id, decision_id=decision.id,
        details={
            "allowed": decision.allowed,
            "kind": decision.kind.value,
            "items": sorted(request.items)[:100],
            "recipient": decision.recipient,
            "codes": sorted({r.code for r in decision.reasons})[:50],
            "inputs_hash": decision.inputs_hash,
            "design_hash": decision.design_hash,
            "pia": decision.pia["id"] if decision.pia else None,
        },
    )
    return decision


def explain(session: Session, request: JobRequest) -> Decision:
    """The decision a job would get; not a decision, so not recorded."""
    return evaluate(session, request)

