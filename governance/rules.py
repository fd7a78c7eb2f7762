"""Pure rules of the centre: purpose completeness, route derivation, the four conditions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core import messages
from core.clock import as_utc
from core.policies import Policy
from core.reasons import Reason
from governance.models import Basis, Recurrence, RouteKind, SubjectRole

SAFEGUARD_CATEGORIES = ("organisational", "human", "physical", "technical")
REQUIRED_SUBJECT_ROLES = (
    SubjectRole.overall,
    SubjectRole.holding,
    SubjectRole.analysis,
    SubjectRole.use,
)

messages.register(
    {
        "governance.missing_title": ("名称が入力されていません。", "The title is missing."),
        "governance.missing_purpose_text": (
            "利用目的の本文が入力されていません。",
            "The purpose text is missing.",
        ),
        "governance.missing_citation": (
            "事務の根拠となる法令・条例の条項が1つも引用されていません（法第61条第1項）。",
            "No statute or ordinance article establishing the task is cited (Art. 61(1)).",
        ),
        "governance.missing_necessity": (
            "必要性（連携が必要な理由）が入力されていません。",
            "The necessity (why linkage is needed) is missing.",
        ),
        "governance.missing_acquisition_note": (
            "新たに取得する場合は、取得時の利用目的の明示（法第62条）を記載してください。",
            "For new collection, describe how the purpose is stated before capture (Art. 62).",
        ),
        "governance.missing_handling": (
            "取扱い方法の「{part}」が入力されていません。",
            "The handling method's {part_en} is missing.",
        ),
        "governance.missing_safeguard": (
            "安全管理措置（{category}）が1つも選択されていません。",
            "No {category_en} safeguard is checked.",
        ),
        "governance.missing_public_notice": (
            "住民周知の方法が1つも記載されていません。",
            "No public notice (住民周知) is described.",
        ),
        "governance.missing_subjects_rule": (
            "対象者（誰についての利用目的か）が定められていません。",
            "The subjects (who the purpose is about) are not defined.",
        ),
        "governance.bad_subjects_rule": (
            "対象者の年齢範囲が正しくありません（{detail}）。",
            "The subjects' age range is not valid ({detail}).",
        ),
        "governance.missing_subject_role": (
            "取り扱う主体に「{role}」がありません。",
            "No handling subject has the role {role_en}.",
        ),
        "governance.missing_items": (
            "情報項目が1つも選ばれていません。",
            "No data item is selected.",
        ),
        "governance.item_missing_necessity": (
            "情報項目「{item}」の必要性が入力されていません（法第61条第2項）。",
            "Item {item} has no necessity reason (Art. 61(2)).",
        ),
        "governance.item_missing_relevance": (
            "情報項目「{item}」と、こども・家庭の困難との関連が入力されていません。",
            "Item {item} has no relevance to the difficulties of the child or family.",
        ),
        "governance.recurring_one_off": (
            "恒常的な利用は臨時的な目的外利用・提供（法第69条第2項）では認められません。"
            "利用目的の変更（法第61条第3項）として登録してください。",
            "Recurring use cannot go through one-off out-of-purpose use (Art. 69(2)); "
            "register it as a change of purpose (Art. 61(3)).",
        ),
        "governance.change_needs_recurring": (
            "利用目的の変更は恒常的な利用のためのものです。臨時的な利用には法第69条第2項の"
            "経路を使ってください。",
            "A change of purpose is for recurring use; use an Art. 69(2) route for one-off use.",
        ),
        "governance.provision_to_private_body": (
            "「{body}」は行政機関等ではないため、法第69条第2項第3号の提供はできません。"
            "本人同意（第1号）、統計・学術研究（第4号）または法令に基づく提供を検討してください。",
            "{body_en} is not a public body, so Art. 69(2)(iii) provision is not possible; "
            "consider consent (i), statistics or research (iv), or a legal obligation.",
        ),
        "governance.within_purpose_other_body": (
            "ファイルの利用目的内の利用は、ファイルを保有する機関の内部でのみ認められます。",
            "Use within the file's purpose is possible only inside the organ holding the file.",
        ),
        "governance.missing_reasoning": (
            "{what}の理由が記載されていません。",
            "The reasoning for {what_en} is missing.",
        ),
        "governance.missing_law_citation": (
            "根拠となる法令の条項が記載されていません。",
            "The article of law relied on is missing.",
        ),
        "governance.condition_not_met": (
            "{condition}が満たされていません（はい、と理由の記載が必要です）。",
            "The condition {condition_en} is not met (it needs yes and written reasoning).",
        ),
        "governance.period_unbounded": (
            "臨時的な利用には開始日と終了日が必要です。",
            "One-off use needs a start and an end date.",
        ),
        "governance.period_too_long": (
            "臨時的な利用の期間が長すぎます（{days}日、上限{max_days}日）。恒常的な利用であれば"
            "利用目的の変更として登録してください。",
            "The one-off period is too long ({days} days; at most {max_days}). If the use "
            "recurs, register a change of purpose.",
        ),
        "governance.period_reversed": (
            "終了日が開始日より前です。",
            "The end date is before the start date.",
        ),
        "governance.runs_out_of_range": (
            "実行回数は1回以上{max_runs}回以下にしてください。",
            "The number of runs must be between 1 and {max_runs}.",
        ),
        "governance.item_beyond_purpose": (
            "情報項目「{item}」は利用目的で必要性が示された項目ではありません（必要な限度を超えます）。",
            "Item {item} is not among the purpose's justified items (beyond the necessary extent).",
        ),
        "governance.missing_recipient_citation": (
            "提供先（利用する機関）の所掌事務の根拠条項が記載されていません。",
            "The article establishing the recipient's task is missing.",
        ),
        "governance.repeated_one_off": (
            "同じ利用目的・提供元・提供先の臨時的な利用が{months}か月以内に既に承認されています"
            "（{other}）。繰り返す利用は利用目的の変更（法第61条第3項）として登録してください。",
            "A one-off use with the same purpose, source and recipient was already authorised "
            "within {months} months ({other}). Recurring use must be a change of purpose "
            "(Art. 61(3)).",
        ),
    }
)

_HANDLING_PARTS = {
    "extraction": ("抽出方法", "extraction"),
    "matching_key": ("突合キー", "matching key"),
    "logic": ("分析・判定ロジック", "analysis or scoring logic"),
    "result_viewers": ("結果を閲覧する者", "who sees the results"),
    "human_assessment": ("人によるアセスメント", "human assessment step"),
}
_SAFEGUARD_NAMES = {
    "organisational": ("組織的", "organisational"),
    "human": ("人的", "human"),
    "physical": ("物理的", "physical"),
    "technical": ("技術的", "technical"),
}
_ROLE_NAMES = {
    SubjectRole.overall: ("総括管理主体", "overall management"),
    SubjectRole.holding: ("保有・管理主体", "holding"),
    SubjectRole.analysis: ("分析主体", "analysis"),
    SubjectRole.use: ("活用主体", "use"),
}
_CONDITIONS = {
    "is_temporary": ("臨時的であること", "temporary (臨時的)"),
    "within_necessary_extent": ("必要な限度であること", "within the necessary extent"),
    "substantial_reason": ("相当の理由があること", "substantial reason (相当の理由)"),
    "no_undue_infringement": (
        "本人又は第三者の権利利益を不当に侵害するおそれがないこと",
        "no risk of undue infringement of rights and interests",
    ),
}


def _reason(code: str, field_name: str | None = None, **params: Any) -> Reason:
    return Reason.of(code, field=field_name, **params)


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


@dataclass(frozen=True)
class PurposeFacts:
    """What completeness needs to know about one purpose version."""

    title_ja: str
    purpose_text: str
    citations: int
    necessity: str
    acquisition_method: str
    acquisition_note: str
    handling: Mapping[str, str]
    safeguards: Mapping[str, Sequence[str]]
    public_notice: Mapping[str, str]
    subjects_rule: Mapping[str, object]
    subject_roles: frozenset[SubjectRole]
    # (item key, necessity reason, relevance to the difficulty)
    items: Sequence[tuple[str, str, str]] = field(default_factory=tuple)


def parse_json_object(text: str) -> dict[str, object]:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


def subjects_rule_problem(rule: Mapping[str, object]) -> str | None:
    """None when the age rule is usable; else what is wrong with it."""
    low, high = rule.get("min_age"), rule.get("max_age")
    if not isinstance(low, int) or not isinstance(high, int):
        return "min_age and max_age must be whole numbers"
    if low < 0 or high > 120:
        return "ages must lie between 0 and 120"
    if low > high:
        return "min_age is above max_age"
    return None


def completeness(facts: PurposeFacts) -> list[Reason]:
    """Every missing element of a purpose record (LAW.md §3.2), each named."""
    reasons: list[Reason] = []
    if _blank(facts.title_ja):
        reasons.append(_reason("governance.missing_title", "title_ja"))
    if _blank(facts.purpose_text):
        reasons.append(_reason("governance.missing_purpose_text", "purpose_text"))
    if facts.citations < 1:
        reasons.append(_reason("governance.missing_citation", "citations"))
    if _blank(facts.necessity):
        reasons.append(_reason("governance.missing_necessity", "necessity"))
    if facts.acquisition_method != "reuse" and _blank(facts.acquisition_note):
        reasons.append(_reason("governance.missing_acquisition_note", "acquisition_note"))
    for part, (ja, en) in _HANDLING_PARTS.items():
        if _blank(facts.handling.get(part)):
            reasons.append(
                _reason("governance.missing_handling", f"handling_{part}", part=ja, part_en=en)
            )
    for category in SAFEGUARD_CATEGORIES:
        if not facts.safeguards.get(category):
            ja, en = _SAFEGUARD_NAMES[category]
            reasons.append(
                _reason(
                    "governance.missing_safeguard",
                    f"safeguards.{category}",
                    category=ja,
                    category_en=en,
                )
            )
    if not any(not _blank(v) for v in facts.public_notice.values()):
        reasons.append(_reason("governance.missing_public_notice", "public_notice"))
    if not facts.subjects_rule:
        reasons.append(_reason("governance.missing_subjects_rule", "subjects_rule"))
    else:
        problem = subjects_rule_problem(facts.subjects_rule)
        if problem:
            reasons.append(_reason("governance.bad_subjects_rule", "subjects_rule", detail=problem))
    for role in REQUIRED_SUBJECT_ROLES:
        if role not in facts.subject_roles:
            ja, en = _ROLE_NAMES[role]
            reasons.append(
                _reason("governance.missing_subject_role", "subjects", role=ja, role_en=en)
            )
    if not facts.items:
        reasons.append(_reason("governance.missing_items", "items"))
    for key, necessity, relevance in facts.items:
        if _blank(necessity):
            reasons.append(
                _reason(
                    "governance.item_missing_necessity", f"items.{key}.necessity_reason", item=key
                )
            )
        if _blank(relevance):
            reasons.append(
                _reason(
                    "governance.item_missing_relevance",
                    f"items.{key}.relevance_to_difficulty",
                    item=key,
                )
            )
    return reasons


@dataclass(frozen=True)
class Recipient:
    """Where the data goes: an organ of the city, or an outside body."""

    organ_id: int | None
    body_key: str | None = None
    body_name_ja: str = ""
    body_name_en: str = ""
    body_is_public: bool = False


def derive_route(
    basis: Basis, recurrence: Recurrence, from_organ_id: int, recipient: Recipient
) -> RouteKind | Reason:
    """The legal route follows from the basis and the two parties; it is never typed in."""
    same_organ = recipient.organ_id is not None and recipient.organ_id == from_organ_id
    if basis == Basis.one_off:
        if recurrence == Recurrence.recurring:
            return _reason("governance.recurring_one_off", "recurrence")
        if same_organ:
            return RouteKind.internal_use
        if recipient.organ_id is not None or recipient.body_is_public:
            return RouteKind.provision
        return _reason(
            "governance.provision_to_private_body",
            "recipient",
            body=recipient.body_name_ja,
            body_en=recipient.body_name_en,
        )
    if basis == Basis.purpose_change:
        if recurrence != Recurrence.recurring:
            return _reason("governance.change_needs_recurring", "recurrence")
        return RouteKind.purpose_change
    if basis == Basis.within_purpose:
        if not same_organ:
            return _reason("governance.within_purpose_other_body", "recipient")
        return RouteKind.within_purpose
    if basis == Basis.consent:
        return RouteKind.consent
    if basis == Basis.statistics:
        return RouteKind.statistics
    return RouteKind.law


def route_fields_problems(
    kind: RouteKind, reasoning: str, changed_purpose_text: str, law_citation: str
) -> list[Reason]:
    """What a route of this kind must carry in writing before it can be submitted."""
    reasons: list[Reason] = []
    if kind == RouteKind.within_purpose and _blank(reasoning):
        reasons.append(
            _reason(
                "governance.missing_reasoning",
                "reasoning",
                what="利用目的内であるとの判断",
                what_en="use within the purpose",
            )
        )
    if kind == RouteKind.purpose_change:
        if _blank(reasoning):
            reasons.append(
                _reason(
                    "governance.missing_reasoning",
                    "reasoning",
                    what="相当の関連性",
                    what_en="substantial relatedness",
                )
            )
        if _blank(changed_purpose_text):
            reasons.append(_reason("governance.missing_purpose_text", "changed_purpose_text"))
    if kind in (RouteKind.law, RouteKind.statistics) and _blank(law_citation):
        reasons.append(_reason("governance.missing_law_citation", "law_citation"))
    if kind == RouteKind.statistics and _blank(reasoning):
        reasons.append(
            _reason(
                "governance.missing_reasoning",
                "reasoning",
                what="統計・学術研究目的",
                what_en="statistics or research",
            )
        )
    return reasons


class GovernancePolicy(Policy, env_prefix="KODOMO_GOVERNANCE_"):
    """Configurable choices LAW.md marks [I]; the defaults are the conservative ones."""

    # A second one-off authorisation of the same pattern inside this window is refused.
    repeat_window_days: int = 365
    max_one_off_days: int = 180
    max_one_off_runs: int = 3


DEFAULT_POLICY = GovernancePolicy()


@dataclass(frozen=True)
class FourConditions:
    is_temporary: bool
    temporary_reasoning: str
    valid_from: datetime | None
    valid_until: datetime | None
    runs_allowed: int
    within_necessary_extent: bool
    necessity_reasoning: str
    substantial_reason: bool
    substantial_reasoning: str
    recipient_task_citation: str
    no_undue_infringement: bool
    infringement_reasoning: str


def four_condition_problems(
    conditions: FourConditions,
    route_item_keys: Iterable[str],
    purpose_item_keys: frozenset[str],
    policy: GovernancePolicy = DEFAULT_POLICY,
) -> list[Reason]:
    """Each of the four conditions, checked on its own (LAW.md §4.3)."""
    reasons: list[Reason] = []
    pairs = {
        "is_temporary": (conditions.is_temporary, conditions.temporary_reasoning),
        "within_necessary_extent": (
            conditions.within_necessary_extent,
            conditions.necessity_reasoning,
        ),
        "substantial_reason": (conditions.substantial_reason, conditions.substantial_reasoning),
        "no_undue_infringement": (
            conditions.no_undue_infringement,
            conditions.infringement_reasoning,
        ),
    }
    for name, (answer, reasoning) in pairs.items():
        if not answer or _blank(reasoning):
            ja, en = _CONDITIONS[name]
            reasons.append(
                _reason("governance.condition_not_met", name, condition=ja, condition_en=en)
            )
    # 臨時的: a bounded period and number of runs.
    if conditions.valid_from is None or conditions.valid_until is None:
        reasons.append(_reason("governance.period_unbounded", "valid_until"))
    else:
        start, end = as_utc(conditions.valid_from), as_utc(conditions.valid_until)
        if end < start:
            reasons.append(_reason("governance.period_reversed", "valid_until"))
        elif end - start > timedelta(days=policy.max_one_off_days):
            reasons.append(
                _reason(
                    "governance.period_too_long",
                    "valid_until",
                    days=(end - start).days,
                    max_days=policy.max_one_off_days,
                )
            )
    if not 1 <= conditions.runs_allowed <= policy.max_one_off_runs:
        reasons.append(
            _reason(
                "governance.runs_out_of_range", "runs_allowed", max_runs=policy.max_one_off_runs
            )
        )
    # 必要な限度: every item must be one the purpose justified.
    for key in sorted(set(route_item_keys) - purpose_item_keys):
        reasons.append(_reason("governance.item_beyond_purpose", "items", item=key))
    # 相当の理由: the recipient's task must be cited.
    if _blank(conditions.recipient_task_citation):
        reasons.append(_reason("governance.missing_recipient_citation", "recipient_task_citation"))
    return reasons


def repeats_within_window(
    previous_approvals: Iterable[tuple[str, datetime]],
    at: datetime,
    policy: GovernancePolicy = DEFAULT_POLICY,
) -> str | None:
    """The key of an earlier approved one-off authorisation of the same pattern in the window."""
    window = timedelta(days=policy.repeat_window_days)
    for key, approved_at in previous_approvals:
        if as_utc(at) - as_utc(approved_at) < window:
            return key
    return None
