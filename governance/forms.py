"""Console forms of the centre read into the API's schemas, with Reasons at their fields."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any

from pydantic import ValidationError

from core import forms
from core.clock import TOKYO
from core.dates import date_reason, parse_date
from core.reasons import Reason
from governance import messages as words
from governance.rules import SAFEGUARD_CATEGORIES


def label_of(name: str) -> str:
    return words.FIELD_LABELS.get(name, name)


def validation_reasons(error: ValidationError) -> list[Reason]:
    """The schema's complaints about a purpose or authorisation form, at their fields."""
    return forms.validation_reasons(error, words.FIELD_LABELS, code="governance.ui.invalid_field",
                                    nested=("safeguards",))


def required(form: Any, name: str) -> Reason | None:
    if forms.text(form, name):
        return None
    return Reason.of("governance.ui.required", field=name, name=name, label=label_of(name))


def purpose_form_data(form: Any) -> tuple[dict[str, Any], dict[str, Any], list[Reason]]:
    """The schema's data, the values to show again, and problems found while reading the form."""
    simple = ("title_ja", "title_en", "purpose_text", "necessity", "acquisition_note",
              "handling_extraction", "handling_matching_key", "handling_logic",
              "handling_logic_version", "handling_result_viewers", "handling_human_assessment")
    data: dict[str, Any] = {name: forms.text(form, name) for name in simple}
    data["acquisition_method"] = forms.text(form, "acquisition_method") or "reuse"
    # The job kinds the handling method permits: ticks; an unknown value is the schema's.
    data["job_kinds"] = [v for v in forms.texts(form, "job_kinds") if v]
    values: dict[str, Any] = dict(data)
    problems: list[Reason] = []
    # 事務の根拠 (Art. 61(1)): rows of kind, law, article, note; empty rows are ignored.
    citations = []
    rows = zip(*(forms.texts(form, f"citation_{part}")
                 for part in ("kind", "law_name", "article", "note")), strict=False)
    for kind, law_name, article, note in rows:
        if law_name or article or note:
            citations.append({"kind": kind or "statute", "law_name": law_name,
                              "article": article, "note": note})
    data["citations"] = citations
    values["citations"] = citations
    # 取り扱う主体: an organ or "organ/department", with its governance role.
    subjects = []
    shown = []
    for unit, role in zip(forms.texts(form, "subject_unit"), forms.texts(form, "subject_role"),
                          strict=False):
        if not unit:
            continue
        organ, _, department = unit.partition("/")
        subjects.append({"organ": organ, "department": department or None, "role": role})
        shown.append({"unit": unit, "role": role})
    data["subjects"] = subjects
    values["subjects"] = shown
    # 安全管理措置: the checklist's ticks plus the officer's own lines, per category.
    safeguards: dict[str, list[str]] = {}
    values["safeguards"] = {}
    values["safeguards_other"] = {}
    for category in SAFEGUARD_CATEGORIES:
        ticked = [v for v in forms.texts(form, f"safeguards.{category}") if v]
        other_text = form.get(f"safeguards_other.{category}")
        other_text = other_text if isinstance(other_text, str) else ""
        others = [line.strip() for line in other_text.splitlines() if line.strip()]
        safeguards[category] = ticked + [o for o in others if o not in ticked]
        values["safeguards"][category] = ticked
        values["safeguards_other"][category] = other_text
    data["safeguards"] = safeguards
    notice = {name: forms.text(form, f"public_notice.{name}")
              for name in words.PUBLIC_NOTICE_LABELS}
    data["public_notice"] = notice
    values["public_notice"] = notice
    # 対象者: an age range over the person register; both blank means not yet decided.
    low, high = forms.text(form, "min_age"), forms.text(form, "max_age")
    values["min_age"], values["max_age"] = low, high
    if not low and not high:
        data["subjects_rule"] = None
    else:
        try:
            data["subjects_rule"] = {"min_age": int(low), "max_age": int(high)}
        except ValueError:
            data["subjects_rule"] = None
            problems.append(Reason.of("governance.ui.not_a_number", field="subjects_rule",
                                      name="subjects_rule", label=label_of("subjects_rule")))
    return data, values, problems


CONDITIONS = ("is_temporary", "within_necessary_extent", "substantial_reason",
              "no_undue_infringement")


AUTH_TEXTS = ("temporary_reasoning", "necessity_reasoning", "substantial_reasoning",
              "recipient_task_citation", "infringement_reasoning", "restricting_laws_note",
              "access_limit_note", "recipient_measures")
# Art. 69(4) as typed: organ and department keys separated by commas or spaces, roles ticked.
ACCESS_KEY_FIELDS = ("access_organs", "access_departments")


def _keys(text: str) -> list[str]:
    return [k for k in re.split(r"[,，、\s]+", text.strip()) if k]


def access_limit_data(form: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The structured Art. 69(4) limit from the form, and the values to show again."""
    values: dict[str, Any] = {name: forms.text(form, name) for name in ACCESS_KEY_FIELDS}
    roles = [r for r in form.getlist("access_roles") if r] if hasattr(form, "getlist") else []
    values["access_roles"] = roles
    data = {"organs": _keys(values["access_organs"]),
            "departments": _keys(values["access_departments"]), "roles": roles}
    return data, values


def tokyo_day(text: str, end: bool) -> datetime | None:
    day = parse_date(text)
    if day is None:
        return None
    moment = datetime.combine(day, time.min, TOKYO)
    # The end date counts whole: the period runs until the last moment of that day in Tokyo.
    return moment + timedelta(days=1, microseconds=-1) if end else moment


def auth_form_data(form: Any) -> tuple[dict[str, Any], dict[str, Any], list[Reason]]:
    values: dict[str, Any] = {name: forms.text(form, name) for name in AUTH_TEXTS}
    data: dict[str, Any] = dict(values)
    data["access_limited_to"], access_values = access_limit_data(form)
    values.update(access_values)
    problems: list[Reason] = []
    for name in (*CONDITIONS, "restricting_laws_checked"):
        answer = forms.text(form, name)
        values[name] = answer
        data[name] = answer == "yes"
    for name, end in (("valid_from", False), ("valid_until", True)):
        typed = forms.text(form, name)
        values[name] = typed
        data[name] = tokyo_day(typed, end) if typed else None
        if typed and data[name] is None:
            problems.append(date_reason(typed, field=name) or Reason.of(
                "governance.ui.not_a_date", field=name, name=name, label=label_of(name)))
    runs = forms.text(form, "runs_allowed")
    values["runs_allowed"] = runs
    try:
        data["runs_allowed"] = int(runs) if runs else 1
    except ValueError:
        problems.append(Reason.of("governance.ui.not_a_number", field="runs_allowed",
                                  name="runs_allowed", label=label_of("runs_allowed")))
    return data, values, problems
