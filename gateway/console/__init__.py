"""The operator console's use cases: operators (not end users), their password + TOTP login,
their sessions and roles. The HTTP part is ``gateway.admin``; the CLI ``gateway.console_cli``."""
