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
from strawberry.schema.schema import validate_document


class _DirectiveCounter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def enter_directive(self, node: DirectiveNode, *_: object) -> None:
        self.count += 1


@dataclass(frozen=True)
class _Shape:
    fields: int = 0
    depth: int = 0


class _Measure:
    """Fields selected and levels of nesting, with every fragment counted where
    it is spread and introspection fields counted like any other.

    Each fragment is measured once and its result reused, so a chain of
    fragments that each spread the next twice costs linear time, not 2^n.
    """

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.measured: dict[str, _Shape] = {}
        self.in_progress: set[str] = set()

    def selection_set(self, selection_set: SelectionSetNode | None) -> _Shape:
        fields = depth = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                inner = self.selection_set(selection.selection_set)
                fields += 1 + inner.fields
                # A leaf adds no level: `{ me { id } }` is one level deep.
                if selection.selection_set is not None:
                    depth = max(depth, 1 + inner.depth)
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.selection_set(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
            else:
                continue
            fields += inner.fields
            depth = max(depth, inner.depth)
        return _Shape(fields=fields, depth=depth)

    def fragment(self, name: str) -> _Shape:
        if name in self.measured:
            return self.measured[name]
        if name not in self.fragments or name in self.in_progress:
            return _Shape()  # unknown or cyclic: the validator reports it
        self.in_progress.add(name)
        shape = self.selection_set(self.fragments[name].selection_set)
        self.in_progress.discard(name)
        self.measured[name] = shape
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
    measure = _Measure(fragments)
    operations = [
        measure.selection_set(d.selection_set)
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


def checked_documents(
    max_depth: int, max_fields: int, max_directives: int, remembered: int = 1000
) -> type[SchemaExtension]:
    """The standard executor's check of a document, made once per text: the
    limits above first, so an oversized document costs one error and no
    validation, then graphql-core's validation. Keyed by the text itself (a
    str hashes once, where a parsed document would be hashed node by node),
    at most `remembered` texts, as anyone can send new ones."""
    decided: dict[str, list[GraphQLError]] = {}

    class CheckedDocuments(SchemaExtension):
        def on_validate(self) -> Iterator[None]:
            context = self.execution_context
            document = context.graphql_document
            if document is None or context.pre_execution_errors is not None:
                yield
                return
            errors = decided.get(context.query or "")
            if errors is None:
                problem = shape_problem(document, max_depth, max_fields, max_directives)
                if problem:
                    errors = [GraphQLError(problem, extensions={"code": "BAD_USER_INPUT"})]
                else:
                    errors = validate_document(
                        context.schema._schema, document, context.validation_rules
                    )
                if len(decided) >= remembered:
                    decided.clear()
                decided[context.query or ""] = errors
            context.pre_execution_errors = list(errors)
            yield

    return CheckedDocuments
