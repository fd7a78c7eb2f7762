"""Privacy-as-code bundles: export, plan, apply (all or nothing, idempotent), approvals --as."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from core import audit
from core import demo as core_demo
from core import service as core_service
from core.auth import Principal, issue_staff_token, principal_for
from core.db import unit_of_work
from core.models import AuditEvent, Role, StaffAccount
from core.reasons import InvalidInput
from governance import demo as governance_demo
from governance.bundle import plan as bundle_plan
from governance.bundle.export import export_bundle
from governance.bundle.format import dump, json_schema_text, parse_bundle, to_yaml
from governance.models import Authorisation, Purpose, PurposeStatus, RecordStatus, Route
from main import cli
from registry import demo as registry_demo
from registry.models import RegistryFile, RegistryItem
from tests.databases import migrate, new_database_url

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ("status", "submitted_by", "approved")


@pytest.fixture(scope="module")
def demo_bundle() -> Iterator[dict[str, Any]]:
    """The whole demo city (organisation, register, purposes) exported once, from SQLite."""
    engine = migrate(new_database_url("sqlite"))
    try:
        with unit_of_work(engine) as session:
            core_demo.load(session)
            registry_demo.load(session)
            governance_demo.load(session)
        with Session(engine) as session:
            yield export_bundle(session)
    finally:
        engine.dispose()


def _without_workflow(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for section in ("purposes", "routes", "authorisations"):
        for record in data.get(section, []):
            for name in WORKFLOW:
                record.pop(name, None)
    return data


def _count(session: Session, model: Any) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def _load_core(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        core_demo.load(session)


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "bundle.yaml"
    path.write_text(to_yaml(data), encoding="utf-8")
    return path


def who_in(engine: Engine, login: str) -> Principal:
    with Session(engine) as session:
        account = session.exec(select(StaffAccount).where(StaffAccount.login == login)).one()
        return principal_for(session, account)


def _statuses(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        found = {f"purpose:{p.key}": str(p.status) for p in session.exec(select(Purpose))}
        found |= {f"route:{r.key}": str(r.status) for r in session.exec(select(Route))}
        found |= {f"auth:{a.key}": str(a.status) for a in session.exec(select(Authorisation))}
    return found


# ---------------------------------------------------------------- the format


def test_demo_bundle_has_every_section(demo_bundle: dict[str, Any]) -> None:
    assert demo_bundle["kodomo_bundle"] == 1
    for section in ("organs", "departments", "outside_bodies", "staff", "files", "purposes",
                    "routes", "authorisations"):
        assert demo_bundle[section], section
    text = to_yaml(demo_bundle)
    assert "password" not in text
    assert dump(parse_bundle(text)) == demo_bundle
    routes = {r["key"]: r for r in demo_bundle["routes"]}
    assert routes["abuse.mayor_internal"]["kind"] == "69-2-2"
    assert routes["abuse.boe_provision"]["kind"] == "69-2-3"
    auths = {a["key"]: a for a in demo_bundle["authorisations"]}
    approved = auths["abuse.mayor_internal.2026"]["approved"]
    assert approved["by"] == "privacy" and approved["delegation_note"]
    assert auths["abuse.mayor_internal.2026"]["submitted_by"] == "analyst"


def test_committed_json_schema_is_the_generated_one() -> None:
    committed = (ROOT / "docs" / "bundle.schema.json").read_text(encoding="utf-8")
    assert committed == json_schema_text(), (
        "docs/bundle.schema.json is stale: kodomo governance schema > docs/bundle.schema.json")
    assert json.loads(committed)["title"] == "Kodomo governance bundle"


# ---------------------------------------------------------------- round trip and idempotence


def test_round_trip_into_a_fresh_database(
    fresh_engine: Engine, demo_bundle: dict[str, Any]
) -> None:
    _load_core(fresh_engine)
    with unit_of_work(fresh_engine) as session:
        changes = bundle_plan.apply(session, audit.SYSTEM, demo_bundle)
    created = {(c.kind, c.key) for c in changes if c.action == "create"}
    assert ("purpose", "child_abuse_prevention") in created
    assert ("file", "juki") in created and ("item", "juki.atena_no") in created
    assert ("authorisation", "abuse.boe_provision.2026") in created
    assert not any(c.action in ("submit", "approve") for c in changes)
    assert any(c.action == "not_done" and "--as analyst" in c.note for c in changes)
    with Session(fresh_engine) as session:
        assert {str(p.status) for p in session.exec(select(Purpose))} == {"draft"}
        assert {str(r.status) for r in session.exec(select(Route))} == {"draft"}
        assert _count(session, RegistryItem) == sum(
            len(f["items"]) for f in demo_bundle["files"])
        again = export_bundle(session)
    assert _without_workflow(again) == _without_workflow(demo_bundle)
    assert {p["status"] for p in again["purposes"]} == {"draft"}


def test_applying_twice_changes_nothing(
    fresh_engine: Engine, demo_bundle: dict[str, Any]
) -> None:
    _load_core(fresh_engine)
    with unit_of_work(fresh_engine) as session:
        bundle_plan.apply(session, audit.SYSTEM, demo_bundle)
    with Session(fresh_engine) as session:
        events = _count(session, AuditEvent)
        changes = bundle_plan.plan(session, demo_bundle)
    assert [c.line() for c in changes if c.writes] == []
    with unit_of_work(fresh_engine) as session:
        second = bundle_plan.apply(session, audit.SYSTEM, demo_bundle)
    assert [c.line() for c in second if c.writes] == []
    with Session(fresh_engine) as session:
        assert _count(session, AuditEvent) == events


def test_the_demo_database_already_matches_its_own_bundle(db: Session) -> None:
    registry_demo.load(db)
    governance_demo.load(db)
    changes = bundle_plan.plan(db, export_bundle(db))
    assert [c.line() for c in changes if c.writes] == []
    # The demo's approvals are facts there already: nothing to submit or approve.
    assert not [c for c in changes if c.action == "not_done"]


def test_an_edit_is_planned_as_an_update_with_its_fields(
    db: Session, demo_bundle: dict[str, Any]
) -> None:
    bundle_plan.apply(db, audit.SYSTEM, demo_bundle)
    edited = copy.deepcopy(demo_bundle)
    draft = next(p for p in edited["purposes"] if p["key"] == "all_children_scoring")
    draft["necessity"] = "検討のため"
    edited["files"][0]["items"][0]["name_en"] = "Full name"
    changes = {(c.action, c.kind, c.key): c for c in bundle_plan.plan(db, edited)}
    assert changes[("update", "purpose", "all_children_scoring")].fields == ("necessity",)
    item = edited["files"][0]["items"][0]["key"]
    assert changes[("update", "item", item)].fields == ("name_en",)
    bundle_plan.apply(db, audit.SYSTEM, edited)
    assert db.exec(select(Purpose).where(Purpose.key == "all_children_scoring")).one() \
        .necessity == "検討のため"
    assert [c.line() for c in bundle_plan.plan(db, edited) if c.writes] == []


def test_what_cannot_be_changed_is_reported_not_done(db: Session) -> None:
    core_service.create_department(db, audit.SYSTEM, key="spare", organ_key="board_of_education",
                                   name_ja="予備", name_en="Spare")
    edited = export_bundle(db)
    school = next(d for d in edited["departments"] if d["key"] == "spare")
    school["organ"] = "mayor"
    edited["staff"][0]["roles"] = []
    changes = bundle_plan.plan(db, edited)
    assert [c.line() for c in changes if c.writes] == []
    not_done = {(c.kind, c.key): c for c in changes if c.action == "not_done"}
    assert not_done[("department", school["key"])].fields == ("organ",)
    assert "never moves to another organ" in not_done[("department", school["key"])].note
    assert "never revokes" in next(c.note for (kind, _), c in not_done.items()
                                   if kind == "role_grant")


def test_an_approved_purpose_is_revised_as_a_draft(
    db: Session, demo_bundle: dict[str, Any]
) -> None:
    registry_demo.load(db)
    governance_demo.load(db)
    edited = copy.deepcopy(demo_bundle)
    purpose = next(p for p in edited["purposes"] if p["key"] == "young_carers_outreach")
    purpose["necessity"] += "（改訂）"
    changes = bundle_plan.apply(db, audit.SYSTEM, edited)
    update = next(c for c in changes if c.kind == "purpose" and c.action == "update")
    assert "version 2" in update.note
    found = db.exec(select(Purpose).where(Purpose.key == "young_carers_outreach")).one()
    assert (found.status, found.version) == (PurposeStatus.draft, 2)


# ---------------------------------------------------------------- all or nothing, with paths


def test_a_bad_reference_names_its_path_and_nothing_is_written(
    fresh_engine: Engine, demo_bundle: dict[str, Any], tmp_path: Path
) -> None:
    _load_core(fresh_engine)
    broken = copy.deepcopy(demo_bundle)
    broken["purposes"][2]["items"][0]["item"] = "x"
    result = runner.invoke(cli, ["governance", "apply", str(_write(tmp_path, broken))])
    assert result.exit_code == 2
    assert "[purposes[2].items[0].item]" in result.output
    assert "unknown register item 'x'" in result.output
    with Session(fresh_engine) as session:
        assert _count(session, RegistryFile) == 0
        assert _count(session, Purpose) == 0
    with Session(fresh_engine) as session, pytest.raises(InvalidInput) as caught:
        bundle_plan.plan(session, broken)
    assert {r.field for r in caught.value.reasons} >= {"purposes[2].items[0].item"}


def test_schema_errors_and_a_wrong_kind_give_paths(
    db: Session, demo_bundle: dict[str, Any]
) -> None:
    broken = copy.deepcopy(demo_bundle)
    broken["routes"][0]["kind"] = "69-2-3" if broken["routes"][0]["kind"] != "69-2-3" \
        else "69-2-2"
    broken["departments"][1]["organ"] = "no_such_organ"
    broken["files"][0]["items"][0]["category"] = "nonsense"
    with pytest.raises(InvalidInput) as caught:
        bundle_plan.plan(db, broken)
    assert [r.field for r in caught.value.reasons] == ["files[0].items[0].category"]
    del broken["files"][0]["items"][0]["category"]
    with pytest.raises(InvalidInput) as caught:
        bundle_plan.plan(db, broken)
    by_field = {r.field: r for r in caught.value.reasons}
    assert by_field["routes[0].kind"].code == "governance.bundle_kind_mismatch"
    assert by_field["departments[1].organ"].message_en == "unknown organ 'no_such_organ'"


def test_job_kinds_are_exported_and_a_change_is_planned_on_the_purpose(
    db: Session, demo_bundle: dict[str, Any]
) -> None:
    kinds = {p["key"]: p.get("job_kinds") for p in demo_bundle["purposes"]}
    assert kinds["child_abuse_prevention"] == ["export", "linkage", "scoring", "statistics"]
    assert kinds["young_carers_outreach"] == ["export", "linkage", "statistics"]
    same = copy.deepcopy(demo_bundle)
    carers = next(p for p in same["purposes"] if p["key"] == "young_carers_outreach")
    carers["job_kinds"] = ["statistics", "linkage", "export", "linkage"]  # order, repeats
    assert all(c.action == "unchanged" for c in bundle_plan.plan(db, same)
               if c.kind == "purpose")
    carers["job_kinds"] = ["linkage", "scoring"]
    planned = {(c.kind, c.key): c for c in bundle_plan.plan(db, same) if c.action == "update"}
    assert "job_kinds" in planned[("purpose", "young_carers_outreach")].fields
    carers["job_kinds"] = ["profiling"]
    with pytest.raises(InvalidInput) as caught:
        bundle_plan.plan(db, same)
    assert [r.field for r in caught.value.reasons] == [
        f"purposes[{same['purposes'].index(carers)}].job_kinds[0]"]


def test_route_and_authorisation_problems_are_the_services_rules_at_bundle_paths(
    db: Session, demo_bundle: dict[str, Any]
) -> None:
    broken = copy.deepcopy(demo_bundle)
    routes = {r["key"]: i for i, r in enumerate(broken["routes"])}
    auths = {a["key"]: i for i, a in enumerate(broken["authorisations"])}
    provision = broken["routes"][routes["abuse.boe_provision"]]
    provision["items"].append(provision["items"][0])
    provision["to_body"] = "npo"
    broken["routes"][routes["abuse.mayor_internal"]]["submitted_by"] = "analyst"
    broken["outside_bodies"].append(
        {"key": "npo", "kind": "npo", "name_ja": "NPO", "name_en": "An NPO"})
    broken["routes"].append({
        "key": "abuse.npo", "purpose": "child_abuse_prevention", "to_body": "npo",
        "items": broken["routes"][routes["abuse.mayor_internal"]]["items"],
        "basis": "one_off", "recurrence": "one_off"})
    internal = broken["authorisations"][auths["abuse.mayor_internal.2026"]]
    internal["approved"] = {"by": internal["submitted_by"], "comment": "自分で承認"}
    broken["authorisations"].append({"key": "carers.consent.x", "route": "carers.consent"})
    with pytest.raises(InvalidInput) as caught:
        bundle_plan.plan(db, broken)
    r, a = routes["abuse.boe_provision"], auths["abuse.mayor_internal.2026"]
    assert {(reason.field, reason.code) for reason in caught.value.reasons} >= {
        (f"routes[{r}].items[{len(provision['items']) - 1}]", "governance.duplicate_item"),
        (f"routes[{r}].to_organ", "governance.one_recipient"),
        (f"routes[{routes['abuse.mayor_internal']}].submitted_by",
         "governance.route_needs_authorisation"),
        (f"routes[{len(routes)}].to_body", "governance.provision_to_private_body"),
        (f"authorisations[{a}].approved.by", "governance.self_approval"),
        (f"authorisations[{a}].approved.delegation_note", "governance.missing_delegation"),
        (f"authorisations[{len(auths)}].route", "governance.route_not_one_off"),
    }


def test_a_refusal_during_apply_rolls_everything_back(
    fresh_engine: Engine, demo_bundle: dict[str, Any], tmp_path: Path
) -> None:
    _load_core(fresh_engine)
    broken = copy.deepcopy(demo_bundle)
    # Valid as a bundle, refused by the register: My Number is never a data item.
    broken["files"][-1]["items"].append({"key": "x.my_number", "name_ja": "個人番号"})
    result = runner.invoke(cli, ["governance", "apply", str(_write(tmp_path, broken))])
    assert result.exit_code == 2, result.output
    assert f"files[{len(broken['files']) - 1}].items[" in result.output
    assert "registry.my_number_refused" in result.output
    with Session(fresh_engine) as session:
        assert _count(session, RegistryFile) == 0


# ---------------------------------------------------------------- the CLI


def test_export_and_dry_run_write_nothing(
    fresh_engine: Engine, demo_bundle: dict[str, Any], tmp_path: Path
) -> None:
    _load_core(fresh_engine)
    path = _write(tmp_path, demo_bundle)
    with Session(fresh_engine) as session:
        events = _count(session, AuditEvent)
    result = runner.invoke(cli, ["governance", "apply", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "create purpose child_abuse_prevention" in result.output
    assert "create file juki" in result.output
    assert "dry run, nothing written" in result.output
    with Session(fresh_engine) as session:
        assert _count(session, AuditEvent) == events
        assert _count(session, Purpose) == 0
        assert _count(session, RegistryFile) == 0
    exported = runner.invoke(cli, ["governance", "export"])
    assert exported.exit_code == 0, exported.output
    assert yaml.safe_load(exported.output)["organs"] == demo_bundle["organs"]


def test_approvals_only_with_the_very_approver(
    fresh_engine: Engine, demo_bundle: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _load_core(fresh_engine)
    path = _write(tmp_path, demo_bundle)
    monkeypatch.delenv("KODOMO_TOKEN", raising=False)

    plain = runner.invoke(cli, ["governance", "apply", str(path)])
    assert plain.exit_code == 0, plain.output
    assert "stays draft: submitted_by is analyst" in plain.output
    assert set(_statuses(fresh_engine).values()) == {"draft"}
    # An apply without --as records no author, and the drafts of a purpose with no author are
    # for privacy officers only (governance.rules.drafter_organ_problem): the bundle's drafter,
    # analyst, is named its author here as an apply --as analyst would have.
    with Session(fresh_engine) as session:
        author = session.exec(select(StaffAccount).where(StaffAccount.login == "analyst")).one()
        for purpose in session.exec(select(Purpose)).all():
            purpose.created_by = author.id
            session.add(purpose)
        session.commit()

    # The approver cannot skip the submitter: approving needs a submitted record.
    monkeypatch.setenv("KODOMO_PASSWORD", core_demo.demo_password())
    early = runner.invoke(cli, ["governance", "apply", str(path), "--as", "privacy"])
    assert early.exit_code == 0, early.output
    assert "approve " not in early.output
    assert set(_statuses(fresh_engine).values()) == {"draft"}

    dry = runner.invoke(cli, ["governance", "apply", str(path), "--as", "analyst", "--dry-run"])
    assert "submit purpose child_abuse_prevention" in dry.output
    assert set(_statuses(fresh_engine).values()) == {"draft"}

    submitted = runner.invoke(cli, ["governance", "apply", str(path), "--as", "analyst"])
    assert submitted.exit_code == 0, submitted.output
    assert "submit purpose child_abuse_prevention — as analyst" in submitted.output
    assert "the approval by privacy needs another apply with --as privacy" in submitted.output
    statuses = _statuses(fresh_engine)
    assert statuses["purpose:child_abuse_prevention"] == "submitted"
    assert statuses["purpose:all_children_scoring"] == "draft"  # never submitted
    assert statuses["auth:abuse.boe_provision.2026"] == "submitted"

    monkeypatch.setenv("KODOMO_PASSWORD", "not-the-password")
    refused = runner.invoke(cli, ["governance", "apply", str(path), "--as", "privacy"])
    assert refused.exit_code == 2
    assert "auth.invalid_credentials" in refused.output
    assert _statuses(fresh_engine) == statuses

    # Another login's token is not the approver's.
    with Session(fresh_engine) as session:
        analyst = session.exec(select(StaffAccount).where(StaffAccount.login == "analyst")).one()
        privacy = session.exec(select(StaffAccount).where(StaffAccount.login == "privacy")).one()
    monkeypatch.delenv("KODOMO_PASSWORD")
    monkeypatch.setenv("KODOMO_TOKEN", issue_staff_token(analyst).token)
    other = runner.invoke(cli, ["governance", "apply", str(path), "--as", "privacy"])
    assert other.exit_code == 2
    assert "auth.token_other_login" in other.output

    monkeypatch.setenv("KODOMO_TOKEN", issue_staff_token(privacy).token)
    # The fourth condition waits for an approved, current PIA, which a bundle does not carry:
    # the refused approval refuses the whole apply, with the record's path; nothing is approved.
    whole = runner.invoke(cli, ["governance", "apply", str(path), "--as", "privacy"])
    assert whole.exit_code == 2, whole.output
    assert re.search(r"\[authorisations\[\d+\]\.approved\] pia\.not_approved", whole.output)
    assert _statuses(fresh_engine) == statuses

    # Without the authorisations' approvals, the rest is approved.
    purposes_only = copy.deepcopy(demo_bundle)
    for record in purposes_only["authorisations"]:
        record.pop("approved", None)
    approved = runner.invoke(cli, ["governance", "apply", str(_write(tmp_path, purposes_only)),
                                   "--as", "privacy"])
    assert approved.exit_code == 0, approved.output
    assert "approve purpose child_abuse_prevention — by privacy" in approved.output
    statuses = _statuses(fresh_engine)
    assert statuses["purpose:child_abuse_prevention"] == "approved"
    assert statuses["purpose:young_carers_outreach"] == "approved"
    # In the demo the consent route waits for its PIA (approving a route needs the PIA of the
    # design with it first), so the bundle carries no approval of it.
    assert statuses["route:carers.consent"] == "submitted"
    assert statuses["auth:abuse.mayor_internal.2026"] == str(RecordStatus.submitted)
    assert statuses["route:abuse.boe_provision"] == str(RecordStatus.submitted)

    # The database says what the bundle says, but for the statuses it could not reach.
    with Session(fresh_engine) as session:
        again = export_bundle(session)
    assert _without_workflow(again) == _without_workflow(demo_bundle)
    assert again["purposes"] == demo_bundle["purposes"]
    last = runner.invoke(cli, ["governance", "apply", str(_write(tmp_path, purposes_only)),
                               "--as", "privacy"])
    assert last.exit_code == 0
    assert "applied: 0 create, 0 update, 0 submit, 0 approve" in last.output


def test_a_refused_submission_refuses_the_whole_apply(
    fresh_engine: Engine, demo_bundle: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14: a submission the service refuses used to be undone alone while the rest of the
    apply stood; now nothing of the bundle is written."""
    _load_core(fresh_engine)
    monkeypatch.delenv("KODOMO_TOKEN", raising=False)
    monkeypatch.setenv("KODOMO_PASSWORD", core_demo.demo_password())
    bundle = copy.deepcopy(demo_bundle)
    index = next(i for i, p in enumerate(bundle["purposes"])
                 if p["key"] == "all_children_scoring")
    bundle["purposes"][index]["submitted_by"] = "privacy"  # incomplete: refused on submission
    result = runner.invoke(cli, ["governance", "apply", str(_write(tmp_path, bundle)),
                                 "--as", "privacy"])
    assert result.exit_code == 2, result.output
    assert f"purposes[{index}].submitted_by" in result.output
    assert "governance.missing_citation" in result.output
    assert "何も書き込んでいません" in result.output
    with Session(fresh_engine) as session:
        assert _count(session, Purpose) == 0
        assert _count(session, RegistryFile) == 0
        assert _count(session, Route) == 0


def _with_new_role(bundle: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The bundle giving analyst the privacy officer's role, and that grant's path."""
    bundle = copy.deepcopy(bundle)
    index = next(i for i, s in enumerate(bundle["staff"]) if s["login"] == "analyst")
    roles = bundle["staff"][index]["roles"]
    roles.append({"role": "privacy_officer", "organ": "mayor"})
    return bundle, f"staff[{index}].roles[{len(roles) - 1}]"


def test_a_role_grant_without_an_administrator_refuses_the_whole_bundle(
    fresh_engine: Engine, demo_bundle: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14: `apply` with no --as gave an analyst the privacy officer's role. Now a bundle
    that creates an account or grants a role is refused whole, naming the record's path, unless
    --as is an administrator."""
    _load_core(fresh_engine)
    monkeypatch.delenv("KODOMO_TOKEN", raising=False)
    monkeypatch.setenv("KODOMO_PASSWORD", core_demo.demo_password())
    bundle, grant_path = _with_new_role(demo_bundle)
    bundle["staff"].append({"login": "newcomer", "display_name": "新任 者",
                            "department": "digital", "roles": []})
    account_path = f"staff[{len(bundle['staff']) - 1}]"
    path = _write(tmp_path, bundle)
    for extra in ([], ["--dry-run"], ["--as", "analyst"], ["--as", "privacy"]):
        refused = runner.invoke(cli, ["governance", "apply", str(path), *extra])
        assert refused.exit_code == 2, (extra, refused.output)
        assert "governance.bundle_needs_admin" in refused.output
        assert f"[{grant_path}]" in refused.output and f"[{account_path}]" in refused.output
        assert "kodomo users create" in refused.output
    with Session(fresh_engine) as session:
        assert _count(session, Purpose) == 0  # nothing else was applied either
        assert _count(session, RegistryFile) == 0
        assert session.exec(select(StaffAccount).where(StaffAccount.login == "newcomer")
                            ).first() is None
    analyst = who_in(fresh_engine, "analyst")
    assert not analyst.has_role(Role.privacy_officer)

    admin = runner.invoke(cli, ["governance", "apply", str(path), "--as", "admin"])
    assert admin.exit_code == 0, admin.output
    assert "create role_grant analyst:privacy_officer@mayor" in admin.output
    assert who_in(fresh_engine, "analyst").has_role(Role.privacy_officer)
    with Session(fresh_engine) as session:
        granted = session.exec(select(AuditEvent).where(AuditEvent.action == "core.role_granted")
                               .order_by(col(AuditEvent.seq).desc())).first()
        assert granted is not None and granted.role == "admin"


def test_without_an_account_change_a_bundle_applies_as_drafts_without_sign_in(
    fresh_engine: Engine, demo_bundle: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _load_core(fresh_engine)
    monkeypatch.delenv("KODOMO_TOKEN", raising=False)
    result = runner.invoke(cli, ["governance", "apply", str(_write(tmp_path, demo_bundle))])
    assert result.exit_code == 0, result.output
    assert set(_statuses(fresh_engine).values()) == {"draft"}


# ---------------------------------------------------------------- issue 12: hardened input

_CITY = ("kodomo_bundle: 1\nmunicipality:\n  key: city\n  code: '999999'\n"
         "  name_ja: 若葉台市\n  name_en: {name}\n")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932", "utf-16"])
def test_a_bundle_in_cp932_or_with_a_bom_is_read(encoding: str) -> None:
    bundle = parse_bundle(_CITY.format(name="Wakabadai").encode(encoding))
    assert bundle.municipality is not None and bundle.municipality.name_ja == "若葉台市"


@pytest.mark.parametrize(("source", "code"), [
    ("kodomo_bundle: 1\norgans: " + "[" * 5000 + "]" * 5000, "core.yaml_too_deep"),
    (_CITY.format(name="Waka\x00badai").encode(), "core.text_control_character"),
    (_CITY.format(name="x" * 131 * 1024).encode(), "core.text_field_too_large"),
    (_CITY.format(name="x") + "# " + "y" * (1024 * 1024 + 1) + "\n", "core.text_line_too_large"),
    (b"kodomo_bundle: 1\n\xfd\xfe\xff\x80", "core.text_encoding"),
])
def test_a_hostile_bundle_is_refused_with_a_reason(source: str | bytes, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_bundle(source)
    assert caught.value.code == code


def test_apply_refuses_a_5000_deep_bundle_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("kodomo_bundle: 1\norgans: " + "[" * 5000 + "]" * 5000, encoding="utf-8")
    result = runner.invoke(cli, ["governance", "apply", str(path)])
    assert result.exit_code == 2, result.output
    assert "core.yaml_too_deep" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
