"""Drafts of a purpose (and of its routes and authorisations) are for drafters of the author's
organ and for privacy officers (governance.rules.drafter_organ_problem via approvals.take_step);
the pages' allowed actions say the same."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from core import audit
from core.clock import utcnow
from core.reasons import Forbidden
from governance import approvals, footing, purposes
from governance.models import Basis, Recurrence
from governance.schemas import (
    AuthorisationCreate,
    AuthorisationFields,
    PurposeCreate,
    PurposeItemIn,
    PurposeUpdate,
    RouteCreate,
)
from tests.factories import codes, draft_purpose, one_off_route, who
from tests.web import api_token, bearer

ITEM = PurposeItemIn(item="gakurei.aid", necessity_reason="n", relevance_to_difficulty="r")


def _four() -> dict[str, object]:
    start = utcnow()
    return {"is_temporary": True, "temporary_reasoning": "1回限り", "valid_from": start,
            "valid_until": start + timedelta(days=30), "runs_allowed": 1,
            "within_necessary_extent": True, "necessity_reasoning": "最小限",
            "substantial_reason": True, "substantial_reasoning": "生命の保護",
            "recipient_task_citation": "児童福祉法第10条"}


def _refused(call: object) -> None:
    assert callable(call)
    with pytest.raises(Forbidden) as refused:
        call()
    assert codes(refused.value) == ["governance.not_author_organ"]


def test_another_organs_drafter_cannot_touch_the_draft(db: Session) -> None:
    draft_purpose(db)  # the analyst's (mayor)
    one_off_route(db)
    footing.create_authorisation(db, who(db, "analyst"),
                                 AuthorisationCreate(key="a1", route="r1", **_four()))
    other = who(db, "edu_holder")  # a data holder of the board of education
    _refused(lambda: purposes.update_purpose(db, other, "trial", PurposeUpdate(necessity="x")))
    _refused(lambda: purposes.set_item(db, other, "trial", ITEM))
    _refused(lambda: purposes.remove_item(db, other, "trial", "shukketsu.days_absent"))
    _refused(lambda: purposes.submit_purpose(db, other, "trial"))
    _refused(lambda: footing.create_route(db, other, "trial", RouteCreate(
        key="r2", items=["shukketsu.days_absent"], to_organ="mayor", basis=Basis.one_off,
        recurrence=Recurrence.one_off)))
    _refused(lambda: footing.create_authorisation(
        db, other, AuthorisationCreate(key="a2", route="r1", **_four())))
    _refused(lambda: footing.update_authorisation(db, other, "a1",
                                                  AuthorisationFields(**_four())))
    _refused(lambda: footing.submit_authorisation(db, other, "a1"))
    purpose = purposes.get_purpose(db, "trial")
    assert not approvals.allowed_actions(db, other, purpose) & {"edit", "submit"}
    auth = footing.get_authorisation(db, "a1")
    assert not approvals.allowed_actions(db, other, auth) & {"edit", "submit"}


def test_drafters_of_the_authors_organ_and_officers_may(db: Session) -> None:
    draft_purpose(db)
    one_off_route(db)
    footing.create_authorisation(db, who(db, "analyst"),
                                 AuthorisationCreate(key="a1", route="r1", **_four()))
    purpose = purposes.get_purpose(db, "trial")
    auth = footing.get_authorisation(db, "a1")
    for login in ("holder", "privacy"):  # a mayor's data holder; an officer (of both organs)
        by = who(db, login)
        purposes.update_purpose(db, by, "trial", PurposeUpdate(necessity=f"by {login}"))
        purposes.set_item(db, by, "trial", ITEM)
        footing.update_authorisation(db, by, "a1", AuthorisationFields(**_four()))
        assert {"edit", "submit"} <= approvals.allowed_actions(db, by, purpose)
        assert {"edit", "submit"} <= approvals.allowed_actions(db, by, auth)
    footing.create_route(db, who(db, "holder"), "trial", RouteCreate(
        key="r2", items=["shukketsu.days_absent"], to_organ="mayor", basis=Basis.one_off,
        recurrence=Recurrence.one_off))


def test_a_draft_with_no_author_is_for_officers(db: Session) -> None:
    purposes.create_purpose(db, audit.SYSTEM, PurposeCreate(key="sys", title_ja="システム"))
    _refused(lambda: purposes.update_purpose(db, who(db, "analyst"), "sys",
                                             PurposeUpdate(necessity="x")))
    purposes.update_purpose(db, who(db, "privacy"), "sys", PurposeUpdate(necessity="x"))
    purpose = purposes.get_purpose(db, "sys")
    assert "edit" not in approvals.allowed_actions(db, who(db, "analyst"), purpose)
    assert "edit" in approvals.allowed_actions(db, who(db, "privacy"), purpose)


def test_the_api_refuses_another_organ(client: TestClient, db: Session) -> None:
    draft_purpose(db)
    db.commit()
    edu = bearer(api_token(client, "edu_holder"))
    response = client.patch("/api/governance/purposes/trial", json={"necessity": "x"}, headers=edu)
    assert response.status_code == 403
    assert response.json()["error"]["reasons"][0]["code"] == "governance.not_author_organ"
    holder = bearer(api_token(client, "holder"))
    assert client.patch("/api/governance/purposes/trial", json={"necessity": "x"},
                        headers=holder).status_code == 200
