"""Login state: signed access tokens, rotating refresh tokens, revocation."""
