"""The OpenID Connect provider: discovery, authorize, token, userinfo, revoke, logout.

A protocol adapter on authlib's server components (``oidc.server``), above the API and the
web pages: it uses the client registry, consents and codes (``gateway.clients``), the login
sessions (``gateway.sessions``) and the browser session of the hosted login page.
"""
