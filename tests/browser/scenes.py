"""Scenes the account-side browser tests start from, set through the API as
another client would: a patient with a portal account, and signing in."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Page, expect

from tests.browser.conftest import WAIT_MS, Site, api, bearer_token, latest_mail, link_in
from tests.conftest import Mailbox

PATIENT_EMAIL = "grace@mail.example"
PATIENT_PASSWORD = "velvet-harbour-quietly-1906"
NEW_PASSWORD = "amber-orchard-sailing-7731"

CREATE_PATIENT = """
mutation ($input: CreatePatientInput!) {
  createPatient(input: $input) { ... on PatientCreated { patient { id } } }
}
"""
SEND_INVITATION = "mutation ($id: ID!) { sendInvitation(patientId: $id) { __typename } }"
CREATE_ACCOUNT = """
mutation ($invitation: String!, $password: String!) {
  createAccount(token: $invitation, password: $password, passwordConfirmation: $password) {
    __typename
  }
}
"""


async def signed_up_patient(
    site: Site, mailbox: Mailbox, email: str = PATIENT_EMAIL, password: str = PATIENT_PASSWORD
) -> str:
    """Grace Hopper, invited and signed up with `password`; her patient id."""
    admin = await bearer_token(site, site.admin_email)
    created = await api(
        site,
        CREATE_PATIENT,
        admin,
        input={
            "firstName": "Grace",
            "lastName": "Hopper",
            "email": email,
            "dateOfBirth": "1990-12-09",
        },
    )
    patient_id: str = created["createPatient"]["patient"]["id"]
    await api(site, SEND_INVITATION, admin, id=patient_id)
    token = parse_qs(urlsplit(link_in(await latest_mail(mailbox, email))).query)["token"][0]
    account = await api(site, CREATE_ACCOUNT, invitation=token, password=password)
    assert account["createAccount"]["__typename"] == "AccountCreated", account
    return patient_id


async def new_mail(mailbox: Mailbox, to: str, seen: int) -> EmailMessage:
    """The first message to `to` after the `seen` it had, waiting for the mail worker."""
    for _ in range(WAIT_MS // 100):
        messages = mailbox.to(to)
        if len(messages) > seen:
            return messages[seen]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no new mail to {to} within {WAIT_MS} ms")


async def page_is_ready(page: Page) -> None:
    """The page's module has run (it names the practice in the header), so its
    forms are its own and not the browser's plain post."""
    await expect(page.locator(".practice-name")).not_to_have_text("Client portal")


async def sign_in(page: Page, site: Site, email: str, password: str, staff: bool = False) -> None:
    """Fills the sign-in page (already open, or opened here) and submits it."""
    address = site.page_url("staff/sign-in" if staff else "sign-in")
    if not page.url.startswith(address):
        await page.goto(address)
    await page_is_ready(page)
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def patient_signs_in(page: Page, site: Site, password: str = PATIENT_PASSWORD) -> None:
    await sign_in(page, site, PATIENT_EMAIL, password)
    await expect(page).to_have_url(site.page_url("account"))
    await expect(page.locator("#account-email")).to_have_text(PATIENT_EMAIL)
