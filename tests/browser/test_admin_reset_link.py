"""A patient opens the reset link an ADMIN made, sets a password and signs
in with it; the spent link then says so plainly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.async_api import Browser, expect

from tests.browser.conftest import (
    Site,
    api,
    assert_accessible,
    bearer_token,
    console_problems,
    new_page,
)
from tests.browser.scenes import NEW_PASSWORD, PATIENT_EMAIL, patient_signs_in, signed_up_patient
from tests.conftest import Mailbox

GENERATE = """
mutation ($id: ID!, $expiresAt: DateTime!) {
  generateResetLink(patientId: $id, expiresAt: $expiresAt) {
    ... on ResetLinkGenerated { url }
  }
}
"""


async def test_a_patient_sets_a_password_from_the_admins_link(
    browser: Browser, site: Site, mailbox: Mailbox
) -> None:
    patient_id = await signed_up_patient(site, mailbox)
    admin = await bearer_token(site, site.admin_email)
    expires = datetime.now(UTC) + timedelta(days=2)
    made = await api(site, GENERATE, admin, id=patient_id, expiresAt=expires.isoformat())
    url = made["generateResetLink"]["url"]
    assert url.startswith(site.page_url("reset-password?token="))

    page = await new_page(browser, width=360)
    await page.goto(url)
    await expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    await expect(page.locator("#reset-email")).to_have_text(PATIENT_EMAIL)
    await assert_accessible(page)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Type the new password again").fill(NEW_PASSWORD + "x")
    await page.get_by_role("button", name="Set new password").click()
    await expect(page.get_by_label("Type the new password again")).to_have_attribute(
        "aria-invalid", "true"
    )
    await page.get_by_label("Type the new password again").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Set new password").click()
    await expect(page.get_by_role("heading", name="Your password is set")).to_be_visible()
    await page.get_by_role("link", name="Continue to sign in").click()
    await patient_signs_in(page, site, NEW_PASSWORD)

    # The same link again: spent, and the page says so before anything is typed.
    spent = await new_page(browser)
    await spent.goto(url)
    await expect(
        spent.get_by_role("heading", name="This link can no longer be used")
    ).to_be_visible()
    await expect(spent.get_by_label("New password", exact=True)).to_be_hidden()
    await assert_accessible(spent)
    mangled = await new_page(browser, width=360)
    await mangled.goto(site.page_url("reset-password?token=not-one-of-ours"))
    await expect(mangled.locator("#unusable-reason")).to_contain_text("not complete")
    await assert_accessible(mangled)
    assert console_problems(page) == console_problems(spent) == console_problems(mangled) == []
