"""Screenshots of the web app's main pages, desktop and 360 px wide, for the
README: `make screenshots` (needs Chromium) rewrites docs/screenshots/*.png.
Not a test: it runs the same service and helpers the browser tests use."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Browser, Page, async_playwright, expect

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    Site,
    api,
    bearer_token,
    latest_mail,
    link_in,
    new_page,
)
from tests.conftest import Mailbox, SmtpServer, free_port
from tests.processes import Cluster

ADMIN_EMAIL = "admin@riverside.example"
OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CREATE_PATIENT = """
mutation ($input: CreatePatientInput!) {
  createPatient(input: $input) { ... on PatientCreated { patient { id } } }
}
"""
SEND_INVITATION = "mutation ($id: ID!) { sendInvitation(patientId: $id) { __typename } }"
INVITE_STAFF = """
mutation ($email: String!) { inviteStaff(email: $email, role: CLINICIAN) { __typename } }
"""
CREATE_ACCOUNT = """
mutation ($invitation: String!, $password: String!) {
  createAccount(token: $invitation, password: $password, passwordConfirmation: $password) {
    __typename
  }
}
"""
CLINICIAN_EMAIL = "lin@riverside.example"
PATIENTS = [
    ("Grace", "Hopper", "1990-12-09", "grace@mail.example"),
    ("Ada", "Lovelace", "1985-12-10", "ada@mail.example"),
    ("Alan", "Turing", None, "alan@mail.example"),
    ("Katherine", "Johnson", "1978-08-26", None),
]


async def shoot(page: Page, name: str) -> None:
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"wrote docs/screenshots/{name}.png")


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    smtp = SmtpServer(port=free_port(), mailbox=Mailbox())
    smtp.up()
    with tempfile.TemporaryDirectory() as directory:
        cluster = Cluster(
            Path(directory),
            f"sqlite://{directory}/portal.sqlite3",
            smtp.port,
            PORTAL_MAIL_WORKER="on",
            PORTAL_MAIL_POLL_SECONDS="1",
        )
        del cluster.env["PORTAL_BASE_URL"]
        cluster.run("migrate")
        cluster.run("create-practice", "--name", "Riverside Practice", "--slug", "riverside")
        cluster.run(
            *("create-user", "--practice", "riverside", "--email", ADMIN_EMAIL),
            *("--role", "ADMIN"),
            PORTAL_PASSWORD=PASSWORD,
        )
        _, url = cluster.serve()
        site = Site(url, "riverside", ADMIN_EMAIL, PASSWORD, cluster)
        try:
            await pictures(site, smtp.mailbox)
        finally:
            cluster.stop_all()
            smtp.down()


async def pictures(site: Site, mailbox: Mailbox) -> None:
    token = await bearer_token(site, site.admin_email)
    ids = []
    for first, last, born, email in PATIENTS:
        data = await api(
            site,
            CREATE_PATIENT,
            token,
            input={"firstName": first, "lastName": last, "dateOfBirth": born, "email": email},
        )
        ids.append(data["createPatient"]["patient"]["id"])
    await api(site, SEND_INVITATION, token, id=ids[0])
    link = link_in(await latest_mail(mailbox, "grace@mail.example"))
    # Ada signed up (for the reset link), and a clinician on the staff page.
    await api(site, SEND_INVITATION, token, id=ids[1])
    await api(site, INVITE_STAFF, token, email=CLINICIAN_EMAIL)
    for email in ("ada@mail.example", CLINICIAN_EMAIL):
        invitation = link_in(await latest_mail(mailbox, email)).split("token=", 1)[1]
        await api(site, CREATE_ACCOUNT, invitation=invitation, password="orchard-silver-comet-1862")
    await api(site, INVITE_STAFF, token, email="sam@riverside.example")  # not yet accepted

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        for width, height, suffix in ((1280, 800, "desktop"), (360, 740, "phone")):
            staff = await new_page(browser, width=width, height=height)
            await staff.goto(site.page_url("staff/sign-in"))
            await shoot(staff, f"staff-sign-in-{suffix}")
            await staff.get_by_label("Email address").fill(site.admin_email)
            await staff.get_by_label("Password").fill(site.password)
            await staff.get_by_role("button", name="Sign in").click()
            await expect(staff.get_by_role("status")).to_contain_text("Showing")
            await shoot(staff, f"staff-patients-{suffix}")
            await staff.goto(site.page_url(f"staff/patients/{ids[0]}"))
            await staff.get_by_role("tab", name="Patient Portal").click()
            await expect(staff.locator("#portal-status")).to_have_text("Initiated")
            await shoot(staff, f"staff-patient-portal-{suffix}")
            await staff.goto(site.page_url(f"staff/patients/{ids[1]}"))
            await staff.get_by_role("tab", name="Patient Portal").click()
            await staff.get_by_role("button", name="Generate Link").click()
            await expect(staff.locator("#link-url")).not_to_have_value("")
            await shoot(staff, f"staff-reset-link-{suffix}")
            await staff.goto(site.page_url("staff/team"))
            await expect(staff.locator("#rows tr")).to_have_count(2)
            await shoot(staff, f"staff-team-{suffix}")
            await staff.goto(site.page_url("staff/audit"))
            await expect(staff.locator("#rows tr").first).to_be_visible()
            await shoot(staff, f"staff-audit-{suffix}")

            patient = await new_page(browser, width=width, height=height)
            await patient.goto(link)
            await expect(patient.get_by_role("heading", name="Create your account")).to_be_visible()
            await patient.get_by_label("Choose a password").fill("velvet-harbour")
            await shoot(patient, f"sign-up-{suffix}")
        await account_side_pictures(browser, site, mailbox, ids[1])
        await browser.close()


# The account side (phase 2): recovery, the account page, two-step setup.
ACCOUNT_EMAIL = "ada@mail.example"
ACCOUNT_PASSWORD = "velvet-harbour-quietly-1906"
CREATE_ACCOUNT = """
mutation ($invitation: String!, $password: String!) {
  createAccount(token: $invitation, password: $password, passwordConfirmation: $password) {
    __typename
  }
}
"""
GENERATE_RESET_LINK = """
mutation ($id: ID!, $expiresAt: DateTime!) {
  generateResetLink(patientId: $id, expiresAt: $expiresAt) { ... on ResetLinkGenerated { url } }
}
"""


async def account_side_pictures(
    browser: Browser, site: Site, mailbox: Mailbox, patient_id: str
) -> None:
    token = await bearer_token(site, site.admin_email)
    await api(site, SEND_INVITATION, token, id=patient_id)
    invitation = link_in(await latest_mail(mailbox, ACCOUNT_EMAIL))
    await api(
        site,
        CREATE_ACCOUNT,
        invitation=parse_qs(urlsplit(invitation).query)["token"][0],
        password=ACCOUNT_PASSWORD,
    )
    expires = datetime.now(UTC) + timedelta(days=3)
    made = await api(site, GENERATE_RESET_LINK, token, id=patient_id, expiresAt=expires.isoformat())
    reset_link = made["generateResetLink"]["url"]
    for width, height, suffix in ((1280, 800, "desktop"), (360, 740, "phone")):
        patient = await new_page(browser, width=width, height=height)
        await patient.goto(site.page_url("forgot-password"))
        await shoot(patient, f"forgot-password-{suffix}")
        await patient.get_by_role("textbox", name="Email address").fill(ACCOUNT_EMAIL)
        await patient.get_by_role("button", name="Send code").click()
        await expect(patient.get_by_role("heading", name="Check your email")).to_be_visible()
        await shoot(patient, f"forgot-password-code-{suffix}")

        await patient.goto(reset_link)
        await expect(patient.get_by_role("heading", name="Choose a new password")).to_be_visible()
        await shoot(patient, f"reset-password-{suffix}")

        await patient.goto(site.page_url("sign-in"))
        await patient.get_by_label("Email address").fill(ACCOUNT_EMAIL)
        await patient.get_by_label("Password").fill(ACCOUNT_PASSWORD)
        await patient.get_by_role("button", name="Sign in").click()
        await expect(patient.get_by_role("heading", name="Where you are signed in")).to_be_visible()
        await expect(patient.locator("#sessions li").first).to_be_visible()
        await shoot(patient, f"account-{suffix}")
        await patient.get_by_role("button", name="Turn on two-step verification").click()
        await expect(patient.locator("img.qr-code")).to_be_visible()
        await shoot(patient, f"account-two-step-{suffix}")

        staff = await new_page(browser, width=width, height=height)
        await staff.goto(site.page_url("staff/sign-in"))
        await staff.get_by_label("Email address").fill(site.admin_email)
        await staff.get_by_label("Password").fill(site.password)
        await staff.get_by_role("button", name="Sign in").click()
        await expect(staff.get_by_role("status")).to_contain_text("Showing")
        await staff.goto(site.page_url("staff/two-step"))
        await expect(staff.locator("img.qr-code")).to_be_visible()
        await shoot(staff, f"staff-two-step-{suffix}")


if __name__ == "__main__":
    asyncio.run(main())
