"""``python -m bench soak``: the gateway under mixed traffic for minutes, with faults on the
way, and the invariants checked at the end (see bench/README.md, "Soak")."""
