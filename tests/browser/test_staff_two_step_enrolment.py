"""A practice requires two-step verification of staff: a clinician without it
signs in, is sent to set it up, and then reaches the page they asked for;
their own account page shows it on."""

from __future__ import annotations

import re

import pyotp
from playwright.async_api import Browser, expect

from tests.browser.conftest import (
    CLINICIAN_EMAIL,
    Site,
    api,
    assert_accessible,
    bearer_token,
    console_problems,
    new_page,
)
from tests.browser.scenes import sign_in

BEGIN = "mutation { beginMfaEnrollment { secret } }"
CONFIRM = "mutation ($code: String!) { confirmMfaEnrollment(code: $code) { __typename } }"
REQUIRE = """
mutation { setStaffMfaRequired(required: true) {
  ... on PracticeSecurityUpdated { practice { staffMfaRequired } }
} }
"""


async def test_staff_without_it_enrol_before_anything_else(browser: Browser, site: Site) -> None:
    admin = await bearer_token(site, site.admin_email)
    admin_secret = (await api(site, BEGIN, admin))["beginMfaEnrollment"]["secret"]
    await api(site, CONFIRM, admin, code=pyotp.TOTP(admin_secret).now())
    required = await api(site, REQUIRE, admin)
    assert required["setStaffMfaRequired"]["practice"]["staffMfaRequired"] is True

    page = await new_page(browser, width=360)
    await page.goto(site.page_url("staff/patients"))
    await expect(page).to_have_url(re.compile(r"/north/staff/sign-in\?next="))
    await sign_in(page, site, CLINICIAN_EMAIL, site.password, staff=True)
    await expect(page).to_have_url(
        re.compile(r"/north/staff/two-step\?next=%2Fnorth%2Fstaff%2Fpatients")
    )
    await expect(page.get_by_role("heading", name="Turn on two-step verification")).to_be_visible()
    await expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    await assert_accessible(page)
    secret = re.sub(r"\s", "", await page.locator("#two-step-secret").inner_text())
    await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on two-step verification").click()
    await expect(page.get_by_role("list", name="Recovery codes").locator("li")).to_have_count(10)
    await assert_accessible(page)
    await page.get_by_role("button", name="Continue").click()

    await expect(page).to_have_url(site.page_url("staff/patients"))
    await expect(page.get_by_role("status")).to_have_text("No patients yet.")

    await page.goto(site.page_url("staff/account"))
    await expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    await expect(page.locator("#two-step-on")).to_be_visible()
    await expect(page.locator("#two-step-required")).to_be_visible()
    await expect(page.locator("#profile")).to_be_hidden()
    await expect(page.get_by_role("link", name="All patients")).to_be_visible()
    await assert_accessible(page)
    assert console_problems(page) == []
