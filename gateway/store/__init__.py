"""Persistence: tables, the async engine and the unit of work."""
