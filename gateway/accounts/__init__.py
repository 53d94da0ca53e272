"""The account graph: identities resolve to accounts; find-or-create, link, merge."""
