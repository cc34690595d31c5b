"""Scenes the staff administration browser tests share: a signed-up patient
set up through the API, and staff signing in through the page."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.browser.conftest import Site, api, bearer_token, latest_mail, link_in
from tests.conftest import Mailbox

PATIENT_PASSWORD = "orchard-silver-comet-1862"
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


async def new_patient(site: Site, first: str, last: str, email: str) -> str:
    """A patient created by the ADMIN through the API; its id."""
    token = await bearer_token(site, site.admin_email)
    data = await api(
        site,
        CREATE_PATIENT,
        token,
        input={"firstName": first, "lastName": last, "email": email},
    )
    patient_id: str = data["createPatient"]["patient"]["id"]
    return patient_id


async def signed_up_patient(site: Site, mailbox: Mailbox, first: str, last: str, email: str) -> str:
    """A patient who accepted the emailed invitation; its id."""
    patient_id = await new_patient(site, first, last, email)
    token = await bearer_token(site, site.admin_email)
    await api(site, SEND_INVITATION, token, id=patient_id)
    link = link_in(await latest_mail(mailbox, email))
    invitation_token = link.split("token=", 1)[1]
    created = await api(
        site, CREATE_ACCOUNT, invitation=invitation_token, password=PATIENT_PASSWORD
    )
    assert created["createAccount"]["__typename"] == "AccountCreated"
    return patient_id


async def staff_signs_in(page: Page, site: Site, email: str, path: str = "staff/patients") -> None:
    """Signs in at staff sign-in on the way to `path`."""
    await page.goto(site.page_url(path))
    # The title is set just before the form's script takes over its submit.
    await expect(page).to_have_title(re.compile(r"^Staff sign in · "))
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(site.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(site.page_url(path))
