"""Set-based eligibility: each exclusion reason alone, two guardians, thresholds, withdrawal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from consent import eligibility, service
from consent.models import ChildView, Person, Relation, RestrictionSource
from consent.rules import CapacityPolicy
from consent.schemas import RestrictionIn, WithdrawIn
from core import audit
from core.ages import AgeReachedOn, age_on, age_reached
from core.models import AuditEvent
from core.reasons import InvalidInput
from tests.factories import AT, SHOWN, World, make_notice


def _consistent(world: World, ids: list[str], at: datetime = AT) -> None:
    included = world.eligible(ids, at)
    for person in ids:
        assert (person in included) == (world.why(person, at) == []), person


def test_both_parents_consented(world: World) -> None:
    child, (mother, father) = world.family("2013-05-10")
    world.give(child, mother)
    world.give(child, father)
    assert world.eligible([child]) == {child}
    assert world.why(child) == []


def test_one_of_two_parents_is_not_enough(world: World) -> None:
    child, (mother, father) = world.family("2013-05-10")
    world.give(child, mother)
    assert world.eligible([child]) == set()
    reasons = eligibility.why_excluded(world.session, child, world.purpose_id, world.flows, AT)
    assert {r.code for r in reasons} == {"consent.excluded_no_guardian_consent"}
    assert {r.refs["guardian_id"] for r in reasons} == {father}


def test_policy_any_parent(world: World) -> None:
    child, (mother, _father) = world.family("2013-05-10")
    world.give(child, mother)
    policy = CapacityPolicy(parents="any")
    assert world.eligible([child], policy=policy) == {child}
    assert world.why(child, policy=policy) == []


def test_a_withdrawal_by_either_parent_changes_the_next_result(world: World) -> None:
    child, (mother, father) = world.family("2013-05-10")
    world.give(child, mother)
    record = world.give(child, father)
    assert world.eligible([child]) == {child}
    service.withdraw(world.session, audit.SYSTEM, record.id,
                     WithdrawIn(at=AT - timedelta(days=1)))
    assert world.eligible([child]) == set()
    assert "consent.excluded_withdrawn" in world.why(child)
    assert "consent.excluded_restricted" in world.why(child)
    # Before the withdrawal the child was eligible (history is not rewritten).
    assert world.eligible([child], at=AT - timedelta(days=2)) == {child}
    # The father consents again: the withdrawal's restriction ends, the child is back.
    world.give(child, father, at=AT - timedelta(hours=1))
    assert world.eligible([child]) == {child}


def test_policy_any_still_withdraws_on_either_withdrawal(world: World) -> None:
    child, (mother, father) = world.family("2013-05-10")
    world.give(child, mother)
    record = world.give(child, father)
    policy = CapacityPolicy(parents="any", withdrawal_restricts_purpose=False)
    service.withdraw(world.session, audit.SYSTEM, record.id,
                     WithdrawIn(at=AT - timedelta(days=1)), policy=policy)
    assert world.eligible([child], policy=policy) == set()
    assert world.why(child, policy=policy) != []
    assert world.eligible([child], policy=CapacityPolicy(
        parents="any", withdrawal_by_either_withdraws=False)) == {child}


def test_a_restriction_alone_excludes(world: World) -> None:
    child, parents = world.family("2013-05-10")
    for parent in parents:
        world.give(child, parent)
    service.add_restriction(world.session, audit.SYSTEM, RestrictionIn(
        person_id=child, purpose_id=world.purpose_id,
        source=RestrictionSource.suspension_request, reason="利用停止請求を認容",
        valid_from=AT - timedelta(days=1)))
    assert world.eligible([child]) == set()
    assert world.why(child) == ["consent.excluded_restricted"]
    # Restrictions apply to every flow of the purpose, consent or not.
    assert world.eligible([child], flows=[]) == set()
    # ... and only to that purpose, and only from when they start.
    assert world.eligible([child], at=AT - timedelta(days=2)) == {child}


def test_the_unsuitable_mark_alone_excludes_and_stays_hidden(world: World) -> None:
    child, parents = world.family("2013-05-10")
    for parent in parents:
        world.give(child, parent)
    service.mark_unsuitable(world.session, audit.SYSTEM, child, "保護者による虐待の疑い",
                            at=AT - timedelta(days=1))
    assert world.eligible([child]) == set()
    assert world.why(child) == ["consent.excluded_route_unavailable"]
    assert world.why(child, reveal_unsuitable=True) == ["consent.excluded_route_unsuitable"]
    # Without consent flows the mark does not matter (another route applies).
    assert world.eligible([child], flows=[]) == {child}
    event = world.session.exec(select(AuditEvent).where(
        AuditEvent.action == "consent.route_marked_unsuitable").order_by(
        AuditEvent.seq.desc())).first()  # type: ignore[attr-defined]
    assert event is not None and "虐待" not in event.details


def test_an_expired_consent_alone_excludes(world: World) -> None:
    child, parents = world.family("2013-05-10")
    for parent in parents:
        world.give(child, parent)
    later = SHOWN + timedelta(days=world.notice.validity_days + 1)
    assert world.eligible([child], at=later) == set()
    assert set(world.why(child, at=later)) == {"consent.excluded_expired"}


def test_the_childs_objection_alone_excludes(world: World) -> None:
    child, parents = world.family("2013-05-10")
    world.give(child, parents[0], view=ChildView.objection)
    world.give(child, parents[1], view=ChildView.objection)
    assert world.eligible([child]) == set()
    assert set(world.why(child)) == {"consent.excluded_child_objected"}
    assert world.eligible([child], policy=CapacityPolicy(child_objection_blocks=False)) == {
        child}


def test_no_guardian_registered(world: World) -> None:
    child = world.people({"atena_no": "TNOGUARD01", "birth_date": "2016-01-01"})["TNOGUARD01"]
    assert world.eligible([child]) == set()
    assert set(world.why(child)) == {"consent.excluded_no_guardian"}


def test_a_minor_guardian(world: World) -> None:
    child, (guardian,) = world.family("2013-05-10", guardian=True)
    world.give(child, guardian, relation=Relation.minor_guardian)
    assert world.eligible([child]) == {child}


def test_a_flow_not_consented_to(world: World) -> None:
    child, parents = world.family("2013-05-10")
    for parent in parents:
        world.give(child, parent)
    other = [(world.items[0], "body:1")]
    assert world.eligible([child], flows=other) == set()
    assert world.eligible([child], flows=[]) == {child}


def test_self_consent_from_sixteen_and_guardian_consent_lapsing(world: World) -> None:
    # 15 at the consent, 16 on 2026-05-19 (the day before the birthday, as the practice of
    # 年齢計算法 counts it): the guardians' consent no longer counts from that day.
    child, parents = world.family("2010-05-20")
    for parent in parents:
        world.give(child, parent)
    assert world.eligible([child], at=datetime(2026, 5, 18, 3, tzinfo=UTC)) == {child}
    assert world.eligible([child], at=datetime(2026, 5, 19, 3, tzinfo=UTC)) == set()
    assert world.why(child, at=datetime(2026, 5, 19, 3, tzinfo=UTC)) == [
        "consent.excluded_no_self_consent"] * 2
    due = {(r.record_id, r.threshold) for r in eligibility.reconfirmation_due(
        world.session, datetime(2026, 5, 18, 3, tzinfo=UTC))}
    assert not [d for d in due if d[1] == 16]
    due = {(r.record_id, r.threshold) for r in eligibility.reconfirmation_due(
        world.session, datetime(2026, 5, 19, 3, tzinfo=UTC))}
    assert len([d for d in due if d[1] == 16]) == 2
    # counting whole days from the birthday (the policy's other choice), a day later
    whole_days = CapacityPolicy(age_reached_on=AgeReachedOn.birthday)
    assert world.eligible([child], at=datetime(2026, 5, 19, 3, tzinfo=UTC),
                          policy=whole_days) == {child}
    assert world.eligible([child], at=datetime(2026, 5, 20, 3, tzinfo=UTC),
                          policy=whole_days) == set()
    world.give(child, at=datetime(2026, 5, 21, tzinfo=UTC))
    assert world.eligible([child], at=datetime(2026, 5, 22, tzinfo=UTC)) == {child}
    assert world.eligible([child], at=datetime(2026, 5, 22, tzinfo=UTC), policy=CapacityPolicy(
        guardian_consent_after_threshold=True)) == {child}


def test_consistency_between_eligible_and_why_excluded(world: World) -> None:
    ids = []
    for birth in ("2013-05-10", "2016-02-29", "2010-03-01", "2008-06-01"):
        child, parents = world.family(birth)
        if age_on(date.fromisoformat(birth), SHOWN.date()) < 16:
            world.give(child, parents[0])
        else:
            world.give(child)
        ids += [child, *parents]
    _consistent(world, ids)


def test_a_population_query_passes_through(world: World) -> None:
    child, parents = world.family("2013-05-10")
    for parent in parents:
        world.give(child, parent)
    population = eligibility.population_of_children(9, 17, AT)
    query = eligibility.eligible(world.session, world.purpose_id, world.flows, population, AT)
    found = set(world.session.exec(query).all())  # type: ignore[call-overload]
    assert child in found and not set(parents) & found


@pytest.mark.parametrize("policy", [CapacityPolicy(),
                                    CapacityPolicy(guardian_consent_after_threshold=True)])
def test_a_population_with_birth_dates_gives_the_same_people(world: World,
                                                            policy: CapacityPolicy) -> None:
    # PostgreSQL reads the age from the population when it carries the register's birth date;
    # a column that only has the name must not be believed.
    ids = []
    # By order: both parents; one of two; the child itself at 16; both parents while 15, the
    # child 16 by AT (counts only under guardian_consent_after_threshold); nobody; both.
    for birth, by in [("2013-05-10", "both"), ("2013-06-01", "one"), ("2010-03-01", "self"),
                      ("2010-05-01", "both"), ("2009-01-15", "none"), ("2016-02-29", "both")]:
        child, parents = world.family(birth)
        if by == "self":
            world.give(child)
        for parent in {"both": parents, "one": parents[:1]}.get(by, []):
            world.give(child, parent)
        ids.append(child)

    def found(population: eligibility.Population) -> set[str]:
        query = eligibility.eligible(world.session, world.purpose_id, world.flows, population, AT,
                                     policy=policy)
        return set(world.session.exec(query).all()) & set(ids)  # type: ignore[call-overload]

    looked_up = found(eligibility.literal_population(ids))
    assert found(eligibility.population_of_children(0, 17, AT)) == looked_up
    forged = sa_select(col(Person.id), literal(date(2000, 1, 1)).label("birth_date")).where(
        col(Person.id).in_(ids))
    assert found(forged) == looked_up
    assert looked_up == world.eligible(ids, policy=policy)
    assert {ids[0], ids[2], ids[5]} <= looked_up and not {ids[1], ids[4]} & looked_up
    assert (ids[3] in looked_up) == policy.guardian_consent_after_threshold


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(birth=st.one_of(st.dates(min_value=date(2004, 1, 1), max_value=date(2010, 6, 30)),
                       st.sampled_from([date(2004, 2, 29), date(2008, 2, 29)])),
       offset=st.integers(min_value=-1, max_value=0))
def test_the_guardian_age_boundary_in_the_database(world: World, birth: date,
                                                   offset: int) -> None:
    # The child consented alone: counted exactly from the day it reaches 16 (the day before
    # the birthday, 28 February for a 29 February birth), not a day earlier.
    day = age_reached(birth, 16) + timedelta(days=offset)
    tag = f"B{birth:%Y%m%d}X{offset + 1}"
    person = world.people({"atena_no": tag, "birth_date": birth.isoformat()})[tag]
    at = datetime(day.year, day.month, day.day, 3, tzinfo=UTC)  # noon in Tokyo
    notice = make_notice(world.session, world.purpose_id, world.organ_id, world.items,
                         world.recipient, shown=False)
    service.mark_notice_shown(world.session, audit.SYSTEM, notice.id or 0,
                              at=datetime(2015, 1, 1, tzinfo=UTC))
    world.notice = notice
    if offset == 0:
        world.give(person, at=at - timedelta(hours=1))
        assert world.eligible([person], at=at) == {person}
    else:
        with pytest.raises(InvalidInput) as refused:
            world.give(person, at=at)
        assert "consent.child_alone_below_guardian_age" in str(refused.value)
        assert world.eligible([person], at=at) == set()
