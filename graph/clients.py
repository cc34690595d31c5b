"""What GraphQL clients need beside the schema, written from it.

`possible_types`: each union's and interface's object types, the map Apollo
Client (`possibleTypes`), urql's Graphcache (`schema` or `possibleTypes`) and
Relay's compiler otherwise learn from introspection. Without it a client cannot
tell that `... on Error { code message }` applies to `InvalidCredentialsError`
inside the `LoginResult` union, and drops the fields. Written to
`clients/possible-types.json` by `make schema`; a test keeps it fresh.

    python -m graph.clients > clients/possible-types.json
"""

from __future__ import annotations

import json

from graphql import GraphQLInterfaceType, GraphQLSchema, GraphQLUnionType

from graph.schema import schema


def possible_types(graphql_schema: GraphQLSchema) -> dict[str, list[str]]:
    abstract = [
        named
        for named in graphql_schema.type_map.values()
        if isinstance(named, GraphQLUnionType | GraphQLInterfaceType)
        and not named.name.startswith("__")
    ]
    return {
        named.name: sorted(t.name for t in graphql_schema.get_possible_types(named))
        for named in sorted(abstract, key=lambda named: named.name)
    }


def possible_types_json() -> str:
    return json.dumps(possible_types(schema._schema), indent=2) + "\n"


if __name__ == "__main__":
    print(possible_types_json(), end="")
