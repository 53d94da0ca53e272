"""Helpers shared by several test files; a test module imports only from here, gateway and
libraries, never from another test module. Fixtures live in ``tests/conftest.py``, except the
``gw``/``browser``/``make_gw`` variants a few modules share, which those modules import by
name (``sms.sms_gateway``, ``weblogin.site_gateway``, ``web.gateway_browser``,
``trusted.trusted_gateways``).

- ``harness``: the gateway under test over ASGI, its sandbox WeChat, configuration factories and
  the test services (PostgreSQL, Redis).
- ``accounts``: the account graph (official-account logins, database reads) and bindUnionId.
- ``passwords``: username/password accounts through GraphQL.
- ``partners``: partner configuration, tokens and the leak-checking probe.
- ``sandbox``: the gateway as `gateway serve` builds it with nothing configured.
- ``processes``: real `gateway` processes (free ports, readiness).
- ``proxy``: a cuttable TCP proxy standing in for a service restart.
- ``browser``: Debian's Chromium and the real `gateway serve` processes it visits.
- ``cli``: the `gateway` command line, as a subprocess or in a worker thread.
- ``sessions``: refreshToken and logout, and reading the access tokens.
- ``rights``: deleteAccount and the login that cancels a pending deletion.
- ``sms``: SMS codes over GraphQL; ``web``: the hosted pages (CSRF, the SMS tab's forms).
- ``trusted``: trusted documents (hashes, persisted queries, manifests).
"""
