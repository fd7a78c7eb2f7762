"""Purposes, routes and authorisations through the service and the API, on both backends."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from core.auth import Principal
from core.clock import utcnow
from core.models import AuditEvent
from core.reasons import Conflict, Forbidden, InvalidInput
from governance import approvals, footing, gate, purposes
from governance.design import design_hash, design_of
from governance.models import Basis, PurposeStatus, RecordStatus, Recurrence, RouteKind
from governance.schemas import (
    ApprovalIn,
    AuthorisationCreate,
    AuthorisationFields,
    Decision,
    PurposeItemIn,
    PurposeUpdate,
    RouteCreate,
)
from registry import service as registry
from tests.factories import approve_pia, codes, draft_purpose, one_off_route, who
from tests.web import api_token, bearer

OK = Decision(comment="確認しました")


def test_demo_purposes_are_usable_and_the_incomplete_one_is_not(db: Session) -> None:
    assert gate.usability(db, purposes.get_purpose(db, "child_abuse_prevention")).usable
    # The young-carers PIA is still a draft, so the gate refuses every job of the purpose.
    carers = gate.usability(db, purposes.get_purpose(db, "young_carers_outreach"))
    assert not carers.usable
    assert "pia.not_approved" in {r.code for r in carers.reasons}
    result = gate.usability(db, purposes.get_purpose(db, "all_children_scoring"))
    assert not result.usable
    found = {r.code for r in result.reasons}
    assert {
        "gate.purpose_not_in_force",
        "governance.missing_citation",
        "gate.no_route",
    } <= found


def test_submission_names_every_missing_element(db: Session) -> None:
    with pytest.raises(InvalidInput) as refused:
        purposes.submit_purpose(db, who(db, "analyst"), "all_children_scoring")
    assert "governance.missing_citation" in codes(refused.value)
    assert "governance.item_missing_necessity" in codes(refused.value)
    assert all(r.field for r in refused.value.reasons)


def test_separation_of_duties_and_comments(db: Session) -> None:
    draft_purpose(db)
    privacy = who(db, "privacy")
    purposes.submit_purpose(db, privacy, "trial")
    with pytest.raises(Forbidden) as refused:
        purposes.approve_purpose(db, privacy, "trial", OK)
    assert codes(refused.value) == ["governance.self_approval"]
    with pytest.raises(Forbidden):
        purposes.approve_purpose(db, who(db, "analyst"), "trial", OK)
    purpose = purposes.approve_purpose(db, who(db, "privacy2"), "trial", OK)
    assert purpose.status == PurposeStatus.approved
    steps = approvals.approval_history(db, "purpose", purpose.id or 0)
    assert [s.action for s in steps] == ["submit", "approve"]
    assert steps[-1].comment == OK.comment


def test_approved_purpose_is_not_edited_in_place(db: Session) -> None:
    analyst = who(db, "analyst")
    with pytest.raises(Conflict):
        purposes.update_purpose(
            db, analyst, "child_abuse_prevention", PurposeUpdate(necessity="変更")
        )
    revised = purposes.revise_purpose(db, analyst, "child_abuse_prevention")
    assert (revised.version, revised.status) == (2, PurposeStatus.draft)


@pytest.mark.parametrize(
    ("items", "recipient", "basis", "recurrence", "expected"),
    [
        (
            ["seiho.kind"],
            {"to_organ": "mayor"},
            Basis.one_off,
            Recurrence.one_off,
            RouteKind.internal_use,
        ),
        (
            ["shukketsu.days_absent"],
            {"to_organ": "mayor"},
            Basis.one_off,
            Recurrence.one_off,
            RouteKind.provision,
        ),
        (
            ["seiho.kind"],
            {"to_body": "pref_child_guidance"},
            Basis.one_off,
            Recurrence.one_off,
            RouteKind.provision,
        ),
        (
            ["seiho.kind"],
            {"to_body": "npo_kodomo_shokudo"},
            Basis.one_off,
            Recurrence.one_off,
            "governance.provision_to_private_body",
        ),
        (
            ["seiho.kind"],
            {"to_organ": "mayor"},
            Basis.one_off,
            Recurrence.recurring,
            "governance.recurring_one_off",
        ),
        (
            ["seiho.kind"],
            {"to_body": "npo_kodomo_shokudo"},
            Basis.consent,
            Recurrence.one_off,
            RouteKind.consent,
        ),
        (
            ["seiho.kind"],
            {"to_body": "pref_child_guidance"},
            Basis.law,
            Recurrence.recurring,
            RouteKind.law,
        ),
        (
            ["seiho.kind"],
            {"to_body": "npo_kodomo_shokudo"},
            Basis.statistics,
            Recurrence.one_off,
            RouteKind.statistics,
        ),
        (
            ["shukketsu.days_absent"],
            {"to_organ": "mayor"},
            Basis.purpose_change,
            Recurrence.recurring,
            RouteKind.purpose_change,
        ),
        (
            ["seiho.kind", "shukketsu.days_absent"],
            {"to_organ": "mayor"},
            Basis.one_off,
            Recurrence.one_off,
            "governance.items_from_several_organs",
        ),
        (
            ["juki.name"],
            {"to_organ": "mayor"},
            Basis.one_off,
            Recurrence.one_off,
            "governance.item_not_in_purpose",
        ),
    ],
)
def test_route_kind_is_derived(
    db: Session,
    items: list[str],
    recipient: dict[str, str],
    basis: Basis,
    recurrence: Recurrence,
    expected: object,
) -> None:
    draft_purpose(db)
    data = RouteCreate(key="r1", items=items, basis=basis, recurrence=recurrence, **recipient)
    if isinstance(expected, RouteKind):
        route = footing.create_route(db, who(db, "analyst"), "trial", data)
        assert route.kind == expected
    else:
        with pytest.raises(InvalidInput) as refused:
            footing.create_route(db, who(db, "analyst"), "trial", data)
        assert codes(refused.value) == [expected]


def _four(**change: object) -> dict[str, object]:
    start = utcnow()
    fields: dict[str, object] = {
        "is_temporary": True,
        "temporary_reasoning": "1回限り",
        "valid_from": start,
        "valid_until": start + timedelta(days=30),
        "runs_allowed": 1,
        "within_necessary_extent": True,
        "necessity_reasoning": "最小限",
        "substantial_reason": True,
        "substantial_reasoning": "生命の保護",
        "recipient_task_citation": "児童福祉法第10条",
        "no_undue_infringement": True,
        "infringement_reasoning": "PIA",
        "restricting_laws_checked": True,
        "restricting_laws_note": "学校教育法・学校保健安全法に制限する規定がないことを確認",
        "recipient_measures": "目的外に利用せず、事業終了後に消去すること",
    }
    fields.update(change)
    return fields


def _provision_route(db: Session) -> None:
    draft_purpose(db)
    one_off_route(db)
    approve_pia(db, "trial")  # an approved, current PIA of the design: needed before any approval


@pytest.mark.parametrize(
    "condition",
    ["is_temporary", "within_necessary_extent", "substantial_reason", "no_undue_infringement"],
)
def test_each_of_the_four_conditions_refuses_alone(db: Session, condition: str) -> None:
    _provision_route(db)
    footing.create_authorisation(
        db,
        who(db, "analyst"),
        AuthorisationCreate(key="a1", route="r1", **_four(**{condition: False})),
    )
    with pytest.raises(InvalidInput) as refused:
        footing.submit_authorisation(db, who(db, "analyst"), "a1")
    assert codes(refused.value) == ["governance.condition_not_met"]
    assert refused.value.reasons[0].field == condition


def test_authorisation_approval_rules(db: Session) -> None:
    _provision_route(db)
    analyst = who(db, "analyst")
    footing.create_authorisation(db, analyst, AuthorisationCreate(key="a1", route="r1", **_four()))
    footing.submit_authorisation(db, analyst, "a1")
    with pytest.raises(InvalidInput) as no_delegation:
        footing.approve_authorisation(db, who(db, "privacy"), "a1", ApprovalIn(comment="可"))
    assert codes(no_delegation.value) == ["governance.missing_delegation"]
    approved = footing.approve_authorisation(
        db, who(db, "privacy"), "a1", ApprovalIn(comment="可", delegation_note="専決規程による")
    )
    assert approved.status == RecordStatus.approved
    assert footing.get_route(db, "r1").status == RecordStatus.approved


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"restricting_laws_checked": False}, "governance.restricting_laws_unanswered",
         "restricting_laws_checked"),
        ({"restricting_laws_note": "  "}, "governance.restricting_laws_unanswered",
         "restricting_laws_note"),
        ({"recipient_measures": ""}, "governance.recipient_measures_missing",
         "recipient_measures"),
        ({"access_limited_to": "こども家庭課の指名職員"}, "governance.access_limit_unstructured",
         "access_limited_to"),
    ],
)
def test_approval_needs_the_69_3_answer_the_70_measures_and_a_structured_limit(
        db: Session, change: dict[str, object], code: str, field: str) -> None:
    """Art. 69(3) for every 69(2) authorisation, Art. 70 for a provision (r1 is 教育委員会 →
    市長), a structured Art. 69(4) limit; each refuses alone, and nothing is approved."""
    _provision_route(db)
    analyst = who(db, "analyst")
    footing.create_authorisation(db, analyst,
                                 AuthorisationCreate(key="a1", route="r1", **_four(**change)))
    footing.submit_authorisation(db, analyst, "a1")  # submission does not need them yet
    with pytest.raises(InvalidInput) as refused:
        footing.approve_authorisation(db, who(db, "privacy"), "a1",
                                      ApprovalIn(comment="可", delegation_note="専決"))
    assert [(r.code, r.field) for r in refused.value.reasons] == [(code, field)]
    assert refused.value.reasons[0].message_ja and refused.value.reasons[0].message_en
    assert footing.get_authorisation(db, "a1").status == RecordStatus.submitted


def test_art_70_measures_are_a_policy_and_internal_use_does_not_need_them(
        db: Session) -> None:
    from core.policies import override_policy
    from governance.rules import GovernancePolicy, approval_answer_problems

    assert approval_answer_problems(RouteKind.internal_use, True, "確認", "", "") == []
    missing = approval_answer_problems(RouteKind.provision, True, "確認", "", "")
    assert [r.code for r in missing] == ["governance.recipient_measures_missing"]
    relaxed = GovernancePolicy(require_recipient_measures=False)
    assert approval_answer_problems(RouteKind.provision, True, "確認", "", "", relaxed) == []
    _provision_route(db)
    analyst = who(db, "analyst")
    footing.create_authorisation(db, analyst, AuthorisationCreate(
        key="a1", route="r1", **_four(recipient_measures="")))
    footing.submit_authorisation(db, analyst, "a1")
    with override_policy(relaxed):
        approved = footing.approve_authorisation(db, who(db, "privacy"), "a1",
                                                 ApprovalIn(comment="可", delegation_note="専決"))
    assert approved.status == RecordStatus.approved


def test_a_structured_access_limit_is_stored_by_key_and_unknown_keys_are_refused(
        db: Session) -> None:
    _provision_route(db)
    analyst = who(db, "analyst")
    with pytest.raises(InvalidInput) as unknown:
        footing.create_authorisation(db, analyst, AuthorisationCreate(
            key="a1", route="r1",
            **_four(access_limited_to={"organs": ["nowhere"], "departments": ["digital"]})))
    assert [(r.code, r.field) for r in unknown.value.reasons] == [
        ("governance.unknown_access_key", "access_limited_to.organs")]
    auth = footing.create_authorisation(db, analyst, AuthorisationCreate(
        key="a1", route="r1", **_four(access_limited_to={
            "departments": ["digital", "child_family"], "roles": ["analyst"]})))
    assert json.loads(auth.access_limits) == {
        "organs": [], "departments": ["child_family", "digital"], "roles": ["analyst"]}
    assert auth.access_limit_note == ""


def test_officer_must_act_for_the_holding_organ(db: Session) -> None:
    _provision_route(db)
    analyst = who(db, "analyst")
    footing.create_authorisation(db, analyst, AuthorisationCreate(key="a1", route="r1", **_four()))
    footing.submit_authorisation(db, analyst, "a1")
    mayor_only = who(db, "privacy")
    mayor_only = Principal(
        mayor_only.account_id,
        mayor_only.login,
        mayor_only.display_name,
        mayor_only.token_version,
        tuple(g for g in mayor_only.grants if g.organ_id == 1),
    )
    with pytest.raises(Forbidden) as refused:
        footing.approve_authorisation(
            db, mayor_only, "a1", ApprovalIn(comment="可", delegation_note="専決")
        )
    assert codes(refused.value) == ["governance.not_officer_of_holder"]


def _organ_only(principal: Principal, organ_id: int) -> Principal:
    return Principal(principal.account_id, principal.login, principal.display_name,
                     principal.token_version,
                     tuple(g for g in principal.grants if g.organ_id == organ_id))


def test_revoking_a_route_is_guarded_as_approving_it(db: Session) -> None:
    """Only a privacy officer of the holding organ revokes a footing, and only one in force or
    awaiting a decision (a draft is not in force: there is nothing to revoke)."""
    boe_route = footing.get_route(db, "abuse.boe_provision")  # 教育委員会 → 市長
    mayor_only = _organ_only(who(db, "privacy"), 1)
    assert boe_route.from_organ_id != 1
    with pytest.raises(Forbidden) as not_holder:
        footing.revoke_route(db, mayor_only, "abuse.boe_provision", Decision(comment="取消し"))
    assert codes(not_holder.value) == ["governance.not_officer_of_holder"]
    assert footing.get_route(db, "abuse.boe_provision").status == RecordStatus.approved
    with pytest.raises(Forbidden) as not_officer:
        footing.revoke_route(db, who(db, "analyst"), "abuse.boe_provision",
                             Decision(comment="取消し"))
    assert codes(not_officer.value) == ["governance.not_privacy_officer"]
    _provision_route(db)  # r1: a draft one-off route
    with pytest.raises(Conflict) as draft:
        footing.revoke_route(db, who(db, "privacy"), "r1", Decision(comment="取消し"))
    assert codes(draft.value) == ["governance.bad_transition"]
    revoked = footing.revoke_route(db, who(db, "privacy"), "abuse.boe_provision",
                                   Decision(comment="取消し"))
    assert revoked.status == RecordStatus.revoked
    with pytest.raises(Conflict) as again:
        footing.revoke_route(db, who(db, "privacy"), "abuse.boe_provision",
                             Decision(comment="取消し"))
    assert codes(again.value) == ["governance.bad_transition"]
    # the mayor's own footing stays the mayor's officers' to revoke (pages offer it to them)
    assert "revoke" in approvals.allowed_actions(db, mayor_only,
                                                 footing.get_route(db, "abuse.mayor_internal"))


def test_a_second_one_off_of_the_same_pattern_is_refused(db: Session) -> None:
    _provision_route(db)
    analyst = who(db, "analyst")
    for key in ("a1", "a2"):
        footing.create_authorisation(
            db, analyst, AuthorisationCreate(key=key, route="r1", **_four())
        )
    footing.submit_authorisation(db, analyst, "a1")
    footing.approve_authorisation(
        db, who(db, "privacy"), "a1", ApprovalIn(comment="可", delegation_note="専決")
    )
    with pytest.raises(InvalidInput) as refused:
        footing.submit_authorisation(db, analyst, "a2")
    assert codes(refused.value) == ["governance.repeated_one_off"]
    assert refused.value.reasons[0].refs["authorisation"] == "a1"


def test_an_item_outside_the_purpose_is_refused(db: Session) -> None:
    draft_purpose(db)
    one_off_route(db)
    purposes.remove_item(db, who(db, "analyst"), "trial", "shukketsu.days_absent")
    footing.create_authorisation(
        db, who(db, "analyst"), AuthorisationCreate(key="a1", route="r1", **_four())
    )
    with pytest.raises(InvalidInput) as refused:
        footing.submit_authorisation(db, who(db, "analyst"), "a1")
    assert codes(refused.value) == ["governance.item_beyond_purpose"]


def test_purpose_change_marks_the_register_entry_stale(db: Session) -> None:
    draft_purpose(db)
    analyst = who(db, "analyst")
    footing.create_route(
        db,
        analyst,
        "trial",
        RouteCreate(
            key="r1",
            items=["shukketsu.days_absent"],
            to_organ="mayor",
            basis=Basis.purpose_change,
            recurrence=Recurrence.recurring,
            reasoning="出欠の把握は就学支援という当初の目的と相当の関連性がある",
            changed_purpose_text="就学支援及びこどもの福祉のための支援",
        ),
    )
    assert registry.status(db, "shukketsu.days_absent").usable
    approve_pia(db, "trial")
    footing.submit_route(db, analyst, "r1")
    footing.approve_route(db, who(db, "privacy"), "r1", OK)
    after = registry.status(db, "shukketsu.days_absent")
    assert not after.usable
    assert "registry.entry_stale" in [r.code for r in after.reasons]


def test_design_hash_changes_exactly_when_the_design_changes(db: Session) -> None:
    draft_purpose(db)
    purpose = purposes.get_purpose(db, "trial")
    first = design_hash(design_of(db, purpose))
    assert design_hash(design_of(db, purpose)) == first
    analyst = who(db, "analyst")
    # Routine records leave it alone: an authorisation's window and run counter.
    one_off_route(db)
    with_route = design_hash(design_of(db, purpose))
    assert with_route != first  # a flow is part of the design
    footing.create_authorisation(db, analyst, AuthorisationCreate(key="a1", route="r1", **_four()))
    footing.update_authorisation(db, analyst, "a1", AuthorisationFields(**_four(runs_allowed=2)))
    assert design_hash(design_of(db, purpose)) == with_route
    # The design does change with the text, the logic version, an item, a subject.
    changes = [
        PurposeUpdate(purpose_text="別の目的"),
        PurposeUpdate(handling_logic_version="v2"),
        PurposeUpdate(subjects=[{"organ": "mayor", "role": "overall"}]),
    ]
    seen = {with_route}
    for change in changes:
        purposes.update_purpose(db, analyst, "trial", change)
        current = design_hash(design_of(db, purpose))
        assert current not in seen
        seen.add(current)
    purposes.set_item(
        db,
        analyst,
        "trial",
        PurposeItemIn(item="gakurei.aid", necessity_reason="n", relevance_to_difficulty="r"),
    )
    assert design_hash(design_of(db, purpose)) not in seen


def test_api_refusal_is_answered_with_reasons_and_audited(client: TestClient, db: Session) -> None:
    token = api_token(client, "privacy")
    response = client.post(
        "/api/governance/purposes/all_children_scoring/approve",
        json={"comment": "承認"},
        headers=bearer(token),
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "governance.bad_transition"
    refused = db.exec(
        select(AuditEvent)
        .where(AuditEvent.action == "core.request_refused")
        .order_by(col(AuditEvent.seq).desc())
    ).first()
    assert refused is not None
    assert json.loads(refused.details)["codes"] == ["governance.bad_transition"]


def test_api_roles(client: TestClient) -> None:
    support = api_token(client, "support")
    assert client.get("/api/governance/purposes", headers=bearer(support)).status_code == 200
    response = client.post(
        "/api/governance/purposes", json={"key": "x", "title_ja": "x"}, headers=bearer(support)
    )
    assert response.status_code == 403
    analyst = api_token(client, "analyst")
    response = client.post(
        "/api/governance/purposes/child_abuse_prevention/approve",
        json={"comment": "x"},
        headers=bearer(analyst),
    )
    assert response.status_code == 403
    shown = client.get(
        "/api/governance/purposes/child_abuse_prevention", headers=bearer(analyst)
    ).json()
    assert {r["kind"] for r in shown["routes"]} == {"69-2-2", "69-2-3"}
    assert len(shown["design_hash"]) == 64


def test_an_access_limit_given_as_text_is_kept_as_a_note() -> None:
    """A bundle or API call in the earlier format (free text) is read as the unstructured note,
    which refuses approval until the limit is structured."""
    fields = AuthorisationFields.model_validate({"access_limited_to": " 指名職員 "})
    assert fields.access_limited_to.organs == [] and fields.access_limit_note == "指名職員"
    kept = AuthorisationFields.model_validate({"access_limited_to": "指名職員",
                                               "access_limit_note": "以前の文章"})
    assert kept.access_limit_note == "以前の文章"
