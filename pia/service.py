"""PIA operations: open, the form's sections, risks and measures, workflow, status, documents.

`pia` never imports governance: governance hands it the design snapshot and its hash
(open, submit) and asks it `status(purpose_id, current_hash, at)`. Services never commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from core import audit, messages
from core.auth import Principal
from core.clock import as_utc, utcnow
from core.db import get_by
from core.documents import render_pdf
from core.models import Role, StaffAccount
from core.policies import policy
from core.reasons import Conflict, Forbidden, InvalidInput, NotFound, Reason
from pia import rules
from pia.models import Assessment, Level, Measure, PublicComment, Risk, State, Step
from pia.schemas import CommentIn, ProcedureIn, RiskIn

messages.register(
    {
        "pia.nav": ("PIA（影響評価）", "PIAs"),
        "pia.unknown": ("PIA（番号 {id}）が見つかりません。", "PIA {id} not found."),
        "pia.unknown_risk": ("リスク（番号 {id}）が見つかりません。", "Risk {id} not found."),
        "pia.unknown_section": ("様式の区分「{section}」はありません。", "No section {section!r}."),
        "pia.unknown_field": (
            "区分「{section}」に項目「{name}」はありません。",
            "Section {section} has no field {name!r}.",
        ),
        "pia.not_privacy_officer": (
            "PIAの作成・編集・承認は総括管理主体（個人情報保護責任者）が行います。",
            "PIAs are completed and approved by a privacy officer.",
        ),
        "pia.conflict": (
            "このPIAは、あなたが編集を始めた後に他の担当者が更新しました（あなたの版: 第{mine}版、"
            "現在: 第{current}版）。上書きを防ぐため保存していません。最新の内容を表示し直し、"
            "変更をもう一度入力してください。",
            "Someone else updated this PIA after you started editing (your version {mine}, "
            "now {current}). Nothing was saved, so nothing was overwritten: reload the PIA and "
            "make your change again.",
        ),
        "pia.already_open": (
            "この利用目的には作成中のPIA（番号 {id}）があります。そちらを完成させてください。",
            "This purpose already has a PIA in progress ({id}); complete that one.",
        ),
        "pia.not_editable": (
            "状態が「{status}」のPIAは編集できません。再評価は新しいPIAとして開始してください。",
            "A PIA in status {status} cannot be edited; start a re-assessment instead.",
        ),
        "pia.bad_transition": (
            "状態「{status}」のPIAは「{action}」できません。",
            "Cannot {action} a PIA in status {status}.",
        ),
        "pia.threshold_missing": (
            "しきい値判断に回答してください。",
            "Answer the threshold assessment.",
        ),
        "pia.threshold_contradicts_design": (
            "しきい値判断の「{question}」は、利用目的の設計では「該当する」です。",
            "The threshold answer to {question!r} contradicts the purpose's design.",
        ),
        "pia.section_incomplete": (
            "「{section}」の「{label}」を記入してください。",
            "Fill in {label!r} in section {section}.",
        ),
        "pia.no_risks": (
            "リスク対策（Ⅲ）にリスクを1件以上記載してください。",
            "Record at least one risk in the risk register (III).",
        ),
        "pia.risk_unrated": (
            "リスク「{title}」の評価（{what}）が未記入です。",
            "Risk {title!r} is not rated ({what}).",
        ),
        "pia.risk_without_measure": (
            "リスク「{title}」に措置がありません。",
            "Risk {title!r} has no measure.",
        ),
        "pia.measure_empty": (
            "リスク「{title}」に内容が空の措置があります。",
            "Risk {title!r} has an empty measure.",
        ),
        "pia.special_care_impact_low": (
            "リスク「{title}」は要配慮個人情報に関わるため、影響度を{minimum}以上としてください。",
            "Risk {title!r} concerns special-care data: rate its impact {minimum} or higher.",
        ),
        "pia.special_care_unaddressed": (
            "要配慮個人情報を含む記録項目「{item}」に対応するリスクがありません。",
            "The special-care item {item} is addressed by no risk.",
        ),
        "pia.comment_period_missing": (
            "全項目評価では、意見聴取（パブリックコメント）の期間を記入してください。",
            "A full assessment needs a public comment period.",
        ),
        "pia.comment_period_order": (
            "意見聴取の終了日は開始日より後にしてください。",
            "The public comment period must end after it starts.",
        ),
        "pia.comment_period_short": (
            "意見聴取の期間が{days}日です。{minimum}日未満とするには、その理由を評価書に記載して"
            "ください。",
            "The public comment period is {days} days; a period under {minimum} days needs a "
            "written reason.",
        ),
        "pia.comment_period_open": (
            "意見聴取の期間（{end}まで）が終了していません。",
            "The public comment period has not ended yet (until {end}).",
        ),
        "pia.third_party_missing": (
            "全項目評価では、第三者点検の実施機関と意見を記入してください。",
            "A full assessment needs the third-party review body and its opinion.",
        ),
        "pia.self_approval": (
            "PIAの作成者本人は承認できません（職務の分離）。",
            "The author of a PIA cannot approve it (separation of duties).",
        ),
        "pia.residual_not_accepted": (
            "承認するには残存リスクを受容することを明示してください。",
            "Approval needs the residual risk to be explicitly accepted.",
        ),
        "pia.not_approved": (
            "この利用目的には承認されたPIAがありません。",
            "This purpose has no approved PIA.",
        ),
        "pia.design_changed": (
            "PIA（番号 {id}）の承認後に利用目的の設計が変更されています。再評価が必要です。",
            "The purpose's design changed after PIA {id} was approved; reassess it.",
        ),
        "pia.review_overdue": (
            "PIA（番号 {id}）の見直し期限（{due}）を過ぎています。",
            "PIA {id} is overdue for review (due {due}).",
        ),
        "pia.residual_unaccepted": (
            "PIA（番号 {id}）の残存リスクが受容されていません。",
            "The residual risk of PIA {id} has not been accepted.",
        ),
        "pia.unknown_item": (
            "記録項目「{item}」は評価対象の設計にありません。",
            "Item {item} is not in the design under assessment.",
        ),
        "pia.unknown_safeguard": (
            "安全管理措置「{text}」は利用目的の安全管理措置にありません。",
            "Safeguard {text!r} is not one of the purpose's safeguards.",
        ),
        "pia.todo_awaiting": ("PIAの承認待ち", "PIAs awaiting approval"),
        "pia.todo_awaiting_item": (
            "「{title}」のPIA（{level}、{status}）",
            "PIA of {key} ({level}, {status})",
        ),
        "pia.todo_review": ("PIAの見直し期限", "PIA reviews due"),
        "pia.todo_review_item": (
            "「{title}」のPIAを見直してください（期限 {due}）",
            "Review the PIA of {key} (due {due})",
        ),
    }
)

STATE_LABELS: dict[str, str] = {
    State.draft: "作成中",
    State.review: "承認審査中",
    State.public_comment: "意見聴取中",
    State.third_party_review: "第三者点検中",
    State.approved: "承認済み",
    State.returned: "差戻し",
    State.superseded: "旧版（再評価により置換）",
}
EDITABLE = (State.draft, State.returned, State.review, State.public_comment,
            State.third_party_review)
OPEN_STATES = EDITABLE

# The form (全項目評価書 Ⅰ–Ⅵ, LAW.md §11.3): section → fields (name, label).
FORM_SECTIONS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "basic": ("Ⅰ 基本情報", [
        ("work_name", "事務の名称"),
        ("systems", "使用するシステム"),
        ("files", "個人情報ファイルの名称"),
        ("legal_basis", "法令上の根拠"),
        ("units", "事務を担当する部署"),
    ]),
    "overview": ("Ⅱ ファイルの概要", [
        ("persons", "対象となる本人の範囲・人数"),
        ("items", "主な記録項目"),
        ("acquisition", "入手の方法"),
        ("use", "使用の方法"),
        ("outsourcing", "委託の有無と内容"),
        ("provision", "提供・移転の先"),
        ("storage", "保管・消去の方法"),
    ]),
    "other": ("Ⅳ その他のリスク対策", [
        ("audit", "監査（自己点検・監査）"),
        ("training", "従業者に対する教育・啓発"),
    ]),
    "contacts": ("Ⅴ 開示請求・問合せ", [
        ("disclosure", "開示請求の窓口"),
        ("inquiry", "問合せ窓口"),
    ]),
}
SECTION_TITLES: dict[str, str] = {
    "threshold": "しきい値判断",
    "basic": FORM_SECTIONS["basic"][0],
    "overview": FORM_SECTIONS["overview"][0],
    "risks": "Ⅲ リスク対策",
    "other": FORM_SECTIONS["other"][0],
    "contacts": FORM_SECTIONS["contacts"][0],
    "procedure": "Ⅵ 評価実施手続",
}
SECTION_ORDER = ("threshold", "basic", "overview", "risks", "other", "contacts", "procedure")

Actor = Principal | audit.Actor


@dataclass(frozen=True)
class PiaStatus:
    """Whether the purpose's PIA can be relied on now, which one, and why not."""

    usable: bool
    pia_id: int | None
    version: int | None
    reasons: list[Reason] = field(default_factory=list)


# ---------------------------------------------------------------- helpers


def _officer(by: Actor) -> Principal:
    if not isinstance(by, Principal) or not by.has_role(Role.privacy_officer):
        raise Forbidden(Reason.of("pia.not_privacy_officer"))
    return by


def _audit(session: Session, action: str, by: Principal, pia: Assessment,
           details: Mapping[str, Any] | None = None) -> None:
    audit.append(session, action, actor=by.actor(Role.privacy_officer), target_type="pia",
                 target_id=pia.id, purpose_id=pia.purpose_id,
                 details={"version": pia.version, **(details or {})})


def _step(session: Session, pia: Assessment, action: str, by: Principal,
          comment: str = "", at: datetime | None = None) -> None:
    assert pia.id is not None
    session.add(Step(assessment_id=pia.id, action=action, actor_id=by.account_id,
                     comment=comment, at=at or utcnow()))


def loads(text: str) -> dict[str, Any]:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def get(session: Session, pia_id: int) -> Assessment:
    return get_by(session, Assessment, "pia.unknown", id=pia_id)


def of_purpose(session: Session, purpose_id: int) -> list[Assessment]:
    return list(session.exec(select(Assessment).where(Assessment.purpose_id == purpose_id)
                             .order_by(col(Assessment.id))).all())


def in_progress(session: Session, purpose_id: int) -> Assessment | None:
    return session.exec(
        select(Assessment).where(Assessment.purpose_id == purpose_id,
                                 col(Assessment.status).in_([s.value for s in OPEN_STATES]))
    ).first()


def latest_approved(session: Session, purpose_id: int) -> Assessment | None:
    return session.exec(
        select(Assessment)
        .where(Assessment.purpose_id == purpose_id, Assessment.status == State.approved)
        .order_by(col(Assessment.approved_at).desc(), col(Assessment.id).desc())
    ).first()


def list_all(session: Session) -> list[Assessment]:
    return list(session.exec(select(Assessment).order_by(col(Assessment.purpose_key),
                                                          col(Assessment.id))).all())


def risks_of(session: Session, pia: Assessment) -> list[tuple[Risk, list[Measure]]]:
    risks = session.exec(select(Risk).where(Risk.assessment_id == pia.id)
                         .order_by(col(Risk.position), col(Risk.id))).all()
    ids = [r.id for r in risks]
    measures: dict[int, list[Measure]] = {}
    if ids:
        for m in session.exec(select(Measure).where(col(Measure.risk_id).in_(ids))
                              .order_by(col(Measure.position), col(Measure.id))):
            measures.setdefault(m.risk_id, []).append(m)
    return [(r, measures.get(r.id or 0, [])) for r in risks]


def comments_of(session: Session, pia: Assessment) -> list[PublicComment]:
    return list(session.exec(select(PublicComment).where(PublicComment.assessment_id == pia.id)
                             .order_by(col(PublicComment.received_at),
                                       col(PublicComment.id))).all())


def steps_of(session: Session, pia: Assessment) -> list[Step]:
    return list(session.exec(select(Step).where(Step.assessment_id == pia.id)
                             .order_by(col(Step.id))).all())


def _lock(session: Session, pia_id: int, version: int, by: Principal,
          states: Collection[State] = EDITABLE, action: str = "edit") -> Assessment:
    """Take the PIA at `version` and raise its version, or refuse with a conflict."""
    pia = get(session, pia_id)
    if pia.status not in states:
        if action == "edit":
            raise Conflict(Reason.of("pia.not_editable", status=STATE_LABELS[pia.status]))
        raise Conflict(Reason.of("pia.bad_transition", status=STATE_LABELS[pia.status],
                                 action=action))
    table = Assessment.__table__  # type: ignore[attr-defined]
    result = session.execute(
        update(table)
        .where(table.c.id == pia_id, table.c.version == version)
        .values(version=version + 1, updated_at=utcnow(), updated_by=by.account_id)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(pia)
        raise Conflict(Reason.of("pia.conflict", mine=version, current=pia.version,
                                 field="version", refs={"pia": pia_id}))
    session.refresh(pia)
    return pia


# ---------------------------------------------------------------- prefill


def _line(values: Sequence[str]) -> str:
    return "、".join(v for v in values if v)


def prefill(snapshot: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The facts of the snapshot that fill the form (each marked as prefilled)."""
    design = snapshot.get("design", {})
    items = snapshot.get("context", {}).get("items", [])
    handling = design.get("handling", {})
    rule = design.get("subjects_rule") or {}
    counts = [i.get("persons_count") for i in items if isinstance(i.get("persons_count"), int)]
    ages = ""
    if "min_age" in rule or "max_age" in rule:
        ages = f"{rule.get('min_age', 0)}〜{rule.get('max_age', '')}歳の者"
    persons = ages + (f"（ファイルの記録人数: 最大 {max(counts):,} 人）" if counts else "")
    files = sorted({i.get("file_name", "") for i in items})
    retention = sorted({f"{i.get('name_ja')}: {i.get('retention_class')}" for i in items
                        if i.get("retention_class")})
    return {
        "basic": {
            "work_name": design.get("title", ""),
            "files": _line(files),
            "legal_basis": _line([f"{c.get('law', '')}{c.get('article', '')}"
                                  for c in design.get("citations", [])]),
            "units": _line([f"{s.get('organ')}" + (f"/{s['department']}" if s.get("department")
                                                    else "") + f"（{s.get('role')}）"
                            for s in design.get("handling_subjects", [])]),
        },
        "overview": {
            "persons": persons,
            "items": _line([i.get("name_ja", "") + ("（要配慮）" if i.get("special_care")
                                                    or i.get("ordinance_special_care") else "")
                            for i in items]),
            "acquisition": _line([design.get("acquisition", ""),
                                  handling.get("extraction", "")]),
            "use": _line([handling.get("logic", ""), handling.get("result_viewers", ""),
                          handling.get("human_assessment", "")]),
            "provision": _line([f"{f.get('item')}: {f.get('from')} → {f.get('to')}"
                                f"（{f.get('route')}）" for f in design.get("flows", [])]),
            "storage": _line(retention),
        },
    }


def _apply_prefill(form: dict[str, Any], snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """Fill empty or still-prefilled fields with the snapshot's facts; keep what was typed."""
    for section, values in prefill(snapshot).items():
        target = form.setdefault(section, {})
        for name, value in values.items():
            current = target.get(name)
            replaceable = current is None or current.get("prefilled") or not current.get("value")
            if replaceable and value:
                target[name] = {"value": value, "prefilled": True}
    return form


def suggested_threshold(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    facts = rules.design_facts(snapshot)
    counts = [i.get("persons_count") for i in snapshot.get("context", {}).get("items", [])
              if isinstance(i.get("persons_count"), int)]
    return {
        **rules.ThresholdAnswers().as_dict(),
        **facts,
        "persons": max(counts) if counts else 0,
    }


def safeguards_of(snapshot: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = snapshot.get("design", {}).get("safeguards") or {}
    return [(category, str(text)) for category in rules.SAFEGUARD_LABELS
            for text in (found.get(category) or [])]


# ---------------------------------------------------------------- open and edit


def open(session: Session, by: Actor, purpose_id: int, snapshot: Mapping[str, Any],
         design_hash: str, at: datetime | None = None) -> Assessment:
    """Start a PIA (or a re-assessment) of the design governance hands over."""
    officer = _officer(by)
    existing = in_progress(session, purpose_id)
    if existing is not None:
        raise Conflict(Reason.of("pia.already_open", id=existing.id, refs={"pia": existing.id}))
    design = snapshot.get("design", {})
    previous = latest_approved(session, purpose_id)
    form = loads(previous.form) if previous else {}
    pia = Assessment(
        purpose_id=purpose_id, snapshot=dumps(dict(snapshot)), design_hash=design_hash,
        design_format=snapshot_format(snapshot), purpose_key=str(design.get("purpose", ""))[:64],
        purpose_title=str(design.get("title", ""))[:200],
        form=dumps(_apply_prefill(form, snapshot)), author_id=officer.account_id,
        created_at=at or utcnow(), updated_by=officer.account_id,
    )
    session.add(pia)
    session.flush()
    if previous is not None:  # a re-assessment starts from the last approved register
        for risk, measures in risks_of(session, previous):
            copy = Risk(assessment_id=pia.id or 0, position=risk.position, stage=risk.stage,
                        title=risk.title, description=risk.description,
                        likelihood=risk.likelihood, impact=risk.impact,
                        self_rating=risk.self_rating, residual=risk.residual, items=risk.items)
            session.add(copy)
            session.flush()
            for m in measures:
                session.add(Measure(risk_id=copy.id or 0, position=m.position, text=m.text,
                                    safeguard_category=m.safeguard_category,
                                    safeguard_text=m.safeguard_text))
    _step(session, pia, "open", officer, at=at)
    _audit(session, "pia.opened", officer, pia,
           {"design_hash": design_hash, "reassessment_of": previous.id if previous else None})
    return pia


def save_threshold(session: Session, by: Actor, pia_id: int, version: int,
                   answers: Mapping[str, Any]) -> Assessment:
    officer = _officer(by)
    pia = _lock(session, pia_id, version, officer)
    parsed = rules.ThresholdAnswers.from_mapping(answers)
    result = rules.threshold_level(parsed, policy(rules.PiaPolicy).threshold_rules)
    pia.threshold = dumps(parsed.as_dict())
    pia.level = result.level
    pia.threshold_rules = ",".join(result.matched)[:300]
    session.add(pia)
    _audit(session, "pia.threshold_saved", officer, pia, {"level": result.level.value})
    return pia


def save_section(session: Session, by: Actor, pia_id: int, version: int, section: str,
                 values: Mapping[str, str]) -> Assessment:
    officer = _officer(by)
    if section not in FORM_SECTIONS:
        raise NotFound(Reason.of("pia.unknown_section", section=section))
    known = {name for name, _ in FORM_SECTIONS[section][1]}
    unknown = [name for name in values if name not in known]
    if unknown:
        raise InvalidInput([Reason.of("pia.unknown_field", section=section, name=n, field=n)
                            for n in unknown])
    pia = _lock(session, pia_id, version, officer)
    form = loads(pia.form)
    target = form.setdefault(section, {})
    for name, value in values.items():
        before = target.get(name) or {}
        unchanged = before.get("prefilled") and before.get("value") == value
        target[name] = {"value": value.strip(), "prefilled": bool(unchanged)}
    pia.form = dumps(form)
    session.add(pia)
    _audit(session, "pia.section_saved", officer, pia, {"section": section})
    return pia


def _check_risk(snapshot: Mapping[str, Any], data: RiskIn) -> None:
    keys = {i.get("key") for i in snapshot.get("context", {}).get("items", [])}
    keys |= set(snapshot.get("design", {}).get("items", []))
    safeguards = {text for _, text in safeguards_of(snapshot)}
    problems = [Reason.of("pia.unknown_item", item=k, field="items") for k in data.items
                if k not in keys]
    problems += [Reason.of("pia.unknown_safeguard", text=m.safeguard_text[:40],
                           field="measures") for m in data.measures
                 if m.safeguard_text and m.safeguard_text not in safeguards]
    if problems:
        raise InvalidInput(problems)


def _write_measures(session: Session, risk: Risk, data: RiskIn) -> None:
    for old in session.exec(select(Measure).where(Measure.risk_id == risk.id)):
        session.delete(old)
    session.flush()
    for position, m in enumerate(data.measures, start=1):
        session.add(Measure(risk_id=risk.id or 0, position=position,
                            text=m.text.strip() or m.safeguard_text.strip(),
                            safeguard_category=m.safeguard_category,
                            safeguard_text=m.safeguard_text))


def _fill_risk(risk: Risk, data: RiskIn) -> None:
    risk.stage = data.stage
    risk.title = data.title.strip()
    risk.description = data.description
    risk.likelihood = data.likelihood
    risk.impact = data.impact
    risk.self_rating = data.self_rating
    risk.residual = data.residual
    risk.items = ",".join(sorted(set(data.items)))


def add_risk(session: Session, by: Actor, pia_id: int, data: RiskIn) -> Risk:
    officer = _officer(by)
    pia = _lock(session, pia_id, data.version, officer)
    _check_risk(loads(pia.snapshot), data)
    count = len(risks_of(session, pia))
    risk = Risk(assessment_id=pia_id, position=count + 1, stage=data.stage, title=data.title)
    _fill_risk(risk, data)
    session.add(risk)
    session.flush()
    _write_measures(session, risk, data)
    session.flush()
    _audit(session, "pia.risk_added", officer, pia, {"risk": risk.id})
    return risk


def _risk(session: Session, pia_id: int, risk_id: int) -> Risk:
    return get_by(session, Risk, "pia.unknown_risk", id=risk_id, assessment_id=pia_id)


def update_risk(session: Session, by: Actor, pia_id: int, risk_id: int, data: RiskIn) -> Risk:
    officer = _officer(by)
    pia = _lock(session, pia_id, data.version, officer)
    risk = _risk(session, pia_id, risk_id)
    _check_risk(loads(pia.snapshot), data)
    _fill_risk(risk, data)
    session.add(risk)
    _write_measures(session, risk, data)
    session.flush()
    _audit(session, "pia.risk_updated", officer, pia, {"risk": risk.id})
    return risk


def delete_risk(session: Session, by: Actor, pia_id: int, risk_id: int, version: int) -> None:
    officer = _officer(by)
    pia = _lock(session, pia_id, version, officer)
    risk = _risk(session, pia_id, risk_id)
    for m in session.exec(select(Measure).where(Measure.risk_id == risk.id)):
        session.delete(m)
    session.flush()
    session.delete(risk)
    session.flush()
    _audit(session, "pia.risk_deleted", officer, pia, {"risk": risk_id})


def save_procedure(session: Session, by: Actor, pia_id: int, data: ProcedureIn) -> Assessment:
    officer = _officer(by)
    pia = _lock(session, pia_id, data.version, officer)
    pia.comment_start = as_utc(data.comment_start) if data.comment_start else None
    pia.comment_end = as_utc(data.comment_end) if data.comment_end else None
    pia.comment_short_reason = data.comment_short_reason.strip()
    pia.third_party_body = data.third_party_body.strip()
    pia.third_party_members = data.third_party_members.strip()
    pia.third_party_opinion = data.third_party_opinion.strip()
    pia.conclusion = data.conclusion.strip()
    session.add(pia)
    _audit(session, "pia.procedure_saved", officer, pia)
    return pia


def add_comment(session: Session, by: Actor, pia_id: int, data: CommentIn) -> PublicComment:
    officer = _officer(by)
    pia = _lock(session, pia_id, data.version, officer)
    comment = PublicComment(assessment_id=pia_id, comment=data.comment.strip(),
                            response=data.response.strip(),
                            received_at=as_utc(data.received_at) if data.received_at
                            else utcnow())
    session.add(comment)
    session.flush()
    _audit(session, "pia.comment_recorded", officer, pia, {"comment": comment.id})
    return comment


# ---------------------------------------------------------------- completeness


def _form_value(form: Mapping[str, Any], section: str, name: str) -> str:
    return str(((form.get(section) or {}).get(name) or {}).get("value") or "").strip()


def _risk_facts(session: Session, pia: Assessment) -> list[rules.RiskFacts]:
    return [
        rules.RiskFacts(
            id=r.id or 0, position=r.position, stage=r.stage, title=r.title,
            likelihood=r.likelihood, impact=r.impact, self_rating=r.self_rating,
            residual=r.residual, items=tuple(k for k in r.items.split(",") if k),
            measures=tuple(m.text for m in ms),
        )
        for r, ms in risks_of(session, pia)
    ]


def section_problems(session: Session, pia: Assessment) -> dict[str, list[Reason]]:
    """What is missing, by section, before the PIA can be approved at its level."""
    snapshot = loads(pia.snapshot)
    out: dict[str, list[Reason]] = {name: [] for name in SECTION_ORDER}
    threshold = loads(pia.threshold)
    out["threshold"] = rules.threshold_problems(threshold, snapshot)
    level = pia.level
    risks = _risk_facts(session, pia)
    special = rules.special_care_items(snapshot)
    if level is not None and level != Level.none:
        form = loads(pia.form)
        for section, (title, fields) in FORM_SECTIONS.items():
            for name, label in fields:
                if not _form_value(form, section, name):
                    out[section].append(Reason.of("pia.section_incomplete", section=title,
                                                  label=label, field=f"{section}.{name}"))
        if not risks:
            out["risks"].append(Reason.of("pia.no_risks", field="risks"))
    out["risks"].extend(rules.risk_problems(risks, special, policy(rules.PiaPolicy)))
    if level == Level.full:
        out["procedure"].extend(rules.comment_period_problems(
            pia.comment_start, pia.comment_end,
            pia.comment_short_reason, policy(rules.PiaPolicy)))
        if not pia.third_party_body or not pia.third_party_opinion:
            out["procedure"].append(Reason.of("pia.third_party_missing",
                                              field="third_party_opinion"))
    return out


def problems(session: Session, pia: Assessment) -> list[Reason]:
    return [r for name in SECTION_ORDER for r in section_problems(session, pia)[name]]


def _required_count(section: str, pia: Assessment, risks: int) -> int:
    if section == "threshold":
        return 1
    if pia.level in (None, Level.none):
        return 0
    if section in FORM_SECTIONS:
        return len(FORM_SECTIONS[section][1])
    if section == "risks":
        return max(risks, 1)
    if section == "procedure":
        return 2 if pia.level == Level.full else 0
    return 0


def progress(session: Session, pia: Assessment) -> list[tuple[str, int, int]]:
    """(section, done, total) for each section of the form."""
    found = section_problems(session, pia)
    risks = _risk_facts(session, pia)
    rows = []
    for section in SECTION_ORDER:
        total = _required_count(section, pia, len(risks))
        if section == "risks":
            bad = {r.refs.get("risk") for r in found["risks"] if r.refs.get("risk")}
            total = max(total, len(risks))
            done = len([r for r in risks if r.id not in bad])
            if any(r.code == "pia.special_care_unaddressed" for r in found["risks"]):
                total += 1
        elif section == "procedure":
            done = total - min(total, len(found[section]))
        else:
            done = total - min(total, len(found[section]))
        rows.append((section, done, total))
    return rows


# ---------------------------------------------------------------- workflow


def _is_own(officer: Principal, pia: Assessment) -> bool:
    """Separation of duties: the author or submitter of an assessment never approves it."""
    return officer.account_id in {pia.author_id, pia.submitted_by}


def allowed_actions(principal: Principal, pia: Assessment) -> frozenset[str]:
    """The workflow steps the signed-in person may take on the assessment now; the form offers
    these and nothing else."""
    if not principal.has_role(Role.privacy_officer):
        return frozenset()
    allowed = {action for action in rules.WORKFLOW
               if pia.status in rules.workflow_sources(action, pia.level)}
    if _is_own(principal, pia):
        allowed.discard("approve")
    return frozenset(allowed)


def submit(session: Session, by: Actor, pia_id: int, version: int,
           snapshot: Mapping[str, Any], design_hash: str, at: datetime | None = None
           ) -> Assessment:
    """Submit for approval against the current design (governance hands it over again)."""
    officer = _officer(by)
    found = rules.threshold_problems(loads(get(session, pia_id).threshold), snapshot)
    if found:
        raise InvalidInput(found)
    pia = _lock(session, pia_id, version, officer,
                rules.workflow_sources("submit", get(session, pia_id).level), "submit")
    changed = pia.design_hash != design_hash
    pia.snapshot = dumps(dict(snapshot))
    pia.design_hash = design_hash
    pia.design_format = snapshot_format(snapshot)
    pia.form = dumps(_apply_prefill(loads(pia.form), snapshot))
    pia.status = State.review
    pia.submitted_by = officer.account_id
    pia.submitted_at = at or utcnow()
    session.add(pia)
    _step(session, pia, "submit", officer, at=at)
    _audit(session, "pia.submitted", officer, pia,
           {"design_hash": design_hash, "snapshot_refreshed": changed})
    return pia


def start_public_comment(session: Session, by: Actor, pia_id: int, version: int,
                         at: datetime | None = None) -> Assessment:
    officer = _officer(by)
    current = get(session, pia_id)
    if not rules.workflow_sources("start_public_comment", current.level):
        raise Conflict(Reason.of("pia.bad_transition", status=STATE_LABELS[current.status],
                                 action="start_public_comment"))
    found = rules.comment_period_problems(
        current.comment_start, current.comment_end,
        current.comment_short_reason, policy(rules.PiaPolicy))
    if found:
        raise InvalidInput(found)
    pia = _lock(session, pia_id, version, officer,
                rules.workflow_sources("start_public_comment", current.level),
                "start_public_comment")
    pia.status = State.public_comment
    session.add(pia)
    _step(session, pia, "public_comment", officer, at=at)
    _audit(session, "pia.public_comment_started", officer, pia)
    return pia


def to_third_party(session: Session, by: Actor, pia_id: int, version: int,
                   at: datetime | None = None) -> Assessment:
    officer = _officer(by)
    current = get(session, pia_id)
    moment = as_utc(at or utcnow())
    if current.comment_end is not None and current.comment_end > moment:
        raise Conflict(Reason.of("pia.comment_period_open",
                                 end=current.comment_end.date().isoformat(),
                                 field="comment_end"))
    pia = _lock(session, pia_id, version, officer,
                rules.workflow_sources("to_third_party", current.level), "to_third_party")
    pia.status = State.third_party_review
    session.add(pia)
    _step(session, pia, "third_party", officer, at=at)
    _audit(session, "pia.third_party_started", officer, pia)
    return pia


def approve(session: Session, by: Actor, pia_id: int, version: int, *,
            accept_residual_risk: bool, comment: str = "",
            next_review_due: datetime | None = None, at: datetime | None = None) -> Assessment:
    """Approval by a privacy officer who is not the author and accepts the residual risk."""
    officer = _officer(by)
    current = get(session, pia_id)
    ready = rules.workflow_sources("approve", current.level)
    if current.status not in ready:
        raise Conflict(Reason.of("pia.bad_transition", status=STATE_LABELS[current.status],
                                 action="approve"))
    # Every guard before the version is taken, so a refusal changes nothing.
    found: list[Reason] = []
    if _is_own(officer, current):
        found.append(Reason.of("pia.self_approval"))
    if not accept_residual_risk:
        found.append(Reason.of("pia.residual_not_accepted", field="accept_residual_risk"))
    found.extend(problems(session, current))
    if found:
        raise (Forbidden(found) if found[0].code == "pia.self_approval" else InvalidInput(found))
    pia = _lock(session, pia_id, version, officer, ready, "approve")
    now = as_utc(at or utcnow())
    previous = latest_approved(session, pia.purpose_id)
    if previous is not None and previous.id != pia.id:
        previous.status = State.superseded
        session.add(previous)
    pia.status = State.approved
    pia.approved_by = officer.account_id
    pia.approved_at = now
    pia.residual_accepted = True
    pia.residual_accepted_by = officer.account_id
    pia.next_review_due = (as_utc(next_review_due) if next_review_due
                           else now + timedelta(days=policy(rules.PiaPolicy).review_interval_days))
    session.add(pia)
    _step(session, pia, "approve", officer, comment, at=now)
    _audit(session, "pia.approved", officer, pia,
           {"design_hash": pia.design_hash, "level": pia.level,
            "superseded": previous.id if previous and previous.id != pia.id else None})
    return pia


def return_(session: Session, by: Actor, pia_id: int, version: int, comment: str = "",
            at: datetime | None = None) -> Assessment:
    officer = _officer(by)
    pia = _lock(session, pia_id, version, officer,
                rules.workflow_sources("return", get(session, pia_id).level), "return")
    pia.status = State.returned
    session.add(pia)
    _step(session, pia, "return", officer, comment, at=at)
    _audit(session, "pia.returned", officer, pia)
    return pia


# ---------------------------------------------------------------- status


def snapshot_format(snapshot: Mapping[str, Any]) -> int:
    """The design format of a snapshot governance handed over (1 before formats were named)."""
    value = snapshot.get("design_format", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def relied_on(session: Session, purpose_id: int,
              accepted: Callable[[int], Collection[str]]) -> tuple[Assessment | None, bool]:
    """The approved PIA the design relies on, and whether it assessed that very design.

    The latest approved PIA counts. While the next design it assessed is not yet in force,
    the PIA it superseded still covers the design in force (approving a re-assessment of pending
    drafts never halts what runs); a PIA is compared with the design in the format it approved.
    """
    approved = list(session.exec(
        select(Assessment)
        .where(Assessment.purpose_id == purpose_id,
               col(Assessment.status).in_((State.approved.value, State.superseded.value)))
        .order_by(col(Assessment.approved_at).desc(), col(Assessment.id).desc())
    ).all())
    latest = next((p for p in approved if p.status == State.approved), None)
    if latest is None:
        return None, False
    for pia in approved:
        if pia.design_hash in accepted(pia.design_format):
            return pia, True
    return latest, False


def status(session: Session, purpose_id: int, accepted: Callable[[int], Collection[str]],
           at: datetime | None = None) -> PiaStatus:
    """Usable only while an approved PIA matches the design (see `relied_on`), is reviewed in
    time and its residual risk is accepted; a draft re-assessment does not count until approved.

    `accepted(format)`: the design hashes a PIA approved in that design format may carry
    (governance computes them; pia never reads the design itself).
    """
    moment = as_utc(at or utcnow())
    pia, matches = relied_on(session, purpose_id, accepted)
    if pia is None:
        return PiaStatus(False, None, None,
                         [Reason.of("pia.not_approved", refs={"purpose_id": purpose_id})])
    refs = {"pia": pia.id, "purpose_id": purpose_id}
    reasons: list[Reason] = []
    if not matches:
        reasons.append(Reason.of("pia.design_changed", id=pia.id, refs=refs))
    due = pia.next_review_due
    if due is not None and due < moment and policy(rules.PiaPolicy).refuse_overdue_review:
        reasons.append(Reason.of("pia.review_overdue", id=pia.id, due=due.date().isoformat(),
                                 refs=refs))
    if not pia.residual_accepted:
        reasons.append(Reason.of("pia.residual_unaccepted", id=pia.id, refs=refs))
    return PiaStatus(not reasons, pia.id, pia.version, reasons)


def approved_snapshot(session: Session, purpose_id: int) -> dict[str, Any] | None:
    pia = latest_approved(session, purpose_id)
    return loads(pia.snapshot) if pia else None


# ---------------------------------------------------------------- documents


def _staff_names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(StaffAccount).where(col(StaffAccount.id).in_(wanted)))
    return {a.id or 0: a.display_name for a in rows}


def document_context(session: Session, pia: Assessment) -> dict[str, Any]:
    snapshot = loads(pia.snapshot)
    risks = risks_of(session, pia)
    names = _staff_names(session, {pia.author_id, pia.approved_by})
    heat = rules.heat_map((r.likelihood, r.impact) for r, _ in risks)
    residuals = {k: 0 for k in rules.RESIDUAL_LABELS}
    for r, _ in risks:
        if r.residual:
            residuals[r.residual] += 1
    return {
        "pia": pia,
        "state_label": STATE_LABELS[pia.status],
        "level_label": rules.LEVEL_LABELS.get(pia.level or "", "未判断"),
        "threshold": loads(pia.threshold),
        "questions": rules.THRESHOLD_QUESTIONS,
        "matched": [r for r in pia.threshold_rules.split(",") if r],
        "form": loads(pia.form),
        "sections": FORM_SECTIONS,
        "risks": [{"risk": r, "measures": ms, "score": rules.score(r.likelihood, r.impact),
                   "band": rules.band(rules.score(r.likelihood, r.impact))} for r, ms in risks],
        "heat": heat,
        "scale": rules.SCALE,
        "residuals": residuals,
        "labels": {
            "stage": rules.STAGE_LABELS, "self": rules.SELF_RATING_LABELS,
            "residual": rules.RESIDUAL_LABELS, "likelihood": rules.LIKELIHOOD_LABELS,
            "impact": rules.IMPACT_LABELS, "safeguard": rules.SAFEGUARD_LABELS,
        },
        "items": snapshot.get("context", {}).get("items", []),
        "special": rules.special_care_items(snapshot),
        "comments": comments_of(session, pia),
        "author": names.get(pia.author_id or 0, ""),
        "approver": names.get(pia.approved_by or 0, ""),
        "titles": SECTION_TITLES,
    }


def report_pdf(session: Session, pia: Assessment) -> bytes:
    """The full report (全項目評価書 structure), Japanese, as PDF."""
    return render_pdf("pia/report_print.html", document_context(session, pia), package="pia")


def summary_pdf(session: Session, pia: Assessment) -> bytes:
    """The public summary (公表用概要), Japanese, as PDF."""
    return render_pdf("pia/summary_print.html", document_context(session, pia), package="pia")


def public_summaries(session: Session) -> list[Assessment]:
    """The approved PIAs whose summary is public (the latest per purpose)."""
    return list(session.exec(select(Assessment).where(Assessment.status == State.approved)
                             .order_by(col(Assessment.purpose_key))).all())


# ---------------------------------------------------------------- to-do


def awaiting_approval(session: Session) -> list[Assessment]:
    states = [State.review.value, State.third_party_review.value]
    return list(session.exec(select(Assessment).where(col(Assessment.status).in_(states))
                             .order_by(col(Assessment.id))).all())


def reviews_due(session: Session, within_days: int = 60,
                at: datetime | None = None) -> list[Assessment]:
    limit = as_utc(at or utcnow()) + timedelta(days=within_days)
    return [p for p in public_summaries(session)
            if p.next_review_due is not None and p.next_review_due <= limit]
