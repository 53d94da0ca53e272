"""Relying parties of the OpenID Connect provider: the client registry, the consents people
gave them, and the authorization codes issued to them (their tables are ``clients.tables``).

Low enough for the API to reach (the viewer's consents); the protocol itself is
``gateway.oidc``'s.
"""
