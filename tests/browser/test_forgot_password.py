"""A patient who forgot their password asks for a code, reads it in the
email, chooses a new password and signs in with it, in Chromium on a phone."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.browser.conftest import Site, assert_accessible, console_problems, new_page
from tests.browser.scenes import (
    NEW_PASSWORD,
    PATIENT_EMAIL,
    new_mail,
    page_is_ready,
    patient_signs_in,
    signed_up_patient,
)
from tests.conftest import Mailbox
from tests.mail import text_of


async def test_a_patient_resets_the_password_with_the_emailed_code(
    browser: Browser, site: Site, mailbox: Mailbox
) -> None:
    await signed_up_patient(site, mailbox)
    seen = len(mailbox.to(PATIENT_EMAIL))  # the invitation
    page = await new_page(browser, width=360)
    await page.goto(site.page_url("sign-in"))
    await page.get_by_role("link", name="Forgot password?").click()
    await expect(page).to_have_url(site.page_url("forgot-password"))
    await expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    await page_is_ready(page)
    await assert_accessible(page)

    # An address without an account gets the very same words, and no mail.
    await page.get_by_role("textbox", name="Email address").fill("nobody@mail.example")
    await page.get_by_role("button", name="Send code").click()
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    unknown_answer = await page.locator("#code-sent").text_content()
    await page.get_by_role("button", name="Send a new code").click()
    await page.get_by_role("textbox", name="Email address").fill(PATIENT_EMAIL)
    await page.get_by_role("button", name="Send code").click()
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    await expect(page.locator("#code-sent")).to_have_text(unknown_answer or "")
    await assert_accessible(page)
    assert mailbox.to("nobody@mail.example") == []

    message = await new_mail(mailbox, PATIENT_EMAIL, seen)
    code = re.search(r"\b(\d{6})\b", text_of(message))
    assert code, text_of(message)
    wrong = "000000" if code.group(1) != "000000" else "111111"
    await page.get_by_label("6-digit code").fill(wrong)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_label("6-digit code")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_role("alert")).not_to_be_empty()
    await page.get_by_label("6-digit code").fill(code.group(1))
    await page.get_by_role("button", name="Continue").click()

    await expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    await page.get_by_label("New password", exact=True).fill("short")
    await page.get_by_label("Type the new password again").fill("short")
    await page.get_by_role("button", name="Set new password").click()
    await expect(page.get_by_label("New password", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await expect(page.locator("[data-check='match']")).not_to_have_class(re.compile("met"))
    await page.get_by_label("Type the new password again").fill(NEW_PASSWORD)
    await expect(page.locator("[data-check='length']")).to_have_class(re.compile("met"))
    await expect(page.locator("[data-check='match']")).to_have_class(re.compile("met"))
    await assert_accessible(page)
    await page.get_by_role("button", name="Set new password").click()

    await expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_role("link", name="Continue to sign in").click()
    await patient_signs_in(page, site, NEW_PASSWORD)
    assert console_problems(page) == []
