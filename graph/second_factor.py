"""A practice that requires two-step verification for staff: a member of
staff without it may sign in, but their session may only turn it on (and
see who they are, sign out, change their password, and read the practice's
name, which anyone may and every web page's header shows). Anything else is
a top-level error coded MFA_REQUIRED, whichever executor would run it."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from portal.services.access import Viewer

ALLOWED = frozenset(
    {
        "__typename",
        "me",
        "practiceName",
        "logout",
        "changePassword",
        "beginMfaEnrollment",
        "confirmMfaEnrollment",
    }
)
MESSAGE = (
    "Your practice requires two-step verification: turn it on (beginMfaEnrollment, then "
    "confirmMfaEnrollment) to continue."
)


def _root_field_names(document: DocumentNode, operation_name: str | None) -> set[str]:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    chosen = [
        o
        for o in operations
        if operation_name is None or (o.name and o.name.value == operation_name)
    ]

    def names(selection_set: SelectionSetNode, seen: frozenset[str]) -> Iterator[str]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection.name.value
            elif isinstance(selection, InlineFragmentNode):
                yield from names(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    yield from names(fragments[name].selection_set, seen | {name})

    return {n for operation in chosen for n in names(operation.selection_set, frozenset())}


def refused(viewer: Viewer | None, document: DocumentNode, operation_name: str | None) -> bool:
    """Whether this operation is refused to this viewer for want of a second step."""
    if viewer is None or not viewer.second_factor_missing:
        return False
    return not _root_field_names(document, operation_name) <= ALLOWED


def refusal() -> GraphQLError:
    return GraphQLError(MESSAGE, extensions={"code": "MFA_REQUIRED"})


class RequireSecondFactor(SchemaExtension):
    """The standard executor's gate: the operation does not run at all."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        viewer = getattr(context.context, "viewer", None)
        document = context.graphql_document
        if document is not None and refused(viewer, document, context.operation_name):
            context.result = ExecutionResult(data=None, errors=[refusal()])
        yield
