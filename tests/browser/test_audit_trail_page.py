"""The audit trail page (ADMIN): events in plain words, newest first, for
the practice or one patient (from the patient's page, or picked by a
search); other roles are told it is not for them."""

from __future__ import annotations

import re

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
from tests.browser.staff_admin import new_patient, staff_signs_in

REVOKE = "mutation ($id: ID!) { revokePortalAccess(patientId: $id) { __typename } }"
SEND_INVITATION = "mutation ($id: ID!) { sendInvitation(patientId: $id) { __typename } }"


async def test_an_admin_reads_one_patient_s_events_from_their_page_and_by_search(
    browser: Browser, site: Site
) -> None:
    grace = await new_patient(site, "Grace", "Hopper", "grace@mail.example")
    ada = await new_patient(site, "Ada", "Lovelace", "ada@mail.example")
    token = await bearer_token(site, site.admin_email)
    await api(site, SEND_INVITATION, token, id=grace)
    await api(site, SEND_INVITATION, token, id=ada)
    await api(site, REVOKE, token, id=ada)

    for width in (1280, 360):
        page = await new_page(browser, width=width, height=900)
        await staff_signs_in(page, site, site.admin_email, "staff/audit")
        await expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
        rows = page.locator("#rows tr")
        # Newest first, in words, with who and which patient.
        await expect(rows.first).to_contain_text("Signed in")
        await expect(rows.first).to_contain_text(f"{site.admin_email} (administrator)")
        await expect(page.locator("#rows")).to_contain_text("Portal invitation sent")
        await expect(page.locator("#rows")).to_contain_text("Portal access revoked")
        await assert_accessible(page)

        # From Grace's page: only her events.
        await page.goto(site.page_url(f"staff/patients/{grace}"))
        await page.get_by_role("link", name="View audit trail").click()
        await expect(page).to_have_url(re.compile(rf"/north/staff/audit\?patient={grace}$"))
        await expect(page.locator("#filter-text")).to_have_text(
            "Showing events about Grace Hopper."
        )
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text("Portal invitation sent")
        await expect(rows.nth(1)).to_contain_text("Patient created")
        await expect(page.locator("#rows")).not_to_contain_text("Ada Lovelace")
        await assert_accessible(page)

        # Picked by a search: only Ada's.
        await page.get_by_label("Show events about one patient").fill("lovelace")
        await page.get_by_role("button", name="Find patient").click()
        await (
            page.get_by_role("list", name="Matching patients")
            .get_by_role("link", name="Lovelace, Ada")
            .click()
        )
        await expect(page.locator("#filter-text")).to_have_text(
            "Showing events about Ada Lovelace."
        )
        await expect(rows.nth(0)).to_contain_text("Portal access revoked")
        await expect(rows.last).to_contain_text("Patient created")
        await expect(page.locator("#rows")).not_to_contain_text("Grace Hopper")
        await assert_accessible(page)

        await page.get_by_role("link", name="Show all events").click()
        await expect(page.locator("#filter")).to_be_hidden()
        await expect(page.locator("#rows")).to_contain_text("Grace Hopper")
        assert console_problems(page) == []


async def test_an_address_naming_no_patient_of_the_practice_says_so(
    browser: Browser, site: Site
) -> None:
    page = await new_page(browser)
    for unknown in ("not-an-id", "0b7c2a52-9a0e-4a53-8d2f-3f1d6f1c2e11"):
        await staff_signs_in(page, site, site.admin_email, f"staff/audit?patient={unknown}")
        await expect(page.locator("#filter-text")).to_have_text(
            "There is no such patient in this practice."
        )
        await expect(page.locator("#rows tr")).to_have_count(0)
        await page.context.clear_cookies()
    assert console_problems(page) == []


async def test_a_clinician_is_told_the_audit_trail_is_not_for_their_role(
    browser: Browser, site: Site
) -> None:
    page = await new_page(browser, width=360, height=740)
    await staff_signs_in(page, site, CLINICIAN_EMAIL, "staff/audit")
    await expect(page.get_by_role("heading", name="Not available to your role")).to_be_visible()
    await expect(page.locator("#rows")).to_have_count(0)
    nav = page.get_by_role("navigation", name="Staff pages")
    await expect(nav.get_by_role("link", name="Audit trail")).to_have_count(0)
    await assert_accessible(page)
    assert console_problems(page) == []
