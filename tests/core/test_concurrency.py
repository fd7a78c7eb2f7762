"""The request path under concurrency, on a real server (uvicorn in a thread) and a database
that commits for real: nothing waits on the event loop, reads never wait for a writer, and
parallel posts, reads and refusals all complete without a 5xx.

Deterministic and bounded: every wait has a generous timeout that only keeps a broken run from
hanging; nothing is timed or asserted about time.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import audit
from core import demo as core_demo
from core.db import make_engine, unit_of_work
from main import DEMO_LOADERS, create_app
from tests.web import csrf_from

TIMEOUT = 60.0  # seconds; only so that a regression fails instead of hanging the suite


@pytest.fixture
def server(fresh_engine: Engine) -> Iterator[str]:
    """The whole app served by uvicorn on a loopback port, on a demo city of its own."""
    with unit_of_work(fresh_engine) as session:
        for loader in DEMO_LOADERS:
            loader(session)
    app = create_app("all", engine=fresh_engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        started = threading.Event()
        for _ in range(600):  # up to 60 s
            if server.started:
                started.set()
                break
            if not thread.is_alive():
                break
            threading.Event().wait(0.1)
        assert started.is_set(), "the server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()


def _client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=TIMEOUT, follow_redirects=False)


def _console(base: str, login: str) -> tuple[httpx.Client, str]:
    """A browser signed in to the console, and its CSRF token."""
    client = _client(base)
    token = csrf_from(client.get("/login").text)
    signed_in = client.post("/login", data={"csrf_token": token, "login": login,
                                            "password": core_demo.demo_password()})
    assert signed_in.status_code == 303, signed_in.text
    # CSRF tokens are tied to the session: the signed-in pages carry the one to post with.
    return client, csrf_from(client.get("/").text)


def _bearer(base: str, login: str) -> dict[str, str]:
    with _client(base) as client:
        answer = client.post("/api/auth/token",
                             json={"login": login, "password": core_demo.demo_password()})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_reads_answer_while_a_write_transaction_is_open(server: str, fresh_engine: Engine
                                                        ) -> None:
    console, _ = _console(server, "privacy")
    holder = _bearer(server, "holder")
    # A write that holds SQLite's write lock (BEGIN IMMEDIATE) and PostgreSQL's audit chain
    # lock (the event is chained at once in a bare session) until the test lets it go.
    with Session(fresh_engine) as writer:
        audit.append(writer, "test.holding_the_write_lock")
        try:
            with _client(server) as anonymous:
                assert anonymous.get("/healthz").status_code == 200
                assert anonymous.get("/register").status_code == 200
            assert console.get("/").status_code == 200
            files = console.get("/api/registry/files", headers=holder)
            assert files.status_code == 200, files.text
        finally:
            writer.rollback()
    console.close()


def test_parallel_posts_reads_and_refusals_complete_without_a_5xx(server: str,
                                                                  fresh_engine: Engine) -> None:
    auditor, auditor_csrf = _console(server, "auditor")
    cookies = dict(auditor.cookies)
    support = _bearer(server, "support")
    holder = _bearer(server, "holder")
    analyst = _bearer(server, "analyst")

    def post_console() -> int:  # the console's "verify the audit log" form: a write
        with _client(server) as client:
            client.cookies.update(cookies)
            return client.post("/audit/verify", data={"csrf_token": auditor_csrf}).status_code

    def search_people() -> int:  # identified data: a read whose access is audited
        with _client(server) as client:
            return client.post("/api/consent/persons/search", json={"name": "わかば",
                                                                    "birth_date": "2015-04-01"},
                               headers=support).status_code

    def list_files() -> int:
        with _client(server) as client:
            return client.get("/api/registry/files", headers=holder).status_code

    def refused() -> int:  # the audit log is for auditors: refused, and the refusal recorded
        with _client(server) as client:
            return client.get("/api/audit/events", headers=analyst).status_code

    def health() -> int:
        with _client(server) as client:
            return client.get("/healthz").status_code

    work: list[tuple[str, Callable[[], int], set[int]]] = (
        [("console post", post_console, {200})] * 8
        + [("person search", search_people, {200})] * 12
        + [("file list", list_files, {200})] * 12
        + [("refused", refused, {403})] * 8
        + [("health", health, {200})] * 4
    )
    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        futures = [(name, pool.submit(call), expected) for name, call, expected in work]
        results = [(name, future.result(timeout=TIMEOUT * 4), expected)
                   for name, future, expected in futures]
    unexpected = [(name, status) for name, status, expected in results if status not in expected]
    assert not unexpected, unexpected
    auditor.close()

    # Every post, search and refusal left its event, and the chain did not fork.
    with Session(fresh_engine) as session:
        report = audit.verify(session.connection(), audit.public_keys())
        assert report.ok, report.problem
        actions = [e.action for e in audit.page(session, limit=200).events]
    assert actions.count("core.audit_verified") == 8
    assert actions.count("consent.person_searched") == 12
    assert actions.count("core.request_refused") == 8


def test_an_exhausted_pool_answers_503_at_once(fresh_engine: Engine) -> None:
    url = fresh_engine.url.render_as_string(hide_password=False)
    small = make_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    try:
        with small.connect() as held, TestClient(create_app("all", engine=small)) as client:
            held.exec_driver_sql("SELECT 1")  # the pool's only connection, taken
            api = client.post("/api/auth/token", json={"login": "x", "password": "y"})
            page = client.get("/register")
    finally:
        small.dispose()
    assert api.status_code == 503 and api.headers["Retry-After"]
    assert api.json()["error"]["code"] == "core.busy"
    assert api.json()["error"]["reasons"][0]["message_ja"].startswith("ただいま混み合って")
    assert page.status_code == 503 and "ただいま混み合っています" in page.text
