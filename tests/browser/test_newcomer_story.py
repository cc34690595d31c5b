"""The story the product exists for, in Chromium: an ADMIN signs in, creates a
patient and sends the invitation; the patient opens the emailed link on a
phone-sized screen, chooses a password, creates the account and signs in.
Every page on the way is checked with axe-core."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import (
    Site,
    api,
    assert_accessible,
    bearer_token,
    console_problems,
    latest_mail,
    link_in,
    new_page,
)
from tests.conftest import Mailbox

PATIENT_EMAIL = "grace@mail.example"
PATIENT_PASSWORD = "velvet-harbour-quietly-1906"


async def admin_signs_in(page: Page, site: Site) -> None:
    await page.goto(site.page_url("staff/patients"))
    # Signed out: sent to sign in, and back to the patients afterwards.
    await expect(page).to_have_url(re.compile(r"/north/staff/sign-in\?next="))
    await expect(page.locator(".practice-name")).to_have_text("North Practice")
    await expect(page).to_have_title("Staff sign in · North Practice")
    await assert_accessible(page)
    await page.get_by_label("Email address").fill(site.admin_email)
    await page.get_by_label("Password").fill(site.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(site.page_url("staff/patients"))


async def test_admin_invites_a_patient_who_signs_up_and_signs_in(
    browser: Browser, site: Site, mailbox: Mailbox
) -> None:
    admin = await new_page(browser)
    await admin_signs_in(admin, site)
    await expect(admin.get_by_role("status")).to_have_text("No patients yet.")
    await expect(admin.get_by_text(f"Signed in as {site.admin_email}")).to_be_visible()
    await assert_accessible(admin)

    # Given a new patient, created with the "+".
    await admin.get_by_role("button", name="New patient").click()
    dialog = admin.get_by_role("dialog", name="New patient")
    await dialog.get_by_label("First name").fill("Grace")
    await dialog.get_by_label("Last name").fill("Hopper")
    await dialog.get_by_label("Email address").fill(PATIENT_EMAIL)
    await assert_accessible(admin)
    await dialog.get_by_role("button", name="Create patient").click()
    await expect(admin).to_have_url(re.compile(r"/north/staff/patients/[0-9a-f-]{36}$"))
    await expect(admin.get_by_role("heading", name="Grace Hopper")).to_be_visible()

    # When the ADMIN sends the invitation from the Patient Portal tab.
    await admin.get_by_role("tab", name="Patient Portal").click()
    portal = admin.get_by_role("tabpanel", name="Patient Portal")
    await expect(portal.locator("#portal-status")).to_have_text("Yet to sign up")
    await expect(portal.locator("#portal-status")).to_have_text("Yet to sign up")
    await expect(portal.get_by_text(f"to {PATIENT_EMAIL}")).to_be_visible()
    await assert_accessible(admin)
    await portal.get_by_role("button", name="Send Invitation").click()
    await expect(admin.get_by_role("alert")).to_have_text(f"Invitation sent to {PATIENT_EMAIL}.")
    await expect(portal.locator("#portal-status")).to_have_text("Initiated")
    await expect(portal.locator("#portal-invited")).not_to_have_text("—")

    # Then the patient's email links to the service's own sign-up page.
    link = link_in(await latest_mail(mailbox, PATIENT_EMAIL))
    assert link.startswith(f"{site.url}/north/sign-up?token="), link

    patient = await new_page(browser, width=360, height=740)
    await patient.goto(link)
    await expect(patient.get_by_role("heading", name="Create your account")).to_be_visible()
    await expect(patient.locator("#invited-email")).to_have_text(PATIENT_EMAIL)
    await expect(patient.locator(".practice-name")).to_have_text("North Practice")
    await assert_accessible(patient)
    await patient.get_by_label("Choose a password").fill(PATIENT_PASSWORD)
    await patient.get_by_label("Type the password again").fill(PATIENT_PASSWORD)
    await expect(patient.locator("[data-check='match']")).to_have_class(re.compile("met"))
    await patient.get_by_role("button", name="Create Account").click()
    await expect(patient.get_by_role("heading", name="Your account is ready")).to_be_visible()
    await assert_accessible(patient)

    await patient.get_by_role("link", name="Continue to sign in").click()
    await expect(patient).to_have_url(site.page_url("sign-in"))
    await assert_accessible(patient)
    await patient.get_by_label("Email address").fill(PATIENT_EMAIL)
    await patient.get_by_label("Password").fill(PATIENT_PASSWORD)
    await patient.get_by_role("button", name="Sign in").click()
    await expect(patient).to_have_url(site.page_url("account"))
    await expect(patient.locator("#account-email")).to_have_text(PATIENT_EMAIL)

    # The link is spent: opened again it says so.
    await patient.goto(link)
    await expect(
        patient.get_by_role("heading", name="This link can no longer be used")
    ).to_be_visible()
    await assert_accessible(patient)

    # The ADMIN sees the patient signed up.
    await admin.reload()
    await admin.get_by_role("tab", name="Patient Portal").click()
    await expect(admin.locator("#portal-status")).to_have_text("Already signed up")
    assert console_problems(admin) == [] and console_problems(patient) == []


async def test_a_wrong_password_is_announced_and_sign_out_ends_the_session(
    browser: Browser, site: Site
) -> None:
    page = await new_page(browser)
    await page.goto(site.page_url("staff/sign-in"))
    await page.get_by_label("Email address").fill(site.admin_email)
    await page.get_by_label("Password").fill("not-the-password-at-all")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("is wrong")
    await expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")

    await page.get_by_label("Password").fill(site.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(site.page_url("staff/patients"))
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(site.page_url("staff/sign-in"))

    await page.goto(site.page_url("staff/patients"))
    await expect(page).to_have_url(re.compile(r"/north/staff/sign-in\?next="))
    # The session lives in an HttpOnly cookie script cannot read.
    assert await page.evaluate("document.cookie") == ""
    assert console_problems(page) == []


async def test_an_unknown_practice_or_link_says_so(browser: Browser, site: Site) -> None:
    page = await new_page(browser, width=360)
    await page.goto(f"{site.url}/nowhere/sign-in")
    await expect(
        page.get_by_role("heading", name="There is no practice at this address")
    ).to_be_visible()

    await page.goto(site.page_url("sign-up?token=not-a-token"))
    await expect(
        page.get_by_role("heading", name="This link can no longer be used")
    ).to_be_visible()
    await assert_accessible(page)


async def test_a_session_ended_elsewhere_sends_the_next_click_to_sign_in(
    browser: Browser, site: Site
) -> None:
    page = await new_page(browser)
    await admin_signs_in(page, site)
    await expect(page.get_by_role("status")).to_have_text("No patients yet.")

    # The same ADMIN, elsewhere, signs out every other device.
    other_device = await bearer_token(site, site.admin_email)
    assert (await api(site, "mutation { endOtherSessions }", other_device)) == {
        "endOtherSessions": 1
    }

    await page.get_by_label("Search patients").fill("anyone")
    await page.get_by_label("Search patients").press("Enter")
    await expect(page).to_have_url(re.compile(r"/north/staff/sign-in\?next="))
