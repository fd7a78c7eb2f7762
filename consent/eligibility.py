"""Set-based eligibility: populations, who the records allow, why not, who must re-confirm."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, or_, union, union_all
from sqlalchemy import select as sa_select
from sqlalchemy.sql import Select
from sqlmodel import Session, col, select

import consent.messages  # noqa: F401  (registers the messages)
from consent.models import (
    ChildView,
    ConsentRecord,
    ConsentScope,
    Guardianship,
    Person,
    Relation,
    Restriction,
    UnsuitableMark,
)
from consent.people import get_person, guardianships
from consent.rules import CapacityPolicy
from core import messages
from core.ages import latest_birth_for_age
from core.clock import as_utc, local_day, utcnow
from core.policies import policy as configured
from core.reasons import Reason

Flow = tuple[int, str]  # (registry_item.id, recipient key)
# A query whose first column is person ids (any further columns ride along).
Population = Select[*tuple[Any, ...]]


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
    day = local_day(at)
    cut = policy.latest_birth(day, policy.guardian_required_below)
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
    day = local_day(moment)
    cut = policy.latest_birth(day, policy.guardian_required_below)
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
    day = local_day(at)
    cut = policy.latest_birth(day, policy.guardian_required_below)
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
    policy = policy or configured(CapacityPolicy)
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
    policy = policy or configured(CapacityPolicy)
    moment = as_utc(at)
    day = local_day(moment)
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
            since=local_day(restriction.valid_from).isoformat()))
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
    age = policy.age(person.birth_date, day)
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
    if record.given_at is None or record.given_at > at:
        return False
    if record.valid_until is not None and record.valid_until <= at:
        return False
    if record.withdrawn_at is not None and record.withdrawn_at <= at:
        return False
    return not (policy.child_objection_blocks and record.child_view == ChildView.objection)


def _lapse_reasons(records: Iterable[ConsentRecord], at: datetime, policy: CapacityPolicy,
                   params: dict[str, Any]) -> list[Reason]:  # params: item, recipient
    """Why the records that exist do not count (withdrawn, expired, objected)."""
    found: list[Reason] = []
    codes: set[str] = set()
    for record in records:
        if record.given_at is None or record.given_at > at:
            continue
        if record.withdrawn_at is not None and record.withdrawn_at <= at:
            codes.add("consent.excluded_withdrawn")
        elif record.valid_until is not None and record.valid_until <= at:
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
            latest_withdrawal = max((r.withdrawn_at for r in by_guardian
                                     if r.withdrawn_at and r.withdrawn_at <= at),
                                    default=None)
            latest_given = max((r.given_at for r in by_guardian
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

    Ages follow 年齢計算法 as administrative practice counts them (core.ages: an age is reached
    on the day before the birthday). The birth date comes along so that `eligible` need not
    read it again.
    """
    day = local_day(as_utc(at))
    oldest = latest_birth_for_age(day, max_age + 1)
    youngest = latest_birth_for_age(day, min_age)
    return sa_select(col(Person.id), col(Person.birth_date)).where(
        col(Person.birth_date) > oldest, col(Person.birth_date) <= youngest)


def literal_population(person_ids: Iterable[str]) -> Population:
    """A population of the given ids (tests and one-off checks)."""
    ids = list(person_ids)
    return select(Person.id).where(col(Person.id).in_(ids or [literal("")]))


# ---------------------------------------------------------------- re-confirmation due


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
    policy = policy or configured(CapacityPolicy)
    moment = as_utc(at or utcnow())
    day = local_day(moment)
    found: list[Reconfirmation] = []
    for threshold in policy.thresholds():
        cut = policy.latest_birth(day, threshold)
        rows = session.exec(
            select(col(ConsentRecord.id), col(ConsentRecord.principal_id),
                   col(Person.birth_date))
            .join(Person, col(Person.id) == ConsentRecord.principal_id)
            .where(*_in_force(moment), ConsentRecord.confirmed_age < threshold,
                   col(Person.birth_date) <= cut)
        ).all()
        found.extend(Reconfirmation(rid, pid, threshold, policy.age(birth, day))
                     for rid, pid, birth in rows)
    found.sort(key=lambda r: (r.record_id, r.threshold))
    return found
