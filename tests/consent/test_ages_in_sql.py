"""The ages the database computes (birth-date bounds in SQL) agree with core.ages, on SQLite and
PostgreSQL: a purpose's subjects and the capacity threshold, under both capacity policies."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from consent import eligibility
from consent.models import Person
from consent.rules import CapacityPolicy
from core.ages import AgeReachedOn, age_on

births = st.one_of(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2026, 12, 31)),
    st.sampled_from([2000, 2004, 2008, 2012, 2016, 2020, 2024]).flatmap(
        lambda y: st.sampled_from([date(y, 2, 28), date(y, 2, 29), date(y, 3, 1)])),
)
# Days near the boundaries that matter: year ends, leap days, and any day at all.
days = st.one_of(
    st.dates(min_value=date(2018, 1, 1), max_value=date(2027, 12, 31)),
    st.sampled_from([date(2024, 2, 28), date(2024, 2, 29), date(2025, 2, 28), date(2025, 3, 1),
                     date(2026, 12, 1), date(2026, 12, 31), date(2027, 1, 1)]),
)


def _add_people(session: Session, birth_dates: list[date]) -> dict[str, date]:
    people: dict[str, date] = {}
    for birth in birth_dates:
        token = secrets.token_hex(8)
        person = Person(atena_no=f"Q{token}", atena_hash=f"q{token}", name="試験 花子",
                        name_hash=f"n{token}", kana="シケン ハナコ", kana_hash=f"k{token}",
                        birth_date=birth)
        session.add(person)
        people[person.id] = birth
    session.flush()
    return people


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(birth_dates=st.lists(births, min_size=1, max_size=12), day=days,
       low=st.integers(min_value=0, max_value=18), width=st.integers(min_value=0, max_value=6),
       threshold=st.integers(min_value=1, max_value=18))
def test_ages_in_sql_agree_with_python(db: Session, birth_dates: list[date], day: date,
                                       low: int, width: int, threshold: int) -> None:
    savepoint = db.begin_nested()
    try:
        people = _add_people(db, [b for b in birth_dates if b <= day] or [day])
        ids = list(people)
        at = datetime(day.year, day.month, day.day, 3, tzinfo=UTC)  # noon in Tokyo
        # A purpose's subjects: low..low+width years old during the day
        population = eligibility.population_of_children(low, low + width, at).subquery()
        found = set(db.exec(select(population.c.id).where(population.c.id.in_(ids))).all())
        assert found == {p for p, b in people.items() if low <= age_on(b, day) <= low + width}
        # The capacity threshold as eligibility and re-confirmation compare it, both policies
        for reached_on in AgeReachedOn:
            policy = CapacityPolicy(age_reached_on=reached_on)
            cut = policy.latest_birth(day, threshold)
            older = set(db.exec(select(Person.id).where(
                col(Person.id).in_(ids), col(Person.birth_date) <= cut)).all())
            assert older == {p for p, b in people.items() if policy.age(b, day) >= threshold}
    finally:
        savepoint.rollback()
