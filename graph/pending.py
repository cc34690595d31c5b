"""Contract operations whose flows are not built yet.

They exist so the schema keeps the public contract; each answers with a
top-level error until its issue lands (recovery: #4).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import InvalidTokenError, TopLevelError


class NotAvailableYet(TopLevelError):
    code = "NOT_AVAILABLE"
    default_message = "This operation is not available yet."


@strawberry.type
class ResetLinkGenerated:
    url: str = strawberry.field(
        description="The link to hand to the patient; shown only this once."
    )
    expires_at: datetime


@strawberry.type
class VerificationCodeSent:
    message: str = strawberry.field(
        description="The same words whether or not an account has that email."
    )


@strawberry.type
class ResetCodeVerified:
    token: str = strawberry.field(description="A short-lived token for `resetPassword`.")
    expires_at: datetime


@strawberry.type
class PasswordReset:
    email: str


@strawberry.type
class PasswordChanged:
    email: str


GenerateResetLinkResult = Annotated[
    ResetLinkGenerated | InvalidTokenError, strawberry.union("GenerateResetLinkResult")
]
RequestVerificationCodeResult = Annotated[
    VerificationCodeSent | InvalidTokenError, strawberry.union("RequestVerificationCodeResult")
]
VerifyResetCodeResult = Annotated[
    ResetCodeVerified | InvalidTokenError, strawberry.union("VerifyResetCodeResult")
]
ResetPasswordResult = Annotated[
    PasswordReset | InvalidTokenError, strawberry.union("ResetPasswordResult")
]
ChangePasswordResult = Annotated[
    PasswordChanged | InvalidTokenError, strawberry.union("ChangePasswordResult")
]


def generate_reset_link(
    info: Info, patient_id: strawberry.ID, expires_at: datetime
) -> GenerateResetLinkResult:
    raise NotAvailableYet()


def request_verification_code(
    info: Info, practice: str, email: str
) -> RequestVerificationCodeResult:
    raise NotAvailableYet()


def verify_reset_code(info: Info, practice: str, email: str, code: str) -> VerifyResetCodeResult:
    raise NotAvailableYet()


def reset_password(
    info: Info, token: str, password: str, password_confirmation: str
) -> ResetPasswordResult:
    raise NotAvailableYet()


def change_password(
    info: Info, current_password: str, password: str, password_confirmation: str
) -> ChangePasswordResult:
    raise NotAvailableYet()
