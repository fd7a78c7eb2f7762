"""Routes of the PIA: staff JSON API, the console form, public summaries and PDFs."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import BaseModel
from sqlmodel import Session
from starlette.datastructures import FormData

from core import messages
from core.auth import Principal
from core.clock import TOKYO, format_tokyo
from core.dates import read_date
from core.forms import by_field, parse_form, text
from core.models import Role
from core.reasons import DomainError, InvalidInput, NotFound, Reason
from core.routes import TodoItem, TodoPanel
from core.schemas import ReasonPublic
from core.web import FormDep, SessionDep, api_staff, console_staff, public, record_refusal, render
from pia import rules, service
from pia.models import Assessment, Level, State
from pia.schemas import (
    ApproveIn,
    CommentIn,
    CommentPublic,
    MeasureIn,
    MeasurePublic,
    PiaPublic,
    ProcedureIn,
    ProgressPublic,
    RiskIn,
    RiskPublic,
    SectionIn,
    StepIn,
    ThresholdIn,
)

messages.register(
    {
        "pia.invalid_field": (
            "「{label}」の値が正しくありません（{detail}）。",
            "The value of {name!r} is not valid ({detail}).",
        ),
    }
)

READERS = (Role.privacy_officer, Role.auditor, Role.analyst, Role.data_holder)
Reader = Annotated[Principal, Depends(api_staff(*READERS))]
Officer = Annotated[Principal, Depends(api_staff(Role.privacy_officer))]
ConsoleReader = Annotated[Principal, Depends(console_staff(Role.privacy_officer, Role.auditor))]
ConsoleOfficer = Annotated[Principal, Depends(console_staff(Role.privacy_officer))]
Public = Depends(public())

api_router = APIRouter(prefix="/api/pia", tags=["pia"])
console_router = APIRouter(prefix="/pia")
public_router = APIRouter()

M = TypeVar("M", bound=BaseModel)


# ---------------------------------------------------------------- output


def pia_public(session: Session, pia: Assessment) -> PiaPublic:
    assert pia.id is not None
    return PiaPublic(
        id=pia.id, purpose_id=pia.purpose_id, purpose_key=pia.purpose_key, status=pia.status,
        version=pia.version, level=pia.level, threshold=service.loads(pia.threshold),
        threshold_rules=[r for r in pia.threshold_rules.split(",") if r],
        design_hash=pia.design_hash, form=service.loads(pia.form),
        risks=[
            RiskPublic(
                id=r.id or 0, position=r.position, stage=r.stage, title=r.title,
                description=r.description, likelihood=r.likelihood, impact=r.impact,
                score=rules.score(r.likelihood, r.impact),
                band=rules.band(rules.score(r.likelihood, r.impact)),
                self_rating=r.self_rating, residual=r.residual,
                items=[k for k in r.items.split(",") if k],
                measures=[MeasurePublic(text=m.text, safeguard_category=m.safeguard_category,
                                        safeguard_text=m.safeguard_text) for m in ms],
            )
            for r, ms in service.risks_of(session, pia)
        ],
        comments=[CommentPublic(id=c.id or 0, received_at=c.received_at, comment=c.comment,
                                response=c.response) for c in service.comments_of(session, pia)],
        comment_start=pia.comment_start, comment_end=pia.comment_end,
        comment_short_reason=pia.comment_short_reason, third_party_body=pia.third_party_body,
        third_party_members=pia.third_party_members,
        third_party_opinion=pia.third_party_opinion, conclusion=pia.conclusion,
        author_id=pia.author_id, approved_by=pia.approved_by, approved_at=pia.approved_at,
        residual_accepted=pia.residual_accepted, next_review_due=pia.next_review_due,
        progress=[ProgressPublic(section=s, done=d, total=t)
                  for s, d, t in service.progress(session, pia)],
        problems=[ReasonPublic.of(r) for r in service.problems(session, pia)],
    )


def _pdf(content: bytes, name: str) -> Response:
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


# ---------------------------------------------------------------- JSON API


@api_router.get("", response_model=list[PiaPublic])
def api_list(principal: Reader, session: SessionDep,
             purpose_id: int | None = None) -> list[PiaPublic]:
    found = (service.of_purpose(session, purpose_id) if purpose_id is not None
             else service.list_all(session))
    return [pia_public(session, p) for p in found]


@api_router.get("/{pia_id}", response_model=PiaPublic)
def api_show(pia_id: int, principal: Reader, session: SessionDep) -> PiaPublic:
    return pia_public(session, service.get(session, pia_id))


@api_router.put("/{pia_id}/threshold", response_model=PiaPublic)
def api_threshold(pia_id: int, body: ThresholdIn, principal: Officer,
                  session: SessionDep) -> PiaPublic:
    pia = service.save_threshold(session, principal, pia_id, body.version, body.answers())
    return pia_public(session, pia)


@api_router.put("/{pia_id}/sections/{section}", response_model=PiaPublic)
def api_section(pia_id: int, section: str, body: SectionIn, principal: Officer,
                session: SessionDep) -> PiaPublic:
    pia = service.save_section(session, principal, pia_id, body.version, section, body.values)
    return pia_public(session, pia)


@api_router.post("/{pia_id}/risks", response_model=PiaPublic, status_code=201)
def api_add_risk(pia_id: int, body: RiskIn, principal: Officer,
                 session: SessionDep) -> PiaPublic:
    service.add_risk(session, principal, pia_id, body)
    return pia_public(session, service.get(session, pia_id))


@api_router.put("/{pia_id}/risks/{risk_id}", response_model=PiaPublic)
def api_update_risk(pia_id: int, risk_id: int, body: RiskIn, principal: Officer,
                    session: SessionDep) -> PiaPublic:
    service.update_risk(session, principal, pia_id, risk_id, body)
    return pia_public(session, service.get(session, pia_id))


@api_router.delete("/{pia_id}/risks/{risk_id}", response_model=PiaPublic)
def api_delete_risk(pia_id: int, risk_id: int, version: int, principal: Officer,
                    session: SessionDep) -> PiaPublic:
    service.delete_risk(session, principal, pia_id, risk_id, version)
    return pia_public(session, service.get(session, pia_id))


@api_router.put("/{pia_id}/procedure", response_model=PiaPublic)
def api_procedure(pia_id: int, body: ProcedureIn, principal: Officer,
                  session: SessionDep) -> PiaPublic:
    return pia_public(session, service.save_procedure(session, principal, pia_id, body))


@api_router.post("/{pia_id}/comments", response_model=PiaPublic, status_code=201)
def api_comment(pia_id: int, body: CommentIn, principal: Officer,
                session: SessionDep) -> PiaPublic:
    service.add_comment(session, principal, pia_id, body)
    return pia_public(session, service.get(session, pia_id))


@api_router.post("/{pia_id}/start-public-comment", response_model=PiaPublic)
def api_start_comment(pia_id: int, body: StepIn, principal: Officer,
                      session: SessionDep) -> PiaPublic:
    return pia_public(session, service.start_public_comment(session, principal, pia_id,
                                                            body.version))


@api_router.post("/{pia_id}/third-party", response_model=PiaPublic)
def api_third_party(pia_id: int, body: StepIn, principal: Officer,
                    session: SessionDep) -> PiaPublic:
    return pia_public(session, service.to_third_party(session, principal, pia_id, body.version))


@api_router.post("/{pia_id}/approve", response_model=PiaPublic)
def api_approve(pia_id: int, body: ApproveIn, principal: Officer,
                session: SessionDep) -> PiaPublic:
    pia = service.approve(session, principal, pia_id, body.version,
                          accept_residual_risk=body.accept_residual_risk, comment=body.comment,
                          next_review_due=body.next_review_due)
    return pia_public(session, pia)


@api_router.post("/{pia_id}/return", response_model=PiaPublic)
def api_return(pia_id: int, body: StepIn, principal: Officer,
               session: SessionDep) -> PiaPublic:
    return pia_public(session, service.return_(session, principal, pia_id, body.version,
                                               body.comment))


@api_router.get("/{pia_id}/report.pdf")
def api_report(pia_id: int, principal: Reader, session: SessionDep) -> Response:
    return _pdf(service.report_pdf(session, service.get(session, pia_id)), f"pia-{pia_id}.pdf")


# ---------------------------------------------------------------- public summaries


@public_router.get("/pia-summaries", dependencies=[Public])
def public_list(request: Request, session: SessionDep) -> Response:
    return render(request, "pia/public_list.html", {
        "summaries": service.public_summaries(session),
        "levels": rules.LEVEL_LABELS,
    })


@public_router.get("/pia-summaries/{pia_id}.pdf", dependencies=[Public])
def public_summary_pdf(pia_id: int, session: SessionDep) -> Response:
    pia = service.get(session, pia_id)
    if pia.status != State.approved:
        raise NotFound(Reason.of("pia.unknown", id=pia_id))
    return _pdf(service.summary_pdf(session, pia), f"pia-summary-{pia_id}.pdf")


# ---------------------------------------------------------------- console


FIELD_LABELS: dict[str, str] = {
    **{f"{s}.{n}": label for s, (_, fields) in service.FORM_SECTIONS.items()
       for n, label in fields},
    **rules.THRESHOLD_QUESTIONS,
    "stage": "段階", "title": "リスク", "description": "内容", "likelihood": "発生可能性",
    "impact": "影響度", "self_rating": "自己評価", "residual": "残存リスク",
    "items": "関係する記録項目",
    "measures": "措置", "comment_start": "意見聴取の開始日", "comment_end": "意見聴取の終了日",
    "comment_short_reason": "期間を短縮する理由", "third_party_body": "第三者点検の実施機関",
    "third_party_members": "構成員", "third_party_opinion": "第三者点検の意見",
    "conclusion": "結論", "comment": "意見", "response": "回答", "version": "版",
    "accept_residual_risk": "残存リスクの受容",
}


def _parse(model: type[M], data: dict[str, Any]) -> M:
    return parse_form(model, data, FIELD_LABELS, code="pia.invalid_field")


def _heat_svg(heat: dict[tuple[int, int], int]) -> str:
    """A likelihood × impact heat map as inline SVG (counts of risks per cell)."""
    size, left, top = 56, 70, 16
    colours = {"low": "#cfe8d4", "medium": "#fbe3a6", "high": "#f4b3ad"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{left + 4 * size + 10}" '
             f'height="{top + 4 * size + 50}" aria-label="リスクの発生可能性×影響度のヒートマップ" '
             'class="heatmap">']
    for likelihood in rules.SCALE:
        for impact in rules.SCALE:
            x = left + (impact - 1) * size
            y = top + (4 - likelihood) * size
            fill = colours[rules.band(likelihood * impact)]
            count = heat[(likelihood, impact)]
            parts.append(
                f'<rect x="{x}" y="{y}" width="{size}" height="{size}" fill="{fill}" '
                f'stroke="#fff" data-likelihood="{likelihood}" data-impact="{impact}" '
                f'data-count="{count}"><title>発生可能性{likelihood}×影響度{impact}: {count}件'
                '</title></rect>')
            if count:
                parts.append(f'<text x="{x + size / 2}" y="{y + size / 2 + 6}" '
                             f'text-anchor="middle" font-size="18">{count}</text>')
        parts.append(f'<text x="{left - 8}" y="{top + (4 - likelihood) * size + size / 2 + 5}" '
                     f'text-anchor="end" font-size="11">{rules.LIKELIHOOD_LABELS[likelihood]}'
                     '</text>')
    for impact in rules.SCALE:
        parts.append(f'<text x="{left + (impact - 1) * size + size / 2}" '
                     f'y="{top + 4 * size + 16}" text-anchor="middle" font-size="11">'
                     f'{rules.IMPACT_LABELS[impact]}</text>')
    parts.append(f'<text x="{left + 2 * size}" y="{top + 4 * size + 40}" text-anchor="middle" '
                 'font-size="12">影響度 →（縦軸: 発生可能性）</text></svg>')
    return "".join(parts)


def _page(request: Request, session: Session, pia: Assessment, *,
          reasons: list[Reason] | None = None, values: dict[str, Any] | None = None,
          status_code: int = 200, saved: str = "") -> Response:
    context = service.document_context(session, pia)
    snapshot = service.loads(pia.snapshot)
    found = service.section_problems(session, pia)
    threshold = service.loads(pia.threshold)
    context.update({
        "progress": service.progress(session, pia),
        "section_problems": found,
        "threshold_answered": bool(threshold),
        "threshold_values": threshold or service.suggested_threshold(snapshot),
        "safeguards": service.safeguards_of(snapshot),
        "heat_svg": Markup(_heat_svg(context["heat"])),  # noqa: S704 (built from numbers)
        "reasons": reasons or [],
        "errors": by_field(reasons or []),
        "values": values or {},
        "levels": rules.LEVEL_LABELS,
        "editable": pia.status in service.EDITABLE,
        "steps": service.steps_of(session, pia),
        "saved": saved,
        "is_full": pia.level == Level.full,
        "actions": service.allowed_actions(request.state.principal, pia),
        "date": lambda d: format_tokyo(d)[:10] if d else "",
    })
    return render(request, "pia/form.html", context, status_code=status_code)


def _failed(request: Request, session: Session, pia_id: int, error: DomainError,
            values: dict[str, Any]) -> Response:
    session.rollback()
    record_refusal(request, error)
    return _page(request, session, service.get(session, pia_id), reasons=error.reasons,
                 values=values, status_code=error.status_code)


def _version(form: Any) -> int:
    try:
        return int(str(form.get("version", "0")))
    except ValueError:
        return 0


def _date(text: str, field: str, end_of_day: bool = False) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    day = read_date(text, field=field)
    return datetime.combine(day, time(23, 59) if end_of_day else time(0, 0), TOKYO)


@console_router.get("")
def console_list(request: Request, principal: ConsoleReader, session: SessionDep) -> Response:
    rows = [(p, service.progress(session, p)) for p in service.list_all(session)]
    return render(request, "pia/list.html", {"rows": rows, "states": service.STATE_LABELS,
                                             "levels": rules.LEVEL_LABELS})


@console_router.get("/{pia_id}")
def console_show(pia_id: int, request: Request, principal: ConsoleReader,
                 session: SessionDep, saved: str = "") -> Response:
    return _page(request, session, service.get(session, pia_id), saved=saved)


def _saved(pia_id: int, section: str) -> RedirectResponse:
    return RedirectResponse(f"/pia/{pia_id}?saved={section}#{section}", status_code=303)


@console_router.post("/{pia_id}/threshold")
def console_threshold(pia_id: int, request: Request, form: FormDep, principal: ConsoleOfficer,
                            session: SessionDep) -> Response:
    values: dict[str, Any] = {name: form.get(name) == "on" for name in rules.THRESHOLD_QUESTIONS
                              if name not in ("persons", "handlers")}
    values["persons"] = text(form, "persons") or "0"
    values["handlers"] = text(form, "handlers") or "0"
    try:
        body = _parse(ThresholdIn, {**values, "version": _version(form)})
        service.save_threshold(session, principal, pia_id, body.version, body.answers())
    except DomainError as error:
        return _failed(request, session, pia_id, error, {"threshold": values})
    return _saved(pia_id, "threshold")


@console_router.post("/{pia_id}/sections/{section}")
def console_section(pia_id: int, section: str, request: Request, form: FormDep,
                          principal: ConsoleOfficer, session: SessionDep) -> Response:
    fields = service.FORM_SECTIONS.get(section, ("", []))[1]
    values = {name: str(form.get(name, "")) for name, _ in fields}
    try:
        service.save_section(session, principal, pia_id, _version(form), section, values)
    except DomainError as error:
        return _failed(request, session, pia_id, error, {section: values})
    return _saved(pia_id, section)


def _risk_from_form(form: Any, snapshot_safeguards: list[tuple[str, str]]) -> dict[str, Any]:
    chosen = {int(v) for v in form.getlist("safeguards") if str(v).isdigit()}
    measures = [{"safeguard_category": c, "safeguard_text": t}
                for i, (c, t) in enumerate(snapshot_safeguards) if i in chosen]
    measures += [{"text": line.strip()}
                 for line in str(form.get("measures", "")).splitlines() if line.strip()]

    def blank(name: str) -> str | None:
        return text(form, name) or None

    return {
        "stage": form.get("stage", ""), "title": str(form.get("title", "")),
        "description": str(form.get("description", "")),
        "likelihood": blank("likelihood"), "impact": blank("impact"),
        "self_rating": blank("self_rating"), "residual": blank("residual"),
        "items": [str(v) for v in form.getlist("items")],
        "measures": measures, "measures_text": str(form.get("measures", "")),
        "safeguards": sorted(chosen),
    }


def _save_risk(request: Request, form: FormData, session: Session, principal: Principal,
               pia_id: int, risk_id: int | None) -> Response:
    pia = service.get(session, pia_id)
    data = _risk_from_form(form, service.safeguards_of(service.loads(pia.snapshot)))
    key = f"risk-{risk_id}" if risk_id else "risk-new"
    try:
        # Each measure first, so that a bad one is named by its own field, as it always was.
        measures = [_parse(MeasureIn, m) for m in data["measures"]]
        body = _parse(RiskIn, {**data, "version": _version(form), "measures": measures})
        if risk_id is None:
            service.add_risk(session, principal, pia_id, body)
        else:
            service.update_risk(session, principal, pia_id, risk_id, body)
    except DomainError as error:
        return _failed(request, session, pia_id, error, {key: data})
    return _saved(pia_id, "risks")


@console_router.post("/{pia_id}/risks")
def console_add_risk(pia_id: int, request: Request, form: FormDep, principal: ConsoleOfficer,
                           session: SessionDep) -> Response:
    return _save_risk(request, form, session, principal, pia_id, None)


@console_router.post("/{pia_id}/risks/{risk_id}")
def console_update_risk(pia_id: int, risk_id: int, request: Request, form: FormDep,
                              principal: ConsoleOfficer, session: SessionDep) -> Response:
    return _save_risk(request, form, session, principal, pia_id, risk_id)


@console_router.post("/{pia_id}/risks/{risk_id}/delete")
def console_delete_risk(pia_id: int, risk_id: int, request: Request, form: FormDep,
                              principal: ConsoleOfficer, session: SessionDep) -> Response:
    try:
        service.delete_risk(session, principal, pia_id, risk_id, _version(form))
    except DomainError as error:
        return _failed(request, session, pia_id, error, {})
    return _saved(pia_id, "risks")


@console_router.post("/{pia_id}/procedure")
def console_procedure(pia_id: int, request: Request, form: FormDep, principal: ConsoleOfficer,
                            session: SessionDep) -> Response:
    values = {name: str(form.get(name, "")) for name in (
        "comment_start", "comment_end", "comment_short_reason", "third_party_body",
        "third_party_members", "third_party_opinion", "conclusion")}
    try:
        body = _parse(ProcedureIn, {
            **values, "version": _version(form),
            "comment_start": _date(values["comment_start"], "comment_start"),
            "comment_end": _date(values["comment_end"], "comment_end", end_of_day=True)})
        service.save_procedure(session, principal, pia_id, body)
    except DomainError as error:
        return _failed(request, session, pia_id, error, {"procedure": values})
    return _saved(pia_id, "procedure")


@console_router.post("/{pia_id}/comments")
def console_comment(pia_id: int, request: Request, form: FormDep, principal: ConsoleOfficer,
                          session: SessionDep) -> Response:
    values = {"comment": str(form.get("comment", "")), "response": str(form.get("response", ""))}
    try:
        body = _parse(CommentIn, {"version": _version(form), **values})
        service.add_comment(session, principal, pia_id, body)
    except DomainError as error:
        return _failed(request, session, pia_id, error, {"comment": values})
    return _saved(pia_id, "procedure")


@console_router.post("/{pia_id}/workflow/{action}")
def console_workflow(pia_id: int, action: str, request: Request, form: FormDep,
                           principal: ConsoleOfficer, session: SessionDep) -> Response:
    version = _version(form)
    comment = str(form.get("comment", ""))
    try:
        if action == "start-public-comment":
            service.start_public_comment(session, principal, pia_id, version)
        elif action == "third-party":
            service.to_third_party(session, principal, pia_id, version)
        elif action == "approve":
            service.approve(session, principal, pia_id, version,
                            accept_residual_risk=form.get("accept_residual_risk") == "on",
                            comment=comment)
        elif action == "return":
            service.return_(session, principal, pia_id, version, comment)
        else:
            raise InvalidInput(Reason.of("pia.bad_transition", status="", action=action[:30]))
    except DomainError as error:
        return _failed(request, session, pia_id, error, {"workflow": {"comment": comment}})
    return _saved(pia_id, "workflow")


@console_router.get("/{pia_id}/report.pdf")
def console_report(pia_id: int, principal: ConsoleReader, session: SessionDep) -> Response:
    return _pdf(service.report_pdf(session, service.get(session, pia_id)), f"pia-{pia_id}.pdf")


@console_router.get("/{pia_id}/summary.pdf")
def console_summary(pia_id: int, principal: ConsoleReader, session: SessionDep) -> Response:
    return _pdf(service.summary_pdf(session, service.get(session, pia_id)),
                f"pia-summary-{pia_id}.pdf")


# ---------------------------------------------------------------- to-do


def todo_provider(session: Session, principal: Principal) -> list[TodoPanel]:
    if not principal.has_role(Role.privacy_officer):
        return []
    panels: list[TodoPanel] = []
    waiting = [p for p in service.awaiting_approval(session)
               if principal.account_id not in {p.author_id, p.submitted_by}]
    if waiting:
        ja, en = messages.both("pia.todo_awaiting")
        panels.append(TodoPanel(ja, en, [
            TodoItem(*messages.both("pia.todo_awaiting_item", title=p.purpose_title,
                                    key=p.purpose_key, level=rules.LEVEL_LABELS.get(
                                        p.level or "", "-"),
                                    status=service.STATE_LABELS[p.status]),
                     href=f"/pia/{p.id}")
            for p in waiting
        ]))
    due = service.reviews_due(session)
    if due:
        ja, en = messages.both("pia.todo_review")
        panels.append(TodoPanel(ja, en, [
            TodoItem(*messages.both("pia.todo_review_item", title=p.purpose_title,
                                    key=p.purpose_key,
                                    due=format_tokyo(p.next_review_due)[:10]
                                    if p.next_review_due else ""),
                     href=f"/pia/{p.id}",
                     due=format_tokyo(p.next_review_due)[:10] if p.next_review_due else None)
            for p in due
        ]))
    return panels
