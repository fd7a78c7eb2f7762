"""Web plumbing: default-deny routing, the two faces, API errors, console cookie, CSRF, settings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

import main
from core import audit, messages
from core import demo as core_demo
from core.models import Role
from core.reasons import Reason
from core.schemas import ReasonPublic
from core.settings import KNOWN_DEFAULT_SECRETS, Settings, SettingsError, check_settings
from core.web import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    api_staff,
    console_staff,
    include_router,
    public,
    route_access,
    templates,
    undeclared_routes,
)
from tests.databases import session_on
from tests.factories import KeyPair, UseEnv
from tests.web import (
    api_token,
    bearer,
    console_sign_in,
    cookie_attributes,
    csrf_from,
    mounted_routes,
    set_cookie_header,
)

GOOD_SECRET = "x" * 48

# ---------------------------------------------------------------- default deny


@pytest.mark.parametrize(
    ("router", "face"), main.ROUTERS,
    ids=[f"{face}-{i}" for i, (_, face) in enumerate(main.ROUTERS)],
)
def test_every_mounted_route_declares_exactly_one_rule(router: APIRouter, face: str) -> None:
    assert undeclared_routes(router, face) == []  # type: ignore[arg-type]
    for route in router.routes:
        assert isinstance(route, APIRoute)
        rules = route_access(route)
        assert len(rules) == 1, route.path
        if face != "staff":
            assert rules[0].kind != "staff", route.path


def test_every_route_of_the_whole_app_declares_exactly_one_rule(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    routes = list(mounted_routes(app.routes))
    api_routes = [r for r in routes if isinstance(r, APIRoute)]
    assert len(api_routes) == sum(len(router.routes) for router, _ in main.ROUTERS)
    for route in api_routes:
        assert len(route_access(route)) == 1, route.path
    # Anything else is FastAPI's own documentation, on the staff face only.
    others = {getattr(r, "path", repr(r)) for r in routes if not isinstance(r, APIRoute)}
    assert others <= {"/api/docs", "/api/openapi.json", "/docs/oauth2-redirect"}


def _bad_routers() -> Iterator[tuple[str, APIRouter, str, str]]:
    undeclared = APIRouter()

    @undeclared.get("/declared", dependencies=[Depends(public())])
    def declared() -> dict[str, str]:
        return {}

    @undeclared.get("/undeclared")
    def forgotten() -> dict[str, str]:
        return {}

    yield "undeclared", undeclared, "staff", "/undeclared"

    twice = APIRouter()

    @twice.get("/twice", dependencies=[Depends(public()), Depends(api_staff())])
    def two_rules() -> dict[str, str]:
        return {}

    yield "two-rules", twice, "staff", "/twice"

    staff_on_public = APIRouter()

    @staff_on_public.get("/secret", dependencies=[Depends(console_staff(Role.admin))])
    def secret() -> dict[str, str]:
        return {}

    yield "staff-on-public-face", staff_on_public, "public", "/secret"


@pytest.mark.parametrize(("name", "router", "face", "path"), list(_bad_routers()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_include_router_refuses_an_undeclared_route(
    name: str, router: APIRouter, face: Any, path: str
) -> None:
    app = FastAPI()
    with pytest.raises(RuntimeError, match=re.escape(path)):
        include_router(app, router, face)
    assert not [r for r in app.routes if getattr(r, "path", None) == path]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/me"), ("GET", "/"), ("GET", "/audit"), ("GET", "/api/audit/events"),
     ("POST", "/api/auth/token"), ("POST", "/logout"), ("POST", "/audit/verify"),
     ("GET", "/api/docs"), ("GET", "/api/openapi.json")],
)
def test_public_face_has_no_staff_route(public_client: TestClient, method: str, path: str) -> None:
    assert public_client.request(method, path, follow_redirects=False).status_code == 404


def test_public_face_serves_public_pages(public_client: TestClient) -> None:
    health = public_client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    app = public_client.app
    assert isinstance(app, FastAPI)
    for route in mounted_routes(app.routes):
        if isinstance(route, APIRoute):
            assert all(rule.kind != "staff" for rule in route_access(route)), route.path


# ---------------------------------------------------------------- API errors


def _staff_routes(channel: str) -> list[tuple[str, str]]:
    """(method, path) of every staff route of the given channel in main.ROUTERS."""
    found: list[tuple[str, str]] = []
    for router, _face in main.ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            rule = route_access(route)[0]
            if rule.kind != "staff" or rule.channel != channel:
                continue
            path = re.sub(r"\{[^}]+\}", "1", route.path)
            found.extend((method, path) for method in sorted(route.methods or ()))
    return found


@pytest.mark.parametrize(("method", "path"), _staff_routes("api"))
def test_staff_api_without_a_token_is_401_json(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["code"] == "auth.not_signed_in"
    assert error["reasons"][0]["message_ja"]
    wrong_scheme = client.request(method, path, headers={"Authorization": "Basic YTpi"})
    assert wrong_scheme.status_code == 401


@pytest.mark.parametrize(("method", "path"), _staff_routes("console"))
def test_console_page_without_a_session_redirects(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/login?next=")


def test_console_cookie_is_not_an_api_credential(client: TestClient) -> None:
    assert console_sign_in(client, "analyst").status_code == 303
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.not_signed_in"
    client.cookies.clear()


@pytest.mark.parametrize(
    ("login", "method", "path"),
    [("analyst", "GET", "/api/audit/events"), ("admin", "POST", "/api/audit/verify"),
     ("privacy", "GET", "/api/staff/analyst"), ("auditor", "POST", "/api/staff")],
)
def test_wrong_role_is_403(client: TestClient, login: str, method: str, path: str) -> None:
    response = client.request(method, path, headers=bearer(api_token(client, login)),
                              json={"login": "newbie", "display_name": "x",
                                    "password": "long-enough-password"})
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "auth.role_required"


def test_wrong_role_on_a_console_page_is_403(client: TestClient) -> None:
    assert console_sign_in(client, "analyst").status_code == 303
    response = client.get("/audit")
    assert response.status_code == 403
    assert 'data-code="auth.role_required"' in response.text
    assert messages.text("role.auditor") in response.text
    client.cookies.clear()


def test_validation_error_names_the_field(client: TestClient) -> None:
    response = client.post("/api/auth/token", json={"login": "privacy"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "core.invalid_request"
    assert [r["field"] for r in error["reasons"]] == ["password"]
    assert {r["code"] for r in error["reasons"]} == {"core.invalid_request"}
    assert "password" in error["reasons"][0]["message_ja"]

    token = api_token(client, "auditor")
    query = client.get("/api/audit/events?limit=0", headers=bearer(token))
    assert query.status_code == 422
    assert query.json()["error"]["code"] == "core.invalid_request"
    assert query.json()["error"]["reasons"][0]["field"] == "limit"


# ---------------------------------------------------------------- console session


def test_console_without_a_session_redirects_to_sign_in(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F"
    audit_page = client.get("/audit?action=core.signed_in", follow_redirects=False)
    assert audit_page.status_code == 303
    assert audit_page.headers["location"] == "/login?next=%2Faudit%3Faction%3Dcore.signed_in"


def test_console_with_a_bad_cookie_redirects_to_sign_in(client: TestClient) -> None:
    client.cookies.set(SESSION_COOKIE, "not-a-token")
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    client.cookies.clear()


def _assert_session_cookie(response: Any, secure: bool) -> None:
    header = set_cookie_header(response, SESSION_COOKIE)
    attributes = cookie_attributes(header)
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "strict"
    assert attributes["path"] == "/"
    assert ("secure" in attributes) is secure


def test_form_sign_in_sets_a_strict_httponly_cookie(client: TestClient) -> None:
    page = client.get("/login")
    csrf_header = set_cookie_header(page, CSRF_COOKIE)
    assert "secure" not in cookie_attributes(csrf_header)
    response = console_sign_in(client, "privacy")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    _assert_session_cookie(response, secure=False)
    home = client.get("/")
    assert home.status_code == 200
    assert 'data-role="privacy_officer"' in home.text
    client.cookies.clear()


def test_form_sign_in_over_tls_sets_a_secure_cookie(https_client: TestClient) -> None:
    page = https_client.get("/login")
    csrf_attributes = cookie_attributes(set_cookie_header(page, CSRF_COOKIE))
    assert "secure" in csrf_attributes and "httponly" in csrf_attributes
    response = console_sign_in(https_client, "privacy")
    assert response.status_code == 303
    _assert_session_cookie(response, secure=True)
    assert https_client.get("/").status_code == 200


def test_sign_in_form_without_csrf_is_refused(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"login": "privacy",
                                           "password": core_demo.demo_password()},
                           follow_redirects=False)
    assert response.status_code == 403
    assert 'data-code="auth.csrf_failed"' in response.text
    assert SESSION_COOKIE not in (response.headers.get("set-cookie") or "")
    assert client.get("/", follow_redirects=False).status_code == 303


def _logout_refused(client: TestClient, data: dict[str, str]) -> None:
    response = client.post("/logout", data=data, follow_redirects=False)
    assert response.status_code == 403, response.text
    assert 'data-code="auth.csrf_failed"' in response.text
    assert client.get("/", follow_redirects=False).status_code == 200


def test_form_post_without_or_with_a_wrong_csrf_token_does_nothing(
    client: TestClient, connection: Connection
) -> None:
    assert console_sign_in(client, "auditor").status_code == 303
    home = client.get("/")
    good = csrf_from(home.text)
    nonce, _, signature = good.partition(".")
    # A correctly signed token that is not this browser's cookie.
    other_page = TestClient(client.app).get("/login")
    others = csrf_from(other_page.text)
    assert others != good
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "abc.def"},
                 {"csrf_token": f"{nonce}.{'0' * len(signature)}"}, {"csrf_token": others}):
        _logout_refused(client, data)

    with session_on(connection) as session:
        before = len(audit.page(session, limit=500, action="core.audit_verified").events)
    response = client.post("/audit/verify", data={"csrf_token": "abc.def"})
    assert response.status_code == 403
    with session_on(connection) as session:
        after = len(audit.page(session, limit=500, action="core.audit_verified").events)
    assert after == before

    # With the right token it works, and the session is then gone.
    response = client.post("/logout", data={"csrf_token": good}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.clear()


def test_stolen_cookie_is_useless_after_sign_out(client: TestClient) -> None:
    assert console_sign_in(client, "privacy").status_code == 303
    stolen = client.cookies.get(SESSION_COOKIE)
    assert stolen
    good = csrf_from(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": good},
                       follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, stolen)
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.clear()


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "//evil.example/path", "https://evil.example", "http://evil.example/",
     "/\\evil.example", "\\\\evil.example", "/\t/evil.example", "/\n/evil.example",
     "javascript:alert(1)", "evil.example", " //evil.example"],
)
def test_next_cannot_leave_the_site(client: TestClient, target: str) -> None:
    page = client.get("/login", params={"next": target})
    shown = re.search(r'name="next" value="([^"]*)"', page.text)
    assert shown is not None
    assert shown.group(1) == "/"
    response = console_sign_in(client, "privacy", next=target)
    assert response.status_code == 303
    location = response.headers["location"]
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc, location
    assert location.startswith("/") and not location.startswith("//"), location
    assert "\\" not in location
    client.cookies.clear()


def test_next_keeps_a_same_site_path(client: TestClient) -> None:
    response = console_sign_in(client, "auditor", next="/audit?action=core.signed_in")
    assert response.status_code == 303
    assert response.headers["location"] == "/audit?action=core.signed_in"
    client.cookies.clear()


@pytest.mark.parametrize(
    ("login", "role"), [(login, role) for login, _n, _d, role, _o in core_demo.ACCOUNTS],
    ids=[a[0] for a in core_demo.ACCOUNTS],
)
def test_each_demo_account_sees_its_home_in_japanese(
    client: TestClient, login: str, role: Role
) -> None:
    response = console_sign_in(client, login)
    assert response.status_code == 303, response.text
    home = client.get(response.headers["location"])
    assert home.status_code == 200
    page = home.text
    assert '<html lang="ja">' in page
    assert "<h1>ホーム" in page
    assert f'data-role="{role.value}"' in page
    # One row per grant (the demo privacy officers hold grants for two organs).
    assert set(re.findall(r'class="role" data-role="([^"]+)"', page)) == {role.value}
    assert messages.text(f"role.{role.value}", "ja") in page
    name = next(a[1] for a in core_demo.ACCOUNTS if a[0] == login)
    assert messages.text("ui.signed_in_as", "ja", name=name) in page
    assert "サインアウト" in page
    assert ("監査ログ" in page) is (role == Role.auditor)
    client.cookies.clear()


# ---------------------------------------------------------------- settings


def production(**values: Any) -> Settings:
    """Settings outside demo mode, built from the arguments only (not the test's environment)."""
    base: dict[str, Any] = {"demo": False, "secret_key": None, "key_file": None,
                            "jwt_algorithm": "HS256", "jwt_private_key_file": None,
                            "jwt_public_key_file": None}
    base.update(values)
    return Settings(_env_file=None, **base)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    path.write_text("{}", encoding="utf-8")
    return path


def _refused(settings: Settings, variable: str) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        check_settings(settings)
    assert caught.value.variable == variable
    assert variable in str(caught.value)
    return caught.value


def test_a_complete_production_setting_passes(key_file: Path) -> None:
    check_settings(production(secret_key=GOOD_SECRET, key_file=key_file))


def test_missing_secret_is_refused(key_file: Path) -> None:
    _refused(production(key_file=key_file), "KODOMO_SECRET_KEY")


@pytest.mark.parametrize("secret", [*sorted(KNOWN_DEFAULT_SECRETS - {""}), "CHANGEME", "", " "])
def test_known_default_secret_is_refused(key_file: Path, secret: str) -> None:
    _refused(production(secret_key=secret, key_file=key_file), "KODOMO_SECRET_KEY")


def test_a_long_known_default_is_refused_as_a_default(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default list is checked on its own, not only caught by the length rule."""
    long_default = "change-me-change-me-change-me-change-me"
    monkeypatch.setattr("core.settings.KNOWN_DEFAULT_SECRETS",
                        KNOWN_DEFAULT_SECRETS | {long_default})
    error = _refused(production(secret_key=long_default, key_file=key_file),
                     "KODOMO_SECRET_KEY")
    assert "default" in error.problem


def test_short_secret_is_refused(key_file: Path) -> None:
    error = _refused(production(secret_key="s" * 31, key_file=key_file), "KODOMO_SECRET_KEY")
    assert "s" * 31 not in str(error)
    check_settings(production(secret_key="s" * 32, key_file=key_file))


def test_missing_key_file_is_refused(tmp_path: Path) -> None:
    _refused(production(secret_key=GOOD_SECRET), "KODOMO_KEY_FILE")
    _refused(production(secret_key=GOOD_SECRET, key_file=tmp_path / "absent.json"),
             "KODOMO_KEY_FILE")


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_asymmetric_algorithms_need_both_key_files(
    key_file: Path, rsa_keys: KeyPair, tmp_path: Path, algorithm: str
) -> None:
    common: dict[str, Any] = {"jwt_algorithm": algorithm, "secret_key": GOOD_SECRET,
                              "key_file": key_file}
    _refused(production(**common), "KODOMO_JWT_PRIVATE_KEY_FILE")
    _refused(production(**common, jwt_private_key_file=rsa_keys.private_file),
             "KODOMO_JWT_PUBLIC_KEY_FILE")
    _refused(production(**common, jwt_private_key_file=tmp_path / "absent.pem",
                        jwt_public_key_file=rsa_keys.public_file), "KODOMO_JWT_PRIVATE_KEY_FILE")
    _refused(production(**common, jwt_private_key_file=rsa_keys.private_file,
                        jwt_public_key_file=tmp_path / "absent.pem"),
             "KODOMO_JWT_PUBLIC_KEY_FILE")
    complete = {**common, "jwt_private_key_file": rsa_keys.private_file,
                "jwt_public_key_file": rsa_keys.public_file}
    check_settings(production(**complete))
    # The CSRF secret is still needed.
    _refused(production(**{**complete, "secret_key": None}), "KODOMO_SECRET_KEY")


def test_demo_mode_passes_without_secrets() -> None:
    check_settings(production(demo=True))


def test_the_app_refuses_to_start_with_a_default_secret(
    use_env: UseEnv, connection: Connection, key_file: Path
) -> None:
    use_env(KODOMO_DEMO="0", KODOMO_SECRET_KEY="changeme", KODOMO_KEY_FILE=str(key_file))
    with pytest.raises(SettingsError, match="KODOMO_SECRET_KEY"):
        main.create_app("all", session_factory=lambda: session_on(connection))


def test_the_public_reason_is_the_reason_as_a_dict() -> None:
    reason = Reason.of("core.invalid_request", where="body", detail="d", field="n",
                       refs={"file": "juki"})
    assert ReasonPublic.of(reason).model_dump(exclude_none=True) == reason.to_dict()


def test_the_reasons_partial_lists_each_reason_and_links_it_when_asked() -> None:
    template = templates().env.get_template("core/_reasons.html")
    reasons = [Reason("x.one", "一", "one", {}, "name"), Reason("x.two", "二", "two")]
    plain = template.render(reasons=reasons)
    assert 'role="alert" id="refusal"' in plain and "<a " not in plain
    assert '<li data-code="x.one" data-field="name">一<span class="en">one</span>' in plain
    assert '<li data-code="x.two">二<span class="en">two</span>' in plain
    linked = template.render(reasons=reasons, reason_views=[SimpleNamespace(href="/fix#name")])
    assert linked.count("<a ") == 1 and '<a href="/fix#name">修正する</a>' in linked
    assert template.render(reasons=[]).strip() == ""
