"""The two faces (which routes each serves) and the error pages: a Japanese page in the site's
layout for a browser, JSON for the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

import main
from core.web import route_access
from tests.databases import session_on
from tests.web import mounted_routes, sign_in

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}

# (method, path, answered on the staff face, answered on the public face): None = not served
# there (404), otherwise the status a visitor who is not signed in gets.
FACES = [
    ("GET", "/login", 200, None),
    ("POST", "/login", 403, None),  # served, but this post carries no CSRF token
    ("GET", "/healthz", 200, 200),
    ("GET", "/.well-known/jwks.json", 200, 200),
    ("GET", "/", 303, None),
    ("GET", "/policies", 303, None),
    ("POST", "/api/auth/token", 422, None),
    ("GET", "/api/me", 401, None),
    ("GET", "/api/docs", 200, None),
    ("GET", "/register", None, 200),
    ("GET", "/register.json", None, 200),
    ("GET", "/pia-summaries", None, 200),
]


@pytest.mark.parametrize(("method", "path", "staff", "public"), FACES,
                         ids=[f"{m} {p}" for m, p, _, _ in FACES])
def test_each_face_serves_its_own_routes(staff_client: TestClient, public_client: TestClient,
                                         method: str, path: str, staff: int | None,
                                         public: int | None) -> None:
    for face, client, expected in (("staff", staff_client, staff),
                                   ("public", public_client, public)):
        answer = client.request(method, path, headers=JSON, follow_redirects=False)
        assert answer.status_code == (expected or 404), (face, answer.text)


def _paths(client: TestClient) -> set[tuple[str, str]]:
    app = client.app
    assert isinstance(app, FastAPI)
    return {(method, route.path) for route in mounted_routes(app.routes)
            if isinstance(route, APIRoute) for method in route.methods or ()}


def test_the_faces_split_the_routes_and_share_only_health_and_jwks(
        client: TestClient, staff_client: TestClient, public_client: TestClient) -> None:
    staff, public, everything = _paths(staff_client), _paths(public_client), _paths(client)
    assert staff | public == everything
    assert staff & public == {("GET", "/healthz"), ("GET", "/.well-known/jwks.json")}
    assert not {path for _, path in public} & {"/login", "/logout"}
    app = public_client.app
    assert isinstance(app, FastAPI)
    for route in mounted_routes(app.routes):
        if isinstance(route, APIRoute):
            assert all(rule.kind != "staff" for rule in route_access(route)), route.path


def test_the_staff_face_signs_in_where_the_console_sends_a_visitor(
        staff_client: TestClient) -> None:
    sent = staff_client.get("/policies", follow_redirects=False)
    assert sent.status_code == 303
    form = staff_client.get(sent.headers["location"])
    assert form.status_code == 200 and "サインイン" in form.text
    sign_in(staff_client, "privacy", next="/policies")
    page = staff_client.get("/policies")
    assert page.status_code == 200 and "方針（ポリシー）の設定" in page.text


def test_the_public_face_sends_no_visitor_to_a_staff_sign_in(public_client: TestClient) -> None:
    for path in ("/", "/login", "/registry", "/policies"):
        answer = public_client.get(path, headers=HTML, follow_redirects=False)
        assert answer.status_code == 404
        assert "/login" not in answer.headers.get("location", "")
        assert 'action="/login"' not in answer.text


# ---------------------------------------------------------------- error pages


def _is_page(answer: object, status: int, title: str) -> str:
    text = answer.text  # type: ignore[attr-defined]
    assert answer.status_code == status  # type: ignore[attr-defined]
    assert answer.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
    assert '<html lang="ja">' in text
    assert "こどもデータ連携 法務管理" in text  # the site's layout
    assert f"<h1>{title}" in text
    assert f'data-status="{status}"' in text
    return str(text)


def test_a_page_that_is_not_found_is_a_japanese_page(client: TestClient) -> None:
    text = _is_page(client.get("/no-such-page", headers=HTML), 404, "ページが見つかりません")
    assert "お探しのページは見つかりませんでした" in text
    assert '<a href="/">ホーム</a>' in text
    assert "Not Found" not in text and '"detail"' not in text


def test_the_public_face_not_found_page_offers_no_staff_home(public_client: TestClient) -> None:
    text = _is_page(public_client.get("/no-such-page", headers=HTML), 404,
                    "ページが見つかりません")
    assert '<a href="/">' not in text


@pytest.mark.parametrize("headers", [JSON, HTML], ids=["json", "html-accept"])
def test_the_api_keeps_json_errors(client: TestClient, headers: dict[str, str]) -> None:
    missing = client.get("/api/no-such-thing", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "core.not_found"
    assert missing.json()["error"]["reasons"][0]["message_ja"].startswith("お探しのページ")
    wrong_method = client.get("/api/auth/token", headers=headers)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "core.method_not_allowed"
    assert "POST" in wrong_method.headers["allow"]


def test_a_client_asking_for_json_gets_json_outside_the_api(client: TestClient) -> None:
    answer = client.get("/no-such-page", headers=JSON)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "core.not_found"


def test_a_method_a_page_does_not_take_is_a_page(client: TestClient) -> None:
    answer = client.get("/logout", headers=HTML)
    _is_page(answer, 405, "この操作はできません")
    assert "POST" in answer.headers["allow"]


def test_a_forbidden_page_is_a_japanese_page(client: TestClient) -> None:
    sign_in(client, "support")
    text = _is_page(client.get("/policies", headers=HTML), 403,
                    "この操作を行う権限がありません")
    assert "総括管理主体" in text  # the role it takes, by name


def test_a_bad_value_in_a_page_address_is_a_page_naming_it(client: TestClient) -> None:
    sign_in(client, "privacy")
    text = _is_page(client.get("/pia/not-a-number", headers=HTML), 422,
                    "入力内容に誤りがあります")
    assert 'data-code="core.invalid_request"' in text and "pia_id" in text
    api = client.get("/api/pia/not-a-number", headers={**HTML})
    assert api.status_code in (401, 422)
    assert api.headers["content-type"].startswith("application/json")


@pytest.fixture
def failing_app(connection: Connection) -> Iterator[TestClient]:
    """The app with one page and one API route that fail inside (a fault, not a refusal)."""
    app = main.create_app("all", session_factory=lambda: session_on(connection))

    def fail() -> None:
        raise RuntimeError("secret detail /var/data/x")

    app.add_api_route("/broken", fail)
    app.add_api_route("/api/broken", fail)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_fault_is_a_japanese_page_without_its_detail(failing_app: TestClient) -> None:
    text = _is_page(failing_app.get("/broken", headers=HTML), 500, "エラーが発生しました")
    assert "システムでエラーが発生しました" in text
    assert "secret detail" not in text and "RuntimeError" not in text
    api = failing_app.get("/api/broken", headers=HTML)
    assert api.status_code == 500
    assert api.json()["error"]["code"] == "core.server_error"
    assert "secret detail" not in api.text
