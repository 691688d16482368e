"""Who may read the monitoring endpoints (/readyz, /metrics): a monitoring system on one of
MONITORING_NETWORKS, or anything that sends MONITORING_TOKEN as a bearer token. /healthz says
only that the process answers and is open to all."""

import hmac
import ipaddress
from functools import lru_cache, wraps

from django.conf import settings
from django.http import HttpResponse

from .signin import client_address


@lru_cache(maxsize=8)
def _networks(
    spec: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in spec)


def monitoring_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks allowed in, parsed once (the setting is checked at start-up by
    syncconsole.checks)."""
    return _networks(tuple(settings.MONITORING_NETWORKS))


def _bearer(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def monitoring_allowed(request) -> bool:
    token = settings.MONITORING_TOKEN
    if token and hmac.compare_digest(_bearer(request).encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    return any(address in network for network in monitoring_networks())


def monitoring_only(view):
    """Answer 403, saying nothing more, to a caller that is neither on a monitoring network
    nor holds the monitoring token."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not monitoring_allowed(request):
            return HttpResponse(
                "Forbidden: not on a monitoring network.\n",
                status=403,
                content_type="text/plain; charset=utf-8",
            )
        return view(request, *args, **kwargs)

    return guarded
