"""Credentials never reach what buildbench writes: URLs and texts as they may be shown or stored."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters whose values are credentials (api_key, token, sig, X-Amz-Signature, ...).
_SECRET_PARAM = re.compile(r"key|token|sig|secret|passw|pwd|auth|credential|session", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL as it may be written anywhere (manifest, report, logs, cards): userinfo and the values of
    credential-like query parameters become ``***``. Calls keep using the real URL; strings that are not
    URLs with a host come back unchanged."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(_SECRET_PARAM.search(k) for k, _ in pairs):
                query = urlencode([(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # not parseable as a URL: say nothing of it
        return "***"


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_text(text: str) -> str:
    """``text`` (an error message, a log line) with every URL in it redacted by :func:`redact_url`. Punctuation
    that ends a URL ("...?key=***: refused") is the sentence's, not the URL's: it stays, and stays outside."""

    def redact(match: re.Match) -> str:
        url = match.group(0)
        bare = url.rstrip(".,;:)")
        return redact_url(bare) + url[len(bare):]

    return _URL_IN_TEXT.sub(redact, text)


def redact_secrets(value: Any) -> Any:
    """``value`` (a config dump: dicts, lists, strings) with every URL in it redacted by :func:`redact_url`."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {k: redact_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_secrets(v) for v in value]
    return value
