"""What each role sees, and the second step of a sign-in, in Chromium."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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

CREATE_PATIENT = """
mutation ($input: CreatePatientInput!) {
  createPatient(input: $input) { ... on PatientCreated { patient { id } } }
}
"""
BEGIN = "mutation { beginMfaEnrollment { secret } }"
CONFIRM = "mutation ($code: String!) { confirmMfaEnrollment(code: $code) { __typename } }"


async def test_a_clinician_sees_patients_but_no_portal_management(
    browser: Browser, site: Site
) -> None:
    admin = await bearer_token(site, site.admin_email)
    created = await api(
        site,
        CREATE_PATIENT,
        admin,
        input={"firstName": "Ada", "lastName": "Lovelace", "email": "ada@mail.example"},
    )
    patient_id = created["createPatient"]["patient"]["id"]

    page = await new_page(browser, width=360)
    await page.goto(site.page_url("staff/sign-in"))
    await page.get_by_label("Email address").fill(CLINICIAN_EMAIL)
    await page.get_by_label("Password").fill(site.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("link", name="Lovelace, Ada")).to_be_visible()
    await expect(page.get_by_role("button", name="New patient")).to_be_hidden()
    await assert_accessible(page)

    await page.get_by_role("link", name="Lovelace, Ada").click()
    await expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    await expect(page.locator("#profile-email")).to_have_text("ada@mail.example")
    await expect(page.get_by_role("tab", name="Patient Portal")).to_be_hidden()
    await expect(page.get_by_role("button", name="Send Invitation")).to_be_hidden()
    await assert_accessible(page)
    assert page.url == site.page_url(f"staff/patients/{patient_id}")
    assert console_problems(page) == []


async def test_an_enrolled_admin_signs_in_with_a_code_from_the_authenticator(
    browser: Browser, site: Site
) -> None:
    token = await bearer_token(site, site.admin_email)
    secret = (await api(site, BEGIN, token))["beginMfaEnrollment"]["secret"]
    await api(site, CONFIRM, token, code=pyotp.TOTP(secret).now())

    page = await new_page(browser)
    await page.goto(site.page_url("staff/sign-in"))
    await page.get_by_label("Email address").fill(site.admin_email)
    await page.get_by_label("Password").fill(site.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    await expect(page.get_by_label("Verification code")).to_be_focused()
    await assert_accessible(page)

    await page.get_by_label("Verification code").fill("000000")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("alert")).not_to_be_empty()
    await expect(page.get_by_label("Verification code")).to_have_attribute("aria-invalid", "true")

    # The next step's code (accepted beside the current one): the step the
    # enrolment used may not be taken twice.
    code = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))
    await page.get_by_label("Verification code").fill(code)
    await page.get_by_role("button", name="Continue").click()
    await expect(page).to_have_url(site.page_url("staff/patients"))
    assert console_problems(page) == []


async def test_staff_search_and_page_through_the_patients(browser: Browser, site: Site) -> None:
    admin = await bearer_token(site, site.admin_email)
    for number in range(26):
        await api(
            site,
            CREATE_PATIENT,
            admin,
            input={"firstName": f"Person{number:02d}", "lastName": "Example"},
        )
    await api(site, CREATE_PATIENT, admin, input={"firstName": "Zed", "lastName": "Quill"})

    page = await new_page(browser, width=360)
    await page.goto(site.page_url("staff/sign-in"))
    await page.get_by_label("Email address").fill(CLINICIAN_EMAIL)
    await page.get_by_label("Password").fill(site.password)
    await page.get_by_role("button", name="Sign in").click()
    summary = page.get_by_role("status")
    await expect(summary).to_have_text("Showing 1–25 of 27 patients")
    await expect(page.locator("#rows tr")).to_have_count(25)

    await page.get_by_role("button", name="Next").click()
    await expect(summary).to_have_text("Showing 26–27 of 27 patients")
    await expect(page.get_by_role("link", name="Quill, Zed")).to_be_visible()
    await expect(page.get_by_role("button", name="Next")).to_be_disabled()
    await page.get_by_role("button", name="Previous").click()
    await expect(summary).to_have_text("Showing 1–25 of 27 patients")

    await page.get_by_label("Search patients").fill("quil")
    await expect(summary).to_have_text("Showing 1–1 of 1 patient")
    await page.get_by_label("Search patients").fill("nobody-like-this")
    await page.get_by_label("Search patients").press("Enter")
    await expect(summary).to_have_text("No patient matches that search.")
    assert console_problems(page) == []
