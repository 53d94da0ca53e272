"""Usernames and passwords: policy, hashing off the event loop, throttling."""
