"""Documents: Jinja2 templates from every package's templates/ rendered to HTML and to PDF."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

FONTS_DIR = Path(__file__).resolve().parent / "fonts"
GOTHIC_FONT = "ipaexg.ttf"
MINCHO_FONT = "ipaexm.ttf"

_lock = threading.Lock()
_packages: list[str] = []


class DocumentError(RuntimeError):
    """A document could not be rendered (a template error, or a resource it may not load)."""


def register_template_package(name: str) -> None:
    """Let templates be loaded from package `name`'s templates/ directory (idempotent)."""
    _package_dir(name)  # fail now, at import, rather than at the first render
    with _lock:
        if name not in _packages:
            _packages.append(name)


def registered_template_packages() -> tuple[str, ...]:
    with _lock:
        return tuple(_packages)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise DocumentError(f"{name!r} is not an importable package")
    return Path(next(iter(locations))).resolve()


def font_url(name: str) -> str:
    """The file:// URL of a font shipped in core/fonts, for @font-face rules."""
    path = (FONTS_DIR / name).resolve()
    if path.parent != FONTS_DIR or not path.is_file():
        raise DocumentError(f"no font {name!r} in {FONTS_DIR}")
    return path.as_uri()


def _search_order(package: str) -> tuple[str, ...]:
    register_template_package(package)
    # The requesting package first, so its own templates win; then every other package,
    # so a document can extend core's print/base.html.
    return (package, *(name for name in registered_template_packages() if name != package))


@lru_cache(maxsize=64)
def _environment(order: tuple[str, ...]) -> Environment:
    env = Environment(
        loader=ChoiceLoader([PackageLoader(name, "templates") for name in order]),
        autoescape=select_autoescape(["html", "htm", "xml"]),
        # A blank where an official document expected a value is worse than an error.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["font_url"] = font_url
    return env


def template_environment(package: str) -> Environment:
    """The Jinja2 environment that renders `package`'s documents."""
    return _environment(_search_order(package))


def render_html(template_name: str, context: Mapping[str, Any], *, package: str) -> str:
    """Render a template, looked up in `package` first and then in every registered package."""
    return template_environment(package).get_template(template_name).render(**context)


class _LocalOnlyFetcher(URLFetcher):
    """Loads data: URLs and files under the registered packages; refuses everything else."""

    def __init__(self, roots: tuple[Path, ...]) -> None:
        # fail_on_errors makes a refusal stop the rendering instead of a silent omission.
        super().__init__(
            allowed_protocols={"file", "data"}, allow_redirects=False, fail_on_errors=True
        )
        self._roots = roots

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        scheme = url.split(":", 1)[0].lower()
        if scheme == "file":
            parts = urlsplit(url)
            path = Path(url2pathname(parts.path)).resolve()
            if parts.netloc not in ("", "localhost") or not any(
                path.is_relative_to(root) for root in self._roots
            ):
                raise DocumentError(f"refused to load {url}: outside the package directories")
        elif scheme != "data":
            raise DocumentError(f"refused to load {url}: documents load no network resources")
        return super().fetch(url, headers)


def render_pdf(template_name: str, context: Mapping[str, Any], *, package: str) -> bytes:
    """Render a template to PDF bytes; only local package files and data: URLs are loaded."""
    order = _search_order(package)
    html = render_html(template_name, context, package=package)
    roots = tuple(_package_dir(name) for name in order)
    # Relative URLs in a template resolve against its package's templates/ directory.
    base_url = (roots[0] / "templates").as_uri() + "/"
    try:
        document = HTML(string=html, base_url=base_url, url_fetcher=_LocalOnlyFetcher(roots))
        pdf = document.write_pdf(font_config=FontConfiguration())
    except FatalURLFetchingError as exc:
        cause = exc.__cause__ or exc
        raise DocumentError(f"{template_name}: {cause}") from cause
    if not isinstance(pdf, bytes):
        raise DocumentError(f"{template_name}: the renderer returned no PDF")
    return pdf


register_template_package("core")
