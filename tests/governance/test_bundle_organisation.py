"""Issue 15, item 4, in bundles: organs, departments, outside bodies and accounts are updated,
deactivated (`active: false`) and reactivated (`active: true`) on apply, through core's
operations; a deactivation that records in force still block refuses the whole apply, with the
record's path and the blocking records named."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session

from core import audit, service
from core.auth import Principal, principal_for
from core.models import OrganKind, Role
from core.reasons import Conflict, InvalidInput
from governance.bundle import plan as bundle_plan
from governance.bundle.export import export_bundle
from tests.factories import codes


def _record(bundle: dict[str, Any], section: str, key: str, name: str = "key"
            ) -> dict[str, Any]:
    return next(r for r in bundle[section] if r[name] == key)


def _admin(db: Session) -> Principal:
    """Account and role-grant changes in a bundle need --as an administrator."""
    return principal_for(db, service.account_by_login(db, "admin"))


def _lines(db: Session, bundle: dict[str, Any]) -> list[str]:
    return [c.line() for c in bundle_plan.plan(db, bundle, as_login="admin") if c.writes]


def test_a_renamed_organ_and_body_are_updated(db: Session) -> None:
    bundle = export_bundle(db)
    _record(bundle, "organs", "mayor")["name_en"] = "Mayor"
    _record(bundle, "outside_bodies", "kodomo_hospital")["kind"] = "other"
    _record(bundle, "staff", "analyst", "login")["display_name"] = "分析 一郎（兼務）"
    assert _lines(db, bundle) == ["update organ mayor: name_en",
                                  "update outside_body kodomo_hospital: kind",
                                  "update account analyst: display_name"]
    bundle_plan.apply(db, audit.SYSTEM, approver=_admin(db), bundle=bundle)
    assert service.organ_by_key(db, "mayor").name_en == "Mayor"
    assert service.account_by_login(db, "analyst").display_name == "分析 一郎（兼務）"
    assert _lines(db, bundle) == []


def test_active_false_deactivates_after_every_other_change(db: Session) -> None:
    service.create_department(db, audit.SYSTEM, key="old_unit", organ_key="mayor",
                              name_ja="旧課", name_en="Old unit")
    service.create_account(db, audit.SYSTEM, login="leaver", display_name="退職 者",
                           password="a-long-enough-password", department_key="old_unit")
    bundle = export_bundle(db)
    # The department is named before the account that blocks it: apply still ends the
    # account first.
    _record(bundle, "departments", "old_unit")["active"] = False
    _record(bundle, "staff", "leaver", "login")["active"] = False
    changes = [c for c in bundle_plan.plan(db, bundle, as_login="admin") if c.writes]
    assert [c.line() for c in changes] == ["update account leaver: active — deactivate",
                                           "update department old_unit: active — deactivate"]
    done = bundle_plan.apply(db, audit.SYSTEM, approver=_admin(db), bundle=bundle)
    assert [c.path for c in done if c.writes] == ["staff[8].active", "departments[10].active"]
    assert not service.department_by_key(db, "old_unit").is_active
    assert not service.account_by_login(db, "leaver").is_active
    exported = export_bundle(db)
    assert _record(exported, "departments", "old_unit")["active"] is False
    assert _record(exported, "staff", "leaver", "login")["active"] is False
    assert "active" not in _record(exported, "departments", "residents")
    assert _lines(db, exported) == []
    # Omitted means "as it is": an older bundle does not bring them back.
    assert _lines(db, bundle | {"departments": [
        {k: v for k, v in d.items() if k != "active"} for d in bundle["departments"]]}) == []
    _record(exported, "departments", "old_unit")["active"] = True
    assert _lines(db, exported) == ["update department old_unit: active — reactivate"]
    bundle_plan.apply(db, audit.SYSTEM, approver=_admin(db), bundle=exported)
    assert service.department_by_key(db, "old_unit").is_active


def test_a_blocked_deactivation_refuses_the_apply_with_its_path(db: Session) -> None:
    bundle = export_bundle(db)
    index = next(i for i, o in enumerate(bundle["organs"]) if o["key"] == "board_of_education")
    bundle["organs"][index]["active"] = False
    with pytest.raises(Conflict) as refused:
        bundle_plan.apply(db, audit.SYSTEM, approver=_admin(db), bundle=bundle)
    assert set(codes(refused.value)) == {"core.unit_in_use", "core.still_named"}
    assert {r.field for r in refused.value.reasons} == {f"organs[{index}].active"}
    named = {r.refs["key"] for r in refused.value.reasons if r.refs}
    assert {"gakureibo", "school_affairs", "edu_holder:data_holder"} <= named


def test_a_new_record_can_arrive_deactivated(db: Session) -> None:
    bundle = export_bundle(db)
    bundle["outside_bodies"].append({"key": "closed_npo", "kind": "npo", "name_ja": "解散NPO",
                                     "name_en": "Dissolved NPO", "active": False})
    assert _lines(db, bundle) == ["create outside_body closed_npo",
                                  "update outside_body closed_npo: active — deactivate"]
    bundle_plan.apply(db, audit.SYSTEM, approver=_admin(db), bundle=bundle)
    assert not service.unit_by_key(db, "outside_body", "closed_npo").is_active


def test_a_role_grant_on_a_deactivated_organ_is_refused(db: Session) -> None:
    organ = service.create_organ(db, audit.SYSTEM, key="fire", kind=OrganKind.fire_department,
                                 name_ja="消防長", name_en="Fire chief")
    service.deactivate_unit(db, audit.SYSTEM, organ)
    bundle = export_bundle(db)
    _record(bundle, "staff", "analyst", "login")["roles"].append(
        {"role": Role.analyst.value, "organ": "fire"})
    with pytest.raises(InvalidInput) as refused:
        bundle_plan.apply(db, audit.SYSTEM, approver=_admin(db), bundle=bundle)
    reason = refused.value.reasons[0]
    assert reason.code == "core.unit_inactive"
    assert reason.field is not None and reason.field.startswith("staff[")
