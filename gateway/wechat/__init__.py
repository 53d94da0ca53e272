"""WeChat's APIs: the only HTTP client of the gateway (httpx), errcodes, open-data crypto and
the sandbox emulator."""

import importlib.util
import sys

# httpx's package __init__ imports its command-line tool whenever click, rich and pygments
# happen to be installed (uvicorn brings click; dev tools bring the rest): ~8 MiB of every
# process for a tool the gateway never runs. ``None`` in sys.modules makes that import fail,
# which httpx expects (it then offers ``pip install httpx[cli]``).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# httpcore runs ``import sniffio`` each time it makes a lock or a cancellation shield (several
# per WeChat call), to tell trio from asyncio. sniffio is optional and not installed, so each
# was a failed import: a path search with a stat of every sys.path entry, ~29 us. Marked absent
# once, the import fails at once and httpcore assumes asyncio, which it then uses.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]
