"""Running a plan: level by level, a whole page of sources at a time.

Each object selection is completed for all its sources together, so a batch
resolver runs once per level however many rows there are, and permissions are
decided once per page. An object whose fields are all plain leaves is built by
a function generated for that selection (one dict literal per row), the loop
every list spends its time in.

A plan answers only when everything succeeds. A refusal, a bad argument, a
null where none may be or any other exception raises NotCompiled, and the
request is run again by the standard executor, which answers it with the
errors and audit rows it always has; the database being away is the one
failure that passes through (503 either way, and running it twice would only
double the wait).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import attrgetter, itemgetter
from typing import Any

from graphql.execution.values import VariableValues
from orjson import Fragment

from graph.execution.planner import (
    ATTRIBUTE,
    BATCHED,
    COMPUTED,
    ROOT,
    ROW_TYPES,
    TYPENAME,
    FieldPlan,
    ObjectPlan,
    OperationPlan,
    serialize_string,
)
from graph.execution.specs import SAME_SOURCE, Batch, Compute, Mutate, NotCompiled, Request
from portal.db import DatabaseUnavailable, RenderedList

Builder = Callable[[list[Any]], list[dict[str, Any]]]


async def run(plan: OperationPlan, variables: VariableValues, request: Request) -> dict[str, Any]:
    viewer = request.viewer
    for permissions in plan.root_permissions.values():
        for permission in permissions:
            if viewer is None or not permission.allows(viewer):
                raise NotCompiled("refused")
    data: dict[str, Any] = {}
    for field in plan.root.fields:
        if field.kind == TYPENAME:
            data[field.key] = plan.root.type_name
            continue
        if field.kind != ROOT:
            raise NotCompiled("a root field without a root resolver")
        root = field.spec
        assert root is not None and field.kind == ROOT
        value = await _call(root.fn, request, field.arguments(variables), field)  # type: ignore[arg-type]
        [data[field.key]] = await _complete(field, [value], request, variables)
    return data


class MutationFailed(Exception):  # noqa: N818 - carries the failure, is not one itself
    """A mutation ran, or began to, and then raised `problem`: the request is
    answered with that error, never run again."""

    def __init__(self, field: FieldPlan, problem: Exception) -> None:
        super().__init__(type(problem).__name__)
        self.field = field
        self.problem = problem


async def run_mutation(
    plan: OperationPlan, variables: VariableValues, request: Request
) -> dict[str, Any]:
    """The data of a planned mutation. NotCompiled only before it runs (a
    refusal, arguments a plan does not take as they are); once it runs,
    whatever goes wrong raises MutationFailed."""
    field = plan.mutation
    assert field is not None and isinstance(field.spec, Mutate)
    viewer = request.viewer
    for permission in plan.root_permissions.get(field.key, ()):
        if viewer is None or not permission.allows(viewer):
            raise NotCompiled("refused")
    try:
        arguments = field.arguments(variables)
    except Exception as problem:
        raise NotCompiled(type(problem).__name__) from problem
    try:
        value = await field.spec.fn(request, arguments)
        [written] = await _complete(field, [value], request, variables)
    except Exception as problem:
        raise MutationFailed(field, problem) from problem
    return {field.key: written}


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return await fn(*args)
    except (NotCompiled, DatabaseUnavailable):
        raise
    except Exception as problem:  # the standard executor will say what it is
        raise NotCompiled(type(problem).__name__) from problem


async def _complete(
    field: FieldPlan, values: list[Any], request: Request, variables: VariableValues
) -> list[Any]:
    """The written value of `field` for each of `values`."""
    if field.is_list and values and type(values[0]) is RenderedList:
        return [_rendered_list(field, value, request) for value in values]
    if not field.is_list:
        return await _complete_items(field, values, field.nullable, request, variables)
    items: list[Any] = []
    for value in values:
        if value is None:
            if not field.nullable:
                raise NotCompiled("null list")
        else:
            items.extend(value)
    completed = await _complete_items(field, items, field.item_nullable, request, variables)
    written: list[Any] = []
    start = 0
    for value in values:
        if value is None:
            written.append(None)
        else:
            written.append(completed[start : start + len(value)])
            start += len(value)
    return written


def _rendered_list(field: FieldPlan, value: Any, request: Request) -> Fragment:
    """A list the database wrote whole, once its permissions allow every item."""
    plan = field.object
    if type(value) is not RenderedList or plan is None or value.alias != plan.render_alias:
        raise NotCompiled("a list written for another selection")
    viewer = request.viewer
    for permission in plan.rendered_permissions():
        if viewer is None or not permission.allows_page(viewer, value.column):
            raise NotCompiled("refused")
    return Fragment(value.text)


async def _complete_items(
    field: FieldPlan,
    values: list[Any],
    nullable: bool,
    request: Request,
    variables: VariableValues,
) -> list[Any]:
    if field.object is None and field.possible is None:
        serialize = field.serialize
        written: list[Any] = []
        for value in values:
            if value is None:
                if not nullable:
                    raise NotCompiled("null leaf")
                written.append(None)
            else:
                written.append(serialize(value) if serialize is not None else value)
        return written
    present = [value for value in values if value is not None]
    if len(present) != len(values) and not nullable:
        raise NotCompiled("null object")
    if field.possible is not None:
        objects = await _complete_each_type(field.possible, present, request, variables)
    else:
        assert field.object is not None
        objects = await complete_objects(field.object, present, request, variables)
    if len(present) == len(values):
        return objects
    built = iter(objects)
    return [next(built) if value is not None else None for value in values]


def type_name_of(value: Any) -> str | None:
    """The schema type of an object a resolver returned (a Strawberry type)."""
    definition = getattr(type(value), "__strawberry_definition__", None)
    name = getattr(definition, "name", None)
    return name if isinstance(name, str) else None


async def _complete_each_type(
    possible: dict[str, ObjectPlan], sources: list[Any], request: Request, variables: Any
) -> list[Any]:
    """Objects of a union or an interface: each by the selection on its own
    type, all of one type together, in the order given."""
    of_type: dict[str, list[int]] = {}
    for index, source in enumerate(sources):
        name = type_name_of(source)
        if name not in possible:
            raise NotCompiled("an object of a type the plan does not know")
        of_type.setdefault(name, []).append(index)
    written: list[Any] = [None] * len(sources)
    for name, indexes in of_type.items():
        objects = await complete_objects(
            possible[name], [sources[i] for i in indexes], request, variables
        )
        for index, value in zip(indexes, objects, strict=True):
            written[index] = value
    return written


async def complete_objects(
    plan: ObjectPlan, sources: list[Any], request: Request, variables: VariableValues
) -> list[Any]:
    """The written objects (dicts, or JSON the database wrote) of a page of sources."""
    if not sources:
        return []
    by_key = isinstance(sources[0], ROW_TYPES)
    if plan.permissions:
        getter = itemgetter if by_key else attrgetter
        viewer = request.viewer

        def column(name: str) -> Iterable[Any]:
            return map(getter(name), sources)

        for permission in plan.permissions:
            if viewer is None or not permission.allows_page(viewer, column):
                raise NotCompiled("refused")
    if by_key and plan.render is not None and sources[0].get(plan.render_alias) is not None:
        # Written as JSON by the database already, in the statement that read it.
        alias = plan.render_alias
        return [Fragment(source[alias]) for source in sources]
    builder = _builder(plan, by_key)
    if builder is not None:
        return builder(sources)
    # The plain leaves written in one loop, with a place kept for each of the
    # other fields (so keys stay in the order asked), which are filled below.
    build_leaves = _builder(plan, by_key, partial=True)
    assert build_leaves is not None  # a partial builder is always made
    results = build_leaves(sources)
    for field in plan.fields:
        if _is_plain_leaf(field):
            continue
        if field.kind == ATTRIBUTE:
            read_field = (itemgetter if by_key else attrgetter)(field.python_name)
            values = [read_field(source) for source in sources]
        elif field.spec is SAME_SOURCE:
            values = sources
        elif field.kind == COMPUTED:
            assert isinstance(field.spec, Compute)
            compute = field.spec.fn
            try:
                values = [compute(source) for source in sources]
            except Exception as problem:
                raise NotCompiled(type(problem).__name__) from problem
        elif field.kind == BATCHED:
            assert isinstance(field.spec, Batch)
            batch = field.spec.fn
            values = await _call(batch, request, sources, field.arguments(variables), field)
            if len(values) != len(sources):
                raise NotCompiled("a batch resolver answered for another number of sources")
        else:
            raise NotCompiled("a root resolver below the root")
        written = await _complete(field, values, request, variables)
        key = field.key
        for result, value in zip(results, written, strict=True):
            result[key] = value
    return results


def _is_plain_leaf(field: FieldPlan) -> bool:
    return field.kind == TYPENAME or (
        field.kind == ATTRIBUTE
        and field.object is None
        and field.possible is None
        and not field.is_list
    )


def _builder(plan: ObjectPlan, by_key: bool, partial: bool = False) -> Builder | None:
    """A function writing this selection for a list of sources in one loop,
    when every field is a plain leaf read from the source (`partial`: the
    plain leaves, and None in the place of every other field); made once."""
    cache = plan.builders
    if (by_key, partial) not in cache:
        cache[by_key, partial] = _generate(plan, by_key, partial)
    return cache[by_key, partial]


def _generate(plan: ObjectPlan, by_key: bool, partial: bool) -> Builder | None:
    if not partial and not all(_is_plain_leaf(field) for field in plan.fields):
        return None
    namespace: dict[str, Any] = {"NotCompiled": NotCompiled, "string": serialize_string}
    body = ["def build(sources):", "    out = []", "    for s in sources:"]
    entries = []
    for index, field in enumerate(plan.fields):
        if field.kind == TYPENAME:
            entries.append(f"{field.key!r}: {plan.type_name!r}")
            continue
        if not _is_plain_leaf(field):
            entries.append(f"{field.key!r}: None")  # filled in afterwards
            continue
        value = f"v{index}"
        # Keys and names are GraphQL names and Python identifiers: safe to inline.
        read = f"s[{field.python_name!r}]" if by_key else f"s.{field.python_name}"
        body.append(f"        {value} = {read}")
        if field.serialize is serialize_string:
            written = f"{value} if type({value}) is str else string({value})"
        elif field.serialize is not None:
            namespace[f"serialize{index}"] = field.serialize
            written = f"serialize{index}({value})"
        else:
            written = value
        if field.nullable:
            written = f"None if {value} is None else {written}"
        else:
            body.append(f"        if {value} is None: raise NotCompiled('null leaf')")
        entries.append(f"{field.key!r}: {written}")
    body.append("        out.append({" + ", ".join(entries) + "})")
    body.append("    return out")
    exec("\n".join(body), namespace)  # noqa: S102 - generated from validated names only
    return namespace["build"]  # type: ignore[no-any-return]
