"""Issue 12, item 4: 4xx, never 500, for bad input; of two concurrent approvals of one record
exactly one succeeds and the other gets 409, on both backends; timestamps carry their offset."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from governance import purposes
from main import DEMO_LOADERS, create_app
from tests.factories import draft_purpose, who
from tests.web import api_token, bearer

HUGE = "99999999999999999999"
PAST_INT32 = str(2**31)


@pytest.mark.parametrize("path", [f"/api/pia/{HUGE}", f"/api/jobs/{HUGE}",
                                  f"/api/pia/{PAST_INT32}", f"/api/jobs/{PAST_INT32}"])
def test_ids_past_the_columns_range_are_4xx(client: TestClient, path: str) -> None:
    token = bearer(api_token(client, "privacy"))
    reply = client.get(path, headers=token)
    assert 400 <= reply.status_code < 500, reply.text
    assert reply.json()["error"]["reasons"][0]["message_ja"]


def test_risk_of_a_huge_pia_is_4xx(client: TestClient) -> None:
    token = bearer(api_token(client, "privacy"))
    reply = client.put(f"/api/pia/1/risks/{HUGE}", headers=token, json={})
    assert 400 <= reply.status_code < 500, reply.text
    reply = client.delete(f"/api/pia/{HUGE}/risks/{HUGE}", headers=token)
    assert 400 <= reply.status_code < 500, reply.text


def test_unknown_purpose_in_a_restriction_or_mark_is_refused(client: TestClient,
                                                             db: Session) -> None:
    from sqlmodel import select

    from consent.models import Person

    person = db.exec(select(Person)).first()
    assert person is not None
    token = bearer(api_token(client, "privacy"))
    reply = client.post("/api/consent/restrictions", headers=token, json={
        "person_id": person.id, "purpose_id": 987654, "reason": "x"})
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "core.unknown_reference"
    reply = client.post(f"/api/consent/persons/{person.id}/unsuitable", headers=token,
                        json={"purpose_id": 987654, "reason": "x"})
    assert reply.status_code == 422, reply.text
    reply = client.post("/api/consent/restrictions", headers=token, json={
        "person_id": person.id, "purpose_id": int(HUGE), "reason": "x"})
    assert 400 <= reply.status_code < 500, reply.text


_NAIVE = re.compile(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?"')


def test_every_timestamp_in_a_response_carries_its_offset(client: TestClient) -> None:
    token = bearer(api_token(client, "privacy"))
    auditor = bearer(api_token(client, "auditor"))
    for path, headers in [("/api/governance/purposes", token), ("/api/pia", token),
                          ("/api/registry/files", token), ("/api/audit/events", auditor),
                          ("/api/jobs", token), ("/api/me", token)]:
        reply = client.get(path, headers=headers)
        assert reply.status_code == 200, (path, reply.text)
        assert not _NAIVE.search(reply.text), (path, _NAIVE.search(reply.text))


def test_two_officers_approving_at_once_one_wins_one_409(fresh_engine: Engine) -> None:
    with Session(fresh_engine) as session:
        for loader in DEMO_LOADERS:
            loader(session)
        session.commit()
        draft_purpose(session)
        purposes.submit_purpose(session, who(session, "analyst"), "trial")
        session.commit()
    app = create_app(session_factory=lambda: Session(fresh_engine, expire_on_commit=False))
    replies: list[httpx.Response] = []
    with TestClient(app) as first, TestClient(app) as second:
        tokens = [api_token(first, "privacy"), api_token(second, "privacy2")]
        barrier = threading.Barrier(2)

        def approve(client: TestClient, token: str) -> None:
            barrier.wait()
            replies.append(client.post("/api/governance/purposes/trial/approve",
                                       headers=bearer(token), json={"comment": "ok"}))

        threads = [threading.Thread(target=approve, args=(c, t))
                   for c, t in zip((first, second), tokens, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 409], [r.text for r in replies]
