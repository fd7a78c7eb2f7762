"""The staff console in a real browser against the real server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from core import messages
from tests.web import browser_sign_in

pytestmark = pytest.mark.browser


def test_sign_in_page_is_in_japanese(page: Page) -> None:
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page).to_have_title(re.compile("サインイン"))
    expect(page.locator("h1")).to_contain_text("サインイン")
    expect(page.locator("label[for=login]")).to_contain_text("ログインID")
    expect(page.locator("label[for=password]")).to_contain_text("パスワード")


def test_wrong_password_shows_the_japanese_error(page: Page, server: str) -> None:
    browser_sign_in(page, "privacy2", "not-the-password-Zq81")
    expect(page.get_by_role("alert")).to_contain_text(
        "ログインIDまたはパスワードが正しくありません。")
    expect(page).to_have_url(f"{server}/login")
    assert not [c for c in page.context.cookies() if c["name"] == "kodomo_session"]


def test_privacy_officer_signs_in_and_out(page: Page, server: str) -> None:
    browser_sign_in(page, "privacy")
    expect(page).to_have_url(f"{server}/")
    expect(page.locator("h1")).to_contain_text("ホーム")
    role = page.locator('tr.role[data-role="privacy_officer"]').first
    expect(role).to_be_visible()
    expect(role).to_contain_text(messages.text("role.privacy_officer", "ja"))
    expect(page.locator("header .who")).to_contain_text("個人情報 保護子")

    session = [c for c in page.context.cookies() if c["name"] == "kodomo_session"]
    assert len(session) == 1
    assert session[0]["httpOnly"] is True
    assert session[0]["sameSite"] == "Strict"
    assert session[0]["secure"] is False  # plain http on 127.0.0.1
    # HttpOnly: the page's scripts cannot read the token.
    assert "kodomo_session" not in page.evaluate("document.cookie")

    page.get_by_role("button", name="サインアウト").click()
    expect(page).to_have_url(f"{server}/login")
    expect(page.locator("h1")).to_contain_text("サインイン")
    page.goto("/")
    expect(page).to_have_url(f"{server}/login?next=%2F")


def test_auditor_verifies_the_audit_log(page: Page, server: str) -> None:
    browser_sign_in(page, "auditor")
    expect(page).to_have_url(f"{server}/")
    page.goto("/audit")
    expect(page.locator("h1")).to_contain_text("監査ログ")
    page.get_by_role("button", name="監査ログを検証する").click()
    status = page.get_by_role("status")
    expect(status).to_contain_text("監査ログを検証しました")
    expect(status).to_contain_text("問題はありません")
    expect(page.locator(".error")).to_have_count(0)
