"""Bytes to text: BOMs, UTF-8, a cp1252 or charset-normalizer guess, and refusing binary files (NUL bytes,
control characters)."""

from __future__ import annotations

import re
from typing import Any, Optional

from .documents import Collector, FileInput, UnreadableInput


def decode_file(inp: FileInput, sink: Collector) -> tuple[str, dict[str, Any]]:
    """The file's text, and metadata naming its encoding when that is not UTF-8."""
    text, encoding = decode_bytes(inp.path.read_bytes())
    if encoding not in ("utf-8", "utf-8-sig"):
        if encoding not in ("utf-16", "utf-32"):  # BOM-marked: unambiguous, not worth a warning
            sink.warn(str(inp.path), "not_utf8", f"decoded as {encoding}, not UTF-8")
        return text, {"encoding": encoding}
    return text, {}


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode a text file's bytes; returns ``(text, encoding)``.

    UTF-8 first (and BOM-marked UTF-8/16/32). Otherwise cp1252 (the usual encoding of Western text that is
    not UTF-8) when the result reads like Western text, else charset-normalizer's best guess when it is
    confident. Raises ``UnreadableInput`` with reason ``binary`` or ``undecodable``.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                break
    if b"\x00" in data:
        raise UnreadableInput("binary", "contains NUL bytes: not a text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_at = exc.start
    else:
        _check_not_binary(text)
        return text, "utf-8"

    guessed = _guess_encoding(data)
    if guessed is None:
        raise UnreadableInput("undecodable", f"not UTF-8 (invalid byte at offset {bad_at}) and no other encoding fits")
    text, encoding = guessed
    _check_not_binary(text)
    return text, encoding


# charset-normalizer's "chaos" is the share of the decoded text that looks like mojibake; above this the
# guess is not one we would stake a corpus on.
_MAX_CHAOS = 0.2


def _guess_encoding(data: bytes) -> Optional[tuple[str, str]]:
    # cp1252 goes first: on short Western text charset-normalizer often prefers a Baltic or Central European
    # code page with the same chaos score (a French latin-1 file comes back as cp1257, é misread), while a
    # plausible cp1252 reading is almost always the right one.
    try:
        cp1252_text: Optional[str] = data.decode("cp1252")
    except UnicodeDecodeError:
        cp1252_text = None
    if cp1252_text is not None and _looks_western(cp1252_text):
        return cp1252_text, "cp1252"

    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.chaos > _MAX_CHAOS:
        return None
    try:
        return data.decode(best.encoding), best.encoding
    except (UnicodeDecodeError, LookupError):
        return None


def _looks_western(text: str) -> bool:
    """cp1252 decodes almost any bytes; accept it only when the result reads like Western text.

    Real Latin-script text is mostly ASCII, and its non-ASCII characters are letters (é, ü) or
    typographic punctuation (’ “ € –), each next to ASCII letters rather than in long runs.
    """
    if not text:
        return False
    non_ascii = [c for c in text if ord(c) > 127]
    if len(non_ascii) > 0.3 * len(text):
        return False
    allowed = sum(1 for c in non_ascii if c.isalpha() or c in "’‘“”€–—…•«»°£§©®™·")
    if non_ascii and allowed < 0.9 * len(non_ascii):
        return False
    # Long runs of accented letters are mojibake of a multi-byte encoding, not a Western language.
    return re.search(r"[^\x00-\x7f]{4,}", text) is None


def _check_not_binary(text: str) -> None:
    sample = text[:65536]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\t\n\r\f")
    if controls > 0.01 * max(len(sample), 1):
        raise UnreadableInput("binary", f"{controls} control characters in the first {len(sample)}: not a text file")
