"""The PIA API's role refusals and conflicts, the console form, the public summaries."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from governance import assessment, purposes
from pia import service as pia
from tests.web import api_token, bearer, csrf_from, sign_in


def _ids(db: Session) -> tuple[int, int]:
    abuse = assessment.pia_status(db, purposes.get_purpose(db, "child_abuse_prevention"))
    carers = purposes.get_purpose(db, "young_carers_outreach")
    draft = pia.in_progress(db, carers.id or 0)
    assert abuse.pia_id is not None and draft is not None and draft.id is not None
    return abuse.pia_id, draft.id


def test_api_roles_and_conflict(client: TestClient, db: Session) -> None:
    approved, draft = _ids(db)
    support = bearer(api_token(client, "support"))
    assert client.get("/api/pia", headers=support).status_code == 403
    analyst = bearer(api_token(client, "analyst"))
    shown = client.get(f"/api/pia/{draft}", headers=analyst)
    assert shown.status_code == 200
    version = shown.json()["version"]
    refused = client.put(f"/api/pia/{draft}/sections/other", headers=analyst,
                         json={"version": version, "values": {"audit": "x"}})
    assert refused.status_code == 403
    assert client.post("/api/governance/purposes/young_carers_outreach/pia",
                       headers=analyst).status_code == 403
    officer = bearer(api_token(client, "privacy"))
    saved = client.put(f"/api/pia/{draft}/sections/other", headers=officer,
                       json={"version": version, "values": {"audit": "年1回の監査"}})
    assert saved.status_code == 200, saved.text
    other = bearer(api_token(client, "privacy2"))
    stale = client.put(f"/api/pia/{draft}/sections/other", headers=other,
                       json={"version": version, "values": {"audit": "上書き"}})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "pia.conflict"
    status = client.get("/api/governance/purposes/child_abuse_prevention/pia", headers=analyst)
    assert status.json()["usable"] is True and status.json()["pia_id"] == approved
    assert status.json()["changes"] == []
    report = client.get(f"/api/pia/{approved}/report.pdf", headers=analyst)
    assert report.headers["content-type"] == "application/pdf"


def test_authorisation_refused_with_the_pias_reasons(client: TestClient, db: Session) -> None:
    officer = bearer(api_token(client, "privacy"))
    response = client.get("/api/governance/purposes/young_carers_outreach/pia", headers=officer)
    assert response.json()["usable"] is False
    assert [r["code"] for r in response.json()["reasons"]] == ["pia.not_approved"]


def test_public_summaries(client: TestClient, db: Session) -> None:
    approved, draft = _ids(db)
    page = client.get("/pia-summaries")
    assert page.status_code == 200
    assert "児童虐待の未然防止" in page.text and f"/pia-summaries/{approved}.pdf" in page.text
    assert client.get(f"/pia-summaries/{approved}.pdf").status_code == 200
    assert client.get(f"/pia-summaries/{draft}.pdf").status_code == 404


def test_console_form_saves_and_shows_conflicts(client: TestClient, db: Session) -> None:
    _, draft = _ids(db)
    sign_in(client, "privacy")
    page = client.get(f"/pia/{draft}")
    assert page.status_code == 200
    for text in ("しきい値判断", "Ⅲ リスク対策", "設計から自動入力", "<svg", "進捗"):
        assert text in page.text
    version = pia.get(db, draft).version
    data = {"csrf_token": csrf_from(page.text), "version": str(version),
            "audit": "自己点検", "training": "研修"}
    ok = client.post(f"/pia/{draft}/sections/other", data=data, follow_redirects=False)
    assert ok.status_code == 303
    again = client.post(f"/pia/{draft}/sections/other", data={**data, "audit": "私の入力"})
    assert again.status_code == 409
    assert "他の担当者" in again.text and "私の入力" in again.text
    home = client.get("/")
    assert home.status_code == 200


def test_console_names_each_bad_field_by_its_label(client: TestClient, db: Session) -> None:
    _, draft = _ids(db)
    sign_in(client, "privacy")
    page = client.get(f"/pia/{draft}")
    base = {"csrf_token": csrf_from(page.text), "version": str(pia.get(db, draft).version)}
    risk = client.post(f"/pia/{draft}/risks",
                       data={**base, "stage": "use", "title": "", "likelihood": "9"})
    assert risk.status_code == 422
    for label in ("リスク", "発生可能性"):
        assert f"「{label}」の値が正しくありません" in risk.text
    assert 'data-code="pia.invalid_field" data-field="title"' in risk.text
    long_measure = client.post(f"/pia/{draft}/risks",
                               data={**base, "stage": "use", "title": "t", "measures": "x" * 2001})
    assert long_measure.status_code == 422 and 'data-field="text"' in long_measure.text
    threshold = client.post(f"/pia/{draft}/threshold", data={**base, "persons": "many"})
    assert threshold.status_code == 422
    assert "「対象となる本人の数（ファイルに記録される人数）」の値が正しくありません" in (
        threshold.text)
    assert pia.get(db, draft).version == int(base["version"])  # nothing was saved
