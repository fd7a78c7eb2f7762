"""Pure rules of the centre, as data where they can be: completeness, route derivation, the four
conditions, authorisation standing, who runs which job kind, and the workflow transitions."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from core.clock import as_utc
from core.models import Role
from core.policies import Policy, rule
from core.reasons import Reason
from governance.models import (
    Basis,
    PurposeStatus,
    RecordStatus,
    Recurrence,
    RouteKind,
    SubjectRole,
)

SAFEGUARD_CATEGORIES = ("organisational", "human", "physical", "technical")
REQUIRED_SUBJECT_ROLES = (
    SubjectRole.overall,
    SubjectRole.holding,
    SubjectRole.analysis,
    SubjectRole.use,
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
    # The job kinds the handling method permits (JobKind values)
    job_kinds: frozenset[str] = frozenset()


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
    if not facts.job_kinds:
        reasons.append(_reason("governance.missing_job_kinds", "job_kinds"))
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
    """Configurable choices LAW.md marks [I] or [R]; the defaults are the conservative ones."""

    title_ja: ClassVar[str] = "目的外利用・提供（臨時的な利用の承認）"
    title_en: ClassVar[str] = "out-of-purpose use and provision (one-off authorisations)"

    repeat_window_days: int = rule(
        365, ge=0, marker="I", basis="法69条2項（臨時的）; 事務対応ガイド4-2-1(3); LAW.md §4.3(1)",
        ja="同じ型の臨時的利用の承認を再び認めない期間（日）",
        en="days within which a second one-off authorisation of the same pattern is refused")
    max_one_off_days: int = rule(
        180, ge=1, marker="I", basis="法69条2項2号・3号（臨時的）; LAW.md §4.3",
        ja="臨時的利用の承認の最長有効期間（日）",
        en="longest validity of a one-off authorisation, in days")
    max_one_off_runs: int = rule(
        3, ge=1, marker="I", basis="法69条2項2号・3号（臨時的）; LAW.md §4.3",
        ja="臨時的利用の承認で実行できる最大回数",
        en="most runs a one-off authorisation allows")
    require_recipient_measures: bool = rule(
        True, marker="R", basis="法70条（提供先への措置要求）; LAW.md §4",
        ja="提供（69条2項3号）の承認前に、提供先に求める措置（法70条）の記録を必須とする",
        en="every provision records the measures asked of the recipient (Art. 70) before approval")


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


def approval_answer_problems(
    kind: RouteKind | str,
    restricting_laws_checked: bool,
    restricting_laws_note: str,
    recipient_measures: str,
    access_limit_note: str,
    policy: GovernancePolicy = DEFAULT_POLICY,
) -> list[Reason]:
    """What approving a 69(2) authorisation needs besides the four conditions: the Art. 69(3)
    answer (other laws restricting the use or provision checked, and named), for a provision the
    Art. 70 measures asked of the recipient (a policy: LAW.md marks Art. 70 [R]), and an Art.
    69(4) limit that is structured (a note left by the migration is not yet a limit)."""
    reasons: list[Reason] = []
    if not restricting_laws_checked or _blank(restricting_laws_note):
        reasons.append(_reason("governance.restricting_laws_unanswered",
                               "restricting_laws_note" if restricting_laws_checked
                               else "restricting_laws_checked"))
    if (policy.require_recipient_measures and kind == RouteKind.provision
            and _blank(recipient_measures)):
        reasons.append(_reason("governance.recipient_measures_missing", "recipient_measures"))
    if not _blank(access_limit_note):
        reasons.append(_reason("governance.access_limit_unstructured", "access_limited_to",
                               note=access_limit_note.strip()[:200]))
    return reasons


# ---------------------------------------------------------------- Art. 69(4) access limits


@dataclass(frozen=True)
class AccessLimit:
    """Who inside the recipient may use the data (Art. 69(4)): organs, departments and roles
    by key. An empty part does not limit; an empty limit limits nothing."""

    organs: frozenset[str] = frozenset()
    departments: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.organs or self.departments or self.roles)

    def to_json(self) -> str:
        return json.dumps({"organs": sorted(self.organs), "departments": sorted(self.departments),
                           "roles": sorted(self.roles)}, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> AccessLimit:
        data = parse_json_object(text or "{}")

        def part(name: str) -> frozenset[str]:
            value = data.get(name)
            return frozenset(str(v) for v in value) if isinstance(value, list) else frozenset()
        return cls(part("organs"), part("departments"), part("roles"))


def access_limit_allows(limit: AccessLimit, organ: str | None, department: str | None,
                        role: str) -> bool:
    """Whether a person acting in `organ` / `department` with `role` is inside the limit."""
    if limit.organs and organ not in limit.organs:
        return False
    if limit.departments and department not in limit.departments:
        return False
    return not limit.roles or role in limit.roles


def convert_access_text(text: str, organs: Mapping[str, str], departments: Mapping[str, str],
                        roles: Mapping[str, str]) -> AccessLimit | None:
    """The structured limit that free text names, or None when any part of it is not a known
    organ, department or role (by key or Japanese name, separated by commas, 、 or spaces).
    Blank text is the empty limit. `organs` etc. map a key or name to the key."""
    words = [w for w in re.split(r"[,，、;；/／\s]+", text.strip()) if w]
    found: dict[str, set[str]] = {"organs": set(), "departments": set(), "roles": set()}
    for word in words:
        for part, names in (("organs", organs), ("departments", departments),
                            ("roles", roles)):
            if word in names:
                found[part].add(names[word])
                break
        else:
            return None
    return AccessLimit(frozenset(found["organs"]), frozenset(found["departments"]),
                       frozenset(found["roles"]))


# ---------------------------------------------------------------- export scope (LAW.md §10.5)

# Who may see an item identified unless the purpose opens it further: its holder (保有・管理主体).
DEFAULT_IDENTIFIED_FOR: frozenset[SubjectRole] = frozenset({SubjectRole.holding})


def identified_roles(text: str | None) -> frozenset[SubjectRole]:
    """A purpose item's `identified_for` column (comma-separated subject roles)."""
    return frozenset(SubjectRole(part) for part in (text or "").split(",")
                     if part in SubjectRole.__members__)


def identified_text(roles: Iterable[SubjectRole | str]) -> str:
    return ",".join(sorted({str(SubjectRole(r)) for r in roles}))


def export_item_problem(acting: SubjectRole, identified_for: Collection[SubjectRole],
                        item_organ_id: int, held_organs: Collection[int]) -> str | None:
    """Why an export acting as `acting` may not carry this item identified (a gate code), or
    None: the purpose must open the item to the acting subject, and a 保有・管理主体 exports only
    the items its own organ holds."""
    if acting not in identified_for:
        return "gate.item_not_open_to_role"
    if acting == SubjectRole.holding and item_organ_id not in held_organs:
        return "gate.item_not_held"
    return None


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


# ---------------------------------------------------------------- routes and authorisations

# One-off use (69(2)(ii)) and provision (69(2)(iii)) stand only on an approved four-condition
# authorisation; every other route kind is approved on its own.
ONE_OFF_KINDS: frozenset[RouteKind] = frozenset({RouteKind.internal_use, RouteKind.provision})


def is_one_off(kind: RouteKind | str) -> bool:
    return kind in ONE_OFF_KINDS


def one_recipient_problem(to_organ: str | None, to_body: str | None,
                          field_name: str = "to_organ") -> Reason | None:
    """A route carries data to exactly one recipient: an organ of the city or an outside body."""
    if (to_organ is None) == (to_body is None):
        return _reason("governance.one_recipient", field_name)
    return None


def repeated_item_problems(item_keys: Sequence[str]) -> dict[int, Reason]:
    """A route lists each item once: the position of every repetition, with its Reason."""
    seen: set[str] = set()
    found: dict[int, Reason] = {}
    for position, key in enumerate(item_keys):
        if key in seen:
            found[position] = _reason("governance.duplicate_item", "items", item=key)
        seen.add(key)
    return found


def item_in_purpose_problem(item_key: str, purpose_key: str, purpose_item_keys: Collection[str],
                            field_name: str = "items") -> Reason | None:
    """A route carries only items its purpose names."""
    if item_key not in purpose_item_keys:
        return _reason("governance.item_not_in_purpose", field_name, item=item_key,
                       purpose=purpose_key)
    return None


def one_holder_problem(holders: Iterable[str], field_name: str = "items") -> Reason | None:
    """A route carries the items of one holding organ only (`holders`: each item's organ)."""
    organs = sorted(set(holders))
    if len(organs) > 1:
        return _reason("governance.items_from_several_organs", field_name,
                       organs=", ".join(organs))
    return None


def own_approval_problem(kind: RouteKind | str, field_name: str | None = None) -> Reason | None:
    """A one-off route is submitted and approved through its authorisation, never on its own."""
    if is_one_off(kind):
        return _reason("governance.route_needs_authorisation", field_name)
    return None


def authorised_route_problem(kind: RouteKind | str, field_name: str = "route") -> Reason | None:
    """A four-condition authorisation belongs only to a one-off (ii)/(iii) route."""
    if not is_one_off(kind):
        return _reason("governance.route_not_one_off", field_name)
    return None


def delegation_problem(delegation_note: str, field_name: str = "delegation_note"
                       ) -> Reason | None:
    """An authorisation is approved under a recorded delegation (専決)."""
    if _blank(delegation_note):
        return _reason("governance.missing_delegation", field_name)
    return None


def authorisation_standing(valid_from: datetime | None, valid_until: datetime | None,
                           runs_used: int, runs_allowed: int, at: datetime) -> str | None:
    """Why an approved authorisation cannot carry a run at `at` ("not_yet", "expired",
    "exhausted"), or None when it can."""
    if valid_from is not None and as_utc(valid_from) > as_utc(at):
        return "not_yet"
    if valid_until is not None and as_utc(valid_until) < as_utc(at):
        return "expired"
    if runs_used >= runs_allowed:
        return "exhausted"
    return None


# ---------------------------------------------------------------- job kinds


class JobKind(enum.StrEnum):
    linkage = "linkage"
    scoring = "scoring"
    export = "export"  # identified data leaves for a support worker or data holder
    statistics = "statistics"  # aggregates only


# Who may run each kind of job, and as which handling subject of the purpose.
JOB_ROLES: dict[JobKind, dict[Role, SubjectRole]] = {
    JobKind.linkage: {Role.analyst: SubjectRole.analysis},
    JobKind.scoring: {Role.analyst: SubjectRole.analysis},
    JobKind.statistics: {Role.analyst: SubjectRole.analysis},
    JobKind.export: {Role.support_worker: SubjectRole.use, Role.data_holder: SubjectRole.holding},
}


# ---------------------------------------------------------------- workflow


class Actor(enum.StrEnum):
    """Who takes a workflow step: a drafter (privacy officer, data holder or analyst) or an
    officer (privacy officer) who is not the submitter."""

    drafter = "drafter"
    officer = "officer"


DRAFTER_ROLES: tuple[Role, ...] = (Role.privacy_officer, Role.data_holder, Role.analyst)
OFFICER_ROLES: tuple[Role, ...] = (Role.privacy_officer,)


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str | None  # None: the status does not change (an edit)
    by: Actor


def _transitions(*rows: tuple[str, Iterable[str], str | None, Actor]) -> dict[str, Transition]:
    return {action: Transition(action, frozenset(str(s) for s in sources),
                               None if target is None else str(target), by)
            for action, sources, target, by in rows}


_P = PurposeStatus
PURPOSE_EDITABLE = frozenset({_P.draft.value, _P.returned.value})
PURPOSE_TRANSITIONS = _transitions(
    ("edit", PURPOSE_EDITABLE, None, Actor.drafter),
    ("submit", PURPOSE_EDITABLE, _P.submitted, Actor.drafter),
    ("approve", (_P.submitted,), _P.approved, Actor.officer),
    ("return", (_P.submitted,), _P.returned, Actor.officer),
    ("suspend", (_P.approved,), _P.suspended, Actor.officer),
    ("resume", (_P.suspended,), _P.approved, Actor.officer),
    ("retire", (_P.approved, _P.suspended), _P.retired, Actor.officer),
    ("revise", (_P.approved, _P.suspended), _P.draft, Actor.drafter),
)

_R = RecordStatus
RECORD_EDITABLE = frozenset({_R.draft.value, _R.returned.value})
_LIVE = tuple(s for s in _R if s != _R.revoked)
# A route that is not one-off has a workflow of its own; a one-off route follows its
# authorisation's (submitting or deciding the authorisation moves the route with it).
ROUTE_TRANSITIONS = _transitions(
    ("submit", RECORD_EDITABLE, _R.submitted, Actor.drafter),
    ("approve", (_R.submitted,), _R.approved, Actor.officer),
    ("return", (_R.submitted,), _R.returned, Actor.officer),
    # Only a route in force or awaiting a decision is revoked; a draft is not in force.
    ("revoke", (_R.submitted, _R.approved), _R.revoked, Actor.officer),
    ("authorise", _LIVE, None, Actor.drafter),
)
ONE_OFF_ROUTE_ACTIONS = frozenset({"revoke", "authorise"})
AUTHORISATION_TRANSITIONS = _transitions(
    ("edit", RECORD_EDITABLE, None, Actor.drafter),
    ("submit", RECORD_EDITABLE, _R.submitted, Actor.drafter),
    ("approve", (_R.submitted,), _R.approved, Actor.officer),
    ("return", (_R.submitted,), _R.returned, Actor.officer),
)


# Officer's steps taken for the head of the organ holding the file: only a privacy officer of
# that organ takes them (approving a footing and revoking it are the same authority).
HOLDER_ORGAN_ACTIONS = frozenset({"approve", "revoke"})


def drafter_organ_problem(roles: Iterable[Role], drafter_organs: Collection[int],
                          author_organs: Collection[int]) -> Reason | None:
    """A drafter's step on a purpose's draft (and on its routes and authorisations) is for
    privacy officers and for drafters of an organ the purpose's author drafts in; a purpose
    with no known author (made by the system) is for privacy officers only. [I]"""
    if set(roles) & set(OFFICER_ROLES):
        return None
    if set(drafter_organs) & set(author_organs):
        return None
    return _reason("governance.not_author_organ")


def separation_problem(submitted_by: object, approver: object) -> Reason | None:
    """The submitter of a record cannot approve it (separation of duties); `submitted_by` and
    `approver` name people the same way (account ids, or logins)."""
    if submitted_by is not None and submitted_by == approver:
        return _reason("governance.self_approval")
    return None


def transition_problem(transitions: Mapping[str, Transition], action: str,
                       status: str) -> Reason | None:
    """The refusal of `action` from `status`, or None when the workflow allows it."""
    step = transitions.get(action)
    if step is None or str(status) not in step.sources:
        return Reason.of("governance.bad_transition", status=str(status), action=action)
    return None
