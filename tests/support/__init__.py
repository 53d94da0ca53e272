"""Helpers shared by several test files (fixtures live in ``tests/conftest.py``).

- ``harness``: the gateway under test over ASGI, its sandbox WeChat, configuration factories and
  the test services (PostgreSQL, Redis).
- ``accounts``: the account graph (official-account logins, database reads) and bindUnionId.
- ``passwords``: username/password accounts through GraphQL.
- ``partners``: partner configuration, tokens and the leak-checking probe.
- ``sandbox``: the gateway as `gateway serve` builds it with nothing configured.
- ``processes``: real `gateway` processes (free ports, readiness).
- ``proxy``: a cuttable TCP proxy standing in for a service restart.
"""
