"""The centre's console pages: purposes, items, routes, authorisations, their PIA steps, the
gate and jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from core import forms, messages
from core.auth import Principal
from core.clock import TOKYO
from core.models import Department, Organ, Role
from core.policies import policy
from core.reasons import DomainError, InvalidInput, NotFound, Reason
from core.web import FormDep, SessionDep, console_staff, record_refusal, render
from governance import approvals, assessment, design, footing, gate, jobs, purposes, rules, views
from governance import messages as words
from governance.forms import (
    ACCESS_KEY_FIELDS,
    AUTH_TEXTS,
    CONDITIONS,
    auth_form_data,
    purpose_form_data,
    required,
    validation_reasons,
)
from governance.models import Authorisation, JobState, Purpose, Route
from governance.rules import AccessLimit, GovernancePolicy
from governance.schemas import (
    ApprovalIn,
    AuthorisationCreate,
    AuthorisationFields,
    Decision,
    JobProgressState,
    PurposeCreate,
    PurposeItemIn,
    PurposeUpdate,
    RouteCreate,
)
from pia import service as pia

ConsoleStaff = Annotated[Principal, Depends(console_staff())]


ConsoleDrafter = Annotated[Principal, Depends(console_staff(*approvals.DRAFTERS))]


ConsoleOfficer = Annotated[Principal, Depends(console_staff(Role.privacy_officer))]


console_router = APIRouter(prefix="/purposes")


def _q(text: str) -> str:
    return quote(text, safe="")


def _refused(request: Request, session: Session, error: DomainError) -> list[Reason]:
    """Undo the request's work, then record the refusal in a transaction of its own."""
    session.rollback()
    record_refusal(request, error)
    return error.reasons


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


@console_router.get("")
def console_list(request: Request, principal: ConsoleStaff, session: SessionDep) -> Response:
    return render(request, "governance/list.html", {
        "rows": views.purpose_rows(session), "words": words, **_abilities(principal)})


def _purpose_form(request: Request, session: Session, principal: Principal,
                  purpose: Any, values: dict[str, Any], reasons: list[Reason] | None = None,
                  status_code: int = 200) -> Response:
    items = design.purpose_items(session, purpose) if purpose is not None else []
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
def console_create(request: Request, form: FormDep, principal: ConsoleDrafter,
                         session: SessionDep) -> Response:
    data, values, problems = purpose_form_data(form)
    data["key"] = values["key"] = forms.text(form, "key")
    if problems:
        return _purpose_form(request, session, principal, None, values, problems, 422)
    try:
        purpose = purposes.create_purpose(session, principal, PurposeCreate.model_validate(data))
    except ValidationError as error:
        return _purpose_form(request, session, principal, None, values,
                             validation_reasons(error), 422)
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
def console_update(key: str, request: Request, form: FormDep, principal: ConsoleDrafter,
                         session: SessionDep) -> Response:
    purpose = purposes.get_purpose(session, key)
    data, values, problems = purpose_form_data(form)
    values["key"] = key
    if problems:
        return _purpose_form(request, session, principal, purpose, values, problems, 422)
    try:
        purposes.update_purpose(session, principal, key, PurposeUpdate.model_validate(data))
    except ValidationError as error:
        return _purpose_form(request, session, principal, purpose, values,
                             validation_reasons(error), 422)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _purpose_form(request, session, principal, purposes.get_purpose(session, key),
                             values, reasons, error.status_code)
    if forms.text(form, "then") == "submit":
        return _then_submit(f"/purposes/{_q(key)}/submit")
    return _back(key, done="saved")


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
def console_set_item(key: str, request: Request, form: FormDep, principal: ConsoleDrafter,
                           session: SessionDep) -> Response:
    values: dict[str, Any] = {name: forms.text(form, name)
                              for name in ("item", "necessity_reason", "relevance_to_difficulty")}
    values["identified_for"] = [r for r in form.getlist("identified_for") if r]
    missing = required(form, "item")
    if missing is not None:
        return _detail(request, session, principal, key, [missing], 422, values)
    try:
        purposes.set_item(session, principal, key, PurposeItemIn.model_validate(values))
    except ValidationError as error:
        return _detail(request, session, principal, key, validation_reasons(error), 422, values)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code, values)
    return _back(key, f"item-{values['item']}", done="saved")


@console_router.post("/{key}/items/{item}/remove")
def console_remove_item(key: str, item: str, request: Request, form: FormDep,
                              principal: ConsoleDrafter, session: SessionDep) -> Response:
    try:
        purposes.remove_item(session, principal, key, item)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code)
    return _back(key, "items", done="saved")


def _submit(request: Request, form: FormData, session: Session, principal: Principal,
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
def console_submit(key: str, request: Request, form: FormDep, principal: ConsoleDrafter,
                         session: SessionDep) -> Response:
    return _submit(request, form, session, principal, key)


@console_router.post("/{key}/revise")
def console_revise(key: str, request: Request, form: FormDep, principal: ConsoleDrafter,
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


def _officer_decision(action: str, key: str, request: Request, form: FormData, principal: Principal,
                            session: Session) -> Response:
    values = {"comment": forms.text(form, "comment"), "action": action}
    missing = required(form, "comment")
    if missing is not None:
        return _detail(request, session, principal, key, [missing], 422, values)
    try:
        _OFFICER_ACTIONS[action](session, principal, key, Decision(comment=values["comment"]))
    except ValidationError as error:
        return _detail(request, session, principal, key, validation_reasons(error), 422, values)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code, values)
    return _back(key, "actions", done=action)


@console_router.post("/{key}/approve")
def console_approve(key: str, request: Request, form: FormDep, principal: ConsoleOfficer,
                          session: SessionDep) -> Response:
    return _officer_decision("approve", key, request, form, principal, session)


@console_router.post("/{key}/return")
def console_return(key: str, request: Request, form: FormDep, principal: ConsoleOfficer,
                         session: SessionDep) -> Response:
    return _officer_decision("return", key, request, form, principal, session)


@console_router.post("/{key}/suspend")
def console_suspend(key: str, request: Request, form: FormDep, principal: ConsoleOfficer,
                          session: SessionDep) -> Response:
    return _officer_decision("suspend", key, request, form, principal, session)


@console_router.post("/{key}/resume")
def console_resume(key: str, request: Request, form: FormDep, principal: ConsoleOfficer,
                         session: SessionDep) -> Response:
    return _officer_decision("resume", key, request, form, principal, session)


@console_router.post("/{key}/retire")
def console_retire(key: str, request: Request, form: FormDep, principal: ConsoleOfficer,
                         session: SessionDep) -> Response:
    return _officer_decision("retire", key, request, form, principal, session)


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
def console_create_route(key: str, request: Request, form: FormDep, principal: ConsoleDrafter,
                               session: SessionDep) -> Response:
    values: dict[str, Any] = {name: forms.text(form, name) for name in (
        "key", "basis", "recurrence", "recipient", "reasoning", "changed_purpose_text",
        "law_citation")}
    values["items"] = [v for v in forms.texts(form, "items") if v]
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
                           validation_reasons(error), 422)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _route_form(request, session, principal, key, values, reasons,
                           error.status_code)
    return _back(key, f"route-{route.key}", route_created=route.key)


def _console_route_action(action: str, key: str, route_key: str, request: Request, form: FormData,
                        principal: Principal, session: Session) -> Response:
    values = {"comment": forms.text(form, "comment"), "action": f"route:{route_key}:{action}"}
    try:
        _own_route(session, key, route_key)
        if action == "submit":
            footing.submit_route(session, principal, route_key)
        else:
            missing = required(form, "comment")
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
def console_submit_route(key: str, route_key: str, request: Request, form: FormDep,
                               principal: ConsoleDrafter, session: SessionDep) -> Response:
    return _console_route_action("submit", key, route_key, request, form, principal, session)


@console_router.post("/{key}/routes/{route_key}/approve")
def console_approve_route(key: str, route_key: str, request: Request, form: FormDep,
                                principal: ConsoleOfficer, session: SessionDep) -> Response:
    return _console_route_action("approve", key, route_key, request, form, principal, session)


@console_router.post("/{key}/routes/{route_key}/return")
def console_return_route(key: str, route_key: str, request: Request, form: FormDep,
                               principal: ConsoleOfficer, session: SessionDep) -> Response:
    return _console_route_action("return", key, route_key, request, form, principal, session)


@console_router.post("/{key}/routes/{route_key}/revoke")
def console_revoke_route(key: str, route_key: str, request: Request, form: FormDep,
                               principal: ConsoleOfficer, session: SessionDep) -> Response:
    return _console_route_action("revoke", key, route_key, request, form, principal, session)


def _auth_values(auth: Authorisation) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(auth, name) for name in AUTH_TEXTS}
    for name in (*CONDITIONS, "restricting_laws_checked"):
        values[name] = "yes" if getattr(auth, name) else "no"
    values["valid_from"] = views.date_value(auth.valid_from)
    values["valid_until"] = views.date_value(auth.valid_until)
    values["runs_allowed"] = str(auth.runs_allowed)
    values["key"] = auth.key
    limit = AccessLimit.from_json(auth.access_limits)
    values["access_organs"] = ", ".join(sorted(limit.organs))
    values["access_departments"] = ", ".join(sorted(limit.departments))
    values["access_roles"] = sorted(limit.roles)
    return values


def _auth_form(request: Request, session: Session, principal: Principal, key: str,
               route: Route, auth: Authorisation | None, values: dict[str, Any],
               reasons: list[Reason] | None = None, status_code: int = 200) -> Response:
    purpose = purposes.get_purpose(session, key)
    entry = next(r for r in views.describe(session, purpose)["routes"]
                 if r["route"].id == route.id)
    return render(request, "governance/authorisation_form.html", {
        "purpose": purpose, "route": route, "entry": entry, "auth": auth, "values": values,
        "reasons": reasons or [], "errors": views.errors_by_field(reasons or []),
        "conditions": CONDITIONS, "policy": policy(GovernancePolicy),
        "organs": session.exec(select(Organ).order_by(col(Organ.key))).all(),
        "departments": session.exec(select(Department).order_by(col(Department.key))).all(),
        "limit_roles": [(r.value, messages.text(f"role.{r.value}"),
                         messages.text(f"role.{r.value}", "en")) for r in Role],
        "words": words, "labels": words.FIELD_LABELS, **_abilities(principal),
    }, status_code=status_code)


@console_router.get("/{key}/routes/{route_key}/authorisations/new")
def console_new_authorisation(key: str, route_key: str, request: Request,
                              principal: ConsoleDrafter, session: SessionDep) -> Response:
    route = _own_route(session, key, route_key)
    values: dict[str, Any] = {name: "" for name in (*AUTH_TEXTS, *CONDITIONS, "valid_from",
                                                     "valid_until", *ACCESS_KEY_FIELDS)}
    values["access_roles"] = []
    values.update({"runs_allowed": "1", "restricting_laws_checked": "",
                   "key": f"{route_key}.{datetime.now(TOKYO).year}"})
    return _auth_form(request, session, principal, key, route, None, values)


@console_router.post("/{key}/routes/{route_key}/authorisations/new")
def console_create_authorisation(key: str, route_key: str, request: Request, form: FormDep,
                                       principal: ConsoleDrafter,
                                       session: SessionDep) -> Response:
    route = _own_route(session, key, route_key)
    data, values, problems = auth_form_data(form)
    data["key"] = values["key"] = forms.text(form, "key")
    data["route"] = route_key
    if problems:
        return _auth_form(request, session, principal, key, route, None, values, problems, 422)
    try:
        auth = footing.create_authorisation(session, principal,
                                            AuthorisationCreate.model_validate(data))
    except ValidationError as error:
        return _auth_form(request, session, principal, key, route, None, values,
                          validation_reasons(error), 422)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _auth_form(request, session, principal, key, _own_route(session, key, route_key),
                          None, values, reasons, error.status_code)
    if forms.text(form, "then") == "submit":
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
def console_update_authorisation(key: str, auth_key: str, request: Request, form: FormDep,
                                       principal: ConsoleDrafter,
                                       session: SessionDep) -> Response:
    route, auth = _own_authorisation(session, key, auth_key)
    data, values, problems = auth_form_data(form)
    values["key"] = auth_key
    if problems:
        return _auth_form(request, session, principal, key, route, auth, values, problems, 422)
    try:
        footing.update_authorisation(session, principal, auth_key,
                                     AuthorisationFields.model_validate(data))
    except ValidationError as error:
        return _auth_form(request, session, principal, key, route, auth, values,
                          validation_reasons(error), 422)
    except DomainError as error:
        reasons = _refused(request, session, error)
        route, auth = _own_authorisation(session, key, auth_key)
        return _auth_form(request, session, principal, key, route, auth, values, reasons,
                          error.status_code)
    if forms.text(form, "then") == "submit":
        return _then_submit(f"/purposes/{_q(key)}/authorisations/{_q(auth_key)}/submit")
    return _back(key, f"authorisation-{auth_key}", done="saved")


def _submit_authorisation(request: Request, form: FormData, session: Session, principal: Principal,
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
def console_submit_authorisation(key: str, auth_key: str, request: Request, form: FormDep,
                                       principal: ConsoleDrafter,
                                       session: SessionDep) -> Response:
    _own_authorisation(session, key, auth_key)
    return _submit_authorisation(request, form, session, principal, key, auth_key)


@console_router.post("/{key}/authorisations/{auth_key}/approve")
def console_approve_authorisation(key: str, auth_key: str, request: Request, form: FormDep,
                                        principal: ConsoleOfficer,
                                        session: SessionDep) -> Response:
    _own_authorisation(session, key, auth_key)
    values = {"comment": forms.text(form, "comment"),
              "delegation_note": forms.text(form, "delegation_note"),
              "action": f"authorisation:{auth_key}:approve"}
    missing = [r for r in (required(form, "comment"), required(form, "delegation_note"))
               if r is not None]
    if missing:
        return _detail(request, session, principal, key, missing, 422, values)
    try:
        footing.approve_authorisation(session, principal, auth_key, ApprovalIn(
            comment=values["comment"], delegation_note=values["delegation_note"]))
    except ValidationError as error:
        return _detail(request, session, principal, key, validation_reasons(error), 422, values)
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code, values)
    return _back(key, f"authorisation-{auth_key}", done="approve")


@console_router.post("/{key}/authorisations/{auth_key}/return")
def console_return_authorisation(key: str, auth_key: str, request: Request, form: FormDep,
                                       principal: ConsoleOfficer,
                                       session: SessionDep) -> Response:
    _own_authorisation(session, key, auth_key)
    values = {"comment": forms.text(form, "comment"), "action": f"authorisation:{auth_key}:return"}
    missing = required(form, "comment")
    if missing is not None:
        return _detail(request, session, principal, key, [missing], 422, values)
    try:
        footing.return_authorisation(session, principal, auth_key,
                                     Decision(comment=values["comment"]))
    except DomainError as error:
        reasons = _refused(request, session, error)
        return _detail(request, session, principal, key, reasons, error.status_code, values)
    return _back(key, f"authorisation-{auth_key}", done="return")


gate_console_router = APIRouter()


@gate_console_router.get("/gate")
def gate_page(request: Request, principal: ConsoleStaff, session: SessionDep) -> Response:
    """Per purpose: which job kinds would be allowed for you today, and what is missing."""
    rows = []
    for purpose in purposes.list_purposes(session):
        items = [item.key for _, item in design.purpose_items(session, purpose)]
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


# While a job waits or runs its page asks the browser to load it again (the `Refresh` header
# works without JavaScript); the JSON beside it serves clients that poll.
JOB_PAGE_REFRESH_SECONDS = 5
_RUNNING = {JobState.submitted, JobState.claimed, JobState.started, JobState.retrying}


def failure_words(code: str | None) -> tuple[str, str] | None:
    """What a failed job's stored code means, in words (never the code itself)."""
    if not code:
        return None
    if messages.has(code):
        ja, en = messages.both(code)
        if "{" not in ja + en:
            return ja, en
    return messages.both("jobs.ui.failed_generic")


def param_text(value: Any) -> str:
    """A parameter's value as a person reads it."""
    if value is None:
        return messages.text("jobs.ui.param_default")
    if isinstance(value, list | tuple):
        return "、".join(param_text(v) for v in value)
    if isinstance(value, bool):
        return "はい" if value else "いいえ"
    return str(value)


@gate_console_router.get("/jobs/{job_id}")
def job_page(job_id: int, request: Request, principal: ConsoleStaff,
             session: SessionDep) -> Response:
    """One job: its state, live progress, parameters, population and result."""
    job = jobs.get_job(session, job_id)
    described = jobs.describe(job)
    purpose = session.get(Purpose, job.purpose_id)
    running = job.state in _RUNNING
    response = render(request, "governance/job.html", {
        "job": described, "purpose": purpose, "running": running,
        "params": [(name, param_text(value))
                   for name, value in sorted(described["params"].items())],
        "failure": failure_words(job.error_code) if job.state != JobState.finished else None,
        "refresh_seconds": JOB_PAGE_REFRESH_SECONDS,
    })
    if running:
        response.headers["Refresh"] = str(JOB_PAGE_REFRESH_SECONDS)
    return response


@gate_console_router.get("/jobs/{job_id}/progress", response_model=JobProgressState)
def job_progress(job_id: int, principal: ConsoleStaff, session: SessionDep) -> JobProgressState:
    """The job's state and progress, small, for a page that polls."""
    described = jobs.describe(jobs.get_job(session, job_id))
    return JobProgressState.model_validate(described)


ConsolePiaReader = Annotated[Principal, Depends(console_staff(Role.privacy_officer, Role.auditor,
                                                           Role.analyst, Role.data_holder))]


pia_console_router = APIRouter(prefix="/purposes")


def _pia_page(request: Request, session: Any, key: str, reasons: list[Any] | None = None,
          status_code: int = 200) -> Response:
    purpose = purposes.get_purpose(session, key)
    assert purpose.id is not None
    return render(request, "pia/purpose_pia.html", {
        "purpose": purpose, "status": views.pia_status(session, key), "reasons": reasons or [],
        "pias": pia.of_purpose(session, purpose.id), "states": pia.STATE_LABELS,
        "labels": assessment.CHANGE_LABELS,
    }, status_code=status_code)


@pia_console_router.get("/{key}/pia")
def console_pia(key: str, request: Request, principal: ConsolePiaReader,
                session: SessionDep) -> Response:
    return _pia_page(request, session, key)


@pia_console_router.post("/{key}/pia/open")
def console_pia_open(key: str, request: Request, principal: ConsoleOfficer,
                 session: SessionDep) -> Response:
    try:
        opened = assessment.open_pia(session, principal, key)
    except DomainError as error:
        session.rollback()
        record_refusal(request, error)
        return _pia_page(request, session, key, error.reasons, error.status_code)
    return RedirectResponse(f"/pia/{opened.id}", status_code=303)


@pia_console_router.post("/{key}/pia/submit")
def console_pia_submit(key: str, request: Request, form: FormDep, principal: ConsoleOfficer,
                         session: SessionDep) -> Response:
    try:
        version = int(str(form.get("version", "0")))
    except ValueError:
        version = 0
    try:
        submitted = assessment.submit_pia(session, principal, key, version)
    except DomainError as error:
        session.rollback()
        record_refusal(request, error)
        return _pia_page(request, session, key, error.reasons, error.status_code)
    return RedirectResponse(f"/pia/{submitted.id}", status_code=303)
