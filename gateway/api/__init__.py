"""The GraphQL surface: thin types and resolvers over the domain services."""
