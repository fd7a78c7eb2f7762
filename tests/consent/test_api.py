"""The staff API and pages: role refusals, audited search, paper consent, withdrawal, JWKS."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from consent import receipts
from consent.models import Person
from core.models import AuditEvent
from tests.factories import World
from tests.web import api_token, bearer, console_sign_in, csrf_from


def test_roles_are_refused(client: TestClient, world: World) -> None:
    world.session.commit()
    child, _parents = world.family("2013-05-10")
    world.session.commit()
    for login in ("analyst", "holder", "auditor", "admin"):
        headers = bearer(api_token(client, login))
        assert client.post("/api/consent/persons/search", json={"atena_no": "X"},
                           headers=headers).status_code == 403
    support = bearer(api_token(client, "support"))
    assert client.get(f"/api/consent/persons/{child}/unsuitable",
                      headers=support).status_code == 403
    assert client.post(f"/api/consent/persons/{child}/unsuitable", json={"reason": "x"},
                       headers=support).status_code == 403
    assert client.post("/api/consent/restrictions", headers=support, json={
        "person_id": child, "purpose_id": world.purpose_id, "reason": "x"}).status_code == 403
    assert client.post("/api/consent/persons/search",
                       json={"atena_no": "X"}).status_code == 401


def test_search_record_withdraw_over_the_api(client: TestClient, world: World,
                                             db: Session) -> None:
    child, parents = world.family("2013-05-10")
    child_atena = world.session.get_one(Person, child).atena_no
    world.session.commit()
    support = bearer(api_token(client, "support"))
    found = client.post("/api/consent/persons/search", json={"atena_no": child_atena},
                        headers=support)
    assert found.status_code == 200 and [p["id"] for p in found.json()] == [child]
    assert set(found.json()[0]) == {"id", "name", "birth_date", "age"}
    searched = db.exec(select(AuditEvent).where(AuditEvent.action == "consent.person_searched")
                       .order_by(AuditEvent.seq.desc())).first()  # type: ignore[attr-defined]
    assert searched is not None and child in searched.details
    assert child_atena not in searched.details
    by_name = client.post("/api/consent/persons/search",
                          json={"name": "しけん　たろう", "birth_date": "2013-05-10"},
                          headers=support)
    assert child in [p["id"] for p in by_name.json()]
    privacy = bearer(api_token(client, "privacy"))
    body = {"principal_id": child, "relation": "parent", "notice_id": world.notice.id,
            "item_ids": world.items, "recipients": [world.recipient],
            "child_view": "assent", "channel": "paper", "evidence_ref": "form-1"}
    created = []
    for parent in parents:
        response = client.post("/api/consent/records", json={**body, "given_by_id": parent},
                               headers=support)
        assert response.status_code == 201, response.text
        created.append(response.json())
    refused = client.post("/api/consent/records", json={**body, "given_by_id": child,
                                                        "relation": "self"}, headers=support)
    assert refused.status_code == 422
    assert refused.json()["error"]["reasons"][0]["code"] == "consent.child_alone_below_guardian_age"
    history = client.get(f"/api/consent/persons/{child}/consents", headers=privacy).json()
    assert {h["state"] for h in history} == {"given"}
    withdrawn = client.post(f"/api/consent/records/{created[0]['id']}/withdraw",
                            json={"channel": "counter"}, headers=support)
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    receipt_id = withdrawn.json()["receipt_ids"][-1]
    receipt = client.get(f"/api/consent/receipts/{receipt_id}", headers=privacy).json()
    assert receipt["receipt"]["event"]["event_type"] == "withdrawn"
    assert receipts.verify(receipt["jws"])["consentReceiptID"] == receipt_id
    pdf = client.get(f"/api/consent/receipts/{receipt_id}/pdf", headers=privacy)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_the_mark_is_visible_to_privacy_officers_only(client: TestClient, world: World) -> None:
    child, _parents = world.family("2013-05-10")
    world.session.commit()
    privacy = bearer(api_token(client, "privacy"))
    marked = client.post(f"/api/consent/persons/{child}/unsuitable",
                         json={"reason": "保護者による加害の疑い"}, headers=privacy)
    assert marked.status_code == 201
    assert client.get(f"/api/consent/persons/{child}/unsuitable",
                      headers=privacy).json()[0]["reason"] == "保護者による加害の疑い"
    support = bearer(api_token(client, "support"))
    person = client.get(f"/api/consent/persons/{child}", headers=support)
    assert person.status_code == 403 and "加害" not in person.text
    console_sign_in(client, "support")
    page = client.get(f"/consent/persons/{child}")
    assert page.status_code == 403 and "加害" not in page.text
    client.cookies.clear()
    console_sign_in(client, "privacy")
    page = client.get(f"/consent/persons/{child}")
    assert "加害" in page.text


def test_console_search_and_paper_consent(client: TestClient, world: World) -> None:
    child, parents = world.family("2016-05-10")
    world.session.commit()
    assert console_sign_in(client, "support").status_code == 303
    page = client.get("/consent")
    assert page.status_code == 200
    atena = world.session.get_one(Person, child).atena_no
    page = client.post("/consent", data={"csrf_token": csrf_from(page.text), "atena_no": atena})
    assert page.status_code == 200 and f'data-id="{child}"' in page.text
    assert f'href="/consent/persons/{child}"' not in page.text  # no full record to open
    assert client.get("/consent", params={"atena_no": atena}).text.count("data-id=") == 0
    assert client.get(f"/consent/persons/{child}").status_code == 403
    client.cookies.clear()
    assert console_sign_in(client, "privacy").status_code == 303
    page = client.post("/consent", data={"csrf_token": csrf_from(client.get("/consent").text),
                                         "name": "試験 " + atena[-4:],
                                         "birth_date": "H28.5.10"})
    assert f'href="/consent/persons/{child}"' in page.text
    page = client.get(f"/consent/persons/{child}")
    assert page.status_code == 200
    response = client.post(f"/consent/persons/{child}/consents", data={
        "csrf_token": csrf_from(page.text), "notice_id": str(world.notice.id),
        "item_ids": [str(i) for i in world.items], "recipients": world.recipient,
        "relation": "parent", "given_by_id": parents[0], "channel": "paper",
    }, follow_redirects=False)
    assert response.status_code == 303, response.text
    page = client.get(f"/consent/persons/{child}")
    assert 'data-state="given"' in page.text


def test_jwks_is_on_the_public_face(client: TestClient) -> None:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json()["keys"][0]["alg"] == "ES256"
