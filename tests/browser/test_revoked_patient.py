"""An ADMIN revokes a patient's portal access while the patient's page is
open: the patient's next click lands on sign-in, where the password no longer
opens the portal."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.browser.conftest import Site, api, bearer_token, console_problems, new_page
from tests.browser.scenes import (
    PATIENT_EMAIL,
    PATIENT_PASSWORD,
    patient_signs_in,
    sign_in,
    signed_up_patient,
)
from tests.conftest import Mailbox

REVOKE = "mutation ($id: ID!) { revokePortalAccess(patientId: $id) { __typename } }"


async def test_the_next_click_after_a_revoke_is_signed_out(
    browser: Browser, site: Site, mailbox: Mailbox
) -> None:
    patient_id = await signed_up_patient(site, mailbox)
    page = await new_page(browser)
    await patient_signs_in(page, site)
    await expect(page.locator("#sessions li")).to_have_count(1)

    admin = await bearer_token(site, site.admin_email)
    revoked = await api(site, REVOKE, admin, id=patient_id)
    assert revoked["revokePortalAccess"]["__typename"] == "PortalAccessRevoked"

    await page.get_by_role("button", name="Turn on two-step verification").click()
    await expect(page).to_have_url(site.page_url("sign-in"))
    await sign_in(page, site, PATIENT_EMAIL, PATIENT_PASSWORD)
    await expect(page.get_by_role("alert")).to_contain_text("Contact your practice")
    await expect(page).to_have_url(site.page_url("sign-in"))
    assert console_problems(page) == []
