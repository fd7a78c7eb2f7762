"""Web plumbing: request unit of work, default-deny access rules, CSRF, pages and error replies."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from sqlalchemy import exc as sa_exc
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import audit, messages
from core.auth import Principal, ResidentPrincipal, resident_from_token, staff_principal_from_token
from core.clock import format_tokyo
from core.db import discard_after_read, run_after_read
from core.documents import register_template_package, registered_template_packages
from core.models import Role
from core.reasons import DomainError, Forbidden, NotAuthenticated, Reason
from core.settings import get_settings

SESSION_COOKIE = "kodomo_session"
CSRF_COOKIE = "kodomo_csrf"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

messages.register(
    {
        "core.invalid_request": (
            "入力内容に誤りがあります（{where}）: {detail}",
            "The request is not valid ({where}): {detail}",
        ),
        "core.not_found": (
            "お探しのページは見つかりませんでした。アドレスを確かめるか、ホームから操作してください。",
            "The page was not found. Check the address, or start from the home page.",
        ),
        "core.method_not_allowed": (
            "このページではその操作はできません。画面のボタンやリンクから操作してください。",
            "This page does not accept that kind of request. Use the page's buttons and links.",
        ),
        "core.http_error": (
            "要求を処理できませんでした（{status}）。",
            "The request could not be handled ({status}).",
        ),
        "core.server_error": (
            "システムでエラーが発生しました。時間をおいてもう一度お試しください。"
            "続く場合はシステム管理者に連絡してください。",
            "Something went wrong in the service. Try again later; if it goes on, tell the "
            "system administrator.",
        ),
        "core.error_title": ("エラー", "Error"),
        "core.error_title.400": ("入力内容を確認してください", "Please check your input"),
        "core.error_title.401": ("サインインが必要です", "Sign-in required"),
        "core.error_title.403": ("この操作を行う権限がありません", "Not allowed"),
        "core.error_title.404": ("ページが見つかりません", "Page not found"),
        "core.error_title.405": ("この操作はできません", "Not accepted here"),
        "core.error_title.409": ("ほかの操作と重なりました", "Conflict"),
        "core.error_title.413": ("送信された内容が大きすぎます", "Request too large"),
        "core.error_title.422": ("入力内容に誤りがあります", "The input is not valid"),
        "core.error_title.429": ("しばらくお待ちください", "Too many requests"),
        "core.error_title.500": ("エラーが発生しました", "Something went wrong"),
        "core.error_title.503": ("ただいま混み合っています", "Busy"),
        "core.fix": ("修正する", "fix"),
        "auth.origin_refused": (
            "他のサイトから送信されたため受け付けませんでした。このサービスの画面から送信してください。",
            "Refused: the request came from another site. Submit it from this service's pages.",
        ),
        "core.busy": (
            "ただいま混み合っています。しばらくしてからもう一度お試しください。",
            "The service is busy. Please try again in a moment.",
        ),
    }
)

# ---------------------------------------------------------------- unit of work


# Every route is a plain `def`: FastAPI runs it, and its dependencies that touch the database,
# in its thread pool, so the event loop never waits on the database. Only reading the request
# body (`request_form`) is async, and it does no database work.


def writes(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a GET route whose unit of work writes (unsafe methods write without saying so)."""
    endpoint.__writes__ = True  # type: ignore[attr-defined]
    return endpoint


def request_writes(request: Request) -> bool:
    """Whether the request's unit of work writes: POST/PUT/PATCH/DELETE, or a marked route."""
    if request.method in UNSAFE_METHODS:
        return True
    return bool(getattr(request.scope.get("endpoint"), "__writes__", False))


def open_request_session(request: Request, *, writes: bool) -> Session:
    opener: Callable[..., Session] = request.app.state.open_session
    return opener(writes=writes)


def get_session(request: Request) -> Iterator[Session]:
    """The request's transaction: commit when the route returns, roll back when it raises.

    A read (GET) never takes SQLite's write lock; what it records (the audit event of a page
    showing identified data) is written after it, in a short transaction of its own, before
    the answer leaves.
    """
    with open_request_session(request, writes=request_writes(request)) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            discard_after_read(session)
            raise
        run_after_read(session, lambda: open_request_session(request, writes=True))


async def request_form(request: Request) -> FormData:
    """The posted form, read on the event loop (no database work) for a plain `def` route."""
    return await request.form()


FormDep = Annotated[FormData, Depends(request_form)]


async def _unsafe_form(request: Request) -> FormData | None:
    return await request.form() if request.method in UNSAFE_METHODS else None


# Ends before the response is sent, so a failed commit never reaches the client as success.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

# ---------------------------------------------------------------- access rules


@dataclass(frozen=True)
class AccessRule:
    """Who may call a route; every route must declare exactly one (default deny)."""

    kind: Literal["public", "staff", "resident"]
    roles: frozenset[Role] = frozenset()
    channel: Literal["api", "console", "any"] = "any"

    def describe(self) -> str:
        if self.kind != "staff":
            return self.kind
        roles = ",".join(sorted(r.value for r in self.roles)) or "any staff"
        return f"staff[{roles}] via {self.channel}"


def _mark(function: Callable[..., Any], rule: AccessRule) -> Callable[..., Any]:
    function.__access_rule__ = rule  # type: ignore[attr-defined]
    return function


def _require_roles(principal: Principal, roles: frozenset[Role]) -> Principal:
    if roles and not principal.has_role(*roles):
        names = "、".join(messages.text(f"role.{r.value}") for r in sorted(roles))
        raise Forbidden(Reason.of("auth.role_required", roles=names))
    return principal


def public() -> Callable[..., Any]:
    """Anyone may call the route (sign-in page, public register, health check)."""

    def public_access() -> None:
        return None

    return _mark(public_access, AccessRule("public"))


def api_staff(*roles: Role) -> Callable[..., Any]:
    """A staff bearer token holding one of `roles` (any staff when none are named)."""
    wanted = frozenset(roles)

    def api_staff_access(request: Request, session: SessionDep) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated(Reason.of("auth.not_signed_in"))
        principal = staff_principal_from_token(session, token.strip())
        request.state.principal = principal
        return _require_roles(principal, wanted)

    return _mark(api_staff_access, AccessRule("staff", wanted, "api"))


class ConsoleSignInRequired(Exception):
    """Raised by console routes without a valid session; answered with a redirect."""


def console_staff(*roles: Role) -> Callable[..., Any]:
    """A staff console session cookie holding one of `roles`; unsafe methods need CSRF."""
    wanted = frozenset(roles)

    def console_staff_access(
        request: Request,
        session: SessionDep,
        form: Annotated[FormData | None, Depends(_unsafe_form)],
    ) -> Principal:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise ConsoleSignInRequired()
        try:
            principal = staff_principal_from_token(session, token)
        except NotAuthenticated as error:
            raise ConsoleSignInRequired() from error
        request.state.principal = principal
        if request.method in UNSAFE_METHODS:
            check_csrf(request, form)
        return _require_roles(principal, wanted)

    return _mark(console_staff_access, AccessRule("staff", wanted, "console"))


def resident() -> Callable[..., Any]:
    """A resident bearer token from the portal's sign-in (staff tokens are refused)."""

    def resident_access(request: Request) -> ResidentPrincipal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated(Reason.of("auth.not_signed_in"))
        return resident_from_token(token.strip())

    return _mark(resident_access, AccessRule("resident"))


def _rules_of(dependant: Any) -> list[AccessRule]:
    found: list[AccessRule] = []
    for sub in dependant.dependencies:
        rule = getattr(sub.call, "__access_rule__", None)
        if rule is not None:
            found.append(rule)
        found.extend(_rules_of(sub))
    return found


def route_access(route: APIRoute) -> list[AccessRule]:
    return _rules_of(route.dependant)


# Where a router is served: the staff face, the public face, or both.
Mount = Literal["staff", "public", "both"]


def undeclared_routes(router: APIRouter, face: Mount) -> list[str]:
    """Routes without exactly one access rule, or with a staff rule on the public face."""
    problems: list[str] = []
    for route in router.routes:
        if not isinstance(route, APIRoute):
            problems.append(f"{getattr(route, 'path', route)!r} is not an API route")
            continue
        rules = route_access(route)
        where = f"{sorted(route.methods or ())} {route.path}"
        if len(rules) != 1:
            problems.append(f"{where}: {len(rules)} access rules")
        elif face != "staff" and rules[0].kind == "staff":
            problems.append(f"{where}: staff route on the public face")
    return problems


def include_router(app: FastAPI, router: APIRouter, face: Mount) -> None:
    """Mount a router only when every route declares who may call it (default deny)."""
    problems = undeclared_routes(router, face)
    if problems:
        raise RuntimeError("refusing to mount routes: " + "; ".join(problems))
    app.include_router(router)


# ---------------------------------------------------------------- CSRF


def _csrf_binding(request: Request) -> str:
    """What a CSRF token is tied to: this browser's session (a digest of its session cookie),
    or "anonymous" before sign-in. A token minted for one session fails in any other, so an
    attacker's own valid token planted with a cookie does not pass."""
    session_token = request.cookies.get(SESSION_COOKIE)
    if not session_token:
        return "anonymous"
    return hashlib.sha256(session_token.encode()).hexdigest()[:32]


def _csrf_signature(nonce: str, binding: str) -> str:
    secret = get_settings().signing_secret().encode()
    return hmac.new(secret, f"csrf:{binding}:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def _csrf_valid(token: str | None, binding: str) -> bool:
    if not token or "." not in token:
        return False
    nonce, _, signature = token.partition(".")
    return hmac.compare_digest(signature, _csrf_signature(nonce, binding))


def csrf_token(request: Request) -> str:
    """The form token for this browser and session: the cookie's when valid, else a new one."""
    binding = _csrf_binding(request)
    existing = getattr(request.state, "csrf_token", None) or request.cookies.get(CSRF_COOKIE)
    if _csrf_valid(existing, binding):
        return str(existing)
    nonce = secrets.token_urlsafe(24)
    token = f"{nonce}.{_csrf_signature(nonce, binding)}"
    request.state.csrf_token = token
    request.state.csrf_new = True
    return token


def _origin_of(value: str) -> str | None:
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request) -> bool:
    """An unsafe request from a browser must come from this site: its Origin (or, without one,
    its Referer) names this host. A request carrying neither (not a browser) passes this check
    and still needs the CSRF token."""
    own = f"{request.url.scheme}://{request.url.netloc}".lower()
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == own
    referer = request.headers.get("referer")
    if referer is not None:
        return _origin_of(referer) == own
    return True


async def require_csrf(request: Request) -> None:
    """Same origin, and double submit tied to the session (see `check_csrf`)."""
    check_csrf(request, await request.form())


def check_csrf(request: Request, form: FormData | None) -> None:
    """Same origin, and double submit tied to the session: the form field must equal this
    browser's CSRF cookie, and the cookie must have been minted for this session. For a form
    already read (a plain `def` route or dependency)."""
    if not same_origin(request):
        raise Forbidden(Reason.of("auth.origin_refused"))
    submitted = form.get(CSRF_FIELD) if form is not None else None
    cookie = request.cookies.get(CSRF_COOKIE)
    if (
        not isinstance(submitted, str)
        or not cookie
        or not hmac.compare_digest(submitted, cookie)
        or not _csrf_valid(cookie, _csrf_binding(request))
    ):
        raise Forbidden(Reason.of("auth.csrf_failed", field=CSRF_FIELD))


def cookie_secure(request: Request) -> bool:
    forced = get_settings().cookie_secure
    return forced if forced is not None else request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=cookie_secure(request),
        samesite="strict",
        path="/",
    )


# ---------------------------------------------------------------- pages


def _bilingual(code: str, **params: Any) -> dict[str, str]:
    return {"ja": messages.text(code, "ja", **params), "en": messages.text(code, "en", **params)}


@lru_cache(maxsize=8)
def _templates_for(packages: tuple[str, ...]) -> Jinja2Templates:
    env = Environment(
        loader=ChoiceLoader([PackageLoader(p, "templates") for p in packages]),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["t"] = lambda code, **p: messages.text(code, "ja", **p)
    env.globals["te"] = lambda code, **p: messages.text(code, "en", **p)
    env.globals["bi"] = _bilingual
    env.filters["tokyo"] = format_tokyo
    return Jinja2Templates(env=env)


def templates() -> Jinja2Templates:
    """Page templates of every package registered with core.documents (one registry)."""
    register_template_package("core")
    return _templates_for(registered_template_packages())


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """A console or public page; carries the CSRF token and the signed-in principal."""
    data: dict[str, Any] = {
        "principal": getattr(request.state, "principal", None),
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(request),
        "nav": getattr(request.app.state, "nav", []),
    }
    data.update(context or {})
    response = templates().TemplateResponse(request, template, data, status_code=status_code)
    if getattr(request.state, "csrf_new", False):
        set_cookie(response, request, CSRF_COOKIE, request.state.csrf_token, 60 * 60 * 8)
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- errors


def _wants_html(request: Request) -> bool:
    """A page for a browser, JSON for the API: never a page under /api, never for a client
    that asks for JSON and not HTML; a page otherwise (browsers send text/html)."""
    if request.url.path.startswith("/api"):
        return False
    accept = request.headers.get("accept", "").lower()
    return "text/html" in accept or "application/json" not in accept


def error_page(request: Request, reasons: list[Reason], status_code: int) -> HTMLResponse:
    """The Japanese error page in the site's layout, with a way back where there is one."""
    code = f"core.error_title.{status_code}"
    title = code if code in messages.codes() else "core.error_title"
    face = getattr(request.app.state, "face", "all")
    return render(request, "core/error.html", {
        "reasons": reasons, "status": status_code, "title": _bilingual(title),
        "home": None if face == "public" else "/",
    }, status_code=status_code)


def error_body(error: DomainError) -> dict[str, Any]:
    return {"error": {"code": error.code, "reasons": [r.to_dict() for r in error.reasons]}}


def _location(loc: Any) -> str:
    return ".".join(str(part) for part in loc if part not in ("body", "query", "path"))


# Not-signed-in and not-found answers are noise, not decisions; everything else is recorded.
_UNRECORDED_STATUSES = frozenset({401, 404})


def record_refusal(request: Request, error: DomainError) -> None:
    """Record a refusal with its reasons, after the request's own work has been rolled back."""
    if error.status_code in _UNRECORDED_STATUSES:
        return
    principal = getattr(request.state, "principal", None)
    actor = principal.actor() if isinstance(principal, Principal) else audit.Actor("anonymous")
    route = request.scope.get("route")
    with open_request_session(request, writes=True) as session:
        audit.append(
            session,
            "core.request_refused",
            actor=actor,
            details={
                "method": request.method,
                # The route's template, never the filled-in URL, which may carry personal data.
                "route": getattr(route, "path", "?"),
                "codes": [reason.code for reason in error.reasons][:20],
                "status": error.status_code,
            },
        )
        session.commit()


# PostgreSQL: lock_timeout (55P03), statement_timeout or cancel (57014), too many connections
# (53300); SQLite: the write lock not had within busy_timeout.
_BUSY_SQLSTATES = frozenset({"55P03", "57014", "53300"})


def database_busy(error: sa_exc.OperationalError) -> bool:
    """Whether a database error means "busy, try again" rather than a fault."""
    if getattr(error.orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    return "database is locked" in str(error.orig)


def busy_response(request: Request) -> Response:
    """503 at once when no connection is to be had (the pool is exhausted) or a lock or
    statement timed out: the Reason (Japanese first), as a page or as JSON."""
    reason = Reason.of("core.busy")
    headers = {"Retry-After": "5"}
    if _wants_html(request):
        response = error_page(request, [reason], 503)
        response.headers.update(headers)
        return response
    body = {"error": {"code": "core.busy", "reasons": [reason.to_dict()]}}
    return JSONResponse(body, status_code=503, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, error: DomainError) -> Response:
        # A database write: in the thread pool, never on the event loop.
        await run_in_threadpool(record_refusal, request, error)
        if _wants_html(request):
            return error_page(request, error.reasons, error.status_code)
        headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else None
        return JSONResponse(error_body(error), status_code=error.status_code, headers=headers)

    @app.exception_handler(sa_exc.TimeoutError)
    @app.exception_handler(sa_exc.OperationalError)
    async def _busy(request: Request, error: Exception) -> Response:
        if isinstance(error, sa_exc.OperationalError) and not database_busy(error):
            raise error
        return busy_response(request)

    @app.exception_handler(ConsoleSignInRequired)
    async def _sign_in(request: Request, _error: ConsoleSignInRequired) -> Response:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        reasons = [
            Reason.of(
                "core.invalid_request",
                field=_location(item.get("loc", ())),
                where=_location(item.get("loc", ())),
                detail=str(item.get("msg", "")),
            )
            for item in error.errors()
        ] or [Reason.of("core.invalid_request", where="", detail="")]
        if _wants_html(request):
            return error_page(request, reasons, 422)
        body = {
            "error": {"code": "core.invalid_request", "reasons": [r.to_dict() for r in reasons]}
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        # No route (404), a method the route does not take (405), or an HTTPException.
        code = {404: "core.not_found", 405: "core.method_not_allowed"}.get(error.status_code)
        if code is not None:
            reason = Reason.of(code)
        elif error.status_code == 413:  # a streamed body over the limit (core.middleware)
            reason = Reason.of("core.request_too_large", limit=get_settings().max_request_bytes)
        else:
            reason = Reason.of("core.http_error", status=error.status_code)
        headers = dict(error.headers or {})
        if _wants_html(request):
            response: Response = error_page(request, [reason], error.status_code)
        else:
            body = {"error": {"code": reason.code, "reasons": [reason.to_dict()]}}
            response = JSONResponse(body, status_code=error.status_code)
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def _server_error(request: Request, _error: Exception) -> Response:
        # Starlette still logs the error and re-raises it after this answer; no detail of it
        # (a path, a value) reaches the person.
        reason = Reason.of("core.server_error")
        if _wants_html(request):
            try:
                return error_page(request, [reason], 500)
            except Exception:
                return PlainTextResponse(f"{reason.message_ja}\n{reason.message_en}\n",
                                         status_code=500)
        return JSONResponse({"error": {"code": reason.code, "reasons": [reason.to_dict()]}},
                            status_code=500)


__all__ = ["register_template_package"]
