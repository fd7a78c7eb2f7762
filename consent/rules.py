"""Pure rules of consent: the capacity policy (ages by core.ages), names, notice matching.

No I/O here. The numbers of the capacity policy are design choices, not law (LAW.md §12.2 marks
them [I]); they are configurable, with the conservative defaults.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from typing import ClassVar, Literal, Self

from pydantic import model_validator

from core.ages import MAJORITY_AGE, PRACTICE, AgeReachedOn, age_on, latest_birth_for_age
from core.models import Role
from core.policies import Policy, rule

# ---------------------------------------------------------------- capacity policy


class CapacityPolicy(Policy, env_prefix="KODOMO_CONSENT_"):
    """`consent_capacity_policy` of LAW.md §12.2 [I]: every number is a design choice.

    guardian_required_below: below this age the 法定代理人 consents (default 16, conservative:
        the PPC's proposed rule; the Q&A band is 12–15).
    child_view_from: from this age the child's own view is recorded (assent / objection, or why
        it was not asked).
    parents: where two 親権者 share authority, "all" (default: both must have given consent, so a
        withdrawal by either withdraws) or "any" (one suffices; with
        `withdrawal_by_either_withdraws` a withdrawal by either still withdraws until consent is
        given again).
    child_objection_blocks: a consent recorded with the child's objection does not count.
    guardian_consent_after_threshold: whether a guardian's consent still counts once the child has
        reached `guardian_required_below` (default no: the child must confirm it).
    age_reached_on: the first day on which each of these ages counts (core.ages): the day before
        the birthday (default, the administrative practice of 年齢計算法; LAW.md §13a) or the
        birthday itself.
    """

    title_ja: ClassVar[str] = "同意能力（こどもの同意）"
    title_en: ClassVar[str] = "consent capacity (children's consent)"

    guardian_required_below: int = rule(
        16, ge=0, le=MAJORITY_AGE, marker="I",
        basis="法69条2項1号; 個人情報保護委員会 通則編Q&A1-62（12〜15歳）; "
              "制度改正方針（16歳未満）; LAW.md §12.2",
        ja="この年齢未満は法定代理人が同意する", en="below this age the 法定代理人 consents")
    child_view_from: int = rule(
        12, ge=0, le=MAJORITY_AGE, marker="I", basis="通則編Q&A1-62; LAW.md §12.2",
        ja="この年齢からこども本人の意見を記録する",
        en="from this age the child's own view is recorded")
    parents: Literal["all", "any"] = rule(
        "all", marker="I", basis="民法818条（共同親権）[R]; LAW.md §12.2",
        ja="共同親権のとき必要な親権者の同意",
        en="consent needed where two 親権者 share authority",
        choices={"all": "全員の同意", "any": "いずれか一人の同意"})
    withdrawal_by_either_withdraws: bool = rule(
        True, marker="I", basis="LAW.md §12.2, §12.5（撤回）",
        ja="いずれかの親権者の撤回で同意が撤回される",
        en="a withdrawal by either 親権者 withdraws")
    child_objection_blocks: bool = rule(
        True, marker="I", basis="LAW.md §12.2（こども本人の意見）",
        ja="こども本人が反対した同意は数えない",
        en="a consent recorded with the child's objection does not count")
    guardian_consent_after_threshold: bool = rule(
        False, marker="I", basis="LAW.md §12.2（年齢到達時の再確認）",
        ja="こどもが同意年齢に達した後も保護者の同意を有効とする",
        en="a guardian's consent still counts once the child reaches the age")
    withdrawal_restricts_purpose: bool = rule(
        True, marker="I", basis="LAW.md §12.5（撤回の効果）; 法61条2項",
        ja="同意の撤回でその利用目的への利用を制限する",
        en="a withdrawal restricts the purpose for the person")
    age_reached_on: AgeReachedOn = rule(
        PRACTICE, marker="I", basis="年齢計算ニ関スル法律; 民法143条; LAW.md §13a（行政実務）",
        ja="年齢に達したとみなす日", en="the day on which an age counts as reached",
        choices={"day_before_birthday": "誕生日の前日（行政実務）", "birthday": "誕生日"})

    @model_validator(mode="after")
    def _ages_in_order(self) -> Self:
        if not 0 <= self.child_view_from <= self.guardian_required_below <= MAJORITY_AGE:
            raise ValueError("policy ages must satisfy 0 <= child_view_from <= "
                             "guardian_required_below <= 18")
        return self

    def thresholds(self) -> tuple[int, ...]:
        """Ages at which a consent given for a younger child is to be re-confirmed."""
        return tuple(sorted({self.child_view_from, self.guardian_required_below, MAJORITY_AGE}))

    def age(self, birth: date, day: date) -> int:
        """The child's age during `day` as the capacity rules count it."""
        return age_on(birth, day, self.age_reached_on)

    def latest_birth(self, day: date, years: int) -> date:
        """The latest birth date of a person the capacity rules count as `years` old on `day`."""
        return latest_birth_for_age(day, years, self.age_reached_on)

    def guardian_decides(self, age: int) -> bool:
        return age < self.guardian_required_below

    def view_required(self, age: int) -> bool:
        return age >= self.child_view_from


DEFAULT_POLICY = CapacityPolicy()


def crossed_thresholds(policy: CapacityPolicy, age_then: int, age_now: int) -> list[int]:
    """The re-confirmation thresholds reached after `age_then`, up to `age_now`."""
    return [t for t in policy.thresholds() if age_then < t <= age_now]


# ---------------------------------------------------------------- recipients


RECIPIENT = re.compile(r"^(organ|body):([1-9][0-9]{0,9})$")


def organ_recipient(organ_id: int) -> str:
    return f"organ:{organ_id}"


def body_recipient(body_id: int) -> str:
    return f"body:{body_id}"


def parse_recipient(key: str) -> tuple[str, int] | None:
    match = RECIPIENT.match(key)
    return (match[1], int(match[2])) if match else None


# ---------------------------------------------------------------- notice matching


@dataclass(frozen=True)
class Offered:
    """What a notice asks about: key -> optional?"""

    items: dict[int, bool]
    recipients: dict[str, bool]


def scope_problems(offered: Offered, items: Iterable[int],
                   recipients: Iterable[str]) -> list[tuple[str, str, str]]:
    """(code, field, detail) for every way a consent's scope does not match its notice.

    A consent covers every necessary item and recipient of the notice, and any subset of the
    optional ones; nothing outside the notice.
    """
    problems: list[tuple[str, str, str]] = []
    chosen_items, chosen_recipients = set(items), set(recipients)
    for name, chosen, offer in (("items", chosen_items, offered.items),
                                ("recipients", chosen_recipients, offered.recipients)):
        unknown = sorted(str(x) for x in chosen - set(offer))
        if unknown:
            problems.append(("consent.scope_not_in_notice", name, ", ".join(unknown)))
        missing = sorted(str(x) for x, optional in offer.items()
                         if not optional and x not in chosen)
        if missing:
            problems.append(("consent.scope_missing_necessary", name, ", ".join(missing)))
        if not chosen:
            problems.append(("consent.scope_empty", name, ""))
    return problems


# ---------------------------------------------------------------- names and codes typed by people

_SPACES = re.compile(r"\s+")


def normalise_name(text: str) -> str:
    """The form a name is hashed in: NFKC, no spaces (a full-width space is a space)."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text))


def normalise_kana(text: str) -> str:
    """Kana for hashing: NFKC (half-width to full-width), hiragana as katakana, no spaces."""
    folded = normalise_name(text)
    return "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in folded)


_SEX = {"1": "male", "男": "male", "男性": "male", "M": "male", "MALE": "male",
        "2": "female", "女": "female", "女性": "female", "F": "female", "FEMALE": "female",
        "9": "unknown", "0": "unknown", "": "unknown", "不明": "unknown", "UNKNOWN": "unknown"}


def parse_sex(text: str) -> str | None:
    """住民基本台帳 codes (1 男, 2 女) or words; None when not recognised."""
    return _SEX.get(unicodedata.normalize("NFKC", text).strip().upper())


# ------------------------------------------------------- record-level access (LAW.md §10.5)
#
# The one place that says who reads a person's full record (guardians and their proofs, consent
# history, restrictions, receipts). 総括管理主体 (privacy officers) read it; a 活用主体 (support
# worker) reads it only for the people of the cases assigned to them. The support ledger does
# not exist yet, so `assigned` is empty for everyone today and a support worker reads no full
# record; the ledger extends this by handing in the person ids of the worker's cases
# (consent.people.register_case_assignments). A policy [I], conservative by default.

PERSON_RECORD_ROLES: tuple[Role, ...] = (Role.privacy_officer,)
CASE_ROLES: tuple[Role, ...] = (Role.support_worker,)
# A consent intake search finds a person by 宛名番号, or by full name (or kana) AND birth date,
# and answers at most this many candidates, with minimal fields.
SEARCH_LIMIT = 5


def may_read_person(roles: Iterable[Role], person_id: str,
                    assigned: Collection[str] = ()) -> bool:
    """May someone with `roles`, whose assigned cases cover `assigned` people, read the full
    record of `person_id`?"""
    held = set(roles)
    if held & set(PERSON_RECORD_ROLES):
        return True
    return bool(held & set(CASE_ROLES)) and person_id in assigned
