"""``/admin``: the operator console's pages (thin: the use cases are ``gateway.console`` for
operators and ``gateway.rights`` for what they do to accounts)."""
