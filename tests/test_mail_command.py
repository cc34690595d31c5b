"""`portal mail`: a developer without SMTP reads the mail the service wrote,
decoded, with its links and codes ready to copy (the `.eml` files themselves
are quoted-printable: `=3D` for `=`, lines broken with `=`)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from models import OutboxMessage, Patient
from portal.mail import delivery
from portal.settings import Settings
from tests.conftest import GraphQLClient
from tests.test_cli import PORTAL, clean_environment

SEND_INVITATION = "mutation($id: ID!) { sendInvitation(patientId: $id) { __typename } }"
REQUEST_CODE = """
mutation($practice: String!, $email: String!) {
  requestVerificationCode(practice: $practice, email: $email) { __typename }
}
"""


def portal_mail(mail_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(PORTAL), "mail", *args],
        env=clean_environment(mail_dir.parent, PORTAL_MAIL_DIR=str(mail_dir)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_newest_mail_is_shown_decoded_with_its_links_and_codes(
    settings: Settings,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    tmp_path: Path,
) -> None:
    mail_dir = tmp_path / "mail"
    offline = dataclasses.replace(settings, smtp_url=None, mail_dir=mail_dir)
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    await anonymous.data(REQUEST_CODE, practice="north", email="admin@north.example")
    invitation = await OutboxMessage.get(kind="invitation")
    code_mail = await OutboxMessage.get(kind="verification_code")
    assert (await delivery.drain(offline)).sent == 2
    [link] = [word for word in invitation.text_body.split() if "token=" in word]
    [code] = [word for word in code_mail.text_body.split() if word.isdigit() and len(word) == 6]
    assert link not in "".join(p.read_text() for p in mail_dir.glob("*.eml"))

    shown = portal_mail(mail_dir)

    assert shown.returncode == 0, shown.stderr
    assert f"  link: {link}\n" in shown.stdout
    assert f"  code: {code}\n" in shown.stdout
    assert "to grace@mail.example" in shown.stdout
    assert "to admin@north.example" in shown.stdout


async def test_mail_can_be_narrowed_to_one_address_and_counted(
    settings: Settings,
    admin: GraphQLClient,
    anonymous: GraphQLClient,
    patient_profile: Patient,
    tmp_path: Path,
) -> None:
    mail_dir = tmp_path / "mail"
    await admin.data(SEND_INVITATION, id=str(patient_profile.id))
    await anonymous.data(REQUEST_CODE, practice="north", email="admin@north.example")
    await delivery.drain(dataclasses.replace(settings, smtp_url=None, mail_dir=mail_dir))

    only_grace = portal_mail(mail_dir, "--to", "GRACE@mail.example", "--body")
    one = portal_mail(mail_dir, "--count", "1")

    assert only_grace.stdout.count("  file: ") == 1
    assert "to grace@mail.example" in only_grace.stdout
    assert "Grace" in only_grace.stdout  # the text itself, with --body
    assert one.stdout.count("  file: ") == 1


def test_no_mail_says_so_and_a_bad_count_is_one_line(tmp_path: Path) -> None:
    empty = portal_mail(tmp_path / "mail")
    bad = portal_mail(tmp_path / "mail", "--count", "0")

    assert empty.returncode == 0
    assert "no mail" in empty.stdout
    assert bad.returncode == 1
    assert bad.stderr.strip() == "portal mail: --count must be at least 1"
