"""How a field is resolved by compiled plans, declared on the field itself:

    strawberry.field(resolver=..., metadata=compiled(Root(fetch_patients)))

A field without a resolver needs nothing: a plan reads it from its source by
its Python name (a row by key, any other object by attribute). A field with a
resolver and no compiled spec makes a plan impossible, and the operation runs
on the standard executor instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portal.db import Reader
from portal.services.access import Viewer
from portal.settings import Settings

if TYPE_CHECKING:
    from graph.execution.planner import FieldPlan

KEY = "compiled"


class NotCompiled(Exception):  # noqa: N818 - a signal, not an error
    """This request goes to the standard executor: a plan cannot answer it
    exactly (a refusal, a bad argument, a null where none may be), or could
    not be made. Plans only read, so running the request again is safe."""


@dataclass
class Request:
    """What a plan's resolvers get: who asks, and one connection to read with."""

    viewer: Viewer | None
    reader: Reader
    settings: Settings


@dataclass(frozen=True)
class Compute:
    """A value computed from the source alone (`needs`: the source's keys it reads)."""

    fn: Callable[[Any], Any]
    needs: tuple[str, ...] = ()
    # The same value in SQL, from (dialect, the SQL of its one `needs`
    # column), so the database can write it (see portal.db.Member.encode).
    sql: Callable[[str, str], str] | None = None


@dataclass(frozen=True)
class Batch:
    """Values for every source of a page at once, in order: a constant number
    of statements however many rows. `needs`: the source's keys it reads."""

    fn: Callable[[Request, list[Any], Mapping[str, Any], FieldPlan], Awaitable[list[Any]]]
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Root:
    """A root field: its value from the arguments and the selection below it
    (to read only the columns and counts the plan needs)."""

    fn: Callable[[Request, Mapping[str, Any], FieldPlan], Awaitable[Any]]


@dataclass(frozen=True)
class Mutate:
    """A mutation: its value from the arguments. It runs once: it may write,
    so nothing after it falls back to the standard executor, and the
    selection below it may only read what the value holds (no resolvers that
    read the database, no permissions). It may set `request.viewer` for that
    selection (a sign-in)."""

    fn: Callable[[Request, Mapping[str, Any]], Awaitable[Any]]


Spec = Compute | Batch | Root | Mutate


def compiled(spec: Spec, **metadata: Any) -> dict[str, Any]:
    """Field metadata carrying a compiled spec."""
    return {KEY: spec, **metadata}


@dataclass(frozen=True)
class Identity:
    """The source itself (a row that is also its edge's node)."""

    needs: tuple[str, ...] = field(default=())

    def __call__(self, source: Any) -> Any:
        return source


SAME_SOURCE = Compute(Identity())
