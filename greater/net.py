"""One network probe, shared by the checks that must fail in seconds rather than after a client's retries."""

from __future__ import annotations

import socket
from urllib.parse import urlparse


def reachable(url: str, timeout: float, default_host: str = "") -> bool:
    """Whether a TCP connection to `url`'s host and port (80 for http, else 443) opens within `timeout`."""
    parsed = urlparse(url)
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        socket.create_connection((parsed.hostname or default_host, port), timeout=timeout).close()
        return True
    except OSError:
        return False
