"""Make text from logs and events safe to carry anywhere: valid Unicode, no control or bidi characters, bounded.

Markup escaping is per tracker (shared/tickets/markup/); this module is what every markup shares.
"""

from __future__ import annotations

import re

# Control characters become their visible "control picture" (U+2400 block) so a reader still sees them.
_C0_PICTURES = {code: chr(0x2400 + code) for code in range(0x20) if code not in (0x09, 0x0A)}
_C0_PICTURES[0x7F] = "\u2421"
REPLACEMENT = "\ufffd"
# Bidi overrides/isolates can make a title read differently from what it is ("Trojan Source").
_BIDI = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))
_LINE_BREAKS = re.compile(r"\r\n|[\r\u0085\u2028\u2029]")
ZWSP = "\u200b"


def _safe_char(ch: str) -> str:
    code = ord(ch)
    if code in _C0_PICTURES:
        return _C0_PICTURES[code]
    if 0x80 <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or code in _BIDI or code in (0xFFFE, 0xFFFF):
        return REPLACEMENT
    return ch


def clean_text(value: object, limit: int | None = None) -> str:
    """Text that encodes as UTF-8 and renders as what it is: newlines kept, everything else visible.

    Bytes are decoded as UTF-8 with replacement; lone surrogates (from surrogateescape decoding) and
    C1/bidi controls become U+FFFD; C0 controls become visible control pictures.
    """
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", errors="replace")
    else:
        text = str(value)
    text = _LINE_BREAKS.sub("\n", text)
    if not text.isascii() or any(ord(c) < 0x20 and c not in "\t\n" or c == "\x7f" for c in text):
        text = "".join(_safe_char(c) for c in text)
    return truncate(text, limit) if limit is not None else text


def fold_line(value: object) -> str:
    """One line: as clean_text, with line breaks and tabs folded into spaces (ends kept)."""
    return clean_text(value).replace("\n", " ").replace("\t", " ")


def clean_line(value: object, limit: int | None = None) -> str:
    """One line value: folded and trimmed."""
    text = fold_line(value).strip()
    return truncate(text, limit) if limit is not None else text


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters; a cut says how long the original was."""
    if len(text) <= limit:
        return text
    note = f"… [truncated: {len(text)} characters in all]"
    if limit <= len(note):
        return text[:limit]
    return text[: limit - len(note)] + note


_SCHEME_SLASHES = re.compile(r":(?=//)")
_WWW_DOT = re.compile(r"(?i)(www)(\.)")


def defang_links(text: str) -> str:
    """Break what renderers turn into links by themselves (`scheme://`, `www.`) with a zero-width space.

    The text reads the same; it just is not clickable.
    """
    return _WWW_DOT.sub(r"\1" + ZWSP + r"\2", _SCHEME_SLASHES.sub(":" + ZWSP, text))


_SAFE_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&*+,;=:@%/?#-]*)?$")


def is_safe_url(url: str | None) -> bool:
    """Only plain https URLs become links: no spaces, quotes, brackets, parentheses or control characters."""
    return url is not None and bool(url) and len(url) <= 2000 and bool(_SAFE_URL.match(url))


def redact(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    """Remove known secret values (the sink passes raw secrets and their encoded header forms)."""
    out = text
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        out = out.replace(secret, "***")
    return out
