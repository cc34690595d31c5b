"""From a document to an execution plan.

A document is parsed and validated once, with every rule and limit the
standard executor applies, and kept by its hash. A plan is made for one of its
query operations: fields collected (fragments merged, `@skip`/`@include`
decided), each field bound to how it is read (`graph.execution.specs`), its
permissions and how its value is written. Plans depend on variables only
through `@skip`/`@include`, so most documents have exactly one.

A mutation is planned when it is the operation's one field and declares a
`Mutate` spec, and what it selects is read from its value alone.

Anything a plan cannot do exactly as the standard executor would (other
mutations, introspection, a field resolved without a compiled spec, a
document that does not validate) gives no plan, and the request runs on the
standard executor.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

import asyncpg
from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    VariableNode,
    Visitor,
    parse,
    specified_rules,
    validate,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.type.definition import is_required_argument
from graphql.utilities import value_from_ast
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule

from graph.execution.specs import KEY, SAME_SOURCE, Batch, Compute, Mutate, NotCompiled, Root
from graph.limits import shape_problem
from graph.permissions import FieldPermission
from portal.db import Member, Rendering
from portal.settings import Settings

# Sources read by key: rows from the database. Anything else by attribute.
ROW_TYPES = (dict, asyncpg.Record)

ATTRIBUTE, COMPUTED, BATCHED, ROOT, TYPENAME, MUTATE = range(6)
ABSENT = object()
# Leaves the database writes as JSON exactly as the standard executor would
# (a timestamp's text differs: trailing zeros, time zone), and how many pairs
# one json_build_object takes.
RENDERABLE = {"ID", "String", "Date", "Int"}
MAX_RENDERED_FIELDS = 50
_render_aliases = itertools.count(1)
# Variables a request may give as they come from JSON, checked without graphql-core.
PLAIN_SCALARS = {"Int", "String", "ID", "Boolean"}
INT_RANGE = range(-(2**31), 2**31)


def serialize_string(value: Any) -> Any:
    return value if type(value) is str else GraphQLString.serialize(value)


def _serializer(scalar: GraphQLScalarType | GraphQLEnumType) -> Callable[[Any], Any] | None:
    """How a leaf is written, as the standard executor writes it; None: as it is."""
    if isinstance(scalar, GraphQLScalarType):
        if scalar.name == "String":
            return serialize_string
        if scalar.name == "ID":
            return str
        return scalar.serialize
    return _enum_serializer(scalar)


def _enum_serializer(enum: GraphQLEnumType) -> Callable[[Any], Any]:
    """An enum's names looked up by value, the standard way for anything else."""
    names: dict[Any, str] = {}
    for name, definition in enum.values.items():
        with contextlib.suppress(TypeError):  # an unhashable value: left to serialize
            names.setdefault(definition.value, name)

    def serialize(value: Any) -> Any:
        try:
            return names[value]
        except (KeyError, TypeError):
            return enum.serialize(value)

    return serialize


@dataclass(eq=False)
class ObjectPlan:
    """The fields selected on one object type."""

    type_name: str
    fields: list[FieldPlan]
    # Permissions of its fields, each asked once per page of sources.
    permissions: list[FieldPermission]
    # Generated writers of this selection, by whether sources are read by key
    # and whether they write only its plain leaves (keeping places for the rest).
    builders: dict[tuple[bool, bool], Any] = field(default_factory=dict)
    # When every field is a leaf or an object the database can write from the
    # row: the members of the JSON text it writes under `render_alias`.
    render: Rendering | None = None
    render_alias: str = ""

    def child(self, *names: str) -> FieldPlan | None:
        """The first selected field with this schema name (and so on down)."""
        plan: ObjectPlan | None = self
        found: FieldPlan | None = None
        for name in names:
            found = next((f for f in plan.fields if f.name == name), None) if plan else None
            if found is None:
                return None
            plan = found.object
        return found

    def keys(self) -> set[str]:
        """What the plan reads from each source: columns a root resolver must fetch."""
        needed: set[str] = set()
        for plan in self.fields:
            if plan.kind == ATTRIBUTE:
                needed.add(plan.python_name)
            elif plan.spec is not None and hasattr(plan.spec, "needs"):
                needed.update(plan.spec.needs)
        for permission in self.permissions:
            needed.update(permission.inputs)
        return needed

    def keys_beside_rendering(self) -> set[str]:
        """What the plan reads from each source beside the JSON the database
        writes for it: only what its permissions decide on."""
        if self.render is None:
            return self.keys()
        return {name for permission in self.permissions for name in permission.inputs}

    def rendered_permissions(self) -> list[FieldPermission]:
        """The permissions of this selection and of the objects written
        within it: all a rendered list of it must be allowed."""
        found = list(self.permissions)
        for plan in self.fields:
            if plan.spec is SAME_SOURCE and plan.object is not None:
                found += plan.object.rendered_permissions()
        return found


@dataclass(eq=False)
class FieldPlan:
    key: str  # the response key: the alias, or the name
    name: str
    python_name: str
    kind: int
    spec: Compute | Batch | Root | Mutate | None
    nullable: bool
    # A list of what follows (lists of lists do not occur in this schema).
    is_list: bool
    item_nullable: bool
    serialize: Callable[[Any], Any] | None
    object: ObjectPlan | None
    # Arguments: constant when no variable is used, else coerced per request.
    definition: GraphQLField
    node: FieldNode
    constant_arguments: dict[str, Any] | None
    getter: Callable[[Any], Any] | None = None
    # Arguments taken from variables as they are: (argument, variable, value
    # to use when the variable is not given, or ABSENT).
    recipe: list[tuple[str, str | None, Any]] | None = None
    # A union or an interface: the selection on each type its value may have.
    possible: dict[str, ObjectPlan] | None = None

    def arguments(self, variables: VariableValues) -> dict[str, Any]:
        if self.constant_arguments is not None:
            return self.constant_arguments
        if self.recipe is None:
            return get_argument_values(self.definition, self.node, variables)
        coerced = variables.coerced
        arguments = {}
        for name, variable, otherwise in self.recipe:
            if variable is not None and variable in coerced:
                arguments[name] = coerced[variable]
            elif otherwise is not ABSENT:
                arguments[name] = otherwise
        return arguments

    def child(self, *names: str) -> FieldPlan | None:
        return self.object.child(*names) if self.object is not None else None

    def reads_only_its_value(self) -> bool:
        """Whether everything selected below is read from the value itself:
        no resolver that reads the database, no permission to ask."""
        below = [self.object] if self.object is not None else []
        below += list((self.possible or {}).values())
        return all(
            not plan.permissions
            and all(
                field.kind in (ATTRIBUTE, COMPUTED, TYPENAME) and field.reads_only_its_value()
                for field in plan.fields
            )
            for plan in below
        )

    def keys(self) -> set[str]:
        return self.object.keys() if self.object is not None else set()

    def keys_beside_rendering(self) -> set[str]:
        return self.object.keys_beside_rendering() if self.object is not None else set()


@dataclass(eq=False)
class OperationPlan:
    root: ObjectPlan
    root_permissions: dict[str, list[FieldPermission]]
    # A mutation's plan: its one field, which runs once whatever follows.
    mutation: FieldPlan | None = None


class _VariablesInDirectives(Visitor):
    """Names of variables that @skip/@include read: a plan depends on them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_directive(self, node: DirectiveNode, *_: object) -> None:
        for argument in node.arguments or ():
            if isinstance(argument.value, VariableNode):
                self.names.add(argument.value.name.value)


def _uses_variables(node: FieldNode) -> bool:
    return any(_uses_variables_in(argument) for argument in node.arguments or ())


@dataclass(eq=False)
class Prepared:
    """A parsed, validated document and the plans made from it."""

    document: DocumentNode
    operations: dict[str | None, OperationDefinitionNode]
    fragments: dict[str, FragmentDetails]
    directive_variables: frozenset[str]
    plans: dict[tuple[str | None, tuple[Any, ...]], OperationPlan | None] = field(
        default_factory=dict
    )
    variable_recipes: dict[str | None, Any] = field(default_factory=dict)

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        if name is None:
            return next(iter(self.operations.values())) if len(self.operations) == 1 else None
        return self.operations.get(name)


class Planner:
    """Prepares documents and plans their operations, keeping both."""

    MAX_DOCUMENTS = 2000

    def __init__(self, schema: GraphQLSchema, settings: Settings) -> None:
        self.schema = schema
        self.settings = settings
        self.rules = [*specified_rules, max_aliases_rule(settings.max_aliases)]
        if settings.is_production:
            self.rules.append(NoSchemaIntrospectionCustomRule)
        self.documents: dict[str, Prepared | None] = {}
        # Trusted documents: prepared at start-up and never forgotten.
        self.pinned: dict[str, Prepared] = {}

    @staticmethod
    def document_id(query: str) -> str:
        return "sha256:" + hashlib.sha256(query.encode()).hexdigest()

    def pin(self, key: str, query: str) -> bool:
        """Prepares a trusted document for good, and plans its operations
        whose shape does not depend on the variables; False when invalid."""
        prepared = self._prepare(query)
        if prepared is None:
            return False
        self.pinned[key] = prepared
        if not prepared.directive_variables:
            no_variables = get_variable_values(self.schema, (), {})
            assert not isinstance(no_variables, list)
            for operation in prepared.operations.values():
                self.plan(prepared, operation, no_variables)
        return True

    def prepare(self, query: str) -> Prepared | None:
        key = self.document_id(query)
        if key in self.pinned:
            return self.pinned[key]
        if key in self.documents:
            return self.documents[key]
        prepared = self._prepare(query)
        if len(self.documents) >= self.MAX_DOCUMENTS:
            self.documents.clear()  # a flood of one-off documents must not grow memory
        self.documents[key] = prepared
        return prepared

    def _prepare(self, query: str) -> Prepared | None:
        settings = self.settings
        try:
            document = parse(query, max_tokens=settings.max_tokens)
        except GraphQLError:
            return None
        if shape_problem(
            document, settings.max_depth, settings.max_fields, settings.max_directives
        ):
            return None
        if validate(self.schema, document, self.rules):
            return None
        operations = {
            d.name.value if d.name else None: d
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
        }
        fragments = {
            d.name.value: FragmentDetails(d)
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        finder = _VariablesInDirectives()
        visit(document, finder)
        return Prepared(document, operations, fragments, frozenset(finder.names))

    def variables(
        self, prepared: Prepared, operation: OperationDefinitionNode, given: Mapping[str, Any]
    ) -> VariableValues | None:
        """The request's variables coerced, or None when they are not valid."""
        name = operation.name.value if operation.name else None
        if name not in prepared.variable_recipes:
            prepared.variable_recipes[name] = variable_recipe(self.schema, operation)
        recipe = prepared.variable_recipes[name]
        if recipe is not None:
            plain = coerce_plain(recipe, given)
            if plain is not None:
                return plain
        coerced = get_variable_values(
            self.schema, operation.variable_definitions or (), dict(given)
        )
        return None if isinstance(coerced, list) else coerced

    def plan(
        self, prepared: Prepared, operation: OperationDefinitionNode, variables: VariableValues
    ) -> OperationPlan | None:
        signature = tuple(
            (name, repr(variables.coerced.get(name)))
            for name in sorted(prepared.directive_variables)
        )
        key = (operation.name.value if operation.name else None, signature)
        if key not in prepared.plans:
            try:
                prepared.plans[key] = self._plan(prepared, operation, variables)
            except NotCompiled:
                prepared.plans[key] = None
        return prepared.plans[key]

    def _plan(
        self, prepared: Prepared, operation: OperationDefinitionNode, variables: VariableValues
    ) -> OperationPlan:
        if operation.operation is OperationType.QUERY:
            root_type = self.schema.query_type
        elif operation.operation is OperationType.MUTATION:
            root_type = self.schema.mutation_type
        else:
            raise NotCompiled("subscriptions")
        assert root_type is not None
        collected = collect_fields(self.schema, prepared.fragments, variables, root_type, operation)
        if collected.new_defer_usages:
            raise NotCompiled("@defer")
        root = self._object(prepared, operation, variables, root_type, collected.grouped_field_set)
        permissions = {
            plan.key: self._permissions(root_type.fields[plan.name])
            for plan in root.fields
            if plan.kind != TYPENAME
        }
        # The root's own permissions are asked of the viewer alone, per field.
        root.permissions = []
        mutation = None
        if operation.operation is OperationType.MUTATION:
            # Run once, with nothing after it that could want the standard
            # executor instead.
            mutation = root.fields[0] if len(root.fields) == 1 else None
            if mutation is None or mutation.kind != MUTATE or not mutation.reads_only_its_value():
                raise NotCompiled("a mutation without a plan")
        elif any(f.kind == MUTATE for f in root.fields):
            raise NotCompiled("a mutation's spec on a query")
        return OperationPlan(root=root, root_permissions=permissions, mutation=mutation)

    def _object(
        self,
        prepared: Prepared,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        object_type: GraphQLObjectType,
        grouped: Mapping[str, list[FieldDetails]],
    ) -> ObjectPlan:
        fields: list[FieldPlan] = []
        permissions: list[FieldPermission] = []
        for key, details in grouped.items():
            node = details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append(self._typename(key, node, object_type))
                continue
            if name.startswith("__"):
                raise NotCompiled("introspection")
            definition = object_type.fields[name]
            strawberry_field = definition.extensions["strawberry-definition"]
            spec = (strawberry_field.metadata or {}).get(KEY)
            if spec is None and strawberry_field.base_resolver is not None:
                raise NotCompiled(f"{object_type.name}.{name} has no compiled spec")
            for permission in self._permissions(definition):
                if all(type(p) is not type(permission) for p in permissions):
                    permissions.append(permission)
            plan = self._field(key, name, strawberry_field.python_name, spec, definition, node)
            named = _named(definition.type)
            if isinstance(named, GraphQLObjectType):
                sub = collect_subfields(
                    self.schema, prepared.fragments, variables, operation, named, details
                )
                if sub.new_defer_usages:
                    raise NotCompiled("@defer")
                plan.object = self._object(
                    prepared, operation, variables, named, sub.grouped_field_set
                )
            elif isinstance(named, GraphQLScalarType | GraphQLEnumType):
                plan.serialize = _serializer(named)
            else:
                # A union or an interface: the selection as it applies to
                # each object type the value may be (fragments on the union,
                # an interface or the type itself).
                plan.possible = {}
                for possible in self.schema.get_possible_types(named):
                    sub = collect_subfields(
                        self.schema, prepared.fragments, variables, operation, possible, details
                    )
                    if sub.new_defer_usages:
                        raise NotCompiled("@defer")
                    plan.possible[possible.name] = self._object(
                        prepared, operation, variables, possible, sub.grouped_field_set
                    )
            fields.append(plan)
        built = ObjectPlan(type_name=object_type.name, fields=fields, permissions=permissions)
        built.render = _render(object_type, fields)
        if built.render is not None:
            built.render_alias = f"rendered_{next(_render_aliases)}"
        return built

    @staticmethod
    def _permissions(definition: GraphQLField) -> list[FieldPermission]:
        strawberry_field = definition.extensions["strawberry-definition"]
        permissions = []
        for permission_class in strawberry_field.permission_classes:
            if not issubclass(permission_class, FieldPermission):
                raise NotCompiled(f"{permission_class.__name__} cannot be decided by a plan")
            permissions.append(permission_class())
        return permissions

    @staticmethod
    def _typename(key: str, node: FieldNode, object_type: GraphQLObjectType) -> FieldPlan:
        return FieldPlan(
            key=key,
            name="__typename",
            python_name="__typename",
            kind=TYPENAME,
            spec=None,
            nullable=False,
            is_list=False,
            item_nullable=False,
            serialize=None,
            object=None,
            definition=None,  # type: ignore[arg-type]
            node=node,
            constant_arguments={},
            getter=lambda _: object_type.name,
        )

    @staticmethod
    def _field(
        key: str,
        name: str,
        python_name: str,
        spec: Any,
        definition: GraphQLField,
        node: FieldNode,
    ) -> FieldPlan:
        output: GraphQLOutputType = definition.type
        nullable = not isinstance(output, GraphQLNonNull)
        inner = output.of_type if isinstance(output, GraphQLNonNull) else output
        is_list = isinstance(inner, GraphQLList)
        item_nullable = True
        if isinstance(inner, GraphQLList):
            item = inner.of_type
            item_nullable = not isinstance(item, GraphQLNonNull)
            if isinstance(_strip(item), GraphQLList):
                raise NotCompiled("lists of lists")
        kinds = {
            Compute: COMPUTED,
            Batch: BATCHED,
            Root: ROOT,
            Mutate: MUTATE,
            type(None): ATTRIBUTE,
        }
        variables = _uses_variables(node)
        return FieldPlan(
            key=key,
            name=name,
            python_name=python_name,
            kind=kinds[type(spec)],
            spec=spec,
            nullable=nullable,
            is_list=is_list,
            item_nullable=item_nullable,
            serialize=None,
            object=None,
            definition=definition,
            node=node,
            constant_arguments=None if variables else get_argument_values(definition, node),
            recipe=_recipe(definition, node) if variables else None,
        )


def _render(object_type: GraphQLObjectType, fields: list[FieldPlan]) -> Rendering | None:
    """What the database needs to write this selection as JSON, or None when
    some field is neither a leaf it writes exactly (a column, or a value a
    Compute spec gives in SQL) nor an object it writes from the same row."""
    if not fields or len(fields) > MAX_RENDERED_FIELDS:
        return None
    render: list[Member] = []
    for plan in fields:
        if plan.kind == TYPENAME:
            render.append(Member(plan.key, constant=object_type.name))
            continue
        if plan.is_list:
            return None
        if plan.spec is SAME_SOURCE and plan.object is not None:
            if plan.object.render is None:
                return None
            render.append(Member(plan.key, members=plan.object.render))
            continue
        named = _named(plan.definition.type)
        writable = isinstance(named, GraphQLEnumType) or named.name in RENDERABLE
        if plan.object is not None or plan.possible is not None or not writable:
            return None
        if plan.kind == ATTRIBUTE:
            render.append(Member(plan.key, column=plan.python_name))
        elif isinstance(plan.spec, Compute) and plan.spec.sql and len(plan.spec.needs) == 1:
            render.append(Member(plan.key, column=plan.spec.needs[0], encode=plan.spec.sql))
        else:
            return None
    return tuple(render)


def _recipe(definition: GraphQLField, node: FieldNode) -> list[tuple[str, str | None, Any]] | None:
    """How to read the arguments when each is a literal or a whole variable;
    None (graphql-core decides) for variables inside lists or objects."""
    given = {argument.name.value: argument.value for argument in node.arguments or ()}
    recipe: list[tuple[str, str | None, Any]] = []
    for name, argument in definition.args.items():
        default = argument.default_value if argument.default_value is not Undefined else ABSENT
        value = given.get(name)
        if value is None:
            if default is not ABSENT:
                recipe.append((name, None, default))
            continue
        if isinstance(value, VariableNode):
            if is_required_argument(argument):
                default = ABSENT  # a required argument's variable is always given
            recipe.append((name, value.name.value, default))
            continue
        if _uses_variables_in(value):
            return None
        recipe.append((name, None, value_from_ast(value, argument.type)))
    return recipe


def _uses_variables_in(value: Any) -> bool:
    found = False

    class Finder(Visitor):
        def enter_variable(self, *_: object) -> None:
            nonlocal found
            found = True

    visit(value, Finder())
    return found


def variable_recipe(
    schema: GraphQLSchema, operation: OperationDefinitionNode
) -> list[tuple[str, str, bool, Any]] | None:
    """For operations whose variables are all plain scalars: (name, type,
    required, default) of each, to check a request's values without graphql-core."""
    recipe = []
    for definition in operation.variable_definitions or ():
        required = isinstance(definition.type, NonNullTypeNode)
        named = (
            definition.type.type
            if isinstance(definition.type, NonNullTypeNode)
            else definition.type
        )
        if not isinstance(named, NamedTypeNode) or named.name.value not in PLAIN_SCALARS:
            return None
        scalar = schema.type_map[named.name.value]
        assert isinstance(scalar, GraphQLScalarType)
        default = (
            value_from_ast(definition.default_value, scalar)
            if definition.default_value is not None
            else ABSENT
        )
        recipe.append((definition.variable.name.value, named.name.value, required, default))
    return recipe


def coerce_plain(
    recipe: list[tuple[str, str, bool, Any]], given: Mapping[str, Any]
) -> VariableValues | None:
    """The variables, when each is of its type already; None for anything else
    (graphql-core then coerces, or words the error)."""
    coerced: dict[str, Any] = {}
    for name, scalar, required, default in recipe:
        if name not in given:
            if default is not ABSENT:
                coerced[name] = default
            elif required:
                return None
            continue
        value = given[name]
        if value is None:
            if required:
                return None
        elif scalar == "Int":
            if type(value) is not int or value not in INT_RANGE:
                return None
        elif scalar == "ID":
            if type(value) is int:
                value = str(value)
            elif type(value) is not str:
                return None
        elif (scalar == "String" and type(value) is not str) or (
            scalar == "Boolean" and type(value) is not bool
        ):
            return None
        coerced[name] = value
    return VariableValues({}, coerced)


def _strip(output: Any) -> Any:
    return output.of_type if isinstance(output, GraphQLNonNull) else output


def _named(output: Any) -> Any:
    while isinstance(output, GraphQLNonNull | GraphQLList):
        output = output.of_type
    return output


def rendering(selection: FieldPlan | None) -> tuple[str, Rendering] | None:
    """What a root resolver asks the database to write as JSON for `selection`'s
    objects, when it can; their plan then passes that text on as it is."""
    plan = selection.object if selection is not None else None
    if plan is None or plan.render is None:
        return None
    return plan.render_alias, plan.render


def reader_for(source: Any, python_name: str) -> Callable[[Any], Any]:
    """How a field is read from sources like this one."""
    return itemgetter(python_name) if isinstance(source, ROW_TYPES) else attrgetter(python_name)
