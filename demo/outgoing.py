"""How the demo apps call out: the handshakes and change notifications they send."""

import httpx

from sync.connectors.odata import tls_context

TIMEOUT_SECONDS = 5
# Transports that serve an address without the network, by httpx mount pattern: the tests
# reach the console in process this way when it is served in process. Empty otherwise.
TRANSPORTS: dict[str, httpx.BaseTransport] = {}


def outgoing_client(timeout: float = TIMEOUT_SECONDS) -> httpx.Client:
    """The HTTP client the demo apps call their subscribers with."""
    return httpx.Client(timeout=timeout, verify=tls_context(), mounts=dict(TRANSPORTS))
