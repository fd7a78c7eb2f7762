"""A privacy officer fills in the threshold and one risk of the draft PIA and saves them."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.web import browser_sign_in

pytestmark = pytest.mark.browser


def test_threshold_and_one_risk_are_saved(page: Page, server: str) -> None:
    browser_sign_in(page, "privacy")
    page.goto("/pia")
    page.get_by_role("link", name="ヤングケアラーの早期把握").first.click()
    expect(page.locator("h1")).to_contain_text("PIA")

    page.fill("#persons", "4120")
    page.fill("#handlers", "12")
    page.check("#t_outsourcing")
    page.get_by_role("button", name="しきい値判断を保存").click()
    expect(page.get_by_role("status")).to_contain_text("下書きを保存しました")
    expect(page.locator("#level")).to_have_attribute("data-level", "full")
    expect(page.locator("#persons")).to_have_value("4120")
    expect(page.locator("#t_outsourcing")).to_be_checked()

    form = page.locator('form[data-risk="risk-new"]')
    form.locator("select[name=stage]").select_option("provision")
    form.locator("input[name=title]").fill("提供の際に誤った相手に送付されるリスク")
    form.locator("select[name=likelihood]").select_option("2")
    form.locator("select[name=impact]").select_option("3")
    form.locator("select[name=self_rating]").select_option("sufficient")
    form.locator("select[name=residual]").select_option("low")
    form.locator("input[name=safeguards]").first.check()
    form.locator("textarea[name=measures]").fill("送付先を二人で確認する")
    form.get_by_role("button", name="リスクを追加").click()

    expect(page.get_by_role("status")).to_contain_text("下書きを保存しました")
    row = page.locator("table.register tr", has_text="提供の際に誤った相手に送付されるリスク")
    expect(row).to_contain_text("2×3 = 6")
    expect(row).to_contain_text("送付先を二人で確認する")
    expect(page.locator('.heatmap rect[data-likelihood="2"][data-impact="3"]')).to_have_attribute(
        "data-count", "1")
    expect(page.locator('#progress li[data-section="threshold"]')).to_have_attribute(
        "data-done", "1")
