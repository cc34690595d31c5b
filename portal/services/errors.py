"""The expected ways a request can fail, independent of any API layer."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    VALIDATION = "VALIDATION"
    NOT_FOUND = "NOT_FOUND"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    MISSING_EMAIL = "MISSING_EMAIL"
    ALREADY_SIGNED_UP = "ALREADY_SIGNED_UP"
    NOT_SIGNED_UP = "NOT_SIGNED_UP"
    INVALID_TOKEN = "INVALID_TOKEN"
    PASSWORD_MISMATCH = "PASSWORD_MISMATCH"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INVALID_CODE = "INVALID_CODE"
    RATE_LIMITED = "RATE_LIMITED"
    INVALID_EXPIRY = "INVALID_EXPIRY"
    ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
    NOT_ALLOWED = "NOT_ALLOWED"
    MFA_ALREADY_ENABLED = "MFA_ALREADY_ENABLED"


class ServiceError(Exception):
    """An expected failure: the caller shows `message`; nothing was changed."""

    code: ErrorCode = ErrorCode.VALIDATION

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(ServiceError):
    code = ErrorCode.VALIDATION


class NotFound(ServiceError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, message: str = "No such record in your practice.") -> None:
        super().__init__(message)


class EmailTaken(ServiceError):
    code = ErrorCode.EMAIL_TAKEN


class WeakPassword(ServiceError):
    code = ErrorCode.WEAK_PASSWORD


class InvalidCredentials(ServiceError):
    code = ErrorCode.INVALID_CREDENTIALS

    def __init__(self, message: str = "The email address or the password is wrong.") -> None:
        super().__init__(message)


class BadInput(Exception):
    """A malformed argument to a query (not a mutation's expected outcome)."""


class MissingEmail(ServiceError):
    code = ErrorCode.MISSING_EMAIL


class AlreadySignedUp(ServiceError):
    code = ErrorCode.ALREADY_SIGNED_UP


class InvalidToken(ServiceError):
    code = ErrorCode.INVALID_TOKEN

    def __init__(self) -> None:
        super().__init__(
            "This link is not valid: it was used, replaced by a newer one, or has expired."
        )


class PasswordMismatch(ServiceError):
    code = ErrorCode.PASSWORD_MISMATCH

    def __init__(self) -> None:
        super().__init__("The password and its confirmation differ.", field="password_confirmation")


class NotSignedUp(ServiceError):
    code = ErrorCode.NOT_SIGNED_UP


class InvalidCode(ServiceError):
    code = ErrorCode.INVALID_CODE

    def __init__(self) -> None:
        super().__init__("That code is not valid. Check the latest email, or ask for a new code.")


class InvalidExpiry(ServiceError):
    code = ErrorCode.INVALID_EXPIRY


class AccountDisabled(ServiceError):
    code = ErrorCode.ACCOUNT_DISABLED


class NotAllowed(ServiceError):
    code = ErrorCode.NOT_ALLOWED


class MfaAlreadyEnabled(ServiceError):
    code = ErrorCode.MFA_ALREADY_ENABLED


class RateLimited(ServiceError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("Too many attempts in a short time. Try again a little later.")
        self.retry_after_seconds = retry_after_seconds
