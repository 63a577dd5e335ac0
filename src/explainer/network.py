"""Whether a host answers: asked before any download, so that offline a loader fails at once
with a clear message instead of a library's long retry loop."""
from __future__ import annotations

import socket

PROBE_TIMEOUT_S = 3.0


def host_reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
