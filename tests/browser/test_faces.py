"""The two faces and the error pages in a real browser against `kodomo serve`."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from core import policies
from tests.web import browser_sign_in

pytestmark = pytest.mark.browser


def _page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, locale="ja-JP")
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def staff_page(browser: Browser, staff_server: str) -> Iterator[Page]:
    yield from _page(browser, staff_server)


@pytest.fixture
def public_page(browser: Browser, public_server: str) -> Iterator[Page]:
    yield from _page(browser, public_server)


def test_a_page_that_is_not_found_is_a_japanese_page(page: Page) -> None:
    answer = page.goto("/no-such-page")
    assert answer is not None and answer.status == 404
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page).to_have_title(re.compile("ページが見つかりません"))
    expect(page.locator("h1")).to_contain_text("ページが見つかりません")
    expect(page.get_by_role("alert")).to_contain_text("お探しのページは見つかりませんでした")
    page.get_by_role("link", name="ホーム").click()
    expect(page.locator("h1")).to_contain_text("サインイン")


def test_the_staff_face_signs_in_where_the_console_sends(staff_page: Page,
                                                          staff_server: str) -> None:
    staff_page.goto("/")
    expect(staff_page).to_have_url(f"{staff_server}/login?next=%2F")
    expect(staff_page.locator("h1")).to_contain_text("サインイン")
    browser_sign_in(staff_page, "privacy")
    expect(staff_page).to_have_url(f"{staff_server}/")
    staff_page.get_by_role("link", name="方針（ポリシー）の設定").click()
    expect(staff_page).to_have_url(f"{staff_server}/policies")
    expect(staff_page.locator("h1")).to_contain_text("方針（ポリシー）の設定")


def test_the_public_face_has_no_staff_sign_in(public_page: Page) -> None:
    answer = public_page.goto("/login")
    assert answer is not None and answer.status == 404
    expect(public_page.locator("h1")).to_contain_text("ページが見つかりません")
    expect(public_page.locator("#password")).to_have_count(0)
    assert public_page.request.get("/healthz").json() == {"status": "ok"}


def test_privacy_officers_read_every_policy(page: Page) -> None:
    browser_sign_in(page, "privacy")
    page.goto("/policies")
    for model in policies.declared():
        section = page.locator(f'section[data-section="{model.section()}"]')
        expect(section.locator("h2")).to_contain_text(model.title_ja)
        expect(section.locator("tbody tr")).to_have_count(len(model.model_fields))
    expect(page.locator('tr[data-key="governance.max_one_off_days"] .value')).to_have_text("180")
    expect(page.locator("form")).to_have_count(1)  # sign-out only: the page changes nothing


def test_other_staff_get_a_japanese_forbidden_page(page: Page) -> None:
    browser_sign_in(page, "support")
    answer = page.goto("/policies")
    assert answer is not None and answer.status == 403
    expect(page.locator("h1")).to_contain_text("この操作を行う権限がありません")
