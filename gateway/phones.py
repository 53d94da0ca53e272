"""Phone numbers as people type them (``138 0013 8000``, ``+86 138-0013-8000``), parsed and
normalised to E.164 (``+8613800138000``), the one form the account graph, the limits and the
providers know a number by: two spellings of one number are one identity and one counter.
The one rule for every door that takes a typed number: SMS codes, partners' lookups, the
console's search and the operator CLI.

phonenumbers is imported by the first number parsed (~1.1 MiB, 58 modules, in every serving
process, most of which never send an SMS: issue 29); that first parse already loads its
region's metadata, and the import adds ~15 ms to it, once per process.
"""

from __future__ import annotations

from gateway.errors import InvalidInput

DEFAULT_REGION = "CN"  # a number without a +country is Chinese: the gateway's users are
MAX_LENGTH = 32


def normalise(raw: str, field: str = "phone") -> str:
    """The E.164 form of ``raw``; ``InvalidInput`` naming ``field`` when it is not a valid
    number (a GraphQL ``String``: the parse is ours, so the error is typed, never a
    validation error)."""
    if len(raw) > MAX_LENGTH:
        raise InvalidInput(field, "%(name)s is not a phone number.", name=field)
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidInput(field, "%(name)s is not a phone number.", name=field) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(field, "%(name)s is not a valid phone number.", name=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def calling_code(e164: str) -> str:
    """``+86`` for ``+8613800138000``: what the ``[sms] countries`` allow-list names."""
    import phonenumbers

    return f"+{phonenumbers.parse(e164).country_code}"
