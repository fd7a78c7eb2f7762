"""The legal footing of a purpose's flows: routes and their four-condition authorisations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core import audit
from core.clock import as_utc, utcnow
from core.db import get_by
from core.models import Department, Organ, OutsideBody, Role
from core.policies import policy
from core.reasons import Conflict, InvalidInput, Reason
from core.service import (
    Reference,
    Unit,
    active_organ,
    active_outside_body,
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
    require_officer,
    take_officer_step,
    take_step,
    workflow_of,
)
from governance.design import design_hasher, purpose_items
from governance.models import (
    Authorisation,
    Flow,
    Purpose,
    PurposeStatus,
    RecordStatus,
    Route,
    RouteKind,
)
from governance.purposes import ensure_key_free, get_purpose, get_purpose_by_id
from governance.schemas import (
    AccessLimitIn,
    ApprovalIn,
    AuthorisationCreate,
    AuthorisationFields,
    Decision,
    RouteCreate,
)
from pia import service as pia
from registry import service as registry
from registry.models import RegistryFile, RegistryItem


def get_route(session: Session, key: str) -> Route:
    return get_by(session, Route, "governance.unknown_route", field="route", key=key)


def get_authorisation(session: Session, key: str) -> Authorisation:
    return get_by(session, Authorisation, "governance.unknown_authorisation", key=key)


def _recipient(
    session: Session, to_organ: str | None, to_body: str | None
) -> tuple[rules.Recipient, Organ | None, OutsideBody | None]:
    problem = rules.one_recipient_problem(to_organ, to_body)
    if problem is not None:
        raise InvalidInput(problem)
    if to_organ is not None:
        organ = active_organ(session, to_organ, "to_organ")
        return rules.Recipient(organ_id=organ.id), organ, None
    body = session.exec(select(OutsideBody).where(OutsideBody.key == to_body)).first()
    if body is None:
        raise InvalidInput(Reason.of("governance.unknown_body", key=to_body, field="to_body"))
    active_outside_body(session, body.key, "to_body")
    return (
        rules.Recipient(None, body.key, body.name_ja, body.name_en, body.is_public_body),
        None,
        body,
    )


def create_route(session: Session, by: Actor, purpose_key: str, data: RouteCreate) -> Route:
    """Record the footing for items of one holding organ going to one recipient."""
    require_drafter(by)
    purpose = get_purpose(session, purpose_key)
    require_author_organ(session, by, purpose)
    ensure_key_free(session, Route, data.key)
    repeated = rules.repeated_item_problems(data.items)
    if repeated:
        raise InvalidInput(next(iter(repeated.values())))
    in_purpose = {item.key: item for _, item in purpose_items(session, purpose)}
    problems = [
        problem
        for key in data.items
        if (problem := rules.item_in_purpose_problem(key, purpose.key, in_purpose)) is not None
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
    holders = {
        o.id: o.key
        for o in session.exec(
            select(Organ).where(col(Organ.id).in_({f.organ_id for f in files.values()}))
        )
    }
    several = rules.one_holder_problem(holders[files[i.file_id].organ_id] for i in items)
    if several is not None:
        raise InvalidInput(several)
    from_organ_id = files[items[0].file_id].organ_id
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
        created_by=account_id(by),
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
        actor=audit_actor(by),
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
    route = get_route(session, key)
    take_step(session, by, workflow_of(session, route), "submit")
    problems = rules.route_fields_problems(
        RouteKind(route.kind), route.reasoning, route.changed_purpose_text, route.law_citation
    )
    if problems:
        raise InvalidInput(problems)
    route.status = RecordStatus.submitted
    route.submitted_by = account_id(by)
    session.add(route)
    record_step(session, "route", route.id, "submit", by)
    audit.append(
        session,
        "governance.route_submitted",
        actor=audit_actor(by),
        target_type="route",
        target_id=route.id,
        purpose_id=route.purpose_id,
    )
    return route


def approve_route(session: Session, by: Actor, key: str, decision: Decision) -> Route:
    require_officer(by)
    route = get_route(session, key)
    one_off = rules.own_approval_problem(route.kind)
    if one_off is not None:
        raise Conflict(one_off)
    officer = take_officer_step(session, by, workflow_of(session, route), "approve")
    now = utcnow()
    # Approving a route puts its flows in force: the PIA of the next design (the one with this
    # route) must be approved first, as for a purpose change, so nothing in force goes stale.
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
    record_step(session, "route", route.id, "approve", by, decision.comment)
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
    route = get_route(session, key)
    officer = take_officer_step(session, by, workflow_of(session, route), "return")
    route.status = RecordStatus.returned
    session.add(route)
    record_step(session, "route", route.id, "return", by, decision.comment)
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
    route = get_route(session, key)
    officer = take_officer_step(session, by, workflow_of(session, route), "revoke")
    route.status = RecordStatus.revoked
    session.add(route)
    for authorisation in session.exec(
        select(Authorisation).where(Authorisation.route_id == route.id)
    ):
        if authorisation.status != RecordStatus.revoked:
            authorisation.status = RecordStatus.revoked
            authorisation.revoked_at = utcnow()
            session.add(authorisation)
    record_step(session, "route", route.id, "revoke", by, decision.comment)
    audit.append(
        session,
        "governance.route_revoked",
        actor=officer.actor(Role.privacy_officer),
        target_type="route",
        target_id=route.id,
        purpose_id=route.purpose_id,
    )
    return route


def _pia_reasons(session: Session, purpose_id: int, at: datetime) -> list[Reason]:
    """The PIA's reasons, unchanged, unless the PIA of the purpose's next design (its drafts
    included) is approved and current."""
    purpose = get_purpose_by_id(session, purpose_id)
    hashes = design_hasher(session, purpose, in_force=False)
    return pia.status(session, purpose_id, hashes.accepted, at).reasons


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


def _access_limit(session: Session, limit: AccessLimitIn) -> rules.AccessLimit:
    """The structured Art. 69(4) limit, every organ and department key known."""
    known_organs = set(session.exec(select(Organ.key)).all())
    known_departments = set(session.exec(select(Department.key)).all())
    problems = [Reason.of("governance.unknown_access_key", key=key,
                          field="access_limited_to.organs")
                for key in limit.organs if key not in known_organs]
    problems += [Reason.of("governance.unknown_access_key", key=key,
                           field="access_limited_to.departments")
                 for key in limit.departments if key not in known_departments]
    if problems:
        raise InvalidInput(problems)
    return rules.AccessLimit(frozenset(limit.organs), frozenset(limit.departments),
                             frozenset(str(r) for r in limit.roles))


def _apply_authorisation(session: Session, auth: Authorisation, data: AuthorisationFields
                         ) -> None:
    for name in AuthorisationFields.model_fields:
        value = getattr(data, name)
        if name == "access_limited_to":
            auth.access_limits = _access_limit(session, value).to_json()
            continue
        if isinstance(value, datetime):
            value = as_utc(value)
        setattr(auth, name, value)


def authorisation_fields(auth: Authorisation) -> dict[str, Any]:
    """The authorisation's fields as AuthorisationFields takes them (bundle export, forms)."""
    fields = {name: getattr(auth, name) for name in AuthorisationFields.model_fields
              if name != "access_limited_to"}
    limit = rules.AccessLimit.from_json(auth.access_limits)
    fields["access_limited_to"] = AccessLimitIn(organs=sorted(limit.organs),
                                                departments=sorted(limit.departments),
                                                roles=[Role(r) for r in sorted(limit.roles)])
    return fields


def create_authorisation(session: Session, by: Actor, data: AuthorisationCreate) -> Authorisation:
    require_drafter(by)
    route = get_route(session, data.route)
    require_author_organ(session, by, session.get_one(Purpose, route.purpose_id))
    not_one_off = rules.authorised_route_problem(route.kind)
    if not_one_off is not None:
        raise InvalidInput(not_one_off)
    ensure_key_free(session, Authorisation, data.key)
    assert route.id is not None
    auth = Authorisation(key=data.key, route_id=route.id, created_by=account_id(by))
    _apply_authorisation(session, auth, data)
    session.add(auth)
    session.flush()
    audit.append(
        session,
        "governance.authorisation_created",
        actor=audit_actor(by),
        target_type="authorisation",
        target_id=auth.id,
        purpose_id=route.purpose_id,
    )
    return auth


def update_authorisation(
    session: Session, by: Actor, key: str, data: AuthorisationFields
) -> Authorisation:
    auth = get_authorisation(session, key)
    take_step(session, by, workflow_of(session, auth), "edit")
    _apply_authorisation(session, auth, data)
    session.add(auth)
    route = session.get(Route, auth.route_id)
    audit.append(
        session,
        "governance.authorisation_updated",
        actor=audit_actor(by),
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
    in_force = policy(rules.GovernancePolicy)
    problems = rules.four_condition_problems(
        _conditions(auth), [i.key for i in route_items(session, route)], justified, in_force
    )
    earlier = rules.repeats_within_window(
        _same_pattern_approvals(session, route, auth.id), at, in_force
    )
    if earlier is not None:
        problems.append(
            Reason.of(
                "governance.repeated_one_off",
                months=in_force.repeat_window_days // 30,
                other=earlier,
                field="is_temporary",
                refs={"authorisation": earlier},
            )
        )
    return problems


def submit_authorisation(session: Session, by: Actor, key: str) -> Authorisation:
    auth = get_authorisation(session, key)
    take_step(session, by, workflow_of(session, auth), "submit")
    problems = authorisation_problems(session, auth, utcnow())
    if problems:
        raise InvalidInput(problems)
    auth.status = RecordStatus.submitted
    auth.submitted_by = account_id(by)
    session.add(auth)
    route = session.get(Route, auth.route_id)
    assert route is not None
    route.status = RecordStatus.submitted
    route.submitted_by = auth.submitted_by
    session.add(route)
    record_step(session, "authorisation", auth.id, "submit", by)
    audit.append(
        session,
        "governance.authorisation_submitted",
        actor=audit_actor(by),
        target_type="authorisation",
        target_id=auth.id,
        purpose_id=route.purpose_id,
    )
    return auth


def approve_authorisation(
    session: Session, by: Actor, key: str, decision: ApprovalIn
) -> Authorisation:
    """Approval for the head of the organ holding the file, under a recorded delegation."""
    auth = get_authorisation(session, key)
    officer = take_officer_step(session, by, workflow_of(session, auth), "approve")
    route = session.get(Route, auth.route_id)
    assert route is not None
    no_delegation = rules.delegation_problem(decision.delegation_note)
    if no_delegation is not None:
        raise InvalidInput(no_delegation)
    now = utcnow()
    problems = authorisation_problems(session, auth, now)
    # Art. 69(3) answered, Art. 70 measures for a provision, a structured 69(4) limit.
    problems.extend(rules.approval_answer_problems(
        RouteKind(route.kind), auth.restricting_laws_checked, auth.restricting_laws_note,
        auth.recipient_measures, auth.access_limit_note, policy(rules.GovernancePolicy)))
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
    record_step(session, "authorisation", auth.id, "approve", by, decision.comment)
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
    auth = get_authorisation(session, key)
    officer = take_officer_step(session, by, workflow_of(session, auth), "return")
    auth.status = RecordStatus.returned
    session.add(auth)
    route = session.get(Route, auth.route_id)
    assert route is not None
    route.status = RecordStatus.returned
    session.add(route)
    record_step(session, "authorisation", auth.id, "return", by, decision.comment)
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


def routes_naming(session: Session, unit: Unit) -> list[Reference]:
    """Routes not revoked, of purposes not retired, from or to `unit` (an organ or an outside
    body): they must be revoked (or the purpose retired) before it is deactivated."""
    if isinstance(unit, Organ):
        where: Any = (col(Route.from_organ_id) == unit.id) | (col(Route.to_organ_id) == unit.id)
    elif isinstance(unit, OutsideBody):
        where = col(Route.to_body_id) == unit.id
    else:
        return []
    keys = session.exec(select(Route.key).join(Purpose, col(Purpose.id) == Route.purpose_id)
                        .where(where, Route.status != RecordStatus.revoked.value,
                               Purpose.status != PurposeStatus.retired.value)
                        .order_by(col(Route.key))).all()
    return [Reference("経路", "route", key) for key in keys]


register_reference_check(routes_naming)
