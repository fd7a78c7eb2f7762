"""Composition root: the web app's routers, the `kodomo` CLI, demo loaders and home panels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import typer
from fastapi import APIRouter, FastAPI
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine
from sqlmodel import Session

import core.models  # noqa: F401  (registers the tables)
import governance.models  # noqa: F401  (registers the tables)
import pia.models  # noqa: F401  (registers the tables)
import registry.models  # noqa: F401  (registers the tables)
from core import demo as core_demo
from core import routes as core_routes
from core.cli import audit_cli, db_cli, keys_cli, sub_cli, users_cli
from core.db import get_engine, metadata, unit_of_work
from core.routes import TodoProvider
from core.settings import SettingsError, get_settings
from core.startup import prepare
from core.web import include_router, install_error_handlers, register_template_package
from governance import demo as governance_demo
from governance import routes as governance_routes
from governance.cli import governance_cli
from registry import demo as registry_demo
from registry import routes as registry_routes
from registry.cli import registry_cli

Face = Literal["staff", "public", "all"]

# Loaders in dependency order: each package adds its records to the same demo city.
DEMO_LOADERS: list[Callable[[Session], list[str]]] = [
    core_demo.load,
    registry_demo.load,
    governance_demo.load,
]
TODO_PROVIDERS: list[TodoProvider] = [registry_routes.todo_provider]


@dataclass(frozen=True)
class NavItem:
    href: str
    code: str
    roles: tuple[str, ...] = ()


NAV: list[NavItem] = [
    NavItem("/registry", "registry.nav", ("privacy_officer", "data_holder")),
    NavItem("/purposes", "governance.nav"),
]

# Every router with the face it belongs to; the public face (internet side) gets only "public".
ROUTERS: list[tuple[APIRouter, Literal["staff", "public"]]] = [
    (core_routes.public_router, "public"),
    (core_routes.api_router, "staff"),
    (core_routes.console_router, "staff"),
    (registry_routes.public_router, "public"),
    (registry_routes.api_router, "staff"),
    (registry_routes.console_router, "staff"),
    (governance_routes.api_router, "staff"),
    (governance_routes.console_router, "staff"),
]

register_template_package("registry")
register_template_package("governance")


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
    app.state.session_factory = session_factory or (lambda: Session(bound, expire_on_commit=False))
    app.state.todo_providers = list(TODO_PROVIDERS)
    app.state.nav = list(NAV)
    app.state.face = face
    for router, router_face in ROUTERS:
        if face == "all" or router_face == face:
            include_router(app, router, router_face)
    install_error_handlers(app)
    return app


cli = sub_cli("こどもデータ連携 法務管理サービス / children's data governance service")
cli.add_typer(db_cli, name="db")
cli.add_typer(users_cli, name="users")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(registry_cli, name="registry")
cli.add_typer(governance_cli, name="governance")
demo_cli = sub_cli("デモ自治体 / demo city")
cli.add_typer(demo_cli, name="demo")


@cli.callback()
def _startup(ctx: typer.Context) -> None:
    # `keys init` makes the keyring, so it cannot require one.
    try:
        prepare(get_settings(), need_keyring=ctx.invoked_subcommand != "keys")
    except SettingsError as error:
        typer.echo(f"設定エラー / setting error: {error.variable}: {error.problem}", err=True)
        raise typer.Exit(2) from error


@cli.command()
def serve(
    face: Face = typer.Option("all", help="staff (LGWAN side), public (internet side) or all"),
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Serve the web app."""
    import uvicorn

    uvicorn.run(create_app(face), host=host, port=port, proxy_headers=True)


@demo_cli.command("load")
def demo_load() -> None:
    """Create the fictional city with one staff account per role (idempotent)."""
    with unit_of_work() as session:
        for loader in DEMO_LOADERS:
            for line in loader(session):
                typer.echo(line)


if __name__ == "__main__":
    cli()
