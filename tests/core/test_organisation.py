"""Issue 15, item 4: the organisation's lifecycle. Organs, departments, outside bodies and
accounts are updated, deactivated and reactivated (service, API, console page, CLI), audited;
a deactivated account's tokens stop working at once; a unit that records in force still name is
not deactivated, and each blocking record is named; deactivated units cannot be chosen anew."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from core import audit, service
from core import demo as core_demo
from core.demo import demo_password
from core.models import (
    AuditEvent,
    Department,
    Organ,
    OrganKind,
    OutsideBody,
    OutsideBodyKind,
    Role,
    StaffAccount,
)
from core.reasons import Conflict, DomainError, InvalidInput
from governance import footing
from governance.models import Basis, Recurrence
from governance.schemas import RouteCreate
from main import cli
from registry import service as registry
from registry.schemas import FileCreate
from tests.factories import codes, draft_purpose, who
from tests.web import api_sign_in, api_token, app_client, bearer, csrf_from, sign_in

runner = CliRunner()


def actions(db: Session) -> list[str]:
    return list(db.exec(select(AuditEvent.action).order_by(col(AuditEvent.seq))).all())


def refs(error: DomainError) -> set[tuple[str, str]]:
    """The records a refusal names: (kind, key)."""
    return {(r.refs["kind"], r.refs["key"]) for r in error.reasons if "kind" in r.refs}


def admin(db: Session) -> audit.Actor:
    return who(db, "admin").actor(Role.admin)


def new_department(db: Session, key: str = "new_unit", organ: str = "mayor",
                   parent: str | None = None) -> Department:
    return service.create_department(db, admin(db), key=key, organ_key=organ,
                                     name_ja="新しい課", name_en="New unit", parent_key=parent)


def new_body(db: Session, key: str = "npo_new", public: bool = False) -> OutsideBody:
    return service.create_outside_body(db, admin(db), key=key, kind=OutsideBodyKind.npo,
                                       name_ja="NPO法人 新", name_en="New NPO",
                                       is_public_body=public)


# ---------------------------------------------------------------- updates


def test_updates_change_only_what_is_sent_and_are_audited(db: Session) -> None:
    actor = admin(db)
    organ = service.update_organ(db, actor, "mayor", name_en="Mayor of Wakabadai City")
    assert (organ.name_ja, organ.name_en) == ("若葉台市長", "Mayor of Wakabadai City")
    department = service.update_department(db, actor, "childcare", parent_key="child_family",
                                           name_ja="こども家庭部 保育幼稚園課")
    assert department.parent_id == service.department_by_key(db, "child_family").id
    body = service.update_outside_body(db, actor, "kodomo_hospital",
                                       kind=OutsideBodyKind.other)
    assert body.kind == OutsideBodyKind.other
    account = service.change_account(db, actor, "analyst", display_name="分析 一郎（兼務）",
                                     department_key="child_family")
    assert account.department_id == service.department_by_key(db, "child_family").id
    events = db.exec(select(AuditEvent).where(col(AuditEvent.action).like("core.%_updated"))
                     .order_by(col(AuditEvent.seq))).all()
    assert [(e.action, e.details) for e in events[-4:]] == [
        ("core.organ_updated", '{"fields":["name_en"]}'),
        ("core.department_updated", '{"fields":["name_ja","parent"]}'),
        ("core.outside_body_updated", '{"fields":["kind"]}'),
        ("core.staff_account_updated", '{"fields":["department","display_name"]}'),
    ]


def test_an_update_that_changes_nothing_writes_no_event(db: Session) -> None:
    before = len(actions(db))
    service.update_organ(db, admin(db), "mayor", kind=OrganKind.mayor, name_ja="若葉台市長")
    assert len(actions(db)) == before


@pytest.mark.parametrize(("department", "parent", "code"), [
    ("child_family", "child_family", "core.department_cycle"),
    ("general_affairs", "school_affairs", "core.department_outside_organ"),
    ("residents", "no_such_department", "core.unknown_department"),
])
def test_a_bad_parent_is_refused_and_nothing_changes(db: Session, department: str, parent: str,
                                                    code: str) -> None:
    with pytest.raises(DomainError) as refused:
        service.update_department(db, admin(db), department, parent_key=parent)
    assert codes(refused.value) == [code]
    assert refused.value.reasons[0].field == "parent"
    assert service.department_by_key(db, department).parent_id is None


def test_a_department_under_its_own_child_is_a_cycle(db: Session) -> None:
    new_department(db, "child_unit", parent="child_family")
    with pytest.raises(InvalidInput) as refused:
        service.update_department(db, admin(db), "child_family", parent_key="child_unit")
    assert codes(refused.value) == ["core.department_cycle"]


# ---------------------------------------------------------------- deactivating units


def test_deactivating_an_organ_in_use_names_every_record_and_changes_nothing(
        db: Session) -> None:
    draft_purpose(db)
    before = len(actions(db))
    with pytest.raises(Conflict) as refused:
        service.deactivate_unit(db, admin(db), service.organ_by_key(db, "mayor"))
    named = refs(refused.value)
    kinds = {kind for kind, _ in named}
    assert {"department", "role grant", "personal information file", "purpose",
            "route"} <= kinds
    assert ("personal information file", "juki") in named
    assert ("purpose", "trial") in named  # a draft still names it
    assert ("department", "child_family") in named
    assert ("role grant", "admin:admin") in named
    assert codes(refused.value)[0] == "core.unit_in_use"
    assert set(codes(refused.value)[1:]) == {"core.still_named"}
    first, second = refused.value.reasons[:2]
    assert first.message_ja.startswith("機関「mayor」は、次の記録がまだ指定しているため")
    assert "cannot be deactivated" in first.message_en
    assert second.message_ja.endswith("がまだ機関「mayor」を指定しています。")
    assert service.organ_by_key(db, "mayor").is_active
    assert len(actions(db)) == before


def test_deactivating_a_department_in_use_names_its_accounts_grants_files_and_purposes(
        db: Session) -> None:
    with pytest.raises(Conflict) as refused:
        service.deactivate_unit(db, admin(db), service.department_by_key(db, "child_family"))
    named = refs(refused.value)
    assert ("staff account", "holder") in named
    assert ("staff account", "support") in named
    assert any(kind == "purpose" for kind, _ in named)


def test_a_retired_or_ended_record_does_not_block(db: Session) -> None:
    department = new_department(db)
    service.create_account(db, admin(db), login="temp", display_name="臨時",
                           password="a-long-enough-password", department_key=department.key)
    grant = service.grant_role(db, admin(db), login="temp", role=Role.analyst,
                               organ_key="mayor", department_key=department.key)
    with pytest.raises(Conflict) as refused:
        service.deactivate_unit(db, admin(db), department)
    assert refs(refused.value) == {("staff account", "temp"), ("role grant", "temp:analyst")}
    assert grant.id is not None
    service.revoke_role(db, admin(db), grant.id)
    service.change_account(db, admin(db), "temp", active=False)
    service.deactivate_unit(db, admin(db), department)
    assert not department.is_active and department.deactivated_at is not None
    assert actions(db)[-1] == "core.department_deactivated"


def test_a_deactivated_unit_cannot_be_chosen_anew_but_stays_in_history(db: Session) -> None:
    department = new_department(db)
    service.create_account(db, admin(db), login="temp", display_name="臨時",
                           password="a-long-enough-password")
    service.deactivate_unit(db, admin(db), department)
    attempts = [
        lambda: new_department(db, "under_it", parent="new_unit"),
        lambda: service.create_account(db, admin(db), login="temp2", display_name="臨時2",
                                       password="a-long-enough-password",
                                       department_key="new_unit"),
        lambda: service.grant_role(db, admin(db), login="temp", role=Role.analyst,
                                   organ_key="mayor", department_key="new_unit"),
        lambda: service.change_account(db, admin(db), "temp", department_key="new_unit"),
        lambda: registry.create_file(db, who(db, "holder"), FileCreate(
            key="new_file", name="新しいファイル", organ="mayor", department="new_unit",
            reason="test")),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput) as refused:
            attempt()
        assert codes(refused.value) == ["core.unit_inactive"]
        assert "無効化されているため" in refused.value.reasons[0].message_ja
    assert department in service.list_departments(db)  # still listed, marked inactive
    assert service.department_by_key(db, "new_unit").deactivated_at is not None


def test_a_deactivated_organ_cannot_be_chosen_for_a_purpose_or_a_route(db: Session) -> None:
    organ = service.create_organ(db, admin(db), key="fire", kind=OrganKind.fire_department,
                                 name_ja="消防長", name_en="Fire chief")
    service.deactivate_unit(db, admin(db), organ)
    draft_purpose(db)
    with pytest.raises(InvalidInput) as refused:
        footing.create_route(db, who(db, "analyst"), "trial", RouteCreate(
            key="to_fire", items=["seiho.kind"], to_organ="fire", basis=Basis.one_off,
            recurrence=Recurrence.one_off))
    assert codes(refused.value) == ["core.unit_inactive"]
    assert refused.value.reasons[0].field == "to_organ"


def test_an_outside_body_named_by_a_route_is_not_deactivated_nor_reclassified(
        db: Session) -> None:
    body = new_body(db, "pref_office", public=True)
    draft_purpose(db)
    footing.create_route(db, who(db, "analyst"), "trial", RouteCreate(
        key="to_pref", items=["seiho.kind"], to_body=body.key, basis=Basis.one_off,
        recurrence=Recurrence.one_off))
    with pytest.raises(Conflict) as refused:
        service.deactivate_unit(db, admin(db), body)
    assert refs(refused.value) == {("route", "to_pref")}
    with pytest.raises(Conflict) as refused:
        service.update_outside_body(db, admin(db), body.key, is_public_body=False)
    assert codes(refused.value) == ["core.public_body_fixed", "core.still_named"]
    assert body.is_public_body and body.is_active


def test_a_deactivated_outside_body_cannot_receive_a_new_route(db: Session) -> None:
    body = new_body(db)
    service.deactivate_unit(db, admin(db), body)
    draft_purpose(db)
    with pytest.raises(InvalidInput) as refused:
        footing.create_route(db, who(db, "analyst"), "trial", RouteCreate(
            key="to_npo", items=["seiho.kind"], to_body=body.key, basis=Basis.one_off,
            recurrence=Recurrence.one_off))
    assert codes(refused.value) == ["core.unit_inactive"]


def test_reactivation(db: Session) -> None:
    parent = new_department(db, "parent_unit")
    child = new_department(db, "child_unit", parent="parent_unit")
    service.deactivate_unit(db, admin(db), child)
    service.deactivate_unit(db, admin(db), parent)
    with pytest.raises(Conflict) as again:
        service.deactivate_unit(db, admin(db), parent)
    assert codes(again.value) == ["core.already_inactive"]
    with pytest.raises(InvalidInput) as refused:  # its parent is still deactivated
        service.reactivate_unit(db, admin(db), child)
    assert codes(refused.value) == ["core.unit_inactive"]
    service.reactivate_unit(db, admin(db), parent)
    service.reactivate_unit(db, admin(db), child)
    assert child.is_active and actions(db)[-1] == "core.department_reactivated"


def test_a_registered_check_is_asked(db: Session) -> None:
    body = new_body(db)

    def everything_names_it(session: Session, unit: service.Unit) -> list[service.Reference]:
        return [service.Reference("記録", "record", str(n)) for n in range(60)]

    service.register_reference_check(everything_names_it)
    try:
        with pytest.raises(Conflict) as refused:
            service.deactivate_unit(db, admin(db), body)
    finally:
        service._reference_checks.remove(everything_names_it)
    assert len(refused.value.reasons) == 1 + service.MAX_NAMED_REFERENCES + 1
    assert refused.value.reasons[-1].code == "core.still_named_more"
    assert "10" in refused.value.reasons[-1].message_en


# ---------------------------------------------------------------- accounts


def test_an_account_cannot_deactivate_itself_nor_the_last_administrator(db: Session) -> None:
    with pytest.raises(Conflict) as refused:
        service.change_account(db, admin(db), "admin", active=False)
    assert codes(refused.value) == ["core.cannot_deactivate_self"]
    with pytest.raises(Conflict) as refused:
        service.change_account(db, audit.SYSTEM, "admin", active=False)
    assert codes(refused.value) == ["core.last_admin"]
    service.create_account(db, audit.SYSTEM, login="admin2", display_name="管理 二",
                           password="a-long-enough-password")
    service.grant_role(db, audit.SYSTEM, login="admin2", role=Role.admin, organ_key="mayor")
    service.change_account(db, audit.SYSTEM, "admin", active=False)
    assert not service.account_by_login(db, "admin").is_active


def test_a_deactivated_accounts_bearer_token_is_refused_at_once(client: TestClient,
                                                              db: Session) -> None:
    token = bearer(api_token(client, "analyst"))
    assert client.get("/api/me", headers=token).status_code == 200
    admin_token = bearer(api_token(client, "admin"))
    reply = client.post("/api/staff/analyst/deactivate", headers=admin_token)
    assert reply.status_code == 200, reply.text
    assert reply.json()["is_active"] is False
    refused = client.get("/api/me", headers=token)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "auth.token_revoked"
    assert api_sign_in(client, "analyst", _demo()).status_code == 401
    reply = client.post("/api/staff/analyst/reactivate", headers=admin_token)
    assert reply.status_code == 200 and reply.json()["is_active"] is True
    assert client.get("/api/me", headers=token).status_code == 401  # stays revoked
    assert api_sign_in(client, "analyst", _demo()).status_code == 200
    assert {"core.staff_account_deactivated", "core.staff_account_reactivated"} <= set(
        actions(db))


def _demo() -> str:
    return demo_password()


def test_a_deactivated_accounts_console_session_ends_at_once(client: TestClient,
                                                             connection: Connection) -> None:
    with app_client(connection) as browser:
        sign_in(browser, "analyst")
        assert browser.get("/", follow_redirects=False).status_code == 200
        reply = client.post("/api/staff/analyst/deactivate",
                            headers=bearer(api_token(client, "admin")))
        assert reply.status_code == 200
        after = browser.get("/", follow_redirects=False)
        assert after.status_code == 303 and after.headers["location"].startswith("/login")


# ---------------------------------------------------------------- the API


def test_the_api_updates_and_refuses_with_the_blocking_records(client: TestClient) -> None:
    token = bearer(api_token(client, "admin"))
    reply = client.patch("/api/organisation/organs/mayor", headers=token,
                         json={"name_en": "Mayor"})
    assert reply.status_code == 200, reply.text
    assert next(o for o in reply.json()["organs"] if o["key"] == "mayor")["name_en"] == "Mayor"
    reply = client.post("/api/organisation/organs/mayor/deactivate", headers=token)
    assert reply.status_code == 409
    reasons = reply.json()["error"]["reasons"]
    assert reasons[0]["code"] == "core.unit_in_use"
    assert {r["code"] for r in reasons[1:]} == {"core.still_named"}
    assert {"kind": "personal information file", "key": "juki"} in [r["refs"] for r in reasons]
    assert all(r["message_ja"] and r["message_en"] for r in reasons)
    reply = client.patch("/api/organisation/departments/residents", headers=token,
                         json={"parent": "school_affairs"})
    assert reply.status_code == 422
    assert reply.json()["error"]["reasons"][0]["field"] == "parent"
    reply = client.patch("/api/organisation/organs/mayor", headers=token,
                         json={"colour": "red"})
    assert reply.status_code == 422


def test_the_api_deactivates_and_reactivates_an_unused_body(client: TestClient) -> None:
    token = bearer(api_token(client, "admin"))
    reply = client.post("/api/organisation/outside-bodies/npo_kodomo_shokudo/deactivate",
                        headers=token)
    assert reply.status_code == 200, reply.text
    body = next(b for b in reply.json()["outside_bodies"] if b["key"] == "npo_kodomo_shokudo")
    assert body["active"] is False and body["deactivated_at"]
    reply = client.post("/api/organisation/outside-bodies/npo_kodomo_shokudo/reactivate",
                        headers=token)
    assert reply.status_code == 200
    reply = client.post("/api/organisation/outside-bodies/nowhere/deactivate", headers=token)
    assert reply.status_code == 404


# ---------------------------------------------------------------- the console page


def test_the_admin_home_links_to_the_page_which_lists_everything(client: TestClient) -> None:
    sign_in(client, "admin")
    assert 'href="/admin/organisation"' in client.get("/").text
    page = client.get("/admin/organisation")
    assert page.status_code == 200
    for shown in ("組織の管理", "機関", "部署", "外部機関", "職員アカウント", "若葉台市長",
                  "若葉県中央児童相談所", "管理 守"):
        assert shown in page.text


def test_the_page_edits_deactivates_and_shows_a_refusal(client: TestClient,
                                                        db: Session) -> None:
    csrf = sign_in(client, "admin")
    reply = client.post("/admin/organisation/departments/childcare/edit", data={
        "csrf_token": csrf, "name_ja": "保育幼稚園課", "name_en": "Childcare Division",
        "parent": "child_family"}, follow_redirects=False)
    assert reply.status_code == 303, reply.text
    assert service.department_by_key(db, "childcare").name_ja == "保育幼稚園課"
    reply = client.post("/admin/organisation/outside-bodies/npo_kodomo_shokudo/deactivate",
                        data={"csrf_token": csrf}, follow_redirects=False)
    assert reply.status_code == 303
    page = client.get(reply.headers["location"])
    assert "無効にしました" in page.text
    refused = client.post("/admin/organisation/organs/board_of_education/deactivate",
                          data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert 'data-code="core.unit_in_use"' in refused.text
    assert "gakureibo" in refused.text
    assert service.organ_by_key(db, "board_of_education").is_active
    last = db.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc())).first()
    assert last is not None and last.action == "core.request_refused"
    assert "core.unit_in_use" in last.details


def test_the_page_needs_its_csrf_token(client: TestClient, db: Session) -> None:
    sign_in(client, "admin")
    reply = client.post("/admin/organisation/outside-bodies/npo_kodomo_shokudo/deactivate",
                        data={"csrf_token": "forged"})
    assert reply.status_code == 403
    assert service.unit_by_key(db, "outside_body", "npo_kodomo_shokudo").is_active


def test_a_bad_field_on_the_page_is_named(client: TestClient) -> None:
    csrf = sign_in(client, "admin")
    reply = client.post("/admin/organisation/organs/mayor/edit", data={
        "csrf_token": csrf, "name_ja": "市長", "name_en": "x" * 300, "kind": "mayor"})
    assert reply.status_code == 422
    assert 'data-field="name_en"' in reply.text


def test_deactivated_units_are_not_offered_in_forms(client: TestClient, db: Session) -> None:
    service.deactivate_unit(db, admin(db), new_department(db))
    csrf_from(client.get("/login").text)
    sign_in(client, "holder")
    form = client.get("/registry/new").text
    assert 'value="new_unit"' not in form
    assert 'value="residents"' in form


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def demo_city(fresh_engine: Engine) -> Iterator[Engine]:
    assert runner.invoke(cli, ["demo", "load"]).exit_code == 0
    yield fresh_engine


def test_the_cli_deactivates_and_refuses(demo_city: Engine) -> None:
    result = runner.invoke(cli, ["org", "deactivate", "body", "npo_kodomo_shokudo"])
    assert result.exit_code == 0, result.output
    refused = runner.invoke(cli, ["org", "deactivate", "department", "child_family"])
    assert refused.exit_code == 2
    assert "core.unit_in_use" in refused.output and "holder" in refused.output
    listed = runner.invoke(cli, ["org", "list"])
    assert "body\tnpo_kodomo_shokudo\tdeactivated" in listed.output
    result = runner.invoke(cli, ["users", "deactivate", "analyst"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["users", "update", "holder", "--name", "保有 管理太郎"])
    assert result.exit_code == 0, result.output
    with Session(demo_city) as session:
        assert not service.account_by_login(session, "analyst").is_active
        assert service.account_by_login(session, "holder").display_name == "保有 管理太郎"
        done = set(session.exec(select(AuditEvent.action)).all())
    assert {"core.outside_body_deactivated", "core.staff_account_deactivated",
            "core.staff_account_updated"} <= done


def test_the_cli_as_a_non_administrator_is_refused(demo_city: Engine,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODOMO_PASSWORD", _demo())
    refused = runner.invoke(cli, ["org", "deactivate", "body", "npo_kodomo_shokudo",
                                  "--as", "analyst"])
    assert refused.exit_code == 2 and "auth.role_required" in refused.output
    result = runner.invoke(cli, ["org", "update", "organ", "mayor", "--name-en", "Mayor",
                                 "--as", "admin"])
    assert result.exit_code == 0, result.output
    with Session(demo_city) as session:
        body = session.exec(select(OutsideBody).where(
            OutsideBody.key == "npo_kodomo_shokudo")).one()
        assert body.is_active
        assert session.exec(select(Organ).where(Organ.key == "mayor")).one().name_en == "Mayor"
        event = session.exec(select(AuditEvent).where(
            AuditEvent.action == "core.organ_updated")).one()
        admin_id = session.exec(select(StaffAccount.id).where(
            StaffAccount.login == "admin")).one()
    assert (event.actor_type, event.actor_id) == ("staff", admin_id)


# ---------------------------------------------------------------- at the same time


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.parametrize("first", ["choice", "deactivation"])
def test_a_choice_and_a_deactivation_at_once_never_both_pass(fresh_engine: Engine,
                                                             first: str) -> None:
    """Whichever holds the unit's row first, the other sees its result once it commits."""
    with Session(fresh_engine) as setup:
        core_demo.load(setup)
        new_department(setup)
        setup.commit()

    def choose(session: Session) -> None:
        service.create_account(session, audit.SYSTEM, login="late", display_name="遅刻",
                               password="a-long-enough-password", department_key="new_unit")

    def deactivate(session: Session) -> None:
        service.deactivate_unit(session, audit.SYSTEM,
                                service.department_by_key(session, "new_unit"))

    hold, wait = (choose, deactivate) if first == "choice" else (deactivate, choose)
    outcome: list[BaseException | None] = []

    def second() -> None:
        with Session(fresh_engine) as session:
            try:
                wait(session)
                session.commit()
                outcome.append(None)
            except BaseException as error:  # collected for the assertion below
                session.rollback()
                outcome.append(error)

    with Session(fresh_engine) as holder:
        hold(holder)
        holder.flush()
        thread = threading.Thread(target=second)
        thread.start()
        with fresh_engine.connect() as watcher:  # until the second waits on the row lock
            for _ in range(6000):
                waiting = watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar()
                watcher.rollback()
                if waiting or not thread.is_alive():
                    break
                threading.Event().wait(0.01)
        holder.commit()
    thread.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], DomainError), outcome
    expected = "core.unit_in_use" if first == "choice" else "core.unit_inactive"
    assert codes(outcome[0])[0] == expected
