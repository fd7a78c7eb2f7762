"""The centre's JSON API and staff console pages: purposes, items, routes, four-condition
authorisations, approvals."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from core.auth import Principal
from core.clock import TOKYO
from core.dates import parse_date
from core.models import Role
from core.reasons import DomainError, InvalidInput, NotFound, Reason
from core.web import SessionDep, api_staff, console_staff, record_refusal, render
from governance import approvals, footing, gate, jobs, purposes, rules, views
from governance import messages as words
from governance.design import design_hash, design_of
from governance.models import Authorisation, Purpose, Route
from governance.rules import SAFEGUARD_CATEGORIES
from governance.schemas import (
    ApprovalIn,
    AuthorisationCreate,
    AuthorisationFields,
    AuthorisationPublic,
    CitationPublic,
    Decision,
    JobRequestIn,
    PurposeCreate,
    PurposeItemIn,
    PurposeItemPublic,
    PurposePublic,
    PurposeUpdate,
    RouteCreate,
    RoutePublic,
)

Staff = Annotated[Principal, Depends(api_staff())]
Drafter = Annotated[Principal, Depends(api_staff(*approvals.DRAFTERS))]
Officer = Annotated[Principal, Depends(api_staff(Role.privacy_officer))]

api_router = APIRouter(prefix="/api/governance", tags=["governance"])


def _route_public(session: Any, route: Route, purpose_key: str, to_key: str,
                  from_key: str) -> RoutePublic:
    return RoutePublic(
        key=route.key, purpose=purpose_key,
        items=[i.key for i in footing.route_items(session, route)],
        from_organ=from_key, to=to_key, basis=route.basis, recurrence=route.recurrence,
        kind=route.kind, status=route.status, reasoning=route.reasoning,
        law_citation=route.law_citation,
    )


def purpose_public(session: Any, purpose: Purpose) -> PurposePublic:
    described = views.describe(session, purpose)
    return PurposePublic(
        key=purpose.key, version=purpose.version, status=purpose.status,
        title_ja=purpose.title_ja, title_en=purpose.title_en,
        purpose_text=purpose.purpose_text, necessity=purpose.necessity,
        citations=[CitationPublic(kind=c.kind, law_name=c.law_name, article=c.article,
                                  note=c.note) for c in described["citations"]],
        items=[PurposeItemPublic(item=item.key, name_ja=item.name_ja,
                                 file=file.key if file else "",
                                 holder_organ=organ.key if organ else "",
                                 necessity_reason=link.necessity_reason,
                                 relevance_to_difficulty=link.relevance_to_difficulty)
               for link, item, file, organ in described["items"]],
        routes=[_route_public(session, r["route"], purpose.key, r["to_key"], r["from"].key)
                for r in described["routes"]],
        design_hash=described["design_hash"],
        missing=[r.to_dict() for r in purposes.missing(session, purpose)],
    )


def _authorisation_public(session: Any, auth: Authorisation) -> AuthorisationPublic:
    route = session.get(Route, auth.route_id)
    return AuthorisationPublic(key=auth.key, route=route.key if route else "",
                               status=auth.status, valid_from=auth.valid_from,
                               valid_until=auth.valid_until, runs_allowed=auth.runs_allowed,
                               runs_used=auth.runs_used)


@api_router.get("/purposes", response_model=list[PurposePublic])
def list_purposes(principal: Staff, session: SessionDep) -> list[PurposePublic]:
    return [purpose_public(session, p) for p in purposes.list_purposes(session)]


@api_router.post("/purposes", response_model=PurposePublic, status_code=201)
def create_purpose(body: PurposeCreate, principal: Drafter, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, purposes.create_purpose(session, principal, body))


@api_router.get("/purposes/{key}", response_model=PurposePublic)
def show_purpose(key: str, principal: Staff, session: SessionDep) -> PurposePublic:
    return purpose_public(session, purposes.get_purpose(session, key))


@api_router.patch("/purposes/{key}", response_model=PurposePublic)
def update_purpose(key: str, body: PurposeUpdate, principal: Drafter, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, purposes.update_purpose(session, principal, key, body))


@api_router.put("/purposes/{key}/items", response_model=PurposePublic)
def set_item(key: str, body: PurposeItemIn, principal: Drafter, session: SessionDep
             ) -> PurposePublic:
    purposes.set_item(session, principal, key, body)
    return purpose_public(session, purposes.get_purpose(session, key))


@api_router.delete("/purposes/{key}/items/{item}", status_code=204)
def remove_item(key: str, item: str, principal: Drafter, session: SessionDep) -> Response:
    purposes.remove_item(session, principal, key, item)
    return Response(status_code=204)


@api_router.get("/purposes/{key}/usability")
def purpose_usability(key: str, principal: Staff, session: SessionDep) -> dict[str, Any]:
    result = gate.usability(session, purposes.get_purpose(session, key))
    return {"usable": result.usable, "reasons": [r.to_dict() for r in result.reasons]}


@api_router.post("/purposes/{key}/submit", response_model=PurposePublic)
def submit_purpose(key: str, principal: Drafter, session: SessionDep) -> PurposePublic:
    return purpose_public(session, purposes.submit_purpose(session, principal, key))


@api_router.post("/purposes/{key}/approve", response_model=PurposePublic)
def approve_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                    ) -> PurposePublic:
    return purpose_public(session, purposes.approve_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/return", response_model=PurposePublic)
def return_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, purposes.return_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/suspend", response_model=PurposePublic)
def suspend_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                    ) -> PurposePublic:
    return purpose_public(session, purposes.suspend_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/resume", response_model=PurposePublic)
def resume_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, purposes.resume_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/retire", response_model=PurposePublic)
def retire_purpose(key: str, body: Decision, principal: Officer, session: SessionDep
                   ) -> PurposePublic:
    return purpose_public(session, purposes.retire_purpose(session, principal, key, body))


@api_router.post("/purposes/{key}/revise", response_model=PurposePublic)
def revise_purpose(key: str, principal: Drafter, session: SessionDep) -> PurposePublic:
    return purpose_public(session, purposes.revise_purpose(session, principal, key))


@api_router.post("/purposes/{key}/routes", response_model=RoutePublic, status_code=201)
def create_route(key: str, body: RouteCreate, principal: Drafter, session: SessionDep
                 ) -> RoutePublic:
    return _route_action(session, footing.create_route(session, principal, key, body))


def _route_action(session: Any, route: Route) -> RoutePublic:
    purpose = purposes.get_purpose_by_id(session, route.purpose_id)
    described = next(r for r in views.describe(session, purpose)["routes"]
                     if r["route"].id == route.id)
    return _route_public(session, route, purpose.key, described["to_key"],
                         described["from"].key)


@api_router.post("/routes/{key}/submit", response_model=RoutePublic)
def submit_route(key: str, principal: Drafter, session: SessionDep) -> RoutePublic:
    return _route_action(session, footing.submit_route(session, principal, key))


@api_router.post("/routes/{key}/approve", response_model=RoutePublic)
def approve_route(key: str, body: Decision, principal: Officer, session: SessionDep
                  ) -> RoutePublic:
    return _route_action(session, footing.approve_route(session, principal, key, body))


@api_router.post("/routes/{key}/return", response_model=RoutePublic)
def return_route(key: str, body: Decision, principal: Officer, session: SessionDep
                 ) -> RoutePublic:
    return _route_action(session, footing.return_route(session, principal, key, body))


@api_router.post("/routes/{key}/revoke", response_model=RoutePublic)
def revoke_route(key: str, body: Decision, principal: Officer, session: SessionDep
                 ) -> RoutePublic:
    return _route_action(session, footing.revoke_route(session, principal, key, body))


@api_router.post("/authorisations", response_model=AuthorisationPublic, status_code=201)
def create_authorisation(body: AuthorisationCreate, principal: Drafter, session: SessionDep
                         ) -> AuthorisationPublic:
    return _authorisation_public(session, footing.create_authorisation(session, principal, body))


@api_router.put("/authorisations/{key}", response_model=AuthorisationPublic)
def update_authorisation(key: str, body: AuthorisationFields, principal: Drafter,
                         session: SessionDep) -> AuthorisationPublic:
    return _authorisation_public(
        session, footing.update_authorisation(session, principal, key, body))


@api_router.post("/authorisations/{key}/submit", response_model=AuthorisationPublic)
def submit_authorisation(key: str, principal: Drafter, session: SessionDep
                         ) -> AuthorisationPublic:
    return _authorisation_public(session, footing.submit_authorisation(session, principal, key))


@api_router.post("/authorisations/{key}/approve", response_model=AuthorisationPublic)
def approve_authorisation(key: str, body: ApprovalIn, principal: Officer, session: SessionDep
                          ) -> AuthorisationPublic:
    return _authorisation_public(
        session, footing.approve_authorisation(session, principal, key, body))


@api_router.post("/authorisations/{key}/return", response_model=AuthorisationPublic)
def return_authorisation(key: str, body: Decision, principal: Officer, session: SessionDep
                         ) -> AuthorisationPublic:
    return _authorisation_public(
        session, footing.return_authorisation(session, principal, key, body))


@api_router.get("/purposes/{key}/design")
def purpose_design(key: str, principal: Staff, session: SessionDep) -> dict[str, Any]:
    design = design_of(session, purposes.get_purpose(session, key))
    return {"design": design, "design_hash": design_hash(design)}


# ================================================================ staff console pages
#
# The pages only gather form fields and call the service; every rule lives in the service.
# A refusal (DomainError) is caught, the request's work is rolled back, the refusal is recorded
# as the API's would be, and the page is shown again with each Reason next to its field.

ConsoleStaff = Annotated[Principal, Depends(console_staff())]
ConsoleDrafter = Annotated[Principal, Depends(console_staff(*approvals.DRAFTERS))]
ConsoleOfficer = Annotated[Principal, Depends(console_staff(Role.privacy_officer))]

console_router = APIRouter(prefix="/purposes")


def _q(text: str) -> str:
    return quote(text, safe="")


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _texts(form: Any, name: str) -> list[str]:
    return [v.strip() if isinstance(v, str) else "" for v in form.getlist(name)]


def _label(name: str) -> str:
    return words.FIELD_LABELS.get(name, name)


def _validation_reasons(error: ValidationError) -> list[Reason]:
    reasons = []
    for problem in error.errors():
        loc = [str(p) for p in problem.get("loc", ())]
        top = loc[0] if loc else ""
        field = ".".join(loc[:2]) if top == "safeguards" and len(loc) > 1 else top
        reasons.append(Reason.of("governance.ui.invalid_field", field=field, name=top,
                                 label=_label(top), detail=problem.get("msg", "")))
    return reasons


def _refused(request: Request, session: Session, error: DomainError) -> list[Reason]:
    """Undo the request's work, then record the refusal in a transaction of its own."""
    session.rollback()
    record_refusal(request, error)
    return error.reasons


def _required(form: Any, name: str) -> Reason | None:
    if _text(form, name):
        return None
    return Reason.of("governance.ui.required", field=name, name=name, label=_label(name))


def _abilities(principal: Principal) -> dict[str, bool]:
    return {"can_draft": principal.has_role(*approvals.DRAFTERS)}


def _back(key: str, anchor: str = "", **query: str) -> Response:
    params = "&".join(f"{k}={_q(v)}" for k, v in query.items())
    return RedirectResponse(f"/purposes/{_q(key)}{'?' + params if params else ''}"
                            f"{'#' + anchor if anchor else ''}", status_code=303)


def _then_submit(path: str) -> Response:
    """"Save and submit": the save lands with this request; the browser then posts the same form
    (its CSRF token included) to the submit action, so a refused submission keeps the save."""
    return RedirectResponse(path, status_code=307)


# ---------------------------------------------------------------- purpose list and form


@console_router.get("")
def console_list(request: Request, principal: ConsoleStaff, session: SessionDep) -> Response:
    return render(request, "governance/list.html", {
        "rows": views.purpose_rows(session), "words": words, **_abilities(principal)})


def _purpose_form_data(form: Any) -> tuple[dict[str, Any], dict[str, Any], list[Reason]]:
    """The schema's data, the values to show again, and problems found while reading the form."""
    simple = ("title_ja", "title_en", "purpose_text", "necessity", "acquisition_note",
              "handling_extraction", "handling_matching_key", "handling_logic",
              "handling_logic_version", "handling_result_viewers", "handling_human_assessment")
    data: dict[str, Any] = {name: _text(form, name) for name in simple}
    data["acquisition_method"] = _text(form, "acquisition_method") or "reuse"
    values: dict[str, Any] = dict(data)
    problems: list[Reason] = []
    # 事務の根拠 (Art. 61(1)): rows of kind, law, article, note; empty rows are ignored.
    citations = []
    rows = zip(_texts(form, "citation_kind"), _texts(form, "citation_law_name"),
               _texts(form, "citation_article"), _texts(form, "citation_note"), strict=False)
    for kind, law_name, article, note in rows:
        if law_name or article or note:
            citations.append({"kind": kind or "statute", "law_name": law_name,
                              "article": article, "note": note})
    data["citations"] = citations
    values["citations"] = citations
    # 取り扱う主体: an organ or "organ/department", with its governance role.
    subjects = []
    shown = []
    for unit, role in zip(_texts(form, "subject_unit"), _texts(form, "subject_role"),
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
        ticked = [v for v in _texts(form, f"safeguards.{category}") if v]
        other_text = form.get(f"safeguards_other.{category}")
        other_text = other_text if isinstance(other_text, str) else ""
        others = [line.strip() for line in other_text.splitlines() if line.strip()]
        safeguards[category] = ticked + [o for o in others if o not in ticked]
        values["safeguards"][category] = ticked
        values["safeguards_other"][category] = other_text
    data["safeguards"] = safeguards
    notice = {name: _text(form, f"public_notice.{name}") for name in words.PUBLIC_NOTICE_LABELS}
    data["public_notice"] = notice
    values["public_notice"] = notice
    # 対象者: an age range over the person register; both blank means not yet decided.
    low, high = _text(form, "min_age"), _text(form, "max_age")
    values["min_age"], values["max_age"] = low, high
    if not low and not high:
        data["subjects_rule"] = None
    else:
        try:
            data["subjects_rule"] = {"min_age": int(low), "max_age": int(high)}
        except ValueError:
            data["subjects_rule"] = None
            problems.append(Reason.of("governance.ui.not_a_number", field="subjects_rule",
                                      name="subjects_rule", label=_label("subjects_rule")))
    return data, values, problems


def _purpose_form(request: Request, session: Session, principal: Principal,
                  purpose: Any, values: dict[str, Any], reasons: list[Reason] | None = None,
                  status_code: int = 200) -> Response:
    items = purposes.purpose_items(session, purpose) if purpose is not None else []
    return render(request, "governance/purpose_form.html", {
        "purpose": purpose, "values": values, "reasons": reasons or [],
        "reason_views": views.reason_views(purpose, reasons or [], on_form=True) if purpose else
        [views.ReasonView(r, None) for r in reasons or []],
        "errors": views.errors_by_field(reasons or []), "items": items,
        "words": words, "labels": words.FIELD_LABELS, **views.choices(session),
        **_abilities(principal),
    }, status_code=status_code)


@console_router.get("/new")
def console_new(request: Request, principal: ConsoleDrafter, session: SessionDep) -> Response:
    values: dict[str, Any] = {"acquisition_method": "reuse", "citations": [], "subjects": [],
                              "safeguards": {}, "safeguards_other": {}, "public_notice": {},
                              "min_age": "0", "max_age": "17"}
    return _purpose_form(request, session, principal, None, values)


@console_router.post("/new")
async def console_create(request: Request, principal: ConsoleDrafter,
                         session: SessionDep) -> Response:
    form = await request.form()
    data, values, problems = _purpose_form_data(form)
    data["key"] = values["key"] = _text(form, "key")
    if problems:
        return _purpose_form(request, session, principal, None, values, problems, 422)
    try:
        purpose = purposes.create_purpose(session, principal, PurposeCreate.model_validate(data))
    except ValidationError as error:
        return _purpose_form(request, session, principal, None, values,
                             _validation_reasons(error), 422)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _purpose_form(request, session, principal, None, values, reasons,
                             error.status_code)
    return _back(purpose.key, done="saved")


@console_router.get("/{key}/edit")
def console_edit(key: str, request: Request, principal: ConsoleDrafter,
                 session: SessionDep) -> Response:
    purpose = purposes.get_purpose(session, key)
    return _purpose_form(request, session, principal, purpose,
                         views.purpose_values(session, purpose))


@console_router.post("/{key}/edit")
async def console_update(key: str, request: Request, principal: ConsoleDrafter,
                         session: SessionDep) -> Response:
    form = await request.form()
    purpose = purposes.get_purpose(session, key)
    data, values, problems = _purpose_form_data(form)
    values["key"] = key
    if problems:
        return _purpose_form(request, session, principal, purpose, values, problems, 422)
    try:
        purposes.update_purpose(session, principal, key, PurposeUpdate.model_validate(data))
    except ValidationError as error:
        return _purpose_form(request, session, principal, purpose, values,
                             _validation_reasons(error), 422)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _purpose_form(request, session, principal, purposes.get_purpose(session, key),
                             values, reasons, error.status_code)
    if _text(form, "then") == "submit":
        return _then_submit(f"/purposes/{_q(key)}/submit")
    return _back(key, done="saved")


# ---------------------------------------------------------------- purpose page


def _detail(request: Request, session: Session, principal: Principal, key: str,
            reasons: list[Reason] | None = None, status_code: int = 200,
            values: dict[str, Any] | None = None) -> Response:
    purpose = purposes.get_purpose(session, key)
    done = request.query_params.get("done", "")
    created = request.query_params.get("route_created", "")
    created_route = None
    if created:
        try:
            created_route = footing.get_route(session, created)
        except DomainError:
            created_route = None
        if created_route is not None and created_route.purpose_id != purpose.id:
            created_route = None
    return render(request, "governance/detail.html", {
        **views.detail(session, purpose, principal),
        "reasons": reasons or [],
        "reason_views": views.reason_views(purpose, reasons or []),
        "errors": views.errors_by_field(reasons or []),
        "values": values or {},
        "done": done if done in words.ACTION_LABELS or done == "saved" else "",
        "created_route": created_route,
        "words": words, "labels": words.FIELD_LABELS, **views.choices(session),
        **_abilities(principal),
    }, status_code=status_code)


@console_router.get("/{key}")
def console_detail(key: str, request: Request, principal: ConsoleStaff,
                   session: SessionDep) -> Response:
    return _detail(request, session, principal, key)


@console_router.post("/{key}/items")
async def console_set_item(key: str, request: Request, principal: ConsoleDrafter,
                           session: SessionDep) -> Response:
    form = await request.form()
    values = {name: _text(form, name)
              for name in ("item", "necessity_reason", "relevance_to_difficulty")}
    missing = _required(form, "item")
    if missing is not None:
        return _detail(request, session, principal, key, [missing], 422, values)
    try:
        purposes.set_item(session, principal, key, PurposeItemIn.model_validate(values))
    except ValidationError as error:
        return _detail(request, session, principal, key, _validation_reasons(error), 422, values)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code, values)
    return _back(key, f"item-{values['item']}", done="saved")


@console_router.post("/{key}/items/{item}/remove")
async def console_remove_item(key: str, item: str, request: Request,
                              principal: ConsoleDrafter, session: SessionDep) -> Response:
    try:
        purposes.remove_item(session, principal, key, item)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code)
    return _back(key, "items", done="saved")


async def _submit(request: Request, session: Session, principal: Principal,
                  key: str) -> Response:
    try:
        purposes.submit_purpose(session, principal, key)
    except InvalidInput as error:
        # Completeness: show the form again with each missing element next to its field.
        reasons = _refused(request, session, error)
        purpose = purposes.get_purpose(session, key)
        if purpose.status in rules.PURPOSE_EDITABLE:
            return _purpose_form(request, session, principal, purpose,
                                 views.purpose_values(session, purpose), reasons, 422)
        return _detail(request, session, principal, key, reasons, error.status_code)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code)
    return _back(key, "actions", done="submit")


@console_router.post("/{key}/submit")
async def console_submit(key: str, request: Request, principal: ConsoleDrafter,
                         session: SessionDep) -> Response:
    return await _submit(request, session, principal, key)


@console_router.post("/{key}/revise")
async def console_revise(key: str, request: Request, principal: ConsoleDrafter,
                         session: SessionDep) -> Response:
    try:
        purposes.revise_purpose(session, principal, key)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code)
    return _back(key, "actions", done="revise")


_OFFICER_ACTIONS = {
    "approve": purposes.approve_purpose,
    "return": purposes.return_purpose,
    "suspend": purposes.suspend_purpose,
    "resume": purposes.resume_purpose,
    "retire": purposes.retire_purpose,
}


async def _officer_decision(action: str, key: str, request: Request, principal: Principal,
                            session: Session) -> Response:
    form = await request.form()
    values = {"comment": _text(form, "comment"), "action": action}
    missing = _required(form, "comment")
    if missing is not None:
        return _detail(request, session, principal, key, [missing], 422, values)
    try:
        _OFFICER_ACTIONS[action](session, principal, key, Decision(comment=values["comment"]))
    except ValidationError as error:
        return _detail(request, session, principal, key, _validation_reasons(error), 422, values)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code, values)
    return _back(key, "actions", done=action)


@console_router.post("/{key}/approve")
async def console_approve(key: str, request: Request, principal: ConsoleOfficer,
                          session: SessionDep) -> Response:
    return await _officer_decision("approve", key, request, principal, session)


@console_router.post("/{key}/return")
async def console_return(key: str, request: Request, principal: ConsoleOfficer,
                         session: SessionDep) -> Response:
    return await _officer_decision("return", key, request, principal, session)


@console_router.post("/{key}/suspend")
async def console_suspend(key: str, request: Request, principal: ConsoleOfficer,
                          session: SessionDep) -> Response:
    return await _officer_decision("suspend", key, request, principal, session)


@console_router.post("/{key}/resume")
async def console_resume(key: str, request: Request, principal: ConsoleOfficer,
                         session: SessionDep) -> Response:
    return await _officer_decision("resume", key, request, principal, session)


@console_router.post("/{key}/retire")
async def console_retire(key: str, request: Request, principal: ConsoleOfficer,
                         session: SessionDep) -> Response:
    return await _officer_decision("retire", key, request, principal, session)


# ---------------------------------------------------------------- routes (legal footing)


def _own_route(session: Session, key: str, route_key: str) -> Route:
    """The route, refused as not found when it belongs to another purpose."""
    purpose = purposes.get_purpose(session, key)
    route = footing.get_route(session, route_key)
    if route.purpose_id != purpose.id:
        raise _not_in_purpose("経路", "Route", route_key)
    return route


def _not_in_purpose(kind: str, kind_en: str, key: str) -> NotFound:
    return NotFound(Reason.of("governance.ui.not_in_purpose", kind=kind, kind_en=kind_en,
                              key=key))


def _route_form(request: Request, session: Session, principal: Principal, key: str,
                values: dict[str, Any], reasons: list[Reason] | None = None,
                status_code: int = 200) -> Response:
    purpose = purposes.get_purpose(session, key)
    described = views.describe(session, purpose)
    return render(request, "governance/route_form.html", {
        "purpose": purpose, "items": described["items"], "values": values,
        "reasons": reasons or [], "errors": views.errors_by_field(reasons or []),
        "words": words, "labels": words.FIELD_LABELS, **views.choices(session),
        **_abilities(principal),
    }, status_code=status_code)


@console_router.get("/{key}/routes/new")
def console_new_route(key: str, request: Request, principal: ConsoleDrafter,
                      session: SessionDep) -> Response:
    item = request.query_params.get("item", "")
    values = {"items": [item] if item else [], "basis": "one_off", "recurrence": "one_off",
              "recipient": "organ:mayor"}
    return _route_form(request, session, principal, key, values)


@console_router.post("/{key}/routes/new")
async def console_create_route(key: str, request: Request, principal: ConsoleDrafter,
                               session: SessionDep) -> Response:
    form = await request.form()
    values: dict[str, Any] = {name: _text(form, name) for name in (
        "key", "basis", "recurrence", "recipient", "reasoning", "changed_purpose_text",
        "law_citation")}
    values["items"] = [v for v in _texts(form, "items") if v]
    kind, _, recipient = values["recipient"].partition(":")
    data: dict[str, Any] = {
        "key": values["key"], "items": values["items"], "basis": values["basis"] or None,
        "recurrence": values["recurrence"] or None, "reasoning": values["reasoning"],
        "changed_purpose_text": values["changed_purpose_text"],
        "law_citation": values["law_citation"],
        "to_organ": recipient if kind == "organ" and recipient else None,
        "to_body": recipient if kind == "body" and recipient else None,
    }
    if data["to_organ"] is None and data["to_body"] is None:
        reason = Reason.of("governance.ui.choose_one_recipient", field="recipient")
        return _route_form(request, session, principal, key, values, [reason], 422)
    try:
        route = footing.create_route(session, principal, key, RouteCreate.model_validate(data))
    except ValidationError as error:
        return _route_form(request, session, principal, key, values,
                           _validation_reasons(error), 422)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _route_form(request, session, principal, key, values, reasons,
                           error.status_code)
    return _back(key, f"route-{route.key}", route_created=route.key)


async def _console_route_action(action: str, key: str, route_key: str, request: Request,
                        principal: Principal, session: Session) -> Response:
    form = await request.form()
    values = {"comment": _text(form, "comment"), "action": f"route:{route_key}:{action}"}
    try:
        _own_route(session, key, route_key)
        if action == "submit":
            footing.submit_route(session, principal, route_key)
        else:
            missing = _required(form, "comment")
            if missing is not None:
                return _detail(request, session, principal, key, [missing], 422, values)
            decision = Decision(comment=values["comment"])
            {"approve": footing.approve_route, "return": footing.return_route,
             "revoke": footing.revoke_route}[action](session, principal, route_key, decision)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code, values)
    return _back(key, f"route-{route_key}", done=action)


@console_router.post("/{key}/routes/{route_key}/submit")
async def console_submit_route(key: str, route_key: str, request: Request,
                               principal: ConsoleDrafter, session: SessionDep) -> Response:
    return await _console_route_action("submit", key, route_key, request, principal, session)


@console_router.post("/{key}/routes/{route_key}/approve")
async def console_approve_route(key: str, route_key: str, request: Request,
                                principal: ConsoleOfficer, session: SessionDep) -> Response:
    return await _console_route_action("approve", key, route_key, request, principal, session)


@console_router.post("/{key}/routes/{route_key}/return")
async def console_return_route(key: str, route_key: str, request: Request,
                               principal: ConsoleOfficer, session: SessionDep) -> Response:
    return await _console_route_action("return", key, route_key, request, principal, session)


@console_router.post("/{key}/routes/{route_key}/revoke")
async def console_revoke_route(key: str, route_key: str, request: Request,
                               principal: ConsoleOfficer, session: SessionDep) -> Response:
    return await _console_route_action("revoke", key, route_key, request, principal, session)


# ---------------------------------------------------------------- four-condition authorisations

CONDITIONS = ("is_temporary", "within_necessary_extent", "substantial_reason",
              "no_undue_infringement")
AUTH_TEXTS = ("temporary_reasoning", "necessity_reasoning", "substantial_reasoning",
              "recipient_task_citation", "infringement_reasoning", "restricting_laws_note",
              "access_limited_to", "recipient_measures")


def _auth_values(auth: Authorisation) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(auth, name) for name in AUTH_TEXTS}
    for name in (*CONDITIONS, "restricting_laws_checked"):
        values[name] = "yes" if getattr(auth, name) else "no"
    values["valid_from"] = views.date_value(auth.valid_from)
    values["valid_until"] = views.date_value(auth.valid_until)
    values["runs_allowed"] = str(auth.runs_allowed)
    values["key"] = auth.key
    return values


def _tokyo_day(text: str, end: bool) -> datetime | None:
    day = parse_date(text)
    if day is None:
        return None
    moment = datetime.combine(day, time.min, TOKYO)
    # The end date counts whole: the period runs until the last moment of that day in Tokyo.
    return moment + timedelta(days=1, microseconds=-1) if end else moment


def _auth_form_data(form: Any) -> tuple[dict[str, Any], dict[str, Any], list[Reason]]:
    values: dict[str, Any] = {name: _text(form, name) for name in AUTH_TEXTS}
    data: dict[str, Any] = dict(values)
    problems: list[Reason] = []
    for name in (*CONDITIONS, "restricting_laws_checked"):
        answer = _text(form, name)
        values[name] = answer
        data[name] = answer == "yes"
    for name, end in (("valid_from", False), ("valid_until", True)):
        typed = _text(form, name)
        values[name] = typed
        data[name] = _tokyo_day(typed, end) if typed else None
        if typed and data[name] is None:
            problems.append(Reason.of("governance.ui.not_a_date", field=name, name=name,
                                      label=_label(name)))
    runs = _text(form, "runs_allowed")
    values["runs_allowed"] = runs
    try:
        data["runs_allowed"] = int(runs) if runs else 1
    except ValueError:
        problems.append(Reason.of("governance.ui.not_a_number", field="runs_allowed",
                                  name="runs_allowed", label=_label("runs_allowed")))
    return data, values, problems


def _auth_form(request: Request, session: Session, principal: Principal, key: str,
               route: Route, auth: Authorisation | None, values: dict[str, Any],
               reasons: list[Reason] | None = None, status_code: int = 200) -> Response:
    purpose = purposes.get_purpose(session, key)
    entry = next(r for r in views.describe(session, purpose)["routes"]
                 if r["route"].id == route.id)
    return render(request, "governance/authorisation_form.html", {
        "purpose": purpose, "route": route, "entry": entry, "auth": auth, "values": values,
        "reasons": reasons or [], "errors": views.errors_by_field(reasons or []),
        "conditions": CONDITIONS, "policy": footing.policy(),
        "words": words, "labels": words.FIELD_LABELS, **_abilities(principal),
    }, status_code=status_code)


@console_router.get("/{key}/routes/{route_key}/authorisations/new")
def console_new_authorisation(key: str, route_key: str, request: Request,
                              principal: ConsoleDrafter, session: SessionDep) -> Response:
    route = _own_route(session, key, route_key)
    values = {name: "" for name in (*AUTH_TEXTS, *CONDITIONS, "valid_from", "valid_until")}
    values.update({"runs_allowed": "1", "restricting_laws_checked": "",
                   "key": f"{route_key}.{datetime.now(TOKYO).year}"})
    return _auth_form(request, session, principal, key, route, None, values)


@console_router.post("/{key}/routes/{route_key}/authorisations/new")
async def console_create_authorisation(key: str, route_key: str, request: Request,
                                       principal: ConsoleDrafter,
                                       session: SessionDep) -> Response:
    route = _own_route(session, key, route_key)
    form = await request.form()
    data, values, problems = _auth_form_data(form)
    data["key"] = values["key"] = _text(form, "key")
    data["route"] = route_key
    if problems:
        return _auth_form(request, session, principal, key, route, None, values, problems, 422)
    try:
        auth = footing.create_authorisation(session, principal,
                                            AuthorisationCreate.model_validate(data))
    except ValidationError as error:
        return _auth_form(request, session, principal, key, route, None, values,
                          _validation_reasons(error), 422)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _auth_form(request, session, principal, key, _own_route(session, key, route_key),
                          None, values, reasons, error.status_code)
    if _text(form, "then") == "submit":
        return _then_submit(f"/purposes/{_q(key)}/authorisations/{_q(auth.key)}/submit")
    return _back(key, f"authorisation-{auth.key}", done="saved")


def _own_authorisation(session: Session, key: str, auth_key: str
                       ) -> tuple[Route, Authorisation]:
    auth = footing.get_authorisation(session, auth_key)
    route = session.get(Route, auth.route_id)
    purpose = purposes.get_purpose(session, key)
    if route is None or route.purpose_id != purpose.id:
        raise _not_in_purpose("4要件の承認", "Authorisation", auth_key)
    return route, auth


@console_router.get("/{key}/authorisations/{auth_key}/edit")
def console_edit_authorisation(key: str, auth_key: str, request: Request,
                               principal: ConsoleDrafter, session: SessionDep) -> Response:
    route, auth = _own_authorisation(session, key, auth_key)
    return _auth_form(request, session, principal, key, route, auth, _auth_values(auth))


@console_router.post("/{key}/authorisations/{auth_key}/edit")
async def console_update_authorisation(key: str, auth_key: str, request: Request,
                                       principal: ConsoleDrafter,
                                       session: SessionDep) -> Response:
    route, auth = _own_authorisation(session, key, auth_key)
    form = await request.form()
    data, values, problems = _auth_form_data(form)
    values["key"] = auth_key
    if problems:
        return _auth_form(request, session, principal, key, route, auth, values, problems, 422)
    try:
        footing.update_authorisation(session, principal, auth_key,
                                     AuthorisationFields.model_validate(data))
    except ValidationError as error:
        return _auth_form(request, session, principal, key, route, auth, values,
                          _validation_reasons(error), 422)
    except DomainError as error:
        reasons = _refused(request, session, error)
        route, auth = _own_authorisation(session, key, auth_key)
        return _auth_form(request, session, principal, key, route, auth, values, reasons,
                          error.status_code)
    if _text(form, "then") == "submit":
        return _then_submit(f"/purposes/{_q(key)}/authorisations/{_q(auth_key)}/submit")
    return _back(key, f"authorisation-{auth_key}", done="saved")


async def _submit_authorisation(request: Request, session: Session, principal: Principal,
                                key: str, auth_key: str) -> Response:
    try:
        footing.submit_authorisation(session, principal, auth_key)
    except InvalidInput as error:
        # The four conditions: show the form again with each failing condition at its field.
        reasons = _refused(request, session, error)
        route, auth = _own_authorisation(session, key, auth_key)
        return _auth_form(request, session, principal, key, route, auth, _auth_values(auth),
                          reasons, 422)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code)
    return _back(key, f"authorisation-{auth_key}", done="submit")


@console_router.post("/{key}/authorisations/{auth_key}/submit")
async def console_submit_authorisation(key: str, auth_key: str, request: Request,
                                       principal: ConsoleDrafter,
                                       session: SessionDep) -> Response:
    _own_authorisation(session, key, auth_key)
    return await _submit_authorisation(request, session, principal, key, auth_key)


@console_router.post("/{key}/authorisations/{auth_key}/approve")
async def console_approve_authorisation(key: str, auth_key: str, request: Request,
                                        principal: ConsoleOfficer,
                                        session: SessionDep) -> Response:
    _own_authorisation(session, key, auth_key)
    form = await request.form()
    values = {"comment": _text(form, "comment"), "delegation_note": _text(form, "delegation_note"),
              "action": f"authorisation:{auth_key}:approve"}
    missing = [r for r in (_required(form, "comment"), _required(form, "delegation_note"))
               if r is not None]
    if missing:
        return _detail(request, session, principal, key, missing, 422, values)
    try:
        footing.approve_authorisation(session, principal, auth_key, ApprovalIn(
            comment=values["comment"], delegation_note=values["delegation_note"]))
    except ValidationError as error:
        return _detail(request, session, principal, key, _validation_reasons(error), 422, values)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code, values)
    return _back(key, f"authorisation-{auth_key}", done="approve")


@console_router.post("/{key}/authorisations/{auth_key}/return")
async def console_return_authorisation(key: str, auth_key: str, request: Request,
                                       principal: ConsoleOfficer,
                                       session: SessionDep) -> Response:
    _own_authorisation(session, key, auth_key)
    form = await request.form()
    values = {"comment": _text(form, "comment"), "action": f"authorisation:{auth_key}:return"}
    missing = _required(form, "comment")
    if missing is not None:
        return _detail(request, session, principal, key, [missing], 422, values)
    try:
        footing.return_authorisation(session, principal, auth_key,
                                     Decision(comment=values["comment"]))
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code, values)
    return _back(key, f"authorisation-{auth_key}", done="return")


# ---------------------------------------------------------------- the gate and jobs

gate_api_router = APIRouter(prefix="/api", tags=["gate"])
gate_console_router = APIRouter()


def _job_request(body: JobRequestIn, principal: Principal, *, explain: bool) -> gate.JobRequest:
    return gate.JobRequest(kind=gate.JobKind(body.kind), purpose=body.purpose, items=body.items,
                           principal=principal, recipient_organ=body.to_organ,
                           recipient_body=body.to_body, at=body.at if explain else None)


@gate_api_router.post("/gate/explain")
def gate_explain(body: JobRequestIn, principal: Staff, session: SessionDep) -> dict[str, Any]:
    """The decision a job would get; not recorded, because it is not a decision."""
    return gate.explain(session, _job_request(body, principal, explain=True)).to_dict()


@gate_api_router.post("/jobs", status_code=201)
def submit_job(body: JobRequestIn, principal: Staff, session: SessionDep) -> Response:
    decision, job = jobs.submit(session, _job_request(body, principal, explain=False))
    if job is None:
        # Answer instead of raising, so the recorded refusal is committed with the request.
        return JSONResponse({"error": {"code": "gate.refused",
                                       "reasons": [r.to_dict() for r in decision.reasons]},
                             "decision": decision.to_dict()}, status_code=403)
    return JSONResponse({"job": jsonable_encoder(jobs.describe(job)),
                         "decision": decision.to_dict()}, status_code=201)


@gate_api_router.get("/jobs")
def list_jobs(principal: Staff, session: SessionDep) -> list[dict[str, Any]]:
    return [jsonable_encoder(jobs.describe(j)) for j in jobs.list_jobs(session)]


@gate_api_router.get("/jobs/{job_id}")
def show_job(job_id: int, principal: Staff, session: SessionDep) -> dict[str, Any]:
    return dict(jsonable_encoder(jobs.describe(jobs.get_job(session, job_id))))


@gate_api_router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: int, principal: Staff, session: SessionDep) -> dict[str, Any]:
    return dict(jsonable_encoder(jobs.describe(jobs.cancel(session, principal, job_id))))


@gate_console_router.get("/gate")
def gate_page(request: Request, principal: ConsoleStaff, session: SessionDep) -> Response:
    """Per purpose: which job kinds would be allowed for you today, and what is missing."""
    rows = []
    for purpose in purposes.list_purposes(session):
        items = [item.key for _, item in purposes.purpose_items(session, purpose)]
        kinds = []
        for kind in gate.JobKind:
            decision = gate.explain(session, gate.JobRequest(
                kind=kind, purpose=purpose.key, items=items, principal=principal))
            kinds.append({"kind": kind.value, "decision": decision,
                          "links": [(r, views.fix_link(purpose, r)) for r in decision.reasons]})
        rows.append({"purpose": purpose, "items": items, "kinds": kinds})
    return render(request, "governance/gate.html", {"rows": rows})


@gate_console_router.get("/jobs")
def jobs_page(request: Request, principal: ConsoleStaff, session: SessionDep) -> Response:
    by_id = {p.id: p for p in purposes.list_purposes(session)}
    return render(request, "governance/jobs.html", {
        "jobs": [(jobs.describe(j), by_id.get(j.purpose_id)) for j in jobs.list_jobs(session)],
    })
