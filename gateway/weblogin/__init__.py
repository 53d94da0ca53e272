"""Scan to log in with the mini-program (issue 25): tickets, their codes, their logins."""
