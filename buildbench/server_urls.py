"""The base URLs of OpenAI-compatible servers as a domain pack or ``--base-url`` gives them: one address, or
several (a list, or commas between them), checked, with errors that echo no credentials.

One address comes back a plain string, as it always was, so a single server's config, and every hash made of
it, does not change; several come back a list, in the order given.
"""

from __future__ import annotations

import re
from typing import Optional, Union
from urllib.parse import urlsplit

from .redact import redact_url

# A comma that starts another address (a comma inside one, e.g. in a password, is followed by no scheme).
_NEXT_URL = re.compile(r"\s*,\s*(?=https?://)", re.IGNORECASE)


def shown_url(url: str) -> str:
    """A base URL as an error may echo it: redacted, and with nothing before an "@" that redaction missed
    (``user:pw@host`` written without a scheme is no URL to it)."""
    shown = redact_url(url)
    return shown if "@" not in shown.replace("***@", "") else "***@" + shown.rsplit("@", 1)[1]


def parse_base_urls(value) -> Optional[Union[str, list[str]]]:
    """None (unset, also for "" or an empty list), one http(s) address, or a list of several; ValueError for
    anything else, or for one server listed twice."""
    if value is None:
        return None
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    urls: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"must be an address or a list of addresses (got {type(item).__name__})")
        urls += [u for u in _NEXT_URL.split(item.strip()) if u]
    seen: dict[tuple, str] = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http:// or https:// address such as http://127.0.0.1:8080/v1 "
                             f"(got '{shown_url(url)}')")
        if "," in parts.path:
            raise ValueError(f"separate several addresses with commas, each starting with http:// or https:// "
                             f"(got '{shown_url(url.split(',', 1)[0])},...')")
        server = (parts.scheme, parts.hostname, parts.port, parts.path.rstrip("/"))
        if server in seen:
            raise ValueError(f"lists the same server twice ('{shown_url(seen[server])}' and '{shown_url(url)}')")
        seen[server] = url
    if not urls:
        return None
    return urls[0] if len(urls) == 1 else urls
