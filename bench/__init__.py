"""The gateway's benchmark harness (not part of the package; run ``python -m bench``)."""
