"""WeChat's APIs: the only HTTP client of the gateway (httpx), errcodes, open-data crypto and
the sandbox emulator."""

import sys

# httpx's package __init__ imports its command-line tool whenever click, rich and pygments
# happen to be installed (uvicorn brings click; dev tools bring the rest): ~8 MiB of every
# process for a tool the gateway never runs. ``None`` in sys.modules makes that import fail,
# which httpx expects (it then offers ``pip install httpx[cli]``).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
