"""Reference (a): a bare strawberry app, parse and validation caches on, one trivial field.

Served by uvicorn exactly as the gateway is (same loop and HTTP implementation), so the floor
row compares the gateway's cheapest query with the cheapest query its stack can answer.
"""

from __future__ import annotations

import argparse

import strawberry
import uvicorn
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache


@strawberry.type
class Query:
    @strawberry.field
    def ping(self) -> str:
        return "pong"


schema = strawberry.Schema(
    query=Query, extensions=[lambda: ParserCache(maxsize=512), lambda: ValidationCache(maxsize=512)]
)
app = GraphQL(schema, graphql_ide=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
