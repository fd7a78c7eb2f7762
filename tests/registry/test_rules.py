"""The register's pure rules as table tests (LAW.md §7)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.settings import SettingsError
from registry import rules
from registry.rules import EntryFacts, RegistryPolicy

T0 = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)  # Wednesday 12:00 in Tokyo


@pytest.mark.parametrize(
    ("persons", "ordinance", "exclusion", "required"),
    [
        (999, False, None, False),
        (1000, False, None, True),
        (1001, False, None, True),
        (0, False, None, False),
        (999, True, None, True),  # an ordinance extends publication below 1,000
        (1000, False, "74_2_iii", False),  # an exclusion applies
        (50_000, True, "75_2_covered", False),
        (None, False, None, True),  # unknown count: fail closed
        (None, False, "74_2_vi", False),
    ],
)
def test_publication_required(persons: int | None, ordinance: bool, exclusion: str | None,
                              required: bool) -> None:
    assert rules.publication_required(persons, ordinance_extends=ordinance,
                                      exclusion=exclusion) is required


@given(st.integers(min_value=0, max_value=10_000_000), st.booleans())
def test_publication_threshold_property(persons: int, ordinance: bool) -> None:
    required = rules.publication_required(persons, ordinance_extends=ordinance)
    assert required == (persons >= 1000 or ordinance)
    # No exclusion code ever leaves publication required.
    for code in rules.EXCLUSIONS:
        assert not rules.publication_required(persons, ordinance_extends=ordinance,
                                              exclusion=code)


@pytest.mark.parametrize(
    ("changed", "updated", "pending", "stale"),
    [
        (T0, None, None, False),  # no entry yet: nothing to be stale
        (T0, T0, None, False),  # updated at the same moment as the change
        (T0, T0 + timedelta(seconds=1), None, False),
        (T0 + timedelta(seconds=1), T0, None, True),  # changed after the entry was updated
        (T0, T0 + timedelta(days=1), T0 + timedelta(days=2), True),  # a recorded change pends
        (T0, None, T0, True),
    ],
)
def test_staleness(changed: datetime, updated: datetime | None, pending: datetime | None,
                   stale: bool) -> None:
    assert rules.is_stale(changed, updated, pending) is stale


# The change plus ten years must stay a date Python can hold.
@given(st.datetimes(max_value=datetime(9000, 1, 1), timezones=st.just(UTC)),
       st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
def test_an_entry_updated_after_the_change_is_never_stale(changed: datetime,
                                                           gap: timedelta) -> None:
    assert not rules.is_stale(changed, changed + gap)
    if gap:
        assert rules.is_stale(changed + gap, changed)


def test_stale_blocks_at_once_by_default() -> None:
    assert RegistryPolicy().stale_blocks == "at_once"
    assert rules.stale_blocks_use(T0, T0)


def test_stale_blocks_after_the_allowance_when_configured() -> None:
    policy = RegistryPolicy(stale_blocks="after_allowance", immediate_days=1)
    assert not rules.stale_blocks_use(T0, T0, policy)
    assert not rules.stale_blocks_use(T0, T0 + timedelta(days=1), policy)  # Thursday: due day
    assert rules.stale_blocks_use(T0, T0 + timedelta(days=2), policy)


@pytest.mark.parametrize(
    ("start", "days", "closed", "due"),
    [
        (T0, 1, frozenset(), date(2026, 4, 2)),  # first day not counted
        (T0, 2, frozenset(), date(2026, 4, 3)),
        (T0, 3, frozenset(), date(2026, 4, 6)),  # Saturday 4/4 moves to Monday 4/6
        (T0, 1, frozenset({date(2026, 4, 2)}), date(2026, 4, 3)),  # a municipal closed day
        (T0, 14, frozenset(), date(2026, 4, 15)),
        (datetime(2026, 4, 1, 16, 0, tzinfo=UTC), 1, frozenset(), date(2026, 4, 3)),  # Tokyo 4/2
        # the municipal calendar: 年末年始 and 元日, Golden Week with its 振替休日
        (datetime(2026, 11, 29, 1, tzinfo=UTC), 30, frozenset(), date(2027, 1, 4)),
        (datetime(2026, 12, 25, 1, tzinfo=UTC), 14, frozenset(), date(2027, 1, 8)),
        (datetime(2026, 4, 28, 1, tzinfo=UTC), 1, frozenset(), date(2026, 4, 30)),  # 4/29 祝日
        (datetime(2026, 5, 1, 1, tzinfo=UTC), 1, frozenset(), date(2026, 5, 7)),
        # KODOMO_REGISTRY_CLOSED_DATES still adds its dates to the calendar's
        (datetime(2026, 12, 24, 1, tzinfo=UTC), 1, frozenset({date(2026, 12, 25)}),
         date(2026, 12, 28)),
    ],
)
def test_due_date(start: datetime, days: int, closed: frozenset[date], due: date) -> None:
    assert rules.due_date(start, days, RegistryPolicy(closed_dates=closed)) == due


def _facts(**changes: object) -> EntryFacts:
    base: dict[str, object] = dict(
        key="f", name="ファイル", held_since=T0, created_at=T0, publication_required=True,
        entry_created_at=None, last_changed_at=T0, entry_updated_at=None,
        pending_change_at=None, ceased_at=None, entry_deleted_at=None, published=False)
    base.update(changes)
    return EntryFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "at", "kinds"),
    [
        (_facts(), T0 + timedelta(days=1), []),  # due today, not yet overdue
        (_facts(), T0 + timedelta(days=2), ["create_entry"]),
        (_facts(publication_required=False), T0 + timedelta(days=30), []),
        (_facts(entry_created_at=T0, entry_updated_at=T0, published=True,
                last_changed_at=T0 + timedelta(days=1)),
         T0 + timedelta(days=3), ["correct_entry"]),
        (_facts(entry_created_at=T0, entry_updated_at=T0, published=True,
                ceased_at=T0 + timedelta(days=1)),
         T0 + timedelta(days=30), ["delete_entry"]),
        (_facts(entry_created_at=T0, entry_updated_at=T0, published=True,
                ceased_at=T0, entry_deleted_at=T0), T0 + timedelta(days=30), []),
        (_facts(entry_created_at=T0, entry_updated_at=T0, published=True,
                publication_required=False), T0 + timedelta(days=30), ["delete_entry"]),
    ],
)
def test_overdue(facts: EntryFacts, at: datetime, kinds: list[str]) -> None:
    assert [o.kind for o in rules.overdue(facts, at)] == kinds


def test_missing_statutory_items_name_every_item() -> None:
    missing = rules.missing_statutory_items({})
    fields = {m.field for m in missing}
    assert fields == {s.field for s in rules.STATUTORY_ITEMS} - {"special_care"}
    complete: dict[str, object] = {s.field: "x" for s in rules.STATUTORY_ITEMS}
    complete.update(items=3, special_procedure=False)
    assert rules.missing_statutory_items(complete) == []
    assert [m.field for m in rules.missing_statutory_items({**complete, "purpose": "  "})] == [
        "purpose"]
    assert [m.field for m in rules.missing_statutory_items({**complete, "items": 0})] == ["items"]


@pytest.mark.parametrize(
    ("texts", "refused"),
    [
        (("個人番号",), True),
        (("マイナンバー",), True),
        (("ﾏｲﾅﾝﾊﾞｰ",), True),  # half-width katakana folds to マイナンバー
        (("my_number",), True),
        (("My Number",), True),
        (("x", "kojin_bango"), True),
        (("ＭＹＮＵＭＢＥＲ",), True),
        (("団体内統合宛名番号",), False),
        (("住民票コード",), False),
        (("氏名", "Name", "text"), False),
    ],
)
def test_my_number_detection(texts: tuple[str, ...], refused: bool) -> None:
    assert rules.is_my_number(*texts) is refused


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=12),
       st.booleans(), st.booleans())
def test_withheld_things_never_reach_a_public_entry(flags: list[tuple[bool, bool]],
                                                    hide_method: bool,
                                                    hide_recipients: bool) -> None:
    """Property: whatever is withheld (items, 74(1)(v), (vii)) is absent from the public entry;
    retired items are absent too; everything else is present."""
    from core.models import Organ, OrganKind
    from registry import service
    from registry.models import RegistryFile

    items: list[dict[str, Any]] = [
        {"key": f"i{n}", "name_ja": f"項目{n}号", "name_en": "", "withheld": withheld,
         "status": "retired" if retired else "active", "special_care": [],
         "ordinance_special_care": False} for n, (withheld, retired) in enumerate(flags)]
    snap = {"key": "f", "name": "ファイル", "department": None, "purpose": "目的",
            "record_scope": "範囲", "collection_method": "秘密の方法",
            "withhold_collection_method": hide_method, "regular_recipients": "秘密の提供先",
            "withhold_recipients": hide_recipients, "request_office_name": "課",
            "request_office_address": "所", "special_procedure": False,
            "special_procedure_note": "", "file_type": "computer", "persons_count": 1000,
            "items": items}
    entry = service.public_entry(snap, RegistryFile(key="f", name="ファイル", organ_id=1,
                                                     published_version=1),
                                  Organ(id=1, key="mayor", municipality_id=1,
                                        kind=OrganKind.mayor, name_ja="市長", name_en="Mayor"),
                                  {})
    text = entry.model_dump_json()
    for item in items:
        shown = not item["withheld"] and item["status"] == "active"
        assert (f'"{item["name_ja"]}"' in text) is shown
    assert ("秘密の方法" in text) is not hide_method
    assert ("秘密の提供先" in text) is not hide_recipients


def test_the_documented_variables_set_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODOMO_REGISTRY_IMMEDIATE_DAYS", "2")
    monkeypatch.setenv("KODOMO_REGISTRY_WITHOUT_DELAY_DAYS", "10")
    monkeypatch.setenv("KODOMO_REGISTRY_STALE_BLOCKS", "after_allowance")
    monkeypatch.setenv("KODOMO_REGISTRY_CLOSED_DATES", '["2026-12-29", "2026-12-30"]')
    assert RegistryPolicy.from_environment() == RegistryPolicy(
        immediate_days=2, without_delay_days=10, stale_blocks="after_allowance",
        closed_dates=frozenset({date(2026, 12, 29), date(2026, 12, 30)}))


def test_a_bad_registry_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODOMO_REGISTRY_STALE_BLOCKS", "later")
    with pytest.raises(SettingsError, match="KODOMO_REGISTRY_STALE_BLOCKS"):
        RegistryPolicy.from_environment()
