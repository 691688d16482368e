"""Record links come from other systems: only http(s) URLs become links."""

import re
from urllib.parse import urlsplit

# A control character or whitespace (str.isspace's, which is what \s matches in a str pattern).
UNSAFE = re.compile(r"[\x00-\x1f\s]")


def safe_link(url: str) -> str | None:
    """Return the URL when it is an absolute http(s) URL with a host, else None."""
    if not url:
        return None
    url = url.strip()
    if UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url
