"""Issue 12, item 6 (and the size limit of item 4): security headers on every response, CSRF
tied to the session, Origin checked on unsafe methods, the request size limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from core import demo as core_demo
from core.settings import get_settings
from tests.web import app_client, console_sign_in, csrf_from, sign_in

HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options",
           "referrer-policy")


@pytest.mark.parametrize("path", ["/login", "/healthz", "/api/me", "/no-such-page",
                                  "/api/openapi.json", "/"])
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    reply = client.get(path, follow_redirects=False)
    for name in HEADERS:
        assert name in reply.headers, (path, name)
    assert "script-src 'self'" in reply.headers["content-security-policy"]
    assert "'unsafe-inline'" not in reply.headers["content-security-policy"].split(
        "script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in reply.headers


def test_hsts_only_over_tls(connection: Connection) -> None:
    with app_client(connection, base_url="https://testserver") as tls:
        assert tls.get("/login").headers["strict-transport-security"].startswith("max-age=")


def test_no_inline_script_in_any_page(client: TestClient) -> None:
    sign_in(client, "privacy")
    for path in ("/", "/registry", "/purposes", "/consent", "/pia", "/gate", "/jobs"):
        page = client.get(path).text.lower()
        assert "<script" not in page and " onclick=" not in page and "javascript:" not in page


def test_csrf_token_of_another_session_is_refused(connection: Connection) -> None:
    """An attacker's own valid token and cookie, planted in the victim's browser, fail."""
    with app_client(connection) as attacker, app_client(connection) as victim:
        attacker_token = sign_in(attacker, "analyst")
        attacker_cookie = attacker.cookies.get("kodomo_csrf")
        sign_in(victim, "privacy")
        victim.cookies.set("kodomo_csrf", attacker_cookie)
        reply = victim.post("/logout", data={"csrf_token": attacker_token},
                            follow_redirects=False)
        assert reply.status_code == 403 and "auth.csrf_failed" in reply.text
        # The victim's own token, from its own page, works.
        victim.cookies.delete("kodomo_csrf")
        own = csrf_from(victim.get("/").text)
        assert victim.post("/logout", data={"csrf_token": own},
                           follow_redirects=False).status_code == 303


def test_the_sign_in_forms_token_does_not_outlive_sign_in(client: TestClient) -> None:
    before = csrf_from(client.get("/login").text)
    sign_in(client, "privacy")
    reply = client.post("/logout", data={"csrf_token": before}, follow_redirects=False)
    assert reply.status_code == 403


def test_cross_origin_posts_are_refused(client: TestClient) -> None:
    token = sign_in(client, "privacy")
    for headers in ({"Origin": "https://evil.example"},
                    {"Referer": "https://evil.example/page"},
                    {"Origin": "null"}):
        reply = client.post("/logout", data={"csrf_token": token}, headers=headers,
                            follow_redirects=False)
        assert reply.status_code == 403, headers
        assert "auth.origin_refused" in reply.text
    page = client.get("/login")
    login = client.post("/login", data={"csrf_token": csrf_from(page.text), "login": "privacy",
                                        "password": "x"},
                        headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert login.status_code == 403
    same = client.post("/logout", data={"csrf_token": token},
                       headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert same.status_code == 303


def test_sign_in_still_works_from_the_same_origin(client: TestClient) -> None:
    page = client.get("/login")
    reply = client.post("/login", data={"csrf_token": csrf_from(page.text), "login": "privacy",
                                        "password": core_demo.demo_password()},
                        headers={"Origin": "http://testserver",
                                 "Referer": "http://testserver/login"},
                        follow_redirects=False)
    assert reply.status_code == 303
    # Without Origin and Referer (not a browser) the CSRF token alone decides.
    assert console_sign_in(client, "privacy").status_code == 303


def test_a_body_over_the_limit_is_refused_before_parsing(client: TestClient) -> None:
    limit = get_settings().max_request_bytes
    big = b'{"login": "' + b"a" * (limit + 10) + b'", "password": "x"}'
    reply = client.post("/api/auth/token", content=big,
                        headers={"Content-Type": "application/json"})
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "core.request_too_large"
    assert "content-security-policy" in reply.headers


def test_a_streamed_body_over_the_limit_is_refused(client: TestClient) -> None:
    limit = get_settings().max_request_bytes

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536

    reply = client.post("/api/auth/token", content=chunks(),
                        headers={"Content-Type": "application/json"})
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "core.request_too_large"
