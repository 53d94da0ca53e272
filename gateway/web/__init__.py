"""The pages the gateway serves to browsers: the hosted login page, logout, and what the
OpenID Connect provider builds on them (``pages``: templates, CSP, CSRF, locale; ``browser``:
the browser's login session)."""
