"""Turning two-step verification on: a secret to scan, then a code from it."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import InvalidCodeError, MfaAlreadyEnabledError, error_result
from portal.services import mfa
from portal.services.errors import ServiceError


@strawberry.type(
    description="A new authenticator secret, not in force until `confirmMfaEnrollment`."
)
class MfaEnrollment:
    secret: str = strawberry.field(
        description="Base32, for typing into an authenticator app by hand."
    )
    otpauth_uri: str = strawberry.field(description="An otpauth://totp/ URI for a QR code.")
    qr_code: str = strawberry.field(
        description="`otpauthUri` as a QR code: an SVG image in a `data:` URI, for an `<img>`."
    )


@strawberry.type
class MfaEnabled:
    recovery_codes: list[str] = strawberry.field(
        description="Ten single-use recovery codes, shown only this once."
    )


ConfirmMfaEnrollmentResult = Annotated[
    MfaEnabled | InvalidCodeError | MfaAlreadyEnabledError,
    strawberry.union("ConfirmMfaEnrollmentResult"),
]


async def begin_mfa_enrollment(info: Info) -> MfaEnrollment:
    assert info.context.viewer is not None  # guaranteed by IsSignedIn
    begun = await mfa.begin_enrollment(info.context.viewer, info.context.settings)
    return MfaEnrollment(secret=begun.secret, otpauth_uri=begun.otpauth_uri, qr_code=begun.qr_code)


async def confirm_mfa_enrollment(info: Info, code: str) -> ConfirmMfaEnrollmentResult:
    assert info.context.viewer is not None  # guaranteed by IsSignedIn
    try:
        codes = await mfa.confirm_enrollment(info.context.viewer, code, info.context.settings)
    except ServiceError as failure:
        return error_result(failure)  # type: ignore[no-any-return]
    return MfaEnabled(recovery_codes=codes)
