"""The standing authorisation matrix (issue 12, item 7): every route of the app, asked by
anonymous and by each staff role of the demo city, answers the outcome class that
tests/data/access_matrix.yaml expects. A route with no entry fails the test, so a new route
is never reachable by accident.

Outcome classes:
- ``allowed``: anything but 401/403 (2xx, 3xx other than to the sign-in page, 404, 409, 422);
- ``login``: 401, or a redirect to the sign-in page;
- ``forbidden``: 403.
No request may answer 5xx. Requests are safe: placeholder ids that name nothing, empty
bodies (JSON ``{}`` for the API, the CSRF token alone for console forms); the routes that end
the session run last.

Set ``KODOMO_WRITE_ACCESS_MATRIX=FILE`` to write the observed table to FILE (for review,
never to copy blindly: every change to the table is a change of who may do what).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection
from starlette.routing import Route

from main import create_app
from tests.web import api_token, app_client, bearer, csrf_from, sign_in

TABLE = Path(__file__).parent / "data" / "access_matrix.yaml"
IDENTITIES = ("anonymous", "privacy", "privacy2", "holder", "edu_holder", "analyst", "support",
              "auditor", "admin")
# Routes that end or change the session or the account run after the others.
LAST = re.compile(r"(logout|sign-?out|password)")
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def _flat(candidates: Any) -> Iterator[Any]:
    """The app's routes, with the routers it includes opened (FastAPI keeps an included router
    as one entry whose `effective_route_contexts` are its routes, with their full paths)."""
    for route in candidates:
        if isinstance(route, APIRoute | Route):
            yield route
        elif hasattr(route, "effective_route_contexts"):
            yield from route.effective_route_contexts()
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")


def routes() -> list[tuple[str, str, Any]]:
    """(method, path, route) of every route of the app, face "all" (the API and the console)."""
    found = []
    for route in _flat(create_app("all").routes):
        for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, route.path, route))
    return sorted(found, key=lambda r: (bool(LAST.search(r[1])), r[1], r[0]))


def concrete(route: Any) -> str:
    """The path with placeholders that name nothing (a number for an int, text otherwise)."""
    convertors = getattr(route, "param_convertors", {})

    def fill(match: re.Match[str]) -> str:
        convertor = type(convertors.get(match[1])).__name__
        return "999999" if convertor == "IntegerConvertor" else "no-such-id"

    return _PARAM.sub(fill, route.path)


def outcome(response: httpx.Response) -> str:
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:300]}"
    if status == 401:
        return "login"
    if status in (302, 303, 307) and "/login" in response.headers.get("location", ""):
        return "login"
    if status == 403:
        return "forbidden"
    return "allowed"


def expected(table: dict[str, Any], key: str, identity: str) -> str:
    entry = table[key]
    if isinstance(entry, str):
        assert entry in ("public", "sign-in", "sign-out"), key
        return {"public": "allowed", "sign-out": "login"}.get(entry, "allowed")
    if identity == "anonymous":
        return str(entry.get("anonymous", "login"))
    return "allowed" if identity in entry["allowed"] else "forbidden"


@pytest.fixture
def clients(connection: Connection) -> Iterator[dict[str, tuple[TestClient, dict[str, str],
                                                                 str]]]:
    """One client per identity: (client, API headers, console CSRF token)."""
    opened: dict[str, tuple[TestClient, dict[str, str], str]] = {}
    managers = []
    try:
        for identity in IDENTITIES:
            manager = app_client(connection)
            client = manager.__enter__()
            managers.append(manager)
            if identity == "anonymous":
                csrf = csrf_from(client.get("/login").text)
                opened[identity] = (client, {}, csrf)
            else:
                csrf = sign_in(client, identity)
                opened[identity] = (client, bearer(api_token(client, identity)), csrf)
        yield opened
    finally:
        for manager in reversed(managers):
            manager.__exit__(None, None, None)


def ask(client: TestClient, headers: dict[str, str], csrf: str, method: str,
        path: str) -> httpx.Response:
    if method == "GET":
        return client.get(path, headers=headers, follow_redirects=False)
    if path.startswith("/api/"):
        return client.request(method, path, headers=headers, json={}, follow_redirects=False)
    return client.request(method, path, data={"csrf_token": csrf}, follow_redirects=False)


def test_every_route_has_an_entry() -> None:
    table = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    keys = {f"{method} {path}" for method, path, _ in routes()}
    assert sorted(keys - set(table)) == [], "routes with no entry in access_matrix.yaml"
    assert sorted(set(table) - keys) == [], "entries of access_matrix.yaml with no route"


def test_the_authorisation_matrix(
        clients: dict[str, tuple[TestClient, dict[str, str], str]]) -> None:
    table = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    observed: dict[str, dict[str, str]] = {}
    wrong = []
    for method, path, route in routes():
        key = f"{method} {path}"
        for identity in IDENTITIES:
            client, headers, csrf = clients[identity]
            got = outcome(ask(client, headers, csrf, method, concrete(route)))
            observed.setdefault(key, {})[identity] = got
            if key in table and table[key] == "sign-in" and got in ("allowed", "login"):
                continue  # a failed sign-in answers 401 or the form; never 403
            if key in table and got != expected(table, key, identity):
                wrong.append(f"{key} as {identity}: {got}, expected "
                             f"{expected(table, key, identity)}")
    if os.environ.get("KODOMO_WRITE_ACCESS_MATRIX"):
        Path(os.environ["KODOMO_WRITE_ACCESS_MATRIX"]).write_text(yaml.safe_dump(
            _as_table(observed), allow_unicode=True, sort_keys=False, width=120),
            encoding="utf-8")
    assert wrong == []


def _as_table(observed: dict[str, dict[str, str]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key, by in observed.items():
        if all(v == "allowed" for v in by.values()):
            table[key] = "public"
            continue
        entry: dict[str, Any] = {}
        if by["anonymous"] != "login":
            entry["anonymous"] = by["anonymous"]
        entry["allowed"] = [i for i in IDENTITIES[1:] if by[i] == "allowed"]
        odd = {i: v for i, v in by.items() if i != "anonymous" and v == "login"}
        if odd:
            entry["odd"] = odd
        table[key] = entry
    return table
