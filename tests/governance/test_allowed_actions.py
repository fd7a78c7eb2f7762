"""Pages offer what the service allows: usable badges are the gate's verdicts, and workflow
buttons are the signed-in person's allowed actions."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from governance import approvals, design, gate, purposes
from governance.rules import JOB_ROLES, JobKind
from governance.schemas import Citation, PurposeCreate, PurposeItemIn
from tests.factories import who as _who
from tests.web import api_token, bearer
from tests.web import sign_in as _sign_in

# Demo accounts by role, as `kodomo demo load` creates them.
ACCOUNTS = {"analyst": "analyst", "support_worker": "support", "data_holder": "holder"}


def _badges(html: str, purpose: str) -> dict[str, bool]:
    row = html.split(f'data-key="{purpose}"')[1].split("</tr>")[0]
    return {kind: allowed == "yes"
            for kind, allowed in re.findall(r'data-kind="(\w+)" data-allowed="(yes|no)"', row)}


def test_the_purposes_page_shows_the_gate_verdict_for_every_purpose_and_kind(
        client: TestClient, db: Session) -> None:
    _sign_in(client, "analyst")
    page = client.get("/purposes")
    assert page.status_code == 200
    tokens = {login: api_token(client, login) for login in ACCOUNTS.values()}
    for purpose in purposes.list_purposes(db):
        items = [item.key for _link, item in design.purpose_items(db, purpose)]
        badges = _badges(page.text, purpose.key)
        assert set(badges) == {kind.value for kind in JobKind}
        for kind in JobKind:
            verdicts = []
            for role in JOB_ROLES[kind]:
                response = client.post("/api/gate/explain", headers=bearer(tokens[ACCOUNTS[role]]),
                                       json={"kind": kind.value, "purpose": purpose.key,
                                             "items": items})
                assert response.status_code == 200, response.text
                verdicts.append(response.json()["allowed"])
            assert badges[kind.value] == any(verdicts), (purpose.key, kind.value)


def test_the_abuse_purpose_is_usable_and_the_drafts_are_not(db: Session) -> None:
    usable = {p.key: gate.usability(db, p).usable for p in purposes.list_purposes(db)}
    assert usable["child_abuse_prevention"] is True
    assert usable["young_carers_outreach"] is False  # its PIA is a draft
    assert usable["all_children_scoring"] is False


def _submitted_by_privacy(db: Session) -> None:
    source = purposes.get_purpose(db, "child_abuse_prevention")
    officer = _who(db, "privacy")
    purposes.create_purpose(db, officer, PurposeCreate(
        key="trial_actions", title_ja="試行", purpose_text=source.purpose_text,
        necessity=source.necessity, acquisition_method=source.acquisition_method,
        handling_extraction="抽出", handling_matching_key="宛名番号", handling_logic="規則",
        handling_result_viewers="担当職員", handling_human_assessment="職員が確認する",
        citations=[Citation(kind="statute", law_name="児童福祉法", article="第25条の2")],
    ))
    for link, item in design.purpose_items(db, source)[:1]:
        purposes.set_item(db, officer, "trial_actions", PurposeItemIn(
            item=item.key, necessity_reason=link.necessity_reason or "必要",
            relevance_to_difficulty=link.relevance_to_difficulty or "関連"))
    purpose = purposes.get_purpose(db, "trial_actions")
    purpose.status = "submitted"  # type: ignore[assignment]
    purpose.submitted_by = officer.account_id
    db.add(purpose)
    db.flush()


@pytest.mark.parametrize(("login", "offered"), [("privacy", False), ("privacy2", True)])
def test_the_submitter_is_not_offered_the_approval(client: TestClient, db: Session, login: str,
                                                    offered: bool) -> None:
    _submitted_by_privacy(db)
    purpose = purposes.get_purpose(db, "trial_actions")
    actions = approvals.allowed_actions(db, _who(db, login), purpose)
    assert ("approve" in actions) is offered
    assert "return" in actions  # returning is not approving: either officer may
    _sign_in(client, login)
    page = client.get("/purposes/trial_actions")
    assert page.status_code == 200
    assert ('action="/purposes/trial_actions/approve"' in page.text) is offered
    assert 'action="/purposes/trial_actions/return"' in page.text


def test_an_analyst_is_offered_no_officer_step(db: Session) -> None:
    abuse = purposes.get_purpose(db, "child_abuse_prevention")
    actions = approvals.allowed_actions(db, _who(db, "analyst"), abuse)
    assert actions == {"revise"}
    assert approvals.allowed_actions(db, _who(db, "auditor"), abuse) == frozenset()
