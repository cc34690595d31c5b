"""Errors: the `Error` interface for expected outcomes, and top-level errors
(with `extensions.code`) for what is not a mutation's expected outcome."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.utils.str_converters import to_camel_case

from portal.services import errors as service


class TopLevelError(GraphQLError):
    """An error meant for the caller, shown unmasked with its code."""

    code = "BAD_USER_INPUT"
    default_message = "The request is not valid."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message, extensions={"code": self.code})


class Unauthenticated(TopLevelError):
    code = "UNAUTHENTICATED"
    default_message = "Sign in first."


class Forbidden(TopLevelError):
    code = "FORBIDDEN"
    default_message = "You are not allowed to do this."


class BadUserInput(TopLevelError):
    code = "BAD_USER_INPUT"


@strawberry.enum(name="ErrorCode", description="Why a mutation did not do what was asked.")
class ErrorCode(Enum):
    VALIDATION = strawberry.enum_value(
        service.ErrorCode.VALIDATION.value,
        description="The input failed validation; `field` on the error names the input field "
        "where there is one.",
    )
    NOT_FOUND = strawberry.enum_value(
        service.ErrorCode.NOT_FOUND.value, description="No such record in the caller's practice."
    )
    EMAIL_TAKEN = strawberry.enum_value(
        service.ErrorCode.EMAIL_TAKEN.value,
        description="Another account or patient of this practice already uses that email address.",
    )
    MISSING_EMAIL = strawberry.enum_value(
        service.ErrorCode.MISSING_EMAIL.value,
        description="The patient has no email address to send to.",
    )
    ALREADY_SIGNED_UP = strawberry.enum_value(
        service.ErrorCode.ALREADY_SIGNED_UP.value,
        description="The patient already has a portal account.",
    )
    NOT_SIGNED_UP = strawberry.enum_value(
        service.ErrorCode.NOT_SIGNED_UP.value, description="The patient has no portal account yet."
    )
    INVALID_TOKEN = strawberry.enum_value(
        service.ErrorCode.INVALID_TOKEN.value,
        description="The link or token is unknown, already used, replaced by a newer one, "
        "revoked or expired.",
    )
    PASSWORD_MISMATCH = strawberry.enum_value(
        service.ErrorCode.PASSWORD_MISMATCH.value,
        description="The password and its confirmation differ.",
    )
    WEAK_PASSWORD = strawberry.enum_value(
        service.ErrorCode.WEAK_PASSWORD.value,
        description="The password is too short, too long, too common, or too close to the "
        "account's own details.",
    )
    INVALID_CREDENTIALS = strawberry.enum_value(
        service.ErrorCode.INVALID_CREDENTIALS.value,
        description="The email address or the password is wrong (never says which).",
    )
    INVALID_CODE = strawberry.enum_value(
        service.ErrorCode.INVALID_CODE.value,
        description="The verification code is wrong, expired, used, or has had too many "
        "attempts (never says which).",
    )
    RATE_LIMITED = strawberry.enum_value(
        service.ErrorCode.RATE_LIMITED.value,
        description="Too many attempts in a short time; try again later.",
    )
    INVALID_EXPIRY = strawberry.enum_value(
        service.ErrorCode.INVALID_EXPIRY.value,
        description="The chosen expiry is in the past or too far in the future.",
    )
    ACCOUNT_DISABLED = strawberry.enum_value(
        service.ErrorCode.ACCOUNT_DISABLED.value,
        description="The account is disabled or its portal access is revoked. Said only to a "
        "caller who gave the right password.",
    )
    MFA_ALREADY_ENABLED = strawberry.enum_value(
        service.ErrorCode.MFA_ALREADY_ENABLED.value,
        description="Two-step verification is already on for this account.",
    )
    NOT_ALLOWED = strawberry.enum_value(
        service.ErrorCode.NOT_ALLOWED.value,
        description="Not allowed here: e.g. disabling your own account, or leaving the practice "
        "without an active ADMIN.",
    )


@strawberry.interface(
    description="Every expected failure of a mutation is a type that implements Error."
)
class Error:
    code: ErrorCode
    message: str


@strawberry.type(description="The input failed validation.")
class ValidationError(Error):
    field: str | None = strawberry.field(
        description="The input field that failed, as named in the operation's input."
    )


@strawberry.type(description="No such record in the caller's practice.")
class NotFoundError(Error):
    pass


@strawberry.type(description="The email address or the password is wrong (never says which).")
class InvalidCredentialsError(Error):
    pass


@strawberry.type(description="Another account of this practice already uses that email address.")
class EmailTakenError(Error):
    pass


@strawberry.type(description="The patient has no email address to send to.")
class MissingEmailError(Error):
    pass


@strawberry.type(description="The patient already has a portal account.")
class AlreadySignedUpError(Error):
    pass


@strawberry.type(
    description="The link or token is unknown, already used, replaced, revoked or expired."
)
class InvalidTokenError(Error):
    pass


@strawberry.type(description="The password and its confirmation differ.")
class PasswordMismatchError(Error):
    pass


@strawberry.type(
    description="The password is too short, too long, too common, or too close to the "
    "account's own details; `message` says which."
)
class WeakPasswordError(Error):
    pass


@strawberry.type(description="The patient has no portal account yet.")
class NotSignedUpError(Error):
    pass


@strawberry.type(
    description="The verification code is wrong, expired, used, or has had too many attempts "
    "(never says which)."
)
class InvalidCodeError(Error):
    pass


@strawberry.type(description="The chosen expiry is in the past or too far in the future.")
class InvalidExpiryError(Error):
    pass


@strawberry.type(description="Too many attempts in a short time; try again later.")
class RateLimitedError(Error):
    retry_after_seconds: int = strawberry.field(description="How long to wait before trying again.")


@strawberry.type(
    description="The account is disabled or its portal access is revoked: ask the practice."
)
class AccountDisabledError(Error):
    pass


@strawberry.type(description="Not allowed here (your own account, or the practice's last ADMIN).")
class NotAllowedError(Error):
    pass


@strawberry.type(description="Two-step verification is already on for this account.")
class MfaAlreadyEnabledError(Error):
    pass


_ERROR_TYPES: dict[service.ErrorCode, type[Error]] = {
    service.ErrorCode.NOT_FOUND: NotFoundError,
    service.ErrorCode.INVALID_CREDENTIALS: InvalidCredentialsError,
    service.ErrorCode.EMAIL_TAKEN: EmailTakenError,
    service.ErrorCode.MISSING_EMAIL: MissingEmailError,
    service.ErrorCode.ALREADY_SIGNED_UP: AlreadySignedUpError,
    service.ErrorCode.INVALID_TOKEN: InvalidTokenError,
    service.ErrorCode.PASSWORD_MISMATCH: PasswordMismatchError,
    service.ErrorCode.WEAK_PASSWORD: WeakPasswordError,
    service.ErrorCode.NOT_SIGNED_UP: NotSignedUpError,
    service.ErrorCode.INVALID_CODE: InvalidCodeError,
    service.ErrorCode.INVALID_EXPIRY: InvalidExpiryError,
    service.ErrorCode.ACCOUNT_DISABLED: AccountDisabledError,
    service.ErrorCode.NOT_ALLOWED: NotAllowedError,
    service.ErrorCode.MFA_ALREADY_ENABLED: MfaAlreadyEnabledError,
}


def error_result(failure: service.ServiceError) -> Any:
    """The union member that reports an expected service failure. Typed Any:
    each resolver's union lists the members its service can raise, which the
    type checker cannot follow from the exception's code."""
    code = ErrorCode(failure.code.value)
    if failure.code is service.ErrorCode.VALIDATION:
        field = to_camel_case(failure.field) if failure.field else None
        return ValidationError(code=code, message=failure.message, field=field)
    if isinstance(failure, service.RateLimited):
        return RateLimitedError(
            code=code, message=failure.message, retry_after_seconds=failure.retry_after_seconds
        )
    return _ERROR_TYPES[failure.code](code=code, message=failure.message)
