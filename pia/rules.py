"""Pure PIA rules: the threshold rule table, likelihood × impact scoring, workflow guards.

The threshold table follows the 特定個人情報保護評価 しきい値判断 (LAW.md §11.3: [S] rows and
[R] rows) plus the service's own rule [I] (§11.4) that any cross-organ linkage of children's
data is a full assessment. Rows marked [I] or [R] are policy, not law: the whole table is data
and can be replaced (`PiaPolicy.threshold_rules`), with the conservative default here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import field_validator

from core.policies import Policy, rule
from core.reasons import Reason
from pia.models import Level, Residual, SelfRating, Stage, State

LEVEL_ORDER: tuple[Level, ...] = (Level.none, Level.basic, Level.focused, Level.full)

LEVEL_LABELS: dict[str, str] = {
    Level.none: "評価不要（しきい値判断の記録のみ）",
    Level.basic: "基礎項目評価",
    Level.focused: "重点項目評価",
    Level.full: "全項目評価",
}
STAGE_LABELS: dict[str, str] = {
    Stage.acquisition: "入手",
    Stage.use: "使用",
    Stage.outsourcing: "委託",
    Stage.provision: "提供・移転",
    Stage.storage: "保管・消去",
    Stage.other: "その他",
}
SELF_RATING_LABELS: dict[str, str] = {
    SelfRating.focus: "特に力を入れている",
    SelfRating.sufficient: "十分である",
    SelfRating.issues: "課題が残されている",
}
RESIDUAL_LABELS: dict[str, str] = {
    Residual.low: "低い",
    Residual.medium: "中程度",
    Residual.high: "高い",
}
LIKELIHOOD_LABELS: dict[int, str] = {
    1: "まれ", 2: "起こりにくい", 3: "起こりうる", 4: "起こりやすい",
}
IMPACT_LABELS: dict[int, str] = {1: "軽微", 2: "中程度", 3: "重大", 4: "極めて重大"}
SCALE = (1, 2, 3, 4)
SAFEGUARD_LABELS: dict[str, str] = {
    "organisational": "組織的安全管理措置",
    "human": "人的安全管理措置",
    "physical": "物理的安全管理措置",
    "technical": "技術的安全管理措置",
}


# ---------------------------------------------------------------- threshold


@dataclass(frozen=True)
class ThresholdAnswers:
    """しきい値判断 (LAW.md §11.4): what the privacy officer answers for the purpose."""

    persons: int = 0  # persons in the files
    handlers: int = 0  # staff and contractor staff who handle the data
    serious_accident: bool = False  # 重大事故 within the past year
    special_care: bool = False  # 要配慮個人情報 is handled
    children: bool = False  # the persons include children
    cross_organ: bool = False  # data crosses organs (or leaves the municipality)
    scoring: bool = False  # scoring or profiling
    outsourcing: bool = False  # 委託 or cloud
    foreign_storage: bool = False  # stored abroad

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ThresholdAnswers:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


THRESHOLD_QUESTIONS: dict[str, str] = {
    "persons": "対象となる本人の数（ファイルに記録される人数）",
    "handlers": "取扱者数（職員及び委託先従業者）",
    "serious_accident": "過去1年以内に重大事故が発生した",
    "special_care": "要配慮個人情報を取り扱う",
    "children": "こどもの情報を取り扱う",
    "cross_organ": "機関をまたいで情報を連携する（外部機関への提供を含む）",
    "scoring": "スコアリング・プロファイリングを行う",
    "outsourcing": "委託又はクラウドサービスを利用する",
    "foreign_storage": "外国にある者に保管させる（外国のサーバを含む）",
}


@dataclass(frozen=True)
class ThresholdRule:
    """When every condition holds, the level is at least `level`.

    Conditions: a boolean answer's name mapped to the value it must have, or
    ``persons_min`` / ``persons_max`` / ``handlers_min`` / ``handlers_max`` (inclusive).
    """

    name: str
    when: Mapping[str, Any]
    level: Level
    basis: str = ""

    def __str__(self) -> str:
        """The row as the policies page shows it: its basis and the level it requires."""
        level = self.level.value if isinstance(self.level, Level) else str(self.level)
        return f"{self.basis or self.name} → {LEVEL_LABELS.get(level, level)}"

    def matches(self, answers: ThresholdAnswers) -> bool:
        for key, wanted in self.when.items():
            if key.endswith("_min"):
                if getattr(answers, key[:-4]) < wanted:
                    return False
            elif key.endswith("_max"):
                if getattr(answers, key[:-4]) > wanted:
                    return False
            elif getattr(answers, key) != wanted:
                return False
        return True


DEFAULT_THRESHOLD_RULES: tuple[ThresholdRule, ...] = (
    ThresholdRule("children_cross_organ", {"children": True, "cross_organ": True}, Level.full,
                  "こどものデータの機関間連携は全項目評価（§11.4）[I]"),
    ThresholdRule("persons_300k", {"persons_min": 300_000}, Level.full, "30万人以上 [S]"),
    ThresholdRule("persons_100k_handlers", {"persons_min": 100_000, "handlers_min": 500},
                  Level.full, "10万人以上かつ取扱者500人以上 [S]"),
    ThresholdRule("persons_100k_accident", {"persons_min": 100_000, "serious_accident": True},
                  Level.full, "10万人以上かつ重大事故 [S]"),
    ThresholdRule("persons_100k", {"persons_min": 100_000}, Level.focused,
                  "10万人以上30万人未満 [S]"),
    ThresholdRule("persons_10k_handlers", {"persons_min": 10_000, "handlers_min": 500},
                  Level.focused, "1万人以上かつ取扱者500人以上 [R]"),
    ThresholdRule("persons_10k_accident", {"persons_min": 10_000, "serious_accident": True},
                  Level.focused, "1万人以上かつ重大事故 [R]"),
    ThresholdRule("persons_1k", {"persons_min": 1_000}, Level.basic, "1千人以上 [R]"),
    ThresholdRule("special_care", {"special_care": True}, Level.basic,
                  "要配慮個人情報を取り扱う [I]"),
    ThresholdRule("scoring", {"scoring": True}, Level.basic, "スコアリング・プロファイリング [I]"),
    ThresholdRule("foreign_storage", {"foreign_storage": True}, Level.basic, "外国での保管 [I]"),
)


@dataclass(frozen=True)
class ThresholdResult:
    level: Level
    matched: tuple[str, ...]


def threshold_level(
    answers: ThresholdAnswers, rules: Sequence[ThresholdRule] = DEFAULT_THRESHOLD_RULES
) -> ThresholdResult:
    """The highest level of every matching rule; none when no rule matches."""
    matched = [rule for rule in rules if rule.matches(answers)]
    level = max((rule.level for rule in matched), key=LEVEL_ORDER.index, default=Level.none)
    return ThresholdResult(level, tuple(rule.name for rule in matched))


def design_facts(snapshot: Mapping[str, Any]) -> dict[str, bool]:
    """What the design itself says about four threshold answers (they cannot be denied)."""
    design = snapshot.get("design", {})
    items = snapshot.get("context", {}).get("items", [])
    rule = design.get("subjects_rule") or {}
    max_age = rule.get("max_age")
    flows = design.get("flows", [])
    return {
        "children": isinstance(max_age, int) and max_age < 18,
        "cross_organ": any(f.get("to") != f"organ:{f.get('from')}" for f in flows),
        # Any automated assessment of individuals (rule alerts as well as scores) is profiling;
        # the purpose's handling method names it as a job kind it permits.
        "scoring": "scoring" in (design.get("job_kinds") or []),
        "special_care": any(i.get("special_care") or i.get("ordinance_special_care")
                            for i in items),
    }


def special_care_items(snapshot: Mapping[str, Any]) -> list[str]:
    return sorted(
        i["key"] for i in snapshot.get("context", {}).get("items", [])
        if i.get("special_care") or i.get("ordinance_special_care")
    )


# ---------------------------------------------------------------- scoring


def score(likelihood: int | None, impact: int | None) -> int | None:
    if likelihood is None or impact is None:
        return None
    return likelihood * impact


def band(value: int | None) -> str:
    """low (1–3), medium (4–8), high (9–16) on the 4 × 4 matrix."""
    if value is None:
        return "unrated"
    if value >= 9:
        return "high"
    if value >= 4:
        return "medium"
    return "low"


def heat_map(cells: Iterable[tuple[int | None, int | None]]) -> dict[tuple[int, int], int]:
    """How many risks sit in each (likelihood, impact) cell; unrated risks are left out."""
    counts: dict[tuple[int, int], int] = {(lk, im): 0 for lk in SCALE for im in SCALE}
    for likelihood, impact in cells:
        if likelihood in SCALE and impact in SCALE:
            assert likelihood is not None and impact is not None
            counts[(likelihood, impact)] += 1
    return counts


# ---------------------------------------------------------------- policy


class PiaPolicy(Policy, env_prefix="KODOMO_PIA_"):
    """Configurable choices LAW.md marks [I] or [R]; the defaults are the conservative ones."""

    title_ja: ClassVar[str] = "個人情報保護評価（PIA）"
    title_en: ClassVar[str] = "privacy impact assessment (PIA)"

    threshold_rules: tuple[ThresholdRule, ...] = rule(
        DEFAULT_THRESHOLD_RULES, marker="R",
        basis="特定個人情報保護評価指針 しきい値判断（行ごとに[S]/[R]/[I]）; LAW.md §11.3–11.4",
        ja="しきい値判断の表（この条件のとき少なくともこの評価）",
        en="threshold table (when every condition holds, at least this level)")
    min_comment_days: int = rule(
        30, ge=1, marker="S", basis="特定個人情報保護評価指針 第5の3; LAW.md §11.3",
        ja="全項目評価の意見募集の最短日数（短くするには理由が必要）",
        en="shortest public comment period of a full assessment (shorter needs a reason)")
    review_interval_days: int = rule(
        365, ge=1, marker="R",
        basis="特定個人情報保護評価指針（年1回の見直しは努力義務）; LAW.md §11.3",
        ja="承認から次の見直しまでの日数", en="days from approval to the next review")
    refuse_overdue_review: bool = rule(
        True, marker="I", basis="LAW.md §11.4（ゲート）",
        ja="見直し期限を過ぎた評価では利用を止める（いいえ: 警告のみ）",
        en="an overdue review makes the PIA unusable (no: warn only)")
    special_care_min_impact: int = rule(
        3, ge=1, le=4, marker="I", basis="法2条3項（要配慮個人情報）; LAW.md §2",
        ja="要配慮個人情報に関するリスクの影響度の下限（1〜4）",
        en="lowest impact of a risk about a special-care item (1–4)")

    @field_validator("threshold_rules")
    @classmethod
    def _conditions_known(cls, rules: tuple[ThresholdRule, ...]) -> tuple[ThresholdRule, ...]:
        known = set(ThresholdAnswers.__dataclass_fields__)
        for index, row in enumerate(rules):
            for condition in row.when:
                answer = condition.removesuffix("_min").removesuffix("_max")
                if answer not in known:
                    raise ValueError(f"row {index} ({row.name}): unknown condition {condition!r}")
        return rules


DEFAULT_POLICY = PiaPolicy()


# ---------------------------------------------------------------- guards


@dataclass(frozen=True)
class RiskFacts:
    id: int
    position: int
    stage: str
    title: str
    likelihood: int | None
    impact: int | None
    self_rating: str | None
    residual: str | None
    items: tuple[str, ...]
    measures: tuple[str, ...] = field(default_factory=tuple)  # the texts


def risk_problems(risks: Sequence[RiskFacts], special: Sequence[str],
                  policy: PiaPolicy = DEFAULT_POLICY) -> list[Reason]:
    problems: list[Reason] = []
    for risk in risks:
        refs = {"risk": risk.id}
        for name, value in (("likelihood", risk.likelihood), ("impact", risk.impact),
                            ("self_rating", risk.self_rating), ("residual", risk.residual)):
            if value in (None, ""):
                problems.append(Reason.of("pia.risk_unrated", title=risk.title, what=name,
                                          field=name, row=risk.position, refs=refs))
        if not risk.measures:
            problems.append(Reason.of("pia.risk_without_measure", title=risk.title,
                                      field="measures", row=risk.position, refs=refs))
        for text in risk.measures:
            if not text.strip():
                problems.append(Reason.of("pia.measure_empty", title=risk.title,
                                          field="measures", row=risk.position, refs=refs))
                break
        if (risk.impact is not None and set(risk.items) & set(special)
                and risk.impact < policy.special_care_min_impact):
            problems.append(Reason.of("pia.special_care_impact_low", title=risk.title,
                                      minimum=policy.special_care_min_impact, field="impact",
                                      row=risk.position, refs=refs))
    covered = {key for risk in risks for key in risk.items}
    for key in special:
        if key not in covered:
            problems.append(Reason.of("pia.special_care_unaddressed", item=key, field="risks",
                                      refs={"item": key}))
    return problems


def comment_period_problems(start: datetime | None, end: datetime | None, short_reason: str,
                            policy: PiaPolicy = DEFAULT_POLICY) -> list[Reason]:
    if start is None or end is None:
        return [Reason.of("pia.comment_period_missing", field="comment_start")]
    if end <= start:
        return [Reason.of("pia.comment_period_order", field="comment_end")]
    if end - start < timedelta(days=policy.min_comment_days) and not short_reason.strip():
        return [Reason.of("pia.comment_period_short", days=(end - start).days,
                          minimum=policy.min_comment_days, field="comment_short_reason")]
    return []


def threshold_problems(answers: Mapping[str, Any] | None,
                       snapshot: Mapping[str, Any]) -> list[Reason]:
    if not answers:
        return [Reason.of("pia.threshold_missing", field="threshold")]
    facts = design_facts(snapshot)
    return [
        Reason.of("pia.threshold_contradicts_design", question=THRESHOLD_QUESTIONS[name],
                  field=name)
        for name, fact in facts.items()
        if fact and not answers.get(name)
    ]


# ---------------------------------------------------------------- workflow

# From which states each workflow step may be taken. A full assessment passes through public
# comment and third-party review before approval; a lighter one is approved from review.
_IN_REVIEW = frozenset({State.review, State.public_comment, State.third_party_review})
WORKFLOW: dict[str, dict[Level | None, frozenset[State]]] = {
    "submit": {None: frozenset({State.draft, State.returned})},
    "start_public_comment": {Level.full: frozenset({State.review})},
    "to_third_party": {None: frozenset({State.public_comment})},
    "approve": {Level.full: frozenset({State.third_party_review}),
                None: frozenset({State.review})},
    "return": {None: _IN_REVIEW},
}


def workflow_sources(action: str, level: Level | str | None) -> frozenset[State]:
    """The states `action` may be taken from, for an assessment of this level."""
    by_level = WORKFLOW.get(action, {})
    if level is not None and Level(level) in by_level:
        return by_level[Level(level)]
    return by_level.get(None, frozenset())
