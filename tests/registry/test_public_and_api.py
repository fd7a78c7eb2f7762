"""The public register (page, JSON, PDF) and the staff API and console, on both backends."""

from __future__ import annotations

import io
import re
from typing import Any

from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlmodel import Session

from core import audit
from registry import rules, service
from registry.schemas import FileUpdate, ItemUpdate
from tests.factories import complete_file
from tests.web import api_token, bearer, sign_in

WITHHELD_TEXTS = ["不正受給の調査状況", "情報提供した医師の氏名", "秘匿の収集方法", "秘匿の提供先",
                  "全体秘匿ファイル"]


def _with_withholding(session: Session) -> None:
    """Withheld things on published files: an item, 74(1)(v) and (vii), and a whole entry."""
    file = complete_file(session, "withheld_fields", 2000,
                         collection_method="秘匿の収集方法", regular_recipients="秘匿の提供先",
                         withhold_collection_method=True, withhold_recipients=True,
                         withheld_reason="法第75条第3項")
    service.publish(session, audit.SYSTEM, file, "公表")
    whole = complete_file(session, "withheld_whole", 2000, name="全体秘匿ファイル",
                          withhold_entire=True, withheld_reason="法第75条第3項")
    service.publish(session, audit.SYSTEM, whole, "公表")
    # an item withheld on a published demo file is already there (seiho.fraud_check); the
    # demo file under 1,000 persons (医師の氏名) is unpublished. Publish it voluntarily too.
    service.publish(session, audit.SYSTEM, "iryo_kininaru", "任意の公表")
    session.commit()


def _pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "".join(page.extract_text() or "" for page in reader.pages)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_withheld_items_never_appear_publicly(register: Session, client: TestClient) -> None:
    _with_withholding(register)
    outputs: dict[str, str] = {}
    for path in ("/register", "/register/mayor", "/register.json", "/register/mayor.json"):
        response = client.get(path)
        assert response.status_code == 200, path
        outputs[path] = response.text
    for path in ("/register.pdf", "/register/mayor.pdf"):
        response = client.get(path)
        assert response.status_code == 200 and response.headers["content-type"] == (
            "application/pdf")
        outputs[path] = _squash(_pdf_text(response.content))
    for path, text in outputs.items():
        for secret in WITHHELD_TEXTS:
            assert secret not in text, (path, secret)
        assert "法第75条第3項" not in text, path  # not even the fact of withholding
    # the published, non-withheld parts are there
    assert "生活保護ケース記録ファイル" in outputs["/register/mayor"]
    assert "被保護者の氏名" in outputs["/register.json"]
    assert "医療機関からの気になる情報ファイル" in outputs["/register.pdf"]


def test_every_statutory_item_of_every_published_file_is_in_register_pdf(
        register: Session, client: TestClient) -> None:
    _with_withholding(register)
    text = _squash(_pdf_text(client.get("/register.pdf").content))
    public = service.public_register(register)
    entries = [e for organ in public.organs for e in organ.entries]
    assert len(entries) == 9  # 7 required demo files, the voluntary one, withheld_fields
    for label in (s.label for s in rules.STATUTORY_ITEMS):
        assert _squash(label) in text, label
    for entry in entries:
        values: list[Any] = [entry.name, entry.organ_name, entry.department_name, entry.purpose,
                             entry.record_scope, entry.request_office_name,
                             entry.request_office_address, entry.file_type_label,
                             f"{entry.persons_count:,}"]
        values += [item.name_ja for item in entry.items]
        if entry.collection_method is not None:
            values.append(entry.collection_method)
        if entry.regular_recipients is not None:
            values.append(entry.regular_recipients)
        if entry.special_procedure_note:
            values.append(entry.special_procedure_note)
        for value in values:
            assert _squash(str(value)) in text, (entry.key, value)
    # each organ's 簿 and each file begins a page: organ title pages plus one page a file at least
    reader = PdfReader(io.BytesIO(client.get("/register.pdf").content))
    firsts = [_squash(page.extract_text() or "") for page in reader.pages]
    for organ in public.organs:
        assert any(p.startswith(_squash(organ.organ_name) + "個人情報ファイル簿") for p in firsts)
        for entry in organ.entries:
            assert any(p.startswith(_squash(entry.name)) for p in firsts), entry.key


def test_special_care_is_declared_publicly(register: Session, client: TestClient) -> None:
    body = client.get("/register/mayor.json").json()
    entries = {e["key"]: e for e in body["organs"][0]["entries"]}
    assert entries["kenshin"]["contains_special_care"] is True
    assert entries["jidoteate"]["contains_special_care"] is False
    assert entries["seiho"]["contains_ordinance_special_care"] is True


def test_public_pages_need_no_sign_in_and_unknown_organs_are_404(
        register: Session, client: TestClient) -> None:
    assert client.get("/register/nowhere").status_code == 404
    assert client.get("/register/nowhere.pdf").status_code == 404
    board = client.get("/register/board_of_education.json").json()
    assert [e["key"] for e in board["organs"][0]["entries"]] == ["gakureibo", "shukketsu"]


def test_a_ceased_file_leaves_the_public_register(register: Session, client: TestClient) -> None:
    service.cease_file(register, audit.SYSTEM, "shukketsu", "システム移行")
    register.commit()
    assert "児童生徒出欠管理ファイル" not in client.get("/register").text


def test_api_refusals_by_role(register: Session, client: TestClient) -> None:
    analyst = bearer(api_token(client, "analyst"))
    holder = bearer(api_token(client, "holder"))
    edu_holder = bearer(api_token(client, "edu_holder"))
    auditor = bearer(api_token(client, "auditor"))
    officer = bearer(api_token(client, "privacy"))
    assert client.get("/api/registry/files").status_code == 401
    assert client.get("/api/registry/files", headers=analyst).status_code == 403
    assert client.get("/api/registry/files", headers=auditor).status_code == 200
    change = {"persons_count": 1300, "reason": "更新"}
    assert client.patch("/api/registry/files/seiho", json=change,
                        headers=analyst).status_code == 403
    assert client.patch("/api/registry/files/seiho", json=change,
                        headers=auditor).status_code == 403
    refused = client.patch("/api/registry/files/seiho", json=change, headers=edu_holder)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "registry.not_your_organ"
    assert client.patch("/api/registry/files/seiho", json=change,
                        headers=holder).status_code == 200
    assert client.post("/api/registry/files/seiho/publish", json={"reason": "公表"},
                       headers=holder).status_code == 403
    status = client.get("/api/registry/files/seiho/status", headers=holder).json()
    assert status["usable"] is False
    assert [r["code"] for r in status["reasons"]] == ["registry.entry_stale"]
    published = client.post("/api/registry/files/seiho/publish", json={"reason": "公表"},
                            headers=officer)
    assert published.status_code == 200, published.text
    assert client.get("/api/registry/files/seiho/status", headers=holder).json()["usable"]
    history = client.get("/api/registry/files/seiho/history", headers=auditor).json()
    assert [v["action"] for v in history[-2:]] == ["file_edited", "entry_published"]


def test_api_create_item_refusals_and_status(register: Session, client: TestClient) -> None:
    officer = bearer(api_token(client, "privacy"))
    created = client.post("/api/registry/files", headers=officer, json={
        "key": "api.file", "name": "APIファイル", "organ": "mayor", "persons_count": 10})
    assert created.status_code == 201, created.text
    assert "purpose" in created.json()["missing_statutory_items"]
    my_number = client.post("/api/registry/files/api.file/items", headers=officer,
                            json={"key": "api.mn", "name_ja": "個人番号"})
    assert my_number.status_code == 422
    assert my_number.json()["error"]["code"] == "registry.my_number_refused"
    item = client.post("/api/registry/files/api.file/items", headers=officer,
                       json={"key": "api.name", "name_ja": "氏名", "special_care": ["race"]})
    assert item.status_code == 201 and item.json()["special_care"] == ["race"]
    missing = client.post("/api/registry/files/api.file/publish", headers=officer,
                          json={"reason": "公表"})
    assert missing.status_code == 422
    assert {r["field"] for r in missing.json()["error"]["reasons"]} >= {"purpose", "file_type"}
    assert client.get("/api/registry/items/api.name/status", headers=officer).json()["usable"]
    assert client.get("/api/registry/files/none/status", headers=officer).status_code == 404
    assert client.post("/api/registry/files", headers=officer, json={
        "key": "api.file", "name": "x", "organ": "mayor"}).status_code == 409


def test_console_flow_with_inline_japanese_validation(register: Session,
                                                       client: TestClient) -> None:
    csrf = sign_in(client, "privacy", next="/")
    assert "個人情報ファイル簿" in client.get("/").text  # the nav item
    listing = client.get("/registry")
    assert listing.status_code == 200 and "生活保護ケース記録ファイル" in listing.text
    created = client.post("/registry/new", data={"csrf_token": csrf, "key": "console.f",
                                                 "name": "画面ファイル", "organ": "mayor"},
                          follow_redirects=False)
    assert created.status_code == 303
    detail = client.get("/registry/files/console.f")
    assert "法定記載事項「個人情報ファイルの利用目的」" in detail.text
    refused = client.post("/registry/files/console.f/publish",
                          data={"csrf_token": csrf, "reason": "公表"})
    assert refused.status_code == 422
    assert "法定記載事項「記録情報の経常的提供先」（法第74条第1項第7号）" in refused.text
    bad = client.post("/registry/files/console.f/edit", data={
        "csrf_token": csrf, "name": "画面ファイル", "organ": "mayor", "persons_count": "多数",
        "reason": "修正"})
    assert bad.status_code == 422 and "「本人の数」の値が正しくありません" in bad.text
    outside_era = client.post("/registry/files/console.f/edit", data={
        "csrf_token": csrf, "name": "画面ファイル", "organ": "mayor",
        "held_since": "平成31年5月1日", "reason": "修正"})
    assert outside_era.status_code == 422
    assert "平成の終わり（平成31年4月30日）より後の日です" in outside_era.text
    assert 'value="平成31年5月1日"' in outside_era.text  # the typed text is kept
    my_number = client.post("/registry/files/console.f/items/new", data={
        "csrf_token": csrf, "key": "console.mn", "name_ja": "マイナンバー"})
    assert my_number.status_code == 422 and "個人番号" in my_number.text
    edited = client.post("/registry/files/console.f/edit", data={
        "csrf_token": csrf, "name": "画面ファイル", "organ": "mayor",
        "department": "child_family", "purpose": "目的", "record_scope": "範囲",
        "collection_method": "方法", "regular_recipients": "なし",
        "request_office_name": "総務課", "request_office_address": "若葉台市",
        "special_procedure": "no", "file_type": "manual", "persons_count": "1200",
        "held_since": "令和6年4月1日", "reason": "記載事項の入力"}, follow_redirects=False)
    assert edited.status_code == 303
    item = client.post("/registry/files/console.f/items/new", data={
        "csrf_token": csrf, "key": "console.name", "name_ja": "氏名",
        "special_care": ["disability"], "reason": "追加"}, follow_redirects=False)
    assert item.status_code == 303
    published = client.post("/registry/files/console.f/publish",
                            data={"csrf_token": csrf, "reason": "公表"}, follow_redirects=False)
    assert published.status_code == 303
    assert "画面ファイル" in client.get("/register/mayor").text
    file = service.get_file(register, "console.f")
    assert file.held_since is not None and file.held_since.year == 2024
    assert client.post("/registry/files/console.f/publish",
                       data={"reason": "公表"}).status_code == 403  # no CSRF token


def test_console_refuses_other_roles(register: Session, client: TestClient) -> None:
    sign_in(client, "analyst", next="/")
    assert client.get("/registry").status_code == 403


def test_console_data_holder_cannot_publish(register: Session, client: TestClient) -> None:
    csrf = sign_in(client, "holder", next="/")
    assert client.get("/registry/files/jidoteate").status_code == 200
    assert client.post("/registry/files/jidoteate/publish",
                       data={"csrf_token": csrf, "reason": "公表"}).status_code == 403


def test_retired_and_withheld_items_in_the_published_version(register: Session,
                                                               client: TestClient) -> None:
    service.retire_item(register, audit.SYSTEM, "teate.bank", "口座情報は別ファイルへ")
    service.update_item(register, audit.SYSTEM, "teate.amount", ItemUpdate(
        withheld=True, withheld_reason="法第75条第3項", reason="記載省略"))
    service.update_file(register, audit.SYSTEM, "jidoteate", FileUpdate(reason="確認"))
    service.publish(register, audit.SYSTEM, "jidoteate", "再公表")
    register.commit()
    page = client.get("/register/mayor").text
    assert "振込先口座" not in page and "支給額" not in page and "受給者の氏名" in page


def test_home_shows_overdue_entries_and_detail_shows_pending_change(
        register: Session, client: TestClient) -> None:
    from datetime import UTC, datetime

    complete_file(register, "overdue", 5000, held_since=datetime(2025, 4, 1, tzinfo=UTC))
    service.record_change(register, audit.SYSTEM, "seiho", "purpose 3 v2", "利用目的の変更")
    register.commit()
    csrf = sign_in(client, "privacy", next="/")
    home = client.get("/").text
    assert "個人情報ファイル簿の期限" in home
    assert "/registry/files/overdue" in home and "施行令第20条第1項" in home
    assert "/registry/files/seiho" in home  # stale after the recorded change
    detail = client.get("/registry/files/seiho").text
    assert "purpose 3 v2: 利用目的の変更" in detail
    refused = client.post("/registry/files/seiho/publish",
                          data={"csrf_token": csrf, "reason": "公表"})
    assert refused.status_code == 422 and "編集で反映してから公表してください" in refused.text
    # juki is held and records far more than 1,000 people: its entry cannot be deleted
    refused = client.post("/registry/files/juki/delete-entry",
                          data={"csrf_token": csrf, "reason": "テスト"}, follow_redirects=False)
    assert refused.status_code == 422 and "施行令第20条第4項" in refused.text
    assert "住民基本台帳ファイル" in client.get("/register").text
    assert service.status(register, "juki").usable


def test_the_public_face_serves_the_register_and_no_staff_route(
        register: Session, public_client: TestClient) -> None:
    assert public_client.get("/register").status_code == 200
    assert public_client.get("/register.json").status_code == 200
    assert public_client.get("/registry").status_code == 404
    assert public_client.get("/api/registry/files").status_code == 404


def test_the_edit_form_keeps_the_tokyo_date(register: Session, client: TestClient) -> None:
    sign_in(client, "privacy", next="/")
    form = client.get("/registry/files/seiho/edit").text
    assert 'name="held_since" placeholder="2024-04-01" value="2023-04-01"' in form
