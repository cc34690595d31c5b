"""Limits on the shape of a request, checked before any resolver runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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


@dataclass
class _Shape:
    fields: int = 0
    depth: int = 0


def _measure(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> _Shape:
    """Fields selected and levels of nesting, with every fragment counted
    where it is spread and introspection fields counted like any other."""
    shape = _Shape()
    if selection_set is None:
        return shape
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            inner = _measure(selection.selection_set, fragments, seen)
            shape.fields += 1 + inner.fields
            # A leaf adds no level: `{ me { id } }` is one level deep.
            if selection.selection_set is not None:
                shape.depth = max(shape.depth, 1 + inner.depth)
            continue
        if isinstance(selection, InlineFragmentNode):
            inner = _measure(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in fragments or name in seen:  # cycles are the validator's to report
                continue
            inner = _measure(fragments[name].selection_set, fragments, seen | {name})
        else:
            continue
        shape.fields += inner.fields
        shape.depth = max(shape.depth, inner.depth)
    return shape


def shape_problem(
    document: DocumentNode, max_depth: int, max_fields: int, max_directives: int
) -> str | None:
    """Why a document is too big, or None."""
    counter = _DirectiveCounter()
    visit(document, counter)
    if counter.count > max_directives:
        return f"Too many directives: {counter.count}, at most {max_directives}."
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [
        _measure(d.selection_set, fragments)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    ]
    depth = max((shape.depth for shape in operations), default=0)
    if depth > max_depth:
        return f"The query is too deep: {depth} levels of nesting, at most {max_depth}."
    fields = sum(shape.fields for shape in operations)
    if fields > max_fields:
        return f"Too many fields: {fields}, at most {max_fields}."
    return None


def document_limits(max_depth: int, max_fields: int, max_directives: int) -> type[SchemaExtension]:
    class DocumentLimits(SchemaExtension):
        """Rejects an oversized document with one error instead of validating
        it, so a document of a thousand bad directives costs one error."""

        def on_validate(self) -> Iterator[None]:
            document = self.execution_context.graphql_document
            if document is not None:
                problem = shape_problem(document, max_depth, max_fields, max_directives)
                if problem:
                    self.execution_context.pre_execution_errors = [
                        GraphQLError(problem, extensions={"code": "BAD_USER_INPUT"})
                    ]
            yield

    return DocumentLimits
