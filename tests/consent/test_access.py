"""Record-level access (LAW.md §10.5, §5): who reads a person's full record, what a search
answers, and that every read of identified data is audited with ids only."""

from __future__ import annotations

import json
from datetime import date

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from consent import people, rules
from consent.models import Person
from core import audit
from core.models import AuditEvent, Role
from tests.factories import World
from tests.web import api_token, bearer, console_sign_in


def _events(db: Session, action: str) -> list[AuditEvent]:
    return list(db.exec(select(AuditEvent).where(AuditEvent.action == action)
                        .order_by(col(AuditEvent.seq))).all())


def test_the_rule_reads_officers_and_assigned_support_workers() -> None:
    assert rules.may_read_person([Role.privacy_officer], "p1")
    assert not rules.may_read_person([Role.support_worker], "p1")
    assert rules.may_read_person([Role.support_worker], "p1", assigned={"p1"})
    assert not rules.may_read_person([Role.support_worker], "p1", assigned={"p2"})
    for role in (Role.data_holder, Role.analyst, Role.auditor, Role.admin):
        assert not rules.may_read_person([role], "p1", assigned={"p1"})


def test_a_support_worker_reads_no_full_record(client: TestClient, world: World) -> None:
    child, parents = world.family("2013-05-10")
    record = world.give(child, parents[0])
    world.session.commit()
    support = bearer(api_token(client, "support"))
    receipt_id = client.get(f"/api/consent/records/{record.id}",
                            headers=bearer(api_token(client, "privacy"))).json()["receipt_ids"][0]
    for path in (f"/api/consent/persons/{child}", f"/api/consent/persons/{child}/consents",
                 f"/api/consent/persons/{child}/restrictions",
                 f"/api/consent/records/{record.id}", f"/api/consent/receipts/{receipt_id}",
                 f"/api/consent/receipts/{receipt_id}/pdf"):
        response = client.get(path, headers=support)
        assert response.status_code == 403, path
        assert response.json()["error"]["reasons"][0]["code"] == "consent.person_access_denied"
    console_sign_in(client, "support")
    assert client.get(f"/consent/persons/{child}").status_code == 403
    assert client.get(f"/consent/receipts/{receipt_id}.pdf").status_code == 403


def test_the_ledger_can_extend_the_rule(client: TestClient, world: World, db: Session) -> None:
    child, _parents = world.family("2013-05-10")
    world.session.commit()
    support = bearer(api_token(client, "support"))

    def assigned(session: Session, principal: object) -> set[str]:
        return {child}

    people.register_case_assignments(assigned)
    try:
        assert client.get(f"/api/consent/persons/{child}", headers=support).status_code == 200
    finally:
        people._case_assignments.remove(assigned)
    assert client.get(f"/api/consent/persons/{child}", headers=support).status_code == 403


def test_officers_read_and_every_read_is_audited_with_ids_only(
        client: TestClient, world: World, db: Session) -> None:
    child, parents = world.family("2013-05-10")
    record = world.give(child, parents[0])
    world.session.commit()
    privacy = bearer(api_token(client, "privacy"))
    person = client.get(f"/api/consent/persons/{child}", headers=privacy)
    assert person.status_code == 200 and {g["person_id"] for g in person.json()["guardians"]} \
        == set(parents)
    history = client.get(f"/api/consent/persons/{child}/consents", headers=privacy)
    assert history.status_code == 200 and [r["id"] for r in history.json()] == [record.id]
    restrictions = client.get(f"/api/consent/persons/{child}/restrictions", headers=privacy)
    assert restrictions.status_code == 200
    shown = client.get(f"/api/consent/records/{record.id}", headers=privacy)
    assert shown.status_code == 200
    receipt_id = shown.json()["receipt_ids"][0]
    assert client.get(f"/api/consent/receipts/{receipt_id}", headers=privacy).status_code == 200
    pdf = client.get(f"/api/consent/receipts/{receipt_id}/pdf", headers=privacy)
    assert pdf.status_code == 200
    name = world.session.get_one(Person, child).name
    atena = world.session.get_one(Person, child).atena_no
    for action, target in (("consent.person_viewed", child),
                           ("consent.history_viewed", child),
                           ("consent.restrictions_viewed", child),
                           ("consent.record_viewed", record.id),
                           ("consent.receipt_viewed", receipt_id)):
        events = _events(db, action)
        assert events, action
        last = events[-1]
        assert last.target_id == target and last.actor_type == "staff", action
        text = json.dumps(last.details, ensure_ascii=False)
        assert name not in text and atena not in text and "1980" not in text, action
    assert len(_events(db, "consent.receipt_viewed")) == 2  # the JSON and the PDF


def test_search_needs_atena_or_name_with_birth_date(client: TestClient, world: World) -> None:
    child, _parents = world.family("2013-05-10")
    atena = world.session.get_one(Person, child).atena_no
    world.session.commit()
    support = bearer(api_token(client, "support"))

    def search(body: dict[str, str]) -> list[dict[str, object]]:
        response = client.post("/api/consent/persons/search", json=body, headers=support)
        assert response.status_code in (200, 422), response.text
        if response.status_code == 422:
            assert response.json()["error"]["reasons"][0]["code"] == \
                "consent.search_needs_query"
            return []
        return list(response.json())

    name = "試験 " + atena[-4:]
    assert [p["id"] for p in search({"name": name, "birth_date": "2013-05-10"})] == [child]
    assert [p["id"] for p in search({"atena_no": atena})] == [child]
    assert search({"name": name}) == []  # a name alone finds no one (422)
    assert client.post("/api/consent/persons/search", json={"name": name},
                       headers=support).status_code == 422
    assert client.post("/api/consent/persons/search", json={"birth_date": "2013-05-10"},
                       headers=support).status_code == 422
    assert search({"name": name, "birth_date": "2013-05-11"}) == []
    hit = search({"atena_no": atena})[0]
    assert set(hit) == {"id", "name", "birth_date", "age"}  # no guardians, proofs, atena


def test_search_answers_at_most_a_few_candidates(world: World, db: Session) -> None:
    rows = [{"atena_no": f"CAP{n:04d}", "birth_date": "2014-01-01"} for n in range(8)]
    world.people(*rows)
    # factories name everyone 試験 + the atena's last 4 characters and kana シケン タロウ
    found = people.find_persons(db, audit.SYSTEM, name="シケン タロウ",
                                birth_date=date(2014, 1, 1))
    assert len(found) == rules.SEARCH_LIMIT == 5
    found = people.find_persons(db, audit.SYSTEM, name="シケン タロウ",
                                birth_date=date(2014, 1, 1), limit=100)
    assert len(found) == rules.SEARCH_LIMIT
