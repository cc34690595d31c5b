"""A patient turns on two-step verification on their account page with the
QR code's secret, keeps the recovery codes, signs out, and signs in again
with a code from the authenticator."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
from playwright.async_api import Browser, expect

from tests.browser.conftest import Site, assert_accessible, console_problems, new_page
from tests.browser.scenes import (
    PATIENT_EMAIL,
    PATIENT_PASSWORD,
    patient_signs_in,
    sign_in,
    signed_up_patient,
)
from tests.conftest import Mailbox


async def test_a_patient_turns_it_on_and_signs_in_with_a_code(
    browser: Browser, site: Site, mailbox: Mailbox
) -> None:
    await signed_up_patient(site, mailbox)
    page = await new_page(browser)
    await patient_signs_in(page, site)
    await expect(page.locator("#profile-name")).to_have_text("Grace Hopper")
    await expect(page.locator("#profile-email")).to_have_text(PATIENT_EMAIL)
    await expect(page.get_by_text("This device")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_role("button", name="Turn on two-step verification").click()
    qr_code = page.get_by_role("img", name="QR code for your authenticator app")
    await expect(qr_code).to_be_visible()
    # Drawn: the page's policy let the data: image through.
    assert await qr_code.evaluate("image => image.complete && image.naturalWidth > 0")
    await assert_accessible(page)
    secret = re.sub(r"\s", "", await page.locator("#two-step-secret").inner_text())

    await page.get_by_label("Code from the app").fill("12345")
    await page.get_by_role("button", name="Turn on two-step verification").click()
    await expect(page.get_by_label("Code from the app")).to_have_attribute("aria-invalid", "true")
    await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on two-step verification").click()

    await expect(page.get_by_role("heading", name="Two-step verification is on")).to_be_visible()
    await expect(page.get_by_role("list", name="Recovery codes").locator("li")).to_have_count(10)
    await assert_accessible(page)
    await page.get_by_role("button", name="Done").click()
    await expect(page.locator("#two-step-on")).to_be_visible()
    await expect(page.get_by_role("button", name="Turn off two-step verification")).to_be_visible()

    await page.get_by_role("button", name="Sign out").first.click()
    await expect(page).to_have_url(site.page_url("sign-in"))
    await sign_in(page, site, PATIENT_EMAIL, PATIENT_PASSWORD)
    await expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    # The next step's code: the step the enrolment used is never taken twice.
    code = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))
    await page.get_by_label("Verification code").fill(code)
    await page.get_by_role("button", name="Continue").click()
    await expect(page).to_have_url(site.page_url("account"))
    await expect(page.locator("#two-step-on")).to_be_visible()
    assert console_problems(page) == []


async def test_the_account_page_changes_the_password_and_signs_out_other_devices(
    browser: Browser, site: Site, mailbox: Mailbox
) -> None:
    await signed_up_patient(site, mailbox)
    elsewhere = await new_page(browser)
    await patient_signs_in(elsewhere, site)
    page = await new_page(browser, width=360)
    await patient_signs_in(page, site)
    sessions = page.locator("#sessions li")
    await expect(sessions).to_have_count(2)
    await assert_accessible(page)

    await page.get_by_label("Current password").fill("not-my-password-at-all")
    await page.get_by_label("New password", exact=True).fill("amber-orchard-sailing-7731")
    await page.get_by_label("Type the new password again").fill("amber-orchard-sailing-7731")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")

    await page.get_by_role("button", name="Sign out everywhere else").click()
    await expect(sessions).to_have_count(1)
    await expect(page.get_by_role("button", name="Sign out everywhere else")).to_be_hidden()
    await elsewhere.reload()
    await expect(elsewhere).to_have_url(site.page_url("sign-in"))
    assert console_problems(page) == []
