"""The gate's decision table (gate_scenarios.yaml) and its recording, on both backends."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from consent import people
from core import audit
from core.clock import utcnow
from core.models import AuditEvent
from governance import footing, gate, purposes
from governance.models import Authorisation
from governance.rules import AccessLimit
from governance.schemas import Decision, RouteCreate
from pia.models import Assessment
from registry import service as registry
from registry.schemas import FileUpdate
from tests.factories import approve_pia, assign_cases, carers_in_force, who
from tests.web import api_token, bearer, console_sign_in

SCENARIOS = yaml.safe_load((Path(__file__).parent / "gate_scenarios.yaml").read_text("utf-8"))
OK = Decision(comment="テストのため")


def _authorisation(db: Session, key: str) -> Authorisation:
    return db.exec(select(Authorisation).where(Authorisation.key == key)).one()


def _latest_pia(db: Session, purpose_key: str) -> Assessment:
    purpose = purposes.get_purpose(db, purpose_key)
    return db.exec(
        select(Assessment)
        .where(Assessment.purpose_id == purpose.id)
        .order_by(col(Assessment.id).desc())
    ).first()  # type: ignore[return-value]


def _exhaust(db: Session, key: str) -> None:
    auth = _authorisation(db, key)
    auth.runs_used = auth.runs_allowed
    db.add(auth)


def _start_later(db: Session, key: str) -> None:
    auth = _authorisation(db, key)
    auth.valid_from = utcnow() + timedelta(days=10)
    db.add(auth)


def _add_route(db: Session, spec: dict[str, Any]) -> None:
    footing.create_route(db, who(db, "analyst"), "child_abuse_prevention", RouteCreate(**spec))


def _add_carers_route(db: Session, spec: dict[str, Any]) -> None:
    footing.create_route(db, who(db, "analyst"), "young_carers_outreach", RouteCreate(**spec))


def _clear_job_kinds(db: Session, key: str) -> None:
    # What a database looks like whose purpose names no kinds (the field is edited in drafts).
    purpose = purposes.get_purpose(db, key)
    purpose.job_kinds = "[]"
    db.add(purpose)


def _approve_route(db: Session, key: str) -> None:
    footing.submit_route(db, who(db, "analyst"), key)
    footing.approve_route(db, who(db, "privacy"), key, OK)


def _update_and_publish(db: Session, key: str) -> None:
    privacy = who(db, "privacy")
    registry.update_file(
        db,
        privacy,
        key,
        FileUpdate(purpose="就学事務及び児童の福祉に関する事務", reason="利用目的の変更を反映"),
    )
    registry.publish(db, privacy, key, "利用目的の変更を公表")


def _entry_lost(db: Session, key: str) -> None:
    """An entry missing while the file is held (deleted before the 施行令 20(4) guard existed:
    `registry.delete_entry` refuses it today)."""
    file = registry.get_file(db, key)
    file.entry_deleted_at = utcnow() - timedelta(days=1)
    db.add(file)


def _limit_access(db: Session, spec: dict[str, Any]) -> None:
    """Set an approved authorisation's Art. 69(4) limit (organs, departments, roles)."""
    auth = _authorisation(db, spec["authorisation"])
    auth.access_limits = AccessLimit(frozenset(spec.get("organs", ())),
                                     frozenset(spec.get("departments", ())),
                                     frozenset(spec.get("roles", ()))).to_json()
    db.add(auth)


def _pia_review_due_yesterday(db: Session, purpose_key: str) -> None:
    pia = _latest_pia(db, purpose_key)
    pia.next_review_due = utcnow() - timedelta(days=1)
    db.add(pia)


def _pia_residual_unaccepted(db: Session, purpose_key: str) -> None:
    pia = _latest_pia(db, purpose_key)
    pia.residual_accepted = False
    db.add(pia)


STEPS: dict[str, Callable[[Session, Any], object]] = {
    "approve_pia": approve_pia,
    "carers_in_force": lambda db, _key: carers_in_force(db),
    "suspend_purpose": lambda db, key: purposes.suspend_purpose(db, who(db, "privacy"), key, OK),
    "retire_purpose": lambda db, key: purposes.retire_purpose(db, who(db, "privacy"), key, OK),
    "revoke_route": lambda db, key: footing.revoke_route(db, who(db, "privacy"), key, OK),
    "add_route": _add_route,
    "add_carers_route": _add_carers_route,
    "clear_job_kinds": _clear_job_kinds,
    "approve_route": _approve_route,
    "submit_route": lambda db, key: footing.submit_route(db, who(db, "analyst"), key),
    "exhaust": _exhaust,
    "start_later": _start_later,
    "record_change": lambda db, key: registry.record_change(
        db, audit.SYSTEM, key, "test", "利用目的の変更"
    ),
    "cease_file": lambda db, key: registry.cease_file(db, who(db, "privacy"), key, "利用終了"),
    "retire_item": lambda db, key: registry.retire_item(db, who(db, "privacy"), key, "廃止"),
    "entry_lost": _entry_lost,
    "update_and_publish": _update_and_publish,
    "pia_review_due_yesterday": _pia_review_due_yesterday,
    "assign_cases": assign_cases,
    "limit_access": _limit_access,
    "pia_residual_unaccepted": _pia_residual_unaccepted,
}


def test_the_table_is_large_enough_and_well_formed() -> None:
    assert len(SCENARIOS) >= 40
    names = [s["name"] for s in SCENARIOS]
    assert len(names) == len(set(names))
    for scenario in SCENARIOS:
        assert scenario["expect"] in ("allowed", "refused")
        for step in scenario.get("before", []):
            assert set(step) <= set(STEPS), step


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(db: Session, scenario: dict[str, Any], monkeypatch: pytest.MonkeyPatch
                  ) -> None:
    monkeypatch.setattr(people, "_case_assignments", [])
    for step in scenario.get("before", []):
        ((name, argument),) = step.items()
        STEPS[name](db, argument)
        db.flush()
    at = utcnow() + timedelta(days=scenario.get("at", 0))
    request = gate.JobRequest(
        kind=gate.JobKind(scenario["kind"]),
        purpose=scenario["purpose"],
        items=scenario["items"],
        principal=who(db, scenario["as"]),
        recipient_organ=scenario.get("to_organ"),
        recipient_body=scenario.get("to_body"),
        at=at,
    )
    decision = gate.explain(db, request)
    codes = {r.code for r in decision.reasons}
    explained = "; ".join(f"{r.code}: {r.message_en}" for r in decision.reasons)
    assert decision.allowed == (scenario["expect"] == "allowed"), explained
    if "reasons" in scenario:
        assert codes == set(scenario["reasons"]), explained
    if "includes" in scenario:
        assert set(scenario["includes"]) <= codes, explained
    for item, kind in scenario.get("routes", {}).items():
        assert {f.item: f.kind.value for f in decision.flows}[item] == kind
    for reason in decision.reasons:
        assert reason.message_ja and reason.message_en


def test_an_allowed_decision_names_everything_it_relies_on(db: Session) -> None:
    decision = gate.explain(
        db,
        gate.JobRequest(
            kind=gate.JobKind.scoring,
            purpose="child_abuse_prevention",
            items=["seiho.kind", "shukketsu.days_absent"],
            principal=who(db, "analyst"),
        ),
    )
    data = decision.to_dict()
    assert data["allowed"] is True
    assert {f["authorisation"] for f in data["flows"]} == {
        "abuse.mayor_internal.2026",
        "abuse.boe_provision.2026",
    }
    assert data["pia"]["id"] and data["pia"]["design_hash"] == data["design_hash"]
    assert len(data["inputs_hash"]) == 64
    assert data["consent_flows"] == []
    assert data["restrictions"] == {"purpose_id": decision.purpose_id}


def test_consent_flows_are_named_for_the_population(db: Session) -> None:
    carers_in_force(db)
    decision = gate.explain(
        db,
        gate.JobRequest(
            kind=gate.JobKind.linkage,
            purpose="young_carers_outreach",
            items=["shukketsu.days_absent", "shukketsu.late_early"],
            principal=who(db, "analyst"),
        ),
    )
    assert decision.allowed
    assert [f.item for f in decision.consent_flows] == [
        "shukketsu.days_absent",
        "shukketsu.late_early",
    ]


def test_check_records_every_decision_and_explain_records_none(db: Session) -> None:
    def decisions() -> int:
        return len(db.exec(select(AuditEvent).where(AuditEvent.action == "gate.decision")).all())

    before = decisions()
    request = gate.JobRequest(
        kind=gate.JobKind.scoring,
        purpose="child_abuse_prevention",
        items=["seiho.kind"],
        principal=who(db, "support"),
    )
    gate.explain(db, request)
    assert decisions() == before
    refused = gate.check(db, request)
    allowed = gate.check(
        db,
        gate.JobRequest(
            kind=gate.JobKind.scoring,
            purpose="child_abuse_prevention",
            items=["seiho.kind"],
            principal=who(db, "analyst"),
        ),
    )
    assert decisions() == before + 2
    events = db.exec(
        select(AuditEvent)
        .where(AuditEvent.action == "gate.decision")
        .order_by(col(AuditEvent.seq).desc())
        .limit(2)
    ).all()
    recorded = {e.decision_id: json.loads(e.details) for e in events}
    assert recorded[refused.id]["allowed"] is False
    assert recorded[refused.id]["codes"] == ["gate.role_not_permitted"]
    assert recorded[allowed.id]["allowed"] is True
    assert recorded[allowed.id]["inputs_hash"] == allowed.inputs_hash


def test_explain_api(client: TestClient) -> None:
    token = api_token(client, "analyst")
    body = {"purpose": "child_abuse_prevention", "kind": "scoring", "items": ["seiho.kind"]}
    response = client.post("/api/gate/explain", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["allowed"] is True
    later = client.post(
        "/api/gate/explain", json={**body, "at": "2099-01-01T00:00:00+09:00"}, headers=bearer(token)
    )
    assert later.json()["allowed"] is False
    malformed = client.post(
        "/api/gate/explain", json={**body, "at": "next tuesday"}, headers=bearer(token)
    )
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "core.invalid_request"
    unknown_kind = client.post(
        "/api/gate/explain", json={**body, "kind": "everything"}, headers=bearer(token)
    )
    assert unknown_kind.status_code == 422
    assert client.post("/api/gate/explain", json=body).status_code == 401


def test_refused_submission_creates_no_job_but_keeps_its_decision(
    client: TestClient, db: Session
) -> None:
    token = api_token(client, "support")
    body = {"purpose": "child_abuse_prevention", "kind": "scoring", "items": ["seiho.kind"]}
    response = client.post("/api/jobs", json=body, headers=bearer(token))
    assert response.status_code == 403
    payload = response.json()
    assert payload["error"]["code"] == "gate.refused"
    assert [r["code"] for r in payload["error"]["reasons"]] == ["gate.role_not_permitted"]
    assert client.get("/api/jobs", headers=bearer(token)).json() == []
    recorded = db.exec(
        select(AuditEvent).where(AuditEvent.decision_id == payload["decision"]["id"])
    ).one()
    assert recorded.action == "gate.decision"


def test_gate_console_page(client: TestClient) -> None:
    console_sign_in(client, "analyst")
    page = client.get("/gate")
    assert page.status_code == 200
    text = page.text
    assert 'data-kind="scoring" data-allowed="yes"' in text
    assert "pia.not_approved" in text  # the draft PIA of the young-carer purpose
