"""Record links come from other systems: only http(s) URLs become links."""

from urllib.parse import urlsplit


def safe_link(url: str) -> str | None:
    """Return the URL when it is an absolute http(s) URL with a host, else None."""
    if not url:
        return None
    url = url.strip()
    if any(ord(char) < 32 or char.isspace() for char in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url
