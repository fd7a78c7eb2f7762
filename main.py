"""Composition root: the web app's routers, the `kodomo` CLI, demo loaders and home panels."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import typer
from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine
from sqlmodel import Session

import consent.models  # noqa: F401  (registers the tables)
import core.models  # noqa: F401  (registers the tables)
import governance.models  # noqa: F401  (registers the tables)
import pia.models  # noqa: F401  (registers the tables)
import registry.models  # noqa: F401  (registers the tables)
from consent import demo as consent_demo
from consent import routes as consent_routes
from consent.cli import people_cli
from core import audit, messages
from core import demo as core_demo
from core import routes as core_routes
from core.cli import (
    audit_cli,
    db_cli,
    keys_cli,
    org_cli,
    policies_cli,
    setting_error,
    sub_cli,
    users_cli,
)
from core.db import get_engine, mark_session, metadata, unit_of_work
from core.db import open_session as db_session
from core.errors import install_database_error_handlers
from core.middleware import RequestSizeLimit, SecurityHeaders
from core.routes import TodoProvider
from core.settings import SettingsError, get_settings
from core.startup import prepare
from core.web import Mount, include_router, install_error_handlers, register_template_package
from governance import api as governance_api
from governance import demo as governance_demo
from governance import jobs as governance_jobs
from governance import pages as governance_pages
from governance import statistics as governance_statistics
from governance.cli import gate_cli, governance_cli, jobs_cli, run_worker
from governance.rules import JobKind
from pia import routes as pia_routes
from registry import demo as registry_demo
from registry import routes as registry_routes
from registry.cli import registry_cli

Face = Literal["staff", "public", "all"]


def load_consent_demo(session: Session) -> list[str]:
    """The demo's people and consents for the young-carers purpose's consent route."""
    from sqlmodel import col, select

    from consent.rules import organ_recipient
    from core.models import Organ
    from governance.models import Flow, Purpose, Route, RouteKind
    from registry.models import RegistryItem

    purpose = session.exec(select(Purpose).where(Purpose.key == "young_carers_outreach")).first()
    route = session.exec(select(Route).where(Route.key == "carers.consent",
                                             Route.kind == RouteKind.consent)).first()
    if purpose is None or purpose.id is None or route is None or route.to_organ_id is None:
        return ["本人・同意: 同意ルートがありません / no consent route to load for"]
    items = session.exec(select(RegistryItem).join(Flow, col(Flow.item_id) == RegistryItem.id)
                         .where(Flow.route_id == route.id)).all()
    organ = session.get(Organ, route.to_organ_id)
    return consent_demo.load_demo(
        session, purpose.id, route.to_organ_id,
        [(i.id or 0, i.name_ja) for i in items],
        (organ_recipient(route.to_organ_id), organ.name_ja if organ else ""))


# Loaders in dependency order: each package adds its records to the same demo city.
DEMO_LOADERS: list[Callable[[Session], list[str]]] = [
    core_demo.load,
    registry_demo.load,
    governance_demo.load,
    load_consent_demo,
]
TODO_PROVIDERS: list[TodoProvider] = [
    pia_routes.todo_provider,
    registry_routes.todo_provider,
    consent_routes.todo_provider,
]


@dataclass(frozen=True)
class NavItem:
    href: str
    code: str
    roles: tuple[str, ...] = ()


NAV: list[NavItem] = [
    NavItem("/registry", "registry.nav", ("privacy_officer", "data_holder")),
    NavItem("/purposes", "governance.nav"),
    NavItem("/gate", "gate.nav"),
    NavItem("/jobs", "jobs.nav"),
    NavItem("/consent", "consent.nav", ("privacy_officer", "support_worker")),
    NavItem("/pia", "pia.nav", ("privacy_officer", "auditor")),
    NavItem("/admin/organisation", "ui.organisation", ("admin",)),
]

# Every router with the face it is served on: the public face (internet side) gets "public" and
# "both", the staff face (LGWAN side) "staff" and "both"; no staff route is ever "public" or
# "both" (core.web.include_router refuses it).
ROUTERS: list[tuple[APIRouter, Mount]] = [
    (core_routes.shared_router, "both"),
    (core_routes.sign_in_router, "staff"),
    (core_routes.api_router, "staff"),
    (core_routes.console_router, "staff"),
    (registry_routes.public_router, "public"),
    (registry_routes.api_router, "staff"),
    (registry_routes.console_router, "staff"),
    (governance_api.api_router, "staff"),
    (consent_routes.shared_router, "both"),
    (consent_routes.api_router, "staff"),
    (consent_routes.console_router, "staff"),
    (governance_pages.console_router, "staff"),
    (governance_api.gate_api_router, "staff"),
    (governance_pages.gate_console_router, "staff"),
    (governance_api.pia_api_router, "staff"),
    (governance_pages.pia_console_router, "staff"),
    (pia_routes.public_router, "public"),
    (pia_routes.api_router, "staff"),
    (pia_routes.console_router, "staff"),
]

def wire_job_handlers() -> None:
    """Each job kind to its handler (linkage and scoring are wired with their packages)."""
    governance_jobs.register_handler(JobKind.statistics, governance_statistics.statistics_handler,
                                     governance_statistics.StatisticsParams)


wire_job_handlers()

register_template_package("registry")
register_template_package("governance")
register_template_package("consent")
register_template_package("pia")


def all_metadata() -> MetaData:
    """Every table of every package (alembic's target)."""
    return metadata


def create_app(
    face: Face = "all",
    *,
    engine: Engine | None = None,
    session_factory: Callable[[], Session] | None = None,
) -> FastAPI:
    """The web app; the public face never mounts a staff route."""
    settings = get_settings()
    prepare(settings)
    bound = engine or get_engine()
    app = FastAPI(
        title="Kodomo data governance",
        version="0.1.0",
        docs_url="/api/docs" if face != "public" else None,
        openapi_url="/api/openapi.json" if face != "public" else None,
        redoc_url=None,
    )
    if session_factory is None:
        def open_session(*, writes: bool) -> Session:
            return db_session(bound, writes=writes)
    else:
        given = session_factory

        def open_session(*, writes: bool) -> Session:
            session = given()
            mark_session(session, writes=writes)
            return session
    # Requests open read or write units of work (core.web.get_session); a bare factory gives
    # units of work that write.
    app.state.open_session = open_session
    app.state.session_factory = lambda: open_session(writes=True)
    core_demo.refuse_demo_database(settings, app.state.session_factory)
    app.state.todo_providers = list(TODO_PROVIDERS)
    app.state.nav = list(NAV)
    app.state.face = face
    for router, router_face in ROUTERS:
        if face == "all" or router_face in (face, "both"):
            include_router(app, router, router_face)
    install_error_handlers(app)
    install_database_error_handlers(app)
    # Outermost last: the size limit runs first, and every answer (413s too) gets the headers.
    app.add_middleware(RequestSizeLimit, limit=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)
    return app


cli = sub_cli("こどもデータ連携 法務管理サービス / children's data governance service")
cli.add_typer(db_cli, name="db")
cli.add_typer(users_cli, name="users")
cli.add_typer(org_cli, name="org")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(policies_cli, name="policies")
cli.add_typer(registry_cli, name="registry")
cli.add_typer(governance_cli, name="governance")
cli.add_typer(gate_cli, name="gate")
cli.add_typer(jobs_cli, name="jobs")
cli.add_typer(people_cli, name="people")
demo_cli = sub_cli("デモ自治体 / demo city")
cli.add_typer(demo_cli, name="demo")


@cli.callback()
def _startup(ctx: typer.Context) -> None:
    # `keys init` makes the keyring, so it cannot require one.
    try:
        prepare(get_settings(), need_keyring=ctx.invoked_subcommand != "keys")
    except SettingsError as error:
        raise setting_error(error) from error
    # A command that wrote audit events ends with a signed checkpoint of the head, so that
    # the witness covers everything it did.
    audit.reset_wrote()
    ctx.call_on_close(audit.checkpoint_after_command)


@cli.command()
def serve(
    face: Face = typer.Option("all", help="staff (LGWAN side), public (internet side) or all"),
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Serve the web app."""
    import uvicorn

    try:
        app = create_app(face)
    except SettingsError as error:
        raise setting_error(error) from error
    uvicorn.run(app, host=host, port=port, proxy_headers=True)


def _stop_worker(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@cli.command()
def worker(
    once: bool = typer.Option(False, help="run what is waiting, then stop"),
    poll: float = typer.Option(2.0, help="seconds between looks for new jobs"),
    worker_id: str | None = typer.Option(None, help="this worker's name (default host:pid)"),
) -> None:
    """Run waiting jobs one at a time: claims each with a lock that several machines share,
    keeps its heartbeat, recovers the jobs of workers that died; the gate checks at start."""
    try:
        core_demo.refuse_demo_database(get_settings(), lambda: Session(get_engine()))
    except SettingsError as error:
        raise setting_error(error) from error
    # A stop (systemd, docker) fails the running job at once, cleanly, instead of leaving it
    # for the dead-worker recovery.
    previous = signal.signal(signal.SIGTERM, _stop_worker)
    try:
        count = run_worker(poll_seconds=poll, once=once, worker_id=worker_id)
    finally:
        signal.signal(signal.SIGTERM, previous)
    typer.echo(f"{count} job(s) run")


@demo_cli.command("load")
def demo_load() -> None:
    """Create the fictional city with one staff account per role (idempotent; demo mode only)."""
    if not get_settings().demo:
        ja, en = messages.both("core.demo_mode_required")
        typer.echo(f"{ja}\n{en}", err=True)
        raise typer.Exit(2)
    with unit_of_work() as session:
        for loader in DEMO_LOADERS:
            for line in loader(session):
                typer.echo(line)


if __name__ == "__main__":
    cli()
