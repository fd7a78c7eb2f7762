"""The governance console in a real browser: an analyst finds why a purpose cannot be used."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.web import browser_sign_in

pytestmark = pytest.mark.browser


def test_analyst_opens_a_purpose_and_sees_why_it_is_not_usable(page: Page, server: str) -> None:
    browser_sign_in(page, "analyst")
    expect(page).to_have_url(f"{server}/")
    page.get_by_role("link", name="利用目的", exact=True).click()
    expect(page).to_have_url(f"{server}/purposes")
    expect(page.locator("h1")).to_contain_text("利用目的の一覧")
    row = page.locator('tr.purpose[data-key="all_children_scoring"]')
    expect(row.locator('[data-usable="no"]')).to_contain_text("利用できない")

    row.get_by_role("link", name="全児童のリスクスコア算出（検討中）").click()
    expect(page).to_have_url(f"{server}/purposes/all_children_scoring")
    panel = page.locator("#not-usable")
    expect(panel).to_contain_text("利用できない理由")
    missing = panel.locator('li[data-code="governance.missing_citation"]')
    expect(missing).to_contain_text("事務の根拠となる法令・条例の条項が1つも引用されていません")

    # The link next to the reason leads to the field where it is put right.
    missing.get_by_role("link", name="修正する").click()
    expect(page).to_have_url(f"{server}/purposes/all_children_scoring/edit#field-citations")
    expect(page.locator("#field-citations")).to_be_visible()
