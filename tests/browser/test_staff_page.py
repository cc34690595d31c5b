"""The staff page (ADMIN): invite a clinician who follows the email to sign
up and sign in; disable then enable an account; reset a lost second step;
the practice's "require two-step verification" switch. Other roles are told
the page is not for them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
from playwright.async_api import Browser, Locator, Page, expect

from tests.browser.conftest import (
    CLINICIAN_EMAIL,
    Site,
    api,
    assert_accessible,
    bearer_token,
    console_problems,
    latest_mail,
    link_in,
    new_page,
)
from tests.browser.staff_admin import staff_signs_in
from tests.conftest import Mailbox

NEW_STAFF = "lin@north.example"
NEW_STAFF_PASSWORD = "harbour-violet-engine-3318"
BEGIN = "mutation { beginMfaEnrollment { secret } }"
CONFIRM = "mutation ($code: String!) { confirmMfaEnrollment(code: $code) { __typename } }"
SIGN_IN = """
mutation ($email: String!, $password: String!) {
  login(practice: "north", email: $email, password: $password) { __typename }
}
"""
STAFF = "query { staff(first: 100) { edges { node { email active mfaEnabled } } } }"


def row_of(page: Page, email: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=email, exact=True))


async def enrol(site: Site, email: str) -> str:
    """Turns two-step verification on for `email` through the API; its secret."""
    token = await bearer_token(site, email)
    secret: str = (await api(site, BEGIN, token))["beginMfaEnrollment"]["secret"]
    await api(site, CONFIRM, token, code=pyotp.TOTP(secret).now())
    return secret


async def test_an_admin_invites_a_clinician_who_signs_up_and_signs_in(
    browser: Browser, site: Site, mailbox: Mailbox
) -> None:
    admin = await new_page(browser)
    await staff_signs_in(admin, site, site.admin_email)
    await (
        admin.get_by_role("navigation", name="Staff pages")
        .get_by_role("link", name="Staff")
        .click()
    )
    await expect(admin).to_have_url(site.page_url("staff/team"))
    await expect(admin.get_by_role("heading", name="Staff", exact=True)).to_be_visible()
    await expect(row_of(admin, CLINICIAN_EMAIL)).to_contain_text("Clinician")
    await expect(row_of(admin, site.admin_email)).to_contain_text("You")
    await assert_accessible(admin)

    # A bad address: said at the field, nothing sent.
    invite = admin.get_by_role("region", name="Invite staff")
    await invite.get_by_label("Email address").fill("not an address")
    await invite.get_by_role("button", name="Send invitation").click()
    await expect(invite.get_by_label("Email address")).to_have_attribute("aria-invalid", "true")
    # An address already in use: the API's message.
    await invite.get_by_label("Email address").fill(CLINICIAN_EMAIL)
    await invite.get_by_role("button", name="Send invitation").click()
    await expect(invite.get_by_role("alert")).to_contain_text("already")

    await invite.get_by_label("Email address").fill(NEW_STAFF)
    await invite.get_by_label("Role").select_option("CLINICIAN")
    await invite.get_by_role("button", name="Send invitation").click()
    await expect(invite.get_by_role("alert")).to_contain_text(
        f"Invitation sent to {NEW_STAFF} as clinician."
    )
    assert mailbox.to("not an address") == [] and len(mailbox.to(CLINICIAN_EMAIL)) == 0
    pending = admin.get_by_role("region", name="Invitations not yet accepted")
    await expect(pending.get_by_role("listitem")).to_have_count(1)
    await expect(pending.get_by_role("listitem")).to_contain_text(f"{NEW_STAFF} Clinician")
    await assert_accessible(admin)

    # The email's link opens the sign-up page, which goes on to staff sign-in.
    link = link_in(await latest_mail(mailbox, NEW_STAFF))
    assert link.startswith(f"{site.url}/north/sign-up?token="), link
    newcomer = await new_page(browser, width=360, height=740)
    await newcomer.goto(link)
    await expect(newcomer.locator("#invited-email")).to_have_text(NEW_STAFF)
    await newcomer.get_by_label("Choose a password").fill(NEW_STAFF_PASSWORD)
    await newcomer.get_by_label("Type the password again").fill(NEW_STAFF_PASSWORD)
    await newcomer.get_by_role("button", name="Create Account").click()
    await expect(newcomer.get_by_role("heading", name="Your account is ready")).to_be_visible()
    await newcomer.get_by_role("link", name="Continue to sign in").click()
    await expect(newcomer).to_have_url(site.page_url("staff/sign-in"))
    await expect(newcomer).to_have_title(re.compile(r"^Staff sign in · "))
    await newcomer.get_by_label("Email address").fill(NEW_STAFF)
    await newcomer.get_by_label("Password").fill(NEW_STAFF_PASSWORD)
    await newcomer.get_by_role("button", name="Sign in").click()
    await expect(newcomer).to_have_url(site.page_url("staff/patients"))
    await expect(newcomer.get_by_role("heading", name="Patients")).to_be_visible()

    # The new clinician is listed for the ADMIN, and is not shown the staff page.
    await admin.reload()
    await expect(row_of(admin, NEW_STAFF)).to_contain_text("Active")
    await expect(pending).to_be_hidden()
    nav = newcomer.get_by_role("navigation", name="Staff pages")
    await expect(nav.get_by_role("link")).to_have_text(["Patients", "Your account"])
    await newcomer.goto(site.page_url("staff/team"))
    await expect(newcomer.get_by_role("heading", name="Not available to your role")).to_be_visible()
    await expect(newcomer.get_by_role("button", name="Send invitation")).to_have_count(0)
    await assert_accessible(newcomer)
    assert console_problems(admin) == [] and console_problems(newcomer) == []


async def test_an_admin_disables_then_enables_a_clinician(browser: Browser, site: Site) -> None:
    page = await new_page(browser, width=360, height=740)
    await staff_signs_in(page, site, site.admin_email, "staff/team")
    row = row_of(page, CLINICIAN_EMAIL)
    await expect(row).to_contain_text("Active")
    await assert_accessible(page)

    await row.get_by_role("button", name=f"Disable {CLINICIAN_EMAIL}").click()
    dialog = page.get_by_role("dialog", name="Disable this account?")
    await expect(dialog).to_contain_text(CLINICIAN_EMAIL)
    await assert_accessible(page)
    await dialog.get_by_role("button", name="Disable").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#announcer")).to_have_text(f"{CLINICIAN_EMAIL} is disabled.")
    await expect(row).to_contain_text("Disabled")
    refused = await api(site, SIGN_IN, email=CLINICIAN_EMAIL, password=site.password)
    assert refused["login"]["__typename"] == "AccountDisabledError"

    await row.get_by_role("button", name=f"Enable {CLINICIAN_EMAIL}").click()
    await (
        page.get_by_role("dialog", name="Enable this account?")
        .get_by_role("button", name="Enable")
        .click()
    )
    await expect(page.locator("#announcer")).to_have_text(f"{CLINICIAN_EMAIL} is enabled.")
    await expect(row).to_contain_text("Active")
    signed_in = await api(site, SIGN_IN, email=CLINICIAN_EMAIL, password=site.password)
    assert signed_in["login"]["__typename"] == "LoginSuccess"
    assert console_problems(page) == []


async def test_an_admin_is_offered_no_change_to_their_own_account(
    browser: Browser, site: Site
) -> None:
    # The API refuses an ADMIN disabling themself (NOT_ALLOWED), which also
    # keeps the last active ADMIN; the page does not offer it.
    page = await new_page(browser)
    await staff_signs_in(page, site, site.admin_email, "staff/team")
    await expect(row_of(page, CLINICIAN_EMAIL).get_by_role("button")).to_have_count(1)
    own = row_of(page, site.admin_email)
    await expect(own).to_contain_text("You")
    await expect(own.get_by_role("button")).to_have_count(0)
    assert console_problems(page) == []


async def test_an_admin_resets_a_clinician_s_two_step_verification(
    browser: Browser, site: Site
) -> None:
    await enrol(site, CLINICIAN_EMAIL)
    page = await new_page(browser)
    await staff_signs_in(page, site, site.admin_email, "staff/team")
    row = row_of(page, CLINICIAN_EMAIL)
    await expect(row.get_by_role("cell", name="On", exact=True)).to_be_visible()

    await row.get_by_role("button", name=f"Reset two-step {CLINICIAN_EMAIL}").click()
    dialog = page.get_by_role("dialog", name="Reset two-step verification?")
    await dialog.get_by_role("button", name="Reset two-step").click()
    await expect(page.locator("#announcer")).to_have_text(
        f"Two-step verification of {CLINICIAN_EMAIL} is reset."
    )
    await expect(row.get_by_role("cell", name="Off", exact=True)).to_be_visible()
    await expect(row.get_by_role("button", name=re.compile("Reset two-step"))).to_have_count(0)
    token = await bearer_token(site, site.admin_email)
    staff = (await api(site, STAFF, token))["staff"]["edges"]
    assert {n["node"]["email"]: n["node"]["mfaEnabled"] for n in staff}[CLINICIAN_EMAIL] is False
    assert console_problems(page) == []


async def test_the_two_step_switch_needs_the_admin_s_own_and_then_turns_on_and_off(
    browser: Browser, site: Site
) -> None:
    page = await new_page(browser)
    await staff_signs_in(page, site, site.admin_email, "staff/team")
    switch = page.get_by_role("switch", name="Require two-step verification for all staff")
    await expect(switch).not_to_be_checked()

    # Without two-step verification of their own, the API refuses and says why.
    await switch.click()
    await expect(page.locator("#announcer")).to_contain_text("two-step")
    await expect(page.locator("#announcer")).to_have_class(re.compile("error"))
    await expect(switch).not_to_be_checked()
    await page.reload()
    await expect(switch).not_to_be_checked()

    # Enrolled (which ends the ADMIN's other sessions), signed in again with a code.
    secret = await enrol(site, site.admin_email)
    await page.goto(site.page_url("staff/team"))
    await expect(page).to_have_title(re.compile(r"^Staff sign in · "))
    await page.get_by_label("Email address").fill(site.admin_email)
    await page.get_by_label("Password").fill(site.password)
    await page.get_by_role("button", name="Sign in").click()
    code = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))
    await page.get_by_label("Verification code").fill(code)
    await page.get_by_role("button", name="Continue").click()
    await expect(page).to_have_url(site.page_url("staff/team"))

    await switch.click()
    await expect(page.locator("#announcer")).to_have_text(
        "Two-step verification is now required for all staff."
    )
    await expect(switch).to_be_checked()
    await page.reload()
    await expect(switch).to_be_checked()
    await assert_accessible(page)

    await switch.click()
    await expect(page.locator("#announcer")).to_have_text(
        "Two-step verification is no longer required."
    )
    await page.reload()
    await expect(switch).not_to_be_checked()
    assert console_problems(page) == []
