"""Pure rules of the register (LAW.md §7): publication, staleness, deadlines, statutory items.

No I/O here: every function takes plain values, so the rules are table-tested on their own.
Where LAW.md marks a rule [I] (a design inference) it is a field of `RegistryPolicy` with the
conservative default, not a hard-coded law.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, Literal

from core.clock import local_day
from core.mynumber import names_my_number
from core.periods import DEFAULT_CALENDAR, MunicipalCalendar, deadline
from core.policies import Policy, rule

# 施行令 on 74(2)(ix): files with fewer persons than this need not be published [S].
PUBLICATION_THRESHOLD = 1000

# Exclusions from the 簿 (75(2)): 74(2)(i)–(viii), (x), a file inside an already published one,
# and files set by 政令. 74(2)(ix) (fewer than 1,000 persons) is the count rule itself.
EXCLUSIONS: dict[str, str] = {
    "74_2_i": "法第74条第2項第1号（国の安全等に関する事項を記録するもの）",
    "74_2_ii": "法第74条第2項第2号（犯罪の捜査等のために作成・取得するもの）",
    "74_2_iii": "法第74条第2項第3号（職員の人事・給与等に関するもの）",
    "74_2_iv": "法第74条第2項第4号（専ら試験的な電子計算機処理の用に供するもの）",
    "74_2_v": "法第74条第2項第5号（公表済みファイルの一部を記録したもの）",
    "74_2_vi": "法第74条第2項第6号（1年以内に消去するもの）",
    "74_2_vii": "法第74条第2項第7号（資料等の送付のため氏名・住所等のみを記録するもの）",
    "74_2_viii": "法第74条第2項第8号（職員が学術研究の用に供するもの）",
    "74_2_x": "法第74条第2項第10号（前各号に準ずるものとして政令で定めるもの）",
    "75_2_covered": "法第75条第2項第2号"
                    "（公表済みファイルに利用目的・記録項目・記録範囲が含まれるもの）",
    "75_2_order": "法第75条第2項第3号（政令で定めるもの）",
}


class RegistryPolicy(Policy, env_prefix="KODOMO_REGISTRY_"):
    """Configurable policy; every default is the conservative reading of LAW.md §7."""

    title_ja: ClassVar[str] = "個人情報ファイル簿"
    title_en: ClassVar[str] = "register of personal information files"

    # The law gives no number for 直ちに / 遅滞なく; the first day is not counted and closed days
    # move the deadline.
    immediate_days: int = rule(
        1, ge=0, marker="I", basis="施行令20条1項・3項（直ちに）; LAW.md §7",
        ja="「直ちに」の日数（ファイル簿の作成・修正）",
        en="days allowed for 直ちに (create or correct an entry)")
    without_delay_days: int = rule(
        14, ge=0, marker="I", basis="施行令20条4項・5項（遅滞なく）; LAW.md §7",
        ja="「遅滞なく」の日数（ファイル簿の削除・公表）",
        en="days allowed for 遅滞なく (delete or publish an entry)")
    stale_blocks: Literal["at_once", "after_allowance"] = rule(
        "at_once", marker="I", basis="施行令20条3項; LAW.md §7 (Rules)",
        ja="ファイル簿が古いとき利用を止める時期",
        en="when a stale register entry blocks use",
        choices={"at_once": "直ちに止める", "after_allowance": "「直ちに」の日数の後に止める"})
    publication_threshold: int = rule(
        PUBLICATION_THRESHOLD, ge=1, marker="S", basis="法75条2項・74条2項9号、施行令（1,000人）",
        ja="ファイル簿の公表が必要となる本人の数",
        en="persons from which an entry must be published")
    closed_dates: frozenset[date] = rule(
        frozenset(), marker="R", basis="地方自治法4条の2（休日条例）; 民法142条",
        ja="ファイル簿の期限で、市の休日（土日・祝日・年末年始・KODOMO_CALENDAR_CLOSED_DATES）のほかに数えない日",
        en="closed days of the register's deadlines besides the municipal calendar's")


DEFAULT_POLICY = RegistryPolicy()


# ---------------------------------------------------------------- publication


def publication_required(
    persons_count: int | None,
    *,
    ordinance_extends: bool = False,
    exclusion: str | None = None,
    threshold: int = PUBLICATION_THRESHOLD,
) -> bool:
    """75(1)/(2): publish when ≥ threshold persons or an ordinance extends it, and no exclusion.

    An unknown count is treated as "required" (fail closed) unless an exclusion applies.
    """
    if exclusion:
        return False
    if ordinance_extends:
        return True
    if persons_count is None:
        return True
    return persons_count >= threshold


def entry_deletion_allowed(
    ceased: bool,
    persons_count: int | None,
    *,
    ordinance_extends: bool = False,
    threshold: int = PUBLICATION_THRESHOLD,
) -> bool:
    """施行令 20(4): an entry is deleted only when the file is no longer held, or when it falls
    under 74(2)(ix) (fewer persons than the threshold, and no ordinance extends the 簿 to it).
    An unknown count never allows it (fail closed)."""
    if ceased:
        return True
    if ordinance_extends or persons_count is None:
        return False
    return persons_count < threshold


# ---------------------------------------------------------------- staleness


def is_stale(
    last_changed_at: datetime,
    entry_updated_at: datetime | None,
    pending_change_at: datetime | None = None,
) -> bool:
    """An entry is stale when the file changed after the entry was last updated.

    A file without an entry is stale only while a recorded change (record_change) is pending.
    """
    if pending_change_at is not None:
        return True
    if entry_updated_at is None:
        return False
    return last_changed_at > entry_updated_at


def stale_since(
    last_changed_at: datetime,
    entry_updated_at: datetime | None,
    pending_change_at: datetime | None = None,
) -> datetime | None:
    if not is_stale(last_changed_at, entry_updated_at, pending_change_at):
        return None
    moments = [last_changed_at]
    if pending_change_at is not None:
        moments.append(pending_change_at)
    return min(moments)


def stale_blocks_use(since: datetime, at: datetime, policy: RegistryPolicy = DEFAULT_POLICY,
                     cal: MunicipalCalendar = DEFAULT_CALENDAR) -> bool:
    """A stale entry blocks use at once (default) or once the 直ちに allowance has run out."""
    if policy.stale_blocks == "at_once":
        return True
    return local_day(at) > due_date(since, policy.immediate_days, policy, cal)


# ---------------------------------------------------------------- deadlines


def due_date(start: datetime, days: int, policy: RegistryPolicy = DEFAULT_POLICY,
             cal: MunicipalCalendar = DEFAULT_CALENDAR) -> date:
    """The last day of a period of `days` from `start` (民法140–141: Tokyo days, the first not
    counted); a deadline on a closed day of the municipal calendar, or on one of the register's
    own closed dates, moves to the next open day (地方自治法4条の2)."""
    return deadline(start, cal.with_closed_dates(policy.closed_dates), days=days)


@dataclass(frozen=True)
class EntryFacts:
    """What the deadline rules need to know about one file and its entry."""

    key: str
    name: str
    held_since: datetime | None
    created_at: datetime
    publication_required: bool
    entry_created_at: datetime | None
    last_changed_at: datetime
    entry_updated_at: datetime | None
    pending_change_at: datetime | None
    ceased_at: datetime | None
    entry_deleted_at: datetime | None
    published: bool


@dataclass(frozen=True)
class Overdue:
    key: str
    name: str
    kind: Literal["create_entry", "correct_entry", "delete_entry"]
    due: date


def overdue(facts: EntryFacts, at: datetime, policy: RegistryPolicy = DEFAULT_POLICY,
            cal: MunicipalCalendar = DEFAULT_CALENDAR) -> list[Overdue]:
    """Deadlines of 施行令 20 that have passed at `at` (Tokyo dates)."""
    today = local_day(at)
    found: list[Overdue] = []

    def add(kind: Literal["create_entry", "correct_entry", "delete_entry"], due: date) -> None:
        if today > due:
            found.append(Overdue(facts.key, facts.name, kind, due))

    entry_live = facts.entry_created_at is not None and facts.entry_deleted_at is None
    if facts.ceased_at is not None:
        if entry_live:  # 20(4): delete 遅滞なく once no longer held
            add("delete_entry",
                due_date(facts.ceased_at, policy.without_delay_days, policy, cal))
        return found
    if facts.publication_required and not facts.published:  # 20(1): create 直ちに
        add("create_entry", due_date(facts.held_since or facts.created_at,
                                     policy.immediate_days, policy, cal))
    elif entry_live and not facts.publication_required:
        # 20(4): an entry whose file fell under 74(2)(ix) is deleted 遅滞なく.
        add("delete_entry",
            due_date(facts.last_changed_at, policy.without_delay_days, policy, cal))
    since = stale_since(facts.last_changed_at, facts.entry_updated_at, facts.pending_change_at)
    if since is not None and (entry_live or facts.pending_change_at is not None):
        add("correct_entry", due_date(since, policy.immediate_days, policy, cal))  # 20(3)
    return found


# ---------------------------------------------------------------- statutory items


@dataclass(frozen=True)
class StatutoryItem:
    field: str
    label: str  # the item's name in the 簿, Japanese
    article: str


STATUTORY_ITEMS: tuple[StatutoryItem, ...] = (
    StatutoryItem("name", "個人情報ファイルの名称", "法第74条第1項第1号"),
    StatutoryItem("organ", "行政機関等の名称", "法第74条第1項第2号"),
    StatutoryItem("department", "個人情報ファイルが利用に供される事務をつかさどる組織の名称",
                  "法第74条第1項第2号"),
    StatutoryItem("purpose", "個人情報ファイルの利用目的", "法第74条第1項第3号"),
    StatutoryItem("items", "記録項目", "法第74条第1項第4号"),
    StatutoryItem("record_scope", "記録範囲", "法第74条第1項第4号"),
    StatutoryItem("collection_method", "記録情報の収集方法", "法第74条第1項第5号"),
    StatutoryItem("special_care", "要配慮個人情報が含まれるときは、その旨", "法第74条第1項第6号"),
    StatutoryItem("regular_recipients", "記録情報の経常的提供先", "法第74条第1項第7号"),
    StatutoryItem("request_office_name", "開示請求等を受理する組織の名称", "法第74条第1項第9号"),
    StatutoryItem("request_office_address", "開示請求等を受理する組織の所在地",
                  "法第74条第1項第9号"),
    StatutoryItem("special_procedure",
                  "訂正及び利用停止に関する他の法令の規定による特別の手続等",
                  "法第74条第1項第10号"),
    StatutoryItem("file_type", "個人情報ファイルの種別（電算処理ファイル／マニュアル処理ファイル）",
                  "施行令第20条第6項第1号"),
    StatutoryItem("persons_count", "本人の数", "法第74条第2項第9号・施行令"),
)
STATUTORY_LABELS: dict[str, StatutoryItem] = {s.field: s for s in STATUTORY_ITEMS}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def missing_statutory_items(entry: Mapping[str, Any]) -> list[StatutoryItem]:
    """The statutory items a file lacks before its entry may be published.

    `entry` maps the field names of STATUTORY_ITEMS to values; `items` is the number of active
    記録項目; `special_care` is derived from the items and never missing.
    """
    missing: list[StatutoryItem] = []
    for item in STATUTORY_ITEMS:
        if item.field == "special_care":
            continue
        value = entry.get(item.field)
        if item.field == "items":
            if not value:
                missing.append(item)
        elif _blank(value):
            missing.append(item)
    return missing


# ---------------------------------------------------------------- 個人番号

# A key, name or data type that names 個人番号 (My Number) is refused; the one table of its
# spellings is core.mynumber (個人番号カード's status is not the number itself, but a field so
# named invites the number, so it is refused too).
is_my_number = names_my_number


# ---------------------------------------------------------------- labels

SPECIAL_CARE_LABELS: dict[str, str] = {
    "race": "人種",
    "creed": "信条",
    "social_status": "社会的身分",
    "medical_history": "病歴",
    "criminal_record": "犯罪の経歴",
    "crime_victim": "犯罪により害を被った事実",
    "disability": "心身の機能の障害（施行令第2条第1号）",
    "health_check_result": "健康診断等の結果（施行令第2条第2号）",
    "medical_guidance": "医師等による指導・診療・調剤（施行令第2条第3号）",
    "criminal_procedure": "刑事事件に関する手続（施行令第2条第4号）",
    "juvenile_protection": "少年の保護事件に関する手続（施行令第2条第5号）",
}

FILE_TYPE_LABELS: dict[str, str] = {
    "computer": "電算処理ファイル（法第60条第2項第1号）",
    "manual": "マニュアル処理ファイル（法第60条第2項第2号）",
}

CATEGORY_LABELS: dict[str, str] = {
    "identity": "本人特定",
    "household": "世帯",
    "education": "教育",
    "childcare": "保育",
    "welfare": "福祉",
    "income": "所得・税",
    "health": "保健",
    "medical_flag": "医療機関からの情報",
    "administrative": "事務処理",
    "other": "その他",
}

NONDISCLOSURE_LABELS: dict[str, str] = {
    "requester_harm": "法第78条第1項第1号（本人の生命等を害するおそれ）",
    "child_safety_risk": "法第78条第1項第1号（こどもの安全に関わる情報）",
    "third_party": "法第78条第1項第2号（本人以外の個人に関する情報）",
    "reporter_identity": "法第78条第1項第2号（通告者・情報提供者）",
    "corporate": "法第78条第1項第3号（法人等に関する情報）",
    "assessment_opinion": "法第78条第1項第7号（評価・所見）",
    "investigation": "法第78条第1項第7号（調査・検査）",
}


def split_flags(text: str) -> list[str]:
    return sorted({part.strip() for part in text.split(",") if part.strip()})


def join_flags(values: list[str] | tuple[str, ...] | set[str] | frozenset[str]) -> str:
    return ",".join(sorted({v.strip() for v in values if v and v.strip()}))


    return None
