"""Limits on the shape of a request, checked before any resolver runs."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Visitor,
    visit,
)
from strawberry.extensions import SchemaExtension


class _DirectiveCounter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def enter_directive(self, node: DirectiveNode, *_: object) -> None:
        self.count += 1


def _field_count(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> int:
    """Fields selected, with every fragment spread counted where it is spread."""
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += 1 + _field_count(selection.selection_set, fragments, seen)
        elif isinstance(selection, InlineFragmentNode):
            total += _field_count(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:  # cycles are the validator's to report
                total += _field_count(fragments[name].selection_set, fragments, seen | {name})
    return total


def shape_problem(document: DocumentNode, max_fields: int, max_directives: int) -> str | None:
    """Why a document is too big, or None."""
    counter = _DirectiveCounter()
    visit(document, counter)
    if counter.count > max_directives:
        return f"Too many directives: {counter.count}, at most {max_directives}."
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    fields = sum(
        _field_count(d.selection_set, fragments)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )
    if fields > max_fields:
        return f"Too many fields: {fields}, at most {max_fields}."
    return None


def document_limits(max_fields: int, max_directives: int) -> type[SchemaExtension]:
    class DocumentLimits(SchemaExtension):
        """Rejects an oversized document with one error instead of validating
        it, so a document of a thousand bad directives costs one error."""

        def on_validate(self) -> Iterator[None]:
            document = self.execution_context.graphql_document
            if document is not None:
                problem = shape_problem(document, max_fields, max_directives)
                if problem:
                    self.execution_context.pre_execution_errors = [
                        GraphQLError(problem, extensions={"code": "BAD_USER_INPUT"})
                    ]
            yield

    return DocumentLimits
