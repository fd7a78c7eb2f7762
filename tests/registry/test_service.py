"""The register's operations on both backends: versions, audit, staleness, status reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from core import audit
from core.auth import Grant, Principal
from core.models import AuditEvent, Organ, Role
from core.policies import override_policy
from core.reasons import Conflict, Forbidden, InvalidInput
from registry import rules, service
from registry.schemas import FileUpdate, ItemCreate, ItemUpdate
from tests.factories import complete_file

T0 = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)


def codes(result: service.Status) -> list[str]:
    return [r.code for r in result.reasons]


def test_demo_register_is_loaded_once_and_usable(register: Session) -> None:
    from registry import demo

    assert "既に登録済み" in demo.load(register)[0]
    files = service.list_files(register)
    assert {f.key for f in files} >= {"juki", "gakureibo", "shukketsu", "hoiku", "jidoteate",
                                      "seiho", "kenshin", "iryo_kininaru"}
    for file in files:
        assert service.status(register, file).usable, file.key
    boe = register.exec(select(Organ).where(Organ.key == "board_of_education")).one()
    assert {f.key for f in files if f.organ_id == boe.id} == {"gakureibo", "shukketsu"}
    kininaru = service.get_file(register, "iryo_kininaru")
    assert kininaru.published_version is None and kininaru.persons_count == 140
    assert service.contains_special_care(service.items_of(register, service.get_file(
        register, "kenshin"))) == (True, False)


@pytest.mark.parametrize(("persons", "usable_unpublished"), [(999, True), (1000, False)])
def test_the_999_and_1000_rule_through_status(db: Session, persons: int,
                                              usable_unpublished: bool) -> None:
    file = complete_file(db, f"count{persons}", persons)
    result = service.status(db, file)
    assert result.usable is usable_unpublished
    if not usable_unpublished:
        assert codes(result) == ["registry.unpublished_required"]
    service.publish(db, audit.SYSTEM, file, "公表")
    assert service.status(db, file).usable


def test_an_edit_makes_the_entry_stale_until_republished(db: Session) -> None:
    file = complete_file(db, "stale", at=T0)
    service.publish(db, audit.SYSTEM, file, "公表", at=T0 + timedelta(minutes=1))
    assert service.status(db, file, T0 + timedelta(minutes=2)).usable
    service.update_file(db, audit.SYSTEM, file, FileUpdate(purpose="新しい利用目的",
                                                           reason="目的の見直し"),
                        at=T0 + timedelta(hours=1))
    assert service.is_stale(file)
    result = service.status(db, file, T0 + timedelta(hours=2))
    assert codes(result) == ["registry.entry_stale"]
    assert "ファイル簿が更新されていません" in result.reasons[0].message_ja
    # the public register still shows the published version, not the working copy
    entries = service.public_register(db, "mayor").organs[0].entries
    assert [e.purpose for e in entries if e.key == "stale"] == ["staleの利用目的"]
    service.publish(db, audit.SYSTEM, file, "再公表", at=T0 + timedelta(hours=3))
    assert service.status(db, file, T0 + timedelta(hours=4)).usable
    entries = service.public_register(db, "mayor").organs[0].entries
    assert [e.purpose for e in entries if e.key == "stale"] == ["新しい利用目的"]


def test_an_item_change_also_makes_the_entry_stale(db: Session) -> None:
    file = complete_file(db, "itemstale", at=T0)
    service.publish(db, audit.SYSTEM, file, "公表", at=T0)
    service.add_item(db, audit.SYSTEM, file, ItemCreate(key="itemstale.new", name_ja="新項目"),
                     at=T0 + timedelta(minutes=5))
    assert codes(service.status(db, "itemstale.item1", T0 + timedelta(minutes=6))) == [
        "registry.entry_stale"]


def test_stale_policy_after_allowance(db: Session) -> None:
    with override_policy(rules.RegistryPolicy(stale_blocks="after_allowance", immediate_days=1)):
        file = complete_file(db, "grace", at=T0)
        service.publish(db, audit.SYSTEM, file, "公表", at=T0)
        service.update_file(db, audit.SYSTEM, file, FileUpdate(persons_count=1600, reason="更新"),
                            at=T0 + timedelta(hours=1))
        assert service.status(db, file, T0 + timedelta(hours=2)).usable
        assert codes(service.status(db, file, T0 + timedelta(days=3))) == ["registry.entry_stale"]


def test_record_change_keeps_the_entry_stale_until_edited_and_republished(db: Session) -> None:
    file = complete_file(db, "purposechange", at=T0)
    service.publish(db, audit.SYSTEM, file, "公表", at=T0)
    service.record_change(db, audit.SYSTEM, "purposechange", "purpose 7 v2",
                          "利用目的の変更", at=T0 + timedelta(hours=1))
    assert codes(service.status(db, file, T0 + timedelta(hours=2))) == ["registry.entry_stale"]
    with pytest.raises(Conflict) as refused:  # republishing without updating is refused
        service.publish(db, audit.SYSTEM, file, "再公表", at=T0 + timedelta(hours=2))
    assert refused.value.code == "registry.change_pending"
    service.update_file(db, audit.SYSTEM, file, FileUpdate(purpose="変更後の目的",
                                                           reason="目的変更の反映"),
                        at=T0 + timedelta(hours=3))
    assert codes(service.status(db, file, T0 + timedelta(hours=4))) == ["registry.entry_stale"]
    service.publish(db, audit.SYSTEM, file, "再公表", at=T0 + timedelta(hours=5))
    assert service.status(db, file, T0 + timedelta(hours=6)).usable
    assert service.get_file(db, file.id or 0).key == "purposechange"  # by id too


def test_status_reasons_per_file_and_item(db: Session) -> None:
    file = complete_file(db, "reasons", 5000, at=T0)
    # unpublished but required: the file and its items
    assert codes(service.status(db, file, T0 + timedelta(hours=1))) == [
        "registry.unpublished_required"]
    assert codes(service.status(db, "reasons.item1", T0 + timedelta(hours=1))) == [
        "registry.unpublished_required"]
    service.publish(db, audit.SYSTEM, file, "公表", at=T0 + timedelta(hours=1))
    # a withheld item stays usable (withholding concerns publication, not use)
    service.update_item(db, audit.SYSTEM, "reasons.item2", ItemUpdate(
        withheld=True, withheld_reason="事務に支障（法第75条第3項）", reason="記載省略"),
        at=T0 + timedelta(hours=2))
    service.publish(db, audit.SYSTEM, file, "再公表", at=T0 + timedelta(hours=3))
    assert service.status(db, "reasons.item2", T0 + timedelta(hours=4)).usable
    # a retired item is unusable, its file is not
    service.retire_item(db, audit.SYSTEM, "reasons.item1", "廃止", at=T0 + timedelta(hours=5))
    service.publish(db, audit.SYSTEM, file, "再公表", at=T0 + timedelta(hours=6))
    item_status = service.status(db, "reasons.item1", T0 + timedelta(hours=7))
    assert codes(item_status) == ["registry.item_retired"]
    assert item_status.reasons[0].refs == {"file": "reasons", "item": "reasons.item1"}
    assert service.status(db, file, T0 + timedelta(hours=7)).usable
    # unknown keys, and a time before the file existed
    assert codes(service.status(db, "no.such.thing")) == ["registry.not_registered"]
    assert codes(service.status(db, file, T0 - timedelta(days=1))) == ["registry.not_registered"]
    # ceased: the file and every item
    service.cease_file(db, audit.SYSTEM, file, "保有終了", at=T0 + timedelta(days=1))
    assert codes(service.status(db, file, T0 + timedelta(days=2))) == ["registry.file_ceased"]
    assert "registry.file_ceased" in codes(service.status(db, "reasons.item2",
                                                          T0 + timedelta(days=2)))
    assert service.get_file(db, "reasons").entry_deleted_at is not None


def test_my_number_is_refused_with_the_reason(db: Session) -> None:
    file = complete_file(db, "mn")
    for name in ("個人番号", "マイナンバー（個人番号）", "ﾏｲﾅﾝﾊﾞｰ"):
        with pytest.raises(InvalidInput) as refused:
            service.add_item(db, audit.SYSTEM, file, ItemCreate(key="mn.x", name_ja=name))
        assert refused.value.code == "registry.my_number_refused"
        assert "個人番号" in refused.value.reasons[0].message_ja
    with pytest.raises(InvalidInput):
        service.add_item(db, audit.SYSTEM, file, ItemCreate(key="mn.my_number", name_ja="番号"))
    with pytest.raises(InvalidInput):
        service.update_item(db, audit.SYSTEM, "mn.item1", ItemUpdate(name_ja="個人番号",
                                                                      reason="変更"))


def test_publication_names_every_missing_statutory_item(db: Session) -> None:
    from registry.schemas import FileCreate

    file = service.create_file(db, audit.SYSTEM, FileCreate(key="draft", name="下書き",
                                                             organ="mayor"))
    with pytest.raises(InvalidInput) as refused:
        service.publish(db, audit.SYSTEM, file, "公表")
    fields = {r.field for r in refused.value.reasons}
    assert fields == {"department", "purpose", "items", "record_scope", "collection_method",
                      "regular_recipients", "request_office_name", "request_office_address",
                      "special_procedure", "file_type", "persons_count"}
    purpose = next(r for r in refused.value.reasons if r.field == "purpose")
    assert "「個人情報ファイルの利用目的」" in purpose.message_ja
    assert file.published_version is None


def test_every_change_is_a_version_with_who_and_why_and_an_audit_event(db: Session) -> None:
    actor = audit.Actor("staff", 4242, "privacy_officer", None)
    before = db.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc())).first()
    start = before.seq if before else 0
    file = complete_file(db, "hist", at=T0)
    service.update_file(db, actor, file, FileUpdate(persons_count=2000, reason="年度更新"),
                        at=T0 + timedelta(hours=1))
    service.publish(db, actor, file, "公表", at=T0 + timedelta(hours=2))
    service.retire_item(db, actor, "hist.item2", "不要になった", at=T0 + timedelta(hours=3))
    versions = service.history(db, file)
    assert [v.version for v in versions] == list(range(1, 7))
    assert [v.action for v in versions] == ["file_created", "item_added", "item_added",
                                           "file_edited", "entry_published", "item_retired"]
    assert versions[3].actor_id == 4242 and versions[3].reason == "年度更新"
    assert versions[5].item_key == "hist.item2"
    assert service.version_snapshot(db, file, 3)["persons_count"] == 1500
    assert service.version_snapshot(db, file, 4)["persons_count"] == 2000
    events = db.exec(select(AuditEvent).where(AuditEvent.seq > start)
                     .order_by(col(AuditEvent.seq))).all()
    assert [e.action for e in events] == [f"registry.{v.action}" for v in versions]
    assert all(audit.decode_details(e)["key"] == "hist" for e in events)
    # audit details carry ids and codes, never the file's text
    assert not any("利用目的" in e.details or "年度更新" in e.details for e in events)


def _principal(role: Role, organ_id: int) -> Principal:
    return Principal(account_id=1, login="x", display_name="x", token_version=1,
                     grants=(Grant(role=role, organ_id=organ_id),))


def test_data_holders_edit_only_their_organ_and_never_publish(db: Session) -> None:
    mayor = db.exec(select(Organ).where(Organ.key == "mayor")).one()
    boe = db.exec(select(Organ).where(Organ.key == "board_of_education")).one()
    assert mayor.id is not None and boe.id is not None
    file = complete_file(db, "scoped")
    holder = _principal(Role.data_holder, mayor.id)
    service.update_file(db, holder, file, FileUpdate(persons_count=1700, reason="更新"))
    with pytest.raises(Forbidden) as refused:
        service.publish(db, holder, file, "公表")
    assert refused.value.code == "registry.publish_role"
    other = _principal(Role.data_holder, boe.id)
    with pytest.raises(Forbidden) as refused:
        service.update_file(db, other, file, FileUpdate(persons_count=1, reason="x"))
    assert refused.value.code == "registry.not_your_organ"
    officer = _principal(Role.privacy_officer, mayor.id)
    service.publish(db, officer, file, "公表")
    assert file.published_version == file.version


def test_department_must_belong_to_the_organ_and_withholding_needs_a_reason(db: Session) -> None:
    file = complete_file(db, "checks")
    with pytest.raises(InvalidInput) as refused:
        service.update_file(db, audit.SYSTEM, file, FileUpdate(department="school_affairs",
                                                               reason="x"))
    assert refused.value.code == "registry.department_outside_organ"
    db.rollback()
    file = complete_file(db, "checks2")
    with pytest.raises(InvalidInput) as refused:
        service.update_file(db, audit.SYSTEM, file, FileUpdate(withhold_recipients=True,
                                                               reason="x"))
    assert refused.value.code == "registry.withheld_reason_required"


def test_overdue_entries_feed_the_todo_panel(db: Session) -> None:
    from registry.routes import todo_provider

    complete_file(db, "late", 3000, at=T0, held_since=T0)
    found = service.overdue_entries(db, T0 + timedelta(days=10))
    assert [(o.key, o.kind) for o in found if o.key == "late"] == [("late", "create_entry")]
    mayor = db.exec(select(Organ).where(Organ.key == "mayor")).one()
    panels = todo_provider(db, _principal(Role.privacy_officer, mayor.id or 0))
    assert panels and any("late" in (i.href or "") and "施行令第20条第1項" in i.label_ja
                          for i in panels[0].items)
    assert todo_provider(db, _principal(Role.analyst, mayor.id or 0)) == []


@pytest.mark.parametrize(
    ("persons", "ordinance_extends", "ceased", "deletable"),
    [
        (18000, False, False, False),  # held and large: the entry must stay
        (1000, False, False, False),
        (999, False, False, True),  # 74(2)(ix)
        (999, True, False, False),  # the ordinance extends the 簿 below 1,000
        (None, False, False, False),  # unknown count: fail closed
        (18000, False, True, True),  # no longer held
    ],
)
def test_entry_deletion_only_where_the_law_allows(
        db: Session, persons: int | None, ordinance_extends: bool, ceased: bool,
        deletable: bool) -> None:
    """施行令 20(4): the entry goes only when the file is no longer held or falls under
    74(2)(ix); anything else is refused with the reason and nothing changes."""
    assert rules.entry_deletion_allowed(ceased, persons,
                                        ordinance_extends=ordinance_extends) is deletable
    file = complete_file(db, "del", 1500, at=T0)
    service.publish(db, audit.SYSTEM, file, "公表", at=T0)
    file.persons_count = persons
    file.ordinance_extends = ordinance_extends
    if ceased:
        file.ceased_at = T0 + timedelta(hours=1)  # ceased, its entry kept (cease_file(…, False))
    db.add(file)
    db.flush()
    if deletable:
        service.delete_entry(db, audit.SYSTEM, "del", "削除", at=T0 + timedelta(hours=2))
        assert service.get_file(db, "del").entry_deleted_at is not None
        return
    with pytest.raises(Conflict) as refused:
        service.delete_entry(db, audit.SYSTEM, "del", "削除", at=T0 + timedelta(hours=2))
    assert refused.value.code == "registry.entry_still_required"
    assert "施行令第20条第4項" in refused.value.reasons[0].message_ja
    assert "20(4)" in refused.value.reasons[0].message_en
    assert service.get_file(db, "del").entry_deleted_at is None
