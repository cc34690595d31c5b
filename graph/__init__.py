"""The GraphQL surface: types, inputs, resolvers, permissions, context."""
