"""Using the app as its users do: the app on a test's transaction, API tokens, the console's
sign-in form and its CSRF token, Set-Cookie headers, and signing in with a real browser.

A plain module (neither a test module nor a conftest) that tests and fixtures import.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection
from starlette.routing import BaseRoute

from core import demo as core_demo
from main import Face, create_app
from tests.databases import session_on

if TYPE_CHECKING:
    from playwright.sync_api import Page

_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')

# ---------------------------------------------------------------- the app


@contextmanager
def app_client(
    connection: Connection, face: Face = "all", base_url: str = "http://testserver"
) -> Iterator[TestClient]:
    """One face of the app, started, whose every request works in the test's transaction."""
    app = create_app(face, session_factory=lambda: session_on(connection))
    with TestClient(app, base_url=base_url) as test_client:
        yield test_client


def mounted_routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route an app answers, through included routers (FastAPI may keep them nested)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from mounted_routes(nested.routes)
        else:
            yield route


# ---------------------------------------------------------------- the API


def api_sign_in(client: TestClient, login: str, password: str) -> httpx.Response:
    """Ask the API for a token; the reply as it comes, whatever it is."""
    return client.post("/api/auth/token", json={"login": login, "password": password})


def api_token(client: TestClient, login: str, password: str | None = None) -> str:
    """A staff API token for `login` (the demo password unless told); insists on getting one."""
    response = api_sign_in(client, login, password or core_demo.demo_password())
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- the console


def csrf_from(page: str) -> str:
    """The CSRF token of the (first) form on a page."""
    found = _CSRF_INPUT.search(page)
    assert found is not None, "no csrf_token field on the page"
    return found.group(1)


def _post_sign_in_form(
    client: TestClient, login: str, password: str | None, next: str | None
) -> tuple[str, httpx.Response]:
    page = client.get("/login")
    assert page.status_code == 200, page.text
    token = csrf_from(page.text)
    data = {
        "csrf_token": token,
        "login": login,
        "password": password if password is not None else core_demo.demo_password(),
    }
    if next is not None:
        data["next"] = next
    return token, client.post("/login", data=data, follow_redirects=False)


def console_sign_in(
    client: TestClient, login: str, password: str | None = None, next: str | None = None
) -> httpx.Response:
    """Sign in through the form as a browser would: read the page's CSRF token, post it back.
    The reply as it comes (303 on success), for tests of the sign-in itself."""
    return _post_sign_in_form(client, login, password, next)[1]


def sign_in(client: TestClient, login: str, next: str | None = None) -> str:
    """Sign in through the form with the demo password, insisting that it works (303).

    Returns this browser's CSRF token for the new session (read from the home page), which its
    later forms carry too: tokens are tied to the session, so the sign-in form's own token (minted
    before there was a session) no longer passes once signed in."""
    _token, response = _post_sign_in_form(client, login, None, next)
    assert response.status_code == 303, response.text
    home = client.get("/")
    assert home.status_code == 200, home.text
    return csrf_from(home.text)


def set_cookie_header(response: httpx.Response, name: str) -> str:
    """The one Set-Cookie header of the reply that sets cookie `name`."""
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def cookie_attributes(header: str) -> dict[str, str]:
    """The attributes of one Set-Cookie header, names lower-cased (the value pair left out)."""
    attributes: dict[str, str] = {}
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        attributes[name.lower()] = value
    return attributes


# ---------------------------------------------------------------- a real browser


def browser_sign_in(page: Page, login: str, password: str | None = None) -> None:
    """Fill in and send the sign-in form in Chromium (the demo password unless told)."""
    page.goto("/login")
    page.fill("#login", login)
    page.fill("#password", password if password is not None else core_demo.demo_password())
    page.get_by_role("button", name="サインイン").click()
