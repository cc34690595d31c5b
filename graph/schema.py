"""Assembles Query and Mutation from the domains; `schema` is the export target."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
)
from strawberry.extensions.max_aliases import create_validator as create_aliases_rule
from strawberry.types import ExecutionContext

from graph.audit.queries import audit_events, fetch_audit_events
from graph.auth.mutations.change_password import change_password
from graph.auth.mutations.login import complete_mfa_login, login, run_login
from graph.auth.mutations.logout import logout
from graph.auth.mutations.mfa_enrollment import begin_mfa_enrollment, confirm_mfa_enrollment
from graph.auth.mutations.mfa_management import (
    disable_mfa,
    reset_staff_mfa,
    set_staff_mfa_required,
)
from graph.auth.mutations.request_verification_code import request_verification_code
from graph.auth.mutations.reset_password import reset_password
from graph.auth.mutations.verify_reset_code import verify_reset_code
from graph.auth.queries import fetch_me, me
from graph.auth.sessions import end_other_sessions, end_session, fetch_my_sessions, my_sessions
from graph.errors import TopLevelError
from graph.execution.specs import Mutate, Root, compiled
from graph.limits import checked_documents
from graph.patients.mutations.create_patient import create_patient
from graph.patients.mutations.update_patient import update_patient
from graph.patients.queries import fetch_patient, fetch_patients, patient, patients
from graph.permissions import IsAdmin, IsSignedIn, IsStaff
from graph.portal.mutations.create_account import create_account
from graph.portal.mutations.generate_reset_link import generate_reset_link
from graph.portal.mutations.restore_portal_access import restore_portal_access
from graph.portal.mutations.revoke_portal_access import revoke_portal_access
from graph.portal.mutations.send_invitation import send_invitation
from graph.portal.queries import (
    fetch_invitation,
    fetch_reset_link,
    fetch_reset_link_max_days,
    invitation,
    reset_link,
    reset_link_max_days,
)
from graph.practices.queries import fetch_practice_name, practice_name
from graph.second_factor import RequireSecondFactor
from graph.staff.mutations.disable_account import disable_account
from graph.staff.mutations.enable_account import enable_account
from graph.staff.mutations.invite_staff import invite_staff
from graph.staff.queries import (
    fetch_pending_staff_invitations,
    fetch_staff,
    pending_staff_invitations,
    staff,
)
from portal.db import is_unavailable
from portal.http import UNAVAILABLE_MESSAGE
from portal.settings import Settings

logger = logging.getLogger("portal.graphql")


@strawberry.type
class Query:
    me = strawberry.field(
        resolver=me,
        description="The signed-in account, or null when the caller is not signed in.",
        metadata=compiled(Root(fetch_me)),
    )
    patients = strawberry.field(
        resolver=patients,
        permission_classes=[IsStaff],
        metadata=compiled(Root(fetch_patients)),
        description="ADMIN and CLINICIAN. The caller's practice's patients, ordered by last "
        "name, then first name. `search` matches any part of the name, the email or the phone "
        "number, ignoring case. `first` is between 1 and 100.",
    )
    patient = strawberry.field(
        resolver=patient,
        metadata=compiled(Root(fetch_patient)),
        description="Staff of the patient's practice, or the patient themself; null when not "
        "found or not visible.",
    )
    audit_events = strawberry.field(
        resolver=audit_events,
        permission_classes=[IsAdmin],
        metadata=compiled(Root(fetch_audit_events)),
        description="ADMIN. The practice's audit trail, newest first; only the events about "
        "one patient when `patientId` is given. `first` is between 1 and 100. Null, with a "
        "FORBIDDEN error, for anyone else (so the rest of a query survives).",
    )
    my_sessions = strawberry.field(
        resolver=my_sessions,
        permission_classes=[IsSignedIn],
        metadata=compiled(Root(fetch_my_sessions)),
        description="Signed in. The caller's own open sessions, the most recently used first.",
    )
    staff = strawberry.field(
        resolver=staff,
        permission_classes=[IsAdmin],
        metadata=compiled(Root(fetch_staff)),
        description="ADMIN. The practice's staff accounts (ADMIN and CLINICIAN), ordered by "
        "email. `first` is between 1 and 100.",
    )
    pending_staff_invitations = strawberry.field(
        resolver=pending_staff_invitations,
        permission_classes=[IsAdmin],
        metadata=compiled(Root(fetch_pending_staff_invitations)),
        description="ADMIN. The practice's staff invitations that can still be used, the "
        "latest to expire first (at most 100). Null, with a FORBIDDEN error, for anyone else.",
    )
    invitation = strawberry.field(
        resolver=invitation,
        metadata=compiled(Root(fetch_invitation)),
        description="Anyone. What a sign-up link is for; null when the token is unknown.",
    )
    reset_link_max_days = strawberry.field(
        resolver=reset_link_max_days,
        permission_classes=[IsAdmin],
        metadata=compiled(Root(fetch_reset_link_max_days)),
        description="ADMIN. How many days ahead `generateResetLink` accepts an `expiresAt`, "
        "so a date picker can offer no later day. Null, with a FORBIDDEN error, for anyone "
        "else.",
    )
    reset_link = strawberry.field(
        resolver=reset_link,
        metadata=compiled(Root(fetch_reset_link)),
        description="Anyone. What a password reset link (`generateResetLink`) is for; null "
        "when the token is unknown. Changes nothing.",
    )
    practice_name = strawberry.field(
        resolver=practice_name,
        metadata=compiled(Root(fetch_practice_name)),
        description="Anyone. The display name of the practice with this slug (shown on its "
        "portal pages, signed in or not); null when no practice has it.",
    )


@strawberry.type
class Mutation:
    create_patient = strawberry.mutation(
        resolver=create_patient,
        permission_classes=[IsAdmin],
        description="ADMIN. Creates a patient profile in the caller's practice.",
    )
    update_patient = strawberry.mutation(
        resolver=update_patient,
        permission_classes=[IsAdmin],
        description="ADMIN. Changes a patient profile; omitted fields stay as they are.",
    )
    send_invitation = strawberry.mutation(
        resolver=send_invitation,
        permission_classes=[IsAdmin],
        description="ADMIN. Emails the patient a link to create their portal account, to the "
        "email on their profile. Sending again replaces the earlier link.",
    )
    generate_reset_link = strawberry.mutation(
        resolver=generate_reset_link,
        permission_classes=[IsAdmin],
        description="ADMIN. A link with which a signed-up patient sets a new password, valid "
        "until `expiresAt`. Generating a new one replaces the earlier link.",
    )
    revoke_portal_access = strawberry.mutation(
        resolver=revoke_portal_access,
        permission_classes=[IsAdmin],
        description="ADMIN. Revokes a patient's portal access in one transaction: cancels a "
        "pending invitation; disables the account, ends its sessions and kills its codes, reset "
        "tokens and links. Doing it again changes nothing. No email is sent.",
    )
    restore_portal_access = strawberry.mutation(
        resolver=restore_portal_access,
        permission_classes=[IsAdmin],
        description="ADMIN. Lets a revoked patient's account sign in again with its password. "
        "No email is sent.",
    )
    create_account = strawberry.mutation(
        resolver=create_account,
        description="Anyone holding an invitation token. Creates the portal account; does not "
        "sign in.",
    )
    login = strawberry.mutation(
        resolver=login,
        metadata=compiled(Mutate(run_login)),
        description="Anyone. Signs in to the practice whose slug is given.",
    )
    logout = strawberry.mutation(
        resolver=logout, description="Ends the caller's session. True when a session was ended."
    )
    request_verification_code = strawberry.mutation(
        resolver=request_verification_code,
        description="Anyone. Emails a verification code when an account has that email; "
        "answers the same either way.",
    )
    verify_reset_code = strawberry.mutation(
        resolver=verify_reset_code,
        description="Anyone. Trades a right code for a short-lived reset token.",
    )
    reset_password = strawberry.mutation(
        resolver=reset_password,
        description="Anyone holding a reset token: from `verifyResetCode`, or from a link made "
        "by `generateResetLink`. Sets the new password and ends every session of the account.",
    )
    invite_staff = strawberry.mutation(
        resolver=invite_staff,
        permission_classes=[IsAdmin],
        description="ADMIN. Emails a new staff member a link to create their account with the "
        "given role (ADMIN or CLINICIAN) through `createAccount`. Sending again to the same "
        "address replaces the earlier link.",
    )
    disable_account = strawberry.mutation(
        resolver=disable_account,
        permission_classes=[IsAdmin],
        description="ADMIN. Disables a staff account of the practice and ends its sessions. "
        "NOT_ALLOWED for the caller's own account and for the practice's last active ADMIN.",
    )
    enable_account = strawberry.mutation(
        resolver=enable_account,
        permission_classes=[IsAdmin],
        description="ADMIN. Lets a disabled staff account sign in again.",
    )
    complete_mfa_login = strawberry.mutation(
        resolver=complete_mfa_login,
        description="Anyone holding a challenge from `login`. Finishes signing in with a current "
        "code from the authenticator app or an unused recovery code.",
    )
    begin_mfa_enrollment = strawberry.mutation(
        resolver=begin_mfa_enrollment,
        permission_classes=[IsSignedIn],
        description="Signed in. Starts turning on two-step verification with an authenticator "
        "app: a new secret, not in force until `confirmMfaEnrollment`.",
    )
    confirm_mfa_enrollment = strawberry.mutation(
        resolver=confirm_mfa_enrollment,
        permission_classes=[IsSignedIn],
        description="Signed in. Turns two-step verification on with a current code from the new "
        "secret; returns ten recovery codes, shown only this once, and ends the caller's other "
        "sessions.",
    )
    disable_mfa = strawberry.mutation(
        resolver=disable_mfa,
        permission_classes=[IsSignedIn],
        description="Signed in. Turns the caller's two-step verification off, with their "
        "password (a wrong one counts toward the sign-in lockout).",
    )
    reset_staff_mfa = strawberry.mutation(
        resolver=reset_staff_mfa,
        permission_classes=[IsAdmin],
        description="ADMIN. Turns off two-step verification of a member of staff who lost their "
        "device; their sessions end.",
    )
    set_staff_mfa_required = strawberry.mutation(
        resolver=set_staff_mfa_required,
        permission_classes=[IsAdmin],
        description="ADMIN. Whether every ADMIN and CLINICIAN must use two-step verification. "
        "Turning it on needs the caller's own on (NOT_ALLOWED otherwise).",
    )
    end_session = strawberry.mutation(
        resolver=end_session,
        permission_classes=[IsSignedIn],
        description="Signed in. Ends one of the caller's own sessions; false when there is no "
        "such session of theirs.",
    )
    end_other_sessions = strawberry.mutation(
        resolver=end_other_sessions,
        permission_classes=[IsSignedIn],
        description="Signed in. Ends every session of the caller but this one; returns how many "
        "ended.",
    )
    change_password = strawberry.mutation(
        resolver=change_password,
        permission_classes=[IsSignedIn],
        description="Signed in. Changes the caller's own password.",
    )


def is_expected(error: GraphQLError) -> bool:
    """Errors about the request itself (parsing, validation, variable values:
    all raised before any resolver runs, so without a path) and our own
    top-level errors reach the caller as they are; anything else is a bug
    and is masked."""
    return (
        error.path is None
        or error.original_error is None
        or isinstance(error.original_error, TopLevelError)
    )


class MaskUnexpectedErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(
            should_mask_error=lambda error: not is_expected(error),
            error_message="Something went wrong on our side.",
        )

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        if is_unavailable(error.original_error):
            masked.message = UNAVAILABLE_MESSAGE
            masked.extensions = {"code": "SERVICE_UNAVAILABLE"}
        else:
            masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


class PortalSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Exception messages can carry patient data (a failed INSERT quotes its
        # values), so only the type and the stack are logged.
        for error in errors:
            # The database being away is logged once by portal.db, not per field.
            if is_expected(error) or is_unavailable(error.original_error):
                continue
            original = error.original_error
            assert original is not None
            stack = "".join(traceback.format_tb(original.__traceback__))
            logger.error(
                "unexpected %s at %s\n%s", type(original).__name__, error.path, stack.rstrip()
            )


DOCUMENT_CACHE_SIZE = 1000


def build_schema(settings: Settings) -> PortalSchema:
    """The schema with the request limits and introspection policy of `settings`."""
    # One rule class for the schema's life (MaxAliasesLimiter makes one per request).
    aliases_rule = create_aliases_rule(settings.max_aliases)
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        checked_documents(
            max_depth=settings.max_depth,
            max_fields=settings.max_fields,
            max_directives=settings.max_directives,
            remembered=DOCUMENT_CACHE_SIZE,
        ),
        lambda: AddValidationRules([aliases_rule]),
        # The standard executor (mutations, mostly) parses a document it has
        # seen before from cache (and checks it once, above): parsing and
        # validating cost more than the rest of a sign-in but its hash.
        lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        MaskUnexpectedErrors,
        RequireSecondFactor,
    ]
    if settings.is_production:
        extensions.append(DisableIntrospection)
    return PortalSchema(query=Query, mutation=Mutation, extensions=extensions)


# The export target of `make schema`; the served schema comes from build_schema.
schema = build_schema(Settings())
