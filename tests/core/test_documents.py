"""PDF documents: Japanese in the shipped IPAex fonts, templates from any package, no network."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from jinja2 import UndefinedError
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, PdfObject

from core import documents
from core.documents import (
    FONTS_DIR,
    DocumentError,
    font_url,
    register_template_package,
    render_html,
    render_pdf,
)

DOCUMENT = """{% extends "print/base.html" %}
{% block title %}{{ title }}{% endblock %}
{% block content %}
<h1>{{ title }}</h1>
<p class="meta">{{ date }}</p>
<table>
  <thead><tr><th>項目</th><th>内容</th></tr></thead>
  <tbody>
  {% for key, value in rows %}<tr><td>{{ key }}</td><td>{{ value }}</td></tr>{% endfor %}
  </tbody>
</table>
<p>{{ note }}</p>
{% endblock %}
"""

RESOURCE = """{% extends "print/base.html" %}
{% block content %}<p>画像</p><img src="{{ src }}" alt="">{% endblock %}
"""

PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway package with its own templates/, registered beside core."""
    name = f"kodomo_doc_test_{secrets.token_hex(4)}"
    root = tmp_path / name
    (root / "templates" / "test").mkdir(parents=True)
    (root / "__init__.py").write_text("", encoding="utf-8")
    (root / "templates" / "test" / "doc.html").write_text(DOCUMENT, encoding="utf-8")
    (root / "templates" / "test" / "resource.html").write_text(RESOURCE, encoding="utf-8")
    (root / "templates" / "test" / "secret.txt").write_text("x", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(documents, "_packages", list(documents._packages))
    register_template_package(name)
    yield name


def context() -> dict[str, object]:
    return {
        "title": "個人情報ファイル簿",
        "date": "令和6年4月1日",
        "rows": [
            ("個人情報ファイルの名称", "こどもデータ連携"),
            ("利用目的", "支援が必要なこどもの早期発見"),
        ],
        "note": "<script>alert(1)</script>",
    }


def dictionary(obj: object) -> DictionaryObject:
    resolved = obj.get_object() if isinstance(obj, PdfObject) else obj
    assert isinstance(resolved, DictionaryObject)
    return resolved


def font_names(reader: PdfReader) -> set[str]:
    names: set[str] = set()
    for page in reader.pages:
        fonts = dictionary(dictionary(page["/Resources"])["/Font"])
        for ref in fonts.values():
            font = dictionary(ref)
            names.add(str(font["/BaseFont"]))
            for descendant in font.get("/DescendantFonts", []):
                descriptor = dictionary(dictionary(descendant)["/FontDescriptor"])
                # Embedded, not merely named: the reader needs no font of its own.
                assert "/FontFile2" in descriptor or "/FontFile3" in descriptor
    return names


def test_japanese_pdf_with_the_shipped_fonts(package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[str] = []
    fetch = documents._LocalOnlyFetcher.fetch

    def spy(self: documents._LocalOnlyFetcher, url: str, headers: object = None) -> object:
        fetched.append(url)
        return fetch(self, url, headers)

    monkeypatch.setattr(documents._LocalOnlyFetcher, "fetch", spy)
    pdf = render_pdf("test/doc.html", context(), package=package)
    # The fonts come from the repository, not from whatever the machine has installed.
    assert sorted(fetched) == [font_url("ipaexg.ttf"), font_url("ipaexm.ttf")]
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (
        "個人情報ファイル簿",
        "令和6年4月1日",
        "こどもデータ連携",
        "支援が必要なこどもの早期発見",
        "<script>alert(1)</script>",  # escaped in HTML, so shown as text
        "1 / 1",
    ):
        assert expected in text
    names = font_names(reader)
    assert any(name.endswith("+IPAexGothic") for name in names), names
    assert any(name.endswith("+IPAexMincho") for name in names), names
    assert reader.metadata is not None and reader.metadata.title == "個人情報ファイル簿"


def test_page_numbers_count_all_pages(package: str) -> None:
    ctx = context()
    ctx["rows"] = [(f"記録項目{i}", "こどもデータ連携") for i in range(120)]
    reader = PdfReader(io.BytesIO(render_pdf("test/doc.html", ctx, package=package)))
    total = len(reader.pages)
    assert total > 1
    assert f"{total} / {total}" in reader.pages[-1].extract_text()
    assert f"1 / {total}" in reader.pages[0].extract_text()


def test_html_is_autoescaped_and_strict(package: str) -> None:
    html = render_html("test/doc.html", context(), package=package)
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert font_url("ipaexg.ttf") in html  # the stylesheet is inlined with resolved font URLs
    ctx = context()
    del ctx["date"]
    with pytest.raises(UndefinedError):
        render_html("test/doc.html", ctx, package=package)


def test_a_package_can_override_a_core_template(package: str, tmp_path: Path) -> None:
    override = tmp_path / package / "templates" / "print" / "base.html"
    override.parent.mkdir()
    override.write_text("OVERRIDDEN {% block content %}{% endblock %}", encoding="utf-8")
    documents._environment.cache_clear()
    assert render_html("test/doc.html", context(), package=package).startswith("OVERRIDDEN")


@pytest.mark.parametrize(
    "src",
    [
        "http://example.invalid/logo.png",
        "https://example.invalid/logo.png",
        "ftp://example.invalid/logo.png",
        "file:///etc/hostname",
        "file://otherhost/etc/hostname",
        "../../../../../../etc/hostname",
    ],
)
def test_nothing_outside_the_packages_is_fetched(package: str, src: str) -> None:
    with pytest.raises(DocumentError, match="refused to load"):
        render_pdf("test/resource.html", {"src": src}, package=package)


def test_data_urls_and_package_files_are_allowed(package: str) -> None:
    for src in (PIXEL, "test/secret.txt"):
        pdf = render_pdf("test/resource.html", {"src": src}, package=package)
        assert "画像" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def test_fonts_and_licence_ship_in_the_repository() -> None:
    for name in ("ipaexg.ttf", "ipaexm.ttf"):
        path = FONTS_DIR / name
        assert path.stat().st_size > 1_000_000
        assert font_url(name) == path.resolve().as_uri()
    licence = (FONTS_DIR / "IPA_Font_License_Agreement_v1.0.txt").read_text(encoding="utf-8")
    assert "IPAフォントライセンスv1.0" in licence and "IPA Font License Agreement v1.0" in licence
    with pytest.raises(DocumentError):
        font_url("../keys.py")


def test_unknown_package_is_refused() -> None:
    with pytest.raises(DocumentError, match="not an importable package"):
        register_template_package("kodomo_no_such_package")
