"""An ADMIN makes a password reset link on the Patient Portal tab (an expiry
picked, checked, the link shown once and copied), then revokes and restores
the patient's portal access with a confirmation."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from playwright.async_api import Browser, expect

from tests.browser.conftest import (
    CLINICIAN_EMAIL,
    Site,
    api,
    assert_accessible,
    console_problems,
    new_page,
)
from tests.browser.staff_admin import signed_up_patient, staff_signs_in
from tests.conftest import Mailbox

PATIENT_EMAIL = "grace@mail.example"
NEW_PASSWORD = "lighthouse-amber-quartz-5521"
SIGN_IN = """
mutation ($email: String!, $password: String!) {
  login(practice: "north", email: $email, password: $password) { __typename }
}
"""


def local_input(moment: datetime) -> str:
    """A datetime-local value; the browser runs in this machine's time zone."""
    return moment.strftime("%Y-%m-%dT%H:%M")


async def test_an_admin_generates_a_reset_link_that_is_shown_once_and_copied(
    browser: Browser, site: Site, mailbox: Mailbox
) -> None:
    patient_id = await signed_up_patient(site, mailbox, "Grace", "Hopper", PATIENT_EMAIL)
    page = await new_page(browser)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    await staff_signs_in(page, site, site.admin_email, f"staff/patients/{patient_id}")
    await page.get_by_role("tab", name="Patient Portal").click()
    await expect(page.locator("#portal-status")).to_have_text("Already signed up")
    tool = page.get_by_role("region", name="Password reset link")
    expires = tool.get_by_label("Link expires")
    await expect(expires).to_have_attribute("type", "datetime-local")
    await assert_accessible(page)

    # A time in the past, and one beyond 30 days, are refused at the field.
    await expires.fill(local_input(datetime.now() - timedelta(days=1)))
    await tool.get_by_role("button", name="Generate Link").click()
    await expect(expires).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#link-expires-error")).to_have_text("Choose a time in the future.")
    await expires.fill(local_input(datetime.now() + timedelta(days=31)))
    await tool.get_by_role("button", name="Generate Link").click()
    await expect(page.locator("#link-expires-error")).to_have_text(
        "Choose a time at most 30 days from now."
    )
    await expect(page.locator("#link-made")).to_be_hidden()

    # A week ahead is made, shown with its expiry and copied.
    await expires.fill(local_input(datetime.now() + timedelta(days=7)))
    await tool.get_by_role("button", name="Generate Link").click()
    shown = tool.get_by_label("Reset link")
    await expect(shown).to_have_value(re.compile(r"/north/reset-password\?token="))
    await expect(tool.get_by_text("Shown only this once")).to_be_visible()
    await assert_accessible(page)
    await tool.get_by_role("button", name="Copy link").click()
    await expect(tool.get_by_role("status")).to_have_text("Link copied.")
    link = await shown.input_value()
    assert link.startswith(f"{site.url}/north/reset-password?token="), link
    assert await page.evaluate("navigator.clipboard.readText()") == link

    # Not shown again once the page is left.
    await page.reload()
    await page.get_by_role("tab", name="Patient Portal").click()
    await expect(page.locator("#portal-status")).to_have_text("Already signed up")
    await expect(page.locator("#link-made")).to_be_hidden()

    # The link works: handed to the patient, it opens the reset page.
    patient = await new_page(browser, width=360)
    await patient.goto(link)
    await expect(patient.locator("#reset-email")).to_have_text(PATIENT_EMAIL)
    await patient.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await patient.get_by_label("Type the new password again").fill(NEW_PASSWORD)
    await patient.get_by_role("button", name="Set new password").click()
    await expect(patient.get_by_role("heading", name="Your password is set")).to_be_visible()
    signed_in = await api(site, SIGN_IN, email=PATIENT_EMAIL, password=NEW_PASSWORD)
    assert signed_in["login"]["__typename"] == "LoginSuccess"
    assert console_problems(patient) == []
    assert console_problems(page) == []


async def test_an_admin_revokes_then_restores_portal_access(
    browser: Browser, site: Site, mailbox: Mailbox
) -> None:
    patient_id = await signed_up_patient(site, mailbox, "Ada", "Lovelace", "ada@mail.example")
    page = await new_page(browser, width=360, height=740)
    await staff_signs_in(page, site, site.admin_email, f"staff/patients/{patient_id}")
    await page.get_by_role("tab", name="Patient Portal").click()
    await expect(page.locator("#portal-status")).to_have_text("Already signed up")

    # Cancelling changes nothing.
    await page.get_by_role("button", name="Revoke access").click()
    dialog = page.get_by_role("dialog", name="Revoke portal access?")
    await expect(dialog).to_be_visible()
    # Enter on opening does not revoke: the dialog opens on Cancel.
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    await assert_accessible(page)
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#portal-status")).to_have_text("Already signed up")

    await page.get_by_role("button", name="Revoke access").click()
    await dialog.get_by_role("button", name="Revoke access").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#announcer")).to_have_text("Portal access revoked.")
    await expect(page.locator("#portal-status")).to_have_text("Revoked")
    await expect(page.locator("#portal-revoked")).not_to_have_text("—")
    await expect(page.get_by_role("region", name="Password reset link")).to_be_hidden()
    await expect(page.get_by_role("button", name="Restore access")).to_be_focused()
    await assert_accessible(page)
    refused = await api(
        site, SIGN_IN, email="ada@mail.example", password="orchard-silver-comet-1862"
    )
    assert refused["login"]["__typename"] == "AccountDisabledError"

    await page.get_by_role("button", name="Restore access").click()
    restore = page.get_by_role("dialog", name="Restore portal access?")
    await restore.get_by_role("button", name="Restore access").click()
    await expect(page.locator("#announcer")).to_have_text("Portal access restored.")
    await expect(page.locator("#portal-status")).to_have_text("Already signed up")
    await expect(page.get_by_role("button", name="Revoke access")).to_be_visible()
    # Still what the database says after a reload.
    await page.reload()
    await page.get_by_role("tab", name="Patient Portal").click()
    await expect(page.locator("#portal-status")).to_have_text("Already signed up")
    signed_in = await api(
        site, SIGN_IN, email="ada@mail.example", password="orchard-silver-comet-1862"
    )
    assert signed_in["login"]["__typename"] == "LoginSuccess"
    assert console_problems(page) == []


async def test_a_clinician_sees_the_profile_without_portal_management(
    browser: Browser, site: Site, mailbox: Mailbox
) -> None:
    patient_id = await signed_up_patient(site, mailbox, "Alan", "Turing", "alan@mail.example")
    page = await new_page(browser)
    await staff_signs_in(page, site, CLINICIAN_EMAIL, f"staff/patients/{patient_id}")
    await expect(page.get_by_role("heading", name="Alan Turing")).to_be_visible()
    await expect(page.get_by_role("tab", name="Patient Portal")).to_be_hidden()
    for name in ("Generate Link", "Revoke access", "Restore access"):
        await expect(page.get_by_role("button", name=name)).to_have_count(0)
    await expect(page.get_by_role("link", name="View audit trail")).to_be_hidden()
    nav = page.get_by_role("navigation", name="Staff pages")
    await expect(nav.get_by_role("link")).to_have_text(["Patients", "Your account"])
    await assert_accessible(page)
    assert console_problems(page) == []
