"""The PIA form offers the workflow steps the signed-in person may take, and no other."""

from __future__ import annotations

import pytest

from core.auth import Grant, Principal
from core.models import Role
from pia import service
from pia.models import Assessment, Level, State

AUTHOR, OTHER = 1, 2


def _officer(account_id: int) -> Principal:
    return Principal(account_id, f"officer{account_id}", "職員", 1,
                     (Grant(Role.privacy_officer, 1),))


def _pia(status: State, level: Level) -> Assessment:
    return Assessment(purpose_id=1, design_hash="0" * 64, status=status, level=level,
                      author_id=AUTHOR, submitted_by=AUTHOR)


@pytest.mark.parametrize(("status", "level", "expected"), [
    (State.draft, Level.full, {"submit"}),
    (State.returned, Level.basic, {"submit"}),
    (State.review, Level.full, {"start_public_comment", "return"}),
    (State.review, Level.basic, {"approve", "return"}),
    (State.public_comment, Level.full, {"to_third_party", "return"}),
    (State.third_party_review, Level.full, {"approve", "return"}),
    (State.approved, Level.full, set()),
    (State.superseded, Level.basic, set()),
])
def test_an_officer_who_did_not_write_it_may_take_each_step_of_its_state(
        status: State, level: Level, expected: set[str]) -> None:
    assert service.allowed_actions(_officer(OTHER), _pia(status, level)) == expected


@pytest.mark.parametrize("level", [Level.full, Level.basic])
def test_the_author_is_never_offered_the_approval(level: Level) -> None:
    ready = State.third_party_review if level == Level.full else State.review
    assert "approve" not in service.allowed_actions(_officer(AUTHOR), _pia(ready, level))
    assert "return" in service.allowed_actions(_officer(AUTHOR), _pia(ready, level))


def test_other_roles_are_offered_nothing() -> None:
    analyst = Principal(3, "analyst", "分析", 1, (Grant(Role.analyst, 1),))
    assert service.allowed_actions(analyst, _pia(State.review, Level.basic)) == frozenset()
