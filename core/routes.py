"""Core routes: sign-in and sign-out, the console home, the audit log, staff and role admin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlmodel import Session

from core import audit, auth, messages, policies, service, throttle
from core.auth import Principal
from core.clock import utcnow
from core.forms import by_field, parse_form, text
from core.models import OrganKind, OutsideBodyKind, Role, StaffAccount
from core.reasons import DomainError, NotAuthenticated, NotFound, Reason
from core.schemas import (
    AuditEventPublic,
    AuditPage,
    ChainReport,
    CheckpointPublic,
    DepartmentUpdate,
    GrantCreate,
    GrantPublic,
    LoginRequest,
    MePublic,
    OrganisationPublic,
    OrganUpdate,
    OutsideBodyUpdate,
    StaffCreate,
    StaffPublic,
    StaffUpdate,
    ThrottleLifted,
    TokenPublic,
)
from core.settings import get_settings
from core.throttle import SignInThrottled
from core.web import (
    SESSION_COOKIE,
    FormDep,
    SessionDep,
    api_staff,
    check_csrf,
    console_staff,
    error_body,
    public,
    record_refusal,
    render,
    set_cookie,
)

AnyStaff = Annotated[Principal, Depends(api_staff())]
Auditor = Annotated[Principal, Depends(api_staff(Role.auditor))]
Admin = Annotated[Principal, Depends(api_staff(Role.admin))]
ConsoleAnyStaff = Annotated[Principal, Depends(console_staff())]
ConsoleAuditor = Annotated[Principal, Depends(console_staff(Role.auditor))]
ConsoleAdmin = Annotated[Principal, Depends(console_staff(Role.admin))]
ConsolePrivacyOfficer = Annotated[Principal, Depends(console_staff(Role.privacy_officer))]
Public = Depends(public())


@dataclass(frozen=True)
class TodoItem:
    label_ja: str
    label_en: str
    href: str | None = None
    due: str | None = None


@dataclass(frozen=True)
class TodoPanel:
    title_ja: str
    title_en: str
    items: list[TodoItem] = field(default_factory=list)


# A package contributes to the home page with provider(session, principal) -> panels;
# main.py composes them so that core imports no domain package.
TodoProvider = Callable[[Session, Principal], list[TodoPanel]]

messages.register(
    {
        "core.invalid_field": (
            "「{label}」の値が正しくありません（{detail}）。",
            "The value of {name!r} is not valid ({detail}).",
        ),
        "core.organisation_saved": ("変更を保存しました。", "The change is saved."),
        "core.organisation_deactivated": (
            "無効にしました。記録の履歴にはそのまま残ります。",
            "Deactivated. Records that name it keep it in their history.",
        ),
        "core.organisation_reactivated": ("有効に戻しました。", "Reactivated."),
    }
)

# The health check, on both faces.
shared_router = APIRouter()
# The staff console's sign-in: open to anyone, but served on the staff face only.
sign_in_router = APIRouter()
api_router = APIRouter(prefix="/api")
console_router = APIRouter()


@shared_router.get("/healthz", dependencies=[Public])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


# ---------------------------------------------------------------- JSON API


def client_address(request: Request) -> str:
    """The caller's address (the proxy's X-Forwarded-For when uvicorn trusts the proxy)."""
    return request.client.host if request.client else "unknown"


def retry_after(error: SignInThrottled) -> str:
    return str(max(1, int((error.until - utcnow()).total_seconds()) + 1))


@api_router.post("/auth/token", dependencies=[Public], response_model=TokenPublic)
def issue_token(body: LoginRequest, request: Request, session: SessionDep) -> Any:
    try:
        account = auth.authenticate(session, body.login, body.password, client_address(request))
    except SignInThrottled as error:
        return JSONResponse(error_body(error), status_code=429,
                            headers={"Retry-After": retry_after(error)})
    except NotAuthenticated as error:
        # The failure counter and its audit event must land, so answer instead of raising.
        return JSONResponse(
            error_body(error), status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
    issued = auth.issue_staff_token(account)
    return TokenPublic(access_token=issued.token, expires_at=issued.expires_at)


@api_router.post("/auth/logout", status_code=204)
def api_logout(principal: AnyStaff, session: SessionDep) -> Response:
    auth.sign_out(session, principal)
    return Response(status_code=204)


@api_router.get("/me", response_model=MePublic)
def me(principal: AnyStaff) -> MePublic:
    return MePublic.from_principal(principal)


@api_router.get("/audit/events", response_model=AuditPage)
def audit_events(
    principal: Auditor,
    session: SessionDep,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    action: str | None = None,
    purpose_id: int | None = None,
) -> AuditPage:
    result = audit.page(session, before=before, limit=limit, action=action, purpose_id=purpose_id)
    audit.append(
        session,
        "core.audit_read",
        actor=principal.actor(Role.auditor),
        details={"before": before, "limit": limit, "action": action},
    )
    return AuditPage(
        events=[AuditEventPublic.from_event(e) for e in result.events], next_before=result.before
    )


@api_router.post("/audit/verify", response_model=ChainReport)
def audit_verify(principal: Auditor, session: SessionDep) -> ChainReport:
    report = audit.verify_against_witness(session.connection())
    audit.append(
        session,
        "core.audit_verified",
        actor=principal.actor(Role.auditor),
        details={"ok": report.ok, "events": report.events},
    )
    return ChainReport.from_report(report)


@api_router.post("/audit/checkpoint", response_model=CheckpointPublic | None)
def audit_checkpoint(principal: Auditor, session: SessionDep) -> CheckpointPublic | None:
    checkpoint = audit.checkpoint_now(session)
    return (
        None
        if checkpoint is None
        else CheckpointPublic.model_validate(checkpoint, from_attributes=True)
    )


@api_router.post("/staff", response_model=StaffPublic, status_code=201)
def create_staff(body: StaffCreate, principal: Admin, session: SessionDep) -> StaffPublic:
    actor = principal.actor(Role.admin)
    account = service.create_account(
        session,
        actor,
        login=body.login,
        display_name=body.display_name,
        password=body.password,
        department_key=body.department,
    )
    return StaffPublic.from_account(account, [])


@api_router.get("/staff/{login}", response_model=StaffPublic)
def show_staff(login: str, principal: Admin, session: SessionDep) -> StaffPublic:
    account = service.account_by_login(session, login)
    assert account.id is not None
    return StaffPublic.from_account(account, service.grants_of(session, account.id))


@api_router.post("/staff/{login}/grants", response_model=GrantPublic, status_code=201)
def grant(login: str, body: GrantCreate, principal: Admin, session: SessionDep) -> GrantPublic:
    created = service.grant_role(
        session,
        principal.actor(Role.admin),
        login=login,
        role=body.role,
        organ_key=body.organ,
        department_key=body.department,
    )
    return GrantPublic.model_validate(created, from_attributes=True)


@api_router.post("/staff/{login}/sign-in-block/lift", response_model=ThrottleLifted)
def lift_sign_in_block(login: str, principal: Admin, session: SessionDep) -> ThrottleLifted:
    """Lift every sign-in block on a login string (whether or not the account exists)."""
    count = throttle.lift(session, principal.actor(Role.admin), login)
    reason = Reason.of("auth.throttle_lifted", login=login, count=count)
    return ThrottleLifted(lifted=count, message_ja=reason.message_ja, message_en=reason.message_en)


@api_router.delete("/staff/{login}/grants/{grant_id}", status_code=204)
def revoke(login: str, grant_id: int, principal: Admin, session: SessionDep) -> Response:
    account = service.account_by_login(session, login)
    if grant_id not in {g.id for g in service.grants_of(session, account.id or 0)}:
        raise NotFound(Reason.of("core.unknown_grant", id=grant_id))
    service.revoke_role(session, principal.actor(Role.admin), grant_id)
    return Response(status_code=204)


# The organisation's lifecycle (administrators): update, deactivate and reactivate.

UnitPath = Literal["organs", "departments", "outside-bodies"]
UNIT_OF_PATH: dict[str, str] = {"organs": "organ", "departments": "department",
                                "outside-bodies": "outside_body"}


def organisation(session: Session) -> OrganisationPublic:
    return OrganisationPublic.of(service.list_organs(session), service.list_departments(session),
                                 service.list_outside_bodies(session))


@api_router.get("/organisation", response_model=OrganisationPublic)
def organisation_api(principal: Admin, session: SessionDep) -> OrganisationPublic:
    """Every organ, department and outside body, deactivated ones included."""
    return organisation(session)


@api_router.patch("/organisation/organs/{key}", response_model=OrganisationPublic)
def update_organ_api(key: str, body: OrganUpdate, principal: Admin,
                     session: SessionDep) -> OrganisationPublic:
    service.update_organ(session, principal.actor(Role.admin), key,
                         **body.model_dump(exclude_unset=True))
    return organisation(session)


@api_router.patch("/organisation/departments/{key}", response_model=OrganisationPublic)
def update_department_api(key: str, body: DepartmentUpdate, principal: Admin,
                          session: SessionDep) -> OrganisationPublic:
    changes = body.model_dump(exclude_unset=True)
    if "parent" in changes:
        changes["parent_key"] = changes.pop("parent")
    service.update_department(session, principal.actor(Role.admin), key, **changes)
    return organisation(session)


@api_router.patch("/organisation/outside-bodies/{key}", response_model=OrganisationPublic)
def update_outside_body_api(key: str, body: OutsideBodyUpdate, principal: Admin,
                            session: SessionDep) -> OrganisationPublic:
    service.update_outside_body(session, principal.actor(Role.admin), key,
                                **body.model_dump(exclude_unset=True))
    return organisation(session)


@api_router.post("/organisation/{kind}/{key}/deactivate", response_model=OrganisationPublic)
def deactivate_unit_api(kind: UnitPath, key: str, principal: Admin,
                        session: SessionDep) -> OrganisationPublic:
    """Refused (409, each blocking record named) while routes, files, purposes, grants,
    departments or accounts in force still name it."""
    unit = service.unit_by_key(session, UNIT_OF_PATH[kind], key)
    service.deactivate_unit(session, principal.actor(Role.admin), unit)
    return organisation(session)


@api_router.post("/organisation/{kind}/{key}/reactivate", response_model=OrganisationPublic)
def reactivate_unit_api(kind: UnitPath, key: str, principal: Admin,
                        session: SessionDep) -> OrganisationPublic:
    unit = service.unit_by_key(session, UNIT_OF_PATH[kind], key)
    service.reactivate_unit(session, principal.actor(Role.admin), unit)
    return organisation(session)


def _staff_public(session: Session, account: StaffAccount) -> StaffPublic:
    assert account.id is not None
    return StaffPublic.from_account(account, service.grants_of(session, account.id))


@api_router.patch("/staff/{login}", response_model=StaffPublic)
def update_staff(login: str, body: StaffUpdate, principal: Admin,
                 session: SessionDep) -> StaffPublic:
    changes = body.model_dump(exclude_unset=True)
    if "department" in changes:
        changes["department_key"] = changes.pop("department")
    account = service.change_account(session, principal.actor(Role.admin), login, **changes)
    return _staff_public(session, account)


@api_router.post("/staff/{login}/deactivate", response_model=StaffPublic)
def deactivate_staff(login: str, principal: Admin, session: SessionDep) -> StaffPublic:
    """The account can no longer sign in, and its tokens stop working at once."""
    account = service.change_account(session, principal.actor(Role.admin), login, active=False)
    return _staff_public(session, account)


@api_router.post("/staff/{login}/reactivate", response_model=StaffPublic)
def reactivate_staff(login: str, principal: Admin, session: SessionDep) -> StaffPublic:
    account = service.change_account(session, principal.actor(Role.admin), login, active=True)
    return _staff_public(session, account)


# ---------------------------------------------------------------- console pages


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after sign-in would help phishing. Browsers drop
    # tabs and newlines inside a URL ("/\t/evil.example" is "//evil.example"), so no control
    # characters either.
    if (target and target.startswith("/") and not target.startswith("//")
            and "\\" not in target and target.isprintable()):
        return target
    return "/"


@sign_in_router.get("/login", dependencies=[Public])
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "core/login.html", {"next": _safe_next(next), "error": None})


@sign_in_router.post("/login", dependencies=[Public])
def login_submit(
    request: Request,
    session: SessionDep,
    form: FormDep,
    login: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=512)] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    check_csrf(request, form)
    try:
        account = auth.authenticate(session, login, password, client_address(request))
    except SignInThrottled as error:
        page = render(
            request,
            "core/login.html",
            {"next": _safe_next(next), "error": error.reasons[0], "login": login},
            status_code=429,
        )
        page.headers["Retry-After"] = retry_after(error)
        return page
    except NotAuthenticated as error:
        return render(
            request,
            "core/login.html",
            {"next": _safe_next(next), "error": error.reasons[0], "login": login},
            status_code=401,
        )
    issued = auth.issue_staff_token(account)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(
        response, request, SESSION_COOKIE, issued.token, get_settings().access_token_minutes * 60
    )
    return response


@console_router.post("/logout")
def logout(request: Request, principal: ConsoleAnyStaff, session: SessionDep) -> Response:
    auth.sign_out(session, principal)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@console_router.get("/")
def home(request: Request, principal: ConsoleAnyStaff, session: SessionDep) -> Response:
    providers: list[TodoProvider] = getattr(request.app.state, "todo_providers", [])
    panels = [panel for provider in providers for panel in provider(session, principal)]
    municipality = service.get_municipality(session)
    organs = {o.id: o for o in service.list_organs(session)}
    return render(
        request,
        "core/home.html",
        {
            "panels": panels,
            "municipality": municipality,
            "grants": [(g, organs.get(g.organ_id)) for g in principal.grants],
            "roles": sorted(principal.roles),
        },
    )


@console_router.get("/audit")
def audit_page(
    request: Request,
    principal: ConsoleAuditor,
    session: SessionDep,
    before: Annotated[int | None, Query(ge=1)] = None,
    action: str | None = None,
) -> Response:
    result = audit.page(session, before=before, limit=50, action=action or None)
    audit.append(
        session,
        "core.audit_read",
        actor=principal.actor(Role.auditor),
        details={"before": before, "limit": 50, "action": action},
    )
    return render(
        request,
        "core/audit.html",
        {
            "events": result.events,
            "next_before": result.before,
            "action": action or "",
            "report": None,
        },
    )


@console_router.post("/audit/verify")
def audit_verify_page(request: Request, principal: ConsoleAuditor, session: SessionDep) -> Response:
    report = audit.verify_against_witness(session.connection())
    audit.append(
        session,
        "core.audit_verified",
        actor=principal.actor(Role.auditor),
        details={"ok": report.ok, "events": report.events},
    )
    result = audit.page(session, limit=50)
    return render(
        request,
        "core/audit.html",
        {
            "events": result.events,
            "next_before": result.before,
            "action": "",
            "report": report,
        },
    )


# ---------------------------------------------------------------- the organisation page


ORGANISATION_LABELS = {
    "name_ja": "名称（日本語）", "name_en": "名称（英語）", "kind": "種別", "parent": "上位の部署",
    "is_public_body": "公的機関", "display_name": "表示名", "department": "所属部署",
}
# The page's sections: path segment → the form's model.
PAGE_KINDS: dict[str, type[BaseModel]] = {"organs": OrganUpdate, "departments": DepartmentUpdate,
              "outside-bodies": OutsideBodyUpdate, "staff": StaffUpdate}
DONE_MESSAGES = {"saved": "core.organisation_saved", "deactivated": "core.organisation_deactivated",
                 "reactivated": "core.organisation_reactivated"}


def _organisation_page(request: Request, session: Session, *, reasons: list[Reason] | None = None,
                       failed: str | None = None, done: str | None = None,
                       status_code: int = 200) -> Response:
    organs = service.list_organs(session)
    departments = service.list_departments(session)
    organ_of = {o.id: o for o in organs}
    department_of = {d.id: d for d in departments}
    accounts = []
    for account in service.list_accounts(session):
        assert account.id is not None
        grants = [(g, organ_of.get(g.organ_id), department_of.get(g.department_id))
                  for g in service.grants_of(session, account.id)]
        accounts.append((account, department_of.get(account.department_id), grants))
    done_code = DONE_MESSAGES.get(done or "")
    return render(request, "core/organisation.html", {
        "organs": organs,
        "departments": [(d, organ_of.get(d.organ_id), department_of.get(d.parent_id))
                        for d in departments],
        "active_departments": [d for d in departments if d.is_active],
        "organ_of": organ_of,
        "bodies": service.list_outside_bodies(session),
        "accounts": accounts,
        "organ_kinds": [k.value for k in OrganKind],
        "body_kinds": [k.value for k in OutsideBodyKind],
        "reasons": reasons or [],
        "errors": by_field(reasons or []),
        "failed": failed,
        "done": Reason.of(done_code) if done_code else None,
    }, status_code=status_code)


@console_router.get("/admin/organisation")
def organisation_page(request: Request, principal: ConsoleAdmin, session: SessionDep,
                      done: str | None = None) -> Response:
    return _organisation_page(request, session, done=done)


def _refused(request: Request, session: Session, error: DomainError, failed: str) -> Response:
    """The page again with every reason; the refusal is recorded once the change is undone."""
    session.rollback()
    record_refusal(request, error)
    return _organisation_page(request, session, reasons=error.reasons, failed=failed,
                              status_code=error.status_code)


def _edit_form(kind: str, form: Any) -> dict[str, Any]:
    """The posted fields of one record's edit form (every field is sent: unchanged ones are
    left alone by the service)."""
    names = {"organs": ("name_ja", "name_en", "kind"),
             "departments": ("name_ja", "name_en", "parent"),
             "outside-bodies": ("name_ja", "name_en", "kind"),
             "staff": ("display_name", "department")}[kind]
    data: dict[str, Any] = {name: text(form, name) or None for name in names}
    if kind == "outside-bodies":
        data["is_public_body"] = form.get("is_public_body") == "on"
    return data


def _save(session: Session, actor: audit.Actor, kind: str, key: str, data: BaseModel
          ) -> None:
    changes = data.model_dump(exclude_unset=True)
    if kind == "organs":
        service.update_organ(session, actor, key, **changes)
    elif kind == "departments":
        service.update_department(session, actor, key, name_ja=changes.get("name_ja"),
                                  name_en=changes.get("name_en"),
                                  parent_key=changes.get("parent"))
    elif kind == "outside-bodies":
        service.update_outside_body(session, actor, key, **changes)
    else:
        service.change_account(session, actor, key, display_name=changes.get("display_name"),
                               department_key=changes.get("department"))


def _page_kind(kind: str) -> str:
    if kind not in PAGE_KINDS:
        raise NotFound(Reason.of("core.not_found"))
    return kind


@console_router.post("/admin/organisation/{kind}/{key}/edit")
def organisation_edit(kind: str, key: str, request: Request, form: FormDep,
                      principal: ConsoleAdmin, session: SessionDep) -> Response:
    kind = _page_kind(kind)
    try:
        data: BaseModel = parse_form(PAGE_KINDS[kind], _edit_form(kind, form), ORGANISATION_LABELS,
                          code="core.invalid_field")
        _save(session, principal.actor(Role.admin), kind, key, data)
    except DomainError as error:
        return _refused(request, session, error, f"{kind}:{key}")
    return RedirectResponse(f"/admin/organisation?done=saved#{kind}-{key}", status_code=303)


def _set_active(session: Session, actor: audit.Actor, kind: str, key: str, active: bool) -> None:
    if kind == "staff":
        service.change_account(session, actor, key, active=active)
        return
    unit = service.unit_by_key(session, UNIT_OF_PATH[kind], key)
    (service.reactivate_unit if active else service.deactivate_unit)(session, actor, unit)


@console_router.post("/admin/organisation/{kind}/{key}/deactivate")
def organisation_deactivate(kind: str, key: str, request: Request, principal: ConsoleAdmin,
                            session: SessionDep) -> Response:
    kind = _page_kind(kind)
    try:
        _set_active(session, principal.actor(Role.admin), kind, key, False)
    except DomainError as error:
        return _refused(request, session, error, f"{kind}:{key}")
    return RedirectResponse(f"/admin/organisation?done=deactivated#{kind}-{key}",
                            status_code=303)


@console_router.post("/admin/organisation/{kind}/{key}/reactivate")
def organisation_reactivate(kind: str, key: str, request: Request, principal: ConsoleAdmin,
                            session: SessionDep) -> Response:
    kind = _page_kind(kind)
    try:
        _set_active(session, principal.actor(Role.admin), kind, key, True)
    except DomainError as error:
        return _refused(request, session, error, f"{kind}:{key}")
    return RedirectResponse(f"/admin/organisation?done=reactivated#{kind}-{key}",
                            status_code=303)
@console_router.get("/policies")
def policies_page(request: Request, principal: ConsolePrivacyOfficer) -> Response:
    """Every policy in force, read-only: the operator changes them in the policy file."""
    return render(request, "core/policies.html", {
        "policies": policies.in_force(), "markers": policies.MARKERS,
        "sources": policies.SOURCES,
    })
