"""The governance console: purposes, items, routes, authorisations, approvals, via the forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from core.models import AuditEvent
from governance import demo as governance_demo
from governance import design, gate, purposes, views
from governance.models import Authorisation, Purpose, PurposeStatus, RecordStatus, Route
from registry import demo as registry_demo
from tests.web import csrf_from, sign_in


@pytest.fixture
def city(db: Session) -> Iterator[Session]:
    """The demo city's register and purposes, committed to the test's savepoint (idempotent)."""
    registry_demo.load(db)
    governance_demo.load(db)
    db.commit()
    yield db


def post_form(client: TestClient, page_path: str, action: str,
              data: dict[str, Any], follow: bool = False) -> httpx.Response:
    """Open the page that carries the form, then post the form with its CSRF token."""
    page = client.get(page_path)
    assert page.status_code == 200, page.text
    return client.post(action, data={"csrf_token": csrf_from(page.text), **data},
                       follow_redirects=follow)


def purpose_in(db: Session, key: str) -> Purpose | None:
    db.expire_all()
    return db.exec(select(Purpose).where(Purpose.key == key)).first()


def complete_form(key: str) -> dict[str, Any]:
    """Every field of the purpose form filled in, as the browser posts it."""
    return {
        "key": key,
        "title_ja": "乳幼児健診未受診家庭への訪問支援",
        "title_en": "Home visits after missed infant check-ups",
        "purpose_text": "健診未受診のこどもを把握し、保健師の訪問につなげる。",
        "necessity": "未受診は養育上の困難の兆候となりうるため、早期の訪問が必要である。",
        "acquisition_method": "reuse",
        "acquisition_note": "",
        "handling_extraction": "母子保健課が対象年齢のこどもの生年月日を抽出する",
        "handling_matching_key": "団体内統合宛名番号の鍵付きハッシュ",
        "handling_logic": "未受診かつ対象年齢の者を一覧にする",
        "handling_logic_version": "list-2026.1",
        "handling_result_viewers": "母子保健課の保健師",
        "handling_human_assessment": "保健師が訪問の要否を判断する",
        "job_kinds": ["linkage", "export"],
        "citation_kind": ["statute", "statute"],
        "citation_law_name": ["母子保健法", ""],
        "citation_article": ["第10条", ""],
        "citation_note": ["", ""],
        "subject_unit": ["mayor/general_affairs", "mayor/maternal_health", "mayor/digital",
                         "mayor/child_family"],
        "subject_role": ["overall", "holding", "analysis", "use"],
        "safeguards.organisational": ["年1回の自己点検と監査"],
        "safeguards.human": ["守秘義務の誓約"],
        "safeguards.physical": ["外部記録媒体の使用を禁止する"],
        "safeguards.technical": ["突合は仮名化したキーで行う"],
        "safeguards_other.technical": "結果の一覧は印刷しない",
        "public_notice.web_page": "https://www.city.wakabadai.example/kenshin",
        "public_notice.contact_point": "母子保健課",
        "min_age": "0",
        "max_age": "5",
    }


def submitted_purpose(client: TestClient, db: Session, key: str, drafter: str) -> None:
    """A complete purpose created, given an item and submitted through the forms."""
    sign_in(client, drafter)
    response = post_form(client, "/purposes/new", "/purposes/new", complete_form(key))
    assert response.status_code == 303, response.text
    response = post_form(client, f"/purposes/{key}", f"/purposes/{key}/items", {
        "item": "juki.birth_date", "necessity_reason": "対象年齢の判定",
        "relevance_to_difficulty": "月齢に応じた健診の案内に必要"})
    assert response.status_code == 303, response.text
    response = post_form(client, f"/purposes/{key}", f"/purposes/{key}/submit", {})
    assert response.status_code == 303, response.text
    purpose = purpose_in(db, key)
    assert purpose is not None and purpose.status == PurposeStatus.submitted


# ---------------------------------------------------------------- reading


def test_purpose_list_shows_the_demo_purposes(client: TestClient, city: Session) -> None:
    sign_in(client, "support")  # any staff member may read the purposes
    page = client.get("/purposes")
    assert page.status_code == 200
    for key in ("child_abuse_prevention", "young_carers_outreach", "all_children_scoring"):
        assert f'data-key="{key}"' in page.text
    assert "児童虐待の未然防止・早期発見" in page.text
    row = page.text.split('data-key="all_children_scoring"')[1].split("</tr>")[0]
    assert 'data-usable="no"' in row and "利用できない" in row
    assert 'data-status="draft"' in row
    approved = page.text.split('data-key="child_abuse_prevention"')[1].split("</tr>")[0]
    assert 'data-status="approved"' in approved and "承認済み" in approved
    # The navigation offers the purposes to every member of staff.
    assert 'href="/purposes"' in page.text


def test_purposes_need_a_console_session(client: TestClient, city: Session) -> None:
    response = client.get("/purposes", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_detail_shows_routes_with_their_derived_kinds(client: TestClient, city: Session) -> None:
    sign_in(client, "analyst")
    page = client.get("/purposes/child_abuse_prevention")
    assert page.status_code == 200
    text = page.text
    internal = text.split('id="route-abuse.mayor_internal"')[1].split('class="route"')[0]
    assert 'data-kind="69-2-2"' in text
    assert "目的外利用（法第69条第2項第2号）" in internal
    provision = text.split('id="route-abuse.boe_provision"')[1]
    assert "目的外提供（法第69条第2項第3号）" in provision
    assert "若葉台市教育委員会 → 若葉台市長" in provision
    # Items with their necessity and their holder organ.
    item = text.split('id="item-shukketsu.days_absent"')[1].split("</tr>")[0]
    assert "長期欠席の把握" in item and "若葉台市教育委員会" in item
    # Authorisations with the four conditions, the period, the runs and the delegation.
    auth = text.split('id="authorisation-abuse.boe_provision.2026"')[1].split('class="route"')[0]
    for condition in ("臨時的であること", "必要な限度であること", "相当の理由があること",
                      "権利利益を不当に侵害するおそれがないこと"):
        assert condition in auth
    assert "0 / 2 回" in auth
    assert "教育部長が専決" in auth
    assert "提供を受けた情報は本目的以外に利用せず" in auth
    # Flows, the approval history and the design hash.
    assert text.count('class="flow"') == 7
    assert 'data-action="approve"' in text and "4要件を満たすことを確認した。" in text
    purpose = purposes.get_purpose(city, "child_abuse_prevention")
    assert design.in_force_design_hash(city, purpose) in text
    approved = views.versions(city, purpose)[-1]
    assert approved.design_hash in text.split('id="design"')[1]
    # The demo's design is all in force: no false "changed" banner on a fresh load.
    assert 'id="no-pending"' in text and 'id="pending-design"' not in text
    assert "変更されています" not in text
    # An analyst drafts, so sees the drafting links, but no approval form.
    assert 'action="/purposes/child_abuse_prevention/suspend"' not in text


def test_a_draft_route_is_shown_as_the_pending_next_design(client: TestClient,
                                                           city: Session) -> None:
    from governance import footing
    from governance.models import Basis, Recurrence
    from governance.schemas import RouteCreate
    from tests.factories import who

    footing.create_route(city, who(city, "analyst"), "child_abuse_prevention", RouteCreate(
        key="abuse.extra", items=["gakurei.aid"], to_body="npo_kodomo_shokudo",
        basis=Basis.consent, recurrence=Recurrence.one_off))
    city.commit()
    sign_in(client, "analyst")
    text = client.get("/purposes/child_abuse_prevention").text
    purpose = purposes.get_purpose(city, "child_abuse_prevention")
    section = text.split('id="design"')[1].split("</section>")[0]
    pending = section.split('id="pending-design"')[1]
    assert design.current_design_hash(city, purpose) in pending  # the next design's own hash
    assert design.in_force_design_hash(city, purpose) in section
    assert 'data-path="flows"' in pending and "npo_kodomo_shokudo" in pending
    assert "再評価の承認が必要です" in pending and "情報の流れ（経路）" in pending
    # Nothing in force changed: the purpose is still usable for every kind it permits.
    assert 'data-usable="no"' not in text


def test_incomplete_purpose_shows_the_not_usable_panel(client: TestClient, city: Session) -> None:
    sign_in(client, "analyst")
    page = client.get("/purposes/all_children_scoring")
    assert page.status_code == 200
    panel = page.text.split('id="not-usable"')[1].split("</section>")[0]
    assert "利用できない理由" in panel
    citation = panel.split('data-code="governance.missing_citation"')[1].split("</li>")[0]
    assert "事務の根拠となる法令・条例の条項が1つも引用されていません" in citation
    assert 'href="/purposes/all_children_scoring/edit#field-citations"' in citation
    assert 'data-code="gate.purpose_not_in_force"' in panel
    assert 'href="/purposes/all_children_scoring/routes/new?item=seiho.case_notes"' in panel
    purpose = purposes.get_purpose(city, "all_children_scoring")
    expected = {r.code for r in gate.usability(city, purpose).reasons}
    shown = set(re.findall(r'<li data-code="([^"]+)"', panel))
    assert shown == expected


def test_unknown_purpose_is_not_found(client: TestClient, city: Session) -> None:
    sign_in(client, "analyst")
    assert client.get("/purposes/no_such_purpose").status_code == 404


# ---------------------------------------------------------------- drafting


def test_submitting_an_incomplete_purpose_shows_each_reason_at_its_field(
        client: TestClient, city: Session) -> None:
    sign_in(client, "analyst")
    response = post_form(client, "/purposes/new", "/purposes/new",
                         {"key": "draft_idea", "title_ja": "検討中の利用目的"})
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/purposes/draft_idea")
    page = client.get(response.headers["location"])
    assert "保存しました" in page.text

    response = post_form(client, "/purposes/draft_idea", "/purposes/draft_idea/submit", {})
    assert response.status_code == 422
    text = response.text
    assert 'id="purpose-form"' in text  # the form again, with the reasons next to the fields

    def field_errors(name: str) -> str:
        return "".join(re.findall(rf'<div class="error field-error" data-field="{re.escape(name)}"'
                                  r'[^>]*>(.*?)</div>', text))

    assert "事務の根拠となる法令・条例の条項が1つも引用されていません" in field_errors("citations")
    assert "利用目的の本文が入力されていません" in field_errors("purpose_text")
    assert "取扱い方法の「突合キー」が入力されていません" in field_errors("handling_matching_key")
    assert "安全管理措置（人的）が1つも選択されていません" in field_errors("safeguards.human")
    assert "住民周知の方法が1つも記載されていません" in field_errors("public_notice")
    assert "対象者（誰についての利用目的か）が定められていません" in field_errors("subjects_rule")
    assert "取り扱う主体に「分析主体」がありません" in field_errors("subjects")
    assert "情報項目が1つも選ばれていません" in field_errors("items")
    assert "ジョブの種類" in field_errors("job_kinds")
    # The summary's links lead to the fields of this very form.
    summary = text.split('id="refusal"')[1].split("</div>")[0]
    assert 'href="#field-citations"' in summary and 'href="#field-safeguards-human"' in summary
    assert 'id="field-citations"' in text and 'id="field-safeguards-human"' in text
    # Nothing was written by the refused submission; the refusal itself is on record.
    purpose = purpose_in(city, "draft_idea")
    assert purpose is not None and purpose.status == PurposeStatus.draft
    refused = city.exec(select(AuditEvent).where(AuditEvent.action == "core.request_refused")
                        .order_by(col(AuditEvent.seq).desc())).first()
    assert refused is not None and "governance.missing_citation" in refused.details


def test_bad_form_input_is_shown_at_its_field_and_nothing_is_created(
        client: TestClient, city: Session) -> None:
    sign_in(client, "analyst")
    response = post_form(client, "/purposes/new", "/purposes/new",
                         {**complete_form("Bad Key!"), "min_age": "zero"})
    assert response.status_code == 422
    assert 'data-field="subjects_rule"' in response.text
    assert "整数で入力してください" in response.text
    response = post_form(client, "/purposes/new", "/purposes/new", complete_form("Bad Key!"))
    assert response.status_code == 422
    assert 'data-field="key"' in response.text
    assert "乳幼児健診未受診家庭への訪問支援" in response.text  # the typed values are kept
    response = post_form(client, "/purposes/new", "/purposes/new",
                         complete_form("child_abuse_prevention"))
    assert response.status_code == 409
    assert "キー「child_abuse_prevention」は既に使われています" in response.text
    assert city.exec(select(Purpose)).all().__len__() == 3


def test_edit_form_round_trips_every_field(client: TestClient, city: Session) -> None:
    sign_in(client, "analyst")
    assert post_form(client, "/purposes/new", "/purposes/new",
                     complete_form("home_visits")).status_code == 303
    form = client.get("/purposes/home_visits/edit")
    assert form.status_code == 200
    assert 'name="job_kinds" value="scoring" >' in form.text  # not ticked
    for shown in ("母子保健法", "第10条", 'value="mayor/maternal_health" selected',
                  'value="守秘義務の誓約" checked', "結果の一覧は印刷しない",
                  "https://www.city.wakabadai.example/kenshin", 'name="max_age"',
                  'name="job_kinds" value="linkage" checked',
                  'name="job_kinds" value="export" checked'):
        assert shown in form.text, shown
    response = post_form(client, "/purposes/home_visits/edit", "/purposes/home_visits/edit",
                         {**complete_form("home_visits"), "title_ja": "訪問支援（改）",
                          "max_age": "6"})
    assert response.status_code == 303
    purpose = purpose_in(city, "home_visits")
    assert purpose is not None and purpose.title_ja == "訪問支援（改）"
    assert '"max_age":6' in purpose.subjects_rule
    described = views.describe(city, purpose)
    assert [c.law_name for c in described["citations"]] == ["母子保健法"]
    assert sorted(s.role for s, _, _ in described["subjects"]) == [
        "analysis", "holding", "overall", "use"]
    assert "結果の一覧は印刷しない" in described["safeguards"]["technical"]


def test_an_approved_purpose_is_not_edited_in_place(client: TestClient, city: Session) -> None:
    sign_in(client, "analyst")
    path = "/purposes/child_abuse_prevention/edit"
    response = post_form(client, path, path, {**complete_form("child_abuse_prevention"),
                                              "title_ja": "上書き"})
    assert response.status_code == 409
    assert "承認済みのものは改訂（新しい版）を作成してください" in response.text
    purpose = purpose_in(city, "child_abuse_prevention")
    assert purpose is not None and purpose.title_ja == "児童虐待の未然防止・早期発見"


def test_support_worker_cannot_draft(client: TestClient, city: Session) -> None:
    sign_in(client, "support")
    assert client.get("/purposes/new").status_code == 403
    page = client.get("/purposes/all_children_scoring")
    assert 'action="/purposes/all_children_scoring/submit"' not in page.text


# ---------------------------------------------------------------- approvals


def test_the_submitter_cannot_approve_and_another_officer_can(
        client: TestClient, city: Session) -> None:
    submitted_purpose(client, city, "home_visits", "privacy")
    # The privacy officer who submitted it is refused: separation of duties.
    response = post_form(client, "/purposes/home_visits", "/purposes/home_visits/approve",
                         {"comment": "承認する。"})
    assert response.status_code == 403
    assert "提出者本人は承認できません（職務の分離）" in response.text
    purpose = purpose_in(city, "home_visits")
    assert purpose is not None and purpose.status == PurposeStatus.submitted
    assert purpose.approved_by is None

    sign_in(client, "privacy2")
    # A comment is required.
    response = post_form(client, "/purposes/home_visits", "/purposes/home_visits/approve",
                         {"comment": "  "})
    assert response.status_code == 422
    assert 'data-field="comment"' in response.text
    assert "「コメント」を入力してください" in response.text
    response = post_form(client, "/purposes/home_visits", "/purposes/home_visits/approve",
                         {"comment": "審査の結果、承認する。"})
    assert response.status_code == 303, response.text
    purpose = purpose_in(city, "home_visits")
    assert purpose is not None and purpose.status == PurposeStatus.approved
    page = client.get(response.headers["location"])
    assert "「承認」を記録しました" in page.text
    history = page.text.split('id="history"')[1]
    assert "審査の結果、承認する。" in history and "審査 二郎" in history
    assert 'action="/purposes/home_visits/suspend"' in page.text
    assert "第1版" in page.text.split('id="design"')[1]


def test_only_privacy_officers_reach_the_approval_routes(client: TestClient,
                                                         city: Session) -> None:
    submitted_purpose(client, city, "home_visits", "analyst")
    page = client.get("/purposes/home_visits")
    assert 'action="/purposes/home_visits/approve"' not in page.text
    response = client.post("/purposes/home_visits/approve", data={
        "csrf_token": csrf_from(page.text), "comment": "承認する。"}, follow_redirects=False)
    assert response.status_code == 403
    purpose = purpose_in(city, "home_visits")
    assert purpose is not None and purpose.status == PurposeStatus.submitted


def test_return_suspend_resume_retire_and_revise(client: TestClient, city: Session) -> None:
    submitted_purpose(client, city, "home_visits", "analyst")
    sign_in(client, "privacy")
    path = "/purposes/home_visits"
    assert post_form(client, path, f"{path}/return",
                     {"comment": "必要性の記載を補ってください。"}).status_code == 303
    purpose = purpose_in(city, "home_visits")
    assert purpose is not None and purpose.status == PurposeStatus.returned
    assert post_form(client, path, f"{path}/submit", {}).status_code == 303
    sign_in(client, "privacy2")
    assert post_form(client, path, f"{path}/approve", {"comment": "承認"}).status_code == 303
    assert post_form(client, path, f"{path}/suspend", {"comment": "点検のため"}).status_code == 303
    assert purpose_in(city, "home_visits").status == PurposeStatus.suspended  # type: ignore[union-attr]
    # Suspending twice is refused and shown on the page, nothing written.
    response = post_form(client, path, f"{path}/resume", {"comment": "再開"})
    assert response.status_code == 303
    response = post_form(client, path, f"{path}/resume", {"comment": "再開"})
    assert response.status_code == 409
    assert "できません" in response.text
    assert post_form(client, path, f"{path}/revise", {}).status_code == 303
    purpose = purpose_in(city, "home_visits")
    assert purpose is not None and purpose.status == PurposeStatus.draft and purpose.version == 2


# ---------------------------------------------------------------- routes and authorisations


def test_route_form_derives_the_kind_and_authorisation_needs_the_four_conditions(
        client: TestClient, city: Session) -> None:
    submitted_purpose(client, city, "home_visits", "analyst")
    path = "/purposes/home_visits"
    # A recurring pattern as one-off is refused with the reason at its field.
    response = post_form(client, f"{path}/routes/new", f"{path}/routes/new", {
        "key": "visits.internal", "items": ["juki.birth_date"], "recipient": "organ:mayor",
        "basis": "one_off", "recurrence": "recurring"})
    assert response.status_code == 422
    assert 'data-field="recurrence"' in response.text
    assert "利用目的の変更（法第61条第3項）として登録してください" in response.text
    assert city.exec(select(Route).where(Route.key == "visits.internal")).first() is None

    response = post_form(client, f"{path}/routes/new", f"{path}/routes/new", {
        "key": "visits.internal", "items": ["juki.birth_date"], "recipient": "organ:mayor",
        "basis": "one_off", "recurrence": "one_off"})
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    created = page.text.split('id="route-created"')[1].split("</p>")[0]
    assert "目的外利用（法第69条第2項第2号）" in created

    new_auth = f"{path}/routes/visits.internal/authorisations/new"
    response = post_form(client, new_auth, new_auth, {
        "key": "visits.internal.2026", "is_temporary": "yes", "temporary_reasoning": "",
        "valid_from": "令和8年4月1日", "valid_until": "2026-06-30", "runs_allowed": "1",
        "within_necessary_extent": "yes", "necessity_reasoning": "生年月日のみ",
        "substantial_reason": "yes", "substantial_reasoning": "未受診家庭の早期支援",
        "recipient_task_citation": "", "no_undue_infringement": "no",
        "infringement_reasoning": "", "then": "submit"})
    # Saved; the browser then posts the form on to the submit action, which refuses.
    assert response.status_code == 307
    assert response.headers["location"] == f"{path}/authorisations/visits.internal.2026/submit"
    response = client.post(response.headers["location"],
                           data={"csrf_token": client.cookies["kodomo_csrf"]},
                           follow_redirects=False)
    assert response.status_code == 422
    text = response.text
    assert 'data-field="is_temporary"' in text and 'data-field="no_undue_infringement"' in text
    assert 'data-field="recipient_task_citation"' in text
    assert 'data-field="within_necessary_extent"' not in text
    auth = city.exec(select(Authorisation)
                     .where(Authorisation.key == "visits.internal.2026")).one()
    assert auth.status == RecordStatus.draft  # saved, but its submission refused

    edit = f"{path}/authorisations/visits.internal.2026/edit"
    response = post_form(client, edit, edit, {
        "is_temporary": "yes", "temporary_reasoning": "今年度1回限り",
        "valid_from": "2026-04-01", "valid_until": "2026-06-30", "runs_allowed": "1",
        "within_necessary_extent": "yes", "necessity_reasoning": "生年月日のみ",
        "substantial_reason": "yes", "substantial_reasoning": "未受診家庭の早期支援",
        "recipient_task_citation": "母子保健法第10条", "no_undue_infringement": "yes",
        "infringement_reasoning": "保健師のみが閲覧する", "restricting_laws_checked": "yes",
        "then": "submit"}, follow=True)
    assert response.status_code == 200, response.text
    assert "「提出」を記録しました" in response.text
    city.expire_all()
    assert city.get(Authorisation, auth.id).status == RecordStatus.submitted  # type: ignore[union-attr]

    sign_in(client, "privacy")
    approve = f"{path}/authorisations/visits.internal.2026/approve"
    response = post_form(client, path, approve, {"comment": "4要件を確認した。"})
    assert response.status_code == 422
    assert 'data-field="delegation_note"' in response.text
    # With the note, the service still refuses: the fourth condition waits for an approved,
    # current PIA of the purpose. The refusal is shown and nothing is written.
    response = post_form(client, path, approve, {"comment": "4要件を確認した。",
                                                 "delegation_note": "事務決裁規程により専決"})
    assert response.status_code == 422, response.text
    assert "この利用目的には承認されたPIAがありません。" in response.text
    city.expire_all()
    refused = city.get(Authorisation, auth.id)
    assert refused is not None and refused.status == RecordStatus.submitted
    assert refused.delegation_note == "" and refused.approved_by is None
    # The officer's typed comment and note are kept on the page.
    assert "事務決裁規程により専決" in response.text

    response = post_form(client, path, f"{path}/authorisations/visits.internal.2026/return",
                         {"comment": "PIAの承認後に再提出してください。"})
    assert response.status_code == 303
    city.expire_all()
    returned = city.get(Authorisation, auth.id)
    assert returned is not None and returned.status == RecordStatus.returned


def test_a_route_of_another_purpose_is_not_found(client: TestClient, city: Session) -> None:
    sign_in(client, "analyst")
    page = client.get("/purposes/all_children_scoring/routes/abuse.mayor_internal"
                      "/authorisations/new")
    assert page.status_code == 404
    assert "この利用目的のものではありません" in page.text


def test_refusals_are_recorded_once(client: TestClient, city: Session) -> None:
    submitted_purpose(client, city, "home_visits", "privacy")
    city.expire_all()
    before = max(e.seq for e in city.exec(select(AuditEvent)).all())
    response = post_form(client, "/purposes/home_visits", "/purposes/home_visits/approve",
                         {"comment": "承認する。"})
    assert response.status_code == 403
    city.expire_all()
    events = city.exec(select(AuditEvent).where(col(AuditEvent.seq) > before)).all()
    assert [e.action for e in events] == ["core.request_refused"]
    assert "governance.self_approval" in events[0].details
