"""The gate: one fail-closed decision, with every reason, for each job touching personal data."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from consent import people
from consent import service as consent
from core import audit, messages
from core.auth import Principal
from core.clock import as_utc, to_tokyo, utcnow
from core.models import Department, Organ, OutsideBody
from core.reasons import Reason
from governance.design import (
    DESIGN_FORMAT,
    PurposeParts,
    canonical_json,
    design_hasher,
    job_kinds_of,
    read_parts,
)
from governance.models import (
    Authorisation,
    Purpose,
    PurposeItem,
    PurposeStatus,
    PurposeSubject,
    RecordStatus,
    Route,
    RouteKind,
    SubjectRole,
)
from governance.purposes import missing
from governance.rules import (
    JOB_ROLES,
    AccessLimit,
    JobKind,
    access_limit_allows,
    authorisation_standing,
    export_item_problem,
    identified_roles,
    is_one_off,
)
from pia import service as pia
from registry import service as registry
from registry.models import RegistryFile, RegistryItem


@dataclass(frozen=True)
class JobRequest:
    kind: JobKind
    purpose: str
    items: Sequence[str]
    principal: Principal
    recipient_organ: str | None = None
    recipient_body: str | None = None
    at: datetime | None = None
    # The kind's parameters as its model validated them (governance.jobs); hashed with the rest.
    params: Mapping[str, Any] = field(default_factory=dict)


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
    # An export to a support worker (活用主体): the people of the cases assigned to them, to
    # which the population is limited at start; None when no such limit applies.
    person_scope: frozenset[str] | None = None

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
            "at": self.at.isoformat(),
            "reasons": [r.to_dict() for r in self.reasons],
            "flows": [f.to_dict() for f in self.flows],
            "consent_flows": [f.to_dict() for f in self.consent_flows],
            "restrictions": {"purpose_id": self.purpose_id} if self.allowed else None,
            "pia": self.pia,
            "design_hash": self.design_hash,
            "inputs_hash": self.inputs_hash,
            "assigned_people": None if self.person_scope is None else len(self.person_scope),
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
        "at": at.isoformat(),
        "params": dict(request.params),
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




def _date(moment: datetime | None) -> str:
    return "" if moment is None else to_tokyo(moment).strftime("%Y-%m-%d")


def _approved_authorisations(session: Session, routes: Sequence[Route]
                             ) -> dict[int, list[Authorisation]]:
    """The approved authorisations of the one-off routes, latest approval first, one query."""
    ids = [r.id for r in routes if is_one_off(r.kind) and r.id is not None]
    found: dict[int, list[Authorisation]] = {i: [] for i in ids}
    if ids:
        for auth in session.exec(
            select(Authorisation).where(col(Authorisation.route_id).in_(ids),
                                        Authorisation.status == RecordStatus.approved.value)
            .order_by(col(Authorisation.approved_at).desc())
        ).all():
            found[auth.route_id].append(auth)
    return found


@dataclass(frozen=True)
class _Requester:
    """The requester as the export scope and the Art. 69(4) limits see them: the grants that
    may run the job kind, with their organ and department keys."""

    principal: Principal | None  # None: a handling subject as such (usability), no person
    grants: tuple[tuple[str, str | None, str], ...]  # (organ key, department key, role)
    acting: frozenset[SubjectRole]  # the handling subjects the requester acts as
    held_organs: frozenset[int]  # organs whose items a data holder may export


def _requester(session: Session, principal: Principal, kind: JobKind) -> _Requester | None:
    """None when no grant may run the kind (refused already as gate.role_not_permitted)."""
    allowed = JOB_ROLES[kind]
    grants = [g for g in principal.grants if g.role in allowed]
    if not grants:
        return None
    organ_keys = {o.id: o.key for o in session.exec(
        select(Organ).where(col(Organ.id).in_({g.organ_id for g in grants})))} if grants else {}
    department_ids = {g.department_id for g in grants if g.department_id is not None}
    department_keys = {d.id: d.key for d in session.exec(
        select(Department).where(col(Department.id).in_(department_ids)))} \
        if department_ids else {}
    return _Requester(
        principal,
        tuple((organ_keys.get(g.organ_id, "?"), department_keys.get(g.department_id or -1),
               g.role.value) for g in grants),
        frozenset(allowed[g.role] for g in grants),
        frozenset(g.organ_id for g in grants if allowed[g.role] == SubjectRole.holding),
    )


def _limit_reason(auth: Authorisation, requester: _Requester | None, refs: dict[str, str]
                  ) -> Reason | None:
    """Art. 69(4): the authorisation's limit must include one of the requester's grants."""
    limit = AccessLimit.from_json(auth.access_limits)
    if requester is None or requester.principal is None or limit.empty:
        return None
    if any(access_limit_allows(limit, organ, department, role)
           for organ, department, role in requester.grants):
        return None
    parts = [*sorted(limit.organs), *sorted(limit.departments),
             *(messages.text(f"role.{r}") for r in sorted(limit.roles))]
    parts_en = [*sorted(limit.organs), *sorted(limit.departments), *sorted(limit.roles)]
    return Reason.of("gate.access_limited", key=auth.key, limit="、".join(parts),
                     limit_en=", ".join(parts_en), refs=refs)


def _route_problems(route: Route, authorisations: Sequence[Authorisation], kind: JobKind,
                    at: datetime, requester: _Requester | None = None
                    ) -> tuple[list[Reason], str | None]:
    """Why this approved route cannot carry the job now; the authorisation relied on if it can."""
    refs = {"route": route.key}
    if route.kind == RouteKind.statistics and kind != JobKind.statistics:
        return [Reason.of("gate.statistics_only", route=route.key, refs=refs)], None
    if not is_one_off(route.kind):
        return [], None
    if not authorisations:
        return [Reason.of("gate.authorisation_missing", route=route.key, refs=refs)], None
    problems: list[Reason] = []
    for auth in authorisations:
        auth_refs = {**refs, "authorisation": auth.key}
        standing = authorisation_standing(auth.valid_from, auth.valid_until, auth.runs_used,
                                          auth.runs_allowed, at)
        if standing is None:
            limited = _limit_reason(auth, requester, auth_refs)
            if limited is None:
                return [], auth.key
            problems.append(limited)
            continue
        day = _date(auth.valid_from if standing == "not_yet" else auth.valid_until)
        problems.append(Reason.of(f"gate.authorisation_{standing}", route=route.key,
                                  key=auth.key, date=day, runs=auth.runs_allowed,
                                  refs=auth_refs))
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
    parts = None if purpose is None else read_parts(session, purpose)
    subjects = [] if parts is None else parts.subjects
    role_reasons, acting_organ = _role_reasons(request, purpose, subjects)
    reasons.extend(role_reasons)
    to_organ, to_body, recipient, recipient_reasons = _recipient(session, request, acting_organ)
    reasons.extend(recipient_reasons)
    if purpose is None or parts is None:
        reasons.append(Reason.of("gate.unknown_purpose", key=request.purpose, field="purpose"))
        return _decision(request, None, (recipient, to_organ, to_body), at, reasons, [], None,
                         None)
    requester = _requester(session, request.principal, request.kind)
    judged = _judge(session, purpose, parts, request.kind, request.items, (to_organ, to_body),
                    (recipient, recipient), at, requester)
    reasons.extend(judged.reasons)
    decision = _decision(request, purpose, (recipient, to_organ, to_body), at, reasons,
                         judged.flows, judged.pia_ref, judged.design_hash)
    return replace(decision, person_scope=judged.person_scope)


def _kind_reasons(purpose: Purpose, kind: JobKind) -> list[Reason]:
    """The purpose's handling method names the job kinds it permits; any other is refused."""
    permitted = job_kinds_of(purpose)
    if kind.value in permitted:
        return []
    names = "、".join(messages.text(f"gate.kind.{k}") for k in permitted) or "なし"
    return [Reason.of("gate.kind_not_in_purpose", kind=messages.text(f"gate.kind.{kind.value}"),
                      kind_en=kind.value, purpose=purpose.key, permitted=names,
                      permitted_en=", ".join(permitted) or "none", field="kind",
                      refs={"purpose": purpose.key})]


def _notice_reasons(session: Session, purpose_id: int, flows: Sequence[FlowBasis],
                    to: tuple[int | None, int | None], recipient: tuple[str, str],
                    at: datetime) -> list[Reason]:
    """A consent-route flow needs a notice of the purpose, shown by now, that names the item
    and the recipient: consent can only have been asked for what a shown notice asked about."""
    consent_flows = [f for f in flows if f.kind == RouteKind.consent]
    if not consent_flows:
        return []
    to_organ, to_body = to
    named = f"organ:{to_organ}" if to_organ is not None else f"body:{to_body}"
    covered = consent.noticed_items(session, purpose_id, {f.item_id for f in consent_flows},
                                    named, at)
    return [Reason.of("gate.no_notice", item=f.item, recipient=recipient[0],
                      recipient_en=recipient[1], field="items",
                      refs={"item": f.item, "route": f.route})
            for f in consent_flows if f.item_id not in covered]


@dataclass(frozen=True)
class _Judgement:
    reasons: list[Reason]
    flows: list[FlowBasis]
    pia_ref: dict[str, Any] | None
    design_hash: str
    person_scope: frozenset[str] | None = None


def _export_scope(session: Session, purpose: Purpose, requester: _Requester,
                  wanted: Sequence[tuple[RegistryItem, PurposeItem]]
                  ) -> tuple[list[Reason], frozenset[str] | None]:
    """LAW.md §10.5 for an export: each item opened to the acting subject (and held by a data
    holder's organ); a support worker's people limited to their assigned cases."""
    reasons: list[Reason] = []
    file_organs = {f.id: f.organ_id for f in session.exec(
        select(RegistryFile).where(col(RegistryFile.id).in_({i.file_id for i, _ in wanted})))
    } if wanted else {}
    for item, link in wanted:
        identified = identified_roles(link.identified_for)
        found = {role: export_item_problem(role, identified, file_organs[item.file_id],
                                           requester.held_organs)
                 for role in sorted(requester.acting)}
        if not found or any(code is None for code in found.values()):
            continue
        for role, code in found.items():
            assert code is not None
            reasons.append(Reason.of(
                code, item=item.key, purpose=purpose.key,
                subject=messages.text(f"gate.subject.{role.value}"),
                subject_en=messages.text(f"gate.subject.{role.value}", "en"),
                field="items", refs={"purpose": purpose.key, "item": item.key}))
    if requester.acting != {SubjectRole.use} or requester.principal is None:
        return reasons, None
    assigned = people.assigned_people(session, requester.principal)
    if not assigned:
        reasons.append(Reason.of("gate.person_not_assigned", refs={"purpose": purpose.key}))
    return reasons, assigned


def _judge(session: Session, purpose: Purpose, parts: PurposeParts, kind: JobKind,
           wanted_items: Sequence[str], to: tuple[int | None, int | None],
           recipient: tuple[str, str], at: datetime, requester: _Requester | None = None
           ) -> _Judgement:
    """The checks after the principal's: the purpose, each item with its route to the
    recipient (and, for an export, the scope of the requester's role), and the PIA.
    `requester` is None when no one asks (usability): the requester's limits are not judged."""
    to_organ, to_body = to
    reasons: list[Reason] = []
    if purpose.status != PurposeStatus.approved:
        reasons.append(Reason.of("gate.purpose_not_in_force", key=purpose.key,
                                 status=purpose.status, refs={"purpose": purpose.key}))
    in_purpose = parts.items
    reasons.extend(missing(session, purpose, parts))
    reasons.extend(_kind_reasons(purpose, kind))

    flows: list[FlowBasis] = []
    if not wanted_items:
        reasons.append(Reason.of("gate.no_items", field="items"))
    seen: set[str] = set()
    justified = {item.key: (item, link) for link, item in in_purpose}
    route_flows = parts.flows
    routes = [r for r in parts.routes
              if r.status == RecordStatus.approved
              and r.to_organ_id == to_organ and r.to_body_id == to_body]
    authorisations = _approved_authorisations(session, routes)
    wanted = set(wanted_items)
    items = ({i.key: i for i in session.exec(select(RegistryItem)
                                             .where(col(RegistryItem.key).in_(wanted)))}
             if wanted else {})
    statuses = registry.item_statuses(session, list(items.values()), at)
    key_of = {i.id: i.key for i in [*items.values(), *(item for _link, item in in_purpose)]}
    unknown = {f.item_id for f in route_flows} - set(key_of)
    if unknown:
        key_of.update((i.id, i.key) for i in session.exec(
            select(RegistryItem).where(col(RegistryItem.id).in_(unknown))))
    scoped: list[tuple[RegistryItem, PurposeItem]] = []  # the known items of the purpose
    route_items: dict[int | None, set[str]] = {r.id: set() for r in routes}
    for flow in route_flows:
        if flow.route_id in route_items:
            route_items[flow.route_id].add(key_of[flow.item_id])
    for key in wanted_items:
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
                route, authorisations.get(route.id or 0, []), kind, at, requester)
            if not route_problems:
                assert item.id is not None
                basis = FlowBasis(key, item.id, route.key, RouteKind(route.kind), authorisation)
                break
            problems.extend(route_problems)
        if basis is None:
            reasons.append(Reason.of("gate.no_route", item=key, recipient=recipient[0],
                                     recipient_en=recipient[1],
                                     refs={"purpose": purpose.key, "item": key}))
            reasons.extend(problems)
        else:
            flows.append(basis)
        if found is not None:
            scoped.append((item, found[1]))

    person_scope = None
    if kind == JobKind.export and requester is not None:
        scope_reasons, person_scope = _export_scope(session, purpose, requester, scoped)
        reasons.extend(scope_reasons)

    assert purpose.id is not None
    reasons.extend(_notice_reasons(session, purpose.id, flows, to, recipient, at))
    # The design in force: the approved routes only; drafts are the next design (pending).
    hashes = design_hasher(session, purpose, parts, in_force=True)
    current_hash = hashes.of(DESIGN_FORMAT)
    pia_status = pia.status(session, purpose.id, hashes.accepted, at)
    reasons.extend(pia_status.reasons)
    pia_ref = None
    if pia_status.pia_id is not None:
        pia_ref = {"id": pia_status.pia_id, "version": pia_status.version,
                   "design_hash": current_hash}
    return _Judgement(reasons, flows, pia_ref, current_hash, person_scope)


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


@dataclass(frozen=True)
class KindUsability:
    kind: JobKind
    usable: bool
    reasons: list[Reason]


@dataclass(frozen=True)
class Usability:
    """Whether each kind of job could run on the purpose today, for its handling subjects, over
    all its items: the gate's own evaluation, without the requester's checks."""

    kinds: list[KindUsability]

    @property
    def usable(self) -> bool:
        return any(k.usable for k in self.kinds)

    @property
    def reasons(self) -> list[Reason]:
        """Every reason of the kinds that cannot run, each once."""
        seen: set[tuple[str, str]] = set()
        found: list[Reason] = []
        for entry in self.kinds:
            for reason in entry.reasons:
                key = (reason.code, reason.message_en)
                if key not in seen:
                    seen.add(key)
                    found.append(reason)
        return [] if self.usable else found


def usability(session: Session, purpose: Purpose, at: datetime | None = None) -> Usability:
    """For each job kind: allowed for some handling subject of the kind's roles, or why not."""
    moment = as_utc(at or utcnow())
    parts = read_parts(session, purpose)
    subjects = parts.subjects
    items = [item.key for _link, item in parts.items]
    organs = {o.id: o for o in session.exec(select(Organ))}
    kinds = []
    for kind in JobKind:
        roles = set(JOB_ROLES[kind].values())
        targets = sorted({s.organ_id for s in subjects if s.role in roles})
        if not targets:
            names = "、".join(sorted(messages.text(f"gate.subject.{r.value}") for r in roles))
            names_en = ", ".join(sorted(messages.text(f"gate.subject.{r.value}", "en")
                                        for r in roles))
            nobody = (messages.text("gate.ui.no_subject_recipient"),
                      messages.text("gate.ui.no_subject_recipient", "en"))
            judged = _judge(session, purpose, parts, kind, items, (None, None), nobody, moment)
            kinds.append(KindUsability(kind, False, [Reason.of(
                "gate.no_subject_for_kind", kind=messages.text(f"gate.kind.{kind.value}"),
                kind_en=kind.value, subject=names, subject_en=names_en, field="subjects",
                refs={"purpose": purpose.key}), *judged.reasons]))
            continue
        first: list[Reason] | None = None
        # An export is judged for each handling subject on its own (its organ and role: what a
        # holder holds, what is opened to the support workers); other kinds for each organ.
        pairs = sorted({(s.organ_id, s.role if kind == JobKind.export else None)
                        for s in subjects if s.role in roles}, key=str)
        for organ_id, role in pairs:
            name = f"organ:{organs[organ_id].key}"
            subject = None if role is None else _Requester(
                None, (), frozenset({SubjectRole(role)}),
                frozenset({organ_id}) if role == SubjectRole.holding else frozenset())
            judged = _judge(session, purpose, parts, kind, items, (organ_id, None),
                            (name, name), moment, subject)
            if not judged.reasons:
                first = []
                break
            if first is None:
                first = judged.reasons
        kinds.append(KindUsability(kind, not first, first or []))
    return Usability(kinds)
