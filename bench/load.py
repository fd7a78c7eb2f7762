"""Load benchmark: mixed staff and public traffic against the served app on loopback.

    .venv/bin/python bench/load.py [--connections 32] [--duration 60] [--repeat 3]
                                   [--backend sqlite|postgres|both] [--tiny]

The app runs as `kodomo serve` runs it (one uvicorn process, face "all") in a subprocess on a
fresh, migrated database with the demo city loaded; this process drives it with --connections
concurrent keep-alive connections (asyncio + httpx), each sending the next request as soon as
the last one answered, for --duration seconds after a short warm-up. The mix, by weight:

    public   GET /register (page) 3, GET /register.json 2, GET /healthz 1
    console  GET / (privacy officer's home) 2, GET /consent/persons/{id} (audited view) 2,
             POST /consent/persons/{id}/unsuitable (a write, CSRF form) 2
    API      POST /api/consent/persons/search (support worker's audited intake search) 3,
             GET /api/registry/files (data holder) 3,
             GET /api/audit/events as an analyst (refused 403, the refusal recorded) 2

An error is a transport failure, a timeout (--timeout) or a status other than the one the
request should get. Targets: 0 errors, p99 <= 500 ms, no request over 2 s. Exit status 1 when a
target is missed. --tiny is a smoke run (2 connections, 2 s, for tests/test_benches.py).
The load average (/proc/loadavg) is printed before and after each run: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sandbox import TMP as _TMP  # noqa: E402, F401  (first: sets the environment)

# isort: split

import httpx  # noqa: E402
from alembic import command  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from bench.audit import backend_info, drop_database, machine, new_database  # noqa: E402
from consent.models import Person  # noqa: E402
from core import demo as core_demo  # noqa: E402
from core.cli import alembic_config  # noqa: E402
from core.db import make_engine, unit_of_work  # noqa: E402
from core.settings import get_settings  # noqa: E402
from core.startup import prepare  # noqa: E402
from main import DEMO_LOADERS  # noqa: E402

P99_TARGET_MS = 500.0
MAX_TARGET_MS = 2000.0


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)  # seconds, every answered request
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    load_before: str = ""
    load_after: str = ""

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def requests(self) -> int:
        return len(self.latencies)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KODOMO_DATABASE_URL": url}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "main:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"the server stopped at start (exit {server.returncode})")
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not answer within 60 s")


@dataclass(frozen=True)
class Staff:
    console_cookie: str  # the privacy officer's session and CSRF cookies
    csrf: str
    support: dict[str, str]
    holder: dict[str, str]
    analyst: dict[str, str]
    person_id: str
    search: dict[str, str]  # the person's full name and birth date, as counter staff type them


def sign_in(base: str, person_id: str) -> Staff:
    password = core_demo.demo_password()

    def bearer(login: str) -> dict[str, str]:
        answer = httpx.post(f"{base}/api/auth/token", json={"login": login, "password": password})
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    with httpx.Client(base_url=base) as browser:
        page = browser.get("/login").text
        csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        done = browser.post("/login", data={"csrf_token": csrf, "login": "privacy",
                                            "password": password})
        assert done.status_code == 303, done.text
        # CSRF tokens are tied to the session: the signed-in pages carry the one to post with.
        home = browser.get("/").text
        csrf = home.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    person = httpx.get(f"{base}/api/consent/persons/{person_id}", headers=bearer("privacy"))
    person.raise_for_status()
    search = {"name": person.json()["name"], "birth_date": person.json()["birth_date"]}
    return Staff(cookie, csrf, bearer("support"), bearer("holder"), bearer("analyst"), person_id,
                 search)


Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def the_mix(staff: Staff) -> list[tuple[str, Request, int, int]]:
    """(name, request, expected status, weight)."""
    console = {"Cookie": staff.console_cookie}
    person = f"/consent/persons/{staff.person_id}"
    mark = {"csrf_token": staff.csrf, "reason": "bench", "purpose_id": ""}
    return [
        ("GET /register", lambda c: c.get("/register"), 200, 3),
        ("GET /register.json", lambda c: c.get("/register.json"), 200, 2),
        ("GET /healthz", lambda c: c.get("/healthz"), 200, 1),
        ("console GET /", lambda c: c.get("/", headers=console), 200, 2),
        ("console GET person", lambda c: c.get(person, headers=console), 200, 2),
        ("console POST mark", lambda c: c.post(f"{person}/unsuitable", data=mark,
                                               headers=console), 303, 2),
        ("API person search", lambda c: c.post("/api/consent/persons/search",
                                               json=staff.search, headers=staff.support), 200, 3),
        ("API file list", lambda c: c.get("/api/registry/files", headers=staff.holder), 200, 3),
        ("API refused", lambda c: c.get("/api/audit/events", headers=staff.analyst), 403, 2),
    ]


async def drive(base: str, staff: Staff, connections: int, duration: float, warmup: float,
                timeout: float) -> Run:
    mix = the_mix(staff)
    choices = [entry for entry in mix for _ in range(entry[3])]
    run = Run()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout,
                                 follow_redirects=False) as client:
        start = time.monotonic()
        measure_from = start + warmup
        stop = measure_from + duration

        async def one_connection(seed: int) -> None:
            rng = random.Random(seed)
            while (now := time.monotonic()) < stop:
                name, request, expected, _ = rng.choice(choices)
                began = time.perf_counter()
                status: int | str
                try:
                    answer = await request(client)
                    status = answer.status_code
                except httpx.HTTPError as error:
                    status = type(error).__name__
                took = time.perf_counter() - began
                if now < measure_from:
                    continue
                run.latencies.append(took)
                if status != expected:
                    run.error(f"{name}: {status}")

        run.load_before = loadavg()
        await asyncio.gather(*(one_connection(i) for i in range(connections)))
        run.elapsed = time.monotonic() - measure_from
        run.load_after = loadavg()
    return run


def prepare_database(backend: str) -> tuple[str, str, str]:
    """A fresh migrated database with the demo city: its URL, a person id, the backend line."""
    url = new_database(backend)
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    with unit_of_work(engine) as session:
        for loader in DEMO_LOADERS:
            loader(session)
    with unit_of_work(engine, writes=False) as session:
        person = session.exec(select(Person).order_by(col(Person.id))).first()
        assert person is not None
        person_id = str(person.id)
    info = backend_info(engine)
    engine.dispose()
    return url, person_id, info


def report(backend: str, runs: list[Run], args: argparse.Namespace) -> bool:
    settings = get_settings()
    print(f"\n== {backend}: {args.connections} connections, {args.duration:g} s each "
          f"(+{args.warmup:g} s warm-up), {len(runs)} run(s); pool {settings.db_pool_size}"
          f"+{settings.db_pool_overflow}, pool timeout {settings.db_pool_timeout_seconds:g} s")
    for i, run in enumerate(runs, 1):
        errors = sum(run.errors.values())
        print(f"run {i}: {run.requests} requests, {run.requests / run.elapsed:.0f} req/s, "
              f"p50 {run.quantile(0.5):.0f} ms, p95 {run.quantile(0.95):.0f} ms, "
              f"p99 {run.quantile(0.99):.0f} ms, max {run.quantile(1.0):.0f} ms, "
              f"errors {errors}; loadavg {run.load_before} -> {run.load_after}")
        for what, count in sorted(run.errors.items()):
            print(f"    error {what} x{count}")

    def summary(values: list[float], unit: str) -> str:
        return (f"median {statistics.median(values):.0f} {unit} "
                f"(spread {min(values):.0f}-{max(values):.0f})")

    p99 = [r.quantile(0.99) for r in runs]
    worst = [r.quantile(1.0) for r in runs]
    rate = [r.requests / r.elapsed for r in runs]
    errors = sum(sum(r.errors.values()) for r in runs)
    print(f"throughput {summary(rate, 'req/s')}; p50 "
          f"{summary([r.quantile(0.5) for r in runs], 'ms')}; p99 {summary(p99, 'ms')}; "
          f"max {summary(worst, 'ms')}; errors {errors}")
    ok = errors == 0 and max(p99) <= P99_TARGET_MS and max(worst) <= MAX_TARGET_MS
    print(f"target: 0 errors, p99 <= {P99_TARGET_MS:.0f} ms, max <= {MAX_TARGET_MS:.0f} ms "
          f"-> {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--tiny", action="store_true", help="2 connections for 2 s (smoke)")
    args = parser.parse_args()
    if args.tiny:
        args.connections, args.duration, args.warmup = 2, 2.0, 0.5
    prepare(get_settings())
    print(f"machine: {machine()}; loadavg {loadavg()}")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    ok = True
    for backend in backends:
        url, person_id, info = prepare_database(backend)
        port = free_port()
        server = start_server(url, port)
        try:
            base = f"http://127.0.0.1:{port}"
            staff = sign_in(base, person_id)
            print(f"{backend}: {info}; server: uvicorn, 1 process, on 127.0.0.1:{port}")
            runs = [asyncio.run(drive(base, staff, args.connections, args.duration,
                                      args.warmup, args.timeout))
                    for _ in range(args.repeat)]
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
            drop_database(backend, url)
        ok = report(backend, runs, args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
