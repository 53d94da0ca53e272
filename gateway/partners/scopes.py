"""What a partner may be granted. Each scope widens one thing; nothing is implied."""

from __future__ import annotations

LOOKUP = "accounts:lookup"  # by id, by (app, openid), by (platform, unionid)
LOOKUP_USERNAME = "accounts:lookup-username"
LOOKUP_PHONE = "accounts:lookup-phone"
IDENTIFIERS = "identities:identifiers"  # raw openid/unionid, for entitled apps/platforms only
ALL_APPS = "identities:all-apps"  # list identities of other apps too, never their identifiers

ALL = frozenset({LOOKUP, LOOKUP_USERNAME, LOOKUP_PHONE, IDENTIFIERS, ALL_APPS})
