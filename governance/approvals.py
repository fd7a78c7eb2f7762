"""Who may take which workflow step: roles, separation of duties, approval steps and history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session, col, select

from core import audit
from core.auth import Principal, active_grants
from core.models import Organ, Role
from core.reasons import Conflict, DomainError, Forbidden, Reason
from governance import rules
from governance.models import ApprovalStep, Authorisation, Purpose, Route

DRAFTERS = rules.DRAFTER_ROLES
Actor = Principal | audit.Actor
Record = Purpose | Route | Authorisation


def audit_actor(by: Actor, role: Role | None = None) -> audit.Actor:
    return by.actor(role) if isinstance(by, Principal) else by


def account_id(by: Actor) -> int | None:
    return by.account_id if isinstance(by, Principal) else by.id


def require_drafter(by: Actor) -> None:
    if isinstance(by, Principal) and not by.has_role(*rules.DRAFTER_ROLES):
        raise Forbidden(Reason.of("governance.not_a_drafter"))


def require_officer(by: Actor) -> Principal:
    if not isinstance(by, Principal) or not by.has_role(*rules.OFFICER_ROLES):
        raise Forbidden(Reason.of("governance.not_privacy_officer"))
    return by


def require_separation(officer: Principal, submitted_by: int | None) -> None:
    problem = rules.separation_problem(submitted_by, officer.account_id)
    if problem is not None:
        raise Forbidden(problem)


def require_officer_of_organ(session: Session, officer: Principal, organ_id: int) -> None:
    if organ_id not in officer.organs_for(Role.privacy_officer):
        organ = session.get(Organ, organ_id)
        raise Forbidden(
            Reason.of(
                "governance.not_officer_of_holder", organ=organ.name_ja if organ else organ_id
            )
        )


@dataclass(frozen=True)
class Workflow:
    """The workflow a record follows, with what the step checks need to know about it."""

    subject_type: str
    transitions: Mapping[str, rules.Transition]
    status: str
    submitted_by: int | None = None
    holder_organ_id: int | None = None  # the organ whose head decides (routes, authorisations)
    # The organs the purpose's author drafts in: a drafter's step is for their drafters (and
    # for privacy officers); see rules.drafter_organ_problem.
    author_organs: frozenset[int] = frozenset()


def author_organs(session: Session, purpose: Purpose | None) -> frozenset[int]:
    """The organs in which the author of `purpose` holds a drafter's role (none when the
    author is unknown)."""
    if purpose is None or purpose.created_by is None:
        return frozenset()
    return frozenset(g.organ_id for g in active_grants(session, purpose.created_by)
                     if g.role in rules.DRAFTER_ROLES)


def require_author_organ(session: Session, by: Actor, purpose: Purpose) -> None:
    """Refuse a drafter's work on `purpose` (or its routes and authorisations) by someone who
    is neither a privacy officer nor a drafter of the author's organ."""
    _check_author_organ(by, author_organs(session, purpose))


def _check_author_organ(by: Actor, organs: frozenset[int]) -> None:
    if not isinstance(by, Principal):
        return  # the system and the CLI's bundle apply (already checked for their role)
    drafting = frozenset().union(*(by.organs_for(r) for r in rules.DRAFTER_ROLES))
    problem = rules.drafter_organ_problem(by.roles, drafting, organs)
    if problem is not None:
        raise Forbidden(problem)


def workflow_of(session: Session, record: Record) -> Workflow:
    if isinstance(record, Purpose):
        return Workflow("purpose", rules.PURPOSE_TRANSITIONS, str(record.status),
                        record.submitted_by, author_organs=author_organs(session, record))
    if isinstance(record, Route):
        actions = rules.ROUTE_TRANSITIONS
        if rules.is_one_off(record.kind):
            actions = {a: t for a, t in actions.items() if a in rules.ONE_OFF_ROUTE_ACTIONS}
        else:
            actions = {a: t for a, t in actions.items() if a != "authorise"}
        return Workflow("route", actions, str(record.status), record.submitted_by,
                        record.from_organ_id,
                        author_organs(session, session.get(Purpose, record.purpose_id)))
    route = session.get(Route, record.route_id)
    purpose = session.get(Purpose, route.purpose_id) if route else None
    return Workflow("authorisation", rules.AUTHORISATION_TRANSITIONS, str(record.status),
                    record.submitted_by, route.from_organ_id if route else None,
                    author_organs(session, purpose))


def take_step(session: Session, by: Actor, flow: Workflow, action: str) -> Principal | None:
    """Refuse `action` unless the workflow allows it from the record's status and `by` may take
    it; returns the officer for an officer's step. Checks run in the order a person reads them:
    role, the author's organ (a drafter's step), status, separation of duties, then the holding
    organ (approving and revoking a footing)."""
    step = flow.transitions.get(action)
    officer = None
    if step is not None and step.by == rules.Actor.officer:
        officer = require_officer(by)
    else:
        require_drafter(by)
        _check_author_organ(by, flow.author_organs)
    problem = rules.transition_problem(flow.transitions, action, flow.status)
    if problem is not None:
        raise Conflict(problem)
    if officer is not None and action == "approve":
        require_separation(officer, flow.submitted_by)
    if (officer is not None and action in rules.HOLDER_ORGAN_ACTIONS
            and flow.holder_organ_id is not None):
        require_officer_of_organ(session, officer, flow.holder_organ_id)
    return officer


def take_officer_step(session: Session, by: Actor, flow: Workflow, action: str) -> Principal:
    """`take_step` for a step only an officer takes; returns the officer."""
    officer = take_step(session, by, flow, action)
    if officer is None:
        raise Forbidden(Reason.of("governance.not_privacy_officer"))
    return officer


def allowed_actions(session: Session, principal: Principal, record: Record) -> frozenset[str]:
    """The workflow steps the signed-in person may take on the record now; pages offer these
    and nothing else."""
    flow = workflow_of(session, record)
    allowed = set()
    for action in flow.transitions:
        try:
            take_step(session, principal, flow, action)
        except DomainError:
            continue
        allowed.add(action)
    return frozenset(allowed)


def record_step(
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
            actor_id=account_id(by),
            comment=comment,
        )
    )


def approval_history(session: Session, subject_type: str, subject_id: int) -> list[ApprovalStep]:
    return list(
        session.exec(
            select(ApprovalStep)
            .where(ApprovalStep.subject_type == subject_type, ApprovalStep.subject_id == subject_id)
            .order_by(col(ApprovalStep.id))
        ).all()
    )
