"""Who is signing in from where, and the page a locked-out pair gets (django-axes)."""

from django.conf import settings
from django.shortcuts import render


def client_address(request) -> str:
    """The address a sign-in comes from: the peer's, or behind TRUSTED_PROXY_COUNT proxies the
    one the outermost proxy saw. Each proxy appends its peer to X-Forwarded-For, so only the
    last TRUSTED_PROXY_COUNT entries are theirs; whatever comes before was sent by the client
    and proves nothing."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def locked_out(request, original_response=None, credentials=None):
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
