"""``python -m bench``: see bench/README.md (``python -m bench soak``: the soak)."""

import sys

if sys.argv[1:2] == ["soak"]:
    from bench.soak.cli import main as soak

    raise SystemExit(soak(sys.argv[2:]))

from bench.run import main

raise SystemExit(main())
